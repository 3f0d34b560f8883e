//! The ledger, the push log and the exception log in one store, like the DynamoDB stock table.

use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::stock::ledger::{LedgerRow, PushRecord};
use crate::stock::ports::{
    AppliedMarker, AppliedMarkers, ApplyWrite, ExceptionLog, ExceptionRecord, LedgerStore, PushLog,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct LedgerState {
    rows: BTreeMap<(StoreCode, ItemRef), LedgerRow>,
    /// Movement id → (expiry in epoch seconds, what the marker records).
    markers: HashMap<String, (i64, AppliedMarker)>,
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
        if s.markers
            .get(movement_id)
            .is_some_and(|(exp, _)| *exp >= now_s)
        {
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
        let marker = AppliedMarker {
            store: row.store.to_string(),
            item: row.item.key(),
            version: row.version,
            applied_at_ms: row.updated_at_ms,
        };
        s.markers
            .insert(movement_id.to_string(), (marker_expires_at_s, marker));
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
impl AppliedMarkers for MemoryLedgerStore {
    async fn applied_marker(
        &self,
        movement_id: &str,
    ) -> Result<Option<AppliedMarker>, BackendError> {
        Ok(self
            .state
            .lock()
            .expect("lock")
            .markers
            .get(movement_id)
            .map(|(_, m)| m.clone()))
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
