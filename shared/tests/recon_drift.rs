//! Stock-drift reconciliation against the Centra simulator (real HTTP, 200-row pages) with the embedded ledger,
//! stock queue, checkpoints and report sink. The ledger is seeded through the real intake, applier and pusher,
//! then Centra is changed behind the integration's back. No sleeps: deadlines run on a manual clock that the
//! page source moves forward.

use crate::common;
use shared::telemetry::metrics::names;

use async_trait::async_trait;
use common::*;
use shared::adapters::memory::MemoryCheckpointStore;
use shared::adapters::report_sinks::MemoryReportSink;
use shared::centra::catalogue::CentraStockRow;
use shared::centra::{CentraClient, CentraError};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock, SharedClock};
use shared::core::errors::BackendError;
use shared::core::ids::{ItemRef, StoreCode};
use shared::events::store_events::StockLineMessage;
use shared::recon::checkpoint::Checkpoint;
use shared::recon::jobs::stock_drift::{counter, DriftAction, DriftRow, StockDriftReport};
use shared::recon::{
    run_stock_drift, CheckpointStore, Counters, DriftQuantity, JobKind, JobRun, ReconContext,
    ReconError, ReconSettings, RunOptions, WarehouseStockSource,
};
use shared::stock::ports::LedgerStore;
use shared::telemetry::metrics::Metrics;
use simulators::centra::CentraSimConfig;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
/// 450 counted SKUs: pages of 200, 200 and 60 (with the Centra-only sizes) per warehouse.
const COUNTED: usize = 450;
/// Sizes Centra has but the stores never reported.
const CENTRA_ONLY: usize = 10;
/// A valid SKU (printable ASCII) that is also markup.
const MARKUP_SKU: &str = "Tee<b>&\"'-1";

const RECON_MAPPINGS: &str = r#"
[stores.LDN-01]
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
drift_policy = "correct"

[stores.MAN-01]
centra_warehouse_id = 13
cloudshelf_location = "gid://external/CentraWarehouse/13"
currency = "GBP"
"#;

fn sku(i: usize) -> String {
    if i == 3 {
        MARKUP_SKU.to_string()
    } else {
        format!("SKU-{i:04}")
    }
}

fn counted_qty(i: usize) -> i64 {
    (i as i64 * 7) % 23 + 1
}

fn store(code: &str) -> StoreCode {
    StoreCode::parse(code).unwrap()
}

/// Centra and both stores' ledgers agree on every counted SKU; `X-ONLY-*` sizes exist only in Centra.
async fn seeded() -> Harness {
    let skus: Vec<String> = (0..COUNTED)
        .map(sku)
        .chain((0..CENTRA_ONLY).map(|i| format!("X-ONLY-{i}")))
        .collect();
    let sku_refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let config = CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    };
    let h = Harness::with(&sku_refs, 0, config, |_| {}).await;
    let lines: Vec<(String, i64)> = (0..COUNTED).map(|i| (sku(i), counted_qty(i))).collect();
    let lines: Vec<(&str, i64)> = lines.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    let at = h.now_ms() - 10 * MIN;
    for (n, code) in ["LDN-01", "MAN-01"].iter().enumerate() {
        let r = h
            .send(
                &format!("evt_count_{n}"),
                &movement("stock.count", code, at, &lines),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    h.settle().await;
    assert_eq!(h.centra("LDN-01", &sku(5)), counted_qty(5));
    h
}

fn recon_mappings() -> Arc<Mappings> {
    Arc::new(Mappings::from_toml(RECON_MAPPINGS).unwrap())
}

fn settings() -> ReconSettings {
    ReconSettings {
        page_interval: Duration::ZERO,
        deadline_margin_ms: 0,
        retry_pause: Duration::ZERO,
        ..Default::default()
    }
}

/// Centra pages through the real client; each page moves `clock` forward by `step_ms` (a slow Centra).
struct TimedPages {
    centra: CentraClient,
    clock: ManualClock,
    step_ms: i64,
    pages: AtomicU32,
}

#[async_trait]
impl WarehouseStockSource for TimedPages {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        self.clock.advance_millis(self.step_ms);
        self.centra
            .warehouse_stock_page(warehouse_id, page, limit)
            .await
    }
}

struct Recon {
    ctx: ReconContext,
    clock: ManualClock,
    sink: Arc<MemoryReportSink>,
    pages: Arc<TimedPages>,
}

impl Recon {
    fn new(h: &Harness, mappings: Arc<Mappings>) -> Self {
        Self::with_checkpoints(h, mappings, Arc::new(MemoryCheckpointStore::new()))
    }

    fn with_checkpoints(
        h: &Harness,
        mappings: Arc<Mappings>,
        checkpoints: Arc<dyn CheckpointStore>,
    ) -> Self {
        let clock = ManualClock::at(chrono::Utc::now().timestamp_millis());
        let sink = Arc::new(MemoryReportSink::new());
        let pages = Arc::new(TimedPages {
            centra: CentraClient::new(h.sim.graphql_url(), h.sim.token(), Duration::from_secs(10)),
            clock: clock.clone(),
            step_ms: 1_000,
            pages: AtomicU32::new(0),
        });
        let ctx = ReconContext {
            mappings,
            ledger: h.pipeline.ledger.clone(),
            stock_queue: h.pipeline.stock_queue.clone(),
            exceptions: h.pipeline.ledger.clone(),
            centra_stock: pages.clone(),
            checkpoints,
            reports: sink.clone(),
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(clock.clone()) as SharedClock,
            settings: settings(),
            alerts: None,
            sources: Default::default(),
        };
        Self {
            ctx,
            clock,
            sink,
            pages,
        }
    }

    fn opts(&self, deadline_in_ms: i64) -> RunOptions {
        RunOptions {
            deadline_ms: self.clock.now_millis() + deadline_in_ms,
            ..Default::default()
        }
    }

    /// One invocation with all the time in the world.
    async fn run(&self) -> JobRun {
        let run = run_stock_drift(&self.ctx, &self.opts(24 * 3_600_000))
            .await
            .expect("reconciliation runs");
        assert!(run.finished, "{run:?}");
        run
    }

    /// Invocations of `budget_ms` each until the run finishes; returns them all.
    async fn run_sliced(&self, budget_ms: i64) -> Vec<JobRun> {
        let mut runs = Vec::new();
        for _ in 0..100 {
            let run = run_stock_drift(&self.ctx, &self.opts(budget_ms))
                .await
                .expect("invocation succeeds");
            let finished = run.finished;
            runs.push(run);
            if finished {
                return runs;
            }
        }
        panic!("run did not finish in 100 invocations");
    }

    fn report(&self, run: &JobRun) -> StockDriftReport {
        let key = json_key(run);
        serde_json::from_str(&self.sink.text(&key).expect("JSON report written")).unwrap()
    }
}

fn json_key(run: &JobRun) -> String {
    run.report_keys
        .iter()
        .find(|k| k.ends_with("/stock_drift.json"))
        .cloned()
        .expect("JSON report key")
}

fn drift_set(report: &StockDriftReport) -> BTreeSet<(String, String, Option<i64>, i64)> {
    report
        .drifted
        .iter()
        .map(|r| {
            (
                r.store.clone(),
                r.sku.clone(),
                r.centra_quantity,
                r.ledger_quantity,
            )
        })
        .collect()
}

fn row_of(report: &StockDriftReport, store: &str, sku: &str) -> DriftRow {
    report
        .drifted
        .iter()
        .find(|r| r.store == store && r.sku == sku)
        .cloned()
        .unwrap_or_else(|| panic!("no drift row for {store} {sku}"))
}

/// Every ledger row lands in exactly one bucket.
fn assert_accounted(c: &Counters) {
    let buckets = [
        counter::ROWS_COMPARED,
        counter::IN_FLIGHT,
        counter::BLOCKED,
        counter::UNANCHORED,
        counter::OUTSIDE_SINCE,
    ];
    let sum: u64 = buckets.iter().map(|b| c.get(b)).sum();
    assert_eq!(sum, c.get(counter::LEDGER_ROWS), "{c:?}");
}

fn wh(h: &Harness, code: &str) -> u64 {
    warehouse(&h.mappings, code)
}

/// A sale applied to the ledger but not pushed: the row is in flight.
async fn sale_in_flight(h: &Harness, id: &str, code: &str, sku: &str) {
    let r = h.send(id, &sale(code, h.now_ms() - MIN, &[(sku, 1)])).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    h.apply_all().await;
    let row = h
        .pipeline
        .ledger
        .get(&store(code), &ItemRef::Sku(sku.into()))
        .await
        .unwrap()
        .unwrap();
    assert!(row.has_unpushed());
}

#[tokio::test]
async fn seeded_drift_is_found_exactly_and_reported_in_json_csv_and_html() {
    let h = seeded().await;
    let report_only = Arc::new(
        Mappings::from_toml(&RECON_MAPPINGS.replace("drift_policy = \"correct\"", "")).unwrap(),
    );

    // Equal data: nothing drifted.
    let clean = Recon::new(&h, report_only.clone());
    let run = clean.run().await;
    assert_eq!(run.counters.get(counter::DRIFTED), 0, "{:?}", run.counters);
    assert_eq!(run.counters.get(counter::ROWS_COMPARED), 2 * COUNTED as u64);
    assert_eq!(
        run.counters.get(counter::NOT_IN_LEDGER),
        2 * CENTRA_ONLY as u64
    );
    assert_eq!(run.counters.get(counter::PAGES), 6);
    assert_accounted(&run.counters);

    // Centra changed behind the integration's back, plus rows that must not be reported.
    h.sim
        .set_physical(wh(&h, "LDN-01"), &sku(5), counted_qty(5) + 3);
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(250), 0);
    h.sim.set_physical(wh(&h, "LDN-01"), MARKUP_SKU, 40);
    h.sim
        .set_physical(wh(&h, "MAN-01"), &sku(449), counted_qty(449) - 1);
    // Deltas without a count: no level to compare.
    h.sim.set_physical(wh(&h, "MAN-01"), "X-ONLY-0", 5);
    let r = h
        .send(
            "evt_only",
            &sale("MAN-01", h.now_ms() - MIN, &[("X-ONLY-0", 1)]),
        )
        .await;
    assert_eq!(r.status, 202);
    h.settle().await;
    // In flight: Centra has not received the sale yet, so it differs by one — and more, but not drift.
    sale_in_flight(&h, "evt_sale_7", "LDN-01", &sku(7)).await;
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(7), 77);
    // Allocations change free-to-allocate, not physical.
    h.sim.set_allocated(wh(&h, "MAN-01"), &sku(20), 2);

    let recon = Recon::new(&h, report_only.clone());
    let run = recon.run().await;
    let c = &run.counters;
    assert_eq!(c.get(counter::DRIFTED), 4, "{c:?}");
    assert_eq!(c.get(counter::IN_FLIGHT), 1);
    assert_eq!(c.get(counter::UNANCHORED), 1, "{c:?}");
    assert_eq!(c.get(counter::LEDGER_ROWS), 2 * COUNTED as u64 + 1);
    assert_eq!(c.get(counter::ROWS_COMPARED), 2 * COUNTED as u64 - 1);
    assert_eq!(
        c.get(counter::CENTRA_ROWS),
        2 * (COUNTED + CENTRA_ONLY) as u64
    );
    assert_eq!(c.get(counter::CORRECTIONS_QUEUED), 0);
    assert_accounted(c);
    assert!(
        h.pipeline.stock_queue.is_empty(),
        "report policy queues nothing"
    );

    let report = recon.report(&run);
    let expected: BTreeSet<_> = [
        ("LDN-01", sku(5), Some(counted_qty(5) + 3), counted_qty(5)),
        ("LDN-01", sku(250), Some(0), counted_qty(250)),
        ("LDN-01", MARKUP_SKU.to_string(), Some(40), counted_qty(3)),
        (
            "MAN-01",
            sku(449),
            Some(counted_qty(449) - 1),
            counted_qty(449),
        ),
    ]
    .into_iter()
    .map(|(s, k, centra, ledger)| (s.to_string(), k, centra, ledger))
    .collect();
    assert_eq!(drift_set(&report), expected);
    let row = row_of(&report, "LDN-01", &sku(250));
    assert_eq!(
        (row.difference, row.action),
        (-counted_qty(250), DriftAction::Reported)
    );
    assert_eq!(report.stores["MAN-01"].counters.get(counter::DRIFTED), 1);

    // CSV: header + one line per drifted row, markup SKU quoted as CSV needs.
    let prefix = json_key(&run)
        .trim_end_matches("/stock_drift.json")
        .to_string();
    let csv = recon
        .sink
        .text(&format!("{prefix}/stock_drift.csv"))
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    assert!(csv.starts_with("store,sku,ean,ledger_item,centra_quantity"));
    assert!(csv.contains("\"Tee<b>&\"\"'-1\""), "{csv}");

    // HTML: the numbers, escaped data, and a chart with both runs of this sink's history.
    let html = recon.sink.text(&format!("{prefix}/summary.html")).unwrap();
    assert!(
        html.contains("data-job=\"stock_drift\">4<"),
        "headline number"
    );
    assert!(html.contains("Tee&lt;b&gt;&amp;&quot;&#39;-1"));
    assert!(!html.contains(MARKUP_SKU));
    assert!(
        html.contains(&format!("<td class=\"num\">{}</td>", 2 * COUNTED - 1)),
        "rows compared"
    );
    assert!(html.contains("4 drifted SKUs"));
    assert_eq!(
        recon
            .sink
            .content_type(&format!("{prefix}/summary.html"))
            .as_deref(),
        Some("text/html; charset=utf-8")
    );
    let history: serde_json::Value =
        serde_json::from_str(&recon.sink.text("reports/history.json").unwrap()).unwrap();
    assert_eq!(history["runs"][0]["jobs"]["stock_drift"]["findings"], 4);

    assert_eq!(recon.ctx.metrics.total(names::DRIFTED_SKUS), 4.0);
    assert_eq!(
        recon.ctx.metrics.total(names::RECON_ROWS_COMPARED),
        (2 * COUNTED - 1) as f64
    );
    assert_eq!(recon.ctx.metrics.total(names::RECON_RUNS_INCOMPLETE), 0.0);

    // Free-to-allocate comparison sees the allocation too, and never corrects.
    let mut fta = Recon::new(&h, recon_mappings());
    fta.ctx.settings.drift_quantity = DriftQuantity::FreeToAllocate;
    let run = fta.run().await;
    let report = fta.report(&run);
    assert_eq!(run.counters.get(counter::DRIFTED), 5);
    assert_eq!(
        row_of(&report, "MAN-01", &sku(20)).centra_quantity,
        Some(counted_qty(20) - 2)
    );
    assert!(report
        .drifted
        .iter()
        .all(|r| r.action == DriftAction::Reported));
    assert!(h.pipeline.stock_queue.is_empty());
}

#[tokio::test]
async fn correct_policy_queues_counts_that_bring_centra_and_ledger_in_line() {
    let h = seeded().await;
    let ldn = wh(&h, "LDN-01");
    h.sim.set_physical(ldn, &sku(1), 100);
    h.sim.set_physical(ldn, &sku(201), 0);
    h.sim.set_physical(ldn, &sku(420), counted_qty(420) - 2);
    h.sim.set_physical(wh(&h, "MAN-01"), &sku(2), 50);
    sale_in_flight(&h, "evt_sale_9", "LDN-01", &sku(9)).await;
    h.sim.set_physical(ldn, &sku(9), 90);

    let recon = Recon::new(&h, recon_mappings());
    let run = recon.run().await;
    assert_eq!(run.counters.get(counter::DRIFTED), 4, "{:?}", run.counters);
    assert_eq!(
        run.counters.get(counter::CORRECTIONS_QUEUED),
        3,
        "only LDN-01, never the in-flight row"
    );
    let report = recon.report(&run);
    assert_eq!(
        row_of(&report, "LDN-01", &sku(1)).action,
        DriftAction::CorrectionQueued
    );
    assert_eq!(
        row_of(&report, "MAN-01", &sku(2)).action,
        DriftAction::Reported
    );

    // The corrections sit on the stock FIFO queue, grouped by SKU like intake's messages.
    let queued = h.pipeline.stock_queue.receive(10, 0, 0);
    for m in &queued {
        h.pipeline.stock_queue.release(m.receipt);
    }
    let groups: BTreeSet<String> = queued.iter().map(|m| m.group_id.clone()).collect();
    assert_eq!(groups, BTreeSet::from([sku(1), sku(201), sku(420)]));
    let first: StockLineMessage = serde_json::from_str(&queued[0].body).unwrap();
    assert_eq!(first.event_type.as_str(), "stock.count");

    // A sale of SKU 1 after the run is queued behind the correction and stays on top of it.
    let r = h
        .send(
            "evt_sale_after",
            &sale("LDN-01", h.now_ms(), &[(&sku(1), 1)]),
        )
        .await;
    assert_eq!(r.status, 202);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", &sku(1)), counted_qty(1) - 1);
    assert_eq!(h.centra("LDN-01", &sku(201)), counted_qty(201));
    assert_eq!(h.centra("LDN-01", &sku(420)), counted_qty(420));
    assert_eq!(
        h.centra("MAN-01", &sku(2)),
        50,
        "report policy leaves Centra alone"
    );
    for i in [1, 201, 420] {
        let row = h
            .pipeline
            .ledger
            .get(&store("LDN-01"), &ItemRef::Sku(sku(i)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.store_quantity(),
            Some(h.centra("LDN-01", &sku(i))),
            "{}",
            sku(i)
        );
    }

    // The formerly in-flight row is pushed now (Centra 90 − 1): drift, corrected by the next run.
    let second = Recon::new(&h, recon_mappings()).run().await;
    assert_eq!(
        second.counters.get(counter::DRIFTED),
        2,
        "{:?}",
        second.counters
    );
    assert_eq!(second.counters.get(counter::CORRECTIONS_QUEUED), 1);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", &sku(9)), counted_qty(9) - 1);

    let third = Recon::new(&h, recon_mappings()).run().await;
    assert_eq!(
        third.counters.get(counter::DRIFTED),
        1,
        "only MAN-01's, which reports"
    );
    assert_eq!(third.counters.get(counter::CORRECTIONS_QUEUED), 0);

    // A dry run names what it would correct and queues nothing.
    h.sim.set_physical(ldn, &sku(30), 1_000);
    let dry = Recon::new(&h, recon_mappings());
    let mut opts = dry.opts(24 * 3_600_000);
    opts.dry_run = true;
    let run = run_stock_drift(&dry.ctx, &opts).await.unwrap();
    assert_eq!(
        row_of(&dry.report(&run), "LDN-01", &sku(30)).action,
        DriftAction::WouldCorrect
    );
    assert!(h.pipeline.stock_queue.is_empty());
}

#[tokio::test]
async fn resumed_after_deadlines_every_row_is_counted_once() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(10), 0);
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(399), 1);
    h.sim.set_physical(wh(&h, "MAN-01"), &sku(205), 500);
    sale_in_flight(&h, "evt_sale_11", "MAN-01", &sku(11)).await;
    let report_only = Arc::new(
        Mappings::from_toml(&RECON_MAPPINGS.replace("drift_policy = \"correct\"", "")).unwrap(),
    );

    let whole = Recon::new(&h, report_only.clone());
    let uninterrupted = whole.run().await;
    let expected = whole.report(&uninterrupted);

    // Each page takes 1 s on the job's clock and an invocation gets 4.5 s: a few pages, then a checkpoint.
    let sliced = Recon::new(&h, report_only);
    let runs = sliced.run_sliced(4_500).await;
    assert!(runs.len() >= 3, "{} invocations", runs.len());
    assert!(runs[1..]
        .iter()
        .all(|r| r.resumed && r.run_id == runs[0].run_id));
    let last = runs.last().unwrap();
    assert_eq!(last.counters, uninterrupted.counters);
    let mut summed = Counters::default();
    for r in &runs {
        summed.merge(&r.this_invocation);
    }
    assert_eq!(summed, last.counters, "invocations add up to the totals");
    assert_eq!(
        sliced.pages.pages.load(Ordering::SeqCst),
        whole.pages.pages.load(Ordering::SeqCst),
        "no page read twice"
    );
    let report = sliced.report(last);
    assert_eq!(drift_set(&report), drift_set(&expected));
    assert_eq!(report.drifted.len(), 3);
    assert_eq!(report.invocations as usize, runs.len());
    assert_accounted(&last.counters);
    assert_eq!(
        sliced.ctx.metrics.total(names::RECON_RUNS_INCOMPLETE),
        (runs.len() - 1) as f64
    );
    assert_eq!(sliced.ctx.metrics.total(names::DRIFTED_SKUS), 3.0);

    // The next invocation starts a new run.
    let next = run_stock_drift(&sliced.ctx, &sliced.opts(24 * 3_600_000))
        .await
        .unwrap();
    assert!(!next.resumed && next.run_id != last.run_id);
}

/// Fails the `n`-th save (1-based) after writing nothing: like a crash after the page's part was written.
struct FailingSave {
    inner: MemoryCheckpointStore,
    fail_at: usize,
    saves: AtomicUsize,
}

#[async_trait]
impl CheckpointStore for FailingSave {
    async fn load(&self, job: JobKind, scope: &str) -> Result<Option<Checkpoint>, BackendError> {
        self.inner.load(job, scope).await
    }

    async fn save(&self, cp: &Checkpoint, expected: Option<u64>) -> Result<bool, BackendError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(BackendError::new("test", "checkpoint table unavailable"));
        }
        self.inner.save(cp, expected).await
    }
}

#[tokio::test]
async fn a_page_redone_after_a_lost_checkpoint_is_not_counted_twice() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(150), 0);
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(300), 0);
    let whole = Recon::new(&h, recon_mappings());
    let mut opts = whole.opts(24 * 3_600_000);
    opts.dry_run = true;
    let expected = run_stock_drift(&whole.ctx, &opts).await.unwrap();

    // Save 1 claims the run, save 2 follows page 1 (SKU 150's part is written first), save 3 would follow page 2.
    for fail_at in [2, 3] {
        let store = Arc::new(FailingSave {
            inner: MemoryCheckpointStore::new(),
            fail_at,
            saves: AtomicUsize::new(0),
        });
        let recon = Recon::with_checkpoints(&h, recon_mappings(), store);
        let mut opts = recon.opts(24 * 3_600_000);
        opts.dry_run = true;
        let err = run_stock_drift(&recon.ctx, &opts).await.unwrap_err();
        assert!(matches!(err, ReconError::Backend(_)), "{err}");
        let run = run_stock_drift(&recon.ctx, &opts).await.unwrap();
        assert!(run.finished && run.resumed);
        assert_eq!(run.counters, expected.counters, "fail at save {fail_at}");
        assert_eq!(
            drift_set(&recon.report(&run)),
            drift_set(&whole.report(&expected)),
            "fail at save {fail_at}"
        );
    }
    assert!(h.pipeline.stock_queue.is_empty(), "dry runs queue nothing");
}

#[tokio::test]
async fn a_store_whose_ledger_grows_mid_sweep_starts_over() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(0), 99);
    let recon = Recon::new(&h, recon_mappings());
    let mut opts = recon.opts(2_500);
    opts.dry_run = true;
    let first = run_stock_drift(&recon.ctx, &opts).await.unwrap();
    assert!(!first.finished);
    assert_eq!(
        first.counters.get(counter::PAGES),
        1,
        "{:?}",
        first.counters
    );

    // LDN-01 counts a size it never reported before.
    let r = h
        .send(
            "evt_new",
            &movement(
                "stock.count",
                "LDN-01",
                h.now_ms() - MIN,
                &[("X-ONLY-1", 4)],
            ),
        )
        .await;
    assert_eq!(r.status, 202);
    h.settle().await;

    let mut runs = vec![first];
    while !runs.last().unwrap().finished {
        let mut opts = recon.opts(2_500);
        opts.dry_run = true;
        runs.push(run_stock_drift(&recon.ctx, &opts).await.unwrap());
    }
    let last = runs.last().unwrap();
    assert_eq!(last.counters.get(counter::STORE_RESTARTS), 1);

    let fresh = Recon::new(&h, recon_mappings());
    let mut opts = fresh.opts(24 * 3_600_000);
    opts.dry_run = true;
    let expected = run_stock_drift(&fresh.ctx, &opts).await.unwrap();
    let mut counters = last.counters.clone();
    counters.0.remove(counter::STORE_RESTARTS);
    assert_eq!(counters, expected.counters);
    assert_eq!(
        expected.counters.get(counter::LEDGER_ROWS),
        2 * COUNTED as u64 + 1
    );
    assert_eq!(
        drift_set(&recon.report(last)),
        drift_set(&fresh.report(&expected))
    );
}

/// Saves a newer revision behind the job's back before its `n`-th save: another invocation of the same job.
struct Overtaken {
    inner: MemoryCheckpointStore,
    at: usize,
    saves: AtomicUsize,
}

#[async_trait]
impl CheckpointStore for Overtaken {
    async fn load(&self, job: JobKind, scope: &str) -> Result<Option<Checkpoint>, BackendError> {
        self.inner.load(job, scope).await
    }

    async fn save(&self, cp: &Checkpoint, expected: Option<u64>) -> Result<bool, BackendError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            let other = self.inner.load(cp.job, &cp.scope).await?.unwrap();
            assert!(self.inner.save(&other, Some(other.revision)).await?);
        }
        self.inner.save(cp, expected).await
    }
}

#[tokio::test]
async fn scope_options_and_concurrent_invocations() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "MAN-01"), &sku(8), 0);

    let recon = Recon::new(&h, recon_mappings());
    let mut opts = recon.opts(24 * 3_600_000);
    opts.store = Some(store("MAN-01"));
    let run = run_stock_drift(&recon.ctx, &opts).await.unwrap();
    assert_eq!(run.scope, "MAN-01");
    assert_eq!(run.counters.get(counter::STORES), 1);
    assert_eq!(run.counters.get(counter::DRIFTED), 1);
    assert_eq!(run.counters.get(counter::PAGES), 3);

    opts.store = Some(store("EDI-01"));
    assert!(matches!(
        run_stock_drift(&recon.ctx, &opts).await,
        Err(ReconError::UnknownStore(s)) if s == "EDI-01"
    ));

    // `since` after every row's last update: nothing is compared.
    let mut opts = recon.opts(24 * 3_600_000);
    opts.since = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let run = run_stock_drift(&recon.ctx, &opts).await.unwrap();
    assert_eq!(run.counters.get(counter::ROWS_COMPARED), 0);
    assert_eq!(run.counters.get(counter::OUTSIDE_SINCE), 2 * COUNTED as u64);
    opts.full = true;
    let run = run_stock_drift(&recon.ctx, &opts).await.unwrap();
    assert_eq!(run.counters.get(counter::DRIFTED), 1, "full ignores since");

    let overtaken = Recon::with_checkpoints(
        &h,
        recon_mappings(),
        Arc::new(Overtaken {
            inner: MemoryCheckpointStore::new(),
            at: 2,
            saves: AtomicUsize::new(0),
        }),
    );
    let err = run_stock_drift(&overtaken.ctx, &overtaken.opts(24 * 3_600_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReconError::CheckpointConflict { job: JobKind::StockDrift, ref scope } if scope == "all"),
        "{err}"
    );
}

#[tokio::test]
async fn a_warehouse_centra_does_not_know_is_an_exception_not_a_stop() {
    let h = seeded().await;
    let mappings = Arc::new(
        Mappings::from_toml(&format!(
            "{RECON_MAPPINGS}\n[stores.OSL-01]\ncentra_warehouse_id = 99\ncloudshelf_location = \"gid://x/99\"\ncurrency = \"GBP\"\n"
        ))
        .unwrap(),
    );
    let recon = Recon::new(&h, mappings);
    let run = recon.run().await;
    assert_eq!(run.counters.get(counter::STORES_FAILED), 1);
    assert_eq!(run.counters.get(counter::STORES), 2);
    let exceptions =
        shared::stock::ports::ExceptionLog::list(h.pipeline.ledger.as_ref(), Some("OSL-01"))
            .await
            .unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].kind, "recon_store_failed");
    assert!(exceptions[0]
        .centra_message
        .as_deref()
        .unwrap_or("")
        .contains("99"));
    let html = recon
        .sink
        .text(&json_key(&run).replace("stock_drift.json", "summary.html"))
        .unwrap();
    assert!(
        html.contains("1 exceptions"),
        "the failed store counts as an exception"
    );
}

/// Before the first page is read, rewrites one ledger row (a push landing between the ledger load and the page).
struct PushBetweenReads {
    inner: Arc<TimedPages>,
    ledger: Arc<shared::adapters::memory::MemoryLedgerStore>,
    item: ItemRef,
    done: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl WarehouseStockSource for PushBetweenReads {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        if !self.done.swap(true, Ordering::SeqCst) {
            let row = self
                .ledger
                .get(&store("LDN-01"), &self.item)
                .await
                .unwrap()
                .unwrap();
            assert!(self.ledger.put(&row, row.rev).await.unwrap());
        }
        self.inner.stock_page(warehouse_id, page, limit).await
    }
}

#[tokio::test]
async fn a_difference_whose_row_changed_during_the_run_is_left_to_the_next_run() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(12), 0);
    h.sim.set_physical(wh(&h, "LDN-01"), &sku(13), 0);
    let mut recon = Recon::new(&h, recon_mappings());
    recon.ctx.centra_stock = Arc::new(PushBetweenReads {
        inner: recon.pages.clone(),
        ledger: h.pipeline.ledger.clone(),
        item: ItemRef::Sku(sku(12)),
        done: Default::default(),
    });
    let run = recon.run().await;
    assert_eq!(
        run.counters.get(counter::CHANGED_DURING_RUN),
        1,
        "{:?}",
        run.counters
    );
    assert_eq!(run.counters.get(counter::DRIFTED), 1);
    assert_eq!(run.counters.get(counter::CORRECTIONS_QUEUED), 1);
    let report = recon.report(&run);
    assert_eq!(
        drift_set(&report)
            .into_iter()
            .map(|r| r.1)
            .collect::<Vec<_>>(),
        [sku(13)]
    );

    h.settle().await;
    assert_eq!(h.centra("LDN-01", &sku(13)), counted_qty(13), "corrected");
    let next = Recon::new(&h, recon_mappings()).run().await;
    assert_eq!(
        next.counters.get(counter::DRIFTED),
        1,
        "the next run finds SKU 12"
    );
}

/// From page 2 on, every page starts with the previous page's last row, as offset pages do once a size is
/// inserted ahead of the cursor during the sweep: one row is listed twice, none is lost.
struct ShiftedPages {
    inner: Arc<TimedPages>,
}

#[async_trait]
impl WarehouseStockSource for ShiftedPages {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        let current = self.inner.stock_page(warehouse_id, page, limit).await?;
        if page == 1 {
            return Ok(current);
        }
        let previous = self.inner.stock_page(warehouse_id, page - 1, limit).await?;
        let mut rows = vec![previous.last().unwrap().clone()];
        rows.extend(current);
        rows.truncate(limit as usize);
        Ok(rows)
    }
}

#[tokio::test]
async fn a_row_listed_twice_by_shifting_pages_is_counted_once() {
    let h = seeded().await;
    h.sim.set_physical(wh(&h, "MAN-01"), &sku(199), 0);
    let plain = Recon::new(&h, recon_mappings());
    let mut opts = plain.opts(24 * 3_600_000);
    opts.dry_run = true;
    let expected = run_stock_drift(&plain.ctx, &opts).await.unwrap();

    let mut shifted = Recon::new(&h, recon_mappings());
    shifted.ctx.centra_stock = Arc::new(ShiftedPages {
        inner: shifted.pages.clone(),
    });
    let run = run_stock_drift(&shifted.ctx, &opts).await.unwrap();
    assert_eq!(
        run.counters.get(counter::DUPLICATE_ROWS),
        2,
        "{:?}",
        run.counters
    );
    assert_eq!(
        run.counters.get(counter::DRIFTED),
        1,
        "SKU 199 once, not twice"
    );
    for name in [
        counter::ROWS_COMPARED,
        counter::LEDGER_ROWS,
        counter::NOT_IN_LEDGER,
    ] {
        assert_eq!(
            run.counters.get(name),
            expected.counters.get(name),
            "{name}"
        );
    }
    assert_accounted(&run.counters);
}
