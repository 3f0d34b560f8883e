//! A loopback simulator of Centra's Integration API (GraphQL over `POST /graphql`), limited to
//! what the integration uses: `changeStock`, `setStock`, `stockChangeConnection`,
//! `warehouses { stock }`, `productSizes`, `rateLimits` and the order reads `orders`,
//! `shipments`, `returns`. The same server answers the Order API (`POST /order-api/<plugin>/order`,
//! see [`orders`]), as one Centra instance serves both. It enforces Centra's auth, rate
//! limits and error shapes, and lets tests seed data, inject faults and inspect state.
//!
//! Ordering of a request: count it → configured latency → auth (401) → JSON body (400) →
//! GraphQL parse and schema checks (200 with `errors[]`, no fault or token used) → the next
//! matching injected fault → rate limits (429) → execution. Every request runs in its own
//! task, so a mutation whose client gave up (timeout, dropped connection) still completes,
//! as it would on a real server; [`CentraSim::wait_idle`] waits for such stragglers.
//!
//! Order API requests: count → latency → plugin (404) → `API-Authorization` (401) → the next
//! fault aimed at them → create. The GraphQL rate limiter does not apply to them (the Order
//! API's own limits are undocumented).

mod catalogue;
pub mod orders;
mod rate_limit;
mod schema;
mod store;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use catalogue::{SimCatalogueIds, PRODUCT_STATUSES};
pub use orders::{
    SimAddress, SimCustomer, SimOrder, SimOrderLine, SimPaymentEntry, SimReturn, SimShipment,
    ORDER_STATUSES,
};
pub use rate_limit::{Interval, LimitType, RateLimitStatus, RateTier, TierQuotas};
pub use store::{StockChangeKind, StockChangeRecord, StockLevel};

use crate::graphql::{self, GraphqlError, OperationKind, SelectedField};
use orders::OrderBook;
use rate_limit::{Cost, RateLimiter};
use schema::Call;
use store::Store;

/// How the `Retry-After` header of a 429 is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfterStyle {
    /// An HTTP-date (Centra's documentation says the header holds a timestamp).
    #[default]
    HttpDate,
    /// Delta seconds, rounded up.
    Seconds,
}

#[derive(Debug, Clone)]
pub struct CentraSimConfig {
    pub token: String,
    pub tier: RateTier,
    pub rate_limits_enabled: bool,
    pub retry_after_style: RetryAfterStyle,
    /// Real length of Centra's "10 second" window. Tests stretch it so that refills during a
    /// burst cannot blur the count, or shrink it to see buckets refill quickly.
    pub short_window: Duration,
    /// Real length of Centra's "1 hour" window.
    pub long_window: Duration,
}

impl Default for CentraSimConfig {
    fn default() -> Self {
        CentraSimConfig {
            token: "centra-sim-token".to_string(),
            tier: RateTier::Growth,
            rate_limits_enabled: true,
            retry_after_style: RetryAfterStyle::HttpDate,
            short_window: Duration::from_secs(10),
            long_window: Duration::from_secs(3600),
        }
    }
}

/// A failure to inject; see [`CentraSim::inject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP status with a short body; apply nothing.
    ServerError(u16),
    /// Answer 429 with this `Retry-After`; apply nothing and use no rate-limit tokens.
    RateLimited { retry_after: Duration },
    /// GraphQL: wait this long, then process the request normally (even if the client gave up).
    /// Order API: wait this long, then answer 504 and create nothing.
    Hang(Duration),
    /// Apply the request, then abort the response body mid-way so the client cannot tell
    /// whether it succeeded.
    LoseResponseAfterApply,
}

/// Which requests a queued fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Mutation requests only (the default of [`CentraSim::inject`]).
    Mutations,
    /// Query requests only (e.g. the audit-trail scan or stock reads).
    Queries,
    /// Any request that passed auth and validation, GraphQL or Order API.
    AnyRequest,
    /// Order API requests (`POST /order-api/<plugin>/order`) only.
    OrderApi,
}

/// What kind of request is looking for a queued fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Graphql(OperationKind),
    OrderApi,
}

impl FaultTarget {
    fn matches(self, kind: RequestKind) -> bool {
        match self {
            FaultTarget::Mutations => kind == RequestKind::Graphql(OperationKind::Mutation),
            FaultTarget::Queries => matches!(
                kind,
                RequestKind::Graphql(k) if k != OperationKind::Mutation
            ),
            FaultTarget::AnyRequest => true,
            FaultTarget::OrderApi => kind == RequestKind::OrderApi,
        }
    }
}

struct Mutable {
    store: Store,
    catalogue: catalogue::Catalogue,
    orders: OrderBook,
    limiter: RateLimiter,
    faults: VecDeque<(FaultTarget, Fault)>,
    latency: Duration,
    rate_limits_enabled: bool,
}

struct Inner {
    config: CentraSimConfig,
    state: Mutex<Mutable>,
    requests: AtomicU64,
    mutations: AtomicU64,
    rate_limited: AtomicU64,
    order_api_requests: AtomicU64,
    order_creates: AtomicU64,
    in_flight: watch::Sender<usize>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        // A panicking test thread must not wedge the server for the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to a running simulator; dropping it stops the server.
pub struct CentraSim {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl CentraSim {
    /// Start on 127.0.0.1 with an ephemeral port. Needs a Tokio runtime.
    pub async fn start(config: CentraSimConfig) -> CentraSim {
        let limiter = RateLimiter::new(
            config.tier,
            config.short_window,
            config.long_window,
            Instant::now(),
        );
        let inner = Arc::new(Inner {
            state: Mutex::new(Mutable {
                store: Store::default(),
                catalogue: catalogue::Catalogue::default(),
                orders: OrderBook::default(),
                limiter,
                faults: VecDeque::new(),
                latency: Duration::ZERO,
                rate_limits_enabled: config.rate_limits_enabled,
            }),
            config,
            requests: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            order_api_requests: AtomicU64::new(0),
            order_creates: AtomicU64::new(0),
            in_flight: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/graphql", post(endpoint))
            .route("/order-api/{plugin}/order", post(order_endpoint))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the Centra simulator");
        let addr = listener
            .local_addr()
            .expect("local address of the Centra simulator");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "Centra simulator server ended with an error");
            }
        });
        CentraSim {
            inner,
            addr,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.inner.config.token
    }

    pub fn config(&self) -> &CentraSimConfig {
        &self.inner.config
    }

    pub fn add_warehouse(&self, id: u64, name: &str) {
        self.inner.lock().store.add_warehouse(id, name);
    }

    /// Add a size; returns its ProductSize id. Panics on a duplicate SKU.
    pub fn add_size(&self, sku: &str, ean: Option<&str>, active: bool) -> u64 {
        self.inner.lock().store.add_size(sku, ean, None, active)
    }

    /// Like [`CentraSim::add_size`], with a UPC as well.
    pub fn add_size_with_upc(
        &self,
        sku: &str,
        ean: Option<&str>,
        upc: Option<&str>,
        active: bool,
    ) -> u64 {
        self.inner.lock().store.add_size(sku, ean, upc, active)
    }

    /// The ProductSize id of a SKU.
    pub fn size_id(&self, sku: &str) -> Option<u64> {
        self.inner.lock().store.size_by_sku(sku).map(|s| s.id)
    }

    /// Seed physical stock (no audit record). Panics on an unknown warehouse or SKU.
    pub fn set_physical(&self, warehouse_id: u64, sku: &str, qty: i64) {
        self.inner.lock().store.set_physical(warehouse_id, sku, qty);
    }

    /// Seed allocated stock (no audit record). Panics on an unknown warehouse or SKU.
    pub fn set_allocated(&self, warehouse_id: u64, sku: &str, qty: i64) {
        self.inner
            .lock()
            .store
            .set_allocated(warehouse_id, sku, qty);
    }

    /// `None` if the warehouse or SKU is unknown; zeros if they are known but never stocked.
    pub fn stock(&self, warehouse_id: u64, sku: &str) -> Option<StockLevel> {
        self.inner.lock().store.stock(warehouse_id, sku)
    }

    /// The audit trail, oldest first.
    pub fn stock_changes(&self) -> Vec<StockChangeRecord> {
        self.inner.lock().store.stock_changes()
    }

    /// Mutation root fields applied (rejected ones, with userErrors or refused, not counted).
    pub fn mutation_count(&self) -> u64 {
        self.inner.mutations.load(Ordering::SeqCst)
    }

    /// Every HTTP request that reached `/graphql`, whatever its fate.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// 429s answered, injected ones included.
    pub fn rate_limited_count(&self) -> u64 {
        self.inner.rate_limited.load(Ordering::SeqCst)
    }

    /// Queue a fault for the next mutation request. Faults are consumed one per request, in
    /// the order queued; queue several for a burst (e.g. five `RateLimited`).
    pub fn inject(&self, fault: Fault) {
        self.inject_on(FaultTarget::Mutations, fault);
    }

    /// Queue a fault for the next request matching `target`.
    pub fn inject_on(&self, target: FaultTarget, fault: Fault) {
        self.inner.lock().faults.push_back((target, fault));
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        self.inner.lock().faults.len()
    }

    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// Delay added to every request.
    pub fn set_latency(&self, d: Duration) {
        self.inner.lock().latency = d;
    }

    pub fn set_rate_limits_enabled(&self, enabled: bool) {
        self.inner.lock().rate_limits_enabled = enabled;
    }

    /// Refill every rate-limit bucket.
    pub fn reset_rate_limits(&self) {
        self.inner.lock().limiter.reset(Instant::now());
    }

    /// What the `rateLimits` query would report now.
    pub fn rate_limits(&self) -> Vec<RateLimitStatus> {
        self.inner.lock().limiter.status(Instant::now())
    }

    /// Base URL of an Order-API plugin (`<base>/order` creates orders).
    pub fn order_api_base(&self, plugin: &str) -> String {
        format!("http://{}/order-api/{plugin}", self.addr)
    }

    /// An Order-API plugin of DTC store `store_id`, answering to `API-Authorization: <secret>`.
    pub fn add_order_plugin(&self, plugin: &str, secret: &str, store_id: u64) {
        self.inner
            .lock()
            .orders
            .add_plugin(plugin, secret, store_id);
    }

    pub fn add_market(&self, id: u64, store_id: u64) {
        self.inner.lock().orders.add_market(id, store_id);
    }

    pub fn add_pricelist(&self, id: u64, store_id: u64, currency: &str) {
        self.inner
            .lock()
            .orders
            .add_pricelist(id, store_id, currency);
    }

    pub fn add_shipping_option(&self, uri: &str, store_id: u64) {
        self.inner.lock().orders.add_shipping_option(uri, store_id);
    }

    /// Once set, an order whose `payment.id` differs is refused (-7); unset, any id is taken.
    pub fn set_payment_plugin(&self, id: u64) {
        self.inner.lock().orders.set_payment_plugin(Some(id));
    }

    /// Units of a SKU orders may allocate. SKUs never set are unlimited.
    pub fn set_order_stock(&self, sku: &str, qty: i64) {
        self.inner.lock().orders.set_order_stock(sku, qty);
    }

    /// What is left of [`CentraSim::set_order_stock`]; `None` when unlimited.
    pub fn order_stock(&self, sku: &str) -> Option<i64> {
        self.inner.lock().orders.order_stock(sku)
    }

    /// Lines of this SKU ship from another allocation: they go into a second order.
    pub fn set_split_sku(&self, sku: &str) {
        self.inner.lock().orders.set_split_sku(sku);
    }

    /// `customerRegister: true` with this e-mail fails with -6.
    pub fn block_customer_registration(&self, email: &str) {
        self.inner.lock().orders.block_customer_registration(email);
    }

    /// Order-API create requests that created orders (a split counts once).
    pub fn order_create_count(&self) -> u64 {
        self.inner.order_creates.load(Ordering::SeqCst)
    }

    /// Every HTTP request that reached the Order API, whatever its fate.
    pub fn order_api_request_count(&self) -> u64 {
        self.inner.order_api_requests.load(Ordering::SeqCst)
    }

    /// Every stored order, by number.
    pub fn orders(&self) -> Vec<SimOrder> {
        self.inner.lock().orders.orders()
    }

    pub fn order(&self, number: u64) -> Option<SimOrder> {
        self.inner.lock().orders.order(number)
    }

    /// Customers created by orders (guests included), oldest first.
    pub fn customers(&self) -> Vec<SimCustomer> {
        self.inner.lock().orders.customers()
    }

    /// Operator action. Panics on an unknown order or a status outside [`ORDER_STATUSES`].
    pub fn set_order_status(&self, number: u64, status: &str) {
        self.inner
            .lock()
            .orders
            .set_status(number, status, Utc::now());
    }

    /// Operator action: a shipped, not yet captured shipment. Returns its id.
    pub fn add_shipment(&self, number: u64) -> u64 {
        self.inner.lock().orders.add_shipment(number, Utc::now())
    }

    /// Operator action: a successful CAPTURE payment entry (marks the latest shipment captured).
    pub fn capture(&self, number: u64, amount: f64) {
        self.inner.lock().orders.capture(number, amount, Utc::now());
    }

    /// Operator action: a return and a successful REFUND payment entry. Returns the return id.
    pub fn refund(&self, number: u64, amount: f64) -> u64 {
        self.inner.lock().orders.refund(number, amount, Utc::now())
    }

    /// Wait until no request is being processed (e.g. one whose client timed out).
    pub async fn wait_idle(&self) {
        crate::http::wait_idle(&self.inner.in_flight).await;
    }

    /// Stop accepting connections and wait (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Drop for CentraSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn endpoint(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let counter = inner.in_flight.clone();
    crate::http::run_detached(&counter, "Centra", async move {
        process(&inner, &headers, &body).await
    })
    .await
}

async fn process(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let latency = inner.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    if !authorized(headers, &inner.config.token) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"message": "Unauthorized", "extensions": {"category": "authentication"}}]}),
        );
    }

    let request = match crate::http::parse_graphql_request(body) {
        Ok(r) => r,
        Err(message) => return bad_request(message),
    };

    let op = match graphql::prepare(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(op) => op,
        Err(e) => return errors_response(vec![e]),
    };
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for field in &op.fields {
        if field.name == "__typename" {
            continue;
        }
        match schema::plan(op.kind, field) {
            Ok(call) => calls.push((field, call)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return errors_response(errors);
    }

    let fault = {
        let mut st = inner.lock();
        let kind = RequestKind::Graphql(op.kind);
        let pos = st.faults.iter().position(|(t, _)| t.matches(kind));
        pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
    };
    let mut lose_response = false;
    match fault {
        Some(Fault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = status.canonical_reason().unwrap_or("Server Error");
            return (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("{} {text}", status.as_u16()),
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after }) => return too_many_requests(inner, retry_after),
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        Some(Fault::LoseResponseAfterApply) => lose_response = true,
        None => {}
    }

    let cost = Cost {
        requests: 1,
        mutations: calls.iter().filter(|(_, c)| c.is_mutation()).count() as u64,
        complexity: complexity(&op.fields),
    };
    let mut st = inner.lock();
    if st.rate_limits_enabled {
        if let Err(wait) = st.limiter.try_acquire(cost, Instant::now()) {
            drop(st);
            return too_many_requests(inner, wait);
        }
    }

    let now = Utc::now();
    let mut data = Map::new();
    let mut errors = Vec::new();
    for (field, call) in &calls {
        let key = field.response_key().to_string();
        let value = match call {
            Call::ChangeStock(input) => {
                let outcome = st.store.change_stock(input, now);
                if outcome.applied {
                    inner.mutations.fetch_add(1, Ordering::SeqCst);
                }
                Ok(outcome.payload)
            }
            Call::SetStock(input) => {
                let outcome = st.store.set_stock(input, now);
                if outcome.applied {
                    inner.mutations.fetch_add(1, Ordering::SeqCst);
                }
                Ok(outcome.payload)
            }
            Call::StockChangeConnection(args) => st.store.stock_change_connection(args),
            Call::Warehouses { ids, page } => st.store.warehouses(ids.as_deref(), page),
            Call::ProductSizes { filter, page } => st.store.product_sizes(filter, page),
            Call::Products(args) => st.catalogue.products(&st.store, args),
            Call::RateLimits => Ok(rate_limits_json(&mut st.limiter)),
            Call::Orders { filter, page } => st.orders.query_orders(filter, page),
            Call::Shipments { ids, page } => st.orders.query_shipments(ids.as_deref(), page),
            Call::Returns { ids, page } => st.orders.query_returns(ids.as_deref(), page),
        };
        let store = &st.store;
        let shaped = value.and_then(|v| {
            graphql::project(&v, &field.selection, &mut |parent, f| {
                store.nested(parent, f).map(|r| r.map_err(|e| locate(e, f)))
            })
        });
        match shaped {
            Ok(v) => {
                data.insert(key, v);
            }
            Err(e) => {
                let e = locate(e, field).with_path(vec![json!(key)]);
                errors.push(e.to_json());
                data.insert(key, Value::Null);
            }
        }
    }
    drop(st);
    for field in &op.fields {
        if field.name == "__typename" {
            data.insert(field.response_key().to_string(), json!(op.kind.type_name()));
        }
    }

    let mut response = Map::new();
    response.insert("data".into(), Value::Object(data));
    if !errors.is_empty() {
        response.insert("errors".into(), Value::Array(errors));
    }
    if lose_response {
        return broken_response();
    }
    json_response(StatusCode::OK, Value::Object(response))
}

async fn order_endpoint(
    State(inner): State<Arc<Inner>>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.order_api_requests.fetch_add(1, Ordering::SeqCst);
    let counter = inner.in_flight.clone();
    crate::http::run_detached(&counter, "Centra Order API", async move {
        process_order(&inner, &plugin, &headers, &body).await
    })
    .await
}

/// `{"status":"no","msg":...}` (auth failures carry no code).
fn order_api_refusal(status: StatusCode, msg: &str) -> Response {
    json_response(status, json!({"status": "no", "msg": msg}))
}

async fn process_order(inner: &Inner, plugin: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let latency = inner.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let secret = inner.lock().orders.plugin(plugin).map(|p| p.secret.clone());
    let Some(secret) = secret else {
        // UNVERIFIED: what Centra answers for a plugin URL that does not exist.
        return order_api_refusal(StatusCode::NOT_FOUND, "Unknown Order API plugin");
    };
    let given = headers
        .get("api-authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if given != Some(secret.as_str()) {
        return order_api_refusal(StatusCode::UNAUTHORIZED, "Authorization failed");
    }

    let fault = {
        let mut st = inner.lock();
        let pos = st
            .faults
            .iter()
            .position(|(t, _)| t.matches(RequestKind::OrderApi));
        pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
    };
    let mut lose_response = false;
    match fault {
        Some(Fault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = status.canonical_reason().unwrap_or("Server Error");
            return (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("{} {text}", status.as_u16()),
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after }) => {
            return too_many_requests_with(
                inner,
                retry_after,
                json!({"status": "no", "msg": "Too many requests"}),
            );
        }
        Some(Fault::Hang(d)) => {
            // By now the client has given up; the order is never created.
            tokio::time::sleep(d).await;
            return order_api_refusal(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout");
        }
        Some(Fault::LoseResponseAfterApply) => lose_response = true,
        None => {}
    }

    // UNVERIFIED: the HTTP status of Order-API errors (reference §5a gives only the body);
    // 400 is the simulator's choice, and clients should read the body whatever the status.
    let refuse = |code: i64, msg: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({"status": "no", "code": code, "msg": msg}),
        )
    };
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return refuse(-7, format!("Invalid JSON body: {e}")),
    };
    let created = {
        let mut st = inner.lock();
        let st = &mut *st;
        st.orders.create(plugin, &request, &st.store, Utc::now())
    };
    match created {
        Ok(numbers) => {
            inner.order_creates.fetch_add(1, Ordering::SeqCst);
            if lose_response {
                return broken_response();
            }
            json_response(StatusCode::OK, json!({"status": "ok", "orders": numbers}))
        }
        Err(r) => refuse(r.code, r.msg),
    }
}

fn locate(e: GraphqlError, field: &SelectedField) -> GraphqlError {
    if e.locations.is_empty() {
        e.at(field.location)
    } else {
        e
    }
}

/// `Authorization: Bearer <token>`, or the `graphql-access` cookie Centra also accepts.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == "graphql-access" && v == token);
    bearer || cookie
}

/// Roughly one point per selected field; `freeToAllocateQuantity` is free, as Centra documents.
fn complexity(fields: &[SelectedField]) -> u64 {
    graphql::count_fields(fields, &|f| u64::from(f.name != "freeToAllocateQuantity"))
}

fn rate_limits_json(limiter: &mut RateLimiter) -> Value {
    let rows: Vec<Value> = limiter
        .status(Instant::now())
        .into_iter()
        .map(|s| {
            json!({
                "__typename": "RateLimit",
                "type": s.limit_type.as_str(),
                "intervalSeconds": s.interval.as_str(),
                "quota": s.quota,
                "usedQuota": s.used_quota,
                "remainingQuota": s.remaining_quota,
            })
        })
        .collect();
    Value::Array(rows)
}

fn too_many_requests(inner: &Inner, wait: Duration) -> Response {
    too_many_requests_with(
        inner,
        wait,
        json!({"errors": [{"message": "Too many requests"}]}),
    )
}

fn too_many_requests_with(inner: &Inner, wait: Duration, body: Value) -> Response {
    inner.rate_limited.fetch_add(1, Ordering::SeqCst);
    let value = retry_after_value(inner.config.retry_after_style, wait, SystemTime::now());
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, body);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Both styles round up, so a client that obeys the header never comes back too early.
fn retry_after_value(style: RetryAfterStyle, wait: Duration, now: SystemTime) -> String {
    match style {
        RetryAfterStyle::Seconds => wait.as_secs_f64().ceil().max(1.0).to_string(),
        RetryAfterStyle::HttpDate => {
            let at: DateTime<Utc> = (now + wait).into();
            let mut secs = at.timestamp();
            if at.timestamp_subsec_nanos() > 0 {
                secs += 1;
            }
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(at);
            at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"errors": [{"message": message, "extensions": {"category": "request"}}]}),
    )
}

fn errors_response(errors: Vec<GraphqlError>) -> Response {
    let errors: Vec<Value> = errors.iter().map(GraphqlError::to_json).collect();
    json_response(StatusCode::OK, json!({ "errors": errors }))
}

/// Status and headers go out, then the body fails part-way: hyper aborts the connection,
/// and the client sees an error instead of the (already applied) result.
fn broken_response() -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"data\":{")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection loss",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_in_both_styles() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let wait = Duration::from_millis(500);
        assert_eq!(retry_after_value(RetryAfterStyle::Seconds, wait, now), "1");
        assert_eq!(
            retry_after_value(RetryAfterStyle::Seconds, Duration::from_millis(2001), now),
            "3"
        );
        // 1_700_000_000.75 s rounds up to 1_700_000_001 s.
        assert_eq!(
            retry_after_value(RetryAfterStyle::HttpDate, wait, now),
            "Tue, 14 Nov 2023 22:13:21 GMT"
        );
    }

    #[test]
    fn auth_accepts_bearer_or_cookie_only_with_the_token() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(!authorized(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(authorized(&h, "t"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; graphql-access=t"),
        );
        assert!(authorized(&h, "t"));
    }
}
