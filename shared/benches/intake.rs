//! Intake CPU per event: signature verification, strict validation, resolving each line to its Centra size
//! (from the in-memory catalogue) and building the queue messages.

use criterion::{criterion_group, criterion_main, Criterion};
use shared::config::mappings::Mappings;
use shared::events::store_events::parse_stock_event;
use shared::intake::signature::{sign, WebhookVerifier};
use shared::intake::store_events::build_messages;
use std::hint::black_box;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn event_body(lines: usize) -> String {
    let lines: Vec<serde_json::Value> = (0..lines)
        .map(|i| serde_json::json!({ "sku": format!("Prod123Var{i:06}S"), "quantity": 1, "unit_price": "49.00", "currency": "GBP" }))
        .collect();
    serde_json::json!({
        "type": "stock.sale", "occurred_at": "2026-11-28T10:15:00Z", "store": "LDN-01",
        "sequence": 18342, "reference": "till-7/receipt-99812", "lines": lines
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let verifier = WebhookVerifier::from_config(SECRET).unwrap();
    let mappings = Mappings::embedded_default();
    let now_s = 1_795_860_900;
    // 20,000 sizes, as a mid-size catalogue.
    let catalogue = shared::stock::identity::ItemCatalogue::with_sizes(
        (0..20_000u64).map(|i| shared::centra::SizeRecord {
            id: i + 1,
            sku: Some(format!("Prod123Var{i:06}S")),
            ean: Some(format!("735{i:010}")),
        }),
        shared::core::clock::system_clock(),
    );
    for lines in [2usize, 20] {
        let body = event_body(lines);
        let sig = sign(SECRET, "evt_bench", now_s, body.as_bytes());
        let ts = now_s.to_string();
        c.bench_function(&format!("intake_cpu_{lines}_lines"), |b| {
            b.iter(|| {
                let id = verifier
                    .verify(
                        Some("evt_bench"),
                        Some(&ts),
                        Some(&sig),
                        black_box(body.as_bytes()),
                        now_s,
                    )
                    .unwrap();
                let mut event =
                    parse_stock_event(id, body.as_bytes(), &mappings, now_s * 1000).unwrap();
                futures::executor::block_on(shared::stock::identity::resolve_event(
                    &mut event, &catalogue,
                ))
                .unwrap();
                black_box(build_messages(&event, now_s * 1000))
            })
        });
    }
}

/// A queue that takes everything: the bench measures intake, not a queue.
struct NullQueue;

#[async_trait::async_trait]
impl shared::stock::ports::StockQueue for NullQueue {
    async fn send_all(
        &self,
        _: &[shared::stock::ports::FifoMessage],
    ) -> Result<(), shared::core::errors::BackendError> {
        Ok(())
    }
}

/// The whole `StoreEventIntake::handle` with the archive on: the idempotency record now carries the request
/// (in-memory store and queue, so this is CPU; the 202 path makes the same calls as before the archive).
fn bench_handle(c: &mut Criterion) {
    use shared::intake::store_events::{IntakeRequest, StoreEventIntake};
    use std::sync::Arc;
    let now_s = chrono::Utc::now().timestamp();
    let intake = StoreEventIntake {
        verifier: WebhookVerifier::from_config(SECRET).unwrap(),
        mappings: Arc::new(Mappings::embedded_default()),
        idempotency: Arc::new(shared::adapters::memory::idempotency::MemoryIdempotencyStore::new()),
        queue: Arc::new(NullQueue),
        orders: None,
        catalogue: Arc::new(shared::stock::identity::ItemCatalogue::with_sizes(
            (0..20_000u64).map(|i| shared::centra::SizeRecord {
                id: i + 1,
                sku: Some(format!("Prod123Var{i:06}S")),
                ean: Some(format!("735{i:010}")),
            }),
            shared::core::clock::system_clock(),
        )),
        clock: shared::core::clock::system_clock(),
        metrics: Arc::new(shared::telemetry::metrics::Metrics::new()),
        settings: Default::default(),
    };
    let occurred = chrono::DateTime::from_timestamp(now_s - 60, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut n = 0u64;
    for lines in [2usize, 20] {
        let body = event_body(lines).replace("2026-11-28T10:15:00Z", &occurred);
        let ts = now_s.to_string();
        c.bench_function(&format!("intake_handle_{lines}_lines_archive_on"), |b| {
            b.iter_batched(
                || {
                    // A new event id each time (a repeat would be a duplicate); signing is the sender's work.
                    n += 1;
                    let id = format!("evt_bench_{lines}_{n}");
                    let sig = sign(SECRET, &id, now_s, body.as_bytes());
                    (id, sig)
                },
                |(id, sig)| {
                    let answer = futures::executor::block_on(intake.handle(IntakeRequest {
                        content_type: Some("application/json"),
                        webhook_id: Some(&id),
                        webhook_timestamp: Some(&ts),
                        webhook_signature: Some(&sig),
                        body: black_box(body.as_bytes()),
                    }));
                    assert_eq!(answer.status, 202, "{}", answer.body);
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    // What the DynamoDB adapter adds for a body over 4 KiB (kept gzip on the record): a 64 KiB event.
    let large = event_body(700);
    c.bench_function(&format!("archive_gzip_{}_bytes", large.len()), |b| {
        b.iter(|| black_box(shared::core::gzip::gzip(black_box(large.as_bytes()))))
    });
}

criterion_group!(benches, bench, bench_handle);
criterion_main!(benches);
