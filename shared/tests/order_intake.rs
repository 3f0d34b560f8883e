//! `order.placed` store events: strict validation naming every field, one message on the orders FIFO queue, and
//! the same idempotency / 409 / 503 rules as stock events.

use crate::common;

use async_trait::async_trait;
use common::{sale, SECRET};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::adapters::memory::{MemoryFifoQueue, MemoryIdempotencyStore};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock};
use shared::core::errors::BackendError;
use shared::events::orders::{OrderQueueMessage, PaymentStatus};
use shared::intake::contract::{IntakeResponse, IntakeSettings};
use shared::intake::signature::{sign, WebhookVerifier};
use shared::intake::store_events::order_message;
use shared::intake::store_events::{IntakeRequest, StoreEventIntake};
use shared::stock::ports::*;
use shared::telemetry::metrics::{names, Metrics};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// 2026-11-28T12:00:00Z: the example's `occurred_at` (10:15) is in the past.
const NOW_MS: i64 = 1_795_867_200_000;
const ORDER_ID: &str = "gid://cloudshelf/Order/01JDX4Q7ZK3M8V2N5P6R9T0W1Y";

/// Records every message handed to it and can be told to fail.
struct RecordingQueue {
    inner: MemoryFifoQueue,
    sent: Mutex<Vec<FifoMessage>>,
    fail: AtomicBool,
}

impl RecordingQueue {
    fn new() -> Self {
        Self {
            inner: MemoryFifoQueue::new(5),
            sent: Mutex::new(Vec::new()),
            fail: AtomicBool::new(false),
        }
    }
    fn sent(&self) -> Vec<FifoMessage> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl StockQueue for RecordingQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::new("sqs", "ServiceUnavailable"));
        }
        self.sent.lock().unwrap().extend_from_slice(messages);
        self.inner.send_all(messages).await
    }
}

impl OrderQueue for RecordingQueue {}

struct Fixture {
    intake: StoreEventIntake,
    stock: Arc<RecordingQueue>,
    orders: Arc<RecordingQueue>,
    metrics: Arc<Metrics>,
    clock: ManualClock,
}

fn fixture_with(orders_enabled: bool) -> Fixture {
    let stock = Arc::new(RecordingQueue::new());
    let orders = Arc::new(RecordingQueue::new());
    let clock = ManualClock::at(NOW_MS);
    let metrics = Arc::new(Metrics::new());
    let intake = StoreEventIntake {
        verifier: WebhookVerifier::from_config(SECRET).unwrap(),
        mappings: Arc::new(Mappings::embedded_default()),
        idempotency: Arc::new(MemoryIdempotencyStore::new()),
        queue: stock.clone(),
        orders: orders_enabled.then(|| orders.clone() as Arc<dyn OrderQueue>),
        catalogue: Arc::new(shared::stock::identity::ItemCatalogue::with_sizes(
            test_sizes(),
            shared::core::clock::system_clock(),
        )),
        clock: Arc::new(clock.clone()),
        metrics: metrics.clone(),
        settings: IntakeSettings {
            in_progress_wait_ms: 0,
            ..Default::default()
        },
    };
    Fixture {
        intake,
        stock,
        orders,
        metrics,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(true)
}

impl Fixture {
    async fn send(&self, id: &str, body: &str) -> IntakeResponse {
        let ts = self.clock.now_seconds();
        let signature = sign(SECRET, id, ts, body.as_bytes());
        let ts = ts.to_string();
        self.intake
            .handle(IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some(id),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some(&signature),
                body: body.as_bytes(),
            })
            .await
    }

    async fn send_json(&self, id: &str, body: &Value) -> IntakeResponse {
        self.send(id, &body.to_string()).await
    }
}

/// The example order: 2 × 49.00 + 5.00 shipping = 103.00 GBP.
fn order() -> Value {
    json!({
        "type": "order.placed",
        "occurred_at": "2026-11-28T10:15:00Z",
        "store": "LDN-01",
        "cloudshelf_order_id": ORDER_ID,
        "device": "gid://cloudshelf/Device/7",
        "sales_assistant": "Sam",
        "customer": { "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "phone": "+44 20 7946 0000" },
        "delivery_address": { "lines": ["1 High St", "Flat 2"], "city": "London", "postcode": "W1 1AA", "region": null, "country": "GB" },
        "shipping_method": "home-standard",
        "shipping_price": "5.00",
        "payment": { "provider": "adyen", "transaction_id": "psp_123", "amount": "103.00", "currency": "GBP", "status": "captured" },
        "lines": [{ "sku": "Prod123Var123789S", "quantity": 2, "unit_price": "49.00", "currency": "GBP" }]
    })
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn a_valid_order_is_one_message_on_the_orders_queue() {
    let f = fixture();
    let r = f.send_json("ord-evt-1", &order()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, json!({ "status": "accepted", "id": "ord-evt-1" }));

    let sent = f.orders.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].group_id, ORDER_ID);
    assert_eq!(sent[0].dedup_id, sha256_hex("ord-evt-1"));
    assert!(
        f.stock.sent().is_empty(),
        "an order moves no stock at intake"
    );

    let received = f.orders.inner.receive(10, 1000, NOW_MS);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].group_id, ORDER_ID);
    let OrderQueueMessage::Placed(o) = serde_json::from_str(&received[0].body).unwrap() else {
        panic!("not a Placed message: {}", received[0].body);
    };
    assert_eq!(o.event_id, "ord-evt-1");
    assert_eq!(o.cloudshelf_order_id, ORDER_ID);
    assert_eq!(o.store.as_str(), "LDN-01");
    assert_eq!(o.customer.email, "ann@example.com");
    assert_eq!(o.customer.first_name.as_deref(), Some("Ann"));
    assert_eq!(o.delivery_address.lines, vec!["1 High St", "Flat 2"]);
    assert_eq!(o.delivery_address.region, None);
    assert_eq!(o.shipping_method, "home-standard");
    assert_eq!(o.shipping_price.to_string(), "5.00");
    assert_eq!(o.payment.amount.to_string(), "103.00");
    assert_eq!(o.payment.status, PaymentStatus::Captured);
    assert_eq!(o.lines.len(), 1);
    assert_eq!(o.lines[0].quantity, 2);
    assert_eq!(o.lines[0].sku.as_deref(), Some("Prod123Var123789S"));
    assert_eq!(o.lines_total().unwrap().to_string(), "98.00");
    assert_eq!(o.received_at_ms, NOW_MS);
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 1.0);
    assert_eq!(f.metrics.total(names::EVENTS_ACCEPTED), 1.0);
}

type Mutation = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn accepted_variants() {
    let f = fixture();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "ean-only line",
            Box::new(|v| {
                v["lines"][0] = json!({ "ean": "7350000000012", "quantity": 2, "unit_price": "49.00", "currency": "GBP" });
            }),
        ),
        (
            "sku and ean",
            Box::new(|v| {
                v["lines"][0]["ean"] = json!("73500000");
            }),
        ),
        (
            "no shipping price means free",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("shipping_price");
                v["payment"]["amount"] = json!("98");
            }),
        ),
        (
            "region given for the US",
            Box::new(|v| {
                v["delivery_address"]["country"] = json!("US");
                v["delivery_address"]["region"] = json!("NY");
            }),
        ),
        (
            "blank optional fields",
            Box::new(|v| {
                v["customer"]["first_name"] = json!("  ");
                v["customer"]["phone"] = json!(null);
                v.as_object_mut().unwrap().remove("device");
                v.as_object_mut().unwrap().remove("sales_assistant");
            }),
        ),
        (
            "authorized, three decimals",
            Box::new(|v| {
                v["payment"]["status"] = json!("authorized");
                v["lines"][0]["unit_price"] = json!("49.005");
                v["payment"]["amount"] = json!("103.010");
            }),
        ),
        (
            "500 lines",
            Box::new(|v| {
                let lines: Vec<Value> = (0..500)
                .map(|i| json!({ "sku": format!("SKU-{i}"), "quantity": 1, "unit_price": "1.00", "currency": "GBP" }))
                .collect();
                v["lines"] = json!(lines);
                v["payment"]["amount"] = json!("505.00");
            }),
        ),
    ];
    for (i, (name, mutate)) in cases.iter().enumerate() {
        let mut v = order();
        mutate(&mut v);
        let r = f.send_json(&format!("ok-{i}"), &v).await;
        assert_eq!(r.status, 202, "{name}: {}", r.body);
    }
    assert_eq!(f.orders.sent().len(), cases.len());
    let first: OrderQueueMessage = serde_json::from_str(&f.orders.sent()[4].body).unwrap();
    let OrderQueueMessage::Placed(o) = first else {
        panic!()
    };
    assert_eq!(o.customer.first_name, None, "blank optional text is absent");
}

/// Sets (or adds) the member at a JSON pointer.
fn set(path: &'static str, value: Value) -> Mutation {
    Box::new(move |v| {
        let (parent, key) = path.rsplit_once('/').unwrap();
        match pointer(v, parent) {
            Value::Object(o) => {
                o.insert(key.to_string(), value.clone());
            }
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = value.clone(),
            other => panic!("{parent} is {other}"),
        }
    })
}

fn remove(path: &'static str) -> Mutation {
    Box::new(move |v| {
        let (parent, key) = path.rsplit_once('/').unwrap();
        pointer(v, parent).as_object_mut().unwrap().remove(key);
    })
}

fn pointer<'a>(v: &'a mut Value, path: &str) -> &'a mut Value {
    if path.is_empty() {
        return v;
    }
    v.pointer_mut(path)
        .unwrap_or_else(|| panic!("no {path} in the base order"))
}

#[tokio::test]
async fn every_rule_refuses_with_the_exact_field() {
    let long_gid = format!("gid://cloudshelf/Order/{}", "A".repeat(240));
    let long_email = format!("{}@example.com", "a".repeat(243));
    let cases: Vec<(Mutation, &str, &str)> = vec![
        // unknown fields, at every level
        (set("/coupon", json!("X")), "coupon", "unknown_field"),
        (
            set("/customer/nickname", json!("A")),
            "customer.nickname",
            "unknown_field",
        ),
        (
            set("/delivery_address/street", json!("A")),
            "delivery_address.street",
            "unknown_field",
        ),
        (
            set("/payment/fee", json!("1")),
            "payment.fee",
            "unknown_field",
        ),
        (
            set("/lines/0/discount", json!("1")),
            "lines[0].discount",
            "unknown_field",
        ),
        // envelope
        (
            set("/occurred_at", json!("2030-01-01T00:00:00Z")),
            "occurred_at",
            "invalid_value",
        ),
        (
            set("/occurred_at", json!("today")),
            "occurred_at",
            "invalid_value",
        ),
        (remove("/store"), "store", "missing_field"),
        (set("/store", json!("NOPE-01")), "store", "unknown_store"),
        // cloudshelf_order_id
        (
            remove("/cloudshelf_order_id"),
            "cloudshelf_order_id",
            "missing_field",
        ),
        (
            set("/cloudshelf_order_id", json!("")),
            "cloudshelf_order_id",
            "invalid_value",
        ),
        (
            set("/cloudshelf_order_id", json!("CS-1042")),
            "cloudshelf_order_id",
            "invalid_value",
        ),
        (
            set("/cloudshelf_order_id", json!("gid://cloudshelf/Order")),
            "cloudshelf_order_id",
            "invalid_value",
        ),
        (
            set("/cloudshelf_order_id", json!("gid://cloudshelf/Order/1 2")),
            "cloudshelf_order_id",
            "invalid_value",
        ),
        (
            set("/cloudshelf_order_id", json!(long_gid)),
            "cloudshelf_order_id",
            "invalid_value",
        ),
        (
            set("/cloudshelf_order_id", json!(1042)),
            "cloudshelf_order_id",
            "invalid_type",
        ),
        (
            set("/device", json!("d".repeat(257))),
            "device",
            "invalid_value",
        ),
        // customer
        (remove("/customer"), "customer", "missing_field"),
        (
            set("/customer", json!("ann@example.com")),
            "customer",
            "invalid_type",
        ),
        (remove("/customer/email"), "customer.email", "missing_field"),
        (
            set("/customer/email", json!("ann@example")),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/email", json!("ann.example.com")),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/email", json!("ann@x@example.com")),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/email", json!("@example.com")),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/email", json!("ann lee@example.com")),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/email", json!(long_email)),
            "customer.email",
            "invalid_value",
        ),
        (
            set("/customer/first_name", json!("A".repeat(101))),
            "customer.first_name",
            "invalid_value",
        ),
        (
            set("/customer/last_name", json!(7)),
            "customer.last_name",
            "invalid_type",
        ),
        (
            set("/customer/phone", json!("1".repeat(33))),
            "customer.phone",
            "invalid_value",
        ),
        // delivery address
        (
            remove("/delivery_address"),
            "delivery_address",
            "missing_field",
        ),
        (
            remove("/delivery_address/lines"),
            "delivery_address.lines",
            "missing_field",
        ),
        (
            set("/delivery_address/lines", json!([])),
            "delivery_address.lines",
            "invalid_value",
        ),
        (
            set("/delivery_address/lines", json!(["a", "b", "c", "d"])),
            "delivery_address.lines",
            "invalid_value",
        ),
        (
            set("/delivery_address/lines", json!("1 High St")),
            "delivery_address.lines",
            "invalid_type",
        ),
        (
            set("/delivery_address/lines/1", json!(" ")),
            "delivery_address.lines[1]",
            "invalid_value",
        ),
        (
            set("/delivery_address/lines/1", json!(2)),
            "delivery_address.lines[1]",
            "invalid_type",
        ),
        (
            remove("/delivery_address/city"),
            "delivery_address.city",
            "missing_field",
        ),
        (
            remove("/delivery_address/postcode"),
            "delivery_address.postcode",
            "missing_field",
        ),
        (
            set("/delivery_address/postcode", json!("")),
            "delivery_address.postcode",
            "invalid_value",
        ),
        (
            remove("/delivery_address/country"),
            "delivery_address.country",
            "missing_field",
        ),
        (
            set("/delivery_address/country", json!("gb")),
            "delivery_address.country",
            "invalid_value",
        ),
        (
            set("/delivery_address/country", json!("GBR")),
            "delivery_address.country",
            "invalid_value",
        ),
        (
            set("/delivery_address/country", json!("UK")),
            "delivery_address.country",
            "invalid_value",
        ),
        (
            set("/delivery_address/country", json!("XK")),
            "delivery_address.country",
            "invalid_value",
        ),
        (
            set("/delivery_address/country", json!("US")),
            "delivery_address.region",
            "missing_field",
        ),
        (
            set("/delivery_address/country", json!("CA")),
            "delivery_address.region",
            "missing_field",
        ),
        (
            set("/delivery_address/country", json!("AU")),
            "delivery_address.region",
            "missing_field",
        ),
        // shipping
        (
            remove("/shipping_method"),
            "shipping_method",
            "missing_field",
        ),
        (
            set("/shipping_method", json!("")),
            "shipping_method",
            "invalid_value",
        ),
        (
            set("/shipping_method", json!("home standard")),
            "shipping_method",
            "invalid_value",
        ),
        (
            set("/shipping_method", json!("h".repeat(65))),
            "shipping_method",
            "invalid_value",
        ),
        (
            set("/shipping_price", json!("-1.00")),
            "shipping_price",
            "invalid_value",
        ),
        (
            set("/shipping_price", json!(5)),
            "shipping_price",
            "invalid_type",
        ),
        (
            set("/shipping_price", json!("5.0001")),
            "shipping_price",
            "invalid_value",
        ),
        // payment
        (remove("/payment"), "payment", "missing_field"),
        (
            remove("/payment/provider"),
            "payment.provider",
            "missing_field",
        ),
        (
            remove("/payment/transaction_id"),
            "payment.transaction_id",
            "missing_field",
        ),
        (remove("/payment/amount"), "payment.amount", "missing_field"),
        (
            set("/payment/amount", json!("1e2")),
            "payment.amount",
            "invalid_value",
        ),
        (
            remove("/payment/currency"),
            "payment.currency",
            "missing_field",
        ),
        (
            set("/payment/currency", json!("gbp")),
            "payment.currency",
            "invalid_value",
        ),
        (
            set("/payment/currency", json!("GB")),
            "payment.currency",
            "invalid_value",
        ),
        (remove("/payment/status"), "payment.status", "missing_field"),
        (
            set("/payment/status", json!("pending")),
            "payment.status",
            "invalid_value",
        ),
        // lines
        (remove("/lines"), "lines", "missing_field"),
        (set("/lines", json!([])), "lines", "invalid_value"),
        (
            set(
                "/lines",
                json!(vec![
                    json!({ "sku": "A", "quantity": 1, "unit_price": "0", "currency": "GBP" });
                    501
                ]),
            ),
            "lines",
            "invalid_value",
        ),
        (
            set("/lines/0", json!("Prod123Var123789S")),
            "lines[0]",
            "invalid_type",
        ),
        (remove("/lines/0/sku"), "lines[0].sku", "missing_field"),
        (
            set("/lines/0/sku", json!("Prod 123")),
            "lines[0].sku",
            "invalid_value",
        ),
        (
            set("/lines/0/ean", json!("12345")),
            "lines[0].ean",
            "invalid_value",
        ),
        (
            set("/lines/0/quantity", json!(0)),
            "lines[0].quantity",
            "invalid_value",
        ),
        (
            set("/lines/0/quantity", json!(-2)),
            "lines[0].quantity",
            "invalid_value",
        ),
        (
            set("/lines/0/quantity", json!(1.5)),
            "lines[0].quantity",
            "invalid_type",
        ),
        (
            set("/lines/0/quantity", json!("2")),
            "lines[0].quantity",
            "invalid_type",
        ),
        (
            remove("/lines/0/quantity"),
            "lines[0].quantity",
            "missing_field",
        ),
        (
            remove("/lines/0/unit_price"),
            "lines[0].unit_price",
            "missing_field",
        ),
        (
            set("/lines/0/unit_price", json!("-49.00")),
            "lines[0].unit_price",
            "invalid_value",
        ),
        (
            set("/lines/0/unit_price", json!(49.0)),
            "lines[0].unit_price",
            "invalid_type",
        ),
        (
            remove("/lines/0/currency"),
            "lines[0].currency",
            "missing_field",
        ),
        (
            set("/lines/0/currency", json!("EUR")),
            "lines[0].currency",
            "currency_mismatch",
        ),
        (
            Box::new(|v: &mut Value| {
                let lines = v["lines"].as_array_mut().unwrap();
                lines.push(json!({ "sku": "Tee01Black-M", "quantity": 1, "unit_price": "0.00", "currency": "GBP" }));
                lines.push(json!({ "sku": "Tee01Black-L", "quantity": 1, "unit_price": "0.00", "currency": "EUR" }));
            }),
            "lines[2].currency",
            "currency_mismatch",
        ),
        // Fuzzing defects: currency not in ISO 4217, a currency other than the store's, year 0001, i64::MIN.
        (
            set("/payment/currency", json!("ZZZ")),
            "payment.currency",
            "invalid_value",
        ),
        (
            set("/lines/0/currency", json!("ZZZ")),
            "lines[0].currency",
            "invalid_value",
        ),
        (
            Box::new(|v: &mut Value| {
                v["payment"]["currency"] = json!("EUR");
                v["lines"][0]["currency"] = json!("EUR");
            }),
            "payment.currency",
            "currency_mismatch",
        ),
        (
            set("/occurred_at", json!("0001-01-01T00:00:00Z")),
            "occurred_at",
            "invalid_value",
        ),
        (
            set("/occurred_at", json!("2026-11-14T11:59:00Z")),
            "occurred_at",
            "invalid_value",
        ),
        (
            set("/lines/0/quantity", json!(i64::MIN)),
            "lines[0].quantity",
            "invalid_value",
        ),
        (
            Box::new(|v: &mut Value| {
                v[&"x".repeat(10_000)] = json!(1);
            }),
            // Clipped to 64 characters.
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…",
            "unknown_field",
        ),
    ];
    let f = fixture();
    for (i, (mutate, field, code)) in cases.iter().enumerate() {
        let mut v = order();
        mutate(&mut v);
        let r = f.send_json(&format!("bad-{i}"), &v).await;
        assert_eq!(
            (
                r.status,
                r.body["error"]["field"].as_str(),
                r.body["error"]["code"].as_str()
            ),
            (400, Some(*field), Some(*code)),
            "case {i} ({field}): {}",
            r.body
        );
    }
    assert!(f.orders.sent().is_empty(), "nothing refused was queued");
    assert_eq!(f.metrics.total(names::EVENTS_REJECTED), cases.len() as f64);
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 0.0);
}

#[tokio::test]
async fn totals_must_equal_the_payment_exactly() {
    let f = fixture();
    let mut v = order();
    v["payment"]["amount"] = json!("100.00");
    let r = f.send_json("t1", &v).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "payment.amount");
    assert_eq!(r.body["error"]["code"], "total_mismatch");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("100.00") && message.contains("103.00"),
        "both figures: {message}"
    );

    // Shipping counts: without it the lines alone (98.00) do not make 103.00.
    let mut v = order();
    v.as_object_mut().unwrap().remove("shipping_price");
    let r = f.send_json("t2", &v).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("payment.amount"))
    );

    // Off by a thousandth is off.
    let mut v = order();
    v["payment"]["amount"] = json!("103.001");
    assert_eq!(f.send_json("t3", &v).await.status, 400);

    // Quantities multiply.
    let mut v = order();
    v["lines"][0]["quantity"] = json!(3);
    v["payment"]["amount"] = json!("152");
    assert_eq!(f.send_json("t4", &v).await.status, 202);
    assert_eq!(f.orders.sent().len(), 1);
}

#[tokio::test]
async fn duplicate_answers_200_and_a_reused_id_409() {
    let f = fixture();
    let body = order().to_string();
    assert_eq!(f.send("o1", &body).await.status, 202);
    let dup = f.send("o1", &body).await;
    assert_eq!(
        (dup.status, dup.body["status"].as_str()),
        (200, Some("duplicate"))
    );
    let mut other = order();
    other["customer"]["email"] = json!("bob@example.com");
    let conflict = f.send_json("o1", &other).await;
    assert_eq!(
        (conflict.status, conflict.body["error"]["code"].as_str()),
        (409, Some("id_reused"))
    );
    assert_eq!(f.orders.sent().len(), 1, "queued once");
    assert_eq!(f.orders.inner.len(), 1);
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 1.0);
}

#[tokio::test]
async fn orders_queue_failure_answers_503_and_the_retry_is_accepted() {
    let f = fixture();
    let body = order().to_string();
    f.orders.fail.store(true, Ordering::SeqCst);
    let r = f.send("o1", &body).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("queue_unavailable"))
    );
    assert_eq!(r.retry_after, Some(1));
    assert!(f.orders.inner.is_empty());
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 0.0);

    f.orders.fail.store(false, Ordering::SeqCst);
    let retry = f.send("o1", &body).await;
    assert_eq!(
        retry.status, 202,
        "the released record lets the retry through"
    );
    assert_eq!(f.orders.inner.len(), 1);
    assert_eq!(f.send("o1", &body).await.status, 200);
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 1.0);
}

#[tokio::test]
async fn stock_events_go_to_the_stock_queue_and_orders_to_the_orders_queue() {
    let f = fixture();
    let s = sale(
        "LDN-01",
        NOW_MS - 60_000,
        &[("Prod123Var123789S", 2), ("Tee01Black-M", 1)],
    );
    assert_eq!(f.send("sale-1", &s).await.status, 202);
    assert_eq!(f.stock.sent().len(), 2);
    assert!(
        f.orders.sent().is_empty(),
        "a sale never reaches the orders queue"
    );

    assert_eq!(f.send_json("order-1", &order()).await.status, 202);
    assert_eq!(
        f.stock.sent().len(),
        2,
        "an order never reaches the stock queue"
    );
    assert_eq!(f.orders.sent().len(), 1);
    assert_eq!(f.metrics.total(names::ORDERS_ACCEPTED), 1.0);
    assert_eq!(f.metrics.total(names::EVENTS_ACCEPTED), 2.0);
}

#[tokio::test]
async fn without_an_orders_queue_order_placed_is_unsupported() {
    let f = fixture_with(false);
    let r = f.send_json("o1", &order()).await;
    assert_eq!(
        (
            r.status,
            r.body["error"]["field"].as_str(),
            r.body["error"]["code"].as_str()
        ),
        (400, Some("type"), Some("unsupported_type"))
    );
    assert!(f.orders.sent().is_empty() && f.stock.sent().is_empty());
    // Stock events are unaffected.
    let s = sale("LDN-01", NOW_MS - 60_000, &[("Prod123Var123789S", 1)]);
    assert_eq!(f.send("sale-1", &s).await.status, 202);
}

#[tokio::test]
async fn a_long_global_id_groups_by_its_hash() {
    let f = fixture();
    let long_id = format!("gid://cloudshelf/Order/{}", "B".repeat(200));
    let mut v = order();
    v["cloudshelf_order_id"] = json!(long_id);
    assert_eq!(f.send_json("long-1", &v).await.status, 202);
    let sent = f.orders.sent();
    assert_eq!(sent[0].group_id, format!("order-{}", sha256_hex(&long_id)));
    assert!(sent[0].group_id.len() <= 128, "fits a MessageGroupId");
    let OrderQueueMessage::Placed(o) = serde_json::from_str(&sent[0].body).unwrap() else {
        panic!()
    };
    assert_eq!(o.cloudshelf_order_id, long_id, "the body keeps the real id");
    assert_eq!(
        order_message(&o),
        sent[0].clone(),
        "the message is a pure function of the order"
    );
}

/// Centra's sizes as far as these tests need them: the samples and `SKU-0`…`SKU-999`, `A`…`Z`.
fn test_sizes() -> Vec<shared::centra::SizeRecord> {
    let named = [
        "Prod123Var123789S",
        "Prod123Var123790M",
        "Tee01Black-M",
        "Tee01Black-L",
        "Jeans32Indigo-30",
    ]
    .into_iter()
    .map(str::to_string)
    .chain((0..1000).map(|i| format!("SKU-{i}")))
    .chain(('A'..='Z').map(|c| c.to_string()));
    named
        .enumerate()
        .map(|(i, sku)| shared::centra::SizeRecord {
            id: i as u64 + 1,
            ean: (sku == "Prod123Var123790M").then(|| "7350000000012".to_string()),
            sku: Some(sku),
        })
        .collect()
}

#[tokio::test]
async fn duplicate_keys_in_an_order_are_refused_naming_the_key() {
    let f = fixture();
    let body = order().to_string();
    // A stock type first and `order.placed` last: a last-wins parser would take it as an order.
    let two_types = format!("{{\"type\":\"stock.sale\",{}", &body[1..]);
    let amount = body.replacen("\"amount\":", "\"amount\":\"0.00\",\"amount\":", 1);
    let email = body.replacen("\"email\":", "\"email\":\"eve@example.com\",\"email\":", 1);
    for (i, (text, field)) in [
        (two_types, "type"),
        (amount, "payment.amount"),
        (email, "customer.email"),
    ]
    .iter()
    .enumerate()
    {
        let r = f.send(&format!("dup-{i}"), text).await;
        assert_eq!(
            (
                r.status,
                r.body["error"]["code"].as_str(),
                r.body["error"]["field"].as_str()
            ),
            (400, Some("duplicate_key"), Some(*field)),
            "{text}"
        );
    }
    assert!(f.orders.sent().is_empty());
    assert!(f.stock.sent().is_empty());
}
