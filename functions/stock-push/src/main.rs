//! Stock push: standard SQS trigger of dirty (store, SKU) keys → coalesced Centra mutations.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::lambda::sqs::{batch_response, dirty_keys};
use shared::telemetry::metrics::Metrics;
use std::sync::Arc;

/// Stop starting Centra calls this long before Lambda's deadline.
const DEADLINE_MARGIN_MS: i64 = 15_000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::logs::init_json_logs();
    let metrics = Arc::new(Metrics::new());
    let pusher = Arc::new(shared::wiring::aws::pusher_from_env(metrics.clone()).await?);
    let namespace = shared::config::env::metrics_namespace();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (pusher, metrics, namespace) = (pusher.clone(), metrics.clone(), namespace.clone());
        async move {
            let deadline_ms = event.context.deadline as i64 - DEADLINE_MARGIN_MS;
            let (keys, unreadable) = dirty_keys(event.payload);
            for id in &unreadable {
                // A dirty key only says "look here"; the ledger still holds the units and reconciliation finds them.
                tracing::error!(message_id = %id, "unreadable push-queue message dropped");
            }
            let report = pusher
                .push_keys(keys.iter().map(|(k, _)| k.clone()).collect(), deadline_ms)
                .await;
            let failed = keys
                .into_iter()
                .filter(|(k, _)| report.failed_keys.contains(k))
                .flat_map(|(_, ids)| ids);
            metrics.flush_to_stdout(&namespace, pusher.clock.now_millis());
            Ok::<SqsBatchResponse, Error>(batch_response(failed))
        }
    }))
    .await
}
