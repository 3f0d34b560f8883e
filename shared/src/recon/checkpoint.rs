//! The resumable state of a run, saved after every page, and its in-memory store.

use super::{Counters, JobKind, RunOptions};
use crate::core::ids::StoreCode;
use serde::{Deserialize, Serialize};

/// Where the next invocation continues: the store (index into [`Checkpoint::stores`]) and its next Centra page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub store_index: u32,
    /// 1-based Centra page; [`Cursor::AFTER_PAGES`] once every page of the store was read and what is left is
    /// the ledger rows Centra did not list.
    pub page: u32,
}

impl Cursor {
    pub const AFTER_PAGES: u32 = u32::MAX;

    pub fn start() -> Self {
        Self {
            store_index: 0,
            page: 1,
        }
    }
}

/// A report part holding findings: `(store index, page)`; page 0 holds the store's rows Centra did not list.
/// A pair rather than a key string keeps the checkpoint small (a 1 M-row sweep has 5,000 pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartRef(pub u32, pub u32);

impl PartRef {
    pub fn store_index(self) -> u32 {
        self.0
    }
    pub fn page(self) -> u32 {
        self.1
    }
}

/// What a run was asked, so an invocation asked something else starts a new run instead of mixing the two.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunSignature {
    pub dry_run: bool,
    pub since_ms: Option<i64>,
    pub full: bool,
}

impl RunSignature {
    pub fn of(opts: &RunOptions) -> Self {
        Self {
            dry_run: opts.dry_run,
            since_ms: opts.since.map(|t| t.timestamp_millis()),
            full: opts.full,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub job: JobKind,
    pub scope: String,
    pub run_id: String,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    /// Set by the store on load; a save is conditional on it.
    #[serde(default)]
    pub revision: u64,
    pub signature: RunSignature,
    /// The stores of this run, fixed when it started (a mapping change takes effect with the next run).
    pub stores: Vec<StoreCode>,
    pub cursor: Cursor,
    pub counters: Counters,
    /// Report parts with findings, in the order written.
    #[serde(default)]
    pub parts: Vec<PartRef>,
    /// Invocations that worked on this run.
    pub invocations: u32,
    /// Set once the report is written.
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    /// The job's own resumable state (stock drift: the current store's seen-rows bitmap).
    #[serde(default)]
    pub state: serde_json::Value,
}

impl Checkpoint {
    pub fn finished(&self) -> bool {
        self.finished_at_ms.is_some()
    }

    /// `recon#<job>#<scope>`: the partition key in the stock table.
    pub fn key(job: JobKind, scope: &str) -> String {
        format!("recon#{}#{scope}", job.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryCheckpointStore;
    use crate::recon::ports::CheckpointStore;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            job: JobKind::StockDrift,
            scope: "all".into(),
            run_id: "r1".into(),
            started_at_ms: 1,
            updated_at_ms: 1,
            revision: 0,
            signature: RunSignature::default(),
            stores: vec![StoreCode::parse("LDN-01").unwrap()],
            cursor: Cursor::start(),
            counters: Counters::default(),
            parts: vec![PartRef(0, 3)],
            invocations: 1,
            finished_at_ms: None,
            state: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn saves_are_conditional_on_the_revision() {
        let store = MemoryCheckpointStore::new();
        let cp = checkpoint();
        assert!(store.save(&cp, None).await.unwrap());
        assert!(!store.save(&cp, None).await.unwrap(), "exists already");
        let loaded = store
            .load(JobKind::StockDrift, "all")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded.revision, 1);
        assert!(store.save(&loaded, Some(1)).await.unwrap());
        assert!(
            !store.save(&loaded, Some(1)).await.unwrap(),
            "stale revision"
        );
        assert!(store
            .load(JobKind::StockDrift, "LDN-01")
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn part_refs_serialise_as_pairs() {
        assert_eq!(serde_json::to_string(&PartRef(2, 7)).unwrap(), "[2,7]");
    }
}
