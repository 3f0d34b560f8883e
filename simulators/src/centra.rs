//! A loopback simulator of Centra's Integration API (GraphQL over `POST /graphql`), limited to
//! what the integration uses: `changeStock`, `setStock`, `stockChangeConnection`,
//! `warehouses { stock stockChanges }`, `productSizes`, `products`, `rateLimits` and the order reads
//! `orders`, `shipments`, `returns`. The same server answers the Order API (`POST /order-api/<plugin>/order`,
//! see [`orders`]), as one Centra instance serves both. It serves the published schema
//! (`schema/centra/integration-subset.graphql`, or another SDL a test gives), answers introspection, enforces
//! Centra's auth, rate limits and error shapes, models Centra's awkward answers to stock mutations
//! ([`CentraBehaviour`], [`CentraSim::refuse_size`], [`Fault`]), logs every request, and lets tests seed data,
//! inject faults and inspect state, in process or over the control API (`/_sim`, see [`crate::control`]).
//!
//! Ordering of a request: count it → configured latency → auth (401) → JSON body (400) →
//! validation against the schema: document, operation, variables (200 with `errors[]`, no `data`,
//! no fault or token used) → what the simulator cannot run (same shape, category `simulator`) →
//! the next matching injected fault → rate limits (429) → execution. Every request runs in its own
//! task, so a mutation whose client gave up (timeout, dropped connection) still completes,
//! as it would on a real server; [`CentraSim::wait_idle`] waits for such stragglers.
//!
//! Order API requests: count → latency → plugin (404) → `API-Authorization` (401) → the next
//! fault aimed at them → create. The GraphQL rate limiter does not apply to them (the Order
//! API's own limits are undocumented).

mod catalogue;
mod control_api;
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
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use catalogue::{SimCatalogueIds, PRODUCT_STATUSES};
pub use orders::{
    SimAddress, SimCustomer, SimOrder, SimOrderLine, SimPaymentEntry, SimReturn, SimShipment,
    ORDER_STATUSES,
};
pub use rate_limit::{Interval, LimitType, RateLimitStatus, RateTier, TierQuotas};
pub use store::{
    CentraBehaviour, DuplicateSizes, PathStyle, RefusalKind, SizeRefusal, StockChangeKind,
    StockChangeLineRecord, StockChangeRecord, StockLevel, UnknownSizes,
};

use crate::graphql::{self, GraphqlError, OperationKind, SelectedField};
use crate::schema::{SchemaError, ServedSchema};
use orders::OrderBook;
use rate_limit::{Cost, RateLimiter};
use schema::Call;
use store::Store;

/// How the `Retry-After` header of a 429 is written. Every style rounds up to a whole second, so a
/// client that obeys the header never comes back before the buckets allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterStyle {
    /// An HTTP-date (Centra's documentation says the header holds a timestamp).
    #[default]
    HttpDate,
    /// Delta seconds.
    Seconds,
    /// Unix timestamp in seconds (another reading of "a timestamp").
    UnixTimestamp,
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
    /// Serve this SDL instead of `schema/centra/integration-subset.graphql` (e.g. a schema that differs,
    /// to test `shelfsync centra-check`). Panics at start if it is not a valid schema.
    pub schema_sdl: Option<String>,
    /// Serve the control API under `/_sim` (always on in the `centra-sim` binary).
    pub control_api: bool,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The answers to awkward stock mutations at start.
    pub behaviour: CentraBehaviour,
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
            schema_sdl: None,
            control_api: false,
            port: 0,
            behaviour: CentraBehaviour::default(),
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
    /// Apply the request, then answer this HTTP status (e.g. 504 from a gateway) with a short
    /// non-JSON body.
    ApplyThenStatus(u16),
    /// GraphQL: apply the request and answer its `data` together with `errors: [{message, path:
    /// [<first root field>]}]`. Order API: answered normally.
    ErrorsBesideData { message: String },
}

/// Which requests a queued fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Mutation requests only (the default of [`CentraSim::inject`]).
    Mutations,
    /// Query requests only (e.g. the audit-trail scan or stock reads).
    Queries,
    /// Any request that passed auth and validation, GraphQL or Order API.
    #[serde(rename = "any")]
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

/// The kind of a logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestLogKind {
    Query,
    Mutation,
    OrderApi,
    /// Refused before an operation was known (auth, body, validation).
    Unknown,
}

/// One request as the simulator saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// When it arrived, Unix ms.
    pub received_at_ms: i64,
    pub kind: RequestLogKind,
    pub operation_name: Option<String>,
    /// Root field names (not aliases), `__typename` left out.
    pub root_fields: Vec<String>,
    /// Mutations: the `description` of each stock mutation's input, in order.
    pub descriptions: Vec<String>,
    /// HTTP status answered (200 also when the body was then cut, see `response_lost`).
    pub status: u16,
    /// Something was written (a stock change, an order).
    pub applied: bool,
    /// The body was cut off after the status went out.
    pub response_lost: bool,
    /// 429s: the instant the `Retry-After` header states, Unix ms.
    pub retry_at_ms: Option<i64>,
}

impl RequestLogEntry {
    fn new(kind: RequestLogKind) -> Self {
        RequestLogEntry {
            received_at_ms: Utc::now().timestamp_millis(),
            kind,
            operation_name: None,
            root_fields: Vec::new(),
            descriptions: Vec::new(),
            status: 0,
            applied: false,
            response_lost: false,
            retry_at_ms: None,
        }
    }
}

/// Entries kept; the oldest go first past this (a long benchmark must not grow without bound).
const REQUEST_LOG_LIMIT: usize = 200_000;

struct Mutable {
    store: Store,
    catalogue: catalogue::Catalogue,
    orders: OrderBook,
    limiter: RateLimiter,
    tier: RateTier,
    short_window: Duration,
    long_window: Duration,
    faults: VecDeque<(FaultTarget, Fault)>,
    latency: Duration,
    rate_limits_enabled: bool,
    retry_after_style: RetryAfterStyle,
    log: VecDeque<RequestLogEntry>,
}

impl Mutable {
    /// A size under its own one-variant product numbered by its SKU.
    fn add_lone_size(
        &mut self,
        sku: &str,
        ean: Option<&str>,
        upc: Option<&str>,
        active: bool,
    ) -> u64 {
        let now = Utc::now();
        let id = self.store.add_size(sku, ean, upc, active);
        let product_id = self.catalogue.product_by_number(sku, now);
        let variant_id = self.catalogue.variant_by_number(product_id, "-");
        self.catalogue.add_variant_size(variant_id, id, "-");
        self.catalogue.touch(product_id, now);
        id
    }
}

impl Mutable {
    fn rebuild_limiter(&mut self) {
        self.limiter = RateLimiter::new(
            self.tier,
            self.short_window,
            self.long_window,
            Instant::now(),
        );
    }

    fn push_log(&mut self, entry: RequestLogEntry) {
        if self.log.len() >= REQUEST_LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }
}

struct Inner {
    config: CentraSimConfig,
    schema: Arc<ServedSchema>,
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
    /// Start on 127.0.0.1 (`config.port`, 0 for a free one). Needs a Tokio runtime. Panics if the port
    /// is taken or `config.schema_sdl` is not a valid schema.
    pub async fn start(config: CentraSimConfig) -> CentraSim {
        let schema = match &config.schema_sdl {
            None => crate::schema::centra_schema(),
            Some(sdl) => Arc::new(
                ServedSchema::parse(sdl, "alternative-centra-schema.graphql")
                    .unwrap_or_else(|e| panic!("CentraSimConfig::schema_sdl is not valid: {e}")),
            ),
        };
        let limiter = RateLimiter::new(
            config.tier,
            config.short_window,
            config.long_window,
            Instant::now(),
        );
        let mut store = Store::default();
        store.behaviour = config.behaviour;
        let inner = Arc::new(Inner {
            state: Mutex::new(Mutable {
                store,
                catalogue: catalogue::Catalogue::default(),
                orders: OrderBook::default(),
                limiter,
                tier: config.tier,
                short_window: config.short_window,
                long_window: config.long_window,
                faults: VecDeque::new(),
                latency: Duration::ZERO,
                rate_limits_enabled: config.rate_limits_enabled,
                retry_after_style: config.retry_after_style,
                log: VecDeque::new(),
            }),
            schema,
            config,
            requests: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            order_api_requests: AtomicU64::new(0),
            order_creates: AtomicU64::new(0),
            in_flight: watch::channel(0).0,
        });
        let mut app = Router::new()
            .route("/graphql", post(endpoint))
            .route("/order-api/{plugin}/order", post(order_endpoint));
        if inner.config.control_api {
            app = app.nest("/_sim", control_api::router());
        }
        let app = app.with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", inner.config.port))
            .await
            .expect("bind 127.0.0.1 for the Centra simulator");
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

    /// Base URL of the control API (served when `config.control_api` is on).
    pub fn control_url(&self) -> String {
        format!("http://{}/_sim", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.inner.config.token
    }

    /// The schema requests are validated against.
    pub fn schema(&self) -> Arc<ServedSchema> {
        self.inner.schema.clone()
    }

    /// The current answers to awkward stock mutations.
    pub fn behaviour(&self) -> CentraBehaviour {
        self.inner.lock().store.behaviour
    }

    pub fn set_behaviour(&self, behaviour: CentraBehaviour) {
        self.inner.lock().store.behaviour = behaviour;
    }

    /// From now on, refuse this (known) size in stock mutations as `refusal` says; `None` lifts it.
    pub fn refuse_size(&self, sku: &str, refusal: Option<SizeRefusal>) {
        let mut st = self.inner.lock();
        match refusal {
            Some(r) => st.store.refusals.insert(sku.to_string(), r),
            None => st.store.refusals.remove(sku),
        };
    }

    /// Add `count` stock changes by someone else to a warehouse's audit trail (other comments, no lines,
    /// no effect on stock), as on a busy environment. Returns their ids. Panics on an unknown warehouse.
    pub fn add_unrelated_stock_changes(&self, warehouse_id: u64, count: usize) -> Vec<u64> {
        let mut st = self.inner.lock();
        assert!(
            st.store.has_warehouse(warehouse_id),
            "simulated Centra has no warehouse {warehouse_id}"
        );
        st.store
            .add_unrelated_stock_changes(warehouse_id, count, Utc::now())
    }

    /// Every request so far (GraphQL and Order API), oldest first.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.inner.lock().log.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.inner.lock().log.clear();
    }

    /// Every warehouse × size, zeros included: `(warehouse id, size id, SKU, level)`.
    pub fn stock_table(&self) -> Vec<(u64, u64, String, StockLevel)> {
        self.inner.lock().store.stock_table()
    }

    pub fn config(&self) -> &CentraSimConfig {
        &self.inner.config
    }

    pub fn add_warehouse(&self, id: u64, name: &str) {
        self.inner.lock().store.add_warehouse(id, name);
    }

    /// Add a size; returns its ProductSize id. Panics on a duplicate SKU.
    /// A size of its own one-variant product (product number = the SKU), as every Centra size belongs to a
    /// product: the catalogue read (`products`) lists it. [`CentraSim::add_product`] builds richer ones.
    pub fn add_size(&self, sku: &str, ean: Option<&str>, active: bool) -> u64 {
        self.add_size_with_upc(sku, ean, None, active)
    }

    /// Like [`CentraSim::add_size`], with a UPC as well.
    pub fn add_size_with_upc(
        &self,
        sku: &str,
        ean: Option<&str>,
        upc: Option<&str>,
        active: bool,
    ) -> u64 {
        let mut st = self.inner.lock();
        let st = &mut *st;
        st.add_lone_size(sku, ean, upc, active)
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

    pub fn set_retry_after_style(&self, style: RetryAfterStyle) {
        self.inner.lock().retry_after_style = style;
    }

    /// Another tier; the buckets start full.
    pub fn set_tier(&self, tier: RateTier) {
        let mut st = self.inner.lock();
        st.tier = tier;
        st.rebuild_limiter();
    }

    /// Another real length of the "10 second" window; the buckets start full.
    pub fn set_short_window(&self, window: Duration) {
        let mut st = self.inner.lock();
        st.short_window = window;
        st.rebuild_limiter();
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

    /// Requests being processed now.
    pub fn in_flight(&self) -> usize {
        *self.inner.in_flight.borrow()
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
        let mut entry = RequestLogEntry::new(RequestLogKind::Unknown);
        let response = process(&inner, &headers, &body, &mut entry).await;
        entry.status = response.status().as_u16();
        inner.lock().push_log(entry);
        response
    })
    .await
}

/// A fault's effect once the request has run.
enum AfterRun {
    Answer,
    LoseResponse,
    Status(u16),
    ErrorsBesideData(String),
}

async fn process(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
    entry: &mut RequestLogEntry,
) -> Response {
    let (request, checked) = match check_request(inner, headers, body, entry).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let op = match graphql::prepare(
        &request.query,
        checked.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(op) => op,
        Err(e) => return errors_response(vec![e]),
    };
    let calls = match plan_calls(&op, entry) {
        Ok(calls) => calls,
        Err(errors) => return errors_response(errors),
    };
    let after = match take_fault(inner, op.kind, entry).await {
        Ok(after) => after,
        Err(response) => return response,
    };

    let cost = Cost {
        requests: 1,
        mutations: calls.iter().filter(|(_, c)| c.is_mutation()).count() as u64,
        complexity: complexity(&op.fields),
    };
    let mut st = inner.lock();
    if st.rate_limits_enabled {
        if let Err(wait) = st.limiter.try_acquire(cost, Instant::now()) {
            drop(st);
            return too_many_requests(inner, wait, entry);
        }
    }

    let (mut data, mut errors) = run_calls(inner, &mut st, &calls, entry);
    drop(st);
    if checked.introspection {
        match inner.schema.introspect(&checked, &request.variables) {
            Ok(part) => data.extend(part),
            Err(e) => errors.extend(e.iter().map(|e| schema_error_json(e, "graphql"))),
        }
    }
    for field in &op.fields {
        if field.name == "__typename" {
            data.insert(field.response_key().to_string(), json!(op.kind.type_name()));
        }
    }

    answer(after, &op, data, errors, entry)
}

/// Waits the configured latency, then checks the token and the request against the published schema; the
/// request and what the schema found in it, or the answer refusing it.
async fn check_request(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
    entry: &mut RequestLogEntry,
) -> Result<(crate::http::GraphqlRequest, crate::schema::CheckedRequest), Response> {
    let latency = inner.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    if !authorized(headers, &inner.config.token) {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"message": "Unauthorized", "extensions": {"category": "authentication"}}]}),
        ));
    }

    let request = match crate::http::parse_graphql_request(body) {
        Ok(r) => r,
        Err(message) => return Err(bad_request(message)),
    };

    // The published schema decides what is a valid request, before anything else looks at it.
    let checked = match inner.schema.check_request(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(c) => c,
        Err(errors) => return Err(schema_errors_response(&errors)),
    };
    entry.kind = match checked.kind {
        OperationKind::Mutation => RequestLogKind::Mutation,
        _ => RequestLogKind::Query,
    };
    entry.operation_name = checked.operation_name.clone();
    entry.root_fields = checked.root_fields.clone();
    Ok((request, checked))
}

/// The call each root field of the operation makes (introspection fields aside), with the stock changes'
/// descriptions logged; or the errors of the fields that make none.
fn plan_calls<'o>(
    op: &'o graphql::Operation,
    entry: &mut RequestLogEntry,
) -> Result<Vec<(&'o SelectedField, Call)>, Vec<GraphqlError>> {
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for field in &op.fields {
        if matches!(field.name.as_str(), "__typename" | "__schema" | "__type") {
            continue;
        }
        match schema::plan(op.kind, field) {
            Ok(call) => calls.push((field, call)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (_, call) in &calls {
        match call {
            Call::ChangeStock(input) => entry.descriptions.push(input.description.clone()),
            Call::SetStock(input) => entry.descriptions.push(input.description.clone()),
            _ => {}
        }
    }
    Ok(calls)
}

/// Takes the first fault armed for this kind of request: its answer when it answers before the request runs
/// (after hanging, when it hangs), or what it does once the request has run.
async fn take_fault(
    inner: &Inner,
    kind: OperationKind,
    entry: &mut RequestLogEntry,
) -> Result<AfterRun, Response> {
    let fault = {
        let mut st = inner.lock();
        let kind = RequestKind::Graphql(kind);
        let pos = st.faults.iter().position(|(t, _)| t.matches(kind));
        pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
    };
    let mut after = AfterRun::Answer;
    match fault {
        Some(Fault::ServerError(status)) => return Err(status_response(status)),
        Some(Fault::RateLimited { retry_after }) => {
            return Err(too_many_requests(inner, retry_after, entry))
        }
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        Some(Fault::LoseResponseAfterApply) => after = AfterRun::LoseResponse,
        Some(Fault::ApplyThenStatus(status)) => after = AfterRun::Status(status),
        Some(Fault::ErrorsBesideData { message }) => after = AfterRun::ErrorsBesideData(message),
        None => {}
    }
    Ok(after)
}

/// Runs the calls against the simulated Centra: each root field's data, and the errors of those that failed.
fn run_calls(
    inner: &Inner,
    st: &mut Mutable,
    calls: &[(&SelectedField, Call)],
    entry: &mut RequestLogEntry,
) -> (Map<String, Value>, Vec<Value>) {
    let now = Utc::now();
    let mut data = Map::new();
    let mut errors = Vec::new();
    for (field, call) in calls {
        let key = field.response_key().to_string();
        let value = match call {
            Call::ChangeStock(input) => {
                let outcome = st.store.change_stock(input, now);
                if outcome.applied {
                    inner.mutations.fetch_add(1, Ordering::SeqCst);
                    entry.applied = true;
                }
                Ok(outcome.payload)
            }
            Call::SetStock(input) => {
                let outcome = st.store.set_stock(input, now);
                if outcome.applied {
                    inner.mutations.fetch_add(1, Ordering::SeqCst);
                    entry.applied = true;
                }
                Ok(outcome.payload)
            }
            Call::StockChangeConnection(args) => st.store.stock_change_connection(args),
            Call::Warehouses { ids, name, page } => {
                st.store.warehouses(ids.as_deref(), name.as_ref(), page)
            }
            Call::ProductSizes { filter, page } => st.store.product_sizes(filter, page),
            Call::Products(args) => st.catalogue.products(&st.store, args),
            Call::RateLimits { types, intervals } => Ok(rate_limits_json(
                &mut st.limiter,
                types.as_deref(),
                intervals.as_deref(),
            )),
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
    (data, errors)
}

/// The response body, with what the fault does once the request has run.
fn answer(
    after: AfterRun,
    op: &graphql::Operation,
    data: Map<String, Value>,
    mut errors: Vec<Value>,
    entry: &mut RequestLogEntry,
) -> Response {
    let mut response = Map::new();
    response.insert("data".into(), Value::Object(data));
    match after {
        AfterRun::Answer => {}
        AfterRun::LoseResponse => {
            entry.response_lost = true;
            return broken_response();
        }
        AfterRun::Status(status) => return status_response(status),
        AfterRun::ErrorsBesideData(message) => {
            let key = op
                .fields
                .iter()
                .find(|f| !f.name.starts_with("__"))
                .map(|f| f.response_key().to_string());
            errors.push(json!({
                "message": message,
                "path": key.into_iter().collect::<Vec<_>>(),
                "extensions": {"category": "internal"},
            }));
        }
    }
    if !errors.is_empty() {
        response.insert("errors".into(), Value::Array(errors));
    }
    json_response(StatusCode::OK, Value::Object(response))
}

/// A status with a short non-JSON body, as a gateway or a crashed backend answers.
fn status_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = status.canonical_reason().unwrap_or("Server Error");
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!(
            "<html><body><h1>{} {text}</h1></body></html>",
            status.as_u16()
        ),
    )
        .into_response()
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
        let mut entry = RequestLogEntry::new(RequestLogKind::OrderApi);
        let response = process_order(&inner, &plugin, &headers, &body, &mut entry).await;
        entry.status = response.status().as_u16();
        inner.lock().push_log(entry);
        response
    })
    .await
}

/// `{"status":"no","msg":...}` (auth failures carry no code).
fn order_api_refusal(status: StatusCode, msg: &str) -> Response {
    json_response(status, json!({"status": "no", "msg": msg}))
}

async fn process_order(
    inner: &Inner,
    plugin: &str,
    headers: &HeaderMap,
    body: &[u8],
    entry: &mut RequestLogEntry,
) -> Response {
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

    let after = match order_api_fault(inner, entry).await {
        Ok(after) => after,
        Err(response) => return response,
    };

    // UNVERIFIED: the HTTP status of Order-API errors (Centra documents only the body; codes in
    // docs/orders.md §2);
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
            entry.applied = true;
            match after {
                AfterRun::LoseResponse => {
                    entry.response_lost = true;
                    return broken_response();
                }
                AfterRun::Status(status) => return status_response(status),
                AfterRun::Answer | AfterRun::ErrorsBesideData(_) => {}
            }
            json_response(StatusCode::OK, json!({"status": "ok", "orders": numbers}))
        }
        Err(r) => refuse(r.code, r.msg),
    }
}

/// Takes the first queued fault for the Order API and acts on it: `Err` is the answer to send
/// instead of creating anything, `Ok` what to do after creating.
async fn order_api_fault(inner: &Inner, entry: &mut RequestLogEntry) -> Result<AfterRun, Response> {
    let fault = {
        let mut st = inner.lock();
        let pos = st
            .faults
            .iter()
            .position(|(t, _)| t.matches(RequestKind::OrderApi));
        pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
    };
    let mut after = AfterRun::Answer;
    match fault {
        Some(Fault::ServerError(status)) => return Err(status_response(status)),
        Some(Fault::RateLimited { retry_after }) => {
            return Err(too_many_requests_with(
                inner,
                retry_after,
                json!({"status": "no", "msg": "Too many requests"}),
                entry,
            ));
        }
        Some(Fault::Hang(d)) => {
            // By now the client has given up; the order is never created.
            tokio::time::sleep(d).await;
            return Err(order_api_refusal(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway Timeout",
            ));
        }
        Some(Fault::LoseResponseAfterApply) => after = AfterRun::LoseResponse,
        Some(Fault::ApplyThenStatus(status)) => after = AfterRun::Status(status),
        Some(Fault::ErrorsBesideData { .. }) | None => {}
    }
    Ok(after)
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

fn rate_limits_json(
    limiter: &mut RateLimiter,
    types: Option<&[String]>,
    intervals: Option<&[String]>,
) -> Value {
    let rows: Vec<Value> = limiter
        .status(Instant::now())
        .into_iter()
        .filter(|s| {
            types.is_none_or(|t| t.iter().any(|t| t == s.limit_type.as_str()))
                && intervals.is_none_or(|i| i.iter().any(|i| i == s.interval.as_str()))
        })
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

fn too_many_requests(inner: &Inner, wait: Duration, entry: &mut RequestLogEntry) -> Response {
    too_many_requests_with(
        inner,
        wait,
        json!({"errors": [{"message": "Too many requests"}]}),
        entry,
    )
}

fn too_many_requests_with(
    inner: &Inner,
    wait: Duration,
    body: Value,
    entry: &mut RequestLogEntry,
) -> Response {
    inner.rate_limited.fetch_add(1, Ordering::SeqCst);
    let style = inner.lock().retry_after_style;
    let (value, retry_at_ms) = retry_after_value(style, wait, SystemTime::now());
    entry.retry_at_ms = Some(retry_at_ms);
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, body);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The header value and the instant (Unix ms) it states. Every style rounds up to a whole second, so
/// the stated instant is never before the real one.
fn retry_after_value(style: RetryAfterStyle, wait: Duration, now: SystemTime) -> (String, i64) {
    let now_ms = DateTime::<Utc>::from(now).timestamp_millis();
    let at = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        + wait;
    let at_secs = at.as_secs() as i64 + i64::from(at.subsec_nanos() > 0);
    match style {
        RetryAfterStyle::Seconds => {
            let secs = (wait.as_secs_f64().ceil() as i64).max(1);
            (secs.to_string(), now_ms + secs * 1000)
        }
        RetryAfterStyle::HttpDate => {
            let at = DateTime::<Utc>::from_timestamp(at_secs, 0).unwrap_or_default();
            (
                at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                at_secs * 1000,
            )
        }
        RetryAfterStyle::UnixTimestamp => (at_secs.to_string(), at_secs * 1000),
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

fn schema_error_json(e: &SchemaError, category: &str) -> Value {
    let mut obj = Map::new();
    obj.insert("message".into(), json!(e.message));
    if !e.locations.is_empty() {
        let locs: Vec<Value> = e
            .locations
            .iter()
            .map(|l| json!({"line": l.line, "column": l.column}))
            .collect();
        obj.insert("locations".into(), Value::Array(locs));
    }
    obj.insert("extensions".into(), json!({"category": category}));
    Value::Object(obj)
}

/// A request that fails validation: HTTP 200, `errors`, no `data` (as Centra's PHP server answers).
fn schema_errors_response(errors: &[SchemaError]) -> Response {
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| schema_error_json(e, "graphql"))
        .collect();
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
    fn retry_after_rounds_up_in_every_style() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let wait = Duration::from_millis(500);
        assert_eq!(
            retry_after_value(RetryAfterStyle::Seconds, wait, now),
            ("1".to_string(), 1_700_000_001_250)
        );
        assert_eq!(
            retry_after_value(RetryAfterStyle::Seconds, Duration::from_millis(2001), now).0,
            "3"
        );
        // 1_700_000_000.75 s rounds up to 1_700_000_001 s.
        assert_eq!(
            retry_after_value(RetryAfterStyle::HttpDate, wait, now),
            (
                "Tue, 14 Nov 2023 22:13:21 GMT".to_string(),
                1_700_000_001_000
            )
        );
        assert_eq!(
            retry_after_value(RetryAfterStyle::UnixTimestamp, wait, now),
            ("1700000001".to_string(), 1_700_000_001_000)
        );
        // Exactly on a second stays there; a nanosecond past goes to the next one.
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after_value(
                RetryAfterStyle::UnixTimestamp,
                Duration::from_secs(2),
                whole
            )
            .0,
            "1700000002"
        );
        assert_eq!(
            retry_after_value(
                RetryAfterStyle::UnixTimestamp,
                Duration::from_nanos(2_000_000_001),
                whole
            )
            .0,
            "1700000003"
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
