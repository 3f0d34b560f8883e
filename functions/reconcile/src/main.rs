//! Reconciliation: invoked by EventBridge Scheduler with `{"job": "...", ...}` (see
//! `shared::recon::request`), runs or continues one job until the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::handlers::{reconcile, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let ctx = Arc::new(shared::wiring::recon::recon_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (ctx, metrics, namespace) = (ctx.clone(), metrics.clone(), namespace.clone());
        async move {
            let sink = MetricsSink {
                metrics: &metrics,
                namespace: &namespace,
            };
            let deadline_ms = event.context.deadline as i64;
            reconcile(&ctx, &sink, event.payload, deadline_ms).await
        }
    }))
    .await
}
