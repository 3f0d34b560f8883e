//! The scheduled invocation: `{"job": "stock_drift", "since_minutes": 30}` from an EventBridge Scheduler
//! schedule (or a hand-made test event), turned into [`RunOptions`].
//!
//! An unfinished run of the job is continued first, with the options it was started with, whatever the
//! schedule now asks: the nightly full sweep (hours of paced Centra reads) is carried forward by the
//! 15-minute incremental schedule instead of being abandoned by it. `"restart": true` abandons it.

use super::{run_job, scope_of, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::core::ids::StoreCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconRequest {
    /// `stock_drift`, `availability`, `sku_audit`, `stalled_orders`, `finance_close`.
    pub job: String,
    #[serde(default)]
    pub store: Option<String>,
    /// Only what changed in the last N minutes (stock drift); ignored with `full`.
    #[serde(default)]
    pub since_minutes: Option<u32>,
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub apply_fixes: bool,
    #[serde(default)]
    pub restart: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("job: unknown job {0:?} (expected one of stock_drift, availability, sku_audit, stalled_orders, finance_close)")]
    UnknownJob(String),
    #[error("store: {0}")]
    InvalidStore(String),
    #[error("since_minutes: must be at least 1")]
    ZeroSince,
}

impl ReconRequest {
    /// The job and options asked, checked field by field.
    pub fn options(
        &self,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<(JobKind, RunOptions), RequestError> {
        let job =
            JobKind::parse(&self.job).ok_or_else(|| RequestError::UnknownJob(self.job.clone()))?;
        let store = match &self.store {
            None => None,
            Some(code) => Some(
                StoreCode::parse(code).map_err(|e| RequestError::InvalidStore(e.to_string()))?,
            ),
        };
        if self.since_minutes == Some(0) {
            return Err(RequestError::ZeroSince);
        }
        let since = self
            .since_minutes
            .filter(|_| !self.full)
            .and_then(|m| DateTime::<Utc>::from_timestamp_millis(now_ms - i64::from(m) * 60_000));
        Ok((
            job,
            RunOptions {
                dry_run: self.dry_run,
                store,
                since,
                full: self.full,
                apply_fixes: self.apply_fixes,
                deadline_ms,
                run_id: None,
            },
        ))
    }
}

/// What the invocation answers (and logs).
#[derive(Debug, Clone, Serialize)]
pub struct ReconResponse {
    pub job: JobKind,
    pub run_id: String,
    pub scope: String,
    pub finished: bool,
    pub resumed: bool,
    pub counters: super::Counters,
    pub this_invocation: super::Counters,
    pub report_keys: Vec<String>,
}

impl From<JobRun> for ReconResponse {
    fn from(run: JobRun) -> Self {
        Self {
            job: run.job,
            run_id: run.run_id,
            scope: run.scope,
            finished: run.finished,
            resumed: run.resumed,
            counters: run.counters,
            this_invocation: run.this_invocation,
            report_keys: run.report_keys,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Recon(#[from] ReconError),
}

/// Runs what `request` asks, continuing the job's unfinished run first (see the module docs). Counts a
/// failed invocation in `ReconRunsFailed`.
pub async fn handle_request(
    ctx: &ReconContext,
    request: &ReconRequest,
    deadline_ms: i64,
) -> Result<ReconResponse, HandleError> {
    let (job, mut opts) = request.options(ctx.clock.now_millis(), deadline_ms)?;
    if !request.restart {
        if let Some(cp) = ctx
            .checkpoints
            .load(job, &scope_of(&opts))
            .await
            .map_err(ReconError::from)?
        {
            if !cp.finished() {
                opts.dry_run = cp.signature.dry_run;
                opts.full = cp.signature.full;
                opts.since = cp
                    .signature
                    .since_ms
                    .and_then(DateTime::<Utc>::from_timestamp_millis);
                opts.run_id = Some(cp.run_id.clone());
                tracing::info!(job = job.as_str(), run_id = %cp.run_id, "continuing the unfinished run");
            }
        }
    }
    match run_job(ctx, job, &opts).await {
        Ok(run) => Ok(run.into()),
        Err(e) => {
            ctx.metrics
                .count(crate::telemetry::metrics::names::RECON_RUNS_FAILED, 1);
            tracing::error!(job = job.as_str(), error = %e, "reconciliation invocation failed");
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ReconRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let r = parse(r#"{"job":"stock-drift","since_minutes":30}"#).unwrap();
        let (job, opts) = r.options(10 * 3_600_000, 0).unwrap();
        assert_eq!(job, JobKind::StockDrift);
        assert_eq!(
            opts.since.unwrap().timestamp_millis(),
            10 * 3_600_000 - 30 * 60_000
        );

        let full = parse(r#"{"job":"stock_drift","since_minutes":30,"full":true}"#).unwrap();
        assert_eq!(
            full.options(0, 0).unwrap().1.since,
            None,
            "full ignores since"
        );

        assert_eq!(
            parse(r#"{"job":"nope"}"#)
                .unwrap()
                .options(0, 0)
                .unwrap_err(),
            RequestError::UnknownJob("nope".into())
        );
        assert!(matches!(
            parse(r#"{"job":"availability","store":"not a code!"}"#)
                .unwrap()
                .options(0, 0),
            Err(RequestError::InvalidStore(_))
        ));
        assert_eq!(
            parse(r#"{"job":"availability","since_minutes":0}"#)
                .unwrap()
                .options(0, 0)
                .unwrap_err(),
            RequestError::ZeroSince
        );
        let err = parse(r#"{"job":"availability","stor":"LDN-01"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stor"), "unknown fields are named: {err}");
    }
}
