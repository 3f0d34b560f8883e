//! The reconciliation jobs beyond stock drift — availability to Cloudshelf, SKU audit, stalled orders —
//! against the Centra and Cloudshelf simulators (real HTTP), with the embedded ledger, outbox, checkpoints
//! and report sink. Time runs on a manual clock.

use shared::adapters::memory::MemoryCheckpointStore;
use shared::adapters::memory::{MemoryFifoQueue, MemoryLedgerStore};
use shared::adapters::report_sinks::MemoryReportSink;
use shared::centra::CentraClient;
use shared::cloudshelf::CloudshelfClient;
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock, SharedClock};
use shared::core::ids::{EventPosition, ItemRef, StoreCode};
use shared::orders::outbox::{MemoryOrderOutbox, OrderOutbox, OutboxRecord, OutboxState};
use shared::recon::compare::size_gid;
use shared::recon::jobs::availability::{pushed_levels_key, AvailabilityRow};
use shared::recon::jobs::sku_audit::SkuAuditRow;
use shared::recon::jobs::stalled::StalledRow;
use shared::recon::run::JobDocument;
use shared::recon::{
    run_job, JobKind, JobRun, ReconContext, ReconError, ReconSettings, ReconSources, RunOptions,
};
use shared::stock::ledger::{LedgerRow, PendingMovement};
use shared::stock::ports::LedgerStore;
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{
    CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus, VariantSeed,
};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
const WH: u64 = 12;

const MAPPINGS: &str = r#"
[stores.LDN-01]
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
"#;

struct Env {
    centra: CentraSim,
    cloudshelf: CloudshelfSim,
    location: String,
    ctx: ReconContext,
    clock: ManualClock,
    sink: Arc<MemoryReportSink>,
    ledger: Arc<MemoryLedgerStore>,
    outbox: Arc<MemoryOrderOutbox>,
}

/// Centra: products P0..P<n> with one active size `P<i>S` (EAN 7350000000<i>) and stock `10 + i` in the
/// store warehouse. Cloudshelf: the store's location and the same variants under our gids.
async fn env(n: usize) -> Env {
    let centra = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    })
    .await;
    centra.add_warehouse(WH, "London store");
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let location = cloudshelf.add_location(Some("gid://external/CentraWarehouse/12"));
    for i in 0..n {
        let sku = format!("P{i}S");
        let ean = format!("73500000{i:05}");
        centra.add_product(&format!("P{i}"), "V1", &[("S", &sku, Some(&ean), true)]);
        centra.set_physical(WH, &sku, 10 + i as i64);
        let product = cloudshelf.add_product(
            Some(&format!("gid://external/CentraProduct/{i}")),
            &format!("Item {i}"),
        );
        cloudshelf.add_product_variant(
            &product,
            VariantSeed {
                platform_provided_id: Some(size_gid(&sku)),
                sku: Some(sku.clone()),
                barcode: Some(ean),
            },
        );
    }
    let clock = ManualClock::at(chrono::Utc::now().timestamp_millis());
    let sink = Arc::new(MemoryReportSink::new());
    let ledger = Arc::new(MemoryLedgerStore::new());
    let outbox = Arc::new(MemoryOrderOutbox::new());
    let centra_client = Arc::new(CentraClient::new(
        centra.graphql_url(),
        centra.token(),
        Duration::from_secs(5),
    ));
    let ctx = ReconContext {
        mappings: Arc::new(Mappings::from_toml(MAPPINGS).unwrap()),
        ledger: ledger.clone(),
        stock_queue: Arc::new(MemoryFifoQueue::new(5)),
        exceptions: ledger.clone(),
        centra_stock: centra_client.clone(),
        checkpoints: Arc::new(MemoryCheckpointStore::new()),
        reports: sink.clone(),
        metrics: Arc::new(Metrics::new()),
        clock: Arc::new(clock.clone()) as SharedClock,
        settings: ReconSettings {
            page_interval: Duration::ZERO,
            deadline_margin_ms: 0,
            retry_pause: Duration::ZERO,
            ..Default::default()
        },
        alerts: None,
        sources: ReconSources {
            centra: Some(centra_client),
            cloudshelf: Some(Arc::new(CloudshelfClient::new(
                cloudshelf.graphql_url(),
                cloudshelf.api_key(),
                Duration::from_secs(5),
            ))),
            order_outbox: Some(outbox.clone()),
            ..Default::default()
        },
    };
    Env {
        centra,
        cloudshelf,
        location,
        ctx,
        clock,
        sink,
        ledger,
        outbox,
    }
}

impl Env {
    fn opts(&self) -> RunOptions {
        RunOptions {
            deadline_ms: self.clock.now_millis() + 3_600_000,
            ..Default::default()
        }
    }

    async fn run(&self, job: JobKind, opts: RunOptions) -> JobRun {
        let run = run_job(&self.ctx, job, &opts).await.unwrap();
        assert!(run.finished, "{run:?}");
        self.clock.advance_millis(MIN);
        run
    }

    /// The job's JSON report, parsed, and a check that the CSV has a line per row and the HTML exists.
    fn report<R: shared::recon::report::ReportRow>(&self, run: &JobRun) -> JobDocument<R> {
        let key = |suffix: &str| {
            run.report_keys
                .iter()
                .find(|k| k.ends_with(suffix))
                .unwrap_or_else(|| panic!("no {suffix} in {:?}", run.report_keys))
                .clone()
        };
        let json = self.sink.text(&key(&format!("{}.json", run.job))).unwrap();
        let doc: JobDocument<R> = serde_json::from_str(&json).unwrap();
        let csv = self.sink.text(&key(&format!("{}.csv", run.job))).unwrap();
        assert_eq!(csv.lines().count(), doc.rows.len() + 1, "{csv}");
        assert_eq!(csv.lines().next().unwrap(), R::csv_header().join(","));
        let html = self.sink.text(&key("summary.html")).unwrap();
        assert!(html.contains(run.job.title()), "summary names the job");
        doc
    }
}

#[tokio::test]
async fn availability_pushes_only_changed_levels_and_reports_flags_cloudshelf_keeps() {
    let e = env(5).await;

    // First run: every level is new.
    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(run.counters.get("levels_pushed"), 5);
    for i in 0..5 {
        let level = e
            .cloudshelf
            .stock_level(&e.location, &size_gid(&format!("P{i}S")))
            .or_else(|| {
                e.cloudshelf.stock_level(
                    "gid://external/CentraWarehouse/12",
                    &size_gid(&format!("P{i}S")),
                )
            })
            .expect("level pushed");
        assert_eq!(level.quantity, 10 + i as i64);
    }
    let doc: JobDocument<AvailabilityRow> = e.report(&run);
    assert!(
        doc.rows.is_empty(),
        "levels this run pushed are expected to fix the flags, not findings: {:?}",
        doc.rows
    );
    assert_eq!(run.counters.get("corrected_by_push"), 5);
    assert_eq!(run.counters.get("in_stock_mismatches"), 0);
    assert!(e.sink.text(&pushed_levels_key("LDN-01")).is_some());

    // Nothing changed in Centra: nothing is pushed.
    let pushes = e.cloudshelf.stock_upsert_count();
    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(run.counters.get("levels_changed"), 0);
    assert_eq!(e.cloudshelf.stock_upsert_count(), pushes, "no call at all");
    assert_eq!(
        run.counters.get("in_stock_mismatches"),
        0,
        "no false positives"
    );

    // One size sells out online: exactly that level is pushed, as 0.
    e.centra.set_physical(WH, "P2S", 0);
    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(run.counters.get("levels_pushed"), 1);
    let level = e
        .cloudshelf
        .stock_upserts()
        .last()
        .cloned()
        .expect("an upsert");
    assert!(format!("{level:?}").contains("P2S"), "{level:?}");

    // Cloudshelf hides stock below a safety stock the integration was not told about: once the pushed
    // levels settle, the disagreement stands and is reported.
    e.cloudshelf.set_safety_stock(12);
    e.centra.set_physical(WH, "P0S", 9);
    e.centra.set_physical(WH, "P1S", 10);
    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(run.counters.get("levels_pushed"), 2);
    assert_eq!(
        run.counters.get("in_stock_mismatches"),
        0,
        "the push should fix them"
    );
    let run = e.run(JobKind::Availability, e.opts()).await;
    let doc: JobDocument<AvailabilityRow> = e.report(&run);
    let standing: Vec<&AvailabilityRow> =
        doc.rows.iter().filter(|r| !r.corrected_by_push).collect();
    assert_eq!(
        standing.iter().map(|r| r.sku.as_str()).collect::<Vec<_>>(),
        ["P0S", "P1S"],
        "9 and 10 free are below 12 in Cloudshelf: {:?}",
        doc.rows
    );
    assert!(standing
        .iter()
        .all(|r| r.expected_in_stock && r.cloudshelf_in_stock == Some(false)));
    assert_eq!(run.counters.get("in_stock_mismatches"), 2);
}

#[tokio::test]
async fn availability_dry_run_pushes_nothing_and_remembers_nothing() {
    let e = env(3).await;
    let opts = RunOptions {
        dry_run: true,
        ..e.opts()
    };
    let run = e.run(JobKind::Availability, opts).await;
    assert_eq!(run.counters.get("levels_changed"), 3);
    assert_eq!(run.counters.get("levels_pushed"), 0);
    assert_eq!(e.cloudshelf.stock_upsert_count(), 0);
    assert!(e.sink.text(&pushed_levels_key("LDN-01")).is_none());
}

#[tokio::test]
async fn sku_audit_is_clean_on_equal_catalogues_and_finds_each_seeded_case() {
    let e = env(4).await;
    let run = e.run(JobKind::SkuAudit, e.opts()).await;
    let doc: JobDocument<SkuAuditRow> = e.report(&run);
    assert!(doc.rows.is_empty(), "equal catalogues: {:?}", doc.rows);
    assert_eq!(run.counters.get("matched"), 4);

    // Missing in Cloudshelf, missing in Centra, an EAN conflict.
    e.centra
        .add_product("P9", "V1", &[("S", "P9S", Some("7350000000099"), true)]);
    let orphan = e.cloudshelf.add_product(None, "Orphan");
    e.cloudshelf.add_product_variant(
        &orphan,
        VariantSeed {
            platform_provided_id: None,
            sku: Some("GHOST-1".into()),
            barcode: None,
        },
    );
    let p1 = e.cloudshelf.add_product(None, "P1 again");
    e.cloudshelf.add_product_variant(
        &p1,
        VariantSeed {
            platform_provided_id: None,
            sku: Some("P1S".into()),
            barcode: Some("1234567890123".into()),
        },
    );
    let run = e.run(JobKind::SkuAudit, e.opts()).await;
    let doc: JobDocument<SkuAuditRow> = e.report(&run);
    let kinds: Vec<(String, String)> = doc
        .rows
        .iter()
        .map(|r| (r.kind.clone(), r.sku.clone()))
        .collect();
    assert!(
        kinds.contains(&("missing_in_cloudshelf".into(), "P9S".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("missing_in_centra".into(), "GHOST-1".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("ean_conflict".into(), "P1S".into())),
        "{kinds:?}"
    );
    assert_eq!(run.counters.get("missing_in_cloudshelf"), 1);
    assert_eq!(run.counters.get("missing_in_centra"), 1);

    // Fixing in a dry run only says what it would do.
    let before = e.cloudshelf.catalogue_upsert_counts();
    let run = e
        .run(
            JobKind::SkuAudit,
            RunOptions {
                apply_fixes: true,
                dry_run: true,
                ..e.opts()
            },
        )
        .await;
    let doc: JobDocument<SkuAuditRow> = e.report(&run);
    let p9 = doc.rows.iter().find(|r| r.sku == "P9S").unwrap();
    assert_eq!(p9.action, "would_create");
    assert_eq!(e.cloudshelf.catalogue_upsert_counts(), before);

    // The fix creates the size in Cloudshelf under our gids; the next audit no longer misses it.
    let run = e
        .run(
            JobKind::SkuAudit,
            RunOptions {
                apply_fixes: true,
                ..e.opts()
            },
        )
        .await;
    assert_eq!(run.counters.get("variants_created"), 1);
    assert!(
        e.cloudshelf.product_variant(&size_gid("P9S")).is_some()
            || e.cloudshelf
                .products()
                .iter()
                .any(|p| format!("{p:?}").contains("P9S"))
    );
    let run = e.run(JobKind::SkuAudit, e.opts()).await;
    assert_eq!(run.counters.get("missing_in_cloudshelf"), 0);
    assert_eq!(
        run.counters.get("missing_in_centra"),
        1,
        "the other findings stay"
    );
}

fn ldn() -> StoreCode {
    StoreCode::parse("LDN-01").unwrap()
}

#[tokio::test]
async fn stalled_orders_found_carried_across_runs_and_cleared_once_injected() {
    let e = env(1).await;
    let now = e.clock.now_millis();
    let at = |ms: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap();
    let lost = e.cloudshelf.add_order(OrderSeed {
        id: "order-lost".into(),
        status: OrderStatus::Paid,
        third_party_id: None,
        lines: vec![],
        created_at: None,
        updated_at: at(now - 30 * MIN),
    });
    let fine = e.cloudshelf.add_order(OrderSeed {
        id: "order-fine".into(),
        status: OrderStatus::Paid,
        third_party_id: None,
        lines: vec![],
        created_at: None,
        updated_at: at(now - 30 * MIN),
    });
    let young = e.cloudshelf.add_order(OrderSeed {
        id: "order-young".into(),
        status: OrderStatus::Placed,
        third_party_id: None,
        lines: vec![],
        created_at: None,
        updated_at: at(now - 2 * MIN),
    });
    let mut injected = OutboxRecord::received(&fine, &ldn(), "evt-fine", now - 30 * MIN);
    injected.state = OutboxState::Reported;
    injected.centra_orders = vec![1001];
    assert!(e.outbox.put(&injected, None).await.unwrap());
    let stuck = OutboxRecord::received("order-stuck", &ldn(), "evt-stuck", now - 40 * MIN);
    assert!(e.outbox.put(&stuck, None).await.unwrap());

    // A store sale accepted 20 minutes ago that never reached Centra.
    let mut row = LedgerRow::new(ldn(), ItemRef::Sku("P0S".into()));
    row.count_qty = Some(4);
    row.last_count = Some(EventPosition {
        occurred_at_ms: now - 20 * MIN,
        sequence: None,
    });
    row.version = 1;
    row.pending = vec![PendingMovement {
        version: 1,
        event_id: "evt-sale-1".into(),
        occurred_at_ms: now - 20 * MIN,
        received_at_ms: now - 20 * MIN,
        daybook_date: None,
        accepted_as: None,
    }];
    row.updated_at_ms = now - 20 * MIN;
    assert_eq!(
        e.ledger.apply("evt-sale-1#0", 0, &row, None).await.unwrap(),
        shared::stock::ports::ApplyWrite::Written
    );

    let run = e.run(JobKind::StalledOrders, e.opts()).await;
    let doc: JobDocument<StalledRow> = e.report(&run);
    let found: Vec<(String, String)> = doc
        .rows
        .iter()
        .map(|r| (r.kind.clone(), r.reference.clone()))
        .collect();
    assert!(
        found.contains(&("cloudshelf_without_centra_order".into(), lost.clone())),
        "{found:?}"
    );
    assert!(
        found.contains(&("outbox_stuck".into(), "order-stuck".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("movements_not_in_centra".into(), "sku:P0S".into())),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|(_, r)| *r == fine || *r == young),
        "{found:?}"
    );
    assert_eq!(run.counters.get("cloudshelf_without_centra_order"), 1);

    // Nothing changed in Cloudshelf since: the lost order is below the watermark yet still reported.
    e.clock.advance_millis(15 * MIN);
    let run = e.run(JobKind::StalledOrders, e.opts()).await;
    let doc: JobDocument<StalledRow> = e.report(&run);
    let ids: Vec<&str> = doc
        .rows
        .iter()
        .filter(|r| r.kind == "cloudshelf_without_centra_order")
        .map(|r| r.reference.as_str())
        .collect();
    assert_eq!(
        ids,
        [lost.as_str(), young.as_str()],
        "the young order has now waited long enough"
    );

    // Both get their Centra order: nothing left of them.
    for (id, number) in [(&lost, 2001), (&young, 2002)] {
        let mut r = OutboxRecord::received(id, &ldn(), "evt", e.clock.now_millis());
        r.state = OutboxState::Reported;
        r.centra_orders = vec![number];
        assert!(e.outbox.put(&r, None).await.unwrap());
    }
    let run = e.run(JobKind::StalledOrders, e.opts()).await;
    assert_eq!(run.counters.get("cloudshelf_without_centra_order"), 0);
}

#[tokio::test]
async fn a_job_without_its_source_says_what_is_missing() {
    let mut e = env(1).await;
    e.ctx.sources.cloudshelf = None;
    for job in [
        JobKind::Availability,
        JobKind::SkuAudit,
        JobKind::StalledOrders,
    ] {
        match run_job(&e.ctx, job, &e.opts()).await {
            Err(ReconError::NotConfigured(what)) => assert!(what.contains("Cloudshelf"), "{what}"),
            other => panic!("{job}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn availability_rides_out_429s_5xx_and_a_lost_upsert_response() {
    use simulators::centra::{Fault, FaultTarget as CentraTarget};
    use simulators::cloudshelf::{CloudshelfFault, FaultTarget};
    let e = env(4).await;
    e.centra.inject_on(
        CentraTarget::Queries,
        Fault::RateLimited {
            retry_after: Duration::from_secs(0),
        },
    );
    e.centra
        .inject_on(CentraTarget::Queries, Fault::ServerError(502));
    e.cloudshelf
        .inject_on(FaultTarget::Queries, CloudshelfFault::RateLimited);
    e.cloudshelf.inject_on(
        FaultTarget::Mutations,
        CloudshelfFault::LoseResponseAfterApply,
    );
    e.cloudshelf
        .inject_on(FaultTarget::Mutations, CloudshelfFault::ServerError);

    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(
        e.centra.pending_faults() + e.cloudshelf.pending_faults(),
        0,
        "every fault was hit"
    );
    assert_eq!(run.counters.get("levels_pushed"), 4);
    assert_eq!(run.counters.get("push_errors"), 0);
    for i in 0..4 {
        let level = e
            .cloudshelf
            .stock_level(&e.location, &size_gid(&format!("P{i}S")))
            .expect("pushed despite the faults");
        assert_eq!(level.quantity, 10 + i as i64);
    }
    // The retried upsert set the same absolute levels: the next run has nothing to push.
    let run = e.run(JobKind::Availability, e.opts()).await;
    assert_eq!(run.counters.get("levels_changed"), 0);
}

#[derive(Default)]
struct Alerts(std::sync::Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl shared::recon::AlertSink for Alerts {
    async fn alert(
        &self,
        subject: &str,
        message: &str,
    ) -> Result<(), shared::core::errors::BackendError> {
        self.0
            .lock()
            .unwrap()
            .push((subject.into(), message.into()));
        Ok(())
    }
}

#[tokio::test]
async fn a_run_that_finds_something_is_announced_and_a_clean_one_is_not() {
    let mut e = env(2).await;
    let alerts = Arc::new(Alerts::default());
    e.ctx.alerts = Some(alerts.clone());
    e.run(JobKind::SkuAudit, e.opts()).await;
    assert!(
        alerts.0.lock().unwrap().is_empty(),
        "clean catalogues: no alert"
    );

    e.centra
        .add_product("P5", "V1", &[("S", "P5S", None, true)]);
    e.run(JobKind::SkuAudit, e.opts()).await;
    let sent = alerts.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (subject, body) = &sent[0];
    assert!(
        subject.contains("SKU audit") && subject.contains("1 catalogue findings"),
        "{subject}"
    );
    assert!(
        body.contains("P5S") && body.contains("summary.html"),
        "{body}"
    );
}
