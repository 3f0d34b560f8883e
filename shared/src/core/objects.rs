//! The object store every writer of files shares (reports, the catalogue snapshot, the event archive): S3 when
//! deployed, a local directory or memory elsewhere.

use crate::core::errors::BackendError;
use async_trait::async_trait;

/// A flat key space of objects (`reports/<date>/<run id>/<job>.json`, `events/store=…/…`, …).
#[async_trait]
pub trait ReportSink: Send + Sync {
    /// Creates or replaces the object.
    async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), BackendError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
}
