//! Creates the tables and queues the functions expect, for the tests (cargo feature `test-support`, which no
//! function enables). In AWS the SAM template owns them. Creating what already exists is not an error, so a
//! long-lived endpoint can be provisioned again.

use crate::adapters::aws::attrs::dynamo_error;
use crate::core::errors::BackendError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;

const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> BackendError {
    BackendError::new("dynamodb", e.to_string())
}

fn sqs_error<E, R>(operation: &str, err: aws_sdk_sqs::error::SdkError<E, R>) -> BackendError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    BackendError::new(
        "sqs",
        format!(
            "{operation}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(err)
        ),
    )
}

fn string_key(
    name: &str,
    key_type: KeyType,
) -> Result<(AttributeDefinition, KeySchemaElement), BackendError> {
    let definition = AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)?;
    let element = KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)?;
    Ok((definition, element))
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    keys: Vec<(AttributeDefinition, KeySchemaElement)>,
) -> Result<(), BackendError> {
    let (definitions, schema): (Vec<_>, Vec<_>) = keys.into_iter().unzip();
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(schema))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(dynamo_error("CreateTable", err)),
    }
    wait_until_active(client, name).await
}

async fn wait_until_active(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BackendError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let output = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| dynamo_error("DescribeTable", e))?;
        if output.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
            return Err(BackendError::new(
                "dynamodb",
                format!("table {name} did not become ACTIVE"),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Partition key `id` (S), on-demand, TTL on `expiration` (epoch seconds).
pub async fn create_idempotency_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BackendError> {
    create_table(client, name, vec![string_key("id", KeyType::Hash)?]).await?;
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| dynamo_error("DescribeTimeToLive", e))?;
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    // Enabling TTL twice is an error in DynamoDB.
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let specification = TimeToLiveSpecification::builder()
        .attribute_name("expiration")
        .enabled(true)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(specification)
        .send()
        .await
        .map_err(|e| dynamo_error("UpdateTimeToLive", e))?;
    Ok(())
}

/// Partition key `pk` (S) and sort key `sk` (S), on-demand.
pub async fn create_stock_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BackendError> {
    create_table(
        client,
        name,
        vec![
            string_key("pk", KeyType::Hash)?,
            string_key("sk", KeyType::Range)?,
        ],
    )
    .await
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, BackendError> {
    let output = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", e))?;
    output.queue_url.ok_or_else(|| {
        BackendError::new("sqs", format!("CreateQueue {name}: no queue URL returned"))
    })
}

async fn queue_arn(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, BackendError> {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?;
    output
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| BackendError::new("sqs", format!("{queue_url} has no QueueArn")))
}

fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count })
        .to_string()
}

async fn create_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    dlq_name: &str,
    common: Vec<(QueueAttributeName, String)>,
    max_receive_count: u32,
    visibility_timeout: u32,
) -> Result<(String, String), BackendError> {
    let dlq_url = create_queue(client, dlq_name, common.clone()).await?;
    let dlq_arn = queue_arn(client, &dlq_url).await?;
    let mut attributes = common;
    attributes.push((
        QueueAttributeName::VisibilityTimeout,
        visibility_timeout.to_string(),
    ));
    attributes.push((
        QueueAttributeName::RedrivePolicy,
        redrive_policy(&dlq_arn, max_receive_count),
    ));
    let queue_url = create_queue(client, name, attributes).await?;
    Ok((queue_url, dlq_url))
}

/// A FIFO queue and its FIFO dead-letter queue (`<name>-dlq.fifo`), with explicit deduplication ids only.
/// `.fifo` is appended to `name` when missing. Returns `(queue_url, dlq_url)`.
pub async fn create_fifo_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receive_count: u32,
    visibility_timeout: u32,
) -> Result<(String, String), BackendError> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let fifo = vec![
        (QueueAttributeName::FifoQueue, "true".to_string()),
        // Identical bodies are distinct movements; only the producer's dedup id says "same message".
        (
            QueueAttributeName::ContentBasedDeduplication,
            "false".to_string(),
        ),
    ];
    create_queue_with_dlq(
        client,
        &format!("{base}.fifo"),
        &format!("{base}-dlq.fifo"),
        fifo,
        max_receive_count,
        visibility_timeout,
    )
    .await
}

/// A standard queue and its dead-letter queue (`<name>-dlq`). Returns `(queue_url, dlq_url)`.
pub async fn create_standard_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receive_count: u32,
    visibility_timeout: u32,
) -> Result<(String, String), BackendError> {
    create_queue_with_dlq(
        client,
        name,
        &format!("{name}-dlq"),
        Vec::new(),
        max_receive_count,
        visibility_timeout,
    )
    .await
}
