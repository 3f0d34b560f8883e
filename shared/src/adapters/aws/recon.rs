//! AWS implementations of the reconciliation ports: checkpoints in the stock table (DynamoDB) and reports in
//! S3. Like `crate::adapters::aws`, nothing here is special to emulators except S3 path-style addressing, which any
//! custom endpoint (moto, MinIO) needs because `<bucket>.127.0.0.1` does not resolve.

#[cfg(feature = "dynamodb")]
use super::attrs::dynamo_error;
#[cfg(any(feature = "dynamodb", feature = "s3", feature = "sns"))]
use crate::core::errors::BackendError;
#[cfg(feature = "dynamodb")]
use crate::recon::checkpoint::Checkpoint;
#[cfg(feature = "dynamodb")]
use crate::recon::ports::CheckpointStore;
#[cfg(feature = "s3")]
use crate::recon::ports::ReportSink;
#[cfg(feature = "dynamodb")]
use crate::recon::JobKind;
#[cfg(any(feature = "dynamodb", feature = "s3", feature = "sns"))]
use async_trait::async_trait;
#[cfg(feature = "dynamodb")]
use aws_sdk_dynamodb::types::AttributeValue;
#[cfg(any(feature = "dynamodb", feature = "s3"))]
use std::fmt::Debug;

/// The sort key of a checkpoint item (`pk = recon#<job>#<scope>`).
pub const CHECKPOINT_SK: &str = "checkpoint";

/// Checkpoints in the stock table: `pk = recon#<job>#<scope>`, `sk = checkpoint`, the checkpoint as JSON in
/// `data`, and `revision`, which every save tests and bumps.
#[cfg(feature = "dynamodb")]
#[derive(Debug, Clone)]
pub struct DynamoCheckpointStore {
    pub client: aws_sdk_dynamodb::Client,
    pub stock_table: String,
}

#[cfg(feature = "dynamodb")]
impl DynamoCheckpointStore {
    pub fn new(client: aws_sdk_dynamodb::Client, stock_table: impl Into<String>) -> Self {
        Self {
            client,
            stock_table: stock_table.into(),
        }
    }
}

#[cfg(feature = "dynamodb")]
#[async_trait]
impl CheckpointStore for DynamoCheckpointStore {
    async fn load(&self, job: JobKind, scope: &str) -> Result<Option<Checkpoint>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.stock_table)
            .key("pk", AttributeValue::S(Checkpoint::key(job, scope)))
            .key("sk", AttributeValue::S(CHECKPOINT_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let data = item
            .get("data")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| BackendError::new("dynamodb", "checkpoint item has no `data`"))?;
        let revision = item
            .get("revision")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| BackendError::new("dynamodb", "checkpoint item has no `revision`"))?;
        let mut checkpoint: Checkpoint = serde_json::from_str(data).map_err(|e| {
            BackendError::new("dynamodb", format!("checkpoint `data` is unreadable: {e}"))
        })?;
        // The attribute is what the save conditions test, so it is the authority.
        checkpoint.revision = revision;
        Ok(Some(checkpoint))
    }

    async fn save(
        &self,
        checkpoint: &Checkpoint,
        expected_revision: Option<u64>,
    ) -> Result<bool, BackendError> {
        let new_revision = expected_revision.map_or(1, |r| r + 1);
        let mut stored = checkpoint.clone();
        stored.revision = new_revision;
        let data = serde_json::to_string(&stored).map_err(|e| {
            BackendError::new("dynamodb", format!("cannot serialise checkpoint: {e}"))
        })?;
        let request = self
            .client
            .put_item()
            .table_name(&self.stock_table)
            .item(
                "pk",
                AttributeValue::S(Checkpoint::key(checkpoint.job, &checkpoint.scope)),
            )
            .item("sk", AttributeValue::S(CHECKPOINT_SK.into()))
            .item("revision", AttributeValue::N(new_revision.to_string()))
            .item("data", AttributeValue::S(data))
            // For operators browsing the table.
            .item("run_id", AttributeValue::S(checkpoint.run_id.clone()))
            .item("finished", AttributeValue::Bool(checkpoint.finished()))
            .item(
                "updated_at_ms",
                AttributeValue::N(checkpoint.updated_at_ms.to_string()),
            );
        let request = match expected_revision {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => request
                .condition_expression("#revision = :expected")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":expected", AttributeValue::N(rev.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(dynamo_error("PutItem", err)),
        }
    }
}

/// An S3 client for the report bucket: path-style addressing when the configuration names a custom endpoint
/// (`AWS_ENDPOINT_URL`), virtual-hosted style (the AWS default) otherwise.
#[cfg(feature = "s3")]
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    crate::adapters::aws::AwsConfig::new(config.clone()).s3()
}

/// Reports as S3 objects (`PutObject` / `GetObject`) in one bucket.
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub struct S3ReportSink {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

#[cfg(feature = "s3")]
impl S3ReportSink {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[cfg(feature = "s3")]
fn s3_error<E, R>(
    operation: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> BackendError
where
    E: std::error::Error + 'static,
    R: Debug + 'static,
{
    BackendError::new(
        "s3",
        format!(
            "{operation} {key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(err)
        ),
    )
}

#[cfg(feature = "s3")]
#[async_trait]
impl ReportSink for S3ReportSink {
    async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), BackendError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(err) => return Err(s3_error("GetObject", key, err)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| BackendError::new("s3", format!("GetObject {key}: body lost: {e}")))?;
        Ok(Some(body.into_bytes().to_vec()))
    }
}

/// Alerts as SNS messages on one topic.
#[cfg(feature = "sns")]
#[derive(Debug, Clone)]
pub struct SnsAlertSink {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

#[cfg(feature = "sns")]
impl SnsAlertSink {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[cfg(feature = "sns")]
#[async_trait]
impl crate::recon::ports::AlertSink for SnsAlertSink {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), BackendError> {
        // SNS takes at most 100 printable ASCII characters as an e-mail subject.
        let subject: String = subject
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(100)
            .collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| {
                BackendError::new(
                    "sns",
                    format!("Publish: {}", aws_sdk_sns::error::DisplayErrorContext(e)),
                )
            })?;
        Ok(())
    }
}
