//! Order sync wired to simulators (or any Centra/Cloudshelf URL) with the in-process outbox: the local run,
//! `serve`, and the orders benchmark use the same handler code as the Lambda.

use crate::centra::orders::CentraOrderApi;
use crate::centra::CentraClient;
use crate::cloudshelf::CloudshelfClient;
use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::orders::outbox::{MemoryOrderOutbox, OrderOutbox};
use crate::orders::sync::{OrderSync, OrderSyncSettings};
use crate::stock::ports::ExceptionLog;
use crate::telemetry::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct LocalOrderEndpoints {
    pub centra_graphql_url: String,
    pub centra_token: String,
    pub cloudshelf_url: String,
    pub cloudshelf_key: String,
    /// `API-Authorization` secret per `[order_api.<name>]`.
    pub order_api_secrets: HashMap<String, String>,
    pub timeout: Duration,
}

pub fn local_order_sync(
    endpoints: LocalOrderEndpoints,
    mappings: Arc<Mappings>,
    exceptions: Arc<dyn ExceptionLog>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    daybook: Option<Arc<dyn crate::finance::Daybook>>,
) -> (OrderSync, Arc<MemoryOrderOutbox>) {
    let outbox = Arc::new(MemoryOrderOutbox::new());
    let sync = OrderSync {
        mappings,
        order_api_secrets: endpoints.order_api_secrets,
        order_api: CentraOrderApi::new(endpoints.timeout),
        centra: CentraClient::new(
            endpoints.centra_graphql_url,
            endpoints.centra_token,
            endpoints.timeout,
        ),
        cloudshelf: CloudshelfClient::new(
            endpoints.cloudshelf_url,
            endpoints.cloudshelf_key,
            endpoints.timeout,
        ),
        outbox: outbox.clone() as Arc<dyn OrderOutbox>,
        exceptions,
        clock,
        metrics,
        settings: OrderSyncSettings {
            // Longer than the client timeout, as in the Lambda.
            lease_ms: endpoints.timeout.as_millis() as i64 + 5_000,
            ..OrderSyncSettings::default()
        },
        instance_id: "local".into(),
        daybook,
    };
    (sync, outbox)
}

/// The embedded example mappings with every Order-API base URL pointed at `base_url_for(<name>)` (the
/// simulator's plugin URLs).
pub fn mappings_with_order_api_bases(
    text: &str,
    base_url_for: impl Fn(&str) -> String,
) -> Result<Mappings, crate::config::mappings::MappingError> {
    let parsed = Mappings::from_toml(text)?;
    let mut rewritten = text.to_string();
    for api in parsed.order_apis() {
        rewritten = rewritten.replace(
            &format!("base_url = \"{}\"", api.base_url),
            &format!("base_url = \"{}\"", base_url_for(&api.name)),
        );
    }
    Mappings::from_toml(&rewritten)
}
