//! HTTP adapters shared by the Lambda handler and the local `serve` mode.

use crate::intake::centra_webhooks::{CentraWebhookIntake, CentraWebhookRequest, SIGNATURE_HEADER};
use crate::intake::contract::IntakeResponse;
use crate::intake::store_events::{IntakeRequest, StoreEventIntake};

/// Everything the webhook-intake function serves: store events and Centra's webhooks.
pub struct WebhookIntake {
    pub store_events: StoreEventIntake,
    pub centra_webhooks: CentraWebhookIntake,
}

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

/// Dispatches `POST …/v1/store-events` and `POST …/v1/centra-webhooks` (a stage prefix is allowed); another
/// method on those paths answers 405 (with `Allow: POST`), any other path 404, both with the JSON error body.
pub async fn route(
    intake: &WebhookIntake,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> http::Response<String> {
    let known = path.ends_with(STORE_EVENTS_PATH) || path.ends_with(CENTRA_WEBHOOKS_PATH);
    if !known {
        return not_found();
    }
    if method != http::Method::POST {
        return method_not_allowed();
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

/// The contract's JSON error as an HTTP response (also for errors of the HTTP layer itself).
pub fn error(status: u16, code: &str, message: &str) -> http::Response<String> {
    to_http(IntakeResponse::error(status, code, None, message))
}

pub fn not_found() -> http::Response<String> {
    error(
        404,
        "not_found",
        "POST /v1/store-events or POST /v1/centra-webhooks",
    )
}

pub fn method_not_allowed() -> http::Response<String> {
    let mut response = error(
        405,
        "method_not_allowed",
        "only POST is allowed on this path",
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    response
}

/// 413 `payload_too_large`: for a layer that refuses the body before the intake sees it.
pub fn payload_too_large() -> http::Response<String> {
    error(413, "payload_too_large", "body exceeds 256 KiB")
}

/// 400 `malformed_request`: the request's framing or body could not be read (not a validation error).
pub fn malformed_request() -> http::Response<String> {
    error(
        400,
        "malformed_request",
        "the request body could not be read (bad framing or a broken connection)",
    )
}
