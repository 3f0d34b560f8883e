//! One identity per item at intake: every line is resolved to the Centra size it names before anything is
//! queued, names that disagree or that Centra does not know are refused with the field named, and a catalogue
//! that cannot answer makes the sender retry rather than guess.

use async_trait::async_trait;
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryFifoQueue, MemoryIdempotencyStore};
use shared::centra::{CentraError, SizeRecord};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock};
use shared::core::ids::ItemRef;
use shared::events::store_events::StockLineMessage;
use shared::intake::contract::{IntakeResponse, IntakeSettings};
use shared::intake::signature::{sign, WebhookVerifier};
use shared::intake::store_events::{IntakeRequest, StoreEventIntake};
use shared::stock::identity::{CatalogueSettings, ItemCatalogue, SizeDirectory};
use shared::telemetry::metrics::Metrics;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW_MS: i64 = 1_795_900_000_000;

/// Centra's sizes as a lookup sees them; `down` makes every lookup fail.
struct Centra {
    sizes: std::sync::Mutex<Vec<SizeRecord>>,
    lookups: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl SizeDirectory for Centra {
    async fn sizes_named(&self, item: &ItemRef) -> Result<Vec<SizeRecord>, CentraError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(CentraError::NotSent("connection refused".into()));
        }
        Ok(self
            .sizes
            .lock()
            .unwrap()
            .iter()
            .filter(|s| match item {
                ItemRef::Sku(v) => s.sku.as_deref() == Some(v),
                ItemRef::Ean(v) => s.ean.as_deref() == Some(v),
            })
            .cloned()
            .collect())
    }
}

fn size(id: u64, sku: &str, ean: &str) -> SizeRecord {
    SizeRecord {
        id,
        sku: Some(sku.into()),
        ean: Some(ean.into()),
    }
}

struct Fixture {
    intake: StoreEventIntake,
    queue: Arc<MemoryFifoQueue>,
    centra: Arc<Centra>,
    clock: ManualClock,
}

/// The snapshot knows `Tee-M` (EAN …0012) and `Tee-L` (EAN …0029); Centra also has `New-S`, created after it.
fn fixture() -> Fixture {
    let clock = ManualClock::at(NOW_MS);
    let centra = Arc::new(Centra {
        sizes: std::sync::Mutex::new(vec![
            size(1, "Tee-M", "7350000000012"),
            size(2, "Tee-L", "7350000000029"),
            size(3, "New-S", "7350000000036"),
        ]),
        lookups: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let catalogue = ItemCatalogue::new(
        None,
        Some(centra.clone()),
        CatalogueSettings::default(),
        Arc::new(clock.clone()),
    );
    catalogue.insert_all([
        size(1, "Tee-M", "7350000000012"),
        size(2, "Tee-L", "7350000000029"),
    ]);
    let queue = Arc::new(MemoryFifoQueue::new(5));
    let intake = StoreEventIntake {
        verifier: WebhookVerifier::from_config(SECRET).unwrap(),
        mappings: Arc::new(Mappings::embedded_default()),
        idempotency: Arc::new(MemoryIdempotencyStore::new()),
        queue: queue.clone(),
        orders: None,
        catalogue: Arc::new(catalogue),
        clock: Arc::new(clock.clone()),
        metrics: Arc::new(Metrics::new()),
        settings: IntakeSettings {
            in_progress_wait_ms: 0,
            ..Default::default()
        },
    };
    Fixture {
        intake,
        queue,
        centra,
        clock,
    }
}

impl Fixture {
    async fn send(&self, id: &str, body: &Value) -> IntakeResponse {
        let body = body.to_string();
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

    /// Every queued message: (group id, item).
    fn queued(&self) -> Vec<(String, StockLineMessage)> {
        self.queue
            .receive(1000, 60_000, self.clock.now_millis())
            .into_iter()
            .map(|m| (m.group_id, serde_json::from_str(&m.body).unwrap()))
            .collect()
    }
}

fn event(kind: &str, lines: Value) -> Value {
    json!({
        "type": kind,
        "occurred_at": "2026-11-28T10:15:00Z",
        "store": "LDN-01",
        "reason": "found",
        "lines": lines,
    })
}

fn priced(mut line: Value) -> Value {
    line["unit_price"] = json!("10.00");
    line["currency"] = json!("GBP");
    line
}

fn error_of(r: &IntakeResponse) -> (u16, String, String) {
    (
        r.status,
        r.body["error"]["code"].as_str().unwrap_or("").to_string(),
        r.body["error"]["field"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn a_size_named_by_sku_and_by_ean_is_one_item_in_one_group() {
    let f = fixture();
    let r = f
        .send(
            "e1",
            &event(
                "stock.sale",
                json!([
                    priced(json!({ "sku": "Tee-M", "quantity": 2 })),
                    priced(json!({ "ean": "7350000000012", "quantity": 1 })),
                    priced(json!({ "sku": "Tee-L", "ean": "7350000000029", "quantity": 1 })),
                ]),
            ),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let queued = f.queued();
    let by_item: Vec<(String, ItemRef, shared::core::ids::Movement)> = queued
        .iter()
        .map(|(g, m)| (g.clone(), m.item.clone(), m.movement))
        .collect();
    assert_eq!(
        by_item,
        [
            (
                "Tee-M".to_string(),
                ItemRef::Sku("Tee-M".into()),
                shared::core::ids::Movement::Delta(-3)
            ),
            (
                "Tee-L".to_string(),
                ItemRef::Sku("Tee-L".into()),
                shared::core::ids::Movement::Delta(-1)
            ),
        ],
        "the EAN line joins the SKU line's message, group and row"
    );
}

#[tokio::test]
async fn a_sku_with_the_ean_of_another_size_is_refused_on_the_ean() {
    let f = fixture();
    let r = f
        .send(
            "e1",
            &event(
                "stock.sale",
                json!([
                    priced(json!({ "sku": "Tee-L", "quantity": 1 })),
                    priced(json!({ "sku": "Tee-M", "ean": "7350000000029", "quantity": 1 })),
                ]),
            ),
        )
        .await;
    assert_eq!(
        error_of(&r),
        (400, "identity_mismatch".into(), "lines[1].ean".into())
    );
    assert!(
        f.queued().is_empty(),
        "nothing of a refused event is queued"
    );
    // An EAN Centra does not know beside a known SKU is refused the same way.
    let r = f
        .send(
            "e2",
            &event(
                "stock.sale",
                json!([priced(
                    json!({ "sku": "Tee-M", "ean": "7350000009999", "quantity": 1 })
                )]),
            ),
        )
        .await;
    assert_eq!(
        error_of(&r),
        (400, "identity_mismatch".into(), "lines[0].ean".into())
    );
}

#[tokio::test]
async fn a_name_centra_does_not_know_is_refused_and_the_fixed_resend_is_accepted() {
    let f = fixture();
    let lower = event(
        "stock.sale",
        json!([
            priced(json!({ "sku": "Tee-M", "quantity": 1 })),
            priced(json!({ "sku": "tee-l", "quantity": 1 })),
        ]),
    );
    let r = f.send("e1", &lower).await;
    assert_eq!(
        error_of(&r),
        (400, "unknown_item".into(), "lines[1].sku".into())
    );
    let padded = event(
        "stock.adjustment",
        json!([{ "ean": "07350000000012", "quantity": 1 }]),
    );
    assert_eq!(
        error_of(&f.send("e2", &padded).await),
        (400, "unknown_item".into(), "lines[0].ean".into())
    );
    assert!(f.queued().is_empty());
    // Asked once each; a repeat is answered from memory.
    let asked = f.centra.lookups.load(Ordering::SeqCst);
    assert_eq!(asked, 2);
    assert_eq!(f.send("e1", &lower).await.status, 400);
    assert_eq!(f.centra.lookups.load(Ordering::SeqCst), asked);

    // The sender fixes the line and sends the same event id again: nothing was recorded for the refusal.
    let fixed = event(
        "stock.sale",
        json!([
            priced(json!({ "sku": "Tee-M", "quantity": 1 })),
            priced(json!({ "sku": "Tee-L", "quantity": 1 })),
        ]),
    );
    assert_eq!(f.send("e1", &fixed).await.status, 202);
}

#[tokio::test]
async fn a_size_created_after_the_snapshot_is_found_in_centra() {
    let f = fixture();
    let r = f
        .send(
            "e1",
            &event(
                "stock.count",
                json!([{ "ean": "7350000000036", "quantity": 4 }]),
            ),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(f.queued()[0].1.item, ItemRef::Sku("New-S".into()));
}

#[tokio::test]
async fn two_counts_of_one_size_under_two_names_are_refused() {
    let f = fixture();
    let r = f
        .send(
            "e1",
            &event(
                "stock.count",
                json!([
                    { "sku": "Tee-M", "quantity": 4 },
                    { "ean": "7350000000012", "quantity": 5 },
                ]),
            ),
        )
        .await;
    assert_eq!(
        error_of(&r),
        (400, "duplicate_item".into(), "lines[1]".into())
    );
}

#[tokio::test]
async fn a_catalogue_that_cannot_ask_centra_answers_retry_and_the_retry_goes_through() {
    let f = fixture();
    f.centra.down.store(true, Ordering::SeqCst);
    let body = event("stock.count", json!([{ "sku": "New-S", "quantity": 4 }]));
    let r = f.send("e1", &body).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(f.queued().is_empty());
    f.centra.down.store(false, Ordering::SeqCst);
    // The event id was released: the sender's retry is accepted, once.
    assert_eq!(f.send("e1", &body).await.status, 202);
    assert_eq!(f.send("e1", &body).await.status, 200);
    assert_eq!(f.queued().len(), 1);
}

#[tokio::test]
async fn a_flood_of_unknown_names_is_answered_retry_beyond_the_lookup_pace() {
    let f = fixture();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..200 {
        let r = f
            .send(
                &format!("e{i}"),
                &event(
                    "stock.adjustment",
                    json!([{ "sku": format!("unknown-{i}"), "quantity": 1 }]),
                ),
            )
            .await;
        if r.status == 503 {
            assert!(
                r.retry_after.is_some_and(|s| s >= 1),
                "503 says when to retry"
            );
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    // The burst of lookups is asked; the rest wait for the pace. Known items never wait on it.
    assert_eq!(f.centra.lookups.load(Ordering::SeqCst), 5);
    assert_eq!(statuses.get(&400), Some(&5));
    assert_eq!(statuses.get(&503), Some(&195));
    let known = f
        .send(
            "known",
            &event(
                "stock.adjustment",
                json!([{ "sku": "Tee-M", "quantity": 1 }]),
            ),
        )
        .await;
    assert_eq!(known.status, 202);
}

#[tokio::test]
async fn the_lines_of_one_size_are_bounded_by_their_total_under_any_names() {
    let f = fixture();
    // Per name one side of the bound, in total the other: the total of the size decides (found by fuzzing).
    let within = event(
        "stock.adjustment",
        json!([
            { "ean": "7350000000012", "quantity": 2 },
            { "sku": "Tee-M", "quantity": -1 },
            { "ean": "7350000000012", "quantity": 999_999 },
        ]),
    );
    assert_eq!(f.send("e1", &within).await.status, 202);
    assert_eq!(
        f.queued()[0].1.movement,
        shared::core::ids::Movement::Delta(1_000_000)
    );
    let beyond = event(
        "stock.adjustment",
        json!([
            { "sku": "Tee-M", "quantity": 600_000 },
            { "ean": "7350000000012", "quantity": 600_000 },
        ]),
    );
    assert_eq!(
        error_of(&f.send("e2", &beyond).await),
        (400, "invalid_value".into(), "lines[1].quantity".into())
    );
}
