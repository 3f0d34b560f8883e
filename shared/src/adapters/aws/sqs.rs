//! SQS senders for the stock FIFO queue and the push (standard) queue, and the receive/delete/visibility
//! calls a test or the local run uses to drive an SQS → Lambda-like loop (nothing emulates the trigger).

use crate::core::errors::BackendError;
use crate::stock::ports::{DirtyKey, FifoMessage, OrderQueue, PushQueue, StockQueue};
use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// SQS accepts at most 10 entries per batch call.
const MAX_BATCH: usize = 10;
const SEND_ATTEMPTS: u32 = 3;
const MAX_CONCURRENT_REQUESTS: usize = 8;
/// The service's ceiling for `DelaySeconds`.
const MAX_DELAY_SECONDS: u32 = 900;

pub(crate) fn sqs_error<E, R>(operation: &str, err: SdkError<E, R>) -> BackendError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    BackendError::new("sqs", format!("{operation}: {}", DisplayErrorContext(err)))
}

pub(crate) fn build_error(e: aws_sdk_sqs::error::BuildError) -> BackendError {
    BackendError::new("sqs", e.to_string())
}

/// Batch entry ids only have to be unique within one call and match `[A-Za-z0-9_-]{1,80}`.
fn entry_id(index: usize) -> String {
    format!("m{index}")
}

/// Sends up to 10 entries, resending only those SQS reports as failed (a partial failure is normal under
/// throttling). Sender faults are not retried: the same request would fail the same way.
async fn send_batch_with_retries(
    client: &Client,
    queue_url: &str,
    mut entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<(), BackendError> {
    for attempt in 1..=SEND_ATTEMPTS {
        let output = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", e))?;
        let failed = output.failed();
        if failed.is_empty() {
            return Ok(());
        }
        let describe = || {
            failed
                .iter()
                .map(|f| {
                    format!(
                        "{}: {} {}",
                        f.id(),
                        f.code(),
                        f.message().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        if failed.iter().any(|f| f.sender_fault()) {
            return Err(BackendError::new(
                "sqs",
                format!("SendMessageBatch refused entries: {}", describe()),
            ));
        }
        if attempt == SEND_ATTEMPTS {
            return Err(BackendError::new(
                "sqs",
                format!(
                    "SendMessageBatch: entries still failing after {SEND_ATTEMPTS} attempts: {}",
                    describe()
                ),
            ));
        }
        let failed_ids: HashSet<&str> = failed.iter().map(|f| f.id()).collect();
        entries.retain(|e| failed_ids.contains(e.id()));
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
    }
    unreachable!("the last attempt returns")
}

/// A FIFO queue of stock-line and order messages (`StockQueue` and `OrderQueue`): the stock queue and the orders
/// queue of the template are both this type.
#[derive(Debug, Clone)]
pub struct SqsFifoQueue {
    pub client: Client,
    pub queue_url: String,
}

impl SqsFifoQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// Splits messages into lanes that can be sent concurrently without reordering a group: every message of
/// one group goes to the same lane, in its original order. Big groups are spread first for balance.
fn fifo_lanes(messages: &[FifoMessage]) -> Vec<Vec<&FifoMessage>> {
    let mut group_sizes: Vec<(&str, usize)> = Vec::new();
    let mut group_index: HashMap<&str, usize> = HashMap::new();
    for m in messages {
        let i = *group_index.entry(m.group_id.as_str()).or_insert_with(|| {
            group_sizes.push((m.group_id.as_str(), 0));
            group_sizes.len() - 1
        });
        group_sizes[i].1 += 1;
    }
    let lane_count = messages
        .len()
        .div_ceil(MAX_BATCH)
        .clamp(1, MAX_CONCURRENT_REQUESTS)
        .min(group_sizes.len().max(1));
    group_sizes.sort_by_key(|&(_, size)| std::cmp::Reverse(size));
    let mut loads = vec![0usize; lane_count];
    let mut lane_of: HashMap<&str, usize> = HashMap::new();
    for (group, size) in group_sizes {
        let lightest = (0..lane_count).min_by_key(|&l| loads[l]).unwrap_or(0);
        loads[lightest] += size;
        lane_of.insert(group, lightest);
    }
    let mut lanes = vec![Vec::new(); lane_count];
    for m in messages {
        lanes[lane_of[m.group_id.as_str()]].push(m);
    }
    lanes
}

#[async_trait]
impl StockQueue for SqsFifoQueue {
    async fn send_all(&self, messages: &[FifoMessage]) -> Result<(), BackendError> {
        // SQS keeps the order of entries within a batch and of batches sent one after another; lanes run
        // concurrently, batches within a lane in sequence, so each group arrives in order.
        let lanes = fifo_lanes(messages).into_iter().map(|lane| async move {
            for chunk in lane.chunks(MAX_BATCH) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(entry_id(i))
                            .message_body(&m.body)
                            .message_group_id(&m.group_id)
                            .message_deduplication_id(&m.dedup_id)
                            .build()
                            .map_err(build_error)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                send_batch_with_retries(&self.client, &self.queue_url, entries).await?;
            }
            Ok::<(), BackendError>(())
        });
        futures::future::try_join_all(lanes).await?;
        Ok(())
    }
}

/// The FIFO sender is also the orders-queue sender (`ORDERS_QUEUE_URL`): same batching, lanes and retries.
impl OrderQueue for SqsFifoQueue {}

#[derive(Debug, Clone)]
pub struct SqsPushQueue {
    pub client: Client,
    pub queue_url: String,
}

impl SqsPushQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl PushQueue for SqsPushQueue {
    async fn mark_dirty(&self, keys: &[DirtyKey], delay_seconds: u32) -> Result<(), BackendError> {
        let mut seen = HashSet::new();
        let bodies = keys
            .iter()
            .filter(|k| seen.insert(*k))
            .map(|k| {
                serde_json::to_string(k).map_err(|e| {
                    BackendError::new("sqs", format!("cannot serialise dirty key: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let delay = i32::try_from(delay_seconds.min(MAX_DELAY_SECONDS)).unwrap_or(0);
        let batches = bodies
            .chunks(MAX_BATCH)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(entry_id(i))
                            .message_body(body)
                            .delay_seconds(delay)
                            .build()
                            .map_err(build_error)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        futures::stream::iter(batches)
            .map(|entries| send_batch_with_retries(&self.client, &self.queue_url, entries))
            .buffer_unordered(MAX_CONCURRENT_REQUESTS)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------- driving a consumer by hand

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    /// Set for FIFO queues.
    pub group_id: Option<String>,
    pub body: String,
    pub receive_count: u32,
}

/// One ReceiveMessage call (up to `max`, 1–10) that hides the messages for `visibility_timeout` seconds,
/// as the Lambda poller does. Waits up to 1 s for a message and returns as soon as any is available.
pub async fn receive_batch(
    client: &Client,
    queue_url: &str,
    max: i32,
    visibility_timeout: i32,
) -> Result<Vec<ReceivedMessage>, BackendError> {
    let output = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility_timeout)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| sqs_error("ReceiveMessage", e))?;
    Ok(output
        .messages()
        .iter()
        .map(|m| {
            let attribute = |name: &MessageSystemAttributeName| {
                m.attributes().and_then(|a| a.get(name)).cloned()
            };
            ReceivedMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                group_id: attribute(&MessageSystemAttributeName::MessageGroupId),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: attribute(&MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            }
        })
        .collect())
}

/// Deletes received messages (the ones a handler did not report as failed), 10 per call.
pub async fn delete_messages(
    client: &Client,
    queue_url: &str,
    receipt_handles: &[String],
) -> Result<(), BackendError> {
    for chunk in receipt_handles.chunks(MAX_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(entry_id(i))
                    .receipt_handle(handle)
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessageBatch", e))?;
        if let Some(f) = output.failed().first() {
            return Err(BackendError::new(
                "sqs",
                format!(
                    "DeleteMessageBatch: {} of {} failed, e.g. {}",
                    output.failed().len(),
                    chunk.len(),
                    f.code()
                ),
            ));
        }
    }
    Ok(())
}

/// Makes a received message visible again after `timeout_seconds` (0 = at once, as a failed Lambda record).
pub async fn change_visibility(
    client: &Client,
    queue_url: &str,
    receipt_handle: &str,
    timeout_seconds: i32,
) -> Result<(), BackendError> {
    client
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(timeout_seconds)
        .send()
        .await
        .map_err(|e| sqs_error("ChangeMessageVisibility", e))?;
    Ok(())
}

/// The event archive's gap queue, peeked: messages are received with a visibility timeout of 0, so they stay
/// where they are for the operator (`shelfsync dlq list archive`) and the next run.
pub struct SqsArchiveGaps {
    pub client: Client,
    pub queue_url: String,
}

#[async_trait::async_trait]
impl crate::archive::ArchiveGapSource for SqsArchiveGaps {
    async fn peek(
        &self,
        max: usize,
    ) -> Result<(u64, Vec<Result<crate::archive::ArchiveGap, String>>), BackendError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", e))?;
        let waiting = attributes
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if waiting == 0 {
            return Ok((0, Vec::new()));
        }
        let messages =
            receive_batch(&self.client, &self.queue_url, max.clamp(1, 10) as i32, 0).await?;
        Ok((
            waiting,
            messages
                .iter()
                .map(|m| crate::archive::parse_gap(&m.body))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(group: &str, n: usize) -> FifoMessage {
        FifoMessage {
            group_id: group.to_string(),
            dedup_id: format!("{group}-{n}"),
            body: n.to_string(),
        }
    }

    #[test]
    fn lanes_keep_each_group_whole_and_in_order() {
        let messages: Vec<_> = (0..40)
            .map(|n| message(["a", "b", "c", "d"][n % 4], n))
            .collect();
        let lanes = fifo_lanes(&messages);
        assert_eq!(lanes.len(), 4);
        assert_eq!(lanes.iter().map(Vec::len).sum::<usize>(), 40);
        for lane in &lanes {
            let groups: HashSet<_> = lane.iter().map(|m| &m.group_id).collect();
            assert_eq!(groups.len(), 1, "one group per lane here");
            assert!(lane
                .windows(2)
                .all(|w| w[0].body.parse::<usize>().unwrap() < w[1].body.parse().unwrap()));
        }
    }

    #[test]
    fn few_messages_use_one_lane() {
        let messages: Vec<_> = (0..7).map(|n| message(&format!("g{n}"), n)).collect();
        assert_eq!(fifo_lanes(&messages).len(), 1);
        assert!(fifo_lanes(&[]).len() <= 1);
    }
}
