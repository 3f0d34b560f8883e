//! `shelfsync reconcile <job>`: one reconciliation job on demand, against the deployed stack (the same
//! environment as the Lambda) or, with `--demo`, against seeded simulators. Reports are written under `--out`
//! in the same layout as the S3 bucket; checkpoints stay in memory, so an on-demand run never takes over or
//! disturbs the scheduled one.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use shared::adapters::memory::MemoryCheckpointStore;
use shared::adapters::memory::{MemoryFifoQueue, MemoryLedgerStore};
use shared::adapters::report_sinks::LocalDirReportSink;
use shared::config::mappings::Mappings;
use shared::core::ids::{EventPosition, ItemRef, StoreCode};
use shared::orders::outbox::MemoryOrderOutbox;
use shared::recon::report::JobSummary;
use shared::recon::{
    run_job, scope_of, JobKind, ReconContext, ReconSettings, ReconSources, ReportSink, RunOptions,
};
use shared::stock::ledger::LedgerRow;
use shared::stock::ports::LedgerStore;
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, VariantSeed};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// stock-drift, availability, sku-audit, stalled-orders or finance-close.
    pub job: String,
    /// Find and report; queue, push or create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this store.
    #[arg(long)]
    pub store: Option<String>,
    /// Only what changed since: `30m`, `6h`, `2d` ago, or an RFC 3339 instant.
    #[arg(long)]
    pub since: Option<String>,
    /// Everything, whatever --since says.
    #[arg(long)]
    pub full: bool,
    /// Repair what the job can (SKU audit: create missing variants in Cloudshelf).
    #[arg(long)]
    pub fix: bool,
    /// Where the report files go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Against simulators seeded with a small catalogue and one drifted SKU, not the deployed stack.
    #[arg(long)]
    pub demo: bool,
}

/// `30m` / `6h` / `2d` before `now_ms`, or an RFC 3339 instant.
pub fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("--since {text:?}: expected e.g. 30m, 6h, 2d or an RFC 3339 time")
    })?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("--since {text:?}: the unit must be m, h or d"),
    };
    chrono::DateTime::from_timestamp_millis(now_ms - n * unit_ms).context("--since is out of range")
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let job = JobKind::parse(&args.job).with_context(|| {
        format!(
            "unknown job {:?}; one of: {}",
            args.job,
            JobKind::ALL
                .iter()
                .map(|j| j.as_str().replace('_', "-"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let store = args
        .store
        .as_deref()
        .map(StoreCode::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, now))
        .transpose()?;
    let sink = Arc::new(LocalDirReportSink::new(&args.out));
    let (ctx, _sims) = if args.demo {
        let (ctx, sims) = demo_context(sink.clone()).await?;
        (ctx, Some(sims))
    } else {
        let mut ctx = shared::wiring::recon::recon_from_env(Arc::new(Metrics::new()))
            .await
            .context("the deployed stack's settings (see docs/reconciliation.md, or use --demo)")?;
        ctx.checkpoints = Arc::new(MemoryCheckpointStore::new());
        ctx.reports = sink.clone();
        (ctx, None)
    };
    let mut opts = RunOptions {
        dry_run: args.dry_run,
        store,
        since,
        full: args.full,
        apply_fixes: args.fix,
        deadline_ms: 0,
        run_id: None,
    };

    // Short slices so the bar moves: each one checkpoints and the next resumes, as Lambda invocations do.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} stores · {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(job.title());
    bar.enable_steady_tick(Duration::from_millis(120));
    let run = loop {
        opts.deadline_ms = chrono::Utc::now().timestamp_millis() + 2_000;
        let run = run_job(&ctx, job, &opts).await?;
        opts.run_id = Some(run.run_id.clone());
        if let Some(cp) = ctx.checkpoints.load(job, &scope_of(&opts)).await? {
            bar.set_length(cp.stores.len() as u64);
            bar.set_position(u64::from(cp.cursor.store_index).min(cp.stores.len() as u64));
        }
        if run.finished {
            break run;
        }
    };
    bar.finish_and_clear();

    let summary_key = run
        .report_keys
        .iter()
        .find(|k| k.ends_with(".summary.json"))
        .context("the job wrote no summary")?;
    let summary: JobSummary = serde_json::from_slice(
        &sink
            .get(summary_key)
            .await?
            .context("summary file missing")?,
    )?;
    print_summary(&summary, &run.report_keys, &args.out);
    Ok(())
}

fn print_summary(summary: &JobSummary, keys: &[String], out: &std::path::Path) {
    println!(
        "{} — run {}{}",
        summary.job.title(),
        summary.run_id,
        if summary.dry_run { " (dry run)" } else { "" }
    );
    println!(
        "  {} {} · {} exceptions · scope {}",
        summary.findings,
        summary.job.findings_label(),
        summary.exceptions,
        summary.scope
    );
    let counters: Vec<String> = summary
        .counters
        .0
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("  counters: {}", counters.join(", "));
    for note in &summary.notes {
        println!("  note: {note}");
    }
    if !summary.sample.is_empty() {
        let widths: Vec<usize> = summary
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                summary
                    .sample
                    .iter()
                    .take(20)
                    .map(|r| r.get(i).map_or(0, |v| v.chars().count().min(48)))
                    .max()
                    .unwrap_or(0)
                    .max(c.len())
            })
            .collect();
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{:<w$}", c.chars().take(48).collect::<String>(), w = *w))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!();
        println!(
            "  {}",
            line(summary.columns.iter().map(String::as_str).collect())
        );
        for row in summary.sample.iter().take(20) {
            println!("  {}", line(row.iter().map(String::as_str).collect()));
        }
        if summary.rows_reported > 20 {
            println!("  … {} rows in all (see the CSV)", summary.rows_reported);
        }
    }
    println!();
    for key in keys {
        println!("  wrote {}", out.join(key).display());
    }
}

/// Simulators kept alive for the run (dropping them stops their servers).
pub struct DemoSims {
    _centra: CentraSim,
    _cloudshelf: CloudshelfSim,
}

const DEMO_MAPPINGS: &str = r#"
[stores.LDN-01]
name = "London Regent St"
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
drift_policy = "report"

[stores.MAN-01]
name = "Manchester"
centra_warehouse_id = 13
cloudshelf_location = "gid://external/CentraWarehouse/13"
currency = "GBP"
"#;

/// Two stores with 40 SKUs each, Centra and the ledger in agreement except for one SKU someone edited in
/// Centra by hand; Cloudshelf lacking one size and holding one Centra does not know.
pub async fn demo_context(
    reports: Arc<dyn ReportSink>,
) -> anyhow::Result<(ReconContext, DemoSims)> {
    let mappings = Arc::new(Mappings::from_toml(DEMO_MAPPINGS)?);
    let centra = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    })
    .await;
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let ledger = Arc::new(MemoryLedgerStore::new());
    let now = chrono::Utc::now().timestamp_millis();
    for store in mappings.stores() {
        centra.add_warehouse(
            store.centra_warehouse_id,
            store.name.as_deref().unwrap_or("store"),
        );
        cloudshelf.add_location(Some(&store.cloudshelf_location));
    }
    for i in 0..40 {
        let sku = format!("Tee{i:02}-M");
        let ean = format!("73500000{i:05}");
        centra.add_product(
            &format!("Tee{i:02}"),
            "Black",
            &[("M", &sku, Some(&ean), true)],
        );
        if i != 39 {
            let product = cloudshelf.add_product(
                Some(&shared::recon::compare::product_gid(i)),
                &format!("Tee {i}"),
            );
            cloudshelf.add_product_variant(
                &product,
                VariantSeed {
                    platform_provided_id: Some(shared::recon::compare::size_gid(&sku)),
                    sku: Some(sku.clone()),
                    barcode: Some(ean),
                },
            );
        }
        for store in mappings.stores() {
            let qty = 5 + (i as i64 % 7);
            centra.set_physical(store.centra_warehouse_id, &sku, qty);
            let mut row = LedgerRow::new(store.store.clone(), ItemRef::Sku(sku.clone()));
            row.count_qty = Some(qty);
            row.count_pushed = true;
            row.last_count = Some(EventPosition {
                occurred_at_ms: now - 3_600_000,
                sequence: None,
            });
            row.version = 1;
            row.pushed_version = 1;
            row.updated_at_ms = now - 3_600_000;
            ledger
                .apply(&format!("demo-count-{}-{sku}", store.store), 0, &row, None)
                .await?;
        }
    }
    // Someone set a size by hand in Centra's admin for the London store.
    centra.set_physical(12, "Tee07-M", 2);
    let orphan = cloudshelf.add_product(None, "Gift card");
    cloudshelf.add_product_variant(
        &orphan,
        VariantSeed {
            platform_provided_id: None,
            sku: Some("GIFT-25".into()),
            barcode: None,
        },
    );

    let centra_client = Arc::new(shared::centra::CentraClient::new(
        centra.graphql_url(),
        centra.token(),
        Duration::from_secs(5),
    ));
    let ctx = ReconContext {
        mappings,
        ledger: ledger.clone(),
        stock_queue: Arc::new(MemoryFifoQueue::new(5)),
        exceptions: ledger,
        centra_stock: centra_client.clone(),
        checkpoints: Arc::new(MemoryCheckpointStore::new()),
        reports,
        metrics: Arc::new(Metrics::new()),
        clock: shared::core::clock::system_clock(),
        settings: ReconSettings {
            page_interval: Duration::ZERO,
            deadline_margin_ms: 0,
            ..Default::default()
        },
        alerts: None,
        sources: ReconSources {
            centra: Some(centra_client),
            cloudshelf: Some(Arc::new(shared::cloudshelf::CloudshelfClient::new(
                cloudshelf.graphql_url(),
                cloudshelf.api_key(),
                Duration::from_secs(5),
            ))),
            order_outbox: Some(Arc::new(MemoryOrderOutbox::new())),
            daybook: Some(demo_daybook(&now_store_day(now)).await?),
            push_queue: Some(Arc::new(shared::adapters::memory::MemoryPushQueue::new())),
            archive_gaps: None,
        },
    };
    Ok((
        ctx,
        DemoSims {
            _centra: centra,
            _cloudshelf: cloudshelf,
        },
    ))
}

fn now_store_day(now_ms: i64) -> chrono::NaiveDate {
    // The demo stores are on UTC and close at 22:00: the last closed day is yesterday until then.
    let today = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let closed_today = today.time() >= chrono::NaiveTime::from_hms_opt(22, 0, 0).expect("valid");
    if closed_today {
        today.date_naive()
    } else {
        today.date_naive().pred_opt().unwrap_or(today.date_naive())
    }
}

/// LDN-01's last closed day: two sales and a return posted to Centra, one sale accepted but not posted.
async fn demo_daybook(
    day: &chrono::NaiveDate,
) -> anyhow::Result<Arc<dyn shared::finance::Daybook>> {
    use shared::adapters::memory::MemoryDaybook;
    use shared::core::money::Money;
    use shared::finance::{Accepted, Daybook, FinanceKind};
    let book = MemoryDaybook::new();
    let store = StoreCode::parse("LDN-01").map_err(|e| anyhow::anyhow!("{e}"))?;
    let records = [
        (
            "evt_till7_99812#sku:Tee07-M",
            FinanceKind::Sale,
            2,
            "49.00",
            true,
        ),
        (
            "evt_till7_99813#sku:Tee12-M",
            FinanceKind::Sale,
            1,
            "25.00",
            true,
        ),
        (
            "evt_till7_99820#sku:Tee07-M",
            FinanceKind::Return,
            1,
            "24.50",
            true,
        ),
        (
            "evt_till7_99840#sku:Tee21-M",
            FinanceKind::Sale,
            3,
            "25.00",
            false,
        ),
    ];
    for (id, kind, units, price, posted) in records {
        let price = Money::parse(price).expect("valid demo price");
        let accepted = [Accepted {
            kind,
            units,
            gross: price.checked_times(units).expect("demo amounts are small"),
            currency: "GBP".into(),
            accepted_at_ms: 0,
        }];
        book.record_accepted(&store, *day, id, &accepted).await?;
        if posted {
            book.record_posted(&store, *day, &[id.to_string()], 0, "push-demo")
                .await?;
        }
    }
    Ok(Arc::new(book))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_instants() {
        let now = 10 * 86_400_000;
        assert_eq!(
            parse_since("30m", now).unwrap().timestamp_millis(),
            now - 1_800_000
        );
        assert_eq!(
            parse_since("2d", now).unwrap().timestamp_millis(),
            now - 2 * 86_400_000
        );
        assert_eq!(
            parse_since("2026-11-28T10:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-28T10:00:00+00:00"
        );
        assert!(parse_since("5w", now)
            .unwrap_err()
            .to_string()
            .contains("unit"));
        assert!(parse_since("0m", now).is_err());
    }
}
