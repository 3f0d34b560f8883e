//! The push queue of dirty keys.

use crate::core::errors::BackendError;
use crate::stock::ports::{DirtyKey, PushQueue};
use async_trait::async_trait;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Dirty keys with a visibility time, drained in batches by the pusher loop.
#[derive(Debug, Default)]
pub struct MemoryPushQueue {
    keys: Mutex<Vec<(DirtyKey, i64)>>,
    notify: Notify,
}

impl MemoryPushQueue {
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
impl PushQueue for MemoryPushQueue {
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
