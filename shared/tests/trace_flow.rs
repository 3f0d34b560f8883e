//! `shelfsync trace` on the embedded pipeline and the Centra simulator: what the trace says at each stage of a
//! real sale, and what it says of an item, is read from the records the flow wrote and from the simulator.

use crate::common;

use common::*;
use shared::core::ids::{ItemRef, StoreCode};
use shared::ops::trace::{CentraStock, LineStage};
use shared::stock::ledger::MutationStatus;
use shared::stock::ports::{LedgerStore, PushLog};

const MIN: i64 = 60_000;
const SKU: &str = "Prod123Var123789S";
const OTHER: &str = "Tee01Black-M";

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .timestamp_millis()
}

#[tokio::test]
async fn a_trace_follows_one_sale_end_to_end() {
    let h = Harness::new(&[SKU, OTHER], 20).await;
    let occurred = h.now_ms() - MIN;
    let body = sale("LDN-01", occurred, &[(SKU, 2), (OTHER, 1), (SKU, 1)]);
    let sent_at = h.now_ms();
    assert_eq!(h.send("evt_trace_1", &body).await.status, 202);
    let sources = h.pipeline.trace_sources();

    // Accepted, not applied: it waits in the stock queue.
    let t = sources.trace_event("evt_trace_1").await.unwrap();
    let accepted = t.accepted.as_ref().expect("accepted");
    assert_eq!(
        (accepted.store.as_str(), accepted.event_type.as_str()),
        ("LDN-01", "stock.sale")
    );
    assert!(accepted.received_at_ms >= sent_at && accepted.received_at_ms <= h.now_ms());
    assert_eq!(accepted.occurred_at_ms, Some(iso_ms(occurred)));
    assert_eq!(t.lines.len(), 3);
    assert!(t.lines.iter().all(|l| l.stage == LineStage::NotApplied));
    assert!(
        t.lines[0].detail.contains("stock queue"),
        "{}",
        t.lines[0].detail
    );

    // Applied, not pushed: resolved to its size, on its row, waiting for the pusher.
    h.apply_all().await;
    let t = sources.trace_event("evt_trace_1").await.unwrap();
    let first = &t.lines[0];
    assert_eq!(first.stage, LineStage::WaitingForPush, "{}", first.detail);
    assert_eq!(first.resolved_to.as_deref(), Some("sku:Prod123Var123789S"));
    assert_eq!(first.version, Some(1));
    assert!(first.push.is_none());
    assert!(first.detail.contains("push queue"), "{}", first.detail);
    let row = first.row.as_ref().expect("row");
    assert_eq!((row.delta_applied, row.pending), (-3, 1));
    assert_eq!(
        t.lines[2].merged_into_line,
        Some(0),
        "the repeated SKU went with line 0"
    );
    assert_eq!(t.lines[1].resolved_to.as_deref(), Some("sku:Tee01Black-M"));

    // Pushed: the push that carried it, Centra's change id and time as the simulator recorded them.
    h.settle().await;
    let t = sources.trace_event("evt_trace_1").await.unwrap();
    let first = &t.lines[0];
    assert_eq!(first.stage, LineStage::InCentra, "{}", first.detail);
    let push = first.push.as_ref().expect("the carrying push");
    let record = PushLog::get(h.pipeline.ledger.as_ref(), &push.push_id)
        .await
        .unwrap()
        .expect("push record");
    let mutation = record
        .mutation_for(&ItemRef::Sku(SKU.into()))
        .expect("mutation");
    assert_eq!(push.mutation_index, Some(mutation.index));
    assert_eq!(push.mutation_status, Some(MutationStatus::Applied));
    let changes = h.sim.stock_changes();
    let change = changes
        .iter()
        .find(|c| c.comment.contains(&format!("push {}/", push.push_id)))
        .expect("Centra holds a change from that push");
    assert_eq!(
        push.centra_change_id.as_deref(),
        Some(change.id.to_string().as_str())
    );
    let change_at = push.centra_change_at.as_deref().expect("Centra's time");
    assert_eq!(ms(change_at) / 1000, change.created_at.timestamp());
    assert_eq!(push.warehouse_id, Some(warehouse(&h.mappings, "LDN-01")));
    let lag = first.accepted_to_centra_ms.expect("lag");
    assert_eq!(lag, push.recorded_at_ms - accepted.received_at_ms);
    assert!(lag >= 0);
    assert_eq!(
        first.occurred_to_centra_ms,
        Some(push.recorded_at_ms - iso_ms(occurred))
    );
    // The other size went out in the same mutation.
    assert_eq!(
        t.lines[1].push.as_ref().map(|p| &p.push_id),
        Some(&push.push_id)
    );

    // Unknown ids are said to be unknown, not guessed at.
    let t = sources.trace_event("evt_never_sent").await.unwrap();
    assert!(t.accepted.is_none() && t.lines.is_empty());
    assert!(t.notes[0].contains("no store event"), "{:?}", t.notes);
}

/// `occurred_at` goes over the wire with millisecond precision.
fn iso_ms(at: i64) -> i64 {
    ms(&iso(at))
}

#[tokio::test]
async fn a_stale_sale_and_a_blocked_item_say_so() {
    let h = Harness::new(&[SKU], 20).await;
    let sources = h.pipeline.trace_sources();
    let count_at = h.now_ms() - 2 * MIN;
    let count = movement("stock.count", "LDN-01", count_at, &[(SKU, 9)]);
    assert_eq!(h.send("evt_count", &count).await.status, 202);
    h.settle().await;
    let old = sale("LDN-01", count_at - MIN, &[(SKU, 1)]);
    assert_eq!(h.send("evt_old_sale", &old).await.status, 202);
    h.settle().await;
    let t = sources.trace_event("evt_old_sale").await.unwrap();
    assert_eq!(t.lines[0].stage, LineStage::Stale, "{}", t.lines[0].detail);
    assert!(t.lines[0].detail.contains("stock count"));

    // A row Centra refused waits blocked, and says how to release it.
    let store = StoreCode::parse("LDN-01").unwrap();
    let item = ItemRef::Sku(SKU.into());
    let mut row = LedgerStore::get(h.pipeline.ledger.as_ref(), &store, &item)
        .await
        .unwrap()
        .expect("row");
    row.blocked = Some("Centra refused the size".into());
    let rev = row.rev;
    assert!(LedgerStore::put(h.pipeline.ledger.as_ref(), &row, rev)
        .await
        .unwrap());
    let later = sale("LDN-01", h.now_ms() - 1000, &[(SKU, 1)]);
    assert_eq!(h.send("evt_blocked", &later).await.status, 202);
    h.apply_all().await;
    h.pipeline.push_round().await;
    let t = sources.trace_event("evt_blocked").await.unwrap();
    assert_eq!(
        t.lines[0].stage,
        LineStage::Blocked,
        "{}",
        t.lines[0].detail
    );
    assert!(
        t.lines[0]
            .detail
            .contains("shelfsync unblock --store LDN-01 --sku Prod123Var123789S"),
        "{}",
        t.lines[0].detail
    );
}

#[tokio::test]
async fn trace_item_shows_the_row_its_movements_and_centras_stock() {
    let h = Harness::new(&[SKU, OTHER], 20).await;
    let wh = warehouse(&h.mappings, "LDN-01");
    // Centra's free-to-allocate differs from physical once something is allocated.
    h.sim.set_allocated(wh, SKU, 3);
    let t0 = h.now_ms() - 10 * MIN;
    let events = [
        (
            "evt_i_count",
            movement("stock.count", "LDN-01", t0, &[(SKU, 12)]),
        ),
        ("evt_i_sale", sale("LDN-01", t0 + MIN, &[(SKU, 2)])),
        ("evt_i_old", sale("LDN-01", t0 - MIN, &[(SKU, 1)])),
    ];
    for (id, body) in &events {
        assert_eq!(h.send(id, body).await.status, 202);
        h.settle().await;
    }
    let sources = h.pipeline.trace_sources();
    let store = StoreCode::parse("LDN-01").unwrap();
    let t = sources
        .trace_item(&store, &ItemRef::Sku(SKU.into()), None)
        .await
        .unwrap();
    let row = t.row.as_ref().expect("row");
    assert_eq!(
        (
            row.version,
            row.pushed_version,
            row.count_qty,
            row.store_quantity
        ),
        (2, 2, Some(12), Some(10))
    );
    assert_eq!(row.stale_ignored, 1);
    let movements: Vec<(&str, Option<u64>)> = t
        .movements
        .iter()
        .map(|m| (m.event_id.as_str(), m.version))
        .collect();
    assert_eq!(
        movements,
        [
            ("evt_i_count", Some(1)),
            ("evt_i_sale", Some(2)),
            ("evt_i_old", None)
        ]
    );
    assert!(t.pending.is_empty());
    assert_eq!(t.pushes.len(), 2, "the count's setStock, then the sale");
    assert!(t.pushes.iter().all(|p| p.centra_change_id.is_some()));
    let level = h.sim.stock(wh, SKU).expect("Centra stock");
    assert_eq!(level.physical, 10);
    assert_eq!(
        t.centra_stock,
        CentraStock::Found {
            size_id: h.sim.size_id(SKU).unwrap(),
            physical: level.physical,
            free_to_allocate: level.free_to_allocate,
        }
    );
    assert_ne!(level.free_to_allocate, level.physical);
    // Each movement names the push that carried it: the count's setStock, then the sale's.
    for (event, push) in [("evt_i_count", &t.pushes[0]), ("evt_i_sale", &t.pushes[1])] {
        let e = sources.trace_event(event).await.unwrap();
        assert_eq!(
            e.lines[0].push.as_ref().map(|p| &p.push_id),
            Some(&push.push_id),
            "{event}"
        );
    }

    // --since leaves out what is older.
    let t = sources
        .trace_item(&store, &ItemRef::Sku(SKU.into()), Some(h.now_ms() + MIN))
        .await
        .unwrap();
    assert!(t.movements.is_empty() && t.pushes.is_empty());
    assert!(t.row.is_some(), "the row itself is always shown");

    // An item the store never reported has no row, and says so.
    let t = sources
        .trace_item(&store, &ItemRef::Sku(OTHER.into()), None)
        .await
        .unwrap();
    assert!(t.row.is_none());
    assert!(t.notes.iter().any(|n| n.contains("no ledger row")));
    assert!(matches!(
        t.centra_stock,
        CentraStock::Found { physical: 20, .. }
    ));
}
