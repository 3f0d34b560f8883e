//! Reconciliation: invoked by EventBridge Scheduler with `{"job": "...", ...}` (see
//! `shared::recon::request`), runs or continues one job until the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::recon::request::{handle_request, ReconRequest, ReconResponse};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let ctx = Arc::new(shared::wiring::recon::recon_from_env(metrics.clone()).await?);
    let namespace = shared::config::env::metrics_namespace();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (ctx, metrics, namespace) = (ctx.clone(), metrics.clone(), namespace.clone());
        async move {
            let request: ReconRequest = serde_json::from_value(event.payload)
                .map_err(|e| Error::from(format!("reconciliation request: {e}")))?;
            let deadline_ms = event.context.deadline as i64;
            let outcome = handle_request(&ctx, &request, deadline_ms).await;
            metrics.flush_to_stdout(&namespace, ctx.clock.now_millis());
            Ok::<ReconResponse, Error>(outcome?)
        }
    }))
    .await
}
