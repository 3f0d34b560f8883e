//! Stock drift: for each mapped store warehouse, Centra's stock (paged, 200 rows a page) against the store's
//! ledger, i.e. the quantity the integration believes Centra holds because it pushed it.
//!
//! **Drift** is a ledger row that Centra holds in full (no unpushed movement, no push in progress, not parked by
//! an exception, anchored by a count) whose level differs from Centra's `physicalQuantity` (or
//! `freeToAllocateQuantity`, see [`DriftQuantity`]). Rows with unpushed movements are in flight, not drift. A
//! finding is re-read before it is reported and kept only if the row's revision did not change since the store
//! was loaded: otherwise a push may have moved Centra between the two reads and the next run decides.
//!
//! **Correction** (`drift_policy = "correct"`): the store is the truth for its own warehouse — the store system
//! counts the shelf, and the ledger is what it reported. The job queues the ledger's level as a `stock.count` on
//! the stock FIFO queue, grouped by SKU like intake's messages, so it is applied in order with the store's own
//! events, and the pusher sets it in Centra (`setStock` PHYSICAL). The count is positioned 1 ms after the last
//! movement the ledger applied: movements that happened later (even ones still queued) stay on top of it, and
//! it cannot overwrite a newer count. Its deduplication id is derived from run id + store + SKU, so a page
//! redone after a crash does not queue it twice (and a count repeated at the same position is ignored as stale).
//! Rows with unpushed movements are never corrected. Comparing free-to-allocate never corrects: a gap there is
//! Centra's allocations, not a count error.
//!
//! **Resume**: see the module docs of `recon`. Per store, the checkpoint keeps which ledger rows Centra listed so
//! far ([`SeenRows`]) and the counters at the store's start; if the store's ledger gained rows between two
//! invocations the bitmap positions no longer line up, and that store starts over from its counters at start.

use crate::centra::catalogue::CentraStockRow;
use crate::centra::CentraError;
use crate::config::mappings::{DriftPolicy, StoreMapping};
use crate::core::ids::{EventPosition, ItemRef, StoreCode};
use crate::events::store_events::{StockEventType, StockLineMessage};
use crate::recon::checkpoint::{Cursor, PartRef};
use crate::recon::report::publish::publish_job;
use crate::recon::report::{
    collect_parts, csv_document, part_key, run_prefix, to_json_bytes, JobSummary, PagePart,
    ReportRow, JSON,
};
use crate::recon::run::{JobCheckpoint, Pacer};
use crate::recon::snapshot::{classify, RowStatus, SeenRows, StoreSnapshot};
use crate::recon::{Counters, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::stock::ledger::LedgerRow;
use crate::stock::ports::{ExceptionRecord, FifoMessage};
use crate::telemetry::metrics::names;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

const JOB: JobKind = JobKind::StockDrift;

/// Which Centra quantity is compared with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftQuantity {
    /// `physicalQuantity`: what the pusher sets and changes; the right measure for store warehouses.
    #[default]
    Physical,
    /// `freeToAllocateQuantity` (physical − allocated); report only.
    FreeToAllocate,
}

/// Counter names of this job. Each ledger row of a swept store lands in exactly one of `rows_compared`,
/// `in_flight`, `blocked`, `unanchored`, `outside_since`, so together they equal `ledger_rows`.
pub mod counter {
    pub const STORES: &str = "stores";
    pub const STORES_FAILED: &str = "stores_failed";
    pub const STORE_RESTARTS: &str = "store_restarts";
    pub const PAGES: &str = "pages";
    pub const LEDGER_ROWS: &str = "ledger_rows";
    pub const CENTRA_ROWS: &str = "centra_rows";
    pub const ROWS_COMPARED: &str = "rows_compared";
    pub const DRIFTED: &str = "drifted";
    /// Drifted rows Centra does not list at all (compared as 0).
    pub const MISSING_IN_CENTRA: &str = "missing_in_centra";
    pub const IN_FLIGHT: &str = "in_flight";
    pub const BLOCKED: &str = "blocked";
    pub const UNANCHORED: &str = "unanchored";
    pub const OUTSIDE_SINCE: &str = "outside_since";
    /// Centra rows of sizes the store never reported.
    pub const NOT_IN_LEDGER: &str = "not_in_ledger";
    /// A Centra row listed again (offset pages shift when Centra's list changes during the sweep).
    pub const DUPLICATE_ROWS: &str = "duplicate_rows";
    /// Differences dropped because the ledger row changed between the load and the re-read.
    pub const CHANGED_DURING_RUN: &str = "changed_during_run";
    pub const CORRECTIONS_QUEUED: &str = "corrections_queued";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftAction {
    Reported,
    CorrectionQueued,
    /// `correct` policy in a dry run.
    WouldCorrect,
}

impl DriftAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftAction::Reported => "reported",
            DriftAction::CorrectionQueued => "correction_queued",
            DriftAction::WouldCorrect => "would_correct",
        }
    }
}

/// One drifted (store, SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRow {
    pub store: String,
    /// Centra's SKU (the ledger's, when Centra does not list the row; empty for an EAN-keyed row).
    pub sku: String,
    pub ean: Option<String>,
    /// The ledger row's key (`sku:<SKU>` / `ean:<EAN>`).
    pub ledger_item: String,
    /// The compared Centra quantity; `None`: Centra does not list the size in this warehouse.
    pub centra_quantity: Option<i64>,
    pub centra_physical: Option<i64>,
    pub centra_free_to_allocate: Option<i64>,
    /// What Centra should hold according to the ledger.
    pub ledger_quantity: i64,
    /// Centra − ledger (an unlisted row counts as 0 in Centra).
    pub difference: i64,
    pub action: DriftAction,
}

fn text_or_empty<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl ReportRow for DriftRow {
    fn csv_header() -> &'static [&'static str] {
        &[
            "store",
            "sku",
            "ean",
            "ledger_item",
            "centra_quantity",
            "centra_physical",
            "centra_free_to_allocate",
            "ledger_quantity",
            "difference",
            "action",
        ]
    }

    fn csv_fields(&self) -> Vec<String> {
        vec![
            self.store.clone(),
            self.sku.clone(),
            text_or_empty(self.ean.as_deref()),
            self.ledger_item.clone(),
            text_or_empty(self.centra_quantity),
            text_or_empty(self.centra_physical),
            text_or_empty(self.centra_free_to_allocate),
            self.ledger_quantity.to_string(),
            self.difference.to_string(),
            self.action.as_str().to_string(),
        ]
    }
}

/// The whole `stock_drift.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockDriftReport {
    pub job: JobKind,
    pub run_id: String,
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub invocations: u32,
    pub dry_run: bool,
    pub compared_quantity: DriftQuantity,
    pub counters: Counters,
    pub stores: BTreeMap<String, StoreReport>,
    pub rows_reported: usize,
    /// More rows drifted than `max_report_rows`; the per-page parts hold them all.
    pub truncated: bool,
    pub drifted: Vec<DriftRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreReport {
    pub centra_warehouse_id: Option<u64>,
    pub drift_policy: Option<DriftPolicy>,
    pub counters: Counters,
}

/// The job's part of the checkpoint: where the current store's sweep stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DriftState {
    /// Snapshot fingerprint of the store being swept (`None`: its sweep has not begun).
    fingerprint: Option<u64>,
    /// [`SeenRows`] of that store.
    seen: String,
    counters_at_store_start: Counters,
    parts_at_store_start: usize,
    store_counters: BTreeMap<String, Counters>,
}

/// A stock message that sets the ledger's `quantity` for `row` in Centra, in order with the store's events.
pub fn correction_message(
    run_id: &str,
    row: &LedgerRow,
    quantity: i64,
    now_ms: i64,
) -> FifoMessage {
    let last_applied_ms = row
        .last_count
        .iter()
        .map(|p| p.occurred_at_ms)
        .chain(row.recent_deltas.iter().map(|(p, _)| p.occurred_at_ms))
        .chain(row.pending.iter().map(|p| p.occurred_at_ms))
        .max()
        .unwrap_or(now_ms - 1);
    let identity = format!("recon#{run_id}#{}#{}", row.store, row.item.key());
    let digest = hex::encode(Sha256::digest(identity.as_bytes()));
    let message = StockLineMessage {
        event_id: format!("recon_{run_id}_{}", &digest[..16]),
        line: 0,
        event_type: StockEventType::Count,
        store: row.store.clone(),
        item: row.item.clone(),
        movement: crate::core::ids::Movement::Count(quantity),
        // No sequence: compared by time with every event of the store, whichever numbering it uses.
        position: EventPosition {
            occurred_at_ms: last_applied_ms + 1,
            sequence: None,
        },
        received_at_ms: now_ms,
        reference: Some(format!("reconciliation {run_id}")),
        values: Vec::new(),
        business_date: None,
    };
    FifoMessage {
        group_id: row.item.group_id(),
        dedup_id: digest,
        body: serde_json::to_string(&message).expect("message serialises"),
    }
}

/// Runs (or resumes) the stock-drift check until it is done or `opts.deadline_ms` nears.
pub async fn run_stock_drift(ctx: &ReconContext, opts: &RunOptions) -> Result<JobRun, ReconError> {
    let mut sweep = Sweep::begin(ctx, opts).await?;
    let outcome = sweep.run().await;
    // From the last saved counters: a page whose checkpoint was not saved is redone and counted then.
    let done = sweep
        .run
        .saved_counters
        .since(&sweep.run.counters_at_invocation_start);
    ctx.metrics
        .count(names::DRIFTED_SKUS, done.get(counter::DRIFTED));
    ctx.metrics
        .count(names::RECON_ROWS_COMPARED, done.get(counter::ROWS_COMPARED));
    let finished = matches!(outcome, Ok(Progress::Finished(_)));
    if !finished {
        ctx.metrics.count(names::RECON_RUNS_INCOMPLETE, 1);
    }
    let report_keys = match outcome? {
        Progress::Finished(keys) => keys,
        Progress::Paused => Vec::new(),
    };
    tracing::info!(
        job = JOB.as_str(),
        run_id = %sweep.run.cp.run_id,
        scope = %sweep.run.cp.scope,
        finished,
        drifted = sweep.run.cp.counters.get(counter::DRIFTED),
        rows_compared = sweep.run.cp.counters.get(counter::ROWS_COMPARED),
        "reconciliation invocation done"
    );
    Ok(JobRun {
        job: JOB,
        run_id: sweep.run.cp.run_id.clone(),
        scope: sweep.run.cp.scope.clone(),
        finished,
        resumed: sweep.run.resumed,
        counters: sweep.run.saved_counters.clone(),
        this_invocation: done,
        report_keys,
    })
}

enum Progress {
    Finished(Vec<String>),
    Paused,
}

enum PageRead {
    Rows(Vec<CentraStockRow>),
    /// Centra asked to wait past the deadline.
    OutOfTime,
    /// Centra refuses this warehouse (unknown, no permission): the store is skipped with an exception.
    StoreFailed(String),
}

/// A difference found on a page, before it is confirmed by re-reading the ledger row.
struct Candidate {
    index: u32,
    /// Compared, physical and free-to-allocate quantity; `None`: Centra does not list the row.
    centra: Option<(i64, i64, i64)>,
    /// Centra's SKU and EAN of the size (the ledger row may be keyed by either).
    names: Option<(String, Option<String>)>,
}

/// The snapshot of the store being swept, with its seen-rows bitmap.
struct Loaded {
    store_index: u32,
    snapshot: StoreSnapshot,
    seen: SeenRows,
}

struct Sweep<'a> {
    ctx: &'a ReconContext,
    run: JobCheckpoint,
    state: DriftState,
    loaded: Option<Loaded>,
    slowest_step_ms: i64,
    pacer: Pacer,
}

impl<'a> Sweep<'a> {
    async fn begin(ctx: &'a ReconContext, opts: &RunOptions) -> Result<Sweep<'a>, ReconError> {
        let run = JobCheckpoint::claim(ctx, JOB, opts).await?;
        let state: DriftState = run.state();
        Ok(Sweep {
            ctx,
            run,
            state,
            loaded: None,
            slowest_step_ms: 0,
            pacer: Pacer::new(ctx.settings.page_interval),
        })
    }

    async fn run(&mut self) -> Result<Progress, ReconError> {
        while (self.run.cp.cursor.store_index as usize) < self.run.cp.stores.len() {
            if self.out_of_time() {
                return Ok(Progress::Paused);
            }
            let index = self.run.cp.cursor.store_index;
            let store = self.run.cp.stores[index as usize].clone();
            let Some(mapping) = self.ctx.mappings.store(store.as_str()).cloned() else {
                tracing::warn!(store = %store, "store left the mappings during the run; skipped");
                self.next_store(&store).await?;
                continue;
            };
            self.load_store(index, &store).await?;
            while self.run.cp.cursor.page != Cursor::AFTER_PAGES {
                if self.out_of_time() {
                    return Ok(Progress::Paused);
                }
                let started = self.ctx.clock.now_millis();
                match self.read_page(mapping.centra_warehouse_id).await? {
                    PageRead::Rows(rows) => self.page(&mapping, rows).await?,
                    PageRead::OutOfTime => return Ok(Progress::Paused),
                    PageRead::StoreFailed(reason) => {
                        self.store_failed(&mapping, &reason).await?;
                        break;
                    }
                }
                self.slowest_step_ms = self
                    .slowest_step_ms
                    .max(self.ctx.clock.now_millis() - started);
            }
            if self.run.cp.cursor.store_index == index {
                if self.out_of_time() {
                    return Ok(Progress::Paused);
                }
                self.unlisted(&mapping).await?;
            }
        }
        let keys = self.finalize().await?;
        Ok(Progress::Finished(keys))
    }

    fn out_of_time(&self) -> bool {
        self.run.out_of_time(self.ctx, self.slowest_step_ms)
    }

    async fn save(&mut self) -> Result<(), ReconError> {
        self.run.set_state(&self.state);
        if let Some(loaded) = &self.loaded {
            self.run.cp.state["seen"] = serde_json::Value::String(loaded.seen.encode());
        }
        self.run.save(self.ctx).await
    }

    fn since_ms(&self) -> Option<i64> {
        (!self.run.cp.signature.full)
            .then_some(self.run.cp.signature.since_ms)
            .flatten()
    }

    fn add(&mut self, store: &StoreCode, counters: &Counters) {
        self.run.cp.counters.merge(counters);
        self.state
            .store_counters
            .entry(store.to_string())
            .or_default()
            .merge(counters);
    }

    /// Loads the store's ledger (once per invocation) and lines it up with the checkpoint.
    async fn load_store(&mut self, index: u32, store: &StoreCode) -> Result<(), ReconError> {
        if self.loaded.as_ref().is_some_and(|l| l.store_index == index) {
            return Ok(());
        }
        self.loaded = None;
        let mut rows = self.ctx.ledger.list_store(store).await?;
        // A legacy row merged into its size's canonical row holds nothing of its own any more.
        rows.retain(|r| r.retired_into.is_none());
        let snapshot = StoreSnapshot::build(rows, self.since_ms(), self.ctx.clock.now_millis());
        let resumed_seen = match self.state.fingerprint {
            Some(fp) if fp == snapshot.fingerprint() => SeenRows::decode(&self.state.seen),
            _ => None,
        };
        let seen = match resumed_seen {
            Some(seen) => seen,
            None => {
                if self.state.fingerprint.is_some() {
                    // The ledger gained rows since this store's sweep began: start the store over.
                    tracing::info!(store = %store, "ledger changed during the sweep; store restarts");
                    self.run.cp.counters = self.state.counters_at_store_start.clone();
                    self.run.cp.parts.truncate(self.state.parts_at_store_start);
                    self.state.store_counters.remove(store.as_str());
                    self.run.cp.counters.add(counter::STORE_RESTARTS, 1);
                }
                self.run.cp.cursor.page = 1;
                self.state.fingerprint = Some(snapshot.fingerprint());
                self.state.counters_at_store_start = self.run.cp.counters.clone();
                self.state.parts_at_store_start = self.run.cp.parts.len();
                let mut loaded_rows = Counters::default();
                loaded_rows.add(counter::LEDGER_ROWS, snapshot.len() as u64);
                self.add(store, &loaded_rows);
                SeenRows::new(snapshot.len())
            }
        };
        self.loaded = Some(Loaded {
            store_index: index,
            snapshot,
            seen,
        });
        Ok(())
    }

    /// Waits out the pacing interval since the last Centra request.
    async fn read_page(&mut self, warehouse_id: u64) -> Result<PageRead, ReconError> {
        let page = self.run.cp.cursor.page;
        let limit = self.ctx.settings.page_limit;
        let mut pause = self.ctx.settings.retry_pause;
        let attempts = self.ctx.settings.centra_attempts.max(1);
        for attempt in 1..=attempts {
            self.pacer.wait().await;
            let error = match self
                .ctx
                .centra_stock
                .stock_page(warehouse_id, page, limit)
                .await
            {
                Ok(rows) => return Ok(PageRead::Rows(rows)),
                Err(e) => e,
            };
            let wait = match &error {
                CentraError::RateLimited { retry_at_ms } => {
                    let now = self.ctx.clock.now_millis();
                    let at = retry_at_ms.unwrap_or(now + pause.as_millis() as i64);
                    if at + self.ctx.settings.deadline_margin_ms >= self.run.deadline_ms {
                        return Ok(PageRead::OutOfTime);
                    }
                    Duration::from_millis((at - now).max(0) as u64)
                }
                CentraError::NotSent(_) | CentraError::Uncertain { .. } => pause,
                CentraError::GraphQl(m) | CentraError::Rejected(m) | CentraError::Protocol(m) => {
                    return Ok(PageRead::StoreFailed(m.clone()))
                }
                CentraError::Unauthorized(_) => return Err(error.into()),
            };
            if attempt == attempts {
                return Err(error.into());
            }
            tracing::warn!(warehouse_id, page, attempt, error = %error, "Centra stock page failed; retrying");
            tokio::time::sleep(wait).await;
            pause *= 2;
        }
        unreachable!("the last attempt returns")
    }

    /// Compares one Centra page, confirms and reports its findings, queues corrections, saves the checkpoint.
    async fn page(
        &mut self,
        mapping: &StoreMapping,
        rows: Vec<CentraStockRow>,
    ) -> Result<(), ReconError> {
        let quantity = self.ctx.settings.drift_quantity;
        let loaded = self.loaded.as_mut().expect("store loaded");
        let mut counters = Counters::default();
        counters.add(counter::PAGES, 1);
        let mut candidates = Vec::new();
        for row in &rows {
            counters.add(counter::CENTRA_ROWS, 1);
            let Some(index) = loaded.snapshot.find(&row.sku, row.ean.as_deref()) else {
                counters.add(counter::NOT_IN_LEDGER, 1);
                continue;
            };
            if !loaded.seen.insert(index) {
                counters.add(counter::DUPLICATE_ROWS, 1);
                continue;
            }
            let ledger = loaded.snapshot.row(index);
            let centra = match quantity {
                DriftQuantity::Physical => row.physical,
                DriftQuantity::FreeToAllocate => row.free_to_allocate,
            };
            if let Some(name) = status_counter(ledger.status) {
                counters.add(name, 1);
            } else {
                counters.add(counter::ROWS_COMPARED, 1);
                if centra != ledger.believed {
                    candidates.push(Candidate {
                        index,
                        centra: Some((centra, row.physical, row.free_to_allocate)),
                        names: Some((row.sku.clone(), row.ean.clone())),
                    });
                }
            }
        }
        let page = self.run.cp.cursor.page;
        self.run.cp.cursor.page = if rows.len() < self.ctx.settings.page_limit as usize {
            Cursor::AFTER_PAGES
        } else {
            page + 1
        };
        self.report(mapping, page, candidates, counters).await
    }

    /// The store's ledger rows Centra did not list: compared as 0.
    async fn unlisted(&mut self, mapping: &StoreMapping) -> Result<(), ReconError> {
        let loaded = self.loaded.as_ref().expect("store loaded");
        let mut counters = Counters::default();
        counters.add(counter::STORES, 1);
        let mut candidates = Vec::new();
        for (index, row) in loaded.snapshot.rows() {
            if loaded.seen.contains(index) {
                continue;
            }
            if let Some(name) = status_counter(row.status) {
                counters.add(name, 1);
            } else {
                counters.add(counter::ROWS_COMPARED, 1);
                if row.believed != 0 {
                    candidates.push(Candidate {
                        index,
                        centra: None,
                        names: None,
                    });
                }
            }
        }
        self.report(mapping, 0, candidates, counters).await
    }

    /// Re-reads each candidate, queues corrections, writes the page's part, advances and saves the checkpoint.
    async fn report(
        &mut self,
        mapping: &StoreMapping,
        page: u32,
        candidates: Vec<Candidate>,
        mut counters: Counters,
    ) -> Result<(), ReconError> {
        let store = &mapping.store;
        let now = self.ctx.clock.now_millis();
        let corrects = mapping.drift_policy == DriftPolicy::Correct
            && self.ctx.settings.drift_quantity == DriftQuantity::Physical;
        let since_ms = self.since_ms();
        let mut rows = Vec::new();
        let mut corrections = Vec::new();
        for candidate in candidates {
            let snapshot_row = self
                .loaded
                .as_ref()
                .expect("store loaded")
                .snapshot
                .row(candidate.index)
                .clone();
            let current = self.ctx.ledger.get(store, &snapshot_row.item).await?;
            let confirmed = current.filter(|row| {
                row.rev == snapshot_row.rev
                    && classify(row, since_ms, now)
                        == (RowStatus::Comparable, snapshot_row.believed)
            });
            let Some(ledger_row) = confirmed else {
                counters.add(counter::CHANGED_DURING_RUN, 1);
                continue;
            };
            let action = match (corrects, self.run.cp.signature.dry_run) {
                (false, _) => DriftAction::Reported,
                (true, true) => DriftAction::WouldCorrect,
                (true, false) => {
                    corrections.push(correction_message(
                        &self.run.cp.run_id,
                        &ledger_row,
                        snapshot_row.believed,
                        now,
                    ));
                    DriftAction::CorrectionQueued
                }
            };
            counters.add(counter::DRIFTED, 1);
            if candidate.centra.is_none() {
                counters.add(counter::MISSING_IN_CENTRA, 1);
            }
            rows.push(drift_row(store, candidate, &snapshot_row, action));
        }
        if !corrections.is_empty() {
            self.ctx.stock_queue.send_all(&corrections).await?;
            counters.add(counter::CORRECTIONS_QUEUED, corrections.len() as u64);
        }
        if !rows.is_empty() {
            self.write_part(store, page, &counters, rows).await?;
        }
        self.add(store, &counters);
        if page == 0 {
            self.next_store(store).await
        } else {
            self.save().await
        }
    }

    /// Writes one page's drift rows as a report part and remembers it in the checkpoint.
    async fn write_part(
        &mut self,
        store: &StoreCode,
        page: u32,
        counters: &Counters,
        rows: Vec<DriftRow>,
    ) -> Result<(), ReconError> {
        let prefix = run_prefix(self.run.cp.started_at_ms, &self.run.cp.run_id);
        let key = part_key(&prefix, JOB, store.as_str(), page);
        let part = PagePart {
            job: JOB,
            run_id: self.run.cp.run_id.clone(),
            store: store.to_string(),
            page,
            counters: counters.clone(),
            rows,
        };
        self.ctx
            .reports
            .put(&key, JSON, to_json_bytes(&part)?)
            .await?;
        self.run
            .cp
            .parts
            .push(PartRef(self.run.cp.cursor.store_index, page));
        Ok(())
    }

    async fn store_failed(
        &mut self,
        mapping: &StoreMapping,
        reason: &str,
    ) -> Result<(), ReconError> {
        let now = self.ctx.clock.now_millis();
        let exception = ExceptionRecord {
            id: format!("recon-{}-{}", self.run.cp.run_id, mapping.store),
            store: mapping.store.to_string(),
            item: None,
            kind: "recon_store_failed".into(),
            message: format!(
                "stock drift check could not read Centra warehouse {} of store {}; check the mapping and the \
                 token's Warehouse.stock:read permission",
                mapping.centra_warehouse_id, mapping.store
            ),
            event_ids: vec![],
            centra_message: Some(reason.to_string()),
            created_at_ms: now,
            ..Default::default()
        };
        tracing::error!(store = %mapping.store, warehouse_id = mapping.centra_warehouse_id, %reason, "stock drift: store skipped");
        self.ctx.exceptions.record(&exception).await?;
        let mut counters = Counters::default();
        counters.add(counter::STORES_FAILED, 1);
        let store = mapping.store.clone();
        self.add(&store, &counters);
        self.next_store(&store).await
    }

    async fn next_store(&mut self, store: &StoreCode) -> Result<(), ReconError> {
        tracing::info!(store = %store, "stock drift: store done");
        self.run.cp.cursor = Cursor {
            store_index: self.run.cp.cursor.store_index + 1,
            page: 1,
        };
        self.state.fingerprint = None;
        self.state.seen.clear();
        self.loaded = None;
        self.save().await
    }

    async fn finalize(&mut self) -> Result<Vec<String>, ReconError> {
        let (rows, truncated) = self.collect_drift_rows().await?;
        let settings = &self.ctx.settings;
        let finished_at_ms = self.ctx.clock.now_millis();
        let counters = self.run.cp.counters.clone();
        let stores = self.store_reports();
        let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let report = StockDriftReport {
            job: JOB,
            run_id: self.run.cp.run_id.clone(),
            scope: self.run.cp.scope.clone(),
            started_at: time(self.run.cp.started_at_ms),
            finished_at: time(finished_at_ms),
            invocations: self.run.cp.invocations,
            dry_run: self.run.cp.signature.dry_run,
            compared_quantity: settings.drift_quantity,
            counters: counters.clone(),
            stores,
            rows_reported: rows.len(),
            truncated,
            drifted: rows,
        };
        let notes = self.drift_notes();
        let summary = self.drift_summary(&report, finished_at_ms, notes);
        let csv = csv_document(&report.drifted).into_bytes();
        let json = to_json_bytes(&report)?;
        drop(report);
        let keys = publish_job(
            self.ctx.reports.as_ref(),
            &summary,
            json,
            csv,
            settings.history_runs,
        )
        .await?;
        self.run.cp.finished_at_ms = Some(finished_at_ms);
        self.save().await?;
        self.ctx.announce(&summary, &keys).await;
        Ok(keys)
    }

    /// The drift rows of every part written during the run, up to the report's row limit
    /// (`true`: some were left out).
    async fn collect_drift_rows(&self) -> Result<(Vec<DriftRow>, bool), ReconError> {
        let prefix = run_prefix(self.run.cp.started_at_ms, &self.run.cp.run_id);
        let part_keys: Vec<String> = self
            .run
            .cp
            .parts
            .iter()
            .map(|p| {
                let store = &self.run.cp.stores[p.store_index() as usize];
                part_key(&prefix, JOB, store.as_str(), p.page())
            })
            .collect();
        let rows = collect_parts::<DriftRow>(
            self.ctx.reports.as_ref(),
            &part_keys,
            self.ctx.settings.max_report_rows,
        )
        .await?;
        Ok(rows)
    }

    /// Per store: its mapping's warehouse and drift policy, and its counters.
    fn store_reports(&self) -> BTreeMap<String, StoreReport> {
        self.run
            .cp
            .stores
            .iter()
            .map(|code| {
                let mapping = self.ctx.mappings.store(code.as_str());
                (
                    code.to_string(),
                    StoreReport {
                        centra_warehouse_id: mapping.map(|m| m.centra_warehouse_id),
                        drift_policy: mapping.map(|m| m.drift_policy),
                        counters: self
                            .state
                            .store_counters
                            .get(code.as_str())
                            .cloned()
                            .unwrap_or_default(),
                    },
                )
            })
            .collect()
    }

    /// What the report says about how it compared, and which stores correct their drift.
    fn drift_notes(&self) -> Vec<String> {
        let settings = &self.ctx.settings;
        let mut notes = vec![format!(
            "Compared Centra {} with the store ledger; rows with unpushed movements are in flight, not drift.",
            match settings.drift_quantity {
                DriftQuantity::Physical => "physicalQuantity",
                DriftQuantity::FreeToAllocate => "freeToAllocateQuantity (report only)",
            }
        )];
        let correcting: Vec<&str> = self
            .run
            .cp
            .stores
            .iter()
            .filter(|s| {
                self.ctx
                    .mappings
                    .store(s.as_str())
                    .is_some_and(|m| m.drift_policy == DriftPolicy::Correct)
            })
            .map(|s| s.as_str())
            .collect();
        if !correcting.is_empty() {
            notes.push(format!(
                "Stores with drift_policy = \"correct\" (the ledger's level is queued as a count): {}",
                correcting.join(", ")
            ));
        }
        notes
    }

    /// The run's summary: its counters, findings and the first rows of the report.
    fn drift_summary(
        &self,
        report: &StockDriftReport,
        finished_at_ms: i64,
        notes: Vec<String>,
    ) -> JobSummary {
        let settings = &self.ctx.settings;
        let counters = self.run.cp.counters.clone();
        let truncated = report.truncated;
        JobSummary {
            job: JOB,
            run_id: self.run.cp.run_id.clone(),
            scope: self.run.cp.scope.clone(),
            started_at_ms: self.run.cp.started_at_ms,
            finished_at_ms,
            invocations: self.run.cp.invocations,
            dry_run: self.run.cp.signature.dry_run,
            counters: counters.clone(),
            findings: counters.get(counter::DRIFTED),
            exceptions: counters.get(counter::BLOCKED) + counters.get(counter::STORES_FAILED),
            rows_reported: report.rows_reported,
            truncated,
            columns: [
                "store",
                "sku",
                "ean",
                "centra",
                "ledger",
                "difference",
                "action",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            sample: report
                .drifted
                .iter()
                .take(settings.summary_rows)
                .map(|r| {
                    vec![
                        r.store.clone(),
                        r.sku.clone(),
                        text_or_empty(r.ean.as_deref()),
                        r.centra_quantity
                            .map_or_else(|| "not listed".to_string(), |q| q.to_string()),
                        r.ledger_quantity.to_string(),
                        r.difference.to_string(),
                        r.action.as_str().to_string(),
                    ]
                })
                .collect(),
            files: vec![
                format!("{}.json", JOB.as_str()),
                format!("{}.csv", JOB.as_str()),
            ],
            notes,
        }
    }
}

/// The report row of a confirmed drift: Centra's SKU and EAN when known, else the ledger's key.
fn drift_row(
    store: &StoreCode,
    candidate: Candidate,
    snapshot_row: &crate::recon::snapshot::SnapshotRow,
    action: DriftAction,
) -> DriftRow {
    let (sku, ean) = match (candidate.names, &snapshot_row.item) {
        (Some(names), _) => names,
        (None, ItemRef::Sku(s)) => (s.clone(), None),
        (None, ItemRef::Ean(e)) => (String::new(), Some(e.clone())),
    };
    DriftRow {
        store: store.to_string(),
        sku,
        ean,
        ledger_item: snapshot_row.item.key(),
        centra_quantity: candidate.centra.map(|c| c.0),
        centra_physical: candidate.centra.map(|c| c.1),
        centra_free_to_allocate: candidate.centra.map(|c| c.2),
        ledger_quantity: snapshot_row.believed,
        difference: candidate.centra.map_or(0, |c| c.0) - snapshot_row.believed,
        action,
    }
}

/// The counter of a row that is not compared, or `None` for a comparable one.
fn status_counter(status: RowStatus) -> Option<&'static str> {
    match status {
        RowStatus::Comparable => None,
        RowStatus::InFlight => Some(counter::IN_FLIGHT),
        RowStatus::Blocked => Some(counter::BLOCKED),
        RowStatus::Unanchored => Some(counter::UNANCHORED),
        RowStatus::OutsideWindow => Some(counter::OUTSIDE_SINCE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Movement;
    use crate::stock::ledger::{apply_movement, ApplyDecision};

    #[test]
    fn correction_lands_after_the_last_applied_movement_and_keeps_later_ones() {
        let store = StoreCode::parse("LDN-01").unwrap();
        let item = ItemRef::Sku("A-1".into());
        let mut row = LedgerRow::new(store.clone(), item.clone());
        row.count_qty = Some(5);
        row.count_pushed = true;
        row.last_count = Some(EventPosition {
            occurred_at_ms: 1_000,
            sequence: Some(7),
        });
        row.recent_deltas = vec![(
            EventPosition {
                occurred_at_ms: 2_000,
                sequence: Some(8),
            },
            -1,
        )];
        row.delta_applied = -1;
        row.delta_pushed = -1;
        let message = correction_message("run-1", &row, 4, 9_000);
        assert_eq!(message.group_id, "A-1");
        assert_eq!(
            message.dedup_id,
            correction_message("run-1", &row, 4, 9_999).dedup_id,
            "a redo sends the same deduplication id"
        );
        assert_ne!(
            message.dedup_id,
            correction_message("run-2", &row, 4, 9_000).dedup_id
        );
        let parsed: StockLineMessage = serde_json::from_str(&message.body).unwrap();
        assert_eq!(parsed.position.occurred_at_ms, 2_001);
        assert_eq!(parsed.movement, Movement::Count(4));

        // Applied, it is newer than the store's count; a sale after it stays on top.
        let applied = match apply_movement(Some(row), &parsed, 9_000) {
            ApplyDecision::Apply(r) => r,
            ApplyDecision::Stale { reason, .. } => panic!("{reason}"),
        };
        assert_eq!(applied.store_quantity(), Some(4));
        let mut sale = parsed.clone();
        sale.event_id = "sale".into();
        sale.movement = Movement::Delta(-1);
        sale.event_type = StockEventType::Sale;
        sale.position.occurred_at_ms = 3_000;
        let after = match apply_movement(Some(applied.clone()), &sale, 9_001) {
            ApplyDecision::Apply(r) => r,
            ApplyDecision::Stale { reason, .. } => panic!("{reason}"),
        };
        assert_eq!(after.store_quantity(), Some(3));
        // The same correction again (a later run's, or a redelivery) is stale.
        assert!(matches!(
            apply_movement(Some(applied), &parsed, 9_002),
            ApplyDecision::Stale { .. }
        ));
    }
}
