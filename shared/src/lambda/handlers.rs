//! One handler per function: the Lambda event in, the answer out, with the state the function's `main` built
//! once. The mains only build that state and hand these to the runtime, so a test can call each handler with a
//! real payload (`events/*.json`) against in-memory adapters or moto.

use crate::archive::EventArchiver;
use crate::intake::http::{malformed_request, route, WebhookIntake};
use crate::lambda::sqs::{batch_response, dirty_keys, fifo_items};
use crate::orders::sync::OrderSync;
use crate::recon::request::{handle_request, ReconRequest, ReconResponse};
use crate::recon::ReconContext;
use crate::stock::apply::StockApplier;
use crate::stock::push::StockPusher;
use crate::telemetry::metrics::Metrics;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;

/// The error a handler gives the runtime (Lambda reports it as the invocation's error).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Where a function's metrics go after each invocation (EMF lines on stdout).
pub struct MetricsSink<'a> {
    pub metrics: &'a Metrics,
    pub namespace: &'a str,
}

impl MetricsSink<'_> {
    fn flush(&self, now_ms: i64) {
        self.metrics.flush_to_stdout(self.namespace, now_ms);
    }
}

/// webhook-intake: `POST /v1/store-events` and `POST /v1/centra-webhooks` from the HTTP API (payload 2.0) or a
/// Function URL, answered as the contract says (status, JSON body, `Retry-After`).
pub async fn webhook_intake(
    intake: &WebhookIntake,
    sink: &MetricsSink<'_>,
    now_ms: i64,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let response = match request_body(&request) {
        Some(body) => {
            let path = request.raw_path.as_deref().unwrap_or("/");
            route(
                intake,
                &request.request_context.http.method,
                path,
                &request.headers,
                &body,
            )
            .await
        }
        None => malformed_request(),
    };
    sink.flush(now_ms);
    to_api_gateway(response)
}

/// The body's bytes; `None` when a base64 body does not decode.
fn request_body(request: &ApiGatewayV2httpRequest) -> Option<Vec<u8>> {
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    } else {
        Some(body.as_bytes().to_vec())
    }
}

fn to_api_gateway(response: http::Response<String>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    out.body = Some(Body::Text(body));
    out
}

/// stock-apply: a FIFO batch of stock messages applied to the ledger; the failed messages come back.
pub async fn stock_apply(
    applier: &StockApplier,
    sink: &MetricsSink<'_>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let failed = applier.process_batch(fifo_items(event)).await;
    sink.flush(applier.clock.now_millis());
    batch_response(failed)
}

/// stock-push: dirty (store, SKU) keys pushed to Centra until `deadline_ms`; the messages of keys that failed
/// come back.
pub async fn stock_push(
    pusher: &StockPusher,
    sink: &MetricsSink<'_>,
    event: SqsEvent,
    deadline_ms: i64,
) -> SqsBatchResponse {
    let (keys, unreadable) = dirty_keys(event);
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
    sink.flush(pusher.clock.now_millis());
    batch_response(failed)
}

/// order-sync: a FIFO batch of orders-queue messages (kiosk orders, Centra webhooks); the failed ones come back.
pub async fn order_sync(
    sync: &OrderSync,
    sink: &MetricsSink<'_>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let failed = sync.process_batch(fifo_items(event)).await;
    sink.flush(sync.clock.now_millis());
    batch_response(failed)
}

#[cfg(feature = "dynamodb")]
/// event-archive: a batch of the idempotency table's stream → the archive objects. An error fails the whole
/// batch: Lambda retries it from its first record (same object keys), then hands it to the gap queue.
pub async fn event_archive(
    archiver: &EventArchiver,
    sink: &MetricsSink<'_>,
    now_ms: i64,
    event: aws_lambda_events::dynamodb::Event,
) -> Result<(), HandlerError> {
    let (batch_id, changes) = crate::adapters::aws::archive_stream::changes_of(&event);
    let written = archiver.write_batch(&batch_id, &changes).await;
    sink.flush(now_ms);
    written.map(|_| ()).map_err(HandlerError::from)
}

/// reconcile: the EventBridge Scheduler payload (`{"job": …}`, see `recon::request`) runs or continues one job
/// until `deadline_ms`; the answer is the run's summary.
pub async fn reconcile(
    ctx: &ReconContext,
    sink: &MetricsSink<'_>,
    payload: serde_json::Value,
    deadline_ms: i64,
) -> Result<ReconResponse, HandlerError> {
    let request: ReconRequest = serde_json::from_value(payload)
        .map_err(|e| HandlerError::from(format!("reconciliation request: {e}")))?;
    let outcome = handle_request(ctx, &request, deadline_ms).await;
    sink.flush(ctx.clock.now_millis());
    Ok(outcome?)
}
