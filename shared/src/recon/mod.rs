//! Scheduled reconciliation: jobs that compare what the integration believes with what Centra (and later
//! Cloudshelf) hold, write a report, and — where a store's mapping allows — queue corrections through the same
//! stock FIFO queue the store events use.
//!
//! Every job runs in slices that fit a Lambda invocation: it works page by page until `deadline_ms` nears,
//! saves a [`Checkpoint`] (cursor, counters, run id) and returns `finished: false`; the next invocation resumes
//! from the checkpoint. Each page's findings go to the [`ReportSink`] under a key made of the run id and the
//! page, and the checkpoint that counts the page is saved after them, so a page redone after a crash overwrites
//! its own part instead of adding to the totals.
//!
//! Layout: `ports` (checkpoint store, report sink, Centra stock pages), `checkpoint` (the resumable state and
//! its in-memory store), `report` (JSON/CSV/history), `html` (the summary page), `sinks` (memory and local
//! directory), `aws` (DynamoDB checkpoints, S3 reports), `snapshot` (one store's ledger in compact form),
//! `stock_drift` (the first job).

pub mod checkpoint;
pub mod compare;
pub mod jobs;
pub mod ports;
pub mod report;
pub mod request;
pub mod run;
pub mod snapshot;

use crate::centra::CentraError;
use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::core::ids::StoreCode;
use crate::stock::ports::{ExceptionLog, LedgerStore, StockQueue};
use crate::telemetry::metrics::Metrics;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use checkpoint::{Checkpoint, Cursor, PartRef, RunSignature};
pub use jobs::stock_drift::{run_stock_drift, DriftQuantity};
pub use ports::{AlertSink, CheckpointStore, ReportSink, WarehouseStockSource};

/// A reconciliation job. Its `as_str` names checkpoints, report files and history entries, so it must not
/// change once released; new jobs are added as new variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Centra stock of each store warehouse against the store's ledger.
    StockDrift,
    /// Centra availability pushed to Cloudshelf's stock levels; Cloudshelf's `isInStock` checked.
    Availability,
    /// Centra sizes against Cloudshelf variants (SKU, EAN, active).
    SkuAudit,
    /// Kiosk orders and store events the event-driven path lost or left stuck.
    StalledOrders,
    /// Per store and business day: sales and returns accepted vs posted to Centra.
    FinanceClose,
}

impl JobKind {
    pub const ALL: &'static [JobKind] = &[
        JobKind::StockDrift,
        JobKind::Availability,
        JobKind::SkuAudit,
        JobKind::StalledOrders,
        JobKind::FinanceClose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::StockDrift => "stock_drift",
            JobKind::Availability => "availability",
            JobKind::SkuAudit => "sku_audit",
            JobKind::StalledOrders => "stalled_orders",
            JobKind::FinanceClose => "finance_close",
        }
    }

    /// Heading in the HTML summary.
    pub fn title(self) -> &'static str {
        match self {
            JobKind::StockDrift => "Stock drift (Centra vs store ledger)",
            JobKind::Availability => "Availability to Cloudshelf",
            JobKind::SkuAudit => "SKU audit (Centra vs Cloudshelf catalogue)",
            JobKind::StalledOrders => "Stalled orders and unposted store events",
            JobKind::FinanceClose => "Finance daily close",
        }
    }

    /// What the job's headline number counts.
    pub fn findings_label(self) -> &'static str {
        match self {
            JobKind::StockDrift => "drifted SKUs",
            JobKind::Availability => "in-stock mismatches",
            JobKind::SkuAudit => "catalogue findings",
            JobKind::StalledOrders => "stalled records",
            JobKind::FinanceClose => "unvalidated store days",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let wanted = raw.trim().replace('-', "_");
        Self::ALL.iter().copied().find(|j| j.as_str() == wanted)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one invocation is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Find and report, but queue no correction.
    pub dry_run: bool,
    /// Only this store (its own checkpoint scope); `None`: every mapped store.
    pub store: Option<StoreCode>,
    /// Only rows the stores touched at or after this instant (stock drift: ledger rows updated since), unless
    /// `full`. Jobs without an incremental mode ignore it.
    pub since: Option<DateTime<Utc>>,
    /// Everything, whatever `since` says.
    pub full: bool,
    /// Also repair what the job can (SKU audit: create the missing variants in Cloudshelf); a dry run never
    /// does.
    pub apply_fixes: bool,
    /// Epoch ms by which the invocation must have saved its checkpoint and returned (the Lambda deadline).
    pub deadline_ms: i64,
    /// Put this job under an existing run id (an orchestrator running several jobs as one run); `None`: a new
    /// run names itself. Letters, digits, `-` and `_` only (it is part of object keys).
    pub run_id: Option<String>,
}

/// Settings of reconciliation that are not per invocation.
#[derive(Debug, Clone)]
pub struct ReconSettings {
    /// Centra page size (`limit`, at most 200).
    pub page_limit: u32,
    /// Least time between two Centra page reads. Centra's request budget (Growth: 60 per 10 s, 5,000 per hour)
    /// is shared with the pusher and other integrations; 2 s per page keeps a sweep to about a third of it.
    pub page_interval: Duration,
    /// Stop this long (or twice the slowest page so far, if longer) before the deadline, to save the checkpoint.
    pub deadline_margin_ms: i64,
    /// Attempts of one page read on transient Centra errors before the invocation gives up (and resumes later).
    pub centra_attempts: u32,
    /// First pause between those attempts; doubled each time.
    pub retry_pause: Duration,
    /// Which Centra quantity the stock-drift job compares with the ledger.
    pub drift_quantity: DriftQuantity,
    /// Rows written into one job's JSON/CSV; past it the file says `truncated` (the per-page parts keep all).
    pub max_report_rows: usize,
    /// Runs kept in `reports/history.json` (the summary's chart).
    pub history_runs: usize,
    /// Rows shown in the HTML summary per job.
    pub summary_rows: usize,
    /// Cloudshelf's organisation `safetyStockNumber`: below it a location shows out of stock.
    pub cloudshelf_safety_stock: i64,
    /// When kiosk orders and store movements count as stalled.
    pub stalled: crate::orders::stalled::StalledThresholds,
}

impl Default for ReconSettings {
    fn default() -> Self {
        Self {
            page_limit: crate::centra::catalogue::MAX_PAGE_LIMIT,
            page_interval: Duration::from_secs(2),
            deadline_margin_ms: 10_000,
            centra_attempts: 4,
            retry_pause: Duration::from_millis(500),
            drift_quantity: DriftQuantity::Physical,
            max_report_rows: 100_000,
            history_runs: 30,
            summary_rows: 50,
            cloudshelf_safety_stock: 0,
            stalled: Default::default(),
        }
    }
}

/// Everything a job reads and writes. The domain sees only ports; the Lambda wires DynamoDB/SQS/S3, the CLI
/// and the tests the embedded ones.
pub struct ReconContext {
    pub mappings: Arc<Mappings>,
    pub ledger: Arc<dyn LedgerStore>,
    pub stock_queue: Arc<dyn StockQueue>,
    pub exceptions: Arc<dyn ExceptionLog>,
    pub centra_stock: Arc<dyn WarehouseStockSource>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub reports: Arc<dyn ReportSink>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub settings: ReconSettings,
    /// What the jobs beyond stock drift read; a job whose source is missing fails with `NotConfigured`.
    pub sources: ReconSources,
    /// Where a finished run with findings or exceptions is announced; `None`: reports and metrics only.
    pub alerts: Option<Arc<dyn AlertSink>>,
}

impl ReconContext {
    /// Announces a finished job that found something. A failed alert is logged, never fails the run: the
    /// report and the metrics (with their alarms) already hold the result.
    pub(crate) async fn announce(&self, summary: &report::JobSummary, report_keys: &[String]) {
        let Some(alerts) = &self.alerts else { return };
        if summary.findings == 0 && summary.exceptions == 0 {
            return;
        }
        let (subject, body) = report::alert_text(summary, report_keys);
        if let Err(e) = alerts.alert(&subject, &body).await {
            tracing::warn!(job = summary.job.as_str(), error = %e, "reconciliation alert not sent");
        }
    }
}

/// The remote systems and stores of the jobs other than stock drift.
#[derive(Clone, Default)]
pub struct ReconSources {
    /// Centra's Integration API (catalogue, orders).
    pub centra: Option<Arc<crate::centra::CentraClient>>,
    pub cloudshelf: Option<Arc<crate::cloudshelf::CloudshelfClient>>,
    pub order_outbox: Option<Arc<dyn crate::orders::outbox::OrderOutbox>>,
    /// Sales and returns accepted and posted (finance close).
    pub daybook: Option<Arc<dyn crate::finance::Daybook>>,
    /// Where the finance close hands the held movements of daily-posting stores to the pusher.
    pub push_queue: Option<Arc<dyn crate::stock::ports::PushQueue>>,
    /// The event archive's gap queue: the stalled-orders run reports what the archive lacks.
    pub archive_gaps: Option<Arc<dyn crate::archive::ArchiveGapSource>>,
}

impl ReconSources {
    pub(crate) fn centra(&self) -> Result<&crate::centra::CentraClient, ReconError> {
        self.centra
            .as_deref()
            .ok_or(ReconError::NotConfigured("Centra API (CENTRA_API_URL)"))
    }

    pub(crate) fn cloudshelf(&self) -> Result<&crate::cloudshelf::CloudshelfClient, ReconError> {
        self.cloudshelf.as_deref().ok_or(ReconError::NotConfigured(
            "Cloudshelf API (CLOUDSHELF_API_URL)",
        ))
    }
}

/// Named counters of a run (`rows_compared`, `drifted`, …). A map rather than a struct so every job keeps its
/// own without a new type in the checkpoint, history or HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    pub fn add(&mut self, name: &str, n: u64) {
        if n > 0 {
            *self.0.entry(name.to_string()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in &other.0 {
            self.add(k, *v);
        }
    }

    /// `self − earlier`, per counter (what one invocation added).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut out = Counters::default();
        for (k, v) in &self.0 {
            out.add(k, v.saturating_sub(earlier.get(k)));
        }
        out
    }
}

/// What one invocation of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub job: JobKind,
    pub run_id: String,
    /// `all` or the store code.
    pub scope: String,
    /// The run is complete and its report written; `false`: call again to resume.
    pub finished: bool,
    /// This invocation continued a run an earlier one started.
    pub resumed: bool,
    /// Totals of the run so far.
    pub counters: Counters,
    /// What this invocation added.
    pub this_invocation: Counters,
    /// Report objects written (when finished).
    pub report_keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Centra kept failing (after retries) or refused the token; the checkpoint holds the progress so far.
    #[error("Centra: {0}")]
    Centra(#[from] CentraError),
    #[error("Cloudshelf: {0}")]
    Cloudshelf(#[from] crate::cloudshelf::CloudshelfError),
    #[error("{0} is not configured for reconciliation")]
    NotConfigured(&'static str),
    #[error("store {0} is not in the mappings")]
    UnknownStore(String),
    #[error("run id {0:?} may contain only letters, digits, '-' and '_'")]
    InvalidRunId(String),
    /// Another invocation saved the same checkpoint meanwhile (two runs of one job and scope at once).
    #[error("checkpoint {job}#{scope} was advanced by another invocation")]
    CheckpointConflict { job: JobKind, scope: String },
}

/// Runs (or resumes) one job until it is done or `opts.deadline_ms` nears.
pub async fn run_job(
    ctx: &ReconContext,
    job: JobKind,
    opts: &RunOptions,
) -> Result<JobRun, ReconError> {
    match job {
        JobKind::StockDrift => run_stock_drift(ctx, opts).await,
        JobKind::Availability => jobs::availability::run_availability(ctx, opts).await,
        JobKind::SkuAudit => jobs::sku_audit::run_sku_audit(ctx, opts).await,
        JobKind::StalledOrders => jobs::stalled::run_stalled_orders(ctx, opts).await,
        JobKind::FinanceClose => jobs::finance::run_finance_close(ctx, opts).await,
    }
}

/// A sortable, readable run id: `20250301T020000Z-1a2b3c4d`.
pub fn new_run_id(now_ms: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &suffix[..8])
}

pub(crate) fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The checkpoint scope of a run: one store or all of them.
pub fn scope_of(opts: &RunOptions) -> String {
    opts.store
        .as_ref()
        .map_or_else(|| "all".to_string(), |s| s.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_round_trip_and_counters_subtract() {
        for job in JobKind::ALL {
            assert_eq!(JobKind::parse(job.as_str()), Some(*job));
        }
        assert_eq!(JobKind::parse("stock-drift"), Some(JobKind::StockDrift));
        let mut a = Counters::default();
        a.add("x", 3);
        a.add("y", 0);
        let mut b = a.clone();
        b.add("x", 2);
        b.add("z", 1);
        assert_eq!(
            b.since(&a).0,
            BTreeMap::from([("x".into(), 2), ("z".into(), 1)])
        );
        assert!(!a.0.contains_key("y"), "zero counts are not stored");
    }

    #[test]
    fn run_ids_sort_by_time_and_are_key_safe() {
        let a = new_run_id(1_700_000_000_000);
        let b = new_run_id(1_700_000_001_000);
        assert!(a < b);
        assert!(a.starts_with("20231114T221320Z-"), "{a}");
        assert!(valid_run_id(&a));
        assert!(!valid_run_id("../x"));
    }
}
