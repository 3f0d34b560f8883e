//! What both webhook endpoints share: the answer, the settings, the body hash idempotency records compare.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub struct IntakeResponse {
    pub status: u16,
    pub body: Value,
    /// Seconds, for 503 answers.
    pub retry_after: Option<u32>,
}

impl IntakeResponse {
    pub fn error(status: u16, code: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        let mut error = json!({ "code": code, "message": message.into() });
        if let Some(f) = field {
            error["field"] = json!(f);
        }
        Self {
            status,
            body: json!({ "error": error }),
            retry_after: (status == 503).then_some(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// How long an accepted event id is remembered: at least as long as the applier's movement markers
    /// (`apply::MOVEMENT_MARKER_TTL_S`), or an id reused after it is forgotten here but not there would be
    /// answered 202 and then dropped by the applier as a duplicate (the contract promises 409).
    pub idempotency_ttl_s: i64,
    /// How long one attempt owns an event id before another attempt may take it over.
    pub lease_ms: i64,
    /// A retry arriving while the first attempt is still queueing waits this long for its outcome.
    pub in_progress_wait_ms: u64,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl_s: crate::stock::apply::MOVEMENT_MARKER_TTL_S,
            lease_ms: 30_000,
            in_progress_wait_ms: 2_000,
        }
    }
}

pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}
