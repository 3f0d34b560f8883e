//! `shelfsync orders retry`: re-open a kiosk order parked in `exception` once its cause is fixed, without a new
//! store event and without ever creating a second Centra order.
//!
//! The re-open is one write conditional on the revision read while the record is in `exception`, so two
//! operators retrying at once re-open it once. Where a Centra create was ever attempted, Centra is searched for
//! the order's tag first: a found order is recorded on the record and order-sync adopts it (its own tag lookup
//! before any create, `orders::sync`) instead of placing again. The parked order is then queued again on the
//! orders FIFO queue in its usual group, under a dedup id of its own (the original one may still be inside
//! SQS's 5-minute deduplication window).

use crate::centra::CentraClient;
use crate::core::clock::Clock;
use crate::core::errors::BackendError;
use crate::core::operator::OperatorAction;
use crate::events::orders::KioskOrder;
use crate::intake::store_events::order_message;
use crate::orders::outbox::{OrderOutbox, OutboxRecord, OutboxState};
use crate::orders::sync::order_tag;
use crate::stock::ports::{FifoMessage, OrderQueue};
use sha2::{Digest, Sha256};

pub const RETRY_ACTION: &str = "retry";

#[derive(Debug, Clone)]
pub struct RetryRequest {
    pub cloudshelf_order_id: String,
    pub by: String,
    pub dry_run: bool,
    /// The Centra search starts this long before the first create attempt (`OrderSyncSettings::lookup_margin_ms`).
    pub lookup_margin_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Dry run: what a real run would write and queue.
    WouldReopen {
        to: OutboxState,
        found_in_centra: Vec<u64>,
        would_queue: bool,
    },
    Reopened {
        to: OutboxState,
        /// Centra order(s) already holding this order: recorded, and order-sync adopts them.
        found_in_centra: Vec<u64>,
        /// False when the record keeps no order (parked before orders were kept): the event must be sent again.
        queued: bool,
        rev: u64,
    },
    /// An earlier retry (this run's twin, or a previous run) re-opened it.
    AlreadyReopened {
        by: String,
        at_ms: i64,
        state: OutboxState,
        /// Nothing happened to the record since that retry, so its message was queued again in case the
        /// earlier send was lost (same dedup id: SQS drops it if the first arrived in the last 5 minutes).
        requeued: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error(
        "no outbox record for {0}: order-sync never received this order (look in the orders DLQ with \
         `shelfsync dlq list orders`, or have the order event sent again)"
    )]
    NotFound(String),
    #[error(
        "{id} is in state `{state}`, not `exception`; only a parked order can be retried: {hint}"
    )]
    NotInException {
        id: String,
        state: &'static str,
        hint: String,
    },
    #[error(
        "Centra order lookup for {id} (tag {tag}) failed, nothing changed; run again: {detail}"
    )]
    Lookup {
        id: String,
        tag: String,
        detail: String,
    },
    #[error("{0} changed while it was being re-opened (order-sync or another operator wrote first); run again")]
    Raced(String),
    #[error(
        "{id} was re-opened (rev {rev}) but queueing it failed; run `shelfsync orders retry {id}` again to queue \
         it: {source}"
    )]
    QueueFailed {
        id: String,
        rev: u64,
        source: BackendError,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The orders-queue message of a retried order: the usual group (so it stays in order with anything else about
/// this order), and a dedup id per re-open so SQS does not drop it as the original message.
pub fn retry_message(order: &KioskOrder, reopened_rev: u64) -> FifoMessage {
    let mut message = order_message(order);
    message.dedup_id = hex::encode(Sha256::digest(
        format!("{}#retry-rev-{reopened_rev}", order.event_id).as_bytes(),
    ));
    message
}

fn not_in_exception_hint(record: &OutboxRecord) -> String {
    let numbers = || {
        record
            .centra_orders
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match record.state {
        OutboxState::Reported => format!(
            "Centra order(s) {} exist and Cloudshelf has been told; nothing to retry",
            numbers()
        ),
        OutboxState::Injected => format!(
            "Centra order(s) {} exist; order-sync has still to tell Cloudshelf (a `cloudshelf_report_failed` \
             exception is fixed in Cloudshelf, not by placing again)",
            numbers()
        ),
        OutboxState::Injecting => format!(
            "a Centra create is in progress or its outcome is unknown (lease until {}); order-sync settles it \
             by itself",
            super::format_ms(record.lease_until_ms)
        ),
        OutboxState::Received => {
            "order-sync has it and has not called Centra yet; wait for it".to_string()
        }
        OutboxState::Exception => unreachable!("only called for other states"),
    }
}

pub async fn retry_order(
    outbox: &dyn OrderOutbox,
    centra: &CentraClient,
    queue: &dyn OrderQueue,
    clock: &dyn Clock,
    request: &RetryRequest,
) -> Result<RetryOutcome, RetryError> {
    let id = request.cloudshelf_order_id.as_str();
    let record = outbox
        .get(id)
        .await?
        .ok_or_else(|| RetryError::NotFound(id.to_string()))?;
    if record.state != OutboxState::Exception {
        return already_or_refuse(outbox_last_retry(&record), &record, queue, request).await;
    }

    // Only where a create was ever attempted can Centra hold the order (the store id and the first attempt's
    // time are set together, when the attempt takes its lease).
    let found = find_in_centra(centra, &record, request).await?;
    // `injecting` with no lease makes order-sync search Centra for the tag again right before any create (and
    // adopt what it finds, recording it as posted for finance); `received` also re-checks the order against
    // Cloudshelf, which is right when no create was ever attempted.
    let to = if record.first_attempt_at_ms.is_some() || !record.centra_orders.is_empty() {
        OutboxState::Injecting
    } else {
        OutboxState::Received
    };
    let would_queue = record.parked_order.is_some();
    if request.dry_run {
        return Ok(RetryOutcome::WouldReopen {
            to,
            found_in_centra: found,
            would_queue,
        });
    }

    let now = clock.now_millis();
    let new_rev = record.rev + 1;
    let mut reopened = record.clone();
    reopened.enter(to, now);
    reopened.owner.clear();
    reopened.lease_until_ms = 0;
    reopened.exception = None;
    // A fresh allowance of transient Centra failures; the old count stays in the note.
    reopened.attempts = 0;
    if !found.is_empty() {
        // Also indexes the numbers, so Centra's webhooks for them are recognised as ours at once.
        reopened.centra_orders = found.clone();
    }
    let note = reopen_note(&record, &found, would_queue);
    reopened.operator_actions.push(OperatorAction {
        action: RETRY_ACTION.to_string(),
        by: request.by.clone(),
        at_ms: now,
        note: Some(note),
        rev: new_rev,
    });
    if !outbox.put(&reopened, Some(record.rev)).await? {
        return twin_retry_outcome(outbox, id).await;
    }
    let queued = queue_parked(queue, id, &record, new_rev).await?;
    Ok(RetryOutcome::Reopened {
        to,
        found_in_centra: found,
        queued,
        rev: new_rev,
    })
}

/// The Centra order numbers tagged with this order, searched from just before its first
/// attempt; none when no create was ever attempted.
async fn find_in_centra(
    centra: &CentraClient,
    record: &OutboxRecord,
    request: &RetryRequest,
) -> Result<Vec<u64>, RetryError> {
    let id = request.cloudshelf_order_id.as_str();
    let mut found = Vec::new();
    if let (Some(store_id), Some(first)) = (record.centra_store_id, record.first_attempt_at_ms) {
        let tag = order_tag(id);
        let from = chrono::DateTime::from_timestamp_millis(first - request.lookup_margin_ms)
            .unwrap_or_default();
        let orders = centra
            .find_orders_by_tag(store_id, &tag, from)
            .await
            .map_err(|e| RetryError::Lookup {
                id: id.to_string(),
                tag,
                detail: e.to_string(),
            })?;
        found = orders.iter().map(|o| o.number).collect();
        found.sort_unstable();
        found.dedup();
    }
    Ok(found)
}

/// The operator-action note of a re-open: the exception it leaves, what Centra already holds,
/// and whether the order event must be sent again.
fn reopen_note(record: &OutboxRecord, found: &[u64], would_queue: bool) -> String {
    let mut note = format!(
        "re-opened from exception ({}) after {} Centra attempt(s)",
        record.exception.as_deref().unwrap_or("no reason recorded"),
        record.attempts
    );
    if !found.is_empty() {
        note.push_str(&format!(
            "; Centra already holds order(s) {}: adopted, not placed again",
            found
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !would_queue {
        note.push_str("; no parked order kept: the order event must be sent again");
    }
    note
}

/// The conditional write lost: report the twin retry that won, or a race.
async fn twin_retry_outcome(
    outbox: &dyn OrderOutbox,
    id: &str,
) -> Result<RetryOutcome, RetryError> {
    let current = outbox
        .get(id)
        .await?
        .ok_or_else(|| RetryError::NotFound(id.to_string()))?;
    // The twin retry won: report it instead of failing (it re-opened once, which is the point).
    match outbox_last_retry(&current) {
        Some(last) if current.state != OutboxState::Exception => {
            Ok(RetryOutcome::AlreadyReopened {
                by: last.by.clone(),
                at_ms: last.at_ms,
                state: current.state,
                requeued: false,
            })
        }
        _ => Err(RetryError::Raced(id.to_string())),
    }
}

/// Queues the parked order again at the new revision; `false` when none was kept.
async fn queue_parked(
    queue: &dyn OrderQueue,
    id: &str,
    record: &OutboxRecord,
    new_rev: u64,
) -> Result<bool, RetryError> {
    let queued = match &record.parked_order {
        Some(order) => {
            queue
                .send_all(&[retry_message(order, new_rev)])
                .await
                .map_err(|source| RetryError::QueueFailed {
                    id: id.to_string(),
                    rev: new_rev,
                    source,
                })?;
            true
        }
        None => false,
    };
    Ok(queued)
}

fn outbox_last_retry(record: &OutboxRecord) -> Option<&OperatorAction> {
    record
        .operator_actions
        .iter()
        .rev()
        .find(|a| a.action == RETRY_ACTION)
}

async fn already_or_refuse(
    last: Option<&OperatorAction>,
    record: &OutboxRecord,
    queue: &dyn OrderQueue,
    request: &RetryRequest,
) -> Result<RetryOutcome, RetryError> {
    // Re-opened by a retry and nothing written since: the re-open stands, but its send may have been lost.
    let Some(last) = last.filter(|a| a.rev == record.rev) else {
        return Err(RetryError::NotInException {
            id: record.cloudshelf_order_id.clone(),
            state: record.state.as_str(),
            hint: not_in_exception_hint(record),
        });
    };
    let mut requeued = false;
    if let (Some(order), false) = (&record.parked_order, request.dry_run) {
        queue
            .send_all(&[retry_message(order, record.rev)])
            .await
            .map_err(|source| RetryError::QueueFailed {
                id: record.cloudshelf_order_id.clone(),
                rev: record.rev,
                source,
            })?;
        requeued = true;
    }
    Ok(RetryOutcome::AlreadyReopened {
        by: last.by.clone(),
        at_ms: last.at_ms,
        state: record.state,
        requeued,
    })
}
