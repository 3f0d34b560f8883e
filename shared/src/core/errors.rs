//! The one error the domain sees from storage and queues.

/// A failure of the backing store or queue. Always transient from the domain's point of view: the work is
/// retried (SQS redelivery, sender retry), never dropped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: &'static str,
    pub message: String,
}

impl BackendError {
    pub fn new(backend: &'static str, message: impl Into<String>) -> Self {
        Self {
            backend,
            message: message.into(),
        }
    }
}
