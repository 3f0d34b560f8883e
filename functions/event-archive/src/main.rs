//! Event archive: the idempotency table's stream (completed intake records, applied-movement markers) →
//! gzip JSON lines per store and day in the archive bucket (see `shared::archive`).

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::core::clock::system_clock;
use shared::lambda::handlers::{event_archive, MetricsSink};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let archiver = Arc::new(shared::wiring::aws::archiver_from_env(metrics.clone()).await?);
    let namespace = Arc::new(shared::config::env::metrics_namespace());
    let clock = system_clock();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let (archiver, metrics, namespace) = (archiver.clone(), metrics.clone(), namespace.clone());
        let now_ms = clock.now_millis();
        async move {
            let sink = MetricsSink {
                metrics: &metrics,
                namespace: &namespace,
            };
            event_archive(&archiver, &sink, now_ms, event.payload).await
        }
    }))
    .await
}
