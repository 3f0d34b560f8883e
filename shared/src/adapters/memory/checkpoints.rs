//! Reconciliation checkpoints in process (tests, the CLI).

use crate::core::errors::BackendError;
use crate::recon::checkpoint::Checkpoint;
use crate::recon::ports::CheckpointStore;
use crate::recon::JobKind;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// Checkpoints in process (tests, the CLI); the same conditional-revision contract as DynamoDB.
#[derive(Debug, Default)]
pub struct MemoryCheckpointStore {
    items: Mutex<HashMap<String, Checkpoint>>,
}

impl MemoryCheckpointStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpointStore {
    async fn load(&self, job: JobKind, scope: &str) -> Result<Option<Checkpoint>, BackendError> {
        Ok(self
            .items
            .lock()
            .expect("lock")
            .get(&Checkpoint::key(job, scope))
            .cloned())
    }

    async fn save(
        &self,
        checkpoint: &Checkpoint,
        expected_revision: Option<u64>,
    ) -> Result<bool, BackendError> {
        let mut items = self.items.lock().expect("lock");
        let key = Checkpoint::key(checkpoint.job, &checkpoint.scope);
        if items.get(&key).map(|c| c.revision) != expected_revision {
            return Ok(false);
        }
        let mut stored = checkpoint.clone();
        stored.revision = expected_revision.map_or(1, |r| r + 1);
        items.insert(key, stored);
        Ok(true)
    }
}
