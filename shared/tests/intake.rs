//! Intake answers, exactly as the store-events contract lists them, and the durability rules behind them.

use crate::common;

use async_trait::async_trait;
use common::*;
use shared::adapters::memory::{MemoryFifoQueue, MemoryIdempotencyStore};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, OffsetClock};
use shared::core::errors::BackendError;
use shared::intake::contract::{IntakeResponse, IntakeSettings};
use shared::intake::signature::{sign, WebhookVerifier};
use shared::intake::store_events::{IntakeRequest, StoreEventIntake};
use shared::stock::ports::*;
use shared::telemetry::metrics::{names, Metrics};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const OLD_SECRET: &str = "whsec_c2VjcmV0LW51bWJlci10d28tZm9yLXJvdGF0aW9u";

/// A queue that can be told to fail, or to fail after accepting some messages.
struct FlakyQueue {
    inner: Arc<MemoryFifoQueue>,
    fail: AtomicBool,
    accept_before_failing: AtomicUsize,
}

#[async_trait]
impl StockQueue for FlakyQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        if self.fail.load(Ordering::SeqCst) {
            let n = self
                .accept_before_failing
                .load(Ordering::SeqCst)
                .min(messages.len());
            self.inner.send_all(&messages[..n]).await?;
            return Err(BackendError::new("sqs", "ServiceUnavailable"));
        }
        self.inner.send_all(messages).await
    }
}

/// An idempotency store whose `complete` can fail (the process "dies" after queueing).
struct DyingStore {
    inner: MemoryIdempotencyStore,
    die_on_complete: AtomicBool,
}

#[async_trait]
impl IdempotencyStore for DyingStore {
    async fn acquire(
        &self,
        r: &IdempotencyRecord,
        now_ms: i64,
    ) -> Result<AcquireOutcome, BackendError> {
        self.inner.acquire(r, now_ms).await
    }
    async fn complete(&self, key: &str, owner: &str, exp: i64) -> Result<bool, BackendError> {
        if self.die_on_complete.load(Ordering::SeqCst) {
            return Err(BackendError::new("dynamodb", "process died"));
        }
        self.inner.complete(key, owner, exp).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<bool, BackendError> {
        self.inner.release(key, owner).await
    }
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        self.inner.get(key).await
    }
}

struct Fixture {
    intake: StoreEventIntake,
    fifo: Arc<MemoryFifoQueue>,
    queue: Arc<FlakyQueue>,
    store: Arc<DyingStore>,
    clock: OffsetClock,
    metrics: Arc<Metrics>,
}

fn fixture() -> Fixture {
    let fifo = Arc::new(MemoryFifoQueue::new(5));
    let queue = Arc::new(FlakyQueue {
        inner: fifo.clone(),
        fail: AtomicBool::new(false),
        accept_before_failing: AtomicUsize::new(0),
    });
    let store = Arc::new(DyingStore {
        inner: MemoryIdempotencyStore::new(),
        die_on_complete: AtomicBool::new(false),
    });
    let clock = OffsetClock::new();
    let metrics = Arc::new(Metrics::new());
    let intake = StoreEventIntake {
        verifier: WebhookVerifier::from_config(&format!("{SECRET} {OLD_SECRET}")).unwrap(),
        mappings: Arc::new(Mappings::embedded_default()),
        idempotency: store.clone(),
        queue: queue.clone(),
        orders: None,
        clock: Arc::new(clock.clone()),
        catalogue: Arc::new(shared::stock::identity::ItemCatalogue::with_sizes(
            test_sizes(),
            shared::core::clock::system_clock(),
        )),
        metrics: metrics.clone(),
        settings: IntakeSettings {
            in_progress_wait_ms: 200,
            ..Default::default()
        },
    };
    Fixture {
        intake,
        fifo,
        queue,
        store,
        clock,
        metrics,
    }
}

impl Fixture {
    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    async fn post(
        &self,
        id: &str,
        body: &str,
        secret: &str,
        ts: i64,
        content_type: &str,
    ) -> IntakeResponse {
        let signature = sign(secret, id, ts, body.as_bytes());
        let ts = ts.to_string();
        self.intake
            .handle(IntakeRequest {
                content_type: Some(content_type),
                webhook_id: Some(id),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some(&signature),
                body: body.as_bytes(),
            })
            .await
    }

    async fn send(&self, id: &str, body: &str) -> IntakeResponse {
        self.post(id, body, SECRET, self.now() / 1000, "application/json")
            .await
    }
}

fn body(f: &Fixture) -> String {
    sale(
        "LDN-01",
        f.now() - 60_000,
        &[("Prod123Var123789S", 2), ("Tee01Black-M", 1)],
    )
}

#[tokio::test]
async fn signature_cases() {
    let f = fixture();
    let b = body(&f);
    let now_s = f.now() / 1000;
    assert_eq!(
        f.post("valid", &b, SECRET, now_s, "application/json")
            .await
            .status,
        202
    );
    assert_eq!(
        f.post("rotated", &b, OLD_SECRET, now_s, "application/json")
            .await
            .status,
        202,
        "old secret during rotation"
    );
    let wrong = f
        .post(
            "wrong",
            &b,
            "whsec_d3Jvbmctc2VjcmV0LWtleQ==",
            now_s,
            "application/json",
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let stale = f
        .post("stale", &b, SECRET, now_s - 301, "application/json")
        .await;
    assert_eq!(
        (stale.status, stale.body["error"]["code"].as_str()),
        (401, Some("timestamp_out_of_tolerance"))
    );
    let missing = f
        .intake
        .handle(IntakeRequest {
            content_type: Some("application/json"),
            webhook_id: Some("x"),
            webhook_timestamp: None,
            webhook_signature: Some("v1,AAAA"),
            body: b.as_bytes(),
        })
        .await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (401, Some("missing_signature_header"))
    );
    // Nothing from a refused request reached the queue.
    assert_eq!(f.fifo.len(), 4);
}

#[tokio::test]
async fn every_refusal_names_its_reason() {
    let f = fixture();
    let mut bad = serde_json::from_str::<serde_json::Value>(&body(&f)).unwrap();
    bad["lines"][1]["quantity"] = serde_json::json!(-1);
    let r = f.send("bad-qty", &bad.to_string()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "lines[1].quantity");
    assert_eq!(r.body["error"]["code"], "invalid_value");

    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(256 * 1024));
    assert_eq!(f.send("big", &big).await.status, 413);

    let r = f
        .post(
            "form",
            &body(&f),
            SECRET,
            f.now() / 1000,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(
        f.post(
            "charset",
            &body(&f),
            SECRET,
            f.now() / 1000,
            "application/json; charset=utf-8"
        )
        .await
        .status,
        202
    );

    let r = f.send("not-json", "{oops").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    assert_eq!(f.metrics.total(names::EVENTS_REJECTED), 4.0);
}

#[tokio::test]
async fn duplicate_answers_200_and_reused_id_answers_409() {
    let f = fixture();
    let b = body(&f);
    assert_eq!(f.send("e1", &b).await.status, 202);
    let dup = f.send("e1", &b).await;
    assert_eq!(
        (dup.status, dup.body["status"].as_str()),
        (200, Some("duplicate"))
    );
    let other = sale("LDN-01", f.now() - 60_000, &[("Prod123Var123789S", 3)]);
    assert_eq!(f.send("e1", &other).await.status, 409);
    assert_eq!(f.fifo.len(), 2, "queued once");
}

#[tokio::test]
async fn queue_failure_answers_503_and_the_retry_goes_through_once() {
    let f = fixture();
    let b = body(&f);
    f.queue.fail.store(true, Ordering::SeqCst);
    f.queue.accept_before_failing.store(1, Ordering::SeqCst); // one of two lines got through
    let r = f.send("e1", &b).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after, Some(1));
    f.queue.fail.store(false, Ordering::SeqCst);
    assert_eq!(
        f.send("e1", &b).await.status,
        202,
        "the released record lets the retry through"
    );
    assert_eq!(f.fifo.len(), 2, "the line sent twice is deduplicated");
}

#[tokio::test]
async fn crash_after_queueing_is_recovered_after_the_lease() {
    let f = fixture();
    let b = body(&f);
    f.store.die_on_complete.store(true, Ordering::SeqCst);
    assert_eq!(
        f.send("e1", &b).await.status,
        202,
        "queued: the completion failure is not the sender's problem"
    );
    // Simulate the crash case: the record stays INPROGRESS. A retry inside the lease may not be told 200.
    let record = f.store.get("store-event#e1").await.unwrap().unwrap();
    assert_eq!(record.status, IdempotencyStatus::InProgress);
    f.store.die_on_complete.store(false, Ordering::SeqCst);
    let during = f.send("e1", &b).await;
    assert_eq!(
        (during.status, during.body["error"]["code"].as_str()),
        (503, Some("in_progress"))
    );
    f.clock
        .advance_millis(IntakeSettings::default().lease_ms + 1);
    assert_eq!(
        f.send("e1", &b).await.status,
        202,
        "lease over: taken over and re-queued"
    );
    assert_eq!(f.fifo.len(), 2, "the re-queue is deduplicated");
    assert_eq!(f.send("e1", &b).await.status, 200);
}

#[tokio::test]
async fn concurrent_duplicates_get_one_202() {
    let f = fixture();
    let b = body(&f);
    let results = futures::future::join_all((0..8).map(|_| f.send("same", &b))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!(f.fifo.len(), 2);
}

#[tokio::test]
async fn messages_are_grouped_by_sku_with_stable_dedup_ids() {
    let f = fixture();
    assert_eq!(f.send("e1", &body(&f)).await.status, 202);
    let got = f.fifo.receive(10, 1000, f.now());
    let mut groups: Vec<&str> = got.iter().map(|m| m.group_id.as_str()).collect();
    groups.sort();
    assert_eq!(groups, vec!["Prod123Var123789S", "Tee01Black-M"]);
    let msg: shared::events::store_events::StockLineMessage =
        serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(msg.event_id, "e1");
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

// ---- Defects found by fuzzing: each test below failed (or panicked) before its fix. ----

const DAY_MS: i64 = 24 * 3600 * 1000;

fn error_of(r: &IntakeResponse) -> (u16, &str, &str) {
    (
        r.status,
        r.body["error"]["code"].as_str().unwrap_or("-"),
        r.body["error"]["field"].as_str().unwrap_or("-"),
    )
}

#[tokio::test]
async fn duplicate_keys_are_refused_naming_the_key() {
    let f = fixture();
    // serde_json writes keys sorted: `type` comes last, so a `type` put first is the one a last-wins parser drops.
    let b = movement(
        "stock.return",
        "LDN-01",
        f.now() - 60_000,
        &[("Prod123Var123789S", 1)],
    );
    let teleport = format!("{{\"type\":\"stock.teleport\",{}", &b[1..]);
    let r = f.send("dup-type", &teleport).await;
    assert_eq!(error_of(&r), (400, "duplicate_key", "type"), "{:?}", r.body);

    let sku = b.replacen("\"sku\":", "\"sku\":\"Tee01Black-M\",\"sku\":", 1);
    let r = f.send("dup-sku", &sku).await;
    assert_eq!(error_of(&r), (400, "duplicate_key", "lines[0].sku"));
    assert_eq!(f.fifo.len(), 0, "nothing queued");
    assert_eq!(f.send("clean", &b).await.status, 202);
}

#[tokio::test]
async fn currency_must_be_iso_4217_and_the_stores() {
    let f = fixture();
    let at = f.now() - 60_000;
    let priced = |store: &str, currency: &str| {
        serde_json::json!({ "type": "stock.sale", "occurred_at": iso(at), "store": store,
            "lines": [{ "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": currency }] })
        .to_string()
    };
    let r = f.send("zzz", &priced("LDN-01", "ZZZ")).await;
    assert_eq!(
        error_of(&r),
        (400, "invalid_value", "lines[0].currency"),
        "{:?}",
        r.body
    );
    let r = f.send("eur", &priced("LDN-01", "EUR")).await;
    assert_eq!(
        error_of(&r),
        (400, "currency_mismatch", "lines[0].currency")
    );
    assert!(r.body["error"]["message"].as_str().unwrap().contains("GBP"));
    // An unpriced adjustment may still name a currency: the store's only.
    let adj = serde_json::json!({ "type": "stock.adjustment", "occurred_at": iso(at), "store": "STO-01",
        "reason": "damaged", "lines": [{ "sku": "Tee01Black-M", "quantity": -1, "currency": "GBP" }] });
    let r = f.send("adj", &adj.to_string()).await;
    assert_eq!(
        error_of(&r),
        (400, "currency_mismatch", "lines[0].currency")
    );
    assert_eq!(f.send("sek", &priced("STO-01", "SEK")).await.status, 202);
    assert_eq!(f.send("dkk", &priced("CPH-01", "DKK")).await.status, 202);
}

#[tokio::test]
async fn occurred_at_must_be_within_14_days_back_and_5_minutes_ahead() {
    let f = fixture();
    let sku = [("Tee01Black-M", 1)];
    let mut year_one: serde_json::Value =
        serde_json::from_str(&sale("LDN-01", f.now(), &sku)).unwrap();
    year_one["occurred_at"] = serde_json::json!("0001-01-01T00:00:00Z");
    let r = f.send("y1", &year_one.to_string()).await;
    assert_eq!(error_of(&r), (400, "invalid_value", "occurred_at"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stock.count"));

    let too_old = sale("LDN-01", f.now() - 14 * DAY_MS - 1_000, &sku);
    assert_eq!(
        error_of(&f.send("old", &too_old).await),
        (400, "invalid_value", "occurred_at")
    );
    let too_new = sale("LDN-01", f.now() + 5 * 60_000 + 1_000, &sku);
    assert_eq!(
        error_of(&f.send("new", &too_new).await),
        (400, "invalid_value", "occurred_at")
    );
    let oldest = sale("LDN-01", f.now() - 14 * DAY_MS + 60_000, &sku);
    assert_eq!(f.send("oldest", &oldest).await.status, 202);
    let ahead = sale("LDN-01", f.now() + 4 * 60_000, &sku);
    assert_eq!(f.send("ahead", &ahead).await.status, 202);
}

#[tokio::test]
async fn echoed_input_is_clipped_and_never_echoed_twice() {
    let f = fixture();
    let key = "k".repeat(10_000);
    let mut v: serde_json::Value =
        serde_json::from_str(&sale("LDN-01", f.now(), &[("Tee01Black-M", 1)])).unwrap();
    v[key.as_str()] = serde_json::json!(1);
    v["lines"][0][key.as_str()] = serde_json::json!(1);
    let r = f.send("long-key", &v.to_string()).await;
    let (status, code, field) = error_of(&r);
    assert_eq!((status, code), (400, "unknown_field"));
    assert_eq!(field, format!("{}…", &key[..64]));
    let text = r.body.to_string();
    assert!(text.len() < 600, "{} bytes: {text}", text.len());
    assert_eq!(text.matches(&key[..64]).count(), 1, "{text}");

    // Nested: the path stays exact, the key is clipped.
    v.as_object_mut().unwrap().remove(key.as_str());
    let r = f.send("long-nested-key", &v.to_string()).await;
    assert_eq!(error_of(&r).2, format!("lines[0].{}…", &key[..64 - 9]));

    // A long unknown type is echoed in the message, clipped.
    let mut v: serde_json::Value =
        serde_json::from_str(&sale("LDN-01", f.now(), &[("Tee01Black-M", 1)])).unwrap();
    v["type"] = serde_json::json!("t".repeat(10_000));
    let r = f.send("long-type", &v.to_string()).await;
    assert_eq!(error_of(&r), (400, "unknown_type", "type"));
    assert!(r.body.to_string().len() < 600);
    // Normal input keeps its exact path.
    v["type"] = serde_json::json!("stock.sale");
    v["lines"][0]["quantiy"] = serde_json::json!(1);
    assert_eq!(
        error_of(&f.send("typo", &v.to_string()).await).2,
        "lines[0].quantiy"
    );
}

#[tokio::test]
async fn an_extreme_webhook_timestamp_is_401_not_a_panic() {
    let f = fixture();
    let b = body(&f);
    for ts in [i64::MIN.to_string(), i64::MAX.to_string()] {
        let r = f
            .intake
            .handle(IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some("evt_ts"),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some("v1,garbage"),
                body: b.as_bytes(),
            })
            .await;
        assert_eq!(error_of(&r), (401, "timestamp_out_of_tolerance", "-"));
    }
}

#[tokio::test]
async fn extreme_quantities_are_refused_not_wrapped() {
    let f = fixture();
    let at = f.now() - 60_000;
    let adjustment = |q: serde_json::Value| {
        serde_json::json!({ "type": "stock.adjustment", "occurred_at": iso(at), "store": "LDN-01",
            "reason": "found", "lines": [{ "sku": "Tee01Black-M", "quantity": q }] })
        .to_string()
    };
    for (i, q) in [
        serde_json::json!(i64::MIN),
        serde_json::json!(i64::MAX),
        serde_json::json!(-1_000_001),
    ]
    .into_iter()
    .enumerate()
    {
        let r = f.send(&format!("q{i}"), &adjustment(q)).await;
        assert_eq!(
            error_of(&r),
            (400, "invalid_value", "lines[0].quantity"),
            "{:?}",
            r.body
        );
    }
    for (i, q) in [serde_json::json!(u64::MAX), serde_json::json!(1e300)]
        .into_iter()
        .enumerate()
    {
        let r = f.send(&format!("t{i}"), &adjustment(q)).await;
        assert_eq!(error_of(&r), (400, "invalid_type", "lines[0].quantity"));
    }
    // Two lines of one item add up to one movement: bounded like a line.
    let two = sale(
        "LDN-01",
        at,
        &[("Tee01Black-M", 600_000), ("Tee01Black-M", 600_000)],
    );
    assert_eq!(
        error_of(&f.send("sum", &two).await),
        (400, "invalid_value", "lines[1].quantity")
    );
    assert_eq!(
        f.send("max", &adjustment(serde_json::json!(-1_000_000)))
            .await
            .status,
        202
    );
    assert_eq!(f.fifo.len(), 1);
}

#[tokio::test]
async fn an_id_reused_on_day_8_with_another_body_is_409() {
    let f = fixture();
    let first = sale("LDN-01", f.now() - 60_000, &[("Tee01Black-M", 1)]);
    assert_eq!(f.send("evt_reused", &first).await.status, 202);
    // Past the old 7-day idempotency TTL, inside the applier's 15-day movement markers: a 202 here would be
    // dropped by the applier as a duplicate of the first event's movement.
    f.clock.advance_millis(8 * DAY_MS);
    let other = sale("LDN-01", f.now() - 60_000, &[("Tee01Black-L", 2)]);
    let r = f.send("evt_reused", &other).await;
    assert_eq!(error_of(&r), (409, "id_reused", "-"));
    assert_eq!(f.send("evt_reused", &first).await.status, 200);
    assert_eq!(f.fifo.len(), 1);
    assert!(
        IntakeSettings::default().idempotency_ttl_s >= shared::stock::apply::MOVEMENT_MARKER_TTL_S,
        "the intake remembers ids at least as long as the applier"
    );
}

#[tokio::test]
async fn the_lambda_route_answers_404_and_405_as_json() {
    use shared::intake::http::route;
    let f = fixture();
    let intake = shared::intake::http::WebhookIntake {
        store_events: f.intake,
        centra_webhooks: shared::intake::centra_webhooks::CentraWebhookIntake {
            verifier: None,
            idempotency: f.store.clone(),
            orders: None,
            clock: Arc::new(f.clock.clone()),
            metrics: f.metrics.clone(),
            settings: IntakeSettings::default(),
        },
    };
    let headers = http::HeaderMap::new();
    let json = |r: &http::Response<String>| -> serde_json::Value {
        assert_eq!(r.headers()["content-type"], "application/json");
        serde_json::from_str(r.body()).unwrap()
    };
    for path in ["/v1/store-events", "/prod/v1/centra-webhooks"] {
        for method in [http::Method::GET, http::Method::PUT, http::Method::HEAD] {
            let r = route(&intake, &method, path, &headers, b"").await;
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], "POST");
            assert_eq!(json(&r)["error"]["code"], "method_not_allowed");
        }
    }
    for method in [http::Method::GET, http::Method::POST] {
        let r = route(&intake, &method, "/v1/nothing", &headers, b"").await;
        assert_eq!(r.status(), 404);
        assert_eq!(json(&r)["error"]["code"], "not_found");
    }
    let r = route(
        &intake,
        &http::Method::POST,
        "/v1/store-events",
        &headers,
        b"{}",
    )
    .await;
    assert_eq!(r.status(), 415);
    assert_eq!(json(&r)["error"]["code"], "unsupported_media_type");
}
