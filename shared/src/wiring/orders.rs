//! Builds the order-sync service from its environment.
#![cfg_attr(not(feature = "dynamodb"), allow(unused_imports))]

use crate::adapters::aws::settings::{load_mappings_in, resolve_secret_in};
use crate::adapters::aws::AwsConfig;
#[cfg(feature = "dynamodb")]
use crate::adapters::aws::{DynamoLedgerStore, DynamoOrderOutbox};
use crate::centra::orders::CentraOrderApi;
use crate::centra::CentraClient;
use crate::cloudshelf::CloudshelfClient;
use crate::config::env::{ConfigError, Env};
use crate::config::mappings::Mappings;
use crate::core::clock::system_clock;
use crate::orders::sync::{OrderSync, OrderSyncSettings};
use crate::telemetry::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The `API-Authorization` secret of every Order-API store in the mappings: each named secret resolved on its
/// own (env var, `<name>_SECRET_ARN`, `<name>_SSM_PARAMETER`), else looked up in the JSON bundle
/// `ORDER_API_SECRETS` (`{"<name>": "<secret>"}`, itself resolvable the same way). Missing ones fail start-up,
/// naming the mapping key.
pub async fn order_api_secrets(
    mappings: &Mappings,
) -> Result<HashMap<String, String>, ConfigError> {
    order_api_secrets_in(&Env::process(), &AwsConfig::from_env().await, mappings).await
}

pub async fn order_api_secrets_in(
    env: &Env,
    aws: &AwsConfig,
    mappings: &Mappings,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut bundle: Option<HashMap<String, String>> = None;
    let mut out = HashMap::new();
    for api in mappings.order_apis() {
        let value = match resolve_secret_in(env, aws, &api.secret).await {
            Ok(v) => v,
            Err(ConfigError::Missing(_)) => {
                if bundle.is_none() {
                    bundle = Some(
                        match resolve_secret_in(env, aws, "ORDER_API_SECRETS").await {
                            Ok(text) => {
                                serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
                                    name: "ORDER_API_SECRETS".into(),
                                    message: format!(
                                        "must be a JSON object of secret name → value: {e}"
                                    ),
                                })?
                            }
                            Err(ConfigError::Missing(_)) => HashMap::new(),
                            Err(e) => return Err(e),
                        },
                    );
                }
                bundle
                    .as_ref()
                    .and_then(|b| b.get(&api.secret))
                    .cloned()
                    .ok_or_else(|| {
                        ConfigError::Missing(format!(
                            "{} (order_api.{}.secret), or that key in ORDER_API_SECRETS",
                            api.secret, api.name
                        ))
                    })?
            }
            Err(e) => return Err(e),
        };
        out.insert(api.name.clone(), value);
    }
    Ok(out)
}

#[cfg(feature = "dynamodb")]
pub async fn order_sync_from_env(metrics: Arc<Metrics>) -> Result<OrderSync, ConfigError> {
    order_sync_from(&Env::process(), &AwsConfig::from_env().await, metrics).await
}

#[cfg(feature = "dynamodb")]
pub async fn order_sync_from(
    env: &Env,
    aws: &AwsConfig,
    metrics: Arc<Metrics>,
) -> Result<OrderSync, ConfigError> {
    let dynamo = aws.dynamodb();
    let stock_table = env.required("STOCK_TABLE")?;
    let mappings = load_mappings_in(env, aws, false).await?;
    let timeout = Duration::from_secs(env.parse("CENTRA_TIMEOUT_SECONDS", 20)?);
    let cloudshelf_timeout = Duration::from_secs(env.parse("CLOUDSHELF_TIMEOUT_SECONDS", 10)?);
    let lease_seconds: i64 = env.parse("ORDER_LEASE_SECONDS", 90)?;
    if lease_seconds <= timeout.as_secs() as i64 {
        return Err(ConfigError::Invalid {
            name: "ORDER_LEASE_SECONDS".into(),
            message: "must exceed CENTRA_TIMEOUT_SECONDS".into(),
        });
    }
    let exceptions = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        stock_table.clone(),
        // Order sync writes no applied markers; the ledger store is used for its exception log only.
        String::new(),
    ));
    Ok(OrderSync {
        order_api_secrets: order_api_secrets_in(env, aws, &mappings).await?,
        mappings: Arc::new(mappings),
        order_api: CentraOrderApi::new(timeout),
        centra: CentraClient::new(
            env.required("CENTRA_API_URL")?,
            resolve_secret_in(env, aws, "CENTRA_API_TOKEN").await?,
            timeout,
        ),
        cloudshelf: CloudshelfClient::new(
            env.required("CLOUDSHELF_API_URL")?,
            resolve_secret_in(env, aws, "CLOUDSHELF_API_KEY").await?,
            cloudshelf_timeout,
        ),
        outbox: Arc::new(DynamoOrderOutbox::new(dynamo.clone(), stock_table.clone())),
        daybook: Some(Arc::new(crate::adapters::aws::DynamoDaybook::new(
            dynamo,
            stock_table,
        ))),
        exceptions,
        clock: system_clock(),
        metrics,
        settings: OrderSyncSettings {
            lease_ms: lease_seconds * 1000,
            ..OrderSyncSettings::default()
        },
        instance_id: format!("order-sync-{}", uuid::Uuid::new_v4()),
    })
}
