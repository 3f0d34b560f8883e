//! Report output shared by every job: per-page parts, the job's JSON and CSV, the run history index and the
//! HTML summary.
//!
//! Keys (S3 or a local directory):
//! - `reports/<date>/<run id>/parts/<job>/<store>/<page>.json`: findings of one page, written as the run goes;
//! - `reports/<date>/<run id>/<job>.json` and `<job>.csv`: every finding of the job (up to a cap);
//! - `reports/<date>/<run id>/<job>.summary.json`: the job's counters and first rows (for the HTML);
//! - `reports/<date>/<run id>/summary.html`: self-contained summary of the run with a chart of recent runs;
//! - `reports/history.json`: the last runs' headline numbers (the chart's data).

pub mod html;
pub mod publish;

use super::ports::ReportSink;
use super::{Counters, JobKind};
use crate::core::errors::BackendError;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HISTORY_KEY: &str = "reports/history.json";
pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// A finding that can be a CSV line.
pub trait ReportRow: Serialize + DeserializeOwned {
    fn csv_header() -> &'static [&'static str];
    fn csv_fields(&self) -> Vec<String>;
}

/// `reports/<date>/<run id>`, the date being the run's start (UTC), so every invocation of a run writes under
/// the same prefix.
pub fn run_prefix(started_at_ms: i64, run_id: &str) -> String {
    let date = DateTime::<Utc>::from_timestamp_millis(started_at_ms).unwrap_or_default();
    format!("reports/{}/{run_id}", date.format("%Y-%m-%d"))
}

pub fn part_key(prefix: &str, job: JobKind, store: &str, page: u32) -> String {
    let page = if page == 0 {
        "unlisted".to_string()
    } else {
        format!("{page:06}")
    };
    format!("{prefix}/parts/{}/{store}/{page}.json", job.as_str())
}

/// The findings of one page, as written while the run goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PagePart<R> {
    pub job: JobKind,
    pub run_id: String,
    pub store: String,
    pub page: u32,
    pub counters: Counters,
    pub rows: Vec<R>,
}

/// Reads the parts in order and keeps at most `max_rows` rows; true if some were left out.
pub async fn collect_parts<R: ReportRow>(
    sink: &dyn ReportSink,
    keys: &[String],
    max_rows: usize,
) -> Result<(Vec<R>, bool), BackendError> {
    let mut rows = Vec::new();
    let mut truncated = false;
    for key in keys {
        let Some(body) = sink.get(key).await? else {
            return Err(BackendError::new(
                "reports",
                format!("report part {key} is missing"),
            ));
        };
        let part: PagePart<R> = serde_json::from_slice(&body).map_err(|e| {
            BackendError::new("reports", format!("report part {key} is unreadable: {e}"))
        })?;
        let room = max_rows.saturating_sub(rows.len());
        truncated |= part.rows.len() > room;
        rows.extend(part.rows.into_iter().take(room));
    }
    Ok((rows, truncated))
}

/// One CSV line (RFC 4180 quoting). Text that a spreadsheet would run as a formula gets a leading `'`.
pub fn csv_line(fields: &[String]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let defused = match field.as_bytes().first() {
            Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => format!("'{field}"),
            Some(b'-') if field.parse::<i64>().is_err() => format!("'{field}"),
            _ => field.clone(),
        };
        if defused.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&defused.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&defused);
        }
    }
    line.push_str("\r\n");
    line
}

pub fn csv_document<R: ReportRow>(rows: &[R]) -> String {
    let header: Vec<String> = R::csv_header().iter().map(|h| h.to_string()).collect();
    let mut out = csv_line(&header);
    for row in rows {
        out.push_str(&csv_line(&row.csv_fields()));
    }
    out
}

/// A job's outcome as the HTML summary and the history need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job: JobKind,
    pub run_id: String,
    pub scope: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub invocations: u32,
    pub dry_run: bool,
    pub counters: Counters,
    /// The job's headline number (stock drift: drifted SKUs).
    pub findings: u64,
    /// Things an operator must look at (stock drift: rows parked by an exception, stores that failed).
    pub exceptions: u64,
    pub rows_reported: usize,
    pub truncated: bool,
    pub columns: Vec<String>,
    /// The first rows, as cells, for the summary page.
    pub sample: Vec<Vec<String>>,
    /// Report files of the job, relative to the run prefix.
    pub files: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryJob {
    pub finished_at_ms: i64,
    pub findings: u64,
    pub exceptions: u64,
    pub invocations: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRun {
    pub run_id: String,
    pub started_at_ms: i64,
    /// `reports/<date>/<run id>`.
    pub prefix: String,
    pub jobs: BTreeMap<JobKind, HistoryJob>,
}

impl HistoryRun {
    pub fn findings(&self, job: JobKind) -> u64 {
        self.jobs.get(&job).map_or(0, |j| j.findings)
    }

    pub fn exceptions(&self) -> u64 {
        self.jobs.values().map(|j| j.exceptions).sum()
    }
}

/// The recent runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryIndex {
    pub runs: Vec<HistoryRun>,
}

impl HistoryIndex {
    /// Records `summary` in its run's entry (replacing an earlier write of the same job: a finalisation redone
    /// after a crash), keeping the newest `keep` runs.
    pub fn record(&mut self, summary: &JobSummary, prefix: &str, keep: usize) {
        let position = self.runs.iter().position(|r| r.run_id == summary.run_id);
        let run = match position {
            Some(i) => &mut self.runs[i],
            None => {
                self.runs.push(HistoryRun {
                    run_id: summary.run_id.clone(),
                    started_at_ms: summary.started_at_ms,
                    prefix: prefix.to_string(),
                    jobs: BTreeMap::new(),
                });
                self.runs.last_mut().expect("just pushed")
            }
        };
        run.jobs.insert(
            summary.job,
            HistoryJob {
                finished_at_ms: summary.finished_at_ms,
                findings: summary.findings,
                exceptions: summary.exceptions,
                invocations: summary.invocations,
            },
        );
        self.runs
            .sort_by(|a, b| (a.started_at_ms, &a.run_id).cmp(&(b.started_at_ms, &b.run_id)));
        if self.runs.len() > keep {
            let excess = self.runs.len() - keep;
            self.runs.drain(..excess);
        }
    }
}

pub(crate) async fn get_json<T: DeserializeOwned>(
    sink: &dyn ReportSink,
    key: &str,
) -> Result<Option<T>, BackendError> {
    match sink.get(key).await? {
        None => Ok(None),
        Some(body) => match serde_json::from_slice(&body) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                // A damaged index must not stop the report: it is rebuilt from this run on.
                tracing::warn!(key, error = %e, "unreadable report object ignored");
                Ok(None)
            }
        },
    }
}

pub(crate) fn to_json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, BackendError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| BackendError::new("reports", format!("cannot serialise report: {e}")))
}

/// The alert text of a finished job: headline, counters, notes, the first rows and where the report is.
pub fn alert_text(summary: &JobSummary, report_keys: &[String]) -> (String, String) {
    let subject = format!(
        "[reconciliation] {}: {} {} ({})",
        summary.job.title(),
        summary.findings,
        summary.job.findings_label(),
        summary.scope
    );
    let mut body = format!(
        "{}\nrun {} · {} {} · {} exceptions{}\n\n",
        summary.job.title(),
        summary.run_id,
        summary.findings,
        summary.job.findings_label(),
        summary.exceptions,
        if summary.dry_run { " · dry run" } else { "" }
    );
    for (k, v) in &summary.counters.0 {
        body.push_str(&format!("  {k}: {v}\n"));
    }
    for note in &summary.notes {
        body.push_str(&format!("\n{note}"));
    }
    if !summary.sample.is_empty() {
        body.push_str(&format!("\n\n{}\n", summary.columns.join(" | ")));
        for row in summary.sample.iter().take(10) {
            body.push_str(&row.join(" | "));
            body.push('\n');
        }
        if summary.rows_reported > 10 {
            body.push_str(&format!("… {} rows in all\n", summary.rows_reported));
        }
    }
    body.push_str("\nReport:\n");
    for key in report_keys
        .iter()
        .filter(|k| k.ends_with(".html") || k.ends_with(".csv"))
    {
        body.push_str(&format!("  {key}\n"));
    }
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let line = csv_line(&[
            "a,b".into(),
            "say \"hi\"".into(),
            "=1+1".into(),
            "-3".into(),
            "-x".into(),
            "plain".into(),
        ]);
        assert_eq!(line, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,-3,'-x,plain\r\n");
    }

    fn summary(run: &str, at: i64, findings: u64) -> JobSummary {
        JobSummary {
            job: JobKind::StockDrift,
            run_id: run.into(),
            scope: "all".into(),
            started_at_ms: at,
            finished_at_ms: at + 1,
            invocations: 1,
            dry_run: false,
            counters: Counters::default(),
            findings,
            exceptions: 0,
            rows_reported: 0,
            truncated: false,
            columns: vec![],
            sample: vec![],
            files: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn history_replaces_a_rewritten_job_and_keeps_the_newest_runs() {
        let mut h = HistoryIndex::default();
        for i in 0..5 {
            h.record(&summary(&format!("r{i}"), i, i as u64), "p", 3);
        }
        h.record(&summary("r4", 4, 40), "p", 3);
        let ids: Vec<&str> = h.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3", "r4"]);
        assert_eq!(h.runs[2].findings(JobKind::StockDrift), 40);
    }

    #[test]
    fn keys_share_the_run_prefix() {
        let prefix = run_prefix(1_700_000_000_000, "run-1");
        assert_eq!(prefix, "reports/2023-11-14/run-1");
        assert_eq!(
            part_key(&prefix, JobKind::StockDrift, "LDN-01", 3),
            "reports/2023-11-14/run-1/parts/stock_drift/LDN-01/000003.json"
        );
        assert!(part_key(&prefix, JobKind::StockDrift, "LDN-01", 0).ends_with("/unlisted.json"));
    }
}
