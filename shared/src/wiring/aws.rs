//! Builds each function's service from its environment (see `config`), so the Lambda mains stay a few lines.
//! Each `*_from_env` is its `*_from` with the process environment and the SDK's default configuration; the tests
//! call `*_from` with the template's environment for the function and clients that check its role.
//! Each builder exists when the AWS clients it needs are built in (features of this crate).
#![cfg_attr(
    not(all(feature = "dynamodb", feature = "sqs", feature = "s3")),
    allow(unused_imports)
)]

use crate::adapters::aws::settings::{load_mappings_in, resolve_secret_in};
use crate::adapters::aws::AwsConfig;
#[cfg(all(feature = "dynamodb", feature = "sqs"))]
use crate::adapters::aws::{
    DynamoIdempotencyStore, DynamoLedgerStore, DynamoMutationBudget, SqsFifoQueue, SqsPushQueue,
};
use crate::centra::CentraClient;
use crate::config::env::{mutation_budget_in, ConfigError, Env};
use crate::core::clock::system_clock;
use crate::intake::centra_webhooks::{CentraSignatureVerifier, CentraWebhookIntake};
use crate::intake::contract::IntakeSettings;
use crate::intake::http::WebhookIntake;
use crate::intake::signature::WebhookVerifier;
use crate::intake::store_events::StoreEventIntake;
use crate::stock::apply::StockApplier;
use crate::stock::identity::{
    CatalogueSettings, ItemCatalogue, SizeSource, SnapshotObject, SNAPSHOT_KEY,
};
use crate::stock::ports::{IdempotencyStore, OrderQueue};
use crate::stock::push::{PushSettings, StockPusher};
use crate::telemetry::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// The item catalogue of a function: the SKU audit's snapshot in `REPORTS_BUCKET` (loaded on first use;
/// optional) and `CENTRA_API_URL` for names the snapshot lacks.
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
fn catalogue_from(env: &Env, aws: &AwsConfig, centra: CentraClient) -> Arc<ItemCatalogue> {
    let snapshot = env.opt("REPORTS_BUCKET").map(|bucket| {
        Arc::new(SnapshotObject {
            sink: Arc::new(crate::adapters::aws::recon::S3ReportSink::new(
                aws.s3(),
                bucket,
            )),
            key: SNAPSHOT_KEY.to_string(),
        }) as Arc<dyn SizeSource>
    });
    Arc::new(ItemCatalogue::new(
        snapshot,
        Some(Arc::new(centra)),
        CatalogueSettings::default(),
        system_clock(),
    ))
}

/// The Centra client of a function (`CENTRA_API_URL`, `CENTRA_API_TOKEN`, `CENTRA_TIMEOUT_SECONDS`).
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
async fn centra_from(env: &Env, aws: &AwsConfig) -> Result<CentraClient, ConfigError> {
    let timeout_seconds: u64 = env.parse("CENTRA_TIMEOUT_SECONDS", 10)?;
    Ok(CentraClient::new(
        env.required("CENTRA_API_URL")?,
        resolve_secret_in(env, aws, "CENTRA_API_TOKEN").await?,
        Duration::from_secs(timeout_seconds),
    ))
}

/// The webhook-intake function: store events, and Centra's webhooks.
///
/// `ORDERS_QUEUE_URL` (optional): the orders FIFO queue; unset, `order.placed` answers 400 `unsupported_type`
/// and Centra webhooks 503 `orders_disabled`. `CENTRA_WEBHOOK_SECRET` (optional; or `…_SECRET_ARN` /
/// `…_SSM_PARAMETER`): the Centra Webhook plugin's endpoint secret(s), comma-separated; unset, Centra webhooks
/// answer 503 `centra_webhooks_disabled`.
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
pub async fn intake_from_env(metrics: Arc<Metrics>) -> Result<WebhookIntake, ConfigError> {
    intake_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
pub async fn intake_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<WebhookIntake, ConfigError> {
    let (dynamo, sqs) = (aws.dynamodb(), aws.sqs());
    let secret = resolve_secret_in(env, aws, "STORE_EVENTS_SECRET").await?;
    let verifier = WebhookVerifier::from_config(&secret).map_err(|e| ConfigError::Invalid {
        name: "STORE_EVENTS_SECRET".into(),
        message: e.to_string(),
    })?;
    let idempotency_ttl_s = idempotency_ttl_seconds(env.parse("IDEMPOTENCY_TTL_DAYS", 15)?)?;
    let centra_verifier = match resolve_secret_in(env, aws, "CENTRA_WEBHOOK_SECRET").await {
        Ok(secret) => Some(CentraSignatureVerifier::from_config(&secret).map_err(|e| {
            ConfigError::Invalid {
                name: "CENTRA_WEBHOOK_SECRET".into(),
                message: e.to_string(),
            }
        })?),
        Err(ConfigError::Missing(_)) => None,
        Err(e) => return Err(e),
    };
    let orders: Option<Arc<dyn OrderQueue>> = env
        .opt("ORDERS_QUEUE_URL")
        .map(|url| Arc::new(SqsFifoQueue::new(sqs.clone(), url)) as Arc<dyn OrderQueue>);
    tracing::info!(
        orders = orders.is_some(),
        centra_webhooks = centra_verifier.is_some(),
        "webhook intake configured"
    );
    let idempotency: Arc<dyn IdempotencyStore> = Arc::new(DynamoIdempotencyStore::new(
        dynamo,
        env.required("IDEMPOTENCY_TABLE")?,
    ));
    let clock = system_clock();
    let catalogue = catalogue_from(env, aws, centra_from(env, aws).await?);
    let settings = IntakeSettings {
        idempotency_ttl_s,
        ..IntakeSettings::default()
    };
    Ok(WebhookIntake {
        store_events: StoreEventIntake {
            verifier,
            mappings: Arc::new(load_mappings_in(env, aws, false).await?),
            idempotency: idempotency.clone(),
            queue: Arc::new(SqsFifoQueue::new(sqs, env.required("STOCK_QUEUE_URL")?)),
            orders: orders.clone(),
            catalogue,
            clock: clock.clone(),
            metrics: metrics.clone(),
            settings: settings.clone(),
        },
        centra_webhooks: CentraWebhookIntake {
            verifier: centra_verifier,
            idempotency,
            orders,
            clock,
            metrics,
            settings: IntakeSettings {
                // Centra gives up after 5 s: wait less for an event a concurrent call is queueing.
                in_progress_wait_ms: 1_000,
                ..settings
            },
        },
    })
}

/// `IDEMPOTENCY_TTL_DAYS` in seconds. Never shorter than the applier's movement markers: an event id forgotten
/// here but remembered there would be answered 202 on reuse and then dropped as a duplicate (the contract
/// promises 409).
pub fn idempotency_ttl_seconds(days: i64) -> Result<i64, ConfigError> {
    const DAY_S: i64 = 24 * 3600;
    let min_days = (crate::stock::apply::MOVEMENT_MARKER_TTL_S + DAY_S - 1) / DAY_S;
    let invalid = || {
        ConfigError::Invalid {
        name: "IDEMPOTENCY_TTL_DAYS".into(),
        message: format!(
            "must be at least {min_days} (the applier remembers movements {min_days} days) and at most 3650"
        ),
    }
    };
    if !(min_days..=3650).contains(&days) {
        return Err(invalid());
    }
    days.checked_mul(DAY_S).ok_or_else(invalid)
}

#[cfg(all(feature = "dynamodb", feature = "sqs"))]
pub async fn applier_from_env(metrics: Arc<Metrics>) -> Result<StockApplier, ConfigError> {
    applier_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(all(feature = "dynamodb", feature = "sqs"))]
pub async fn applier_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<StockApplier, ConfigError> {
    let dynamo = aws.dynamodb();
    let stock_table = env.required("STOCK_TABLE")?;
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        env.required("IDEMPOTENCY_TABLE")?,
    ));
    let daybook: Arc<dyn crate::finance::Daybook> = Arc::new(
        crate::adapters::aws::DynamoDaybook::new(dynamo, stock_table),
    );
    let finance =
        crate::finance::FinanceHooks::new(&load_mappings_in(env, aws, false).await?, Some(daybook));
    Ok(StockApplier {
        finance,
        ledger: ledger.clone(),
        push_queue: Arc::new(SqsPushQueue::new(
            aws.sqs(),
            env.required("STOCK_PUSH_QUEUE_URL")?,
        )),
        exceptions: ledger,
        metrics,
        clock: system_clock(),
    })
}

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
pub async fn pusher_from_env(metrics: Arc<Metrics>) -> Result<StockPusher, ConfigError> {
    pusher_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
pub async fn pusher_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<StockPusher, ConfigError> {
    let dynamo = aws.dynamodb();
    let idempotency_table = env.required("IDEMPOTENCY_TABLE")?;
    let stock_table = env.required("STOCK_TABLE")?;
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        idempotency_table.clone(),
    ));
    let mappings = Arc::new(load_mappings_in(env, aws, false).await?);
    let daybook: Arc<dyn crate::finance::Daybook> = Arc::new(
        crate::adapters::aws::DynamoDaybook::new(dynamo.clone(), stock_table),
    );
    let centra_url = env.required("CENTRA_API_URL")?;
    let centra = centra_from(env, aws).await?;
    let (per_10s, per_hour) = mutation_budget_in(env)?;
    let catalogue = catalogue_from(env, aws, centra.clone());
    // One budget per Centra environment, whichever stack or function spends it.
    let scope = reqwest::Url::parse(&centra_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .ok_or_else(|| ConfigError::Invalid {
            name: "CENTRA_API_URL".into(),
            message: "must be an absolute URL".into(),
        })?;
    let lease_seconds: i64 = env.parse("PUSH_LEASE_SECONDS", 150)?;
    let timeout_seconds: u64 = env.parse("CENTRA_TIMEOUT_SECONDS", 10)?;
    if lease_seconds <= timeout_seconds as i64 {
        return Err(ConfigError::Invalid {
            name: "PUSH_LEASE_SECONDS".into(),
            message: "must exceed CENTRA_TIMEOUT_SECONDS and the function timeout".into(),
        });
    }
    Ok(StockPusher {
        ledger: ledger.clone(),
        push_log: ledger.clone(),
        exceptions: ledger,
        budget: Arc::new(DynamoMutationBudget::new(
            dynamo,
            idempotency_table,
            scope,
            per_10s,
            per_hour,
        )),
        push_queue: Arc::new(SqsPushQueue::new(
            aws.sqs(),
            env.required("STOCK_PUSH_QUEUE_URL")?,
        )),
        catalogue,
        centra,
        finance: crate::finance::FinanceHooks::new(&mappings, Some(daybook)),
        mappings,
        metrics,
        clock: system_clock(),
        settings: PushSettings {
            lease_ms: lease_seconds * 1000,
            ..PushSettings::default()
        },
    })
}

/// The event-archive function: `ARCHIVE_BUCKET` (the reports bucket in the template).
#[cfg(all(feature = "dynamodb", feature = "s3"))]
pub async fn archiver_from_env(
    metrics: Arc<Metrics>,
) -> Result<crate::archive::EventArchiver, ConfigError> {
    archiver_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(all(feature = "dynamodb", feature = "s3"))]
pub async fn archiver_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<crate::archive::EventArchiver, ConfigError> {
    Ok(crate::archive::EventArchiver {
        sink: Arc::new(crate::adapters::aws::recon::S3ReportSink::new(
            aws.s3(),
            env.required("ARCHIVE_BUCKET")?,
        )),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_ttl_is_at_least_the_movement_marker_ttl() {
        assert_eq!(
            idempotency_ttl_seconds(15).unwrap(),
            crate::stock::apply::MOVEMENT_MARKER_TTL_S
        );
        for days in [14, 7, 0, -1, i64::MAX] {
            match idempotency_ttl_seconds(days) {
                Err(ConfigError::Invalid { name, .. }) => assert_eq!(name, "IDEMPOTENCY_TTL_DAYS"),
                other => panic!("{days}: {other:?}"),
            }
        }
    }
}
