//! The event archive on moto: intake and the applier, each under its template role, write the idempotency
//! table; its stream, read from moto over the DynamoDB Streams protocol, passes the template's event-source
//! filters and reaches the archiver built from its template environment and role, which writes to S3 (moto).

use crate::common;
use crate::deployed;

use common::*;
use deployed::{
    filter_matches, post_centra_webhook, post_store_event, stream_records, Stack, StackParameters,
    StockPipeline,
};
use serde_json::Value;
use shared::archive::{ArchiveLine, EventArchiver};
use shared::config::mappings::EMBEDDED_DEFAULT;
use shared::lambda::handlers::{event_archive, MetricsSink};
use shared::ops::archive_backfill::backfill;
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig};
use std::collections::BTreeMap;

/// The table's stream as Lambda would deliver it to the archiver: through the template's event filters.
/// Also returns how many records the stream held in all.
async fn filtered_stream(stack: &Stack) -> (usize, Vec<Value>) {
    let filters = stack.stream_filters("event-archive");
    let records = stream_records(stack, "IdempotencyTable").await;
    let total = records.len();
    let passed = records
        .into_iter()
        .filter(|r| filters.iter().any(|f| filter_matches(f, r)))
        .collect();
    (total, passed)
}

async fn invoke(archiver: &EventArchiver, records: &[Value]) {
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_value(serde_json::json!({ "Records": records }))
            .expect("the stream's records read as a Lambda DynamoDB event");
    let metrics = Metrics::new();
    let sink = MetricsSink {
        metrics: &metrics,
        namespace: "test",
    };
    event_archive(archiver, &sink, 0, event)
        .await
        .expect("the archive batch is written");
}

/// Every line of every archive object, with the object's key.
async fn archive_lines(stack: &Stack) -> Vec<(String, ArchiveLine)> {
    let s3 = stack.admin.s3();
    let bucket = &stack.resources["ReportsBucket"].reference;
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("events/")
        .send()
        .await
        .unwrap();
    let mut lines = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_string();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let text = shared::core::gzip::gunzip(&body, 64 << 20).expect("archive objects are gzip");
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            lines.push((key.clone(), serde_json::from_slice(line).unwrap()));
        }
    }
    lines
}

/// A stack after a duplicate storm: six sales each sent three times at once over two stores, a refused sale,
/// a Centra webhook sent twice; everything applied and pushed.
struct Storm {
    stack: Stack,
    /// Accepted store events: webhook id → (store, body).
    sent: BTreeMap<String, (&'static str, String)>,
    _centra: CentraSim,
}

async fn storm() -> Storm {
    let (sim, _) = sim_with(&["A-1", "A-2"], 50, CentraSimConfig::default()).await;
    let stack = Stack::create(StackParameters::new(
        &sim.graphql_url(),
        sim.token(),
        EMBEDDED_DEFAULT,
    ))
    .await;
    // Intake resolves items from the SKU audit's snapshot (a storm would otherwise wait on Centra lookups).
    let centra = shared::centra::CentraClient::new(
        sim.graphql_url(),
        sim.token(),
        std::time::Duration::from_secs(10),
    );
    let sizes = centra.all_product_sizes(200).await.unwrap();
    stack
        .put_catalogue_snapshot(sizes.iter().map(shared::centra::SizeRecord::from).collect())
        .await;
    let pipeline = StockPipeline::new(&stack).await;
    let at = chrono::Utc::now().timestamp_millis() - 60_000;

    // Six events, each sent three times at once; two names of a store; one event refused.
    let mut sent = BTreeMap::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { "LDN-01" } else { "MAN-01" };
        let body = sale(store, at + i, &[("A-1", 1), ("A-2", 2)]);
        sent.insert(format!("storm-{i}"), (store, body));
    }
    let intake = &pipeline.intake;
    let storm = sent
        .iter()
        .flat_map(|(id, (_, body))| (0..3).map(move |_| post_store_event(intake, id, body)));
    let answers = futures::future::join_all(storm).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    stack.assert_no_denials();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        6,
        "{answers:?}"
    );
    // A copy that arrives while the first is queueing waits for it (200), or is told to retry (503).
    assert!(
        statuses.iter().all(|s| [200, 202, 503].contains(s)),
        "{statuses:?}"
    );
    let refused = sale("LDN-01", at, &[("NOT-A-SIZE", 1)]);
    assert_eq!(pipeline.send("refused-1", &refused).await, 400);
    // A Centra webhook, sent twice: one event.
    let payload = serde_json::json!({ "events": [
        { "type": "order", "action": "update", "date": "2026-12-07 04:00:00.000001", "id": 4711 }
    ]})
    .to_string();
    for _ in 0..2 {
        let (status, answer) = post_centra_webhook(&pipeline.intake, &payload).await;
        assert_eq!(status, 200, "{answer}");
    }
    pipeline.settle().await;
    Storm {
        stack,
        sent,
        _centra: sim,
    }
}

/// Checks the archive holds each accepted event once, byte for byte, and each applied line once.
fn assert_archive_matches(
    lines: &[(String, ArchiveLine)],
    sent: &BTreeMap<String, (&'static str, String)>,
) {
    let accepted: Vec<&(String, ArchiveLine)> =
        lines.iter().filter(|(_, l)| l.kind == "accepted").collect();
    let mut ids: Vec<&str> = accepted
        .iter()
        .map(|(_, l)| l.event_id.as_deref().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<&str> = sent.keys().map(String::as_str).collect();
    expected.push("centra:order:update:4711:2026-12-07 04:00:00.000001");
    expected.sort();
    assert_eq!(
        ids, expected,
        "each accepted event exactly once; the refused one not at all"
    );
    for (key, line) in &accepted {
        if let Some((store, body)) = sent.get(line.event_id.as_deref().unwrap()) {
            assert_eq!(line.body.as_deref(), Some(body.as_str()), "byte for byte");
            assert!(
                key.starts_with(&format!("events/store={store}/date=")),
                "{key}"
            );
            assert_eq!(line.event_type.as_deref(), Some("stock.sale"));
            assert!(line.webhook_timestamp.is_some());
        } else {
            assert!(key.starts_with("events/store=centra/"), "{key}");
            assert_eq!(line.body_encoding.as_deref(), Some("utf8"));
            assert!(line.body.as_deref().unwrap().starts_with("payload="));
        }
    }
    // Every line of every accepted sale was applied once, to its Centra size.
    let mut applied: Vec<(String, String)> = lines
        .iter()
        .filter(|(_, l)| l.kind == "applied")
        .map(|(_, l)| (l.movement_id.clone().unwrap(), l.item.clone().unwrap()))
        .collect();
    applied.sort();
    let mut want: Vec<(String, String)> = sent
        .keys()
        .flat_map(|id| {
            [
                (format!("{id}#0"), "sku:A-1".to_string()),
                (format!("{id}#1"), "sku:A-2".to_string()),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(applied, want);
    assert!(lines.iter().all(|(_, l)| l.kind != "unreadable"));
}

#[tokio::test]
async fn the_archive_holds_each_accepted_event_of_a_duplicate_storm_once_byte_for_byte() {
    let Storm { stack, sent, .. } = storm().await;
    let archiver = stack.event_archive().await;

    // Batches of 5, and the second batch delivered again (Lambda retrying it): still once each.
    let (total, passed) = filtered_stream(&stack).await;
    assert!(
        total > passed.len(),
        "leases, push records and the budget are filtered out by the template"
    );
    for batch in passed.chunks(5) {
        invoke(&archiver, batch).await;
    }
    invoke(&archiver, &passed[5..10]).await;

    let lines = archive_lines(&stack).await;
    // The operating manual (§10.2) shows these two lines as a sample of the format.
    for kind in ["accepted", "applied"] {
        let (key, line) = lines.iter().find(|(_, l)| l.kind == kind).unwrap();
        eprintln!("{key}: {}", serde_json::to_string(line).unwrap());
    }
    assert_archive_matches(&lines, &sent);
    stack.assert_deployable();
}

#[tokio::test]
async fn a_gap_is_filled_from_the_idempotency_table_once_however_often_the_backfill_runs() {
    let Storm { stack, sent, .. } = storm().await;
    let sink = shared::adapters::aws::recon::S3ReportSink::new(
        stack.admin.s3(),
        stack.resources["ReportsBucket"].reference.clone(),
    );
    let table = &stack.resources["IdempotencyTable"].reference;
    let now = chrono::Utc::now().timestamp_millis();
    let (from, to) = (now - 3_600_000, now + 60_000);
    let dry = backfill(&stack.admin.dynamodb(), table, &sink, from, to, true)
        .await
        .unwrap();
    assert_eq!((dry.accepted, dry.applied, dry.unreadable), (7, 12, 0));
    assert!(
        archive_lines(&stack).await.is_empty(),
        "a dry run writes nothing"
    );
    for _ in 0..2 {
        let report = backfill(&stack.admin.dynamodb(), table, &sink, from, to, false)
            .await
            .unwrap();
        assert_eq!(report.objects, dry.objects);
    }
    assert_archive_matches(&archive_lines(&stack).await, &sent);
    // A window that misses them archives nothing.
    let before = backfill(
        &stack.admin.dynamodb(),
        table,
        &sink,
        from - 60_000,
        from,
        true,
    )
    .await
    .unwrap();
    assert_eq!((before.accepted, before.applied), (0, 0));
}
