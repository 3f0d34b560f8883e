//! Publishing a finished job: its files, the history entry and the run's HTML summary.

use crate::core::errors::BackendError;
use crate::recon::ports::ReportSink;
use crate::recon::report::html::render_summary;
use crate::recon::report::{
    get_json, run_prefix, to_json_bytes, HistoryIndex, JobSummary, CSV, HISTORY_KEY, HTML, JSON,
};

/// Writes a finished job's files (`<job>.json`, `<job>.csv`, `<job>.summary.json`), records it in the
/// history and re-renders the run's `summary.html`. Every write replaces, so running it again is harmless.
/// Returns the keys written.
pub async fn publish_job(
    sink: &dyn ReportSink,
    summary: &JobSummary,
    json_body: Vec<u8>,
    csv_body: Vec<u8>,
    history_runs: usize,
) -> Result<Vec<String>, BackendError> {
    let prefix = run_prefix(summary.started_at_ms, &summary.run_id);
    let job = summary.job.as_str();
    let json_key = format!("{prefix}/{job}.json");
    let csv_key = format!("{prefix}/{job}.csv");
    let summary_key = format!("{prefix}/{job}.summary.json");
    sink.put(&json_key, JSON, json_body).await?;
    sink.put(&csv_key, CSV, csv_body).await?;
    sink.put(&summary_key, JSON, to_json_bytes(summary)?)
        .await?;

    // Last writer wins if two jobs finish at the same instant; the next finish re-adds a lost entry's run only
    // if it is the same run, so the chart may miss a point then, never the reports themselves.
    let mut history: HistoryIndex = get_json(sink, HISTORY_KEY).await?.unwrap_or_default();
    history.record(summary, &prefix, history_runs);
    sink.put(HISTORY_KEY, JSON, to_json_bytes(&history)?)
        .await?;

    let run = history
        .runs
        .iter()
        .find(|r| r.run_id == summary.run_id)
        .cloned()
        .unwrap_or_default();
    let mut jobs = Vec::new();
    for other in run.jobs.keys() {
        if *other == summary.job {
            jobs.push(summary.clone());
        } else if let Some(s) =
            get_json::<JobSummary>(sink, &format!("{prefix}/{}.summary.json", other.as_str()))
                .await?
        {
            jobs.push(s);
        }
    }
    let html_key = format!("{prefix}/summary.html");
    let html = render_summary(&summary.run_id, run.started_at_ms, &jobs, &history);
    sink.put(&html_key, HTML, html.into_bytes()).await?;
    Ok(vec![
        json_key,
        csv_key,
        summary_key,
        html_key,
        HISTORY_KEY.to_string(),
    ])
}
