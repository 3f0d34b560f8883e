//! `POST /v1/centra-webhooks`: Centra's signature on the raw form body, per-event deduplication through the
//! idempotency store, one `send_all` to the orders queue, and answers Centra can act on.

use async_trait::async_trait;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::adapters::memory::{MemoryFifoQueue, MemoryIdempotencyStore};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock};
use shared::core::errors::BackendError;
use shared::events::orders::{CentraWebhookEvent, OrderQueueMessage};
use shared::intake::centra_webhooks::{
    sign_centra, CentraSignatureVerifier, CentraWebhookIntake, CentraWebhookRequest,
};
use shared::intake::contract::{IntakeResponse, IntakeSettings};
use shared::intake::http::{self as http_adapter, WebhookIntake};
use shared::intake::signature::WebhookVerifier;
use shared::intake::store_events::StoreEventIntake;
use shared::stock::ports::*;
use shared::telemetry::metrics::{names, Metrics};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const NOW_MS: i64 = 1_795_867_200_000;
const SECRET: &str = "centra-endpoint-secret-2026";
const OLD_SECRET: &str = "centra-endpoint-secret-2025";
const STORE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct RecordingQueue {
    inner: MemoryFifoQueue,
    sent: Mutex<Vec<FifoMessage>>,
    calls: AtomicUsize,
    fail: AtomicBool,
}

#[async_trait]
impl StockQueue for RecordingQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::new("sqs", "ServiceUnavailable"));
        }
        self.sent.lock().unwrap().extend_from_slice(messages);
        self.inner.send_all(messages).await
    }
}

impl OrderQueue for RecordingQueue {}

struct Fixture {
    intake: CentraWebhookIntake,
    queue: Arc<RecordingQueue>,
    store: Arc<MemoryIdempotencyStore>,
    metrics: Arc<Metrics>,
    clock: ManualClock,
}

fn fixture_with(settings: IntakeSettings) -> Fixture {
    let queue = Arc::new(RecordingQueue {
        inner: MemoryFifoQueue::new(5),
        sent: Mutex::new(Vec::new()),
        calls: AtomicUsize::new(0),
        fail: AtomicBool::new(false),
    });
    let store = Arc::new(MemoryIdempotencyStore::new());
    let clock = ManualClock::at(NOW_MS);
    let metrics = Arc::new(Metrics::new());
    let intake = CentraWebhookIntake {
        verifier: Some(
            CentraSignatureVerifier::from_config(&format!("{SECRET}, {OLD_SECRET}")).unwrap(),
        ),
        idempotency: store.clone(),
        orders: Some(queue.clone()),
        clock: Arc::new(clock.clone()),
        metrics: metrics.clone(),
        settings,
    };
    Fixture {
        intake,
        queue,
        store,
        metrics,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(IntakeSettings {
        in_progress_wait_ms: 0,
        ..Default::default()
    })
}

/// PHP `urlencode` (what Centra's `http_build_query` produces): unreserved bytes as they are, space as `+`.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form(json: &str) -> String {
    format!("payload={}", urlencode(json))
}

fn event(kind: &str, action: &str, id: u64) -> Value {
    json!({ "type": kind, "action": action, "date": "2026-11-28 12:00:00.000001", "id": id })
}

fn orders(ids: std::ops::Range<u64>) -> Vec<Value> {
    ids.map(|id| event("order", "update", id)).collect()
}

fn payload(events: &[Value]) -> String {
    json!({ "events": events }).to_string()
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Fixture {
    fn now_s(&self) -> i64 {
        self.clock.now_seconds()
    }

    async fn post_raw(&self, body: &str, signature: Option<&str>) -> IntakeResponse {
        self.intake
            .handle(CentraWebhookRequest {
                content_type: Some("application/x-www-form-urlencoded"),
                signature,
                body: body.as_bytes(),
            })
            .await
    }

    /// Posts a raw form body signed like Centra with the current secret.
    async fn post_form(&self, body: &str) -> IntakeResponse {
        let header = sign_centra(SECRET, self.now_s(), body.as_bytes());
        self.post_raw(body, Some(&header)).await
    }

    async fn post(&self, events: &[Value]) -> IntakeResponse {
        self.post_form(&form(&payload(events))).await
    }

    fn queued_events(&self) -> Vec<CentraWebhookEvent> {
        self.queue
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|m| match serde_json::from_str(&m.body).unwrap() {
                OrderQueueMessage::CentraEvent(e) => e,
                other => panic!("unexpected message {other:?}"),
            })
            .collect()
    }
}

fn counts(r: &IntakeResponse) -> (u16, u64, u64, u64) {
    (
        r.status,
        r.body["queued"].as_u64().unwrap_or(u64::MAX),
        r.body["duplicates"].as_u64().unwrap_or(u64::MAX),
        r.body["ignored"].as_u64().unwrap_or(u64::MAX),
    )
}

#[tokio::test]
async fn a_signed_call_queues_its_events_with_group_and_dedup_ids() {
    let f = fixture();
    let events = vec![
        event("order", "insert", 2735),
        event("shipment", "good_to_go", 17),
        json!({ "type": "return", "action": "create", "date": "2026-11-28 12:00:01.5", "id": "R-9" }),
    ];
    let r = f.post(&events).await;
    assert_eq!(counts(&r), (200, 3, 0, 0), "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "status": "accepted", "queued": 3, "duplicates": 0, "ignored": 0 })
    );

    let sent = f.queue.sent.lock().unwrap().clone();
    let groups: Vec<&str> = sent.iter().map(|m| m.group_id.as_str()).collect();
    assert_eq!(
        groups,
        [
            "centra-order-2735",
            "centra-shipment-17",
            "centra-return-R-9"
        ]
    );
    let queued = f.queued_events();
    assert_eq!(
        queued[0],
        CentraWebhookEvent {
            kind: "order".into(),
            action: "insert".into(),
            id: "2735".into(),
            date: "2026-11-28 12:00:00.000001".into(),
        }
    );
    assert_eq!(queued[2].date, "2026-11-28 12:00:01.5");
    for (m, e) in sent.iter().zip(&queued) {
        assert_eq!(m.dedup_id, sha256_hex(&e.dedupe_key()));
    }
    assert_eq!(f.queue.inner.len(), 3);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOKS_RECEIVED), 1.0);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOK_EVENTS_QUEUED), 3.0);
}

#[tokio::test]
async fn signature_refusals() {
    let f = fixture();
    let json = payload(&orders(1..3));
    let body = form(&json);
    let now = f.now_s();
    let cases: Vec<(String, Option<String>, &str)> = vec![
        (
            "wrong secret".into(),
            Some(sign_centra("not-the-secret", now, body.as_bytes())),
            "invalid_signature",
        ),
        (
            "stale t".into(),
            Some(sign_centra(SECRET, now - 301, body.as_bytes())),
            "timestamp_out_of_tolerance",
        ),
        (
            "t from the future".into(),
            Some(sign_centra(SECRET, now + 301, body.as_bytes())),
            "timestamp_out_of_tolerance",
        ),
        ("missing header".into(), None, "missing_signature_header"),
        (
            "signed over the decoded JSON, not the raw body".into(),
            Some(sign_centra(SECRET, now, json.as_bytes())),
            "invalid_signature",
        ),
        (
            "signed over another body".into(),
            Some(sign_centra(
                SECRET,
                now,
                form(&payload(&orders(1..4))).as_bytes(),
            )),
            "invalid_signature",
        ),
        (
            "t swapped after signing".into(),
            Some(
                sign_centra(SECRET, now, body.as_bytes())
                    .replace(&format!("t={now}"), &format!("t={}", now - 1)),
            ),
            "invalid_signature",
        ),
        (
            "no t".into(),
            Some(format!("v1={}", "ab".repeat(32))),
            "invalid_signature_header",
        ),
        (
            "garbage".into(),
            Some("sha256=abc".into()),
            "invalid_signature_header",
        ),
        (
            "t not a number".into(),
            Some("t=abc,v1=00".into()),
            "invalid_timestamp",
        ),
        (
            "no v1".into(),
            Some(format!("t={now}")),
            "invalid_signature",
        ),
    ];
    for (name, header, code) in &cases {
        let r = f.post_raw(&body, header.as_deref()).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (401, Some(*code)),
            "{name}: {}",
            r.body
        );
    }
    assert_eq!(
        f.queue.calls.load(Ordering::SeqCst),
        0,
        "nothing reached the queue"
    );
    assert_eq!(
        f.metrics.total(names::CENTRA_WEBHOOKS_REJECTED),
        cases.len() as f64
    );

    // Edges of the tolerance pass.
    for t in [now - 300, now + 300] {
        let header = sign_centra(SECRET, t, body.as_bytes());
        assert_eq!(f.post_raw(&body, Some(&header)).await.status, 200);
    }
}

#[tokio::test]
async fn rotated_secrets_are_both_accepted() {
    let f = fixture();
    let body = form(&payload(&orders(1..2)));
    let old = sign_centra(OLD_SECRET, f.now_s(), body.as_bytes());
    assert_eq!(counts(&f.post_raw(&body, Some(&old)).await), (200, 1, 0, 0));
    let body = form(&payload(&orders(2..3)));
    let new = sign_centra(SECRET, f.now_s(), body.as_bytes());
    assert_eq!(counts(&f.post_raw(&body, Some(&new)).await), (200, 1, 0, 0));
    // Centra sending two v1 values (its own rotation): one valid is enough.
    let body = form(&payload(&orders(3..4)));
    let valid = sign_centra(SECRET, f.now_s(), body.as_bytes());
    let v1 = valid.split_once(",v1=").unwrap().1;
    let both = format!("t={},v1={},v1={v1}", f.now_s(), "0".repeat(64));
    assert_eq!(
        counts(&f.post_raw(&body, Some(&both)).await),
        (200, 1, 0, 0)
    );
}

#[tokio::test]
async fn a_hundred_events_are_queued_in_one_send() {
    let f = fixture();
    let r = f.post(&orders(0..100)).await;
    assert_eq!(counts(&r), (200, 100, 0, 0));
    assert_eq!(f.queue.calls.load(Ordering::SeqCst), 1, "one send_all");
    assert_eq!(f.queue.inner.len(), 100);
    let mut ids: Vec<String> = f.queued_events().into_iter().map(|e| e.id).collect();
    ids.sort_by_key(|id| id.parse::<u64>().unwrap());
    assert_eq!(ids, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_call_retried_three_times_queues_each_event_once() {
    let f = fixture();
    let body = form(&payload(&orders(0..100)));
    assert_eq!(counts(&f.post_form(&body).await), (200, 100, 0, 0));
    for _ in 0..3 {
        f.clock.advance_millis(2_000); // Centra's retry delay; re-signed with the new t
        assert_eq!(counts(&f.post_form(&body).await), (200, 0, 100, 0));
    }
    assert_eq!(f.queue.sent.lock().unwrap().len(), 100);
    assert_eq!(f.queue.inner.len(), 100);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOK_EVENTS_QUEUED), 100.0);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOK_DUPLICATES), 300.0);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOKS_RECEIVED), 4.0);
}

#[tokio::test]
async fn overlapping_calls_queue_only_the_new_events() {
    let f = fixture();
    assert_eq!(counts(&f.post(&orders(0..60)).await), (200, 60, 0, 0));
    assert_eq!(counts(&f.post(&orders(40..100)).await), (200, 40, 20, 0));
    // Same object, another action or date: a new event.
    let again = vec![
        event("order", "update", 5),
        event("order", "cancel", 5),
        json!({ "type": "order", "action": "update", "date": "2026-11-28 12:05:00.000000", "id": 5 }),
    ];
    assert_eq!(counts(&f.post(&again).await), (200, 2, 1, 0));
    // The same event twice in one call.
    let twice = vec![
        event("shipment", "update", 8),
        event("shipment", "update", 8),
    ];
    assert_eq!(counts(&f.post(&twice).await), (200, 1, 1, 0));
    assert_eq!(f.queue.inner.len(), 103);
    // An order and a shipment with the same id are different objects.
    assert_eq!(
        counts(&f.post(&[event("return", "update", 8)]).await),
        (200, 1, 0, 0)
    );
}

#[tokio::test]
async fn other_types_are_acknowledged_and_counted_not_queued() {
    let f = fixture();
    let events = vec![
        event("customer", "update", 1),
        event("account", "insert", 2),
        json!({ "type": "check_first", "action": "create", "id": 3 }),
        json!({ "type": "allocation_request", "action": "update", "id": 4, "data": { "status": "allocated" } }),
        json!({ "type": "products", "keys": ["1", "2"] }),
        json!({ "type": "DisplayItems" }),
        event("order", "update", 2735),
    ];
    let r = f.post(&events).await;
    assert_eq!(counts(&r), (200, 1, 0, 6));
    assert_eq!(f.queued_events()[0].id, "2735");
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOK_IGNORED), 6.0);
    // A call of nothing but ignored types still answers 200 and sends nothing.
    let r = f.post(&[event("customer", "update", 9)]).await;
    assert_eq!(counts(&r), (200, 0, 0, 1));
    assert_eq!(f.queue.calls.load(Ordering::SeqCst), 1);
    assert_eq!(f.metrics.total(names::CENTRA_WEBHOOK_IGNORED), 7.0);
}

#[tokio::test]
async fn a_queue_failure_answers_503_and_the_retry_queues_the_events() {
    let f = fixture();
    let events = orders(0..10);
    f.queue.fail.store(true, Ordering::SeqCst);
    let r = f.post(&events).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("queue_unavailable"))
    );
    assert_eq!(r.retry_after, Some(1));
    assert!(f.queue.inner.is_empty());
    // Every idempotency record was released, not left INPROGRESS for the lease.
    for e in &events {
        let key = format!(
            "centra-event#centra:order:update:{}:2026-11-28 12:00:00.000001",
            e["id"]
        );
        assert_eq!(f.store.get(&key).await.unwrap(), None, "{key}");
    }
    f.queue.fail.store(false, Ordering::SeqCst);
    assert_eq!(counts(&f.post(&events).await), (200, 10, 0, 0));
    assert_eq!(f.queue.inner.len(), 10);
    assert_eq!(counts(&f.post(&events).await), (200, 0, 10, 0));
    assert_eq!(f.metrics.total(names::INTAKE_QUEUE_FAILURES), 1.0);
}

#[tokio::test]
async fn an_event_another_call_is_queueing_is_not_acknowledged() {
    let f = fixture();
    // Another call holds order 7 (acquired, not yet completed).
    let held = CentraWebhookEvent {
        kind: "order".into(),
        action: "update".into(),
        id: "7".into(),
        date: "2026-11-28 12:00:00.000001".into(),
    };
    let key = format!("centra-event#{}", held.dedupe_key());
    let record = IdempotencyRecord {
        key: key.clone(),
        status: IdempotencyStatus::InProgress,
        body_hash: "h".into(),
        owner: "other-call".into(),
        lease_until_ms: NOW_MS + 30_000,
        expires_at_s: NOW_MS / 1000 + 3600,
        accepted: None,
    };
    assert_eq!(
        f.store.acquire(&record, NOW_MS).await.unwrap(),
        AcquireOutcome::Acquired
    );
    let r = f.post(&orders(5..10)).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("in_progress"))
    );
    assert_eq!(f.queue.inner.len(), 4, "the others were queued");

    // The other call completes: the retry acknowledges everything without re-queueing.
    assert!(f
        .store
        .complete(&key, "other-call", NOW_MS / 1000 + 3600)
        .await
        .unwrap());
    assert_eq!(counts(&f.post(&orders(5..10)).await), (200, 0, 5, 0));
    assert_eq!(f.queue.inner.len(), 4);
}

#[tokio::test]
async fn a_released_event_is_taken_over_by_the_retry() {
    let f = fixture();
    let record = IdempotencyRecord {
        key: "centra-event#centra:order:update:7:2026-11-28 12:00:00.000001".into(),
        status: IdempotencyStatus::InProgress,
        body_hash: "h".into(),
        owner: "other-call".into(),
        lease_until_ms: NOW_MS + 30_000,
        expires_at_s: NOW_MS / 1000 + 3600,
        accepted: None,
    };
    f.store.acquire(&record, NOW_MS).await.unwrap();
    assert_eq!(f.post(&orders(7..8)).await.status, 503);
    // The other call's queue failed and it released the record.
    assert!(f.store.release(&record.key, "other-call").await.unwrap());
    assert_eq!(counts(&f.post(&orders(7..8)).await), (200, 1, 0, 0));
}

#[tokio::test]
async fn concurrent_identical_calls_queue_each_event_once() {
    let f = fixture_with(IntakeSettings {
        in_progress_wait_ms: 2_000,
        ..Default::default()
    });
    let body = form(&payload(&orders(0..50)));
    let results = futures::future::join_all((0..4).map(|_| f.post_form(&body))).await;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let queued: u64 = results.iter().map(|r| counts(r).1).sum();
    let duplicates: u64 = results.iter().map(|r| counts(r).2).sum();
    assert_eq!((queued, duplicates), (50, 150));
    assert_eq!(f.queue.inner.len(), 50);
    assert_eq!(
        f.queue.sent.lock().unwrap().len(),
        50,
        "no event sent twice"
    );
}

#[tokio::test]
async fn malformed_form_or_json_names_the_field() {
    let f = fixture();
    let cases: Vec<(String, &str, &str)> = vec![
        ("events=%5B%5D".into(), "payload", "missing_field"),
        ("".into(), "payload", "missing_field"),
        (
            "payload=%7B%22events%22%3A%5B%5D%7".into(),
            "payload",
            "malformed_form",
        ),
        ("payload=%ZZ".into(), "payload", "malformed_form"),
        (
            "payload=%7B%7D&payload=%7B%7D".into(),
            "payload",
            "malformed_form",
        ),
        (form("{\"events\":["), "payload", "malformed_json"),
        (form("[1,2]"), "payload", "invalid_type"),
        (form("{\"evnts\":[]}"), "payload.events", "missing_field"),
        (form("{\"events\":{}}"), "payload.events", "invalid_type"),
        (
            form(&payload(&[event("order", "update", 1), json!("order:2")])),
            "payload.events[1]",
            "invalid_type",
        ),
        (
            form(&payload(&[json!({ "action": "update", "id": 1 })])),
            "payload.events[0].type",
            "missing_field",
        ),
        (
            form(&payload(&[json!({ "type": 3 })])),
            "payload.events[0].type",
            "invalid_type",
        ),
        (
            form(&payload(&[
                json!({ "type": "order", "date": "d", "id": 1 }),
            ])),
            "payload.events[0].action",
            "missing_field",
        ),
        (
            form(&payload(&[
                json!({ "type": "order", "action": "update", "date": "d" }),
            ])),
            "payload.events[0].id",
            "missing_field",
        ),
        (
            form(&payload(&[
                json!({ "type": "order", "action": "update", "date": "d", "id": -4 }),
            ])),
            "payload.events[0].id",
            "invalid_value",
        ),
        (
            form(&payload(&[
                json!({ "type": "order", "action": "update", "date": "d", "id": "12/3" }),
            ])),
            "payload.events[0].id",
            "invalid_value",
        ),
        (
            form(&payload(&[
                json!({ "type": "order", "action": "update", "date": "d", "id": [1] }),
            ])),
            "payload.events[0].id",
            "invalid_type",
        ),
        (
            form(&payload(&[
                event("order", "update", 1),
                json!({ "type": "shipment", "action": "update", "id": 2 }),
            ])),
            "payload.events[1].date",
            "missing_field",
        ),
        (
            form(&payload(&[
                json!({ "type": "return", "action": "", "date": "d", "id": 2 }),
            ])),
            "payload.events[0].action",
            "invalid_value",
        ),
    ];
    for (body, field, code) in &cases {
        let r = f.post_form(body).await;
        assert_eq!(
            (
                r.status,
                r.body["error"]["field"].as_str(),
                r.body["error"]["code"].as_str()
            ),
            (400, Some(*field), Some(*code)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        f.queue.calls.load(Ordering::SeqCst),
        0,
        "a malformed call queues nothing"
    );

    let big = form(&"x".repeat(256 * 1024));
    assert_eq!(f.post_form(&big).await.status, 413);
    let body = form(&payload(&orders(0..1)));
    let header = sign_centra(SECRET, f.now_s(), body.as_bytes());
    let json_typed = f
        .intake
        .handle(CentraWebhookRequest {
            content_type: Some("application/json"),
            signature: Some(&header),
            body: body.as_bytes(),
        })
        .await;
    assert_eq!(json_typed.status, 415);
    let charset = f
        .intake
        .handle(CentraWebhookRequest {
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
            signature: Some(&header),
            body: body.as_bytes(),
        })
        .await;
    assert_eq!(counts(&charset), (200, 1, 0, 0));
}

#[tokio::test]
async fn unconfigured_deployments_answer_503() {
    let mut f = fixture();
    let body = form(&payload(&orders(0..1)));
    f.intake.orders = None;
    let r = f.post_form(&body).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("orders_disabled"))
    );
    // Signature still checked first.
    assert_eq!(f.post_raw(&body, None).await.status, 401);
    f.intake.verifier = None;
    let r = f.post_form(&body).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("centra_webhooks_disabled"))
    );
}

#[tokio::test]
async fn the_http_adapter_routes_both_endpoints() {
    let f = fixture();
    let store_events = StoreEventIntake {
        verifier: WebhookVerifier::from_config(STORE_SECRET).unwrap(),
        mappings: Arc::new(Mappings::embedded_default()),
        idempotency: Arc::new(MemoryIdempotencyStore::new()),
        queue: Arc::new(MemoryFifoQueue::new(5)),
        orders: None,
        catalogue: Arc::new(shared::stock::identity::ItemCatalogue::with_sizes(
            test_sizes(),
            shared::core::clock::system_clock(),
        )),
        clock: Arc::new(f.clock.clone()),
        metrics: f.metrics.clone(),
        settings: IntakeSettings::default(),
    };
    let clock = f.clock.clone();
    let intake = WebhookIntake {
        store_events,
        centra_webhooks: f.intake,
    };
    let body = form(&payload(&orders(0..2)));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    headers.insert(
        "X-Centra-Signature",
        sign_centra(SECRET, clock.now_seconds(), body.as_bytes())
            .parse()
            .unwrap(),
    );
    let post = http::Method::POST;
    let r = http_adapter::route(
        &intake,
        &post,
        "/v1/centra-webhooks",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.body());
    let answer: Value = serde_json::from_str(r.body()).unwrap();
    assert_eq!(answer["queued"], 2);

    // With an API Gateway stage prefix.
    let r = http_adapter::route(
        &intake,
        &post,
        "/prod/v1/centra-webhooks",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The store-events path reaches the store-event intake (which wants JSON and its own headers).
    let r = http_adapter::route(
        &intake,
        &post,
        "/v1/store-events",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 415);
    for (method, path, status) in [
        // A known path with another method is 405 (with `Allow: POST`), an unknown path 404.
        (http::Method::GET, "/v1/centra-webhooks", 405),
        (http::Method::POST, "/v1/centra-webhook", 404),
        (http::Method::POST, "/", 404),
    ] {
        let r = http_adapter::route(&intake, &method, path, &headers, body.as_bytes()).await;
        assert_eq!(r.status(), status, "{method} {path}");
    }
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
