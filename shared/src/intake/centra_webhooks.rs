//! Centra webhooks: `POST /v1/centra-webhooks` (docs/orders.md §3, the "Integration API" plugin version).
//!
//! Centra posts `application/x-www-form-urlencoded` bodies, `payload=<url-encoded JSON>`, holding
//! `{"events":[{"type":"order","action":"update","date":"2021-01-29 14:40:58.628033","id":2735}, …]}` — ids only.
//! The header `X-Centra-Signature: t=<unix>,v1=<hex>` carries `HMAC-SHA256(endpoint secret, "<t>." + raw body)`:
//! it is checked on the raw bytes before anything is decoded, in constant time, within ±300 s.
//!
//! Centra waits 5 s, retries at most 3 times (none by default) and then drops the call, so the answer must be
//! fast and honest: events of the types the integration handles (`order`, `shipment`, `return`) are deduplicated
//! on `(type, action, id, date)` through the idempotency store (concurrently) and sent to the orders FIFO queue in
//! one `send_all`; 200 only once they are queued, 503 (Centra retries) when the queue fails. Other types
//! (`customer`, `account`, `check_first`, `allocation_request`, storefront cache keys, …) are acknowledged and
//! counted, never failed. A handler re-fetches the current state by id, so a duplicate that slips through is
//! harmless; reconciliation catches calls Centra never delivered.

use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::events::orders::{CentraWebhookEvent, OrderQueueMessage};
use crate::events::store_events::{invalid, ValidationError, MAX_BODY_BYTES};
use crate::intake::contract::{body_hash, IntakeResponse, IntakeSettings};
use crate::stock::ports::{
    AcceptedRequest, AcquireOutcome, FifoMessage, IdempotencyRecord, IdempotencyStatus,
    IdempotencyStore, OrderQueue, CENTRA_PARTITION,
};
use crate::telemetry::metrics::{names, Metrics};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// The signature header (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-centra-signature";
/// Tolerance between Centra's `t` and our clock, both ways (Centra's storefront accelerator uses 5 minutes).
pub const TOLERANCE_SECONDS: i64 = 300;
/// Event types queued for the order handlers; every other type is acknowledged and ignored.
pub const QUEUED_TYPES: [&str; 3] = ["order", "shipment", "return"];

const MAX_ACTION: usize = 64;
const MAX_ID: usize = 64;
const MAX_DATE: usize = 64;
const POLL_MS: u64 = 50;

// ---------------------------------------------------------------- signature

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CentraSignatureError {
    #[error("header X-Centra-Signature is missing")]
    MissingHeader,
    #[error("X-Centra-Signature must look like t=<unix seconds>,v1=<hex>")]
    MalformedHeader,
    #[error("X-Centra-Signature t must be Unix seconds")]
    BadTimestamp,
    #[error("X-Centra-Signature t is more than 300 s away from the receiver's clock")]
    StaleTimestamp,
    #[error("X-Centra-Signature holds no valid v1 signature")]
    NoValidSignature,
}

impl CentraSignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature_header",
            Self::MalformedHeader => "invalid_signature_header",
            Self::BadTimestamp => "invalid_timestamp",
            Self::StaleTimestamp => "timestamp_out_of_tolerance",
            Self::NoValidSignature => "invalid_signature",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("CENTRA_WEBHOOK_SECRET holds no secret (comma-separated endpoint secrets expected)")]
pub struct CentraSecretError;

/// The endpoint secrets of the Centra Webhook plugin(s). Several are accepted while one is rotated out.
#[derive(Clone)]
pub struct CentraSignatureVerifier {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for CentraSignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "CentraSignatureVerifier({} keys)", self.keys.len())
    }
}

impl CentraSignatureVerifier {
    /// `secrets`: the endpoint secrets exactly as entered in Centra (the raw text is the HMAC key).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, CentraSecretError> {
        let keys: Vec<HmacSha256> = secrets
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .map(|s| HmacSha256::new_from_slice(s.as_bytes()).expect("HMAC takes any key length"))
            .collect();
        if keys.is_empty() {
            return Err(CentraSecretError);
        }
        Ok(Self { keys })
    }

    /// `CENTRA_WEBHOOK_SECRET`: one or more secrets, comma-separated (surrounding whitespace is trimmed, so a
    /// secret cannot itself contain a comma or start/end with a space).
    pub fn from_config(value: &str) -> Result<Self, CentraSecretError> {
        Self::new(&value.split(',').collect::<Vec<_>>())
    }

    /// Verifies `X-Centra-Signature` against the raw request body.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_seconds: i64,
    ) -> Result<(), CentraSignatureError> {
        let header = header.ok_or(CentraSignatureError::MissingHeader)?;
        let mut timestamp: Option<&str> = None;
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        for part in header.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                return Err(CentraSignatureError::MalformedHeader);
            };
            match name.trim() {
                "t" if timestamp.is_some() => return Err(CentraSignatureError::MalformedHeader),
                "t" => timestamp = Some(value.trim()),
                "v1" => {
                    let mut mac = [0u8; 32];
                    // A value that is not 64 hex digits cannot match; it is skipped, not an error.
                    if hex::decode_to_slice(value.trim(), &mut mac).is_ok() {
                        candidates.push(mac);
                    }
                }
                _ => {} // future schemes (v2, …)
            }
        }
        let timestamp = timestamp.ok_or(CentraSignatureError::MalformedHeader)?;
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CentraSignatureError::BadTimestamp);
        }
        let t: i64 = timestamp
            .parse()
            .map_err(|_| CentraSignatureError::BadTimestamp)?;
        if (now_seconds - t).abs() > TOLERANCE_SECONDS {
            return Err(CentraSignatureError::StaleTimestamp);
        }
        if candidates.is_empty() {
            return Err(CentraSignatureError::NoValidSignature);
        }
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            // Every candidate is compared (no early exit on content); `ct_eq` is constant-time per pair.
            let mut ok = subtle::Choice::from(0u8);
            for candidate in &candidates {
                ok |= subtle::ConstantTimeEq::ct_eq(candidate.as_slice(), expected.as_slice());
            }
            if bool::from(ok) {
                return Ok(());
            }
        }
        Err(CentraSignatureError::NoValidSignature)
    }
}

/// Signs like Centra: the `X-Centra-Signature` value `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`
/// (tests, the local run and the CLI use it).
pub fn sign_centra(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------- form and payload

/// Hex digit values; `INVALID` for every other byte.
const INVALID: u8 = 0xFF;
const HEX: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space, `%XX` a byte. A `%` not
/// followed by two hex digits is refused (`None`) rather than passed through.
pub fn form_decode(raw: &[u8]) -> Option<Vec<u8>> {
    // Decoding only shrinks: write into a buffer of the input's size, then cut it to what was written. (A plain
    // indexed loop: Centra's JSON is about one escape in three bytes, so per-byte overhead is what counts.)
    let mut out = vec![0u8; raw.len()];
    let (mut i, mut o) = (0, 0);
    while i < raw.len() {
        let b = raw[i];
        out[o] = match b {
            b'%' => {
                if i + 2 >= raw.len() {
                    return None;
                }
                let (hi, lo) = (HEX[raw[i + 1] as usize], HEX[raw[i + 2] as usize]);
                if hi == INVALID || lo == INVALID {
                    return None;
                }
                i += 2;
                hi << 4 | lo
            }
            b'+' => b' ',
            b => b,
        };
        i += 1;
        o += 1;
    }
    out.truncate(o);
    Some(out)
}

/// The decoded `payload` field of a form body (other fields are ignored; `payload` twice is refused).
pub fn form_payload(body: &[u8]) -> Result<Vec<u8>, ValidationError> {
    let mut payload = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name = form_decode(name).ok_or_else(|| {
            invalid(
                "malformed_form",
                "$",
                "a form field name has an invalid %-escape",
            )
        })?;
        if name != b"payload" {
            continue;
        }
        if payload.is_some() {
            return Err(invalid(
                "malformed_form",
                "payload",
                "appears more than once",
            ));
        }
        payload = Some(form_decode(value).ok_or_else(|| {
            invalid(
                "malformed_form",
                "payload",
                "has an invalid %-escape (expected %XX with two hex digits)",
            )
        })?);
    }
    payload.ok_or_else(|| {
        invalid(
            "missing_field",
            "payload",
            "the form has no payload field (expected payload=<url-encoded JSON>)",
        )
    })
}

/// The events of one webhook call: those to queue (order, shipment, return) and how many were ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CentraWebhookBatch {
    pub events: Vec<CentraWebhookEvent>,
    pub ignored: usize,
}

/// A text member of an event as found: absent (or `null`), not a string, or a string.
enum Text<'a> {
    Missing,
    NotString,
    Str(&'a str),
}

/// An `id` member as found.
enum Id<'a> {
    Missing,
    Unsigned(u64),
    /// A number that is negative or not an integer.
    BadNumber,
    Str(&'a str),
    Other,
}

impl<'a> Text<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None | Some(Value::Null) => Text::Missing,
            Some(Value::String(s)) => Text::Str(s),
            Some(_) => Text::NotString,
        }
    }
}

impl<'a> Id<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None | Some(Value::Null) => Id::Missing,
            Some(Value::Number(n)) => n.as_u64().map_or(Id::BadNumber, Id::Unsigned),
            Some(Value::String(s)) => Id::Str(s),
            Some(_) => Id::Other,
        }
    }
}

fn event_path(i: usize, name: &str) -> String {
    format!("payload.events[{i}].{name}")
}

fn check_text<'a>(
    text: Text<'a>,
    i: usize,
    name: &str,
    max: usize,
) -> Result<&'a str, ValidationError> {
    let value = match text {
        Text::Missing => return Err(invalid("missing_field", event_path(i, name), "is required")),
        Text::NotString => {
            return Err(invalid(
                "invalid_type",
                event_path(i, name),
                "must be a string",
            ))
        }
        Text::Str(s) => s,
    };
    if value.is_empty()
        || value.len() > max
        || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(invalid(
            "invalid_value",
            event_path(i, name),
            format!("must be 1-{max} printable ASCII characters"),
        ));
    }
    Ok(value)
}

fn check_id(id: Id<'_>, i: usize) -> Result<String, ValidationError> {
    match id {
        Id::Missing => Err(invalid("missing_field", event_path(i, "id"), "is required")),
        Id::Unsigned(n) => Ok(n.to_string()),
        Id::BadNumber => Err(invalid(
            "invalid_value",
            event_path(i, "id"),
            "must be a non-negative integer or an id string",
        )),
        Id::Str(s) => {
            let ok = !s.is_empty()
                && s.len() <= MAX_ID
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if ok {
                Ok(s.to_string())
            } else {
                Err(invalid(
                    "invalid_value",
                    event_path(i, "id"),
                    format!("must be 1-{MAX_ID} characters of A-Z a-z 0-9 - _ ."),
                ))
            }
        }
        Id::Other => Err(invalid(
            "invalid_type",
            event_path(i, "id"),
            "must be an integer or a string",
        )),
    }
}

/// One event: `type` always; `action`, `id` and `date` only for queued types (other types are acknowledged
/// whatever else they carry: never fail a call for a type nobody here handles).
fn push_event(
    batch: &mut CentraWebhookBatch,
    i: usize,
    kind: Text<'_>,
    action: Text<'_>,
    id: Id<'_>,
    date: Text<'_>,
) -> Result<(), ValidationError> {
    let kind = match kind {
        Text::Missing => {
            return Err(invalid(
                "missing_field",
                event_path(i, "type"),
                "is required",
            ))
        }
        Text::NotString => {
            return Err(invalid(
                "invalid_type",
                event_path(i, "type"),
                "must be a string",
            ))
        }
        Text::Str(s) => s,
    };
    if !QUEUED_TYPES.contains(&kind) {
        batch.ignored += 1;
        return Ok(());
    }
    let action = check_text(action, i, "action", MAX_ACTION)?;
    let id = check_id(id, i)?;
    let date = check_text(date, i, "date", MAX_DATE)?;
    batch.events.push(CentraWebhookEvent {
        kind: kind.to_string(),
        action: action.to_string(),
        id,
        date: date.to_string(),
    });
    Ok(())
}

/// The fast path: a typed deserialisation that borrows every string and builds no JSON tree. It reads only the
/// common shape (every event with string `type`, `action`, `date` and an integer or string `id`, no escapes in
/// them); anything else fails here and goes through the tree walk.
mod raw {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Payload<'a> {
        #[serde(borrow)]
        pub events: Vec<Event<'a>>,
    }

    #[derive(Deserialize)]
    pub struct Event<'a> {
        #[serde(rename = "type")]
        pub kind: &'a str,
        pub action: &'a str,
        pub date: &'a str,
        #[serde(borrow)]
        pub id: RawId<'a>,
    }

    /// An unsigned integer or a string.
    pub enum RawId<'a> {
        Unsigned(u64),
        Str(&'a str),
    }

    impl<'de: 'a, 'a> Deserialize<'de> for RawId<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = RawId<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an unsigned integer or a string")
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                    Ok(RawId::Unsigned(v))
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(RawId::Str(v))
                }
            }
            d.deserialize_any(V)
        }
    }
}

/// The reference path: a walk over the JSON tree that names the field of every refusal.
fn parse_tree(payload: &[u8]) -> Result<CentraWebhookBatch, ValidationError> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        invalid(
            "malformed_json",
            "payload",
            format!("is not valid JSON: {e}"),
        )
    })?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("invalid_type", "payload", "must be a JSON object"))?;
    let events = match obj.get("events") {
        None | Some(Value::Null) => {
            return Err(invalid("missing_field", "payload.events", "is required"))
        }
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(invalid(
                "invalid_type",
                "payload.events",
                "must be an array",
            ))
        }
    };
    let mut batch = CentraWebhookBatch {
        events: Vec::with_capacity(events.len()),
        ignored: 0,
    };
    for (i, event) in events.iter().enumerate() {
        let eo: &Map<String, Value> = event.as_object().ok_or_else(|| {
            invalid(
                "invalid_type",
                format!("payload.events[{i}]"),
                "must be an object",
            )
        })?;
        push_event(
            &mut batch,
            i,
            Text::of(eo.get("type")),
            Text::of(eo.get("action")),
            Id::of(eo.get("id")),
            Text::of(eo.get("date")),
        )?;
    }
    Ok(batch)
}

/// Parses a webhook body (`payload=<url-encoded JSON>`). Events of queued types must carry `action`, `id` and
/// `date`; other types only need a `type`. Unknown fields are tolerated (Centra adds some, e.g. `data`).
pub fn parse_centra_webhook(body: &[u8]) -> Result<CentraWebhookBatch, ValidationError> {
    let payload = form_payload(body)?;
    // The typed pass accepts a subset of what the tree walk accepts and validates with the same checks; whatever
    // it cannot read (a wrong type somewhere, a duplicate key, broken JSON) goes through the tree walk, which
    // either accepts it too or names the field.
    let Ok(raw) = serde_json::from_slice::<raw::Payload>(&payload) else {
        return parse_tree(&payload);
    };
    let mut batch = CentraWebhookBatch {
        events: Vec::with_capacity(raw.events.len()),
        ignored: 0,
    };
    for (i, e) in raw.events.iter().enumerate() {
        let id = match e.id {
            raw::RawId::Unsigned(n) => Id::Unsigned(n),
            raw::RawId::Str(s) => Id::Str(s),
        };
        push_event(
            &mut batch,
            i,
            Text::Str(e.kind),
            Text::Str(e.action),
            id,
            Text::Str(e.date),
        )?;
    }
    Ok(batch)
}

/// The orders-queue message of a Centra event: grouped by the object (`centra-<type>-<id>`), deduplicated by a
/// hash of `dedupe_key()`.
pub fn event_message(event: &CentraWebhookEvent) -> FifoMessage {
    FifoMessage {
        group_id: format!("centra-{}-{}", event.kind, event.id),
        dedup_id: hex::encode(Sha256::digest(event.dedupe_key().as_bytes())),
        body: serde_json::to_string(&OrderQueueMessage::CentraEvent(event.clone()))
            .expect("event message serialises"),
    }
}

// ---------------------------------------------------------------- the endpoint

#[derive(Debug, Clone, Copy)]
pub struct CentraWebhookRequest<'a> {
    pub content_type: Option<&'a str>,
    /// `X-Centra-Signature`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

pub struct CentraWebhookIntake {
    /// `None` (`CENTRA_WEBHOOK_SECRET` unset): every call answers 503 `centra_webhooks_disabled`.
    pub verifier: Option<CentraSignatureVerifier>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// `None` (`ORDERS_QUEUE_URL` unset): signed calls answer 503 `orders_disabled`.
    pub orders: Option<Arc<dyn OrderQueue>>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// TTL (7 days), lease, and how long an event another call is queueing is waited for.
    pub settings: IntakeSettings,
}

enum Claim {
    Owned {
        key: String,
        owner: String,
    },
    Duplicate,
    /// Another call holds the event and did not finish within the wait.
    Busy,
    Failed(BackendError),
}

/// What claiming a call's events came to: the records this call owns (key, owner) and their
/// messages, and how many were duplicates of earlier calls or held by a concurrent one.
#[derive(Default)]
struct Claimed {
    owned: Vec<(String, String)>,
    messages: Vec<FifoMessage>,
    duplicates: usize,
    busy: usize,
}

/// The same event twice in one call ("the same order can send the same action multiple times"):
/// the first of each, and how many repeats were dropped.
fn dedupe_in_call(events: Vec<CentraWebhookEvent>) -> (Vec<CentraWebhookEvent>, usize) {
    let mut seen = HashSet::with_capacity(events.len());
    let mut duplicates = 0usize;
    let mut unique = Vec::with_capacity(events.len());
    for event in events {
        if seen.insert(event.dedupe_key()) {
            unique.push(event);
        } else {
            duplicates += 1;
        }
    }
    (unique, duplicates)
}

impl CentraWebhookIntake {
    pub async fn handle(&self, req: CentraWebhookRequest<'_>) -> IntakeResponse {
        self.metrics.count(names::CENTRA_WEBHOOKS_RECEIVED, 1);
        let response = self.handle_inner(req).await;
        match response.status {
            400..=499 => self.metrics.count(names::CENTRA_WEBHOOKS_REJECTED, 1),
            503 => self.metrics.count(names::INTAKE_QUEUE_FAILURES, 1),
            _ => {}
        }
        response
    }

    async fn handle_inner(&self, req: CentraWebhookRequest<'_>) -> IntakeResponse {
        let (orders, batch) = match self.accept_request(&req) {
            Ok(accepted) => accepted,
            Err(response) => return response,
        };

        let (unique, mut duplicates) = dedupe_in_call(batch.events);
        let claimed = match self.claim_all(&unique, req.body).await {
            Ok(claimed) => claimed,
            Err(response) => return response,
        };
        duplicates += claimed.duplicates;
        let (messages, busy) = (&claimed.messages, claimed.busy);
        if !messages.is_empty() {
            if let Err(response) = self.queue_owned(orders.as_ref(), &claimed).await {
                return response;
            }
        }
        tracing::info!(
            queued = messages.len(),
            duplicates,
            ignored = batch.ignored,
            busy,
            "Centra webhook processed"
        );
        if busy > 0 {
            // Queued what it could; the rest belongs to a concurrent call that has not finished. Centra retries,
            // and the retry finds them completed (duplicates) or released (queued then).
            return IntakeResponse::error(
                503,
                "in_progress",
                None,
                format!("{busy} events are being queued by a concurrent call; retry"),
            );
        }
        self.metrics
            .count(names::CENTRA_WEBHOOK_DUPLICATES, duplicates as u64);
        self.metrics
            .count(names::CENTRA_WEBHOOK_IGNORED, batch.ignored as u64);
        IntakeResponse {
            status: 200,
            body: json!({
                "status": "accepted",
                "queued": messages.len(),
                "duplicates": duplicates,
                "ignored": batch.ignored,
            }),
            retry_after: None,
        }
    }

    /// Size, configuration, media type, signature, orders queue, then the form itself, in that
    /// order; the `Err` is the answer.
    fn accept_request(
        &self,
        req: &CentraWebhookRequest<'_>,
    ) -> Result<(&Arc<dyn OrderQueue>, CentraWebhookBatch), IntakeResponse> {
        if req.body.len() > MAX_BODY_BYTES {
            return Err(IntakeResponse::error(
                413,
                "payload_too_large",
                None,
                "body exceeds 256 KiB",
            ));
        }
        let Some(verifier) = &self.verifier else {
            tracing::error!("Centra webhook received but CENTRA_WEBHOOK_SECRET is not configured");
            return Err(IntakeResponse::error(
                503,
                "centra_webhooks_disabled",
                None,
                "Centra webhooks are not configured in this deployment",
            ));
        };
        let is_form = req.content_type.is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        if !is_form {
            return Err(IntakeResponse::error(
                415,
                "unsupported_media_type",
                None,
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let now_ms = self.clock.now_millis();
        if let Err(e) = verifier.verify(req.signature, req.body, now_ms.div_euclid(1000)) {
            tracing::warn!(code = e.code(), "Centra webhook signature refused");
            return Err(IntakeResponse::error(401, e.code(), None, e.to_string()));
        }
        let Some(orders) = &self.orders else {
            tracing::error!("Centra webhook received but ORDERS_QUEUE_URL is not configured");
            return Err(IntakeResponse::error(
                503,
                "orders_disabled",
                None,
                "the orders queue is not configured in this deployment",
            ));
        };
        match parse_centra_webhook(req.body) {
            Ok(b) => Ok((orders, b)),
            Err(e) => {
                tracing::info!(field = %e.field, code = e.code, "Centra webhook rejected");
                Err(IntakeResponse::error(
                    400,
                    e.code,
                    Some(&e.field),
                    e.message,
                ))
            }
        }
    }

    /// Claims every event at once. One idempotency failure releases what was claimed and
    /// answers 503.
    async fn claim_all(
        &self,
        unique: &[CentraWebhookEvent],
        body: &[u8],
    ) -> Result<Claimed, IntakeResponse> {
        let claims = futures::future::join_all(unique.iter().map(|e| self.claim(e, body))).await;
        let mut claimed = Claimed::default();
        let mut failure = None;
        for (event, claim) in unique.iter().zip(claims) {
            match claim {
                Claim::Owned { key, owner } => {
                    claimed.messages.push(event_message(event));
                    claimed.owned.push((key, owner));
                }
                Claim::Duplicate => claimed.duplicates += 1,
                Claim::Busy => claimed.busy += 1,
                Claim::Failed(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            tracing::error!(error = %e, "idempotency store unavailable");
            self.release_all(&claimed.owned).await;
            return Err(IntakeResponse::error(
                503,
                "unavailable",
                None,
                "the events could not be recorded; retry",
            ));
        }
        Ok(claimed)
    }

    /// Sends the claimed events' messages and completes their records; a queue failure
    /// releases them and answers 503.
    async fn queue_owned(
        &self,
        orders: &dyn OrderQueue,
        claimed: &Claimed,
    ) -> Result<(), IntakeResponse> {
        let messages = &claimed.messages;
        if let Err(e) = orders.send_all(messages).await {
            tracing::error!(error = %e, events = messages.len(), "orders queue refused Centra events");
            self.release_all(&claimed.owned).await;
            return Err(IntakeResponse::error(
                503,
                "queue_unavailable",
                None,
                "the events could not be queued; retry",
            ));
        }
        self.metrics
            .count(names::CENTRA_WEBHOOK_EVENTS_QUEUED, messages.len() as u64);
        self.complete_all(&claimed.owned).await;
        Ok(())
    }

    /// Conditional acquire of one event. A record another call holds is polled for a short while: completed →
    /// duplicate; released or its lease over → acquired here (and queued by this call).
    async fn claim(&self, event: &CentraWebhookEvent, body: &[u8]) -> Claim {
        let dedupe_key = event.dedupe_key();
        let key = format!("centra-event#{dedupe_key}");
        let hash = body_hash(dedupe_key.as_bytes());
        let owner = uuid::Uuid::new_v4().to_string();
        let polls = self.settings.in_progress_wait_ms / POLL_MS;
        let mut attempt = 0;
        loop {
            let now_ms = self.clock.now_millis();
            let record = IdempotencyRecord {
                key: key.clone(),
                status: IdempotencyStatus::InProgress,
                body_hash: hash.clone(),
                owner: owner.clone(),
                lease_until_ms: now_ms + self.settings.lease_ms,
                expires_at_s: now_ms.div_euclid(1000) + self.settings.idempotency_ttl_s,
                accepted: Some(AcceptedRequest {
                    store: CENTRA_PARTITION.to_string(),
                    event_type: format!("centra:{}.{}", event.kind, event.action),
                    received_at_ms: now_ms,
                    webhook_timestamp: None,
                    body: body.to_vec(),
                }),
            };
            match self.idempotency.acquire(&record, now_ms).await {
                Ok(AcquireOutcome::Acquired) => return Claim::Owned { key, owner },
                Ok(AcquireOutcome::Existing(r)) if r.status == IdempotencyStatus::Completed => {
                    return Claim::Duplicate
                }
                Ok(AcquireOutcome::Existing(_)) if attempt < polls => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
                }
                Ok(AcquireOutcome::Existing(_)) => return Claim::Busy,
                Err(e) => return Claim::Failed(e),
            }
        }
    }

    async fn release_all(&self, owned: &[(String, String)]) {
        let results = futures::future::join_all(
            owned
                .iter()
                .map(|(key, owner)| self.idempotency.release(key, owner)),
        )
        .await;
        for e in results.into_iter().filter_map(Result::err) {
            // The lease still ends by itself, after which a retry goes through.
            tracing::warn!(error = %e, "could not release a Centra event record");
        }
    }

    async fn complete_all(&self, owned: &[(String, String)]) {
        let expires = self.clock.now_seconds() + self.settings.idempotency_ttl_s;
        let results = futures::future::join_all(
            owned
                .iter()
                .map(|(key, owner)| self.idempotency.complete(key, owner, expires)),
        )
        .await;
        for result in results {
            match result {
                Ok(true) => {}
                // Queued all the same; a re-queue is absorbed by the dedup id and the idempotent handler.
                Ok(false) => {
                    tracing::warn!("a Centra event lease was taken over before completion")
                }
                Err(e) => tracing::warn!(error = %e, "could not mark a Centra event completed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_pass_agrees_with_the_tree_walk() {
        let payloads = [
            r#"{"events":[{"type":"order","action":"update","date":"2021-01-29 14:40:58.628033","id":2735}]}"#,
            r#"{"events":[{"type":"shipment","action":"good_to_go","date":"d","id":"2735-1","x":1}]}"#,
            r#"{"events":[{"type":"customer","action":"update","date":"d","id":5}]}"#,
            r#"{"events":[{"type":"products"}]}"#,
            r#"{"events":[{"type":"order","action":"update","date":"d","id":-1}]}"#,
            r#"{"events":[{"type":"order","action":"update","date":"d","id":"a b"}]}"#,
            r#"{"events":[{"type":"order","action":"","date":"d","id":1}]}"#,
            r#"{"events":[{"type":"order","action":"update","date":"d x","id":1}]}"#,
            r#"{"events":[{"type":"order","action":"update","date":null,"id":1}]}"#,
            r#"{"events":[{"type":"order","type":"customer","action":"update","date":"d","id":1}]}"#,
            r#"{"events":[]}"#,
            r#"{"events":null}"#,
            r#"{}"#,
        ];
        for json in payloads {
            let body = format!("payload={}", json.replace('%', "%25").replace('&', "%26"));
            let tree = parse_tree(json.as_bytes());
            assert_eq!(parse_centra_webhook(body.as_bytes()), tree, "{json}");
        }
        // The common shape takes the typed pass.
        let json = payloads[0];
        assert!(serde_json::from_str::<raw::Payload>(json).is_ok());
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode(b"a+b%7B%7d").unwrap(), b"a b{}");
        assert!(form_decode(b"%7").is_none());
        assert!(form_decode(b"%zz").is_none());
        assert_eq!(
            form_payload(b"x=1&payload=%7B%7D&y").unwrap(),
            b"{}".to_vec()
        );
        assert_eq!(form_payload(b"x=1").unwrap_err().field, "payload");
        assert_eq!(
            form_payload(b"payload=1&payload=2").unwrap_err().code,
            "malformed_form"
        );
    }

    #[test]
    fn signature_round_trip_and_header_shapes() {
        let v = CentraSignatureVerifier::from_config("old-secret, new-secret").unwrap();
        let body = b"payload=%7B%7D";
        let header = sign_centra("new-secret", 1000, body);
        assert!(v.verify(Some(&header), body, 1000).is_ok());
        assert!(v
            .verify(Some(&sign_centra("old-secret", 1000, body)), body, 1000)
            .is_ok());
        assert_eq!(
            v.verify(Some(&sign_centra("other", 1000, body)), body, 1000),
            Err(CentraSignatureError::NoValidSignature)
        );
        // Several v1 values: any one valid passes.
        let multi = format!(
            "t=1000,v1={},{}",
            "00".repeat(32),
            header.split_once(",").unwrap().1
        );
        assert!(v.verify(Some(&multi), body, 1000).is_ok());
        assert_eq!(
            v.verify(Some(&header), body, 1301),
            Err(CentraSignatureError::StaleTimestamp)
        );
        assert!(v.verify(Some(&header), body, 1300).is_ok());
        assert_eq!(
            v.verify(Some("v1=abc"), body, 1000),
            Err(CentraSignatureError::MalformedHeader)
        );
        assert_eq!(
            v.verify(Some("t=soon,v1=abc"), body, 1000),
            Err(CentraSignatureError::BadTimestamp)
        );
        assert_eq!(
            v.verify(Some("t=1000"), body, 1000),
            Err(CentraSignatureError::NoValidSignature)
        );
        assert!(CentraSignatureVerifier::from_config(" , ").is_err());
    }
}
