//! Centra webhook CPU per call: signature over the raw form body, form decoding and event parsing of a
//! 100-event payload (Centra's default "max number of events per webhook call"). Target: < 50 µs.
//!
//! `cargo bench` uses the workspace's release settings (`opt-level = "z"`), under which sha2's SHA-NI code and
//! serde are not inlined; `CARGO_PROFILE_BENCH_OPT_LEVEL=3 cargo bench …` shows the speed-optimised figure.

use criterion::{criterion_group, criterion_main, Criterion};
use shared::intake::centra_webhooks::{
    event_message, parse_centra_webhook, sign_centra, CentraSignatureVerifier,
};
use std::hint::black_box;

const SECRET: &str = "centra-endpoint-secret-2026";

/// PHP `urlencode`, as Centra's form body is built.
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

fn body(events: usize) -> String {
    let kinds = ["order", "shipment", "return", "customer"];
    let events: Vec<serde_json::Value> = (0..events)
        .map(|i| {
            serde_json::json!({
                "type": kinds[i % kinds.len()],
                "action": "update",
                "date": format!("2026-11-28 10:15:{:02}.{:06}", i % 60, i * 7919 % 1_000_000),
                "id": 270_000 + i,
            })
        })
        .collect();
    format!(
        "payload={}",
        urlencode(&serde_json::json!({ "events": events }).to_string())
    )
}

fn bench(c: &mut Criterion) {
    let now_s = 1_795_860_900;
    let body = body(100);
    eprintln!("100-event form body: {} bytes", body.len());
    let header = sign_centra(SECRET, now_s, body.as_bytes());
    let one = CentraSignatureVerifier::from_config(SECRET).unwrap();
    // During a rotation the new secret is tried after the old one: the worst case is two HMACs.
    let rotating = CentraSignatureVerifier::from_config(&format!("old-secret,{SECRET}")).unwrap();

    c.bench_function("centra_webhook_verify_parse_100_events", |b| {
        b.iter(|| {
            one.verify(Some(&header), black_box(body.as_bytes()), now_s)
                .unwrap();
            black_box(parse_centra_webhook(body.as_bytes()).unwrap())
        })
    });
    c.bench_function("centra_webhook_verify_only_100_events", |b| {
        b.iter(|| {
            one.verify(Some(&header), black_box(body.as_bytes()), now_s)
                .unwrap()
        })
    });
    c.bench_function("centra_webhook_parse_only_100_events", |b| {
        b.iter(|| black_box(parse_centra_webhook(black_box(body.as_bytes())).unwrap()))
    });
    c.bench_function("centra_webhook_verify_parse_100_events_two_secrets", |b| {
        b.iter(|| {
            rotating
                .verify(Some(&header), black_box(body.as_bytes()), now_s)
                .unwrap();
            black_box(parse_centra_webhook(body.as_bytes()).unwrap())
        })
    });
    c.bench_function("centra_webhook_verify_parse_messages_100_events", |b| {
        b.iter(|| {
            one.verify(Some(&header), black_box(body.as_bytes()), now_s)
                .unwrap();
            let batch = parse_centra_webhook(body.as_bytes()).unwrap();
            black_box(batch.events.iter().map(event_message).collect::<Vec<_>>())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
