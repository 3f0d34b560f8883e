//! Store-event intake: verify, validate, dedupe, enqueue — and answer only what is true.
//!
//! 2xx only once every stock message is accepted by the queue; any failure releases the idempotency record
//! and answers 503 so the sender retries. The idempotency record is a fenced lease (owner token, lease
//! length independent of the Lambda deadline), so a slow attempt can never complete or delete the record of
//! the attempt that took over from it.
//!
//! Stock events go to the stock FIFO queue; `order.placed` (when the deployment has an orders queue) goes as one
//! message to the orders FIFO queue. `intake::http::route` also serves Centra's webhooks (`centra_webhooks`).

use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::events::envelope::{parse_store_event, StoreEvent};
use crate::events::orders::{KioskOrder, OrderQueueMessage};
use crate::events::store_events::MAX_BODY_BYTES;
use crate::intake::contract::{body_hash, IntakeResponse, IntakeSettings};
use crate::intake::signature::WebhookVerifier;
use crate::stock::identity::{CatalogueError, ResolveError};
use crate::stock::ports::{
    AcceptedRequest, AcquireOutcome, FifoMessage, IdempotencyRecord, IdempotencyStatus,
    IdempotencyStore, OrderQueue, StockQueue,
};
use crate::telemetry::metrics::{names, Metrics};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct IntakeRequest<'a> {
    pub content_type: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
    pub webhook_timestamp: Option<&'a str>,
    pub webhook_signature: Option<&'a str>,
    pub body: &'a [u8],
}

pub struct StoreEventIntake {
    pub verifier: WebhookVerifier,
    pub mappings: Arc<Mappings>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub queue: Arc<dyn StockQueue>,
    /// The orders FIFO queue; `None`: `order.placed` is refused with 400 `unsupported_type`.
    pub orders: Option<Arc<dyn OrderQueue>>,
    /// Centra's sizes: every stock line is resolved to the one size it names before it is queued.
    pub catalogue: Arc<crate::stock::identity::ItemCatalogue>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub settings: IntakeSettings,
}

fn dedup_id(movement_id: &str) -> String {
    hex::encode(Sha256::digest(movement_id.as_bytes()))
}

/// SQS `MessageGroupId` is at most 128 characters.
const MAX_GROUP_ID: usize = 128;

/// The orders-queue message of an order: grouped by the Cloudshelf order id (all messages about one order stay
/// in order), deduplicated by a hash of the store event id (a retried intake sends the same dedup id).
///
/// A GlobalId may be up to 256 characters but a `MessageGroupId` only 128: a longer id groups by
/// `order-<sha256 hex of the id>` instead, which is just as stable.
pub fn order_message(order: &KioskOrder) -> FifoMessage {
    let group_id = if order.cloudshelf_order_id.len() <= MAX_GROUP_ID {
        order.cloudshelf_order_id.clone()
    } else {
        format!(
            "order-{}",
            hex::encode(Sha256::digest(order.cloudshelf_order_id.as_bytes()))
        )
    };
    FifoMessage {
        group_id,
        dedup_id: hex::encode(Sha256::digest(order.event_id.as_bytes())),
        body: serde_json::to_string(&OrderQueueMessage::Placed(Box::new(order.clone())))
            .expect("order message serialises"),
    }
}

/// The stock FIFO messages of an event: grouped by SKU, deduplicated by a hash of the movement id.
pub fn build_messages(
    event: &crate::events::store_events::StockEvent,
    received_at_ms: i64,
) -> Vec<FifoMessage> {
    event
        .stock_messages(received_at_ms)
        .into_iter()
        .map(|m| FifoMessage {
            group_id: m.item.group_id(),
            dedup_id: dedup_id(&m.movement_id()),
            body: serde_json::to_string(&m).expect("message serialises"),
        })
        .collect()
}

/// The idempotency lease this attempt holds: the record's key and the owner token that fences it.
struct Lease {
    key: String,
    owner: String,
}

/// Size and media type, checked before the signature (413, 415).
fn check_body_and_media_type(req: &IntakeRequest<'_>) -> Result<(), IntakeResponse> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(IntakeResponse::error(
            413,
            "payload_too_large",
            None,
            "body exceeds 256 KiB",
        ));
    }
    let is_json = req.content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return Err(IntakeResponse::error(
            415,
            "unsupported_media_type",
            None,
            "Content-Type must be application/json",
        ));
    }
    Ok(())
}

impl StoreEventIntake {
    pub async fn handle(&self, req: IntakeRequest<'_>) -> IntakeResponse {
        let response = self.handle_inner(req).await;
        let metric = match response.status {
            202 => names::EVENTS_ACCEPTED,
            200 => names::EVENTS_DUPLICATE,
            409 => names::EVENTS_CONFLICT,
            503 => names::INTAKE_QUEUE_FAILURES,
            _ => names::EVENTS_REJECTED,
        };
        self.metrics.count(metric, 1);
        response
    }

    async fn handle_inner(&self, req: IntakeRequest<'_>) -> IntakeResponse {
        if let Err(response) = check_body_and_media_type(&req) {
            return response;
        }
        let now_ms = self.clock.now_millis();
        let (id, mut event) = match self.verify_and_parse(&req, now_ms) {
            Ok(verified) => verified,
            Err(response) => return response,
        };

        let accepted = AcceptedRequest {
            store: event.store().as_str().to_string(),
            event_type: event.type_name().to_string(),
            received_at_ms: now_ms,
            webhook_timestamp: req.webhook_timestamp.map(str::to_string),
            body: req.body.to_vec(),
        };
        let lease = match self.acquire_lease(id, accepted, now_ms).await {
            Ok(lease) => lease,
            Err(response) => return response,
        };

        if let StoreEvent::Stock(stock) = &mut event {
            // After the dedupe: a retry of an accepted event is answered 200 whatever the catalogue says now.
            if let Err(response) = self.resolve_items(id, stock, &lease).await {
                return response;
            }
        }
        let messages = match self.enqueue(id, &event, now_ms, &lease).await {
            Ok(messages) => messages,
            Err(response) => return response,
        };
        self.complete_lease(id, &lease).await;
        self.log_accepted(id, &event, messages);
        IntakeResponse {
            status: 202,
            body: json!({ "status": "accepted", "id": id }),
            retry_after: None,
        }
    }

    /// Verifies the signature and parses the event; the `Err` is the answer (401 or 400).
    fn verify_and_parse<'a>(
        &self,
        req: &IntakeRequest<'a>,
        now_ms: i64,
    ) -> Result<(&'a str, StoreEvent), IntakeResponse> {
        let id = match self.verifier.verify(
            req.webhook_id,
            req.webhook_timestamp,
            req.webhook_signature,
            req.body,
            now_ms.div_euclid(1000),
        ) {
            Ok(id) => id,
            Err(e) => return Err(IntakeResponse::error(401, e.code(), None, e.to_string())),
        };
        match parse_store_event(id, req.body, &self.mappings, now_ms, self.orders.is_some()) {
            Ok(ev) => Ok((id, ev)),
            Err(e) => {
                tracing::info!(event_id = id, field = %e.field, code = e.code, "store event rejected");
                Err(IntakeResponse::error(
                    400,
                    e.code,
                    Some(&e.field),
                    e.message,
                ))
            }
        }
    }

    /// Takes the idempotency lease for this event id; the `Err` is the answer (the earlier
    /// attempt's, a conflict, or 503).
    async fn acquire_lease(
        &self,
        id: &str,
        accepted: AcceptedRequest,
        now_ms: i64,
    ) -> Result<Lease, IntakeResponse> {
        let key = format!("store-event#{id}");
        let hash = body_hash(&accepted.body);
        let owner = uuid::Uuid::new_v4().to_string();
        let record = IdempotencyRecord {
            key: key.clone(),
            status: IdempotencyStatus::InProgress,
            body_hash: hash.clone(),
            owner: owner.clone(),
            lease_until_ms: now_ms + self.settings.lease_ms,
            expires_at_s: now_ms.div_euclid(1000) + self.settings.idempotency_ttl_s,
            accepted: Some(accepted),
        };
        match self.idempotency.acquire(&record, now_ms).await {
            Ok(AcquireOutcome::Acquired) => Ok(Lease { key, owner }),
            Ok(AcquireOutcome::Existing(existing)) => {
                Err(self.answer_existing(id, &hash, existing).await)
            }
            Err(e) => {
                tracing::error!(event_id = id, error = %e, "idempotency store unavailable");
                Err(IntakeResponse::error(
                    503,
                    "unavailable",
                    None,
                    "the event could not be recorded; retry",
                ))
            }
        }
    }

    /// Resolves every stock line to the one size it names; on refusal releases the lease and
    /// answers 400 (invalid) or 503 (catalogue not reachable now).
    async fn resolve_items(
        &self,
        id: &str,
        stock: &mut crate::events::store_events::StockEvent,
        lease: &Lease,
    ) -> Result<(), IntakeResponse> {
        let Err(refusal) = crate::stock::identity::resolve_event(stock, &self.catalogue).await
        else {
            return Ok(());
        };
        if let Err(e) = self.idempotency.release(&lease.key, &lease.owner).await {
            tracing::warn!(event_id = id, error = %e, "could not release idempotency record");
        }
        Err(match refusal {
            ResolveError::Invalid(e) => {
                tracing::info!(event_id = id, field = %e.field, code = e.code, "store event rejected");
                IntakeResponse::error(400, e.code, Some(&e.field), e.message)
            }
            ResolveError::Catalogue(e) => {
                tracing::warn!(event_id = id, error = %e, "items not resolved now");
                let mut response =
                    IntakeResponse::error(503, "catalogue_unavailable", None, e.to_string());
                if let CatalogueError::Busy { retry_after_s } = e {
                    response.retry_after = Some(retry_after_s);
                }
                response
            }
        })
    }

    /// Sends the event's messages to its queue; returns how many. On a queue failure releases
    /// the lease and answers 503.
    async fn enqueue(
        &self,
        id: &str,
        event: &StoreEvent,
        now_ms: i64,
        lease: &Lease,
    ) -> Result<usize, IntakeResponse> {
        let (messages, sent) = match event {
            StoreEvent::Stock(stock) => {
                let messages = build_messages(stock, now_ms);
                let sent = self.queue.send_all(&messages).await;
                (messages, sent)
            }
            StoreEvent::OrderPlaced(order) => {
                let messages = vec![order_message(order)];
                let orders = self
                    .orders
                    .as_ref()
                    .expect("order.placed is only parsed when an orders queue exists");
                let sent = orders.send_all(&messages).await;
                (messages, sent)
            }
        };
        if let Err(e) = sent {
            tracing::error!(event_id = id, error = %e, "queue refused the event");
            if let Err(release_error) = self.idempotency.release(&lease.key, &lease.owner).await {
                // The lease still ends by itself, after which a retry goes through.
                tracing::warn!(event_id = id, error = %release_error, "could not release idempotency record");
            }
            return Err(IntakeResponse::error(
                503,
                "queue_unavailable",
                None,
                "the event could not be queued; retry",
            ));
        }
        Ok(messages.len())
    }

    /// Marks the idempotency record completed; failures are logged, the event is queued all the same.
    async fn complete_lease(&self, id: &str, lease: &Lease) {
        let expires = self.clock.now_seconds() + self.settings.idempotency_ttl_s;
        match self
            .idempotency
            .complete(&lease.key, &lease.owner, expires)
            .await
        {
            Ok(true) => {}
            // Queued all the same; a takeover would only re-send messages the dedup ids and movement
            // markers absorb.
            Ok(false) => tracing::warn!(
                event_id = id,
                "idempotency lease was taken over before completion"
            ),
            Err(e) => tracing::warn!(event_id = id, error = %e, "could not mark event completed"),
        }
    }

    fn log_accepted(&self, id: &str, event: &StoreEvent, messages: usize) {
        match event {
            StoreEvent::Stock(stock) => tracing::info!(
                event_id = id,
                store = %stock.store,
                event_type = stock.event_type.as_str(),
                messages = messages,
                "store event accepted"
            ),
            StoreEvent::OrderPlaced(order) => {
                self.metrics.count(names::ORDERS_ACCEPTED, 1);
                // No customer or address data in logs.
                tracing::info!(
                    event_id = id,
                    store = %order.store,
                    event_type = "order.placed",
                    cloudshelf_order_id = %order.cloudshelf_order_id,
                    lines = order.lines.len(),
                    "kiosk order accepted"
                )
            }
        }
    }

    async fn answer_existing(
        &self,
        id: &str,
        hash: &str,
        mut existing: IdempotencyRecord,
    ) -> IntakeResponse {
        if existing.body_hash != hash {
            return IntakeResponse::error(
                409,
                "id_reused",
                None,
                "this webhook-id was used before with a different body",
            );
        }
        // A concurrent attempt is queueing this event right now: wait a little for its outcome rather than
        // answering 200 for something that may still fail.
        let polls = self.settings.in_progress_wait_ms / 50;
        for _ in 0..polls {
            if existing.status != IdempotencyStatus::InProgress {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            match self.idempotency.get(&existing.key).await {
                Ok(Some(r)) => existing = r,
                // Released after a failure: the sender should retry and will then own it.
                Ok(None) => break,
                Err(_) => break,
            }
        }
        if existing.status == IdempotencyStatus::Completed && existing.body_hash == hash {
            return IntakeResponse {
                status: 200,
                body: json!({ "status": "duplicate", "id": id }),
                retry_after: None,
            };
        }
        IntakeResponse::error(
            503,
            "in_progress",
            None,
            "this event is being processed; retry shortly",
        )
    }
}
