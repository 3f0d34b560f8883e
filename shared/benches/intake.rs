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

criterion_group!(benches, bench);
criterion_main!(benches);
