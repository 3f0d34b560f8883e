//! Stock apply: FIFO SQS trigger (group = SKU) → per-(store, SKU) ledger, partial batch response.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::sqs::{batch_response, fifo_items};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let applier = Arc::new(shared::wiring::aws::applier_from_env(metrics.clone()).await?);
    let namespace = shared::config::env::metrics_namespace();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (applier, metrics, namespace) = (applier.clone(), metrics.clone(), namespace.clone());
        async move {
            let failed = applier.process_batch(fifo_items(event.payload)).await;
            metrics.flush_to_stdout(&namespace, applier.clock.now_millis());
            Ok::<SqsBatchResponse, Error>(batch_response(failed))
        }
    }))
    .await
}
