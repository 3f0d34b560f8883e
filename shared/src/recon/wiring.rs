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
use super::aws::{s3_client, DynamoCheckpointStore, S3ReportSink, SnsAlertSink};
use super::{AlertSink, ReconContext, ReconSettings, ReconSources};
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
use crate::aws::{DynamoLedgerStore, DynamoOrderOutbox, SqsStockQueue};
use crate::centra::CentraClient;
use crate::cloudshelf::CloudshelfClient;
use crate::config::*;
use crate::metrics::Metrics;
use crate::time::system_clock;
use std::sync::Arc;
use std::time::Duration;

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3", feature = "sns"))]
pub async fn recon_from_env(metrics: Arc<Metrics>) -> Result<ReconContext, ConfigError> {
    let sdk = crate::aws::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let stock_table = env_required("STOCK_TABLE")?;
    // Reconciliation reads rows and writes none through `apply`, so the applied-marker table is not needed.
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        String::new(),
    ));
    let timeout = Duration::from_secs(env_parse("CENTRA_TIMEOUT_SECONDS", 20)?);
    let centra = Arc::new(CentraClient::new(
        env_required("CENTRA_API_URL")?,
        resolve_secret("CENTRA_API_TOKEN").await?,
        timeout,
    ));
    let cloudshelf = match env_opt("CLOUDSHELF_API_URL") {
        None => None,
        Some(url) => Some(Arc::new(CloudshelfClient::new(
            url,
            resolve_secret("CLOUDSHELF_API_KEY").await?,
            Duration::from_secs(env_parse("CLOUDSHELF_TIMEOUT_SECONDS", 10)?),
        ))),
    };
    let settings = ReconSettings {
        page_interval: Duration::from_millis(env_parse("RECON_PAGE_INTERVAL_MS", 2_000)?),
        cloudshelf_safety_stock: env_parse("CLOUDSHELF_SAFETY_STOCK", 0)?,
        ..ReconSettings::default()
    };
    Ok(ReconContext {
        mappings: Arc::new(load_mappings(false).await?),
        ledger: ledger.clone(),
        stock_queue: Arc::new(SqsStockQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            env_required("STOCK_QUEUE_URL")?,
        )),
        exceptions: ledger,
        centra_stock: centra.clone(),
        checkpoints: Arc::new(DynamoCheckpointStore::new(
            dynamo.clone(),
            stock_table.clone(),
        )),
        reports: Arc::new(S3ReportSink::new(
            s3_client(&sdk),
            env_required("REPORTS_BUCKET")?,
        )),
        metrics,
        clock: system_clock(),
        settings,
        alerts: env_opt("ALERT_TOPIC_ARN").map(|arn| {
            Arc::new(SnsAlertSink::new(aws_sdk_sns::Client::new(&sdk), arn)) as Arc<dyn AlertSink>
        }),
        sources: ReconSources {
            centra: Some(centra),
            cloudshelf,
            order_outbox: Some(Arc::new(DynamoOrderOutbox::new(
                dynamo.clone(),
                stock_table.clone(),
            ))),
            daybook: Some(Arc::new(crate::aws::DynamoDaybook::new(
                dynamo,
                stock_table,
            ))),
            push_queue: match env_opt("STOCK_PUSH_QUEUE_URL") {
                None => None,
                Some(url) => Some(Arc::new(crate::aws::SqsPushQueue::new(
                    aws_sdk_sqs::Client::new(&sdk),
                    url,
                ))),
            },
        },
    })
}
