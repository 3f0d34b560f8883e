//! Webhook intake: `POST /v1/store-events` and `POST /v1/centra-webhooks` (API Gateway HTTP API or Function URL).

use lambda_http::{service_fn, Error, Request};
use shared::core::clock::{Clock, SystemClock};
use shared::intake::http as http_adapter;
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let intake = Arc::new(shared::wiring::aws::intake_from_env(metrics.clone()).await?);
    let namespace = shared::config::env::metrics_namespace();
    lambda_http::run(service_fn(move |request: Request| {
        let (intake, metrics, namespace) = (intake.clone(), metrics.clone(), namespace.clone());
        async move {
            let response = http_adapter::route(
                &intake,
                request.method(),
                request.uri().path(),
                request.headers(),
                request.body().as_ref(),
            )
            .await;
            metrics.flush_to_stdout(&namespace, SystemClock.now_millis());
            Ok::<_, Error>(response)
        }
    }))
    .await
}
