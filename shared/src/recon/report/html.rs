//! The run's `summary.html`: one self-contained page (inline CSS, inline SVG, no script, nothing fetched) that an
//! operator can open from S3 or a local directory. Every piece of data is escaped: SKUs may hold `<`, `&`, `"`.

use crate::recon::report::{HistoryIndex, JobSummary};
use crate::recon::JobKind;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Text safe inside HTML elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time_text(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#f7f8fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.muted{color:#5b6475}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}.card{background:#fff;border:1px solid #dfe3ea;border-radius:8px;padding:12px 16px;min-width:180px}
.card .n{font-size:26px;font-weight:600}.card.alert .n{color:#b42318}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px}th,td{border:1px solid #dfe3ea;padding:4px 8px;text-align:left;font-variant-numeric:tabular-nums}
th{background:#eef1f5}td.num{text-align:right}svg{background:#fff;border:1px solid #dfe3ea;border-radius:8px}
.legend span{display:inline-block;margin-right:16px}.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}";

/// Renders the summary of run `run_id` from the summaries of its finished jobs and the history index.
pub fn render_summary(
    run_id: &str,
    started_at_ms: i64,
    jobs: &[JobSummary],
    history: &HistoryIndex,
) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Reconciliation {run}</title><style>{STYLE}</style></head><body>\n\
         <h1>Reconciliation run {run}</h1><p class=\"muted\">Started {started}</p>\n<div class=\"cards\">",
        run = escape(run_id),
        started = escape(&time_text(started_at_ms)),
    );
    for job in jobs {
        let alert = if job.findings > 0 { " alert" } else { "" };
        let _ = write!(
            html,
            "<div class=\"card{alert}\"><div class=\"muted\">{title}</div><div class=\"n\" data-job=\"{key}\">{findings}</div>\
             <div class=\"muted\">{label} · {exceptions} exceptions</div></div>",
            title = escape(job.job.title()),
            label = escape(job.job.findings_label()),
            key = escape(job.job.as_str()),
            findings = job.findings,
            exceptions = job.exceptions,
        );
    }
    html.push_str("</div>\n<h2>Recent runs</h2>\n");
    html.push_str(&chart(history));
    for job in jobs {
        job_section(&mut html, job);
    }
    html.push_str("</body></html>\n");
    html
}

fn job_section(html: &mut String, job: &JobSummary) {
    let _ = write!(
        html,
        "<h2>{title}</h2><p class=\"muted\">Scope {scope} · {invocations} invocation(s) · finished {finished}{dry}</p>",
        title = escape(job.job.title()),
        scope = escape(&job.scope),
        invocations = job.invocations,
        finished = escape(&time_text(job.finished_at_ms)),
        dry = if job.dry_run {
            " · dry run: nothing was corrected"
        } else {
            ""
        },
    );
    html.push_str("<table><tr><th>counter</th><th>value</th></tr>");
    for (name, value) in &job.counters.0 {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"num\">{value}</td></tr>",
            escape(name)
        );
    }
    html.push_str("</table>");
    if !job.sample.is_empty() {
        let _ = write!(
            html,
            "<p class=\"muted\">First {} of {} row(s){}</p><table><tr>",
            job.sample.len(),
            job.rows_reported,
            if job.truncated {
                " (the job's files stop at their row cap)"
            } else {
                ""
            }
        );
        for column in &job.columns {
            let _ = write!(html, "<th>{}</th>", escape(column));
        }
        html.push_str("</tr>");
        for row in &job.sample {
            html.push_str("<tr>");
            for cell in row {
                let numeric = !cell.is_empty() && cell.parse::<i64>().is_ok();
                let _ = write!(
                    html,
                    "<td{}>{}</td>",
                    if numeric { " class=\"num\"" } else { "" },
                    escape(cell)
                );
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    }
    if !job.files.is_empty() {
        html.push_str("<p>Files: ");
        for (i, file) in job.files.iter().enumerate() {
            if i > 0 {
                html.push_str(" · ");
            }
            let _ = write!(html, "<a href=\"{0}\">{0}</a>", escape(file));
        }
        html.push_str("</p>");
    }
    for note in &job.notes {
        let _ = write!(html, "<p class=\"muted\">{}</p>", escape(note));
    }
}

// Chart geometry, in SVG units.
const W: f64 = 760.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// Bars: drifted SKUs per run; line: exceptions per run (all jobs), over the runs in the history index.
pub fn chart(history: &HistoryIndex) -> String {
    let runs = &history.runs;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"Drifted SKUs and exceptions over the last {} runs\">",
        runs.len()
    );
    if runs.is_empty() {
        svg.push_str("<text x=\"20\" y=\"40\">No runs yet</text></svg>");
        return svg;
    }
    let drifted: Vec<u64> = runs
        .iter()
        .map(|r| r.findings(JobKind::StockDrift))
        .collect();
    let exceptions: Vec<u64> = runs.iter().map(|r| r.exceptions()).collect();
    let max = drifted
        .iter()
        .chain(&exceptions)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let scale = Scale {
        slot: plot_w / runs.len() as f64,
        plot_h,
        max,
    };
    write_grid(&mut svg, &scale);
    write_bars(&mut svg, runs, &drifted, &exceptions, &scale);
    write_exception_line(&mut svg, &exceptions, &scale);
    write_legend(&mut svg);
    svg
}

/// Where a value sits on the chart: the width of one run's slot and the vertical scale.
struct Scale {
    slot: f64,
    plot_h: f64,
    max: f64,
}

impl Scale {
    fn y(&self, v: u64) -> f64 {
        TOP + self.plot_h - (v as f64 / self.max) * self.plot_h
    }
}

/// Horizontal grid lines at 0, half and the maximum, with their values.
fn write_grid(svg: &mut String, scale: &Scale) {
    for tick in [0.0, 0.5, 1.0] {
        let value = (scale.max * tick).round() as u64;
        let ty = scale.y(value);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#e3e7ee\"/>\
             <text x=\"{tx}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{value}</text>",
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ly = ty + 4.0,
        );
    }
}

/// One bar of drifted SKUs per run (with a tooltip), and a date label under every few.
fn write_bars(
    svg: &mut String,
    runs: &[crate::recon::report::HistoryRun],
    drifted: &[u64],
    exceptions: &[u64],
    scale: &Scale,
) {
    let label_every = runs.len().div_ceil(10).max(1);
    for (i, run) in runs.iter().enumerate() {
        let x = LEFT + scale.slot * i as f64;
        let bar_w = (scale.slot * 0.6).max(1.0);
        let top = scale.y(drifted[i]);
        let _ = write!(
            svg,
            "<rect x=\"{bx:.1}\" y=\"{top:.1}\" width=\"{bar_w:.1}\" height=\"{bh:.1}\" fill=\"#3b6fd8\">\
             <title>{run}: {d} drifted SKUs, {e} exceptions</title></rect>",
            bx = x + (scale.slot - bar_w) / 2.0,
            bh = TOP + scale.plot_h - top,
            run = escape(&run.run_id),
            d = drifted[i],
            e = exceptions[i],
        );
        if i % label_every == 0 {
            let date = DateTime::<Utc>::from_timestamp_millis(run.started_at_ms)
                .map(|t| t.format("%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let _ = write!(
                svg,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5b6475\">{}</text>",
                escape(&date),
                lx = x + scale.slot / 2.0,
                ly = H - BOTTOM + 14.0,
            );
        }
    }
}

/// The exceptions per run as a line with a dot at each run.
fn write_exception_line(svg: &mut String, exceptions: &[u64], scale: &Scale) {
    let points: Vec<String> = exceptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "{:.1},{:.1}",
                LEFT + scale.slot * (i as f64 + 0.5),
                scale.y(*e)
            )
        })
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#d92d20\" stroke-width=\"2\"/>",
        points.join(" ")
    );
    for point in &points {
        let (cx, cy) = point.split_once(',').expect("x,y");
        let _ = write!(
            svg,
            "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"#d92d20\"/>"
        );
    }
}

fn write_legend(svg: &mut String) {
    let _ = write!(
        svg,
        "<g font-size=\"11\" fill=\"#1d2330\"><rect x=\"{LEFT}\" y=\"{ly}\" width=\"10\" height=\"10\" fill=\"#3b6fd8\"/>\
         <text x=\"{t1}\" y=\"{ty}\">drifted SKUs</text><rect x=\"{l2}\" y=\"{ly}\" width=\"10\" height=\"10\" fill=\"#d92d20\"/>\
         <text x=\"{t2}\" y=\"{ty}\">exceptions</text></g></svg>",
        ly = H - 16.0,
        ty = H - 7.0,
        t1 = LEFT + 14.0,
        l2 = LEFT + 110.0,
        t2 = LEFT + 124.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::report::HistoryJob;
    use crate::recon::Counters;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<b a=\"1\">&'x'</b>"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;x&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn summary_escapes_cells_and_charts_every_run() {
        let mut history = HistoryIndex::default();
        for i in 0..3u64 {
            history.runs.push(crate::recon::report::HistoryRun {
                run_id: format!("r{i}"),
                started_at_ms: i as i64 * 86_400_000,
                prefix: String::new(),
                jobs: BTreeMap::from([(
                    JobKind::StockDrift,
                    HistoryJob {
                        finished_at_ms: 0,
                        findings: i * 10,
                        exceptions: i,
                        invocations: 1,
                    },
                )]),
            });
        }
        let job = JobSummary {
            job: JobKind::StockDrift,
            run_id: "r2".into(),
            scope: "all".into(),
            started_at_ms: 0,
            finished_at_ms: 0,
            invocations: 2,
            dry_run: false,
            counters: Counters(BTreeMap::from([("drifted".into(), 20)])),
            findings: 20,
            exceptions: 2,
            rows_reported: 1,
            truncated: false,
            columns: vec!["sku".into()],
            sample: vec![vec!["<script>alert(1)</script>".into()]],
            files: vec!["stock_drift.csv".into()],
            notes: vec![],
        };
        let html = render_summary("r2", 0, &[job], &history);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(
            html.matches("<rect x=").count(),
            3 + 2,
            "3 bars and 2 legend swatches"
        );
        assert!(html.contains("r1: 10 drifted SKUs, 1 exceptions"));
    }
}
