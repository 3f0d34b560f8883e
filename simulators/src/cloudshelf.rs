//! A loopback simulator of Cloudshelf's Omnichannel ("ingest") API (GraphQL over `POST /graphql`),
//! limited to what the integration uses: `order(id)`, `orders(first, after, sortBy)`,
//! `upsertOrders(input)` and `upsertStockLevels(input)`. It enforces `Token` API-key auth and the documented query limits
//! (complexity 500, depth 20), and lets tests seed orders, inject faults and inspect state.
//!
//! Ordering of a request: count it → configured latency → auth (401) → JSON body (400) →
//! validation against `schema/cloudshelf.graphql`: document, operation, variables; then what the
//! simulator does not model, argument checks, depth and complexity (200 with `errors[]`, no `data`, no
//! fault used) → the next matching injected fault → execution. Every request runs in its own
//! task, so an upsert whose client gave up still completes, as it would on a real server;
//! [`CloudshelfSim::wait_idle`] waits for such stragglers.
//!
//! Behaviour the public material does not pin down is marked UNVERIFIED where it is chosen.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::graphql::{self, GraphqlError, OperationKind, SelectedField};

// Catalogue reads and upserts (products, variants, locations): a child module, so that it shares
// this module's stores and helpers.
#[path = "cloudshelf_catalogue.rs"]
mod catalogue;
pub use catalogue::{CatalogueVariantSnapshot, ProductSnapshot};

/// Prefix of the external ids integrators may use instead of Cloudshelf's own (upsert inputs' `id` in
/// `schema/cloudshelf.graphql`).
pub const EXTERNAL_GID_PREFIX: &str = "gid://external/";
/// Prefix the simulator gives its own order ids; the real internal prefix is UNVERIFIED.
pub const ORDER_GID_PREFIX: &str = "gid://cloudshelf/Order/";

#[derive(Debug, Clone)]
pub struct CloudshelfSimConfig {
    pub api_key: String,
    /// Documented maximum query complexity (most fields cost 1).
    pub max_complexity: u64,
    /// Documented maximum selection depth.
    pub max_depth: usize,
    /// Page size when `first` is not given. UNVERIFIED: Cloudshelf documents none.
    pub default_page_size: u64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for CloudshelfSimConfig {
    fn default() -> Self {
        CloudshelfSimConfig {
            api_key: "cloudshelf-sim-key".to_string(),
            max_complexity: 500,
            max_depth: 20,
            default_page_size: 10,
            port: 0,
        }
    }
}

/// `OrderStatus` of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderStatus {
    #[default]
    DraftBasket,
    Placed,
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::DraftBasket,
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
        OrderStatus::Voided,
    ];

    /// The GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::DraftBasket => "DRAFT_BASKET",
            OrderStatus::Placed => "PLACED",
            OrderStatus::Paid => "PAID",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Voided => "VOIDED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An order to seed. `id` may be a Cloudshelf gid (kept as the order's id) or an external gid
/// (`gid://external/<Namespace>/<id>`, then the simulator assigns a Cloudshelf id and keeps the
/// external one as an alias). `lines` are `(productVariantId, quantity, price, currencyCode)`.
#[derive(Debug, Clone, Default)]
pub struct OrderSeed {
    pub id: String,
    pub status: OrderStatus,
    pub third_party_id: Option<String>,
    pub lines: Vec<(String, i64, f64, String)>,
    /// Defaults to `updated_at`.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderLineSnapshot {
    pub id: String,
    pub product_variant_id: String,
    pub product_variant_name: String,
    pub product_id: String,
    pub product_name: String,
    pub quantity: i64,
    pub price: f64,
    pub currency_code: String,
}

/// An order as the simulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSnapshot {
    /// The Cloudshelf gid.
    pub id: String,
    /// The external gid it was created or seeded under, if any.
    pub external_id: Option<String>,
    pub status: OrderStatus,
    pub third_party_id: Option<String>,
    /// Every `newThirdPartyId` (or `thirdPartyId`) an upsert set, oldest first.
    pub third_party_id_history: Vec<String>,
    pub lines: Vec<OrderLineSnapshot>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One `OrderInput` of an `upsertOrders` call, as received, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertRecord {
    /// The input object as sent.
    pub input: Value,
    /// Cloudshelf gid of the order it created or updated; `None` when rejected.
    pub order_id: Option<String>,
    /// `UserErrorCode` when rejected.
    pub error_code: Option<String>,
    pub at: DateTime<Utc>,
}

impl UpsertRecord {
    pub fn applied(&self) -> bool {
        self.order_id.is_some()
    }
}

/// A product variant to seed for `upsertStockLevels`; the simulator assigns its Cloudshelf gid.
#[derive(Debug, Clone, Default)]
pub struct VariantSeed {
    /// The external gid it was ingested under (e.g. `gid://external/CentraSize/123`).
    pub platform_provided_id: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
}

/// A stock level as the simulator holds it. Cloudshelf keeps the quantity but only exposes
/// `isInStock` through the API (`StockLevel` in `schema/cloudshelf.graphql`); tests read the quantity here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevelSnapshot {
    pub id: String,
    /// Cloudshelf gids.
    pub location_id: String,
    pub product_variant_id: String,
    pub quantity: i64,
    pub is_in_stock: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One `StockLevelInput` of an `upsertStockLevels` call and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StockUpsertRecord {
    pub input: Value,
    /// `UserErrorCode` when rejected.
    pub error_code: Option<String>,
    pub at: DateTime<Utc>,
}

/// A failure to inject; see [`CloudshelfSim::inject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudshelfFault {
    /// Answer HTTP 503 with a short text body; apply nothing.
    ServerError,
    /// Answer HTTP 429 without `Retry-After` (Cloudshelf documents none); apply nothing.
    RateLimited,
    /// Wait this long, then process the request normally (even if the client gave up).
    Hang(Duration),
    /// Apply the request, then abort the response body mid-way so the client cannot tell
    /// whether it succeeded.
    LoseResponseAfterApply,
}

/// Which requests a queued fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Mutations,
    Queries,
    /// Any request that passed auth and GraphQL validation (the default of `inject`).
    AnyRequest,
}

impl FaultTarget {
    fn matches(self, kind: OperationKind) -> bool {
        match self {
            FaultTarget::Mutations => kind == OperationKind::Mutation,
            FaultTarget::Queries => kind != OperationKind::Mutation,
            FaultTarget::AnyRequest => true,
        }
    }
}

#[derive(Default)]
struct Store {
    /// By Cloudshelf gid.
    orders: BTreeMap<String, OrderSnapshot>,
    /// External gid → Cloudshelf gid.
    aliases: HashMap<String, String>,
    upserts: Vec<UpsertRecord>,
    next_order: u64,
    next_line: u64,
    stock: StockStore,
}

#[derive(Clone)]
struct Variant {
    platform_provided_id: Option<String>,
    sku: Option<String>,
    barcode: Option<String>,
}

#[derive(Default)]
struct StockStore {
    /// Cloudshelf gid → platformProvidedId.
    locations: BTreeMap<String, Option<String>>,
    variants: BTreeMap<String, Variant>,
    /// platformProvidedId → Cloudshelf gid, for locations and variants alike.
    aliases: HashMap<String, String>,
    /// By (location gid, variant gid).
    levels: BTreeMap<(String, String), StockLevelSnapshot>,
    upserts: Vec<StockUpsertRecord>,
    safety_stock: i64,
    next_id: u64,
    /// Products and what catalogue variants have beyond `variants` (see [`catalogue`]).
    catalogue: catalogue::Catalogue,
}

struct Mutable {
    store: Store,
    faults: VecDeque<(FaultTarget, CloudshelfFault)>,
    latency: Duration,
}

struct Inner {
    config: CloudshelfSimConfig,
    state: Mutex<Mutable>,
    requests: AtomicU64,
    rate_limited: AtomicU64,
    in_flight: watch::Sender<usize>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        // A panicking test thread must not wedge the server for the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to a running simulator; dropping it stops the server.
pub struct CloudshelfSim {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl CloudshelfSim {
    /// Start on 127.0.0.1 with an ephemeral port. Needs a Tokio runtime.
    pub async fn start(config: CloudshelfSimConfig) -> CloudshelfSim {
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(Mutable {
                store: Store::default(),
                faults: VecDeque::new(),
                latency: Duration::ZERO,
            }),
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            in_flight: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/graphql", post(endpoint))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", inner.config.port))
            .await
            .expect("bind 127.0.0.1 for the Cloudshelf simulator");
        let addr = listener
            .local_addr()
            .expect("local address of the Cloudshelf simulator");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "Cloudshelf simulator server ended with an error");
            }
        });
        CloudshelfSim {
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

    pub fn api_key(&self) -> &str {
        &self.inner.config.api_key
    }

    pub fn config(&self) -> &CloudshelfSimConfig {
        &self.inner.config
    }

    /// Seed an order; returns its Cloudshelf gid. Panics on a duplicate id.
    pub fn add_order(&self, seed: OrderSeed) -> String {
        self.inner.lock().store.add_order(seed)
    }

    /// An order by Cloudshelf or external gid.
    pub fn order(&self, id: &str) -> Option<OrderSnapshot> {
        let st = self.inner.lock();
        st.store.resolve(id).map(|i| st.store.orders[i].clone())
    }

    /// Every order, by Cloudshelf gid.
    pub fn orders(&self) -> Vec<OrderSnapshot> {
        self.inner.lock().store.orders.values().cloned().collect()
    }

    /// Every `OrderInput` received by `upsertOrders`, applied or not, oldest first.
    pub fn upserts(&self) -> Vec<UpsertRecord> {
        self.inner.lock().store.upserts.clone()
    }

    /// `OrderInput`s applied (rejected ones, with a userError, not counted).
    pub fn upsert_count(&self) -> u64 {
        self.inner
            .lock()
            .store
            .upserts
            .iter()
            .filter(|u| u.applied())
            .count() as u64
    }

    /// Seed a location; returns its Cloudshelf gid. `platform_provided_id` is the external gid
    /// it was ingested under, usable in `StockLevelInput.locationId`.
    pub fn add_location(&self, platform_provided_id: Option<&str>) -> String {
        self.inner
            .lock()
            .store
            .stock
            .add("Location", platform_provided_id, |st, id| {
                st.locations
                    .insert(id, platform_provided_id.map(str::to_string));
            })
    }

    /// Seed a product variant; returns its Cloudshelf gid.
    pub fn add_variant(&self, seed: VariantSeed) -> String {
        let ppid = seed.platform_provided_id.clone();
        self.inner
            .lock()
            .store
            .stock
            .add("ProductVariant", ppid.as_deref(), |st, id| {
                st.variants.insert(
                    id,
                    Variant {
                        platform_provided_id: seed.platform_provided_id,
                        sku: seed.sku,
                        barcode: seed.barcode,
                    },
                );
            })
    }

    /// The organisation's `safetyStockNumber`: quantities below it are out of stock.
    pub fn set_safety_stock(&self, n: i64) {
        self.inner.lock().store.stock.safety_stock = n;
    }

    /// A stock level by location and variant, each a Cloudshelf gid or platformProvidedId.
    pub fn stock_level(&self, location: &str, variant: &str) -> Option<StockLevelSnapshot> {
        let st = self.inner.lock();
        let stock = &st.store.stock;
        let key = (
            stock.resolve_location(location)?,
            stock.resolve_variant(variant)?,
        );
        stock.levels.get(&key).cloned()
    }

    /// Every `StockLevelInput` received, applied or not, oldest first.
    pub fn stock_upserts(&self) -> Vec<StockUpsertRecord> {
        self.inner.lock().store.stock.upserts.clone()
    }

    /// `StockLevelInput`s applied.
    pub fn stock_upsert_count(&self) -> u64 {
        self.inner
            .lock()
            .store
            .stock
            .upserts
            .iter()
            .filter(|u| u.error_code.is_none())
            .count() as u64
    }

    /// Every HTTP request that reached `/graphql`, whatever its fate.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// 429s answered.
    pub fn rate_limited_count(&self) -> u64 {
        self.inner.rate_limited.load(Ordering::SeqCst)
    }

    /// Queue a fault for the next request of any kind that passes auth and validation. Faults
    /// are consumed one per request, in the order queued.
    pub fn inject(&self, fault: CloudshelfFault) {
        self.inject_on(FaultTarget::AnyRequest, fault);
    }

    /// Queue a fault for the next request matching `target`.
    pub fn inject_on(&self, target: FaultTarget, fault: CloudshelfFault) {
        self.inner.lock().faults.push_back((target, fault));
    }

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

impl Drop for CloudshelfSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Store

/// Timestamps are kept at millisecond precision so that what a client reads back compares
/// equal to what is stored.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn is_external(id: &str) -> bool {
    id.starts_with(EXTERNAL_GID_PREFIX)
}

/// Input to create or replace one order line.
struct LineInput {
    product_variant_id: String,
    product_id: Option<String>,
    quantity: i64,
    price: f64,
    currency_code: String,
}

struct OrderInput {
    raw: Value,
    id: Option<String>,
    status: Option<OrderStatus>,
    third_party_id: Option<String>,
    new_third_party_id: Option<String>,
    lines: Option<Vec<LineInput>>,
}

impl Store {
    fn resolve(&self, id: &str) -> Option<&str> {
        if let Some((k, _)) = self.orders.get_key_value(id) {
            return Some(k.as_str());
        }
        self.aliases.get(id).map(String::as_str)
    }

    fn new_order_id(&mut self) -> String {
        self.next_order += 1;
        // ULID-length, like Cloudshelf's own ids.
        format!("{ORDER_GID_PREFIX}01JSIM{:020}", self.next_order)
    }

    fn new_line(&mut self, line: LineInput) -> OrderLineSnapshot {
        self.next_line += 1;
        // Names are not part of OrderLineInput; Cloudshelf would copy them from its catalogue.
        let product_id = line
            .product_id
            .unwrap_or_else(|| format!("gid://cloudshelf/Product/{}", line.product_variant_id));
        OrderLineSnapshot {
            id: format!("gid://cloudshelf/OrderLine/01JSIM{:020}", self.next_line),
            product_variant_name: format!("Variant {}", line.product_variant_id),
            product_name: format!("Product {product_id}"),
            product_id,
            product_variant_id: line.product_variant_id,
            quantity: line.quantity,
            price: line.price,
            currency_code: line.currency_code,
        }
    }

    fn add_order(&mut self, seed: OrderSeed) -> String {
        assert!(
            self.resolve(&seed.id).is_none(),
            "order {} seeded twice",
            seed.id
        );
        let (id, external_id) = if is_external(&seed.id) {
            (self.new_order_id(), Some(seed.id.clone()))
        } else {
            (seed.id.clone(), None)
        };
        let lines = seed
            .lines
            .into_iter()
            .map(|(sku, quantity, price, currency_code)| {
                self.new_line(LineInput {
                    product_variant_id: sku,
                    product_id: None,
                    quantity,
                    price,
                    currency_code,
                })
            })
            .collect();
        let updated_at = millis(seed.updated_at);
        let order = OrderSnapshot {
            id: id.clone(),
            external_id: external_id.clone(),
            status: seed.status,
            third_party_id: seed.third_party_id,
            third_party_id_history: Vec::new(),
            lines,
            created_at: seed.created_at.map(millis).unwrap_or(updated_at),
            updated_at,
        };
        if let Some(ext) = external_id {
            self.aliases.insert(ext, id.clone());
        }
        self.orders.insert(id.clone(), order);
        id
    }

    /// One `OrderInput`. Lookup: `id` (Cloudshelf or external gid), else `thirdPartyId`
    /// (UNVERIFIED: what the Shopify connector's use of it suggests). An unknown Cloudshelf gid
    /// is ENTITY_NOT_FOUND; an unknown external gid, or no id at all, creates an order, as the
    /// schema documents. Status transitions are not validated (UNVERIFIED).
    fn upsert_order(&mut self, input: OrderInput, now: DateTime<Utc>) -> Result<Value, Value> {
        let found = match (&input.id, &input.third_party_id) {
            (Some(id), _) => match self.resolve(id) {
                Some(i) => Some(i.to_string()),
                None if is_external(id) => None,
                None => {
                    let message = format!("Order with id {id} not found");
                    self.upserts.push(UpsertRecord {
                        input: input.raw,
                        order_id: None,
                        error_code: Some("ENTITY_NOT_FOUND".into()),
                        at: now,
                    });
                    return Err(user_error("ENTITY_NOT_FOUND", &message));
                }
            },
            (None, Some(tp)) => self
                .orders
                .values()
                .find(|o| o.third_party_id.as_deref() == Some(tp.as_str()))
                .map(|o| o.id.clone()),
            (None, None) => None,
        };
        let found_by_id = found.is_some() && input.id.is_some();
        let id = match found {
            Some(id) => id,
            None => {
                let id = self.new_order_id();
                let external_id = input.id.clone().filter(|i| is_external(i));
                if let Some(ext) = &external_id {
                    self.aliases.insert(ext.clone(), id.clone());
                }
                let order = OrderSnapshot {
                    id: id.clone(),
                    external_id,
                    status: OrderStatus::DraftBasket,
                    third_party_id: None,
                    third_party_id_history: Vec::new(),
                    lines: Vec::new(),
                    created_at: now,
                    updated_at: now,
                };
                self.orders.insert(id.clone(), order);
                id
            }
        };
        let lines = input
            .lines
            .map(|ls| ls.into_iter().map(|l| self.new_line(l)).collect());
        let order = self.orders.get_mut(&id).expect("order just resolved");
        if let Some(status) = input.status {
            order.status = status;
        }
        // `newThirdPartyId` replaces the id; a bare `thirdPartyId` only sets it when it was not
        // the lookup key.
        let new_tp = input.new_third_party_id.or(if found_by_id {
            input.third_party_id
        } else {
            input
                .third_party_id
                .filter(|_| order.third_party_id.is_none())
        });
        if let Some(tp) = new_tp {
            order.third_party_id_history.push(tp.clone());
            order.third_party_id = Some(tp);
        }
        if let Some(lines) = lines {
            order.lines = lines;
        }
        // Strictly later than before, so that an updatedAt poller always sees the change.
        order.updated_at = now.max(order.updated_at + chrono::Duration::milliseconds(1));
        let json = order_json(order);
        self.upserts.push(UpsertRecord {
            input: input.raw,
            order_id: Some(id),
            error_code: None,
            at: now,
        });
        Ok(json)
    }

    fn orders_page(&self, args: &OrdersArgs) -> Result<Value, GraphqlError> {
        let mut all: Vec<&OrderSnapshot> = self.orders.values().collect();
        all.sort_by(|a, b| {
            let ord = sort_key(a, args.sort).cmp(&sort_key(b, args.sort));
            if args.descending {
                ord.reverse()
            } else {
                ord
            }
        });
        let start = match &args.after {
            None => 0,
            Some(cursor) => {
                let (field, key) = decode_cursor(cursor)
                    .ok_or_else(|| GraphqlError::new(format!("Invalid cursor \"{cursor}\"")))?;
                if field != args.sort {
                    return Err(GraphqlError::new(format!(
                        "Cursor \"{cursor}\" belongs to another sort order"
                    )));
                }
                // Keyset: the position is the cursor's key, not an offset, so orders updated
                // while a client pages neither repeat nor shift the rest.
                all.iter()
                    .position(|o| {
                        let k = sort_key(o, args.sort);
                        let k = (k.0, k.1.to_string());
                        if args.descending {
                            k < key
                        } else {
                            k > key
                        }
                    })
                    .unwrap_or(all.len())
            }
        };
        let end = start.saturating_add(args.first as usize).min(all.len());
        let page = &all[start..end];
        let cursor = |o: &OrderSnapshot| encode_cursor(args.sort, sort_key(o, args.sort));
        let edges: Vec<Value> = page
            .iter()
            .map(|o| json!({"__typename": "OrderEdge", "cursor": cursor(o), "node": order_json(o)}))
            .collect();
        Ok(json!({
            "__typename": "OrderPaginatedPayload",
            "edges": edges,
            "pageInfo": {
                "__typename": "OrderPageInfo",
                "hasNextPage": end < all.len(),
                "hasPreviousPage": start > 0,
                "startCursor": page.first().map(|o| cursor(o)),
                "endCursor": page.last().map(|o| cursor(o)),
            },
            "totalCount": all.len(),
        }))
    }
}

struct StockInput {
    raw: Value,
    location_id: String,
    product_variant_id: String,
    quantity: i64,
}

impl StockStore {
    fn add(
        &mut self,
        type_name: &str,
        platform_provided_id: Option<&str>,
        insert: impl FnOnce(&mut Self, String),
    ) -> String {
        self.next_id += 1;
        let id = format!("gid://cloudshelf/{type_name}/01JSIM{:020}", self.next_id);
        if let Some(ppid) = platform_provided_id {
            let previous = self.aliases.insert(ppid.to_string(), id.clone());
            assert!(previous.is_none(), "{ppid} seeded twice");
        }
        insert(self, id.clone());
        id
    }

    fn resolve_location(&self, id: &str) -> Option<String> {
        let id = self.aliases.get(id).map_or(id, String::as_str);
        self.locations.contains_key(id).then(|| id.to_string())
    }

    fn resolve_variant(&self, id: &str) -> Option<String> {
        let id = self.aliases.get(id).map_or(id, String::as_str);
        self.variants.contains_key(id).then(|| id.to_string())
    }

    /// UNVERIFIED: that an unknown location or variant is an ENTITY_NOT_FOUND userError (rather
    /// than ignored), and that in stock means quantity > 0 and not below the safety stock.
    fn upsert(&mut self, input: StockInput, now: DateTime<Utc>) -> Result<Value, Value> {
        let location = self.resolve_location(&input.location_id);
        let variant = self.resolve_variant(&input.product_variant_id);
        let (location, variant) = match (location, variant) {
            (Some(l), Some(v)) => (l, v),
            (l, _) => {
                let message = if l.is_none() {
                    format!("Location with id {} not found", input.location_id)
                } else {
                    format!(
                        "Product variant with id {} not found",
                        input.product_variant_id
                    )
                };
                self.upserts.push(StockUpsertRecord {
                    input: input.raw,
                    error_code: Some("ENTITY_NOT_FOUND".into()),
                    at: now,
                });
                return Err(user_error("ENTITY_NOT_FOUND", &message));
            }
        };
        let is_in_stock = input.quantity > 0 && input.quantity >= self.safety_stock;
        let next_id = &mut self.next_id;
        let level = self
            .levels
            .entry((location.clone(), variant.clone()))
            .or_insert_with(|| {
                *next_id += 1;
                StockLevelSnapshot {
                    id: format!("gid://cloudshelf/StockLevel/01JSIM{:020}", *next_id),
                    location_id: location,
                    product_variant_id: variant,
                    quantity: 0,
                    is_in_stock: false,
                    created_at: now,
                    updated_at: now,
                }
            });
        level.quantity = input.quantity;
        level.is_in_stock = is_in_stock;
        level.updated_at = now;
        let level = level.clone();
        self.upserts.push(StockUpsertRecord {
            input: input.raw,
            error_code: None,
            at: now,
        });
        Ok(self.level_json(&level))
    }

    fn level_json(&self, l: &StockLevelSnapshot) -> Value {
        let location_ppid = self.locations.get(&l.location_id).cloned().flatten();
        let variant = self.variants.get(&l.product_variant_id);
        json!({
            "__typename": "StockLevel",
            "id": l.id,
            "isInStock": l.is_in_stock,
            "createdAt": timestamp(l.created_at),
            "updatedAt": timestamp(l.updated_at),
            "location": {
                "__typename": "Location",
                "id": l.location_id,
                "platformProvidedId": location_ppid,
            },
            "productVariant": {
                "__typename": "ProductVariant",
                "id": l.product_variant_id,
                "platformProvidedId": variant.and_then(|v| v.platform_provided_id.clone()),
                "sku": variant.and_then(|v| v.sku.clone()),
                "barcode": variant.and_then(|v| v.barcode.clone()),
            },
        })
    }
}

fn user_error(code: &str, message: &str) -> Value {
    json!({"__typename": "UserError", "code": code, "message": message})
}

fn order_json(o: &OrderSnapshot) -> Value {
    let lines: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            json!({
                "__typename": "OrderLine",
                "id": l.id,
                "productVariantId": l.product_variant_id,
                "productVariantName": l.product_variant_name,
                "productId": l.product_id,
                "productName": l.product_name,
                "platformProvidedProductId": Value::Null,
                "platformProvidedProductVariantId": Value::Null,
                "quantity": l.quantity,
                "price": l.price,
                "currencyCode": l.currency_code,
                "createdAt": timestamp(o.created_at),
                "updatedAt": timestamp(o.updated_at),
            })
        })
        .collect();
    json!({
        "__typename": "Order",
        "id": o.id,
        "status": o.status.as_str(),
        "thirdPartyId": o.third_party_id,
        "discountCode": Value::Null,
        "createdAt": timestamp(o.created_at),
        "updatedAt": timestamp(o.updated_at),
        "lines": lines,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    CreatedAt,
    UpdatedAt,
    Id,
}

impl SortField {
    fn name(self) -> &'static str {
        match self {
            SortField::CreatedAt => "createdAt",
            SortField::UpdatedAt => "updatedAt",
            SortField::Id => "id",
        }
    }
}

/// Ties on a timestamp are broken by id, so the order is total and cursors are exact.
fn sort_key(o: &OrderSnapshot, field: SortField) -> (i64, &str) {
    match field {
        SortField::CreatedAt => (o.created_at.timestamp_millis(), &o.id),
        SortField::UpdatedAt => (o.updated_at.timestamp_millis(), &o.id),
        SortField::Id => (0, &o.id),
    }
}

/// Opaque (hex) `<field>|<millis>|<id>`. Cloudshelf's own cursor format is UNVERIFIED.
fn encode_cursor(field: SortField, key: (i64, &str)) -> String {
    format!("{}|{}|{}", field.name(), key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Option<(SortField, (i64, String))> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '|');
    let field = match parts.next()? {
        "createdAt" => SortField::CreatedAt,
        "updatedAt" => SortField::UpdatedAt,
        "id" => SortField::Id,
        _ => return None,
    };
    let ms = parts.next()?.parse().ok()?;
    Some((field, (ms, parts.next()?.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Schema subset and argument checks

/// Fields of the simulated object types: name and, for object-typed fields, the type name.
fn object_fields(type_name: &str) -> Option<&'static [(&'static str, Option<&'static str>)]> {
    Some(match type_name {
        "Query" => &[
            ("order", Some("Order")),
            ("orders", Some("OrderPaginatedPayload")),
            // catalogue
            ("products", Some("ProductPaginatedPayload")),
            ("locations", Some("LocationPaginatedPayload")),
        ],
        "Mutation" => &[
            ("upsertOrders", Some("OrderUpsertPayload")),
            ("upsertStockLevels", Some("StockLevelUpsertPayload")),
            // catalogue
            ("upsertProducts", Some("ProductUpsertPayload")),
            ("upsertProductVariants", Some("ProductVariantUpsertPayload")),
        ],
        "StockLevelUpsertPayload" => &[
            ("stockLevels", Some("StockLevel")),
            ("userErrors", Some("UserError")),
        ],
        "StockLevel" => &[
            ("id", None),
            ("isInStock", None),
            ("createdAt", None),
            ("updatedAt", None),
            ("location", Some("Location")),
            ("productVariant", Some("ProductVariant")),
        ],
        "Location" => &[("id", None), ("platformProvidedId", None)],
        "ProductVariant" => &[
            ("id", None),
            ("platformProvidedId", None),
            ("sku", None),
            ("barcode", None),
            // catalogue
            ("displayName", None),
            ("isInStock", None),
            ("availableToPurchase", None),
            ("product", Some("Product")),
            ("stockLevels", Some("StockLevel")),
        ],
        _ => return order_object_fields(type_name),
    })
}

/// The order types' fields (`Order`, its lines, pages and upsert payload); the rest are the
/// catalogue's.
fn order_object_fields(type_name: &str) -> Option<&'static [(&'static str, Option<&'static str>)]> {
    Some(match type_name {
        "Order" => &[
            ("id", None),
            ("status", None),
            ("thirdPartyId", None),
            ("discountCode", None),
            ("createdAt", None),
            ("updatedAt", None),
            ("lines", Some("OrderLine")),
        ],
        "OrderLine" => &[
            ("id", None),
            ("productVariantId", None),
            ("productVariantName", None),
            ("productId", None),
            ("productName", None),
            ("platformProvidedProductId", None),
            ("platformProvidedProductVariantId", None),
            ("quantity", None),
            ("price", None),
            ("currencyCode", None),
            ("createdAt", None),
            ("updatedAt", None),
        ],
        "OrderPaginatedPayload" => &[
            ("edges", Some("OrderEdge")),
            ("pageInfo", Some("OrderPageInfo")),
            ("totalCount", None),
        ],
        "OrderEdge" => &[("cursor", None), ("node", Some("Order"))],
        "OrderPageInfo" => &[
            ("hasNextPage", None),
            ("hasPreviousPage", None),
            ("startCursor", None),
            ("endCursor", None),
        ],
        "OrderUpsertPayload" => &[("orders", Some("Order")), ("userErrors", Some("UserError"))],
        "UserError" => &[("code", None), ("message", None)],
        _ => return catalogue::object_fields(type_name),
    })
}

/// `extensions.code` of requests the schema allows but the simulator does not model.
const SIMULATOR_UNSUPPORTED: &str = "SIMULATOR_UNSUPPORTED";

/// Fields the simulator answers, checked before anything runs (the document already validated against
/// the schema): a schema field outside this list is reported as not simulated, so that a mutation is
/// never applied and then answered with a hole.
fn validate_selection(type_name: &str, fields: &[SelectedField], errors: &mut Vec<GraphqlError>) {
    let known = object_fields(type_name).unwrap_or(&[]);
    for f in fields {
        if f.name == "__typename" {
            continue;
        }
        match known.iter().find(|(n, _)| *n == f.name) {
            None => errors.push(
                GraphqlError::not_simulated(format_args!(
                    "the field \"{}\" of type \"{type_name}\"",
                    f.name
                ))
                .at(f.location),
            ),
            Some((_, Some(t))) => validate_selection(t, &f.selection, errors),
            Some(_) => {}
        }
    }
}

struct OrdersArgs {
    first: u64,
    after: Option<String>,
    sort: SortField,
    descending: bool,
}

enum Call {
    Order(String),
    Orders(OrdersArgs),
    UpsertOrders(Vec<OrderInput>),
    UpsertStockLevels(Vec<StockInput>),
    Catalogue(catalogue::CatalogueCall),
}

fn arg_error(field: &SelectedField, message: String) -> GraphqlError {
    GraphqlError::new(message).at(field.location)
}

fn check_arg_names(
    field: &SelectedField,
    parent: &str,
    allowed: &[&str],
) -> Result<(), GraphqlError> {
    match field
        .args
        .iter()
        .find(|(k, v)| !allowed.contains(&k.as_str()) && !v.is_null())
    {
        Some((k, _)) => Err(GraphqlError::not_simulated(format_args!(
            "the argument \"{k}\" of \"{parent}.{}\"",
            field.name
        ))
        .at(field.location)),
        None => Ok(()),
    }
}

/// The `GlobalId` scalar. UNVERIFIED: that Cloudshelf rejects non-gid strings at this level;
/// doing so catches a basket-transfer id that was not base64-decoded.
fn global_id(v: &Value, what: &str) -> Result<String, String> {
    match v.as_str() {
        Some(s) if s.starts_with("gid://") => Ok(s.to_string()),
        _ => Err(format!(
            "{what}: Expected value of type \"GlobalId\", found {v}."
        )),
    }
}

fn opt_string(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!(
            "{what}.{key}: Expected value of type \"String\", found {v}."
        )),
    }
}

fn plan(kind: OperationKind, field: &SelectedField) -> Result<Call, GraphqlError> {
    match (kind, field.name.as_str()) {
        (OperationKind::Query, "order") => plan_order(field),
        (OperationKind::Query, "orders") => plan_orders(field),
        (OperationKind::Mutation, "upsertOrders") => plan_upsert_orders(field),
        (OperationKind::Mutation, "upsertStockLevels") => plan_upsert_stock_levels(field),
        (kind, name) if catalogue::handles(kind, name) => {
            catalogue::plan(kind, field).map(Call::Catalogue)
        }
        (kind, name) => Err(GraphqlError::not_simulated(format_args!(
            "the root field \"{}.{name}\"",
            kind.type_name()
        ))
        .at(field.location)),
    }
}

/// `Query.order(id:)`.
fn plan_order(field: &SelectedField) -> Result<Call, GraphqlError> {
    check_arg_names(field, "Query", &["id"])?;
    let id = field.arg("id").ok_or_else(|| {
        arg_error(
            field,
            "Argument \"id\" of required type \"GlobalId!\" was not provided.".into(),
        )
    })?;
    Ok(Call::Order(
        global_id(id, "id").map_err(|m| arg_error(field, m))?,
    ))
}

/// `Query.orders(first:, after:, sortBy:)`; forward paging only.
fn plan_orders(field: &SelectedField) -> Result<Call, GraphqlError> {
    check_arg_names(
        field,
        "Query",
        &["first", "after", "last", "before", "sortBy"],
    )?;
    let paging = catalogue::paging_args(field)?;
    Ok(Call::Orders(OrdersArgs {
        first: paging.first.unwrap_or(u64::MAX),
        after: paging.after,
        sort: paging.sort,
        descending: paging.descending,
    }))
}

/// `Mutation.upsertOrders(input:)`.
fn plan_upsert_orders(field: &SelectedField) -> Result<Call, GraphqlError> {
    Ok(Call::UpsertOrders(upsert_inputs(
        field,
        "[OrderInput!]!",
        order_input,
    )?))
}

/// `Mutation.upsertStockLevels(input:)`.
fn plan_upsert_stock_levels(field: &SelectedField) -> Result<Call, GraphqlError> {
    Ok(Call::UpsertStockLevels(upsert_inputs(
        field,
        "[StockLevelInput!]!",
        stock_input,
    )?))
}

/// The `input` list of an upsert mutation, each item read by `read` (its path `input[i]` for errors).
fn upsert_inputs<T>(
    field: &SelectedField,
    input_type: &str,
    read: impl Fn(&Value, &str) -> Result<T, String>,
) -> Result<Vec<T>, GraphqlError> {
    check_arg_names(field, "Mutation", &["input"])?;
    let input = field.arg("input").ok_or_else(|| {
        arg_error(
            field,
            format!("Argument \"input\" of required type \"{input_type}\" was not provided."),
        )
    })?;
    // GraphQL input coercion: a single object stands for a list of one.
    let items = match input {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| read(item, &format!("input[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| arg_error(field, m))
}

/// One field of `SortOptionsInput`; with several, the first of updatedAt, createdAt, id wins
/// (UNVERIFIED: how Cloudshelf combines them).
fn sort_by(o: &Map<String, Value>) -> Result<(SortField, bool), String> {
    if let Some(k) = o
        .keys()
        .find(|k| !["createdAt", "updatedAt", "id"].contains(&k.as_str()))
    {
        return Err(format!(
            "sortBy: the simulator does not implement the input field \"SortOptionsInput.{k}\" (it is in the schema)."
        ));
    }
    for field in [SortField::UpdatedAt, SortField::CreatedAt, SortField::Id] {
        match o.get(field.name()) {
            None | Some(Value::Null) => continue,
            Some(v) if v == "ASC" => return Ok((field, false)),
            Some(v) if v == "DESC" => return Ok((field, true)),
            Some(v) => {
                return Err(format!(
                    "sortBy.{}: Value {v} does not exist in \"SortOrder\" enum.",
                    field.name()
                ))
            }
        }
    }
    Ok((SortField::CreatedAt, false))
}

const ORDER_INPUT_FIELDS: [&str; 8] = [
    "discountCode",
    "fromPOS",
    "id",
    "lines",
    "newThirdPartyId",
    "sessionId",
    "status",
    "thirdPartyId",
];
const ORDER_LINE_INPUT_FIELDS: [&str; 7] = [
    "currencyCode",
    "customAttributes",
    "id",
    "price",
    "productID",
    "productVariantID",
    "quantity",
];

fn order_input(v: &Value, what: &str) -> Result<OrderInput, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: Expected value of type \"OrderInput!\", found {v}."))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !ORDER_INPUT_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "{what}: the simulator does not implement the input field \"OrderInput.{k}\" (it is in the schema)."
        ));
    }
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(global_id(v, &format!("{what}.id"))?),
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().and_then(OrderStatus::parse).ok_or_else(|| {
            format!("{what}.status: Value {v} does not exist in \"OrderStatus\" enum.")
        })?),
    };
    let lines = match obj.get("lines") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ls)) => Some(
            ls.iter()
                .enumerate()
                .map(|(i, l)| line_input(l, &format!("{what}.lines[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(v) => {
            return Err(format!(
                "{what}.lines: Expected value of type \"[OrderLineInput!]\", found {v}."
            ))
        }
    };
    Ok(OrderInput {
        raw: v.clone(),
        id,
        status,
        third_party_id: opt_string(obj, "thirdPartyId", what)?,
        new_third_party_id: opt_string(obj, "newThirdPartyId", what)?,
        lines,
    })
}

fn stock_input(v: &Value, what: &str) -> Result<StockInput, String> {
    let obj = v.as_object().ok_or_else(|| {
        format!("{what}: Expected value of type \"StockLevelInput!\", found {v}.")
    })?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["locationId", "productVariantId", "quantity"].contains(&k.as_str()))
    {
        return Err(format!(
            "{what}: the simulator does not implement the input field \"StockLevelInput.{k}\" (it is in the schema)."
        ));
    }
    let required = |key: &str, ty: &str| {
        obj.get(key).filter(|v| !v.is_null()).ok_or_else(|| {
            format!("{what}: Field \"{key}\" of required type \"{ty}\" was not provided.")
        })
    };
    let quantity = required("quantity", "Int!")?;
    Ok(StockInput {
        raw: v.clone(),
        location_id: global_id(
            required("locationId", "GlobalId!")?,
            &format!("{what}.locationId"),
        )?,
        product_variant_id: global_id(
            required("productVariantId", "GlobalId!")?,
            &format!("{what}.productVariantId"),
        )?,
        quantity: quantity.as_i64().ok_or_else(|| {
            format!("{what}.quantity: Expected value of type \"Int\", found {quantity}.")
        })?,
    })
}

/// UNVERIFIED defaults for omitted line fields: quantity 1, price 0, currency GBP.
fn line_input(v: &Value, what: &str) -> Result<LineInput, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: Expected value of type \"OrderLineInput!\", found {v}."))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !ORDER_LINE_INPUT_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "{what}: the simulator does not implement the input field \"OrderLineInput.{k}\" (it is in the schema)."
        ));
    }
    let product_variant_id = match obj.get("productVariantID") {
        None | Some(Value::Null) => {
            return Err(format!("{what}.productVariantID: the simulator needs it."))
        }
        Some(v) => global_id(v, &format!("{what}.productVariantID"))?,
    };
    let product_id = match obj.get("productID") {
        None | Some(Value::Null) => None,
        Some(v) => Some(global_id(v, &format!("{what}.productID"))?),
    };
    let quantity = match obj.get("quantity") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_i64().ok_or_else(|| {
            format!("{what}.quantity: Expected value of type \"Int\", found {v}.")
        })?,
    };
    let price = match obj.get("price") {
        None | Some(Value::Null) => 0.0,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("{what}.price: Expected value of type \"Float\", found {v}."))?,
    };
    let currency_code = opt_string(obj, "currencyCode", what)?.unwrap_or_else(|| "GBP".into());
    Ok(LineInput {
        product_variant_id,
        product_id,
        quantity,
        price,
        currency_code,
    })
}

// ---------------------------------------------------------------------------------------------
// Query limits

/// Cost model (Cloudshelf documents "most fields cost 1", see [`CloudshelfSimConfig`]): every selected field
/// costs 1, and the `edges` subtree of a paginated field is multiplied by the page size asked for. Lists that
/// are not paginated (order lines) multiply nothing. How Cloudshelf really weighs lists is
/// UNVERIFIED.
pub fn query_complexity(fields: &[SelectedField], default_page_size: u64) -> u64 {
    fields
        .iter()
        .map(|f| field_cost(f, default_page_size))
        .fold(0, u64::saturating_add)
}

fn field_cost(f: &SelectedField, default_page_size: u64) -> u64 {
    if f.name == "__typename" {
        return 0;
    }
    let page = f
        .arg("first")
        .or_else(|| f.arg("last"))
        .and_then(Value::as_u64)
        .unwrap_or(default_page_size);
    f.selection
        .iter()
        .map(|c| {
            let cost = field_cost(c, default_page_size);
            if c.name == "edges" {
                cost.saturating_mul(page)
            } else {
                cost
            }
        })
        .fold(1, u64::saturating_add)
}

/// Levels of nesting: `{ order { id } }` is 2.
pub fn query_depth(fields: &[SelectedField]) -> usize {
    fields
        .iter()
        .map(|f| 1 + query_depth(&f.selection))
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// HTTP

async fn endpoint(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let counter = inner.in_flight.clone();
    crate::http::run_detached(&counter, "Cloudshelf", async move {
        process(&inner, &headers, &body).await
    })
    .await
}

async fn process(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let latency = inner.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    if !authorized(headers, &inner.config.api_key) {
        // UNVERIFIED: Apollo-style servers often answer 200 with an UNAUTHENTICATED error
        // instead; 401 with the same body is chosen here (the client handles both).
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}]}),
        );
    }

    let op = match prepare_operation(body) {
        Ok(op) => op,
        Err(response) => return response,
    };
    let calls = match plan_calls(&op) {
        Ok(calls) => calls,
        Err(response) => return response,
    };
    if let Err(response) = check_operation_limits(&inner.config, &op) {
        return response;
    }

    let lose_response = match apply_fault(inner, op.kind).await {
        Ok(lose_response) => lose_response,
        Err(response) => return response,
    };

    let (data, errors) = execute_calls(inner, &op, calls);

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

/// Parses the request body, checks it against the published schema and prepares the chosen
/// operation; the `Err` is the response to send.
// The `Err` is the HTTP answer itself, built once per refused request.
#[allow(clippy::result_large_err)]
fn prepare_operation(body: &[u8]) -> Result<graphql::Operation, Response> {
    let request = match crate::http::parse_graphql_request(body) {
        Ok(r) => r,
        Err(message) => return Err(bad_request(message)),
    };

    // The published schema decides what is a valid request, before anything else looks at it.
    let checked = match crate::schema::cloudshelf_schema().check_request(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(c) => c,
        Err(errors) => return Err(schema_errors_response(&errors)),
    };
    let op = match graphql::prepare(
        &request.query,
        checked.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(op) => op,
        Err(e) => return Err(errors_response(&[e], "GRAPHQL_PARSE_FAILED")),
    };
    let mut errors = Vec::new();
    validate_selection(op.kind.type_name(), &op.fields, &mut errors);
    if !errors.is_empty() {
        return Err(errors_response(&errors, SIMULATOR_UNSUPPORTED));
    }
    Ok(op)
}

/// One planned call per top-level field (`__typename` is answered later); the `Err` is the
/// response to send.
// The `Err` is the HTTP answer itself, built once per refused request.
#[allow(clippy::result_large_err)]
fn plan_calls(op: &graphql::Operation) -> Result<Vec<(&SelectedField, Call)>, Response> {
    let mut errors = Vec::new();
    let mut calls = Vec::new();
    for field in &op.fields {
        if field.name == "__typename" {
            continue;
        }
        match plan(op.kind, field) {
            Ok(call) => calls.push((field, call)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors_response(&errors, "BAD_USER_INPUT"));
    }
    Ok(calls)
}

/// Limits on the whole operation (the documented ones, `CloudshelfSimConfig`); message wording and codes
/// are UNVERIFIED.
// The `Err` is the HTTP answer itself, built once per refused request.
#[allow(clippy::result_large_err)]
fn check_operation_limits(
    config: &CloudshelfSimConfig,
    op: &graphql::Operation,
) -> Result<(), Response> {
    let depth = query_depth(&op.fields);
    if depth > config.max_depth {
        let e = GraphqlError::new(format!(
            "Query depth of {depth} exceeds the maximum of {}",
            config.max_depth
        ));
        return Err(errors_response(&[e], "QUERY_DEPTH"));
    }
    let complexity = query_complexity(&op.fields, config.default_page_size);
    if complexity > config.max_complexity {
        let e = GraphqlError::new(format!(
            "Query complexity of {complexity} exceeds the maximum of {}",
            config.max_complexity
        ));
        return Err(errors_response(&[e], "QUERY_COMPLEXITY"));
    }
    Ok(())
}

/// Takes the first queued fault for this kind of operation and acts on it: `Err` is the
/// response to send instead of applying anything, `Ok(true)` means apply, then lose the
/// response.
async fn apply_fault(inner: &Inner, kind: OperationKind) -> Result<bool, Response> {
    let fault = {
        let mut st = inner.lock();
        let pos = st.faults.iter().position(|(t, _)| t.matches(kind));
        pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
    };
    let mut lose_response = false;
    match fault {
        Some(CloudshelfFault::ServerError) => {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                "503 Service Unavailable",
            )
                .into_response());
        }
        Some(CloudshelfFault::RateLimited) => {
            inner.rate_limited.fetch_add(1, Ordering::SeqCst);
            // No Retry-After: Cloudshelf documents none. Body wording UNVERIFIED.
            return Err(json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"errors": [{"message": "Too Many Requests", "extensions": {"code": "RATE_LIMITED"}}]}),
            ));
        }
        Some(CloudshelfFault::Hang(d)) => tokio::time::sleep(d).await,
        Some(CloudshelfFault::LoseResponseAfterApply) => lose_response = true,
        None => {}
    }
    Ok(lose_response)
}

/// Runs the planned calls under one lock and shapes each answer by its selection; returns the
/// `data` object (with `__typename` fields filled in) and the field errors.
fn execute_calls(
    inner: &Inner,
    op: &graphql::Operation,
    calls: Vec<(&SelectedField, Call)>,
) -> (Map<String, Value>, Vec<Value>) {
    let now = millis(Utc::now());
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut st = inner.lock();
    for (field, call) in calls {
        let key = field.response_key().to_string();
        let value = execute_call(&mut st.store, call, now, inner.config.default_page_size);
        let shaped = value.and_then(|v| graphql::project(&v, &field.selection, &mut |_, _| None));
        match shaped {
            Ok(v) => {
                data.insert(key, v);
            }
            Err(e) => {
                let e = if e.locations.is_empty() {
                    e.at(field.location)
                } else {
                    e
                };
                errors.push(error_json(&e.with_path(vec![json!(key)]), "BAD_USER_INPUT"));
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
    (data, errors)
}

/// One planned call against the store, before shaping.
fn execute_call(
    store: &mut Store,
    call: Call,
    now: DateTime<Utc>,
    default_page_size: u64,
) -> Result<Value, GraphqlError> {
    match call {
        Call::Order(id) => Ok(store
            .resolve(&id)
            .map(|i| order_json(&store.orders[i]))
            .unwrap_or(Value::Null)),
        Call::Orders(mut args) => {
            if args.first == u64::MAX {
                args.first = default_page_size;
            }
            store.orders_page(&args)
        }
        Call::UpsertOrders(inputs) => {
            let mut orders = Vec::new();
            let mut user_errors = Vec::new();
            // Each input stands alone: one rejected input does not undo the others
            // (UNVERIFIED: whether Cloudshelf applies a batch atomically).
            for input in inputs {
                match store.upsert_order(input, now) {
                    Ok(o) => orders.push(o),
                    Err(e) => user_errors.push(e),
                }
            }
            Ok(json!({
                "__typename": "OrderUpsertPayload",
                "orders": orders,
                "userErrors": user_errors,
            }))
        }
        Call::UpsertStockLevels(inputs) => {
            let mut levels = Vec::new();
            let mut user_errors = Vec::new();
            for input in inputs {
                match store.stock.upsert(input, now) {
                    Ok(l) => levels.push(l),
                    Err(e) => user_errors.push(e),
                }
            }
            Ok(json!({
                "__typename": "StockLevelUpsertPayload",
                "stockLevels": levels,
                "userErrors": user_errors,
            }))
        }
        Call::Catalogue(c) => catalogue::execute(&mut store.stock, c, now, default_page_size),
    }
}

/// `Authorization: Token <apiKey>`; the scheme is matched case-insensitively because both
/// `Token` (SFCC cartridge) and `token` (basket-transfer example) are in use.
fn authorized(headers: &HeaderMap, api_key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, key)| scheme.eq_ignore_ascii_case("token") && key.trim() == api_key)
}

/// `GraphqlError::to_json` with Apollo-style `extensions.code` instead of a category.
fn error_json(e: &GraphqlError, code: &str) -> Value {
    let mut v = e.to_json();
    v["extensions"] = json!({ "code": code });
    v
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
        json!({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}),
    )
}

/// Rejected operations answer 200 with `errors[]` and no `data`, as the Centra simulator does
/// (UNVERIFIED for Cloudshelf: Apollo Server answers validation failures with 400).
fn errors_response(errors: &[GraphqlError], code: &str) -> Response {
    let errors: Vec<Value> = errors.iter().map(|e| error_json(e, code)).collect();
    json_response(StatusCode::OK, json!({ "errors": errors }))
}

/// Validation failures against the schema, with Apollo Server's codes.
fn schema_errors_response(errors: &[crate::schema::SchemaError]) -> Response {
    use crate::schema::SchemaErrorKind;
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            let code = match e.kind {
                SchemaErrorKind::Syntax => "GRAPHQL_PARSE_FAILED",
                SchemaErrorKind::Validation => "GRAPHQL_VALIDATION_FAILED",
                SchemaErrorKind::Variables => "BAD_USER_INPUT",
            };
            let mut err = GraphqlError::new(e.message.clone());
            err.locations = e.locations.clone();
            error_json(&err, code)
        })
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

    fn op(query: &str) -> graphql::Operation {
        graphql::prepare(query, None, &Map::new()).unwrap()
    }

    #[test]
    fn complexity_counts_fields_and_multiplies_edges_by_page_size() {
        // order(1) + id(1) + lines(1) + quantity(1)
        assert_eq!(
            query_complexity(
                &op("{ order(id: \"gid://x\") { id lines { quantity } } }").fields,
                10
            ),
            4
        );
        // orders(1) + totalCount(1) + 5 × (edges(1) + node(1) + id(1))
        let q = "{ orders(first: 5) { totalCount edges { node { id } } } }";
        assert_eq!(query_complexity(&op(q).fields, 10), 2 + 5 * 3);
        let q = "{ orders { edges { node { id __typename } } } }";
        assert_eq!(query_complexity(&op(q).fields, 10), 1 + 10 * 3);
        assert_eq!(query_depth(&op(q).fields), 4);
    }

    #[test]
    fn auth_takes_the_token_scheme_in_any_case() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "k"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert!(!authorized(&h, "k"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Token x"));
        assert!(!authorized(&h, "k"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Token k"));
        assert!(authorized(&h, "k"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("token k"));
        assert!(authorized(&h, "k"));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(
            SortField::UpdatedAt,
            (1_700_000_000_123, "gid://cloudshelf/Order/1"),
        );
        assert_eq!(
            decode_cursor(&c),
            Some((
                SortField::UpdatedAt,
                (1_700_000_000_123, "gid://cloudshelf/Order/1".to_string())
            ))
        );
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
    }
}
