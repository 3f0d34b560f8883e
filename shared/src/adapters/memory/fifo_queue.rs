//! A FIFO queue with group semantics (the stock and orders queues).

use crate::core::errors::BackendError;
use crate::stock::ports::{FifoMessage, OrderQueue, StockQueue};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

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
    /// Group id and message, in the order they died.
    dead_letters: Vec<(String, StoredFifoMessage)>,
}

/// A message in the dead-letter list (what `shelfsync dlq list --serve` shows).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub group_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// An SQS-FIFO-like queue: order within a group, an in-flight message blocks its group, messages come back
/// after the visibility timeout, and after `max_receive_count` receives they move to a dead-letter list.
#[derive(Debug)]
pub struct MemoryFifoQueue {
    state: Mutex<FifoState>,
    next_id: AtomicU64,
    max_receive_count: u32,
    notify: Notify,
}

impl MemoryFifoQueue {
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
                    dead.push((group.clone(), queue.remove(front_index).expect("present")));
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
        self.dead_letters().into_iter().map(|m| m.body).collect()
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.state
            .lock()
            .expect("lock")
            .dead_letters
            .iter()
            .map(|(group, m)| DeadLetter {
                message_id: m.message_id.clone(),
                group_id: group.clone(),
                body: m.body.clone(),
                receive_count: m.receive_count,
            })
            .collect()
    }

    /// Moves up to `max` dead letters back to the end of their groups, oldest first (so each group keeps its
    /// order), with their receive count reset — as an SQS redrive does.
    pub fn redrive(&self, max: usize) -> Vec<DeadLetter> {
        let mut s = self.state.lock().expect("lock");
        let take = max.min(s.dead_letters.len());
        let moved: Vec<(String, StoredFifoMessage)> = s.dead_letters.drain(..take).collect();
        let mut out = Vec::with_capacity(moved.len());
        for (group, mut m) in moved {
            out.push(DeadLetter {
                message_id: m.message_id.clone(),
                group_id: group.clone(),
                body: m.body.clone(),
                receive_count: m.receive_count,
            });
            m.receive_count = 0;
            m.in_flight = None;
            if !s.groups.contains_key(&group) {
                s.group_order.push_back(group.clone());
            }
            s.groups.entry(group).or_default().push_back(m);
        }
        drop(s);
        self.notify.notify_waiters();
        out
    }

    /// Resolves when something was sent, deleted or released.
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

#[async_trait]
impl StockQueue for MemoryFifoQueue {
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
impl OrderQueue for MemoryFifoQueue {}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(group: &str, body: &str) -> FifoMessage {
        FifoMessage {
            group_id: group.into(),
            dedup_id: body.into(),
            body: body.into(),
        }
    }

    #[tokio::test]
    async fn redriven_letters_return_to_their_groups_in_order() {
        let q = MemoryFifoQueue::new(1);
        StockQueue::send_all(
            &q,
            &[message("g1", "a"), message("g1", "b"), message("g2", "c")],
        )
        .await
        .unwrap();
        assert_eq!(q.receive(10, 1_000, 0).len(), 3);
        // Never deleted: past the receive limit they die, in order.
        assert!(q.receive(10, 1_000, 2_000).is_empty());
        let dead: Vec<(String, String)> = q
            .dead_letters()
            .into_iter()
            .map(|d| (d.group_id, d.body))
            .collect();
        assert_eq!(
            dead,
            [("g1", "a"), ("g1", "b"), ("g2", "c")].map(|(g, b)| (g.to_string(), b.to_string()))
        );
        let moved = q.redrive(2);
        assert_eq!(moved.len(), 2);
        assert_eq!(q.dead_letter_bodies(), ["c"]);
        let again: Vec<(String, u32)> = q
            .receive(10, 1_000, 3_000)
            .into_iter()
            .map(|m| (m.body, m.receive_count))
            .collect();
        assert_eq!(again, [("a".to_string(), 1), ("b".to_string(), 1)]);
    }
}
