//! In-process implementations of the ports: the local run, the tests and the benchmarks use them with the
//! same domain code the Lambdas run. They keep the semantics that matter (conditional writes, FIFO groups,
//! visibility timeouts, redelivery, dead-lettering), not just storage.

use crate::core::ids::{ItemRef, StoreCode};
use crate::stock::ledger::{LedgerRow, PushRecord};
use crate::stock::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

// ---------------------------------------------------------------- idempotency

#[derive(Debug, Default)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
}

impl MemoryIdempotencyStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn acquire(
        &self,
        record: &IdempotencyRecord,
        now_ms: i64,
    ) -> Result<AcquireOutcome, BackendError> {
        let mut map = self.records.lock().expect("lock");
        if let Some(existing) = map.get(&record.key) {
            let expired = existing.expires_at_s < now_ms.div_euclid(1000);
            let abandoned = existing.status == IdempotencyStatus::InProgress
                && existing.lease_until_ms < now_ms;
            if !expired && !abandoned {
                return Ok(AcquireOutcome::Existing(existing.clone()));
            }
        }
        map.insert(record.key.clone(), record.clone());
        Ok(AcquireOutcome::Acquired)
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        expires_at_s: i64,
    ) -> Result<bool, BackendError> {
        let mut map = self.records.lock().expect("lock");
        match map.get_mut(key) {
            Some(r) if r.owner == owner => {
                r.status = IdempotencyStatus::Completed;
                r.expires_at_s = expires_at_s;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<bool, BackendError> {
        let mut map = self.records.lock().expect("lock");
        match map.get(key) {
            Some(r) if r.owner == owner && r.status == IdempotencyStatus::InProgress => {
                map.remove(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        Ok(self.records.lock().expect("lock").get(key).cloned())
    }
}

// ---------------------------------------------------------------- ledger, push log, exceptions

#[derive(Debug, Default)]
struct LedgerState {
    rows: BTreeMap<(StoreCode, ItemRef), LedgerRow>,
    markers: HashMap<String, i64>,
    pushes: HashMap<String, PushRecord>,
    exceptions: Vec<ExceptionRecord>,
}

#[derive(Debug, Default)]
pub struct MemoryLedgerStore {
    state: Mutex<LedgerState>,
}

impl MemoryLedgerStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn all_rows(&self) -> Vec<LedgerRow> {
        self.state
            .lock()
            .expect("lock")
            .rows
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl LedgerStore for MemoryLedgerStore {
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError> {
        Ok(self
            .state
            .lock()
            .expect("lock")
            .rows
            .get(&(store.clone(), item.clone()))
            .cloned())
    }

    async fn apply(
        &self,
        movement_id: &str,
        marker_expires_at_s: i64,
        row: &LedgerRow,
        expected_rev: Option<u64>,
    ) -> Result<ApplyWrite, BackendError> {
        let mut s = self.state.lock().expect("lock");
        let now_s = chrono::Utc::now().timestamp();
        if s.markers.get(movement_id).is_some_and(|exp| *exp >= now_s) {
            return Ok(ApplyWrite::Duplicate);
        }
        let key = (row.store.clone(), row.item.clone());
        let current = s.rows.get(&key).map(|r| r.rev);
        if current != expected_rev {
            return Ok(ApplyWrite::Conflict);
        }
        let mut stored = row.clone();
        stored.rev = expected_rev.map_or(1, |r| r + 1);
        s.rows.insert(key, stored);
        s.markers
            .insert(movement_id.to_string(), marker_expires_at_s);
        Ok(ApplyWrite::Written)
    }

    async fn put(&self, row: &LedgerRow, expected_rev: u64) -> Result<bool, BackendError> {
        let mut s = self.state.lock().expect("lock");
        let key = (row.store.clone(), row.item.clone());
        if s.rows.get(&key).map(|r| r.rev) != Some(expected_rev) {
            return Ok(false);
        }
        let mut stored = row.clone();
        stored.rev = expected_rev + 1;
        s.rows.insert(key, stored);
        Ok(true)
    }

    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError> {
        Ok(self
            .state
            .lock()
            .expect("lock")
            .rows
            .values()
            .filter(|r| &r.store == store)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl PushLog for MemoryLedgerStore {
    async fn put(&self, record: &PushRecord) -> Result<(), BackendError> {
        self.state
            .lock()
            .expect("lock")
            .pushes
            .insert(record.push_id.clone(), record.clone());
        Ok(())
    }

    async fn get(&self, push_id: &str) -> Result<Option<PushRecord>, BackendError> {
        Ok(self
            .state
            .lock()
            .expect("lock")
            .pushes
            .get(push_id)
            .cloned())
    }
}

#[async_trait]
impl ExceptionLog for MemoryLedgerStore {
    async fn record(&self, exception: &ExceptionRecord) -> Result<(), BackendError> {
        self.state
            .lock()
            .expect("lock")
            .exceptions
            .push(exception.clone());
        Ok(())
    }

    async fn list(&self, store: Option<&str>) -> Result<Vec<ExceptionRecord>, BackendError> {
        Ok(self
            .state
            .lock()
            .expect("lock")
            .exceptions
            .iter()
            .filter(|e| store.is_none_or(|s| e.store == s))
            .cloned()
            .collect())
    }
}

// ---------------------------------------------------------------- mutation budget

/// Token bucket like Centra's own (capacity = the 10 s quota, refilled evenly over 10 s) plus the hourly
/// quota as a fixed window. Mirroring Centra's bucket keeps a burst from meeting a 429 at all.
#[derive(Debug)]
pub struct MemoryMutationBudget {
    bucket: crate::stock::budget::TokenBucket,
    per_hour: u32,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    tokens: Option<crate::stock::budget::BucketState>,
    window_hour: (i64, u32),
    blocked_until_ms: i64,
}

impl MemoryMutationBudget {
    pub fn new(per_10s: u32, per_hour: u32) -> Self {
        Self {
            bucket: crate::stock::budget::TokenBucket::per_10s(per_10s),
            per_hour,
            state: Mutex::new(BudgetState::default()),
        }
    }
}

pub fn window_start(now_ms: i64, width_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(width_ms)
}

#[async_trait]
impl MutationBudget for MemoryMutationBudget {
    async fn try_acquire(&self, now_ms: i64) -> Result<BudgetDecision, BackendError> {
        let mut s = self.state.lock().expect("lock");
        if s.blocked_until_ms > now_ms {
            return Ok(BudgetDecision::WaitUntil(s.blocked_until_ms));
        }
        let wh = window_start(now_ms, 3_600_000);
        if s.window_hour.0 != wh {
            s.window_hour = (wh, 0);
        }
        if s.window_hour.1 >= self.per_hour {
            return Ok(BudgetDecision::WaitUntil(wh + 3_600_000));
        }
        match self.bucket.take(s.tokens, now_ms) {
            Ok(next) => {
                s.tokens = Some(next);
                s.window_hour.1 += 1;
                Ok(BudgetDecision::Granted)
            }
            Err(at) => Ok(BudgetDecision::WaitUntil(at)),
        }
    }

    async fn block_until(&self, until_ms: i64) -> Result<(), BackendError> {
        let mut s = self.state.lock().expect("lock");
        s.blocked_until_ms = s.blocked_until_ms.max(until_ms);
        Ok(())
    }
}

// ---------------------------------------------------------------- FIFO queue with group semantics

#[derive(Debug, Clone)]
pub struct ReceivedFifoMessage {
    pub message_id: String,
    pub receipt: u64,
    pub group_id: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Debug, Clone)]
struct StoredFifoMessage {
    message_id: String,
    body: String,
    receive_count: u32,
    in_flight: Option<(u64, i64)>, // receipt, visible again at
}

#[derive(Debug, Default)]
struct FifoState {
    groups: BTreeMap<String, VecDeque<StoredFifoMessage>>,
    group_order: VecDeque<String>,
    seen_dedup_ids: HashSet<String>,
    dead_letters: Vec<StoredFifoMessage>,
}

/// An SQS-FIFO-like queue: order within a group, an in-flight message blocks its group, messages come back
/// after the visibility timeout, and after `max_receive_count` receives they move to a dead-letter list.
#[derive(Debug)]
pub struct EmbeddedFifoQueue {
    state: Mutex<FifoState>,
    next_id: AtomicU64,
    max_receive_count: u32,
    notify: Notify,
}

impl EmbeddedFifoQueue {
    pub fn new(max_receive_count: u32) -> Self {
        Self {
            state: Mutex::new(FifoState::default()),
            next_id: AtomicU64::new(1),
            max_receive_count,
            notify: Notify::new(),
        }
    }

    /// Up to `max` messages from groups with nothing in flight, in group order.
    pub fn receive(&self, max: usize, visibility_ms: i64, now_ms: i64) -> Vec<ReceivedFifoMessage> {
        let mut s = self.state.lock().expect("lock");
        let max_receives = self.max_receive_count;
        let mut out = Vec::new();
        let groups: Vec<String> = s.group_order.iter().cloned().collect();
        let mut dead = Vec::new();
        for group in groups {
            if out.len() >= max {
                break;
            }
            let Some(queue) = s.groups.get_mut(&group) else {
                continue;
            };
            // Expired in-flight messages become visible again (their group unblocks).
            for m in queue.iter_mut() {
                if m.in_flight.is_some_and(|(_, until)| until <= now_ms) {
                    m.in_flight = None;
                }
            }
            if queue.iter().any(|m| m.in_flight.is_some()) {
                continue;
            }
            while out.len() < max {
                let Some(front_index) = queue.iter().position(|m| m.in_flight.is_none()) else {
                    break;
                };
                if queue[front_index].receive_count >= max_receives {
                    dead.push(queue.remove(front_index).expect("present"));
                    continue;
                }
                let receipt = self.next_id.fetch_add(1, Ordering::Relaxed);
                let m = &mut queue[front_index];
                m.receive_count += 1;
                m.in_flight = Some((receipt, now_ms + visibility_ms));
                out.push(ReceivedFifoMessage {
                    message_id: m.message_id.clone(),
                    receipt,
                    group_id: group.clone(),
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                });
                if queue.iter().all(|m| m.in_flight.is_some()) {
                    break;
                }
            }
        }
        s.dead_letters.extend(dead);
        s.groups.retain(|_, q| !q.is_empty());
        let live: HashSet<String> = s.groups.keys().cloned().collect();
        s.group_order.retain(|g| live.contains(g));
        out
    }

    pub fn delete(&self, receipt: u64) {
        let mut s = self.state.lock().expect("lock");
        for q in s.groups.values_mut() {
            q.retain(|m| m.in_flight.map(|(r, _)| r) != Some(receipt));
        }
        s.groups.retain(|_, q| !q.is_empty());
        let live: HashSet<String> = s.groups.keys().cloned().collect();
        s.group_order.retain(|g| live.contains(g));
        drop(s);
        self.notify.notify_waiters();
    }

    /// Makes an in-flight message visible again now (a failed message in a partial batch response).
    pub fn release(&self, receipt: u64) {
        let mut s = self.state.lock().expect("lock");
        for q in s.groups.values_mut() {
            for m in q.iter_mut() {
                if m.in_flight.map(|(r, _)| r) == Some(receipt) {
                    m.in_flight = None;
                }
            }
        }
        drop(s);
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .expect("lock")
            .groups
            .values()
            .map(VecDeque::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dead_letter_bodies(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("lock")
            .dead_letters
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    /// Resolves when something was sent, deleted or released.
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

#[async_trait]
impl StockQueue for EmbeddedFifoQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        let mut s = self.state.lock().expect("lock");
        for m in messages {
            // SQS dedups within 5 minutes; forever is stricter and fine in process.
            if !s.seen_dedup_ids.insert(m.dedup_id.clone()) {
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if !s.groups.contains_key(&m.group_id) {
                s.group_order.push_back(m.group_id.clone());
            }
            s.groups
                .entry(m.group_id.clone())
                .or_default()
                .push_back(StoredFifoMessage {
                    message_id: format!("m-{id}"),
                    body: m.body.clone(),
                    receive_count: 0,
                    in_flight: None,
                });
        }
        drop(s);
        self.notify.notify_waiters();
        Ok(())
    }
}

/// The same in-process FIFO queue serves as the orders queue (a separate instance from the stock queue).
impl OrderQueue for EmbeddedFifoQueue {}

// ---------------------------------------------------------------- push queue

/// Dirty keys with a visibility time, drained in batches by the pusher loop.
#[derive(Debug, Default)]
pub struct EmbeddedPushQueue {
    keys: Mutex<Vec<(DirtyKey, i64)>>,
    notify: Notify,
}

impl EmbeddedPushQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes every key visible at `now_ms`, deduplicated.
    pub fn drain_ready(&self, now_ms: i64) -> Vec<DirtyKey> {
        let mut keys = self.keys.lock().expect("lock");
        let (ready, later): (Vec<_>, Vec<_>) = keys.drain(..).partition(|(_, at)| *at <= now_ms);
        *keys = later;
        let mut set: Vec<DirtyKey> = ready.into_iter().map(|(k, _)| k).collect();
        set.sort();
        set.dedup();
        set
    }

    pub fn next_visible_at(&self) -> Option<i64> {
        self.keys
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, at)| *at)
            .min()
    }

    pub fn len(&self) -> usize {
        self.keys.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

#[async_trait]
impl PushQueue for EmbeddedPushQueue {
    async fn mark_dirty(&self, keys: &[DirtyKey], delay_seconds: u32) -> Result<(), BackendError> {
        let at = chrono::Utc::now().timestamp_millis() + i64::from(delay_seconds) * 1000;
        self.keys
            .lock()
            .expect("lock")
            .extend(keys.iter().cloned().map(|k| (k, at)));
        self.notify.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(group: &str, dedup: &str) -> FifoMessage {
        FifoMessage {
            group_id: group.into(),
            dedup_id: dedup.into(),
            body: dedup.into(),
        }
    }

    #[tokio::test]
    async fn fifo_groups_block_while_in_flight_and_redeliver_in_order() {
        let q = EmbeddedFifoQueue::new(3);
        q.send_all(&[
            msg("A", "a1"),
            msg("A", "a2"),
            msg("B", "b1"),
            msg("A", "a1"),
        ])
        .await
        .unwrap();
        assert_eq!(q.len(), 3, "duplicate dedup id dropped");
        let first = q.receive(1, 1000, 0);
        assert_eq!(first[0].body, "a1");
        let second = q.receive(10, 10_000, 0);
        assert_eq!(
            second.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["b1"]
        );
        // a1 times out: it comes back before a2.
        let again = q.receive(1, 1000, 1000);
        assert_eq!(again[0].body, "a1");
        assert_eq!(again[0].receive_count, 2);
        q.delete(again[0].receipt);
        let next = q.receive(10, 1000, 1000);
        assert_eq!(
            next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["a2"]
        );
    }

    #[tokio::test]
    async fn fifo_dead_letters_after_max_receives() {
        let q = EmbeddedFifoQueue::new(2);
        q.send_all(&[msg("A", "a1"), msg("A", "a2")]).await.unwrap();
        for _ in 0..2 {
            let m = q.receive(1, 0, 0);
            q.release(m[0].receipt);
        }
        let m = q.receive(1, 0, 0);
        assert_eq!(m[0].body, "a2");
        assert_eq!(q.dead_letter_bodies(), vec!["a1".to_string()]);
    }

    #[tokio::test]
    async fn budget_is_a_token_bucket_with_an_hourly_cap() {
        let b = MemoryMutationBudget::new(2, 4);
        assert_eq!(b.try_acquire(0).await.unwrap(), BudgetDecision::Granted);
        assert_eq!(b.try_acquire(0).await.unwrap(), BudgetDecision::Granted);
        // Empty: one token comes back every 10 s / 2 (at 95 % of the rate: 5.27 s).
        assert_eq!(
            b.try_acquire(1_000).await.unwrap(),
            BudgetDecision::WaitUntil(5_264)
        );
        assert_eq!(b.try_acquire(5_264).await.unwrap(), BudgetDecision::Granted);
        assert_eq!(
            b.try_acquire(60_000).await.unwrap(),
            BudgetDecision::Granted
        );
        assert_eq!(
            b.try_acquire(120_000).await.unwrap(),
            BudgetDecision::WaitUntil(3_600_000)
        );
        b.block_until(3_700_000).await.unwrap();
        assert_eq!(
            b.try_acquire(3_600_001).await.unwrap(),
            BudgetDecision::WaitUntil(3_700_000)
        );
    }
}
