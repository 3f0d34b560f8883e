//! Finance daily close end to end: store events through the real intake, applier and pusher (Centra simulator),
//! the daybook recording what was accepted and what Centra holds, and the `finance_close` job closing each
//! store's business day — validated when everything reached Centra, the missing records listed when not, and
//! daily-posting stores held until their close flushes them.

use crate::common;

use common::*;
use shared::adapters::memory::MemoryCheckpointStore;
use shared::adapters::report_sinks::MemoryReportSink;
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock, SharedClock};
use shared::finance::Daybook;
use shared::recon::jobs::finance::FinanceRow;
use shared::recon::run::JobDocument;
use shared::recon::{
    run_job, JobKind, JobRun, ReconContext, ReconSettings, ReconSources, RunOptions,
};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

fn sale(store: &str, at_ms: i64, lines: &[(&str, i64, &str)]) -> String {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, q, price)| serde_json::json!({ "sku": sku, "quantity": q, "unit_price": price, "currency": "GBP" }))
        .collect();
    serde_json::json!({ "type": "stock.sale", "occurred_at": iso(at_ms), "store": store, "lines": lines }).to_string()
}

struct Close {
    ctx: ReconContext,
    clock: ManualClock,
    sink: Arc<MemoryReportSink>,
}

impl Close {
    /// The finance close over the harness's daybook and ledger, its clock one hour after `store`'s close of the
    /// business day of `at_ms`.
    fn after_close_of(h: &Harness, mappings: Arc<Mappings>, store: &str, at_ms: i64) -> Self {
        let m = mappings.store(store).unwrap();
        let close = m.close_instant(m.business_date(at_ms)).timestamp_millis();
        let clock = ManualClock::at(close + 3_600_000);
        let sink = Arc::new(MemoryReportSink::new());
        let ctx = ReconContext {
            mappings,
            ledger: h.pipeline.ledger.clone(),
            stock_queue: h.pipeline.stock_queue.clone(),
            exceptions: h.pipeline.ledger.clone(),
            centra_stock: Arc::new(shared::centra::CentraClient::new(
                h.sim.graphql_url(),
                h.sim.token(),
                Duration::from_secs(5),
            )),
            checkpoints: Arc::new(MemoryCheckpointStore::new()),
            reports: sink.clone(),
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(clock.clone()) as SharedClock,
            settings: ReconSettings {
                page_interval: Duration::ZERO,
                deadline_margin_ms: 0,
                ..Default::default()
            },
            alerts: None,
            sources: ReconSources {
                daybook: Some(h.pipeline.daybook.clone()),
                push_queue: Some(h.pipeline.push_queue.clone()),
                ..Default::default()
            },
        };
        Self { ctx, clock, sink }
    }

    async fn run(&self) -> (JobRun, JobDocument<FinanceRow>) {
        let run = run_job(
            &self.ctx,
            JobKind::FinanceClose,
            &RunOptions {
                deadline_ms: self.clock.now_millis() + 600_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(run.finished);
        self.clock.advance_millis(3_600_000);
        let key = run
            .report_keys
            .iter()
            .find(|k| k.ends_with("finance_close.json"))
            .unwrap();
        let doc = serde_json::from_str(&self.sink.text(key).unwrap()).unwrap();
        let csv_key = run
            .report_keys
            .iter()
            .find(|k| k.ends_with("finance_close.csv"))
            .unwrap();
        let csv = self.sink.text(csv_key).unwrap();
        assert!(
            csv.starts_with("store,business_date,kind,currency,record,"),
            "{csv}"
        );
        (run, doc)
    }
}

fn totals<'a>(doc: &'a JobDocument<FinanceRow>, store: &str, kind: &str) -> &'a FinanceRow {
    doc.rows
        .iter()
        .find(|r| r.store == store && r.kind == kind && r.record.is_empty())
        .unwrap_or_else(|| panic!("no {store} {kind} totals in {:?}", doc.rows))
}

#[tokio::test]
async fn a_day_validates_when_centra_holds_every_sale_and_lists_what_it_does_not() {
    let h = Harness::new(&["TEE-M", "TEE-L", "CAP-1"], 20).await;
    let at = h.now_ms() - 10 * 60_000;
    let r = h
        .send(
            "evt_s1",
            &sale(
                "LDN-01",
                at,
                &[("TEE-M", 2, "49.00"), ("TEE-L", 1, "15.50")],
            ),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = h
        .send(
            "evt_r1",
            &movement("stock.return", "LDN-01", at + 1_000, &[("TEE-L", 1)]),
        )
        .await;
    assert_eq!(r.status, 202);
    // Not finance: a count is in no daybook.
    h.send(
        "evt_c1",
        &movement("stock.count", "MAN-01", at, &[("TEE-M", 7)]),
    )
    .await;
    // The same sale re-sent by the till is accepted once.
    h.send(
        "evt_s1",
        &sale(
            "LDN-01",
            at,
            &[("TEE-M", 2, "49.00"), ("TEE-L", 1, "15.50")],
        ),
    )
    .await;
    h.settle().await;

    let close = Close::after_close_of(&h, h.mappings.clone(), "LDN-01", at);
    let (run, doc) = close.run().await;
    assert_eq!(run.counters.get("unvalidated"), 0, "{:?}", doc.rows);
    let sales = totals(&doc, "LDN-01", "sale");
    assert_eq!(
        (
            sales.accepted_count,
            sales.accepted_units,
            sales.accepted_gross.as_str()
        ),
        (2, 3, "113.50")
    );
    assert_eq!(
        (
            sales.posted_count,
            sales.posted_units,
            sales.posted_gross.as_str()
        ),
        (2, 3, "113.50")
    );
    assert_eq!(sales.status, "validated");
    let returns = totals(&doc, "LDN-01", "return");
    assert_eq!((returns.accepted_count, returns.posted_count), (1, 1));
    assert!(
        doc.rows.iter().all(|r| r.store == "LDN-01"),
        "MAN-01 had no sale or return"
    );

    // A sale applied but not yet in Centra: the next close lists it and does not validate.
    let at2 = at + 60_000;
    h.send("evt_s2", &sale("LDN-01", at2, &[("CAP-1", 1, "12.00")]))
        .await;
    h.apply_all().await;
    let close = Close::after_close_of(&h, h.mappings.clone(), "LDN-01", at2);
    let (run, doc) = close.run().await;
    assert_eq!(run.counters.get("unvalidated"), 1);
    let missing: Vec<&FinanceRow> = doc.rows.iter().filter(|r| !r.record.is_empty()).collect();
    assert_eq!(missing.len(), 1, "{:?}", doc.rows);
    assert_eq!(missing[0].record, "evt_s2#sku:CAP-1");
    assert_eq!(missing[0].status, "accepted_not_posted");
    assert_eq!(
        missing[0].reason, "waiting for the pusher",
        "the close says where it waits"
    );
    assert_eq!(totals(&doc, "LDN-01", "sale").status, "not_validated");

    // Once pushed, the day is checked again by the next run (carried as open) and validates.
    h.settle().await;
    let (run, doc) = close.run().await;
    assert_eq!(run.counters.get("unvalidated"), 0, "{:?}", doc.rows);
    assert_eq!(run.counters.get("validated"), 1);
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
async fn a_daily_posting_store_is_held_until_its_close_flushes_it() {
    let mappings = Arc::new(Mappings::from_toml(DAILY).unwrap());
    let h = Harness::with_mappings(&["TEE-M"], 20, mappings.clone()).await;
    let at = h.now_ms() - 10 * 60_000;
    h.send("evt_d1", &sale("LDN-01", at, &[("TEE-M", 3, "10.00")]))
        .await;
    h.send("evt_d2", &sale("MAN-01", at, &[("TEE-M", 1, "10.00")]))
        .await;
    h.apply_all().await;
    h.pipeline.push_round().await;
    assert_eq!(
        h.centra("MAN-01", "TEE-M"),
        19,
        "real-time store posted at once"
    );
    assert_eq!(h.centra("LDN-01", "TEE-M"), 20, "daily store held");

    let close = Close::after_close_of(&h, mappings.clone(), "LDN-01", at);
    let (run, doc) = close.run().await;
    assert_eq!(run.counters.get("rows_flushed"), 1);
    assert_eq!(totals(&doc, "LDN-01", "sale").status, "posting");
    assert_eq!(
        h.pipeline
            .daybook
            .day(
                &store_code("LDN-01"),
                mappings.store("LDN-01").unwrap().business_date(at)
            )
            .await
            .unwrap()
            .len(),
        1
    );

    h.pipeline.push_round().await;
    assert_eq!(
        h.centra("LDN-01", "TEE-M"),
        17,
        "posted in the close's batch"
    );
    let (run, doc) = close.run().await;
    assert_eq!(run.counters.get("unvalidated"), 0, "{:?}", doc.rows);
    assert_eq!(totals(&doc, "LDN-01", "sale").status, "validated");
}

fn store_code(code: &str) -> shared::core::ids::StoreCode {
    shared::core::ids::StoreCode::parse(code).unwrap()
}
