//! Stock push: standard SQS trigger of dirty (store, SKU) keys → coalesced Centra mutations.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::handlers::{stock_push, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

/// Stop starting Centra calls this long before Lambda's deadline.
const DEADLINE_MARGIN_MS: i64 = 15_000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let pusher = Arc::new(shared::wiring::aws::pusher_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (pusher, metrics, namespace) = (pusher.clone(), metrics.clone(), namespace.clone());
        async move {
            let sink = MetricsSink {
                metrics: &metrics,
                namespace: &namespace,
            };
            let deadline_ms = event.context.deadline as i64 - DEADLINE_MARGIN_MS;
            Ok::<_, Error>(stock_push(&pusher, &sink, event.payload, deadline_ms).await)
        }
    }))
    .await
}
