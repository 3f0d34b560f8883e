//! The finance daybook filled by the real stock pipeline (intake → applier → pusher → Centra simulator) and
//! closed with the pure `close_store_day`, without the reconciliation job: accepted when applied, posted when
//! Centra holds the movement, and held for daily-posting stores until `flush_store`.

use crate::common;

use common::*;
use shared::config::mappings::Mappings;
use shared::core::ids::StoreCode;
use shared::finance::{
    close_store_day, flush_store, DayClose, Daybook, DifferenceKind, FinanceKind,
};
use std::sync::Arc;

fn priced_sale(store: &str, at_ms: i64, lines: &[(&str, i64, &str, &str)]) -> String {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, q, price, currency)| {
            serde_json::json!({ "sku": sku, "quantity": q, "unit_price": price, "currency": currency })
        })
        .collect();
    serde_json::json!({ "type": "stock.sale", "occurred_at": iso(at_ms), "store": store, "lines": lines })
        .to_string()
}

fn code(store: &str) -> StoreCode {
    StoreCode::parse(store).unwrap()
}

async fn close(h: &Harness, store: &str, at_ms: i64) -> DayClose {
    let date = h.mappings.store(store).unwrap().business_date(at_ms);
    let entries = h.pipeline.daybook.day(&code(store), date).await.unwrap();
    close_store_day(&code(store), date, &entries, h.now_ms())
}

fn totals(
    close: &DayClose,
    kind: FinanceKind,
    currency: &str,
) -> (u64, i64, String, u64, i64, String) {
    let t = close
        .totals
        .iter()
        .find(|t| t.kind == kind && t.currency == currency)
        .unwrap_or_else(|| panic!("no {kind:?} {currency} in {:?}", close.totals));
    (
        t.accepted.count,
        t.accepted.units,
        t.accepted.gross.to_string(),
        t.posted.count,
        t.posted.units,
        t.posted.gross.to_string(),
    )
}

#[tokio::test]
async fn sales_accepted_by_the_applier_are_posted_by_the_pusher_and_the_day_validates() {
    let h = Harness::new(&["TEE-M", "TEE-L", "CAP-1"], 20).await;
    let at = h.now_ms() - 10 * 60_000;
    let body = priced_sale(
        "LDN-01",
        at,
        &[("TEE-M", 2, "49.00", "GBP"), ("TEE-L", 1, "15.50", "GBP")],
    );
    assert_eq!(h.send("evt_s1", &body).await.status, 202);
    // The till's retry of the same event counts once.
    assert!(h.send("evt_s1", &body).await.status < 300);
    // A store keeps its day in its own currency: a line in another is refused, and not in the daybook.
    let foreign = h
        .send(
            "evt_s_eur",
            &priced_sale("LDN-01", at + 500, &[("CAP-1", 1, "10.00", "EUR")]),
        )
        .await;
    assert_eq!(foreign.status, 400);
    assert_eq!(foreign.body["error"]["code"], "currency_mismatch");
    h.send(
        "evt_s2",
        &priced_sale("LDN-01", at + 1_000, &[("CAP-1", 3, "12.345", "GBP")]),
    )
    .await;
    h.send(
        "evt_r1",
        &movement("stock.return", "LDN-01", at + 2_000, &[("TEE-L", 1)]),
    )
    .await;

    // Applied, not yet pushed: everything is accepted and nothing posted.
    h.apply_all().await;
    h.clock.advance_millis(25 * 60_000);
    let before = close(&h, "LDN-01", at).await;
    assert!(!before.validated);
    let mut unposted: Vec<&str> = before
        .differences
        .iter()
        .inspect(|d| assert_eq!(d.kind, DifferenceKind::AcceptedNotPosted))
        .map(|d| d.record_id.as_str())
        .collect();
    unposted.sort();
    assert_eq!(
        unposted,
        [
            "evt_r1#sku:TEE-L",
            "evt_s1#sku:TEE-L",
            "evt_s1#sku:TEE-M",
            "evt_s2#sku:CAP-1"
        ]
    );
    assert_eq!(
        before.differences[0].minutes,
        Some(25),
        "minutes since accepted"
    );

    h.settle().await;
    assert_eq!(h.centra("LDN-01", "TEE-M"), 18);
    let after = close(&h, "LDN-01", at).await;
    assert!(after.validated, "{:?}", after.differences);
    assert_eq!(
        totals(&after, FinanceKind::Sale, "GBP"),
        (3, 6, "150.535".into(), 3, 6, "150.535".into())
    );
    assert!(
        after.totals.iter().all(|t| t.currency == "GBP"),
        "{:?}",
        after.totals
    );
    assert_eq!(totals(&after, FinanceKind::Return, "GBP").3, 1);
    let entries = h
        .pipeline
        .daybook
        .day(
            &code("LDN-01"),
            h.mappings.store("LDN-01").unwrap().business_date(at),
        )
        .await
        .unwrap();
    assert!(
        entries.iter().all(|e| e.posted_ref.is_some()),
        "each posting names the push that carried it: {entries:?}"
    );
}

#[tokio::test]
async fn a_sale_older_than_the_applied_stock_count_is_posted_by_that_count() {
    let h = Harness::new(&["TEE-M"], 20).await;
    let at = h.now_ms() - 10 * 60_000;
    h.send(
        "evt_c1",
        &movement("stock.count", "LDN-01", at, &[("TEE-M", 7)]),
    )
    .await;
    h.settle().await;
    // Rung up before the count, delivered after it: the count already holds it, so Centra is not changed again.
    h.send("evt_s_old", &sale("LDN-01", at - 60_000, &[("TEE-M", 1)]))
        .await;
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "TEE-M"), 7);

    let day = close(&h, "LDN-01", at - 60_000).await;
    assert!(day.validated, "{:?}", day.differences);
    assert_eq!(totals(&day, FinanceKind::Sale, "GBP").3, 1);
}

const DAILY: &str = r#"
[stores.LDN-01]
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
timezone = "Europe/London"
closes_at = "21:00"
finance_posting = "daily"

[stores.MAN-01]
centra_warehouse_id = 13
cloudshelf_location = "gid://external/CentraWarehouse/13"
currency = "GBP"
"#;

#[tokio::test]
async fn a_daily_posting_store_reaches_centra_only_when_flushed() {
    let mappings = Arc::new(Mappings::from_toml(DAILY).unwrap());
    let h = Harness::with_mappings(&["TEE-M", "CAP-1"], 20, mappings).await;
    let at = h.now_ms() - 10 * 60_000;
    h.send("evt_d1", &sale("LDN-01", at, &[("TEE-M", 3), ("CAP-1", 1)]))
        .await;
    h.send("evt_d2", &sale("MAN-01", at, &[("TEE-M", 1)])).await;
    // Not `settle`: the held rows never settle on their own.
    h.apply_all().await;
    h.pipeline.push_round().await;
    assert_eq!(
        h.centra("MAN-01", "TEE-M"),
        19,
        "real-time store posted at once"
    );
    assert_eq!(h.centra("LDN-01", "TEE-M"), 20, "daily store held");
    assert!(close(&h, "MAN-01", at).await.validated);
    let held = close(&h, "LDN-01", at).await;
    assert_eq!(held.differences.len(), 2, "{:?}", held.differences);

    let flushed = flush_store(
        h.pipeline.ledger.as_ref(),
        h.pipeline.push_queue.as_ref(),
        &code("LDN-01"),
    )
    .await
    .unwrap();
    assert_eq!(flushed, 2, "both held rows handed to the pusher");
    h.settle().await;
    assert_eq!(
        (h.centra("LDN-01", "TEE-M"), h.centra("LDN-01", "CAP-1")),
        (17, 19)
    );
    let closed = close(&h, "LDN-01", at).await;
    assert!(closed.validated, "{:?}", closed.differences);
    assert_eq!(
        flush_store(
            h.pipeline.ledger.as_ref(),
            h.pipeline.push_queue.as_ref(),
            &code("LDN-01")
        )
        .await
        .unwrap(),
        0,
        "nothing left to flush"
    );
}

#[tokio::test]
async fn a_busy_sku_held_all_day_is_posted_in_full_though_its_row_keeps_only_the_latest_movements()
{
    let mappings = Arc::new(Mappings::from_toml(DAILY).unwrap());
    let h = Harness::with_mappings(&["TOTE"], 1_000, mappings).await;
    let at = h.now_ms() - 60 * 60_000;
    let sales = shared::stock::ledger::MAX_PENDING_MOVEMENTS + 15;
    for i in 0..sales {
        let r = h
            .send(
                &format!("evt_tote_{i:04}"),
                &sale("LDN-01", at + i as i64 * 1_000, &[("TOTE", 1)]),
            )
            .await;
        assert_eq!(r.status, 202);
    }
    h.apply_all().await;
    let held = close(&h, "LDN-01", at).await;
    assert_eq!(held.differences.len(), sales);

    flush_store(
        h.pipeline.ledger.as_ref(),
        h.pipeline.push_queue.as_ref(),
        &code("LDN-01"),
    )
    .await
    .unwrap();
    h.pipeline.push_round().await;
    assert_eq!(h.centra("LDN-01", "TOTE"), 1_000 - sales as i64);
    let closed = close(&h, "LDN-01", at).await;
    assert!(
        closed.validated,
        "{} records still unposted, e.g. {:?}",
        closed.differences.len(),
        closed.differences.first()
    );
    assert_eq!(
        totals(&closed, FinanceKind::Sale, "GBP").3,
        sales as u64,
        "every sale posted once"
    );
}
