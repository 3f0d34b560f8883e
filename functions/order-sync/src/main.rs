//! Order sync: orders FIFO SQS trigger (group = Cloudshelf order / Centra object) → Centra Order API and
//! Cloudshelf `upsertOrders`, partial batch response.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::handlers::{order_sync, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let sync = Arc::new(shared::wiring::orders::order_sync_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (sync, metrics, namespace) = (sync.clone(), metrics.clone(), namespace.clone());
        async move {
            let sink = MetricsSink {
                metrics: &metrics,
                namespace: &namespace,
            };
            Ok::<_, Error>(order_sync(&sync, &sink, event.payload).await)
        }
    }))
    .await
}
