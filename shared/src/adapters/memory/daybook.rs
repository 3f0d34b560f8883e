//! The finance daybook in process.

use crate::core::errors::BackendError;
use crate::core::ids::StoreCode;
use crate::finance::{Accepted, Daybook, DaybookRecord};
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// In-process daybook (local run, tests).
#[derive(Debug, Default)]
pub struct MemoryDaybook {
    days: Mutex<HashMap<(StoreCode, NaiveDate), BTreeMap<String, DaybookRecord>>>,
}

impl MemoryDaybook {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Daybook for MemoryDaybook {
    async fn record_accepted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_id: &str,
        accepted: &[Accepted],
    ) -> Result<(), BackendError> {
        let mut days = self.days.lock().expect("lock");
        let record = days
            .entry((store.clone(), date))
            .or_default()
            .entry(record_id.to_string())
            .or_insert_with(|| DaybookRecord {
                record_id: record_id.to_string(),
                accepted: Vec::new(),
                posted_at_ms: None,
                posted_ref: None,
            });
        record.accepted = accepted.to_vec();
        Ok(())
    }

    async fn record_posted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_ids: &[String],
        posted_at_ms: i64,
        posted_ref: &str,
    ) -> Result<(), BackendError> {
        let mut days = self.days.lock().expect("lock");
        let day = days.entry((store.clone(), date)).or_default();
        for id in record_ids {
            let record = day.entry(id.clone()).or_insert_with(|| DaybookRecord {
                record_id: id.clone(),
                accepted: Vec::new(),
                posted_at_ms: None,
                posted_ref: None,
            });
            if record.posted_at_ms.is_none() {
                record.posted_at_ms = Some(posted_at_ms);
                record.posted_ref = Some(posted_ref.to_string());
            }
        }
        Ok(())
    }

    async fn day(
        &self,
        store: &StoreCode,
        date: NaiveDate,
    ) -> Result<Vec<DaybookRecord>, BackendError> {
        Ok(self
            .days
            .lock()
            .expect("lock")
            .get(&(store.clone(), date))
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default())
    }
}
