//! Builds the reconciliation context of the Lambda from its environment.
//!
//! Required: `STOCK_TABLE` (ledger, outbox, checkpoints), `STOCK_QUEUE_URL` (drift corrections),
//! `REPORTS_BUCKET`, `CENTRA_API_URL` and `CENTRA_API_TOKEN` (or `…_SECRET_ARN` / `…_SSM_PARAMETER`), the
//! mappings. Optional: `STOCK_PUSH_QUEUE_URL` (the finance close flushes daily-posting stores through it),
//! `ALERT_TOPIC_ARN` (an SNS topic told about every finished run that found something),
//! `CLOUDSHELF_API_URL` + `CLOUDSHELF_API_KEY` (without them the Cloudshelf jobs fail
//! with "not configured"), `RECON_PAGE_INTERVAL_MS` (least time between Centra page reads, default 2000),
//! `CLOUDSHELF_SAFETY_STOCK` (default 0), `CENTRA_TIMEOUT_SECONDS`, `CLOUDSHELF_TIMEOUT_SECONDS`.
#![cfg_attr(
    not(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns")),
    allow(unused_imports)
)]

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
use crate::adapters::aws::recon::{DynamoCheckpointStore, S3ReportSink, SnsAlertSink};
use crate::adapters::aws::settings::{load_mappings_in, resolve_secret_in};
use crate::adapters::aws::AwsConfig;
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
use crate::adapters::aws::{DynamoLedgerStore, DynamoOrderOutbox, SqsFifoQueue};
use crate::centra::CentraClient;
use crate::cloudshelf::CloudshelfClient;
use crate::config::env::{ConfigError, Env};
use crate::core::clock::system_clock;
use crate::recon::{AlertSink, ReconContext, ReconSettings, ReconSources};
use crate::telemetry::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
pub async fn recon_from_env(metrics: Arc<Metrics>) -> Result<ReconContext, ConfigError> {
    recon_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
pub async fn recon_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<ReconContext, ConfigError> {
    let dynamo = aws.dynamodb();
    let stock_table = env.required("STOCK_TABLE")?;
    // Reconciliation reads rows and writes none through `apply`, so the applied-marker table is not needed.
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        String::new(),
    ));
    let timeout = Duration::from_secs(env.parse("CENTRA_TIMEOUT_SECONDS", 20)?);
    let centra = Arc::new(CentraClient::new(
        env.required("CENTRA_API_URL")?,
        resolve_secret_in(env, aws, "CENTRA_API_TOKEN").await?,
        timeout,
    ));
    let cloudshelf = match env.opt("CLOUDSHELF_API_URL") {
        None => None,
        Some(url) => Some(Arc::new(CloudshelfClient::new(
            url,
            resolve_secret_in(env, aws, "CLOUDSHELF_API_KEY").await?,
            Duration::from_secs(env.parse("CLOUDSHELF_TIMEOUT_SECONDS", 10)?),
        ))),
    };
    let settings = ReconSettings {
        page_interval: Duration::from_millis(env.parse("RECON_PAGE_INTERVAL_MS", 2_000)?),
        cloudshelf_safety_stock: env.parse("CLOUDSHELF_SAFETY_STOCK", 0)?,
        ..ReconSettings::default()
    };
    Ok(ReconContext {
        mappings: Arc::new(load_mappings_in(env, aws, false).await?),
        ledger: ledger.clone(),
        stock_queue: Arc::new(SqsFifoQueue::new(
            aws.sqs(),
            env.required("STOCK_QUEUE_URL")?,
        )),
        exceptions: ledger,
        centra_stock: centra.clone(),
        checkpoints: Arc::new(DynamoCheckpointStore::new(
            dynamo.clone(),
            stock_table.clone(),
        )),
        reports: Arc::new(S3ReportSink::new(aws.s3(), env.required("REPORTS_BUCKET")?)),
        metrics,
        clock: system_clock(),
        settings,
        alerts: env
            .opt("ALERT_TOPIC_ARN")
            .map(|arn| Arc::new(SnsAlertSink::new(aws.sns(), arn)) as Arc<dyn AlertSink>),
        sources: ReconSources {
            centra: Some(centra),
            cloudshelf,
            order_outbox: Some(Arc::new(DynamoOrderOutbox::new(
                dynamo.clone(),
                stock_table.clone(),
            ))),
            daybook: Some(Arc::new(crate::adapters::aws::DynamoDaybook::new(
                dynamo,
                stock_table,
            ))),
            push_queue: match env.opt("STOCK_PUSH_QUEUE_URL") {
                None => None,
                Some(url) => Some(Arc::new(crate::adapters::aws::SqsPushQueue::new(
                    aws.sqs(),
                    url,
                ))),
            },
            archive_gaps: env.opt("ARCHIVE_GAP_QUEUE_URL").map(|url| {
                Arc::new(crate::adapters::aws::sqs::SqsArchiveGaps {
                    client: aws.sqs(),
                    queue_url: url,
                }) as Arc<dyn crate::archive::ArchiveGapSource>
            }),
        },
    })
}
