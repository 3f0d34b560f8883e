//! Idempotency records of the intake (conditional acquire, fenced leases, expiry).

use crate::core::errors::BackendError;
use crate::stock::ports::{AcquireOutcome, IdempotencyRecord, IdempotencyStatus, IdempotencyStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

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
