//! The interfaces reconciliation reaches storage and Centra through. Memory and local-directory
//! implementations are in `checkpoint` and `sinks`, DynamoDB and S3 ones in `aws`.

use super::checkpoint::Checkpoint;
use super::JobKind;
use crate::centra::catalogue::CentraStockRow;
use crate::centra::{CentraClient, CentraError};
use crate::core::errors::BackendError;
use async_trait::async_trait;

/// Where a job's resumable state lives between invocations.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint of `job` for `scope` (`all` or a store code), with the stored `revision`.
    async fn load(&self, job: JobKind, scope: &str) -> Result<Option<Checkpoint>, BackendError>;
    /// Stores `checkpoint` as revision `expected_revision + 1` (1 when `None`) if the stored revision is still
    /// `expected_revision` (`None`: nothing stored). Returns false when someone else saved meanwhile.
    async fn save(
        &self,
        checkpoint: &Checkpoint,
        expected_revision: Option<u64>,
    ) -> Result<bool, BackendError>;
}

/// Where reports go (the object store the archive and the catalogue snapshot share).
pub use crate::core::objects::ReportSink;

/// One page of a Centra warehouse's stock (offset pages, 1-based; fewer rows than `limit`: the last).
#[async_trait]
pub trait WarehouseStockSource: Send + Sync {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError>;
}

#[async_trait]
impl WarehouseStockSource for CentraClient {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        self.warehouse_stock_page(warehouse_id, page, limit).await
    }
}

/// Where a run that found something is announced (an SNS topic people subscribe to).
#[async_trait]
pub trait AlertSink: Send + Sync {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), BackendError>;
}
