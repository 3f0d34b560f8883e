//! HTTP adapters shared by the Lambda handler and the local `serve` mode.

use super::{IntakeRequest, IntakeResponse, StoreEventIntake, WebhookIntake};
use crate::centra_webhooks::{CentraWebhookIntake, CentraWebhookRequest, SIGNATURE_HEADER};

pub const STORE_EVENTS_PATH: &str = "/v1/store-events";
pub const CENTRA_WEBHOOKS_PATH: &str = "/v1/centra-webhooks";

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(
    intake: &StoreEventIntake,
    headers: &http::HeaderMap,
    body: &[u8],
) -> http::Response<String> {
    let response = intake
        .handle(IntakeRequest {
            content_type: header(headers, "content-type"),
            webhook_id: header(headers, "webhook-id"),
            webhook_timestamp: header(headers, "webhook-timestamp"),
            webhook_signature: header(headers, "webhook-signature"),
            body,
        })
        .await;
    to_http(response)
}

pub async fn handle_centra(
    intake: &CentraWebhookIntake,
    headers: &http::HeaderMap,
    body: &[u8],
) -> http::Response<String> {
    let response = intake
        .handle(CentraWebhookRequest {
            content_type: header(headers, "content-type"),
            signature: header(headers, SIGNATURE_HEADER),
            body,
        })
        .await;
    to_http(response)
}

/// Dispatches `POST …/v1/store-events` and `POST …/v1/centra-webhooks` (a stage prefix is allowed);
/// anything else answers 404.
pub async fn route(
    intake: &WebhookIntake,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> http::Response<String> {
    if method != http::Method::POST {
        return not_found();
    }
    if path.ends_with(STORE_EVENTS_PATH) {
        handle(&intake.store_events, headers, body).await
    } else if path.ends_with(CENTRA_WEBHOOKS_PATH) {
        handle_centra(&intake.centra_webhooks, headers, body).await
    } else {
        not_found()
    }
}

pub fn to_http(response: IntakeResponse) -> http::Response<String> {
    let mut builder = http::Response::builder()
        .status(response.status)
        .header("content-type", "application/json");
    if let Some(seconds) = response.retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    builder
        .body(response.body.to_string())
        .expect("static response parts are valid")
}

pub fn not_found() -> http::Response<String> {
    to_http(IntakeResponse {
        status: 404,
        body: serde_json::json!({ "error": {
            "code": "not_found",
            "message": "POST /v1/store-events or POST /v1/centra-webhooks"
        } }),
        retry_after: None,
    })
}
