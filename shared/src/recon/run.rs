//! What every job does around its own work: claim (or resume) a run through its checkpoint, save progress
//! under the stored revision, stop before the deadline, and publish the finished report.
//!
//! Jobs other than stock drift work in units small enough to redo (one store, one catalogue read), so they
//! use [`JobCheckpoint`] directly: a unit's results go into the checkpoint's state and counters, and a crash
//! before the save redoes the unit, never counting it twice.

use super::checkpoint::{Checkpoint, Cursor, PartRef, RunSignature};
use super::report::publish::publish_job;
use super::report::{
    collect_parts, part_key, run_prefix, to_json_bytes, JobSummary, PagePart, ReportRow, JSON,
};
use super::{
    new_run_id, scope_of, valid_run_id, Counters, JobKind, JobRun, ReconContext, ReconError,
    RunOptions,
};
use crate::telemetry::metrics::names;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A claimed run and the revision its next save must find.
pub(crate) struct JobCheckpoint {
    pub job: JobKind,
    pub cp: Checkpoint,
    revision: Option<u64>,
    pub resumed: bool,
    /// The state of the run before this one (a new run starts with none of it in `cp.state`); jobs that
    /// carry something from run to run (the stalled-order watermark) read it here.
    pub previous_state: Option<serde_json::Value>,
    pub counters_at_invocation_start: Counters,
    /// Counters as last saved: what an interrupted invocation really added.
    pub saved_counters: Counters,
    pub deadline_ms: i64,
}

impl JobCheckpoint {
    /// Resumes the unfinished run of `job` for the scope if it was asked the same, or starts a new one, and
    /// saves it at once: a second invocation running concurrently fails here or at its next save.
    pub async fn claim(
        ctx: &ReconContext,
        job: JobKind,
        opts: &RunOptions,
    ) -> Result<JobCheckpoint, ReconError> {
        if let Some(store) = &opts.store {
            if ctx.mappings.store(store.as_str()).is_none() {
                return Err(ReconError::UnknownStore(store.to_string()));
            }
        }
        if let Some(id) = &opts.run_id {
            if !valid_run_id(id) {
                return Err(ReconError::InvalidRunId(id.clone()));
            }
        }
        let scope = scope_of(opts);
        let now = ctx.clock.now_millis();
        let signature = RunSignature::of(opts);
        let stored = ctx.checkpoints.load(job, &scope).await?;
        let revision = stored.as_ref().map(|c| c.revision);
        let resumable = stored.as_ref().is_some_and(|c| {
            !c.finished()
                && c.signature == signature
                && opts.run_id.as_ref().is_none_or(|id| *id == c.run_id)
        });
        let (mut cp, previous_state) = match stored {
            Some(cp) if resumable => (cp, None),
            stored => {
                if let Some(abandoned) = stored.as_ref().filter(|c| !c.finished()) {
                    tracing::warn!(job = job.as_str(), %scope, run_id = %abandoned.run_id,
                        "unfinished run asked with other options is abandoned");
                }
                let fresh = Checkpoint {
                    job,
                    scope: scope.clone(),
                    run_id: opts.run_id.clone().unwrap_or_else(|| new_run_id(now)),
                    started_at_ms: now,
                    updated_at_ms: now,
                    revision: 0,
                    signature,
                    stores: match &opts.store {
                        Some(store) => vec![store.clone()],
                        None => ctx.mappings.stores().map(|m| m.store.clone()).collect(),
                    },
                    cursor: Cursor::start(),
                    counters: Counters::default(),
                    parts: Vec::new(),
                    invocations: 0,
                    finished_at_ms: None,
                    state: serde_json::Value::Null,
                };
                (fresh, stored.map(|c| c.state))
            }
        };
        cp.invocations += 1;
        let mut claimed = JobCheckpoint {
            job,
            counters_at_invocation_start: cp.counters.clone(),
            saved_counters: cp.counters.clone(),
            cp,
            revision,
            resumed: resumable,
            previous_state,
            deadline_ms: opts.deadline_ms,
        };
        claimed.save(ctx).await?;
        Ok(claimed)
    }

    /// Stores the checkpoint if nobody else saved since this invocation's last save.
    pub async fn save(&mut self, ctx: &ReconContext) -> Result<(), ReconError> {
        self.cp.updated_at_ms = ctx.clock.now_millis();
        if !ctx.checkpoints.save(&self.cp, self.revision).await? {
            return Err(ReconError::CheckpointConflict {
                job: self.job,
                scope: self.cp.scope.clone(),
            });
        }
        let revision = self.revision.map_or(1, |r| r + 1);
        self.revision = Some(revision);
        self.cp.revision = revision;
        self.saved_counters = self.cp.counters.clone();
        Ok(())
    }

    /// Whether the next unit (taking about `unit_ms`) may start and still leave the margin to save.
    pub fn out_of_time(&self, ctx: &ReconContext, unit_ms: i64) -> bool {
        let margin = ctx.settings.deadline_margin_ms.max(2 * unit_ms);
        ctx.clock.now_millis() + margin >= self.deadline_ms
    }

    /// The job's state, or its default when the run is new or the state unreadable (an older layout).
    pub fn state<T: for<'de> Deserialize<'de> + Default>(&self) -> T {
        serde_json::from_value(self.cp.state.clone()).unwrap_or_default()
    }

    pub fn set_state<T: Serialize>(&mut self, state: &T) {
        self.cp.state = serde_json::to_value(state).expect("job state serialises");
    }

    /// Publishes the report (JSON with `details` and the rows, CSV of the rows, the HTML summary) and marks
    /// the run finished.
    pub async fn publish<R: ReportRow>(
        &mut self,
        ctx: &ReconContext,
        outcome: Outcome<R>,
    ) -> Result<Vec<String>, ReconError> {
        let settings = &ctx.settings;
        let finished_at_ms = ctx.clock.now_millis();
        let truncated = outcome.truncated || outcome.rows.len() > settings.max_report_rows;
        let mut rows = outcome.rows;
        rows.truncate(settings.max_report_rows);
        let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let csv = super::report::csv_document(&rows).into_bytes();
        let summary = JobSummary {
            job: self.job,
            run_id: self.cp.run_id.clone(),
            scope: self.cp.scope.clone(),
            started_at_ms: self.cp.started_at_ms,
            finished_at_ms,
            invocations: self.cp.invocations,
            dry_run: self.cp.signature.dry_run,
            counters: self.cp.counters.clone(),
            findings: outcome.findings,
            exceptions: outcome.exceptions,
            rows_reported: rows.len(),
            truncated,
            columns: R::csv_header().iter().map(|c| c.to_string()).collect(),
            sample: rows
                .iter()
                .take(settings.summary_rows)
                .map(ReportRow::csv_fields)
                .collect(),
            files: vec![
                format!("{}.json", self.job.as_str()),
                format!("{}.csv", self.job.as_str()),
            ],
            notes: outcome.notes,
        };
        let document = JobDocument {
            job: self.job,
            run_id: self.cp.run_id.clone(),
            scope: self.cp.scope.clone(),
            started_at: time(self.cp.started_at_ms),
            finished_at: time(finished_at_ms),
            invocations: self.cp.invocations,
            dry_run: self.cp.signature.dry_run,
            counters: self.cp.counters.clone(),
            findings: outcome.findings,
            rows_reported: rows.len(),
            truncated,
            details: outcome.details,
            rows,
        };
        let json = to_json_bytes(&document)?;
        drop(document);
        let keys = publish_job(
            ctx.reports.as_ref(),
            &summary,
            json,
            csv,
            settings.history_runs,
        )
        .await?;
        self.cp.finished_at_ms = Some(finished_at_ms);
        self.save(ctx).await?;
        ctx.announce(&summary, &keys).await;
        Ok(keys)
    }

    /// Writes one unit's findings as a report part (replacing a part written by an invocation that crashed
    /// before its checkpoint) and remembers it in the checkpoint (saved by the caller).
    pub async fn write_part<R: ReportRow>(
        &mut self,
        ctx: &ReconContext,
        store_index: u32,
        store: &str,
        counters: &Counters,
        rows: Vec<R>,
    ) -> Result<(), ReconError> {
        if rows.is_empty() {
            return Ok(());
        }
        let prefix = run_prefix(self.cp.started_at_ms, &self.cp.run_id);
        let part = PagePart {
            job: self.job,
            run_id: self.cp.run_id.clone(),
            store: store.to_string(),
            page: 1,
            counters: counters.clone(),
            rows,
        };
        ctx.reports
            .put(
                &part_key(&prefix, self.job, store, 1),
                JSON,
                to_json_bytes(&part)?,
            )
            .await?;
        let part_ref = PartRef(store_index, 1);
        if !self.cp.parts.contains(&part_ref) {
            self.cp.parts.push(part_ref);
        }
        Ok(())
    }

    /// The rows of every part written by [`JobCheckpoint::write_part`], in store order.
    pub async fn collect_rows<R: ReportRow>(
        &self,
        ctx: &ReconContext,
    ) -> Result<(Vec<R>, bool), ReconError> {
        let prefix = run_prefix(self.cp.started_at_ms, &self.cp.run_id);
        let mut parts = self.cp.parts.clone();
        parts.sort();
        let keys: Vec<String> = parts
            .iter()
            .filter_map(|p| self.cp.stores.get(p.store_index() as usize))
            .map(|store| part_key(&prefix, self.job, store.as_str(), 1))
            .collect();
        Ok(collect_parts(ctx.reports.as_ref(), &keys, ctx.settings.max_report_rows).await?)
    }

    /// What this invocation did, with run-incomplete accounting in the metrics.
    pub fn job_run(&self, ctx: &ReconContext, report_keys: Option<Vec<String>>) -> JobRun {
        let finished = report_keys.is_some();
        if !finished {
            ctx.metrics.count(names::RECON_RUNS_INCOMPLETE, 1);
        }
        JobRun {
            job: self.job,
            run_id: self.cp.run_id.clone(),
            scope: self.cp.scope.clone(),
            finished,
            resumed: self.resumed,
            counters: self.saved_counters.clone(),
            this_invocation: self
                .saved_counters
                .since(&self.counters_at_invocation_start),
            report_keys: report_keys.unwrap_or_default(),
        }
    }
}

/// What a finished job publishes.
pub(crate) struct Outcome<R> {
    pub rows: Vec<R>,
    /// Rows were left out before (collecting parts); the counters still count them.
    pub truncated: bool,
    /// The headline number (the history chart's point for this job).
    pub findings: u64,
    /// Things someone must act on.
    pub exceptions: u64,
    pub notes: Vec<String>,
    /// Job-specific totals for the JSON (per store, per kind, …).
    pub details: serde_json::Value,
}

/// `<job>.json` of the jobs built on [`JobCheckpoint`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDocument<R> {
    pub job: JobKind,
    pub run_id: String,
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub invocations: u32,
    pub dry_run: bool,
    pub counters: Counters,
    pub findings: u64,
    pub rows_reported: usize,
    /// More rows than `max_report_rows`; the counters still count them all.
    pub truncated: bool,
    pub details: serde_json::Value,
    pub rows: Vec<R>,
}

/// A remote failure a job may simply repeat, and when.
pub(crate) trait Retryable: std::fmt::Display {
    /// `None`: do not repeat; `Some(None)`: after the usual pause; `Some(Some(ms))`: not before that instant
    /// (a 429's `Retry-After`).
    fn retry(&self) -> Option<Option<i64>>;
}

impl Retryable for crate::centra::CentraError {
    fn retry(&self) -> Option<Option<i64>> {
        use crate::centra::CentraError;
        match self {
            CentraError::RateLimited { retry_at_ms } => Some(*retry_at_ms),
            CentraError::NotSent(_) | CentraError::Uncertain { .. } => Some(None),
            _ => None,
        }
    }
}

impl Retryable for crate::cloudshelf::CloudshelfError {
    fn retry(&self) -> Option<Option<i64>> {
        match self {
            crate::cloudshelf::CloudshelfError::RateLimited { retry_at_ms } => Some(*retry_at_ms),
            e if e.is_transient() => Some(None),
            _ => None,
        }
    }
}

/// Retries a remote call on transient failures with doubling pauses (or until a 429's retry time), giving up
/// when the wait would pass the deadline. Reads and absolute upserts only: repeating them is harmless.
pub(crate) async fn with_retries<T, E, F, Fut>(
    ctx: &ReconContext,
    deadline_ms: i64,
    what: &str,
    mut call: F,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let attempts = ctx.settings.centra_attempts.max(1);
    let mut pause: Duration = ctx.settings.retry_pause;
    let mut attempt = 1;
    loop {
        let e = match call().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(at) = e.retry().filter(|_| attempt < attempts) else {
            return Err(e);
        };
        let now = ctx.clock.now_millis();
        let wait_ms = at.map_or(pause.as_millis() as i64, |at| (at - now).max(0));
        if now + wait_ms + ctx.settings.deadline_margin_ms >= deadline_ms {
            return Err(e);
        }
        tracing::warn!(what, attempt, error = %e, wait_ms, "call failed; retrying");
        tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
        pause *= 2;
        attempt += 1;
    }
}

/// Keeps reads of one system at least `interval` apart (Centra's request budget is shared with the pusher).
pub(crate) struct Pacer {
    interval: Duration,
    last: Option<std::time::Instant>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    pub async fn wait(&mut self) {
        if let Some(last) = self.last {
            let elapsed = last.elapsed();
            if elapsed < self.interval {
                tokio::time::sleep(self.interval - elapsed).await;
            }
        }
        self.last = Some(std::time::Instant::now());
    }
}

/// Every Centra size, page by page, paced and retried per page.
pub(crate) async fn read_centra_sizes(
    ctx: &ReconContext,
    deadline_ms: i64,
    pacer: &mut Pacer,
) -> Result<Vec<crate::centra::catalogue::CentraSize>, ReconError> {
    let centra = ctx.sources.centra()?;
    let limit = ctx.settings.page_limit;
    let mut seen = std::collections::HashSet::new();
    let mut sizes = Vec::new();
    for page in 1.. {
        pacer.wait().await;
        let read = with_retries(ctx, deadline_ms, "Centra products page", || {
            centra.product_page(page, limit)
        })
        .await?;
        sizes.extend(read.sizes.into_iter().filter(|s| seen.insert(s.size_id)));
        if read.products < limit as usize {
            break;
        }
    }
    Ok(sizes)
}

/// Every Cloudshelf variant (with per-location stock flags when `with_stock`), retried per page.
pub(crate) async fn read_cloudshelf_variants(
    ctx: &ReconContext,
    deadline_ms: i64,
    with_stock: bool,
) -> Result<Vec<crate::cloudshelf::catalogue::CloudshelfVariant>, ReconError> {
    use crate::cloudshelf::catalogue::{MAX_VARIANTS_PAGE_SIZE, MAX_VARIANT_STOCK_PAGE_SIZE};
    let cloudshelf = ctx.sources.cloudshelf()?;
    let mut variants = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = with_retries(ctx, deadline_ms, "Cloudshelf variants page", || {
            let after = after.clone();
            async move {
                if with_stock {
                    cloudshelf
                        .variant_stock_page(after, MAX_VARIANT_STOCK_PAGE_SIZE)
                        .await
                } else {
                    cloudshelf
                        .variants_page(after, MAX_VARIANTS_PAGE_SIZE)
                        .await
                }
            }
        })
        .await?;
        variants.extend(page);
        match next {
            Some(cursor) if Some(&cursor) != after.as_ref() => after = Some(cursor),
            Some(_) => {
                return Err(crate::cloudshelf::CloudshelfError::Protocol(
                    "the next cursor repeats the previous one".into(),
                )
                .into())
            }
            None => return Ok(variants),
        }
    }
}
