//! Webhook intake: `POST /v1/store-events` and `POST /v1/centra-webhooks` (API Gateway HTTP API or Function URL).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::core::clock::{Clock, SystemClock};
use shared::lambda::handlers::{webhook_intake, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let intake = Arc::new(shared::wiring::aws::intake_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let (intake, metrics, namespace) = (intake.clone(), metrics.clone(), namespace.clone());
            async move {
                let sink = MetricsSink {
                    metrics: &metrics,
                    namespace: &namespace,
                };
                Ok::<_, Error>(
                    webhook_intake(&intake, &sink, SystemClock.now_millis(), event.payload).await,
                )
            }
        },
    ))
    .await
}
