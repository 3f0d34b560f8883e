//! The small interfaces through which the domain reaches storage and queues. Each has a DynamoDB/SQS
//! implementation in `aws` and an in-process one in `embedded`; the domain never sees which.

use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::stock::ledger::{LedgerRow, PushRecord};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- idempotency (intake)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdempotencyStatus {
    #[serde(rename = "INPROGRESS")]
    InProgress,
    #[serde(rename = "COMPLETED")]
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub status: IdempotencyStatus,
    /// sha256 of the request body: same key with another body is a conflict (409), not a duplicate.
    pub body_hash: String,
    /// Fencing token of the attempt that holds or completed the record.
    pub owner: String,
    /// While INPROGRESS: the lease end in epoch ms; after it, another attempt may take over.
    pub lease_until_ms: i64,
    /// Record validity in epoch seconds (also the DynamoDB TTL attribute; expiry is re-checked in code
    /// because TTL deletion lags).
    pub expires_at_s: i64,
    /// The request itself, kept for the event archive and `shelfsync trace` (absent on records written
    /// before the archive existed).
    pub accepted: Option<AcceptedRequest>,
}

/// A request intake accepted, as it came: the archive stores it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRequest {
    /// The store code, or [`CENTRA_PARTITION`] for Centra's webhooks.
    pub store: String,
    /// `sale`, `count`, `order.placed`, …; `centra:<type>.<action>` for Centra's webhooks.
    pub event_type: String,
    /// When intake received the request it accepted (epoch ms).
    pub received_at_ms: i64,
    /// The `webhook-timestamp` header as sent (store events).
    pub webhook_timestamp: Option<String>,
    pub body: Vec<u8>,
}

/// The archive partition of Centra's webhooks (store codes are the mappings' codes; this one is reserved).
pub const CENTRA_PARTITION: &str = "centra";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// The caller owns the record now (new key, expired record, or an abandoned lease taken over).
    Acquired,
    /// Someone holds or completed it; here is their record.
    Existing(IdempotencyRecord),
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Conditional create: succeeds when the key is absent, expired (`expires_at_s < now`), or INPROGRESS
    /// with a lease that ended (`lease_until_ms < now`). Otherwise returns the existing record in the same
    /// round trip.
    async fn acquire(
        &self,
        record: &IdempotencyRecord,
        now_ms: i64,
    ) -> Result<AcquireOutcome, BackendError>;
    /// Marks COMPLETED only if `owner` still holds the record (fencing). Returns false if ownership was lost.
    async fn complete(
        &self,
        key: &str,
        owner: &str,
        expires_at_s: i64,
    ) -> Result<bool, BackendError>;
    /// Deletes the record only if `owner` still holds it and it is INPROGRESS, so a retry can run again.
    async fn release(&self, key: &str, owner: &str) -> Result<bool, BackendError>;
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, BackendError>;
}

// ---------------------------------------------------------------- queues

/// A message for the stock FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoMessage {
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
}

#[async_trait]
pub trait StockQueue: Send + Sync {
    /// Sends every message or fails; on failure some may have been sent (the dedup ids make a resend safe).
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError>;
}

/// The orders FIFO queue (`order.placed` store events, Centra webhook events): the same contract as
/// [`StockQueue`] — `send_all(&[FifoMessage])`, all or an error, dedup ids make a resend safe — and the same
/// FIFO senders implement it. It is a marker sub-trait rather than a second `send_all` so a type that is both
/// (the SQS FIFO sender, the embedded FIFO queue) never makes `queue.send_all(..)` ambiguous where both traits
/// are in scope; what it adds is the type-level statement "this queue carries orders".
pub trait OrderQueue: StockQueue {}

/// A (store, item) whose ledger holds something Centra has not received yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DirtyKey {
    pub store: StoreCode,
    pub item: ItemRef,
}

#[async_trait]
pub trait PushQueue: Send + Sync {
    /// Asks the pusher to look at these keys, after `delay_seconds` (0–900).
    async fn mark_dirty(&self, keys: &[DirtyKey], delay_seconds: u32) -> Result<(), BackendError>;
}

// ---------------------------------------------------------------- ledger

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyWrite {
    Written,
    /// The movement id was applied before: nothing written.
    Duplicate,
    /// The row changed since it was read (`rev` differs): re-read and try again.
    Conflict,
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Strongly consistent read of one row.
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError>;
    /// Atomically records `movement_id` as applied (kept until `marker_expires_at_s`) and writes `row`, if the
    /// movement was never applied and the stored row's `rev` is `expected_rev` (`None`: no row yet).
    async fn apply(
        &self,
        movement_id: &str,
        marker_expires_at_s: i64,
        row: &LedgerRow,
        expected_rev: Option<u64>,
    ) -> Result<ApplyWrite, BackendError>;
    /// Writes `row` if the stored `rev` is `expected_rev`, storing it with `rev = expected_rev + 1` (`apply`
    /// stores a new row with `rev = 1`). Returns false on conflict.
    async fn put(&self, row: &LedgerRow, expected_rev: u64) -> Result<bool, BackendError>;
    /// Every row of one store (reconciliation, the local run's report).
    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError>;
}

/// What the applier's marker says of one applied movement (`<event id>#<line>`): the row it went to and the
/// row version it became (a stale movement's marker names the version the row already had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMarker {
    pub store: String,
    /// The row's item key (`sku:…` / `ean:…`).
    pub item: String,
    pub version: u64,
    pub applied_at_ms: i64,
}

/// Reads the applier's movement markers (`shelfsync trace`); the ledger stores implement it.
#[async_trait]
pub trait AppliedMarkers: Send + Sync {
    async fn applied_marker(
        &self,
        movement_id: &str,
    ) -> Result<Option<AppliedMarker>, BackendError>;
}

#[async_trait]
pub trait PushLog: Send + Sync {
    /// Writes (creates or replaces) a push record. Only the lease holder writes its record.
    async fn put(&self, record: &PushRecord) -> Result<(), BackendError>;
    async fn get(&self, push_id: &str) -> Result<Option<PushRecord>, BackendError>;
}

// ---------------------------------------------------------------- exceptions

/// Something an operator must look at: a movement Centra refused, a message that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExceptionRecord {
    pub id: String,
    pub store: String,
    pub item: Option<String>,
    /// Machine-readable kind: `centra_rejected_line`, `unreadable_message`, …
    pub kind: String,
    /// Operator-readable reason.
    pub message: String,
    pub event_ids: Vec<String>,
    pub centra_message: Option<String>,
    pub created_at_ms: i64,
    /// The mapping key an operator must add or fix (`stores.LDN-01.orders.shipping.home-express`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_key: Option<String>,
    /// Attempts made before giving up (order injection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

#[async_trait]
pub trait ExceptionLog: Send + Sync {
    async fn record(&self, exception: &ExceptionRecord) -> Result<(), BackendError>;
    async fn list(&self, store: Option<&str>) -> Result<Vec<ExceptionRecord>, BackendError>;
}

// ---------------------------------------------------------------- shared Centra mutation budget

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDecision {
    Granted,
    /// Not before this epoch-ms.
    WaitUntil(i64),
}

/// One budget for every instance, because Centra's limit is per environment, not per caller.
#[async_trait]
pub trait MutationBudget: Send + Sync {
    async fn try_acquire(&self, now_ms: i64) -> Result<BudgetDecision, BackendError>;
    /// Centra answered 429: nobody sends before `until_ms`.
    async fn block_until(&self, until_ms: i64) -> Result<(), BackendError>;
}
