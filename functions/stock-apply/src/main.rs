//! Stock apply: FIFO SQS trigger (group = SKU) → per-(store, SKU) ledger, partial batch response.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::handlers::{stock_apply, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let applier = Arc::new(shared::wiring::aws::applier_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (applier, metrics, namespace) = (applier.clone(), metrics.clone(), namespace.clone());
        async move {
            let sink = MetricsSink {
                metrics: &metrics,
                namespace: &namespace,
            };
            Ok::<_, Error>(stock_apply(&applier, &sink, event.payload).await)
        }
    }))
    .await
}
