//! The order outbox: one record per Cloudshelf order walks received → injecting → injected → reported (or
//! exception), so a Cloudshelf order becomes at most one Centra order whatever is redelivered or crashes.
//!
//! Every write is conditional on the revision read (`rev`), so two attempts racing on one order cannot both
//! think they own the Centra call; the `owner` + `lease_until_ms` pair says who may call Centra now, and a
//! crashed attempt's lease simply runs out.

use crate::core::errors::BackendError;
use crate::core::ids::StoreCode;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Accepted from the queue; Centra not called yet.
    Received,
    /// A Centra create was (or is being) attempted: its outcome may be unknown, so look up before creating.
    Injecting,
    /// Centra holds the order(s); Cloudshelf not told yet.
    Injected,
    /// Cloudshelf knows the Centra order number(s).
    Reported,
    /// A permanent problem an operator must fix (mapping, Centra refusal, Cloudshelf mismatch).
    Exception,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Received => "received",
            OutboxState::Injecting => "injecting",
            OutboxState::Injected => "injected",
            OutboxState::Reported => "reported",
            OutboxState::Exception => "exception",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub cloudshelf_order_id: String,
    pub store: StoreCode,
    pub event_id: String,
    pub state: OutboxState,
    /// Centra create attempts made.
    pub attempts: u32,
    /// The attempt that may call Centra, and until when (epoch ms).
    pub owner: String,
    pub lease_until_ms: i64,
    /// When the first create was sent: the tag lookup searches Centra orders created from a little before it.
    pub first_attempt_at_ms: Option<i64>,
    /// Centra order number(s): Centra may split one order.
    pub centra_orders: Vec<u64>,
    /// Centra store id the order was created in (for lookups and the lifecycle).
    pub centra_store_id: Option<u64>,
    /// Cloudshelf status last set by us, so repeated webhooks do not repeat the update.
    pub reported_status: Option<String>,
    /// Operator-readable reason when in `Exception`.
    pub exception: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Revision of the stored record; set by the store, never bumped by callers.
    #[serde(default)]
    pub rev: u64,
    /// The kiosk order as queued, kept while the record is parked in `Exception` so that `shelfsync orders
    /// retry` can queue it again without a new event; dropped once Centra holds the order (customer data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked_order: Option<Box<crate::events::orders::KioskOrder>>,
    /// Operator actions on this record (who, when, what), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_actions: Vec<crate::core::operator::OperatorAction>,
    /// Every state entered, with when, oldest first (at most [`MAX_OUTBOX_NOTES`]; absent on records written
    /// before it existed): `shelfsync trace order`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<OutboxStep>,
    /// Centra order webhooks that reached this order and what came of each, oldest first (at most
    /// [`MAX_OUTBOX_NOTES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<LifecycleNote>,
}

/// Bound of `history` and `lifecycle`: a record stays far below DynamoDB's item size.
pub const MAX_OUTBOX_NOTES: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStep {
    pub state: OutboxState,
    pub at_ms: i64,
}

/// One Centra webhook event handled for this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleNote {
    /// `order.updated 1042`, `shipment.created 77`, …
    pub event: String,
    /// The intake's dedupe key (`centra-event#<key>` in the idempotency table holds the request).
    pub dedupe_key: String,
    pub handled_at_ms: i64,
    /// What the order sync did: the Cloudshelf status set, or why nothing was.
    pub outcome: String,
}

fn push_bounded<T>(list: &mut Vec<T>, entry: T) {
    list.push(entry);
    if list.len() > MAX_OUTBOX_NOTES {
        let excess = list.len() - MAX_OUTBOX_NOTES;
        list.drain(..excess);
    }
}

impl OutboxRecord {
    pub fn received(
        cloudshelf_order_id: &str,
        store: &StoreCode,
        event_id: &str,
        now_ms: i64,
    ) -> Self {
        Self {
            cloudshelf_order_id: cloudshelf_order_id.to_string(),
            store: store.clone(),
            event_id: event_id.to_string(),
            state: OutboxState::Received,
            attempts: 0,
            owner: String::new(),
            lease_until_ms: 0,
            first_attempt_at_ms: None,
            centra_orders: Vec::new(),
            centra_store_id: None,
            reported_status: None,
            exception: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            rev: 0,
            parked_order: None,
            operator_actions: Vec::new(),
            history: vec![OutboxStep {
                state: OutboxState::Received,
                at_ms: now_ms,
            }],
            lifecycle: Vec::new(),
        }
    }

    /// Moves to `state` at `now_ms`, remembering when.
    pub fn enter(&mut self, state: OutboxState, now_ms: i64) {
        self.state = state;
        self.updated_at_ms = now_ms;
        push_bounded(
            &mut self.history,
            OutboxStep {
                state,
                at_ms: now_ms,
            },
        );
    }

    pub fn note_lifecycle(&mut self, note: LifecycleNote) {
        push_bounded(&mut self.lifecycle, note);
    }
}

#[async_trait]
pub trait OrderOutbox: Send + Sync {
    async fn get(&self, cloudshelf_order_id: &str) -> Result<Option<OutboxRecord>, BackendError>;
    /// Writes `record` if the stored revision is `expected_rev` (`None`: no record yet), storing it as
    /// `expected_rev + 1`. Returns false when someone else wrote first. Writing a record with Centra order
    /// numbers also indexes them for `find_by_centra_order`.
    async fn put(
        &self,
        record: &OutboxRecord,
        expected_rev: Option<u64>,
    ) -> Result<bool, BackendError>;
    /// The Cloudshelf order a Centra order number was injected for: lets the lifecycle ignore other orders
    /// without calling Centra.
    async fn find_by_centra_order(&self, number: u64) -> Result<Option<String>, BackendError>;
    /// Every record (operators, reconciliation).
    async fn list(&self) -> Result<Vec<OutboxRecord>, BackendError>;
}

/// In-process outbox for the local run and tests.
#[derive(Default)]
pub struct MemoryOrderOutbox {
    inner: Mutex<MemoryOutboxState>,
}

#[derive(Default)]
struct MemoryOutboxState {
    records: HashMap<String, OutboxRecord>,
    by_centra_order: HashMap<u64, String>,
}

impl MemoryOrderOutbox {
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryOutboxState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl OrderOutbox for MemoryOrderOutbox {
    async fn get(&self, id: &str) -> Result<Option<OutboxRecord>, BackendError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn put(
        &self,
        record: &OutboxRecord,
        expected_rev: Option<u64>,
    ) -> Result<bool, BackendError> {
        let mut state = self.lock();
        let stored_rev = state
            .records
            .get(&record.cloudshelf_order_id)
            .map(|r| r.rev);
        if stored_rev != expected_rev {
            return Ok(false);
        }
        let mut stored = record.clone();
        stored.rev = expected_rev.unwrap_or(0) + 1;
        for number in &stored.centra_orders {
            state
                .by_centra_order
                .insert(*number, stored.cloudshelf_order_id.clone());
        }
        state
            .records
            .insert(stored.cloudshelf_order_id.clone(), stored);
        Ok(true)
    }

    async fn find_by_centra_order(&self, number: u64) -> Result<Option<String>, BackendError> {
        Ok(self.lock().by_centra_order.get(&number).cloned())
    }

    async fn list(&self) -> Result<Vec<OutboxRecord>, BackendError> {
        let mut all: Vec<_> = self.lock().records.values().cloned().collect();
        all.sort_by(|a, b| {
            (a.created_at_ms, &a.cloudshelf_order_id)
                .cmp(&(b.created_at_ms, &b.cloudshelf_order_id))
        });
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_conditional_on_the_revision_read() {
        let outbox = MemoryOrderOutbox::new();
        let store = StoreCode::parse("LDN-01").unwrap();
        let rec = OutboxRecord::received("gid://cloudshelf/Order/1", &store, "evt", 1);
        assert!(outbox.put(&rec, None).await.unwrap());
        assert!(!outbox.put(&rec, None).await.unwrap(), "create twice");
        let mut read = outbox
            .get("gid://cloudshelf/Order/1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.rev, 1);
        read.state = OutboxState::Injected;
        read.centra_orders = vec![1000, 1001];
        assert!(outbox.put(&read, Some(1)).await.unwrap());
        assert!(!outbox.put(&read, Some(1)).await.unwrap(), "stale revision");
        assert_eq!(
            outbox.find_by_centra_order(1001).await.unwrap().as_deref(),
            Some("gid://cloudshelf/Order/1")
        );
        assert_eq!(outbox.find_by_centra_order(999).await.unwrap(), None);
    }
}
