//! The dead-letter queues: read them decoded (`shelfsync dlq list`) and move messages back to the queue they
//! came from (`shelfsync dlq redrive`).
//!
//! Redrive is receive → send to the source → delete from the DLQ, and the delete only after the send succeeded:
//! a process that dies in between leaves the message on both queues. When the DLQ message reappears the rerun
//! sends it again with the same `MessageDeduplicationId`, which SQS drops within its 5-minute window; later, the
//! consumer absorbs the duplicate (stock: the applied-movement marker keyed on event id and line; orders: the
//! outbox state; push: a dirty key only asks for a look at the row). Nothing is lost either way.
//!
//! FIFO order: SQS hands out a group's messages in order and none of a group while some are in flight, and a
//! batch sent with `SendMessageBatch` keeps its entries' order within a group, so sending each received batch in
//! received order and deleting it before the next receive keeps every group in the order it had in the DLQ.
//! (SQS's `StartMessageMoveTask` does the same server-side on real AWS but moto lacks it; not used.)

use super::format_ms;
use crate::adapters::aws::sqs::{build_error, sqs_error};
use crate::archive::{parse_gap, ArchiveGap};
use crate::core::errors::BackendError;
use crate::events::orders::OrderQueueMessage;
use crate::events::store_events::StockLineMessage;
use crate::orders::outbox::OrderOutbox;
use crate::recon::request::ReconRequest;
use crate::stock::ports::{DirtyKey, ExceptionLog};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use serde::Serialize;
use std::collections::BTreeMap;

/// Attributes a redrive adds to each message it moves (the consumers read only the body).
pub const REDRIVEN_BY: &str = "redriven_by";
pub const REDRIVEN_AT: &str = "redriven_at";
pub const REDRIVEN_FROM: &str = "redriven_from";
/// SQS allows at most 10 message attributes per message.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
const MAX_BATCH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlqName {
    Stock,
    StockPush,
    Orders,
    Schedules,
    /// The event archive's gap queue: positions of stream batches the archive could not write.
    Archive,
}

impl DlqName {
    pub const ALL: [DlqName; 5] = [
        DlqName::Stock,
        DlqName::StockPush,
        DlqName::Orders,
        DlqName::Schedules,
        DlqName::Archive,
    ];

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown DLQ {name:?} (expected one of stock, stock-push, orders, schedules, archive)"
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DlqName::Stock => "stock",
            DlqName::StockPush => "stock-push",
            DlqName::Orders => "orders",
            DlqName::Schedules => "schedules",
            DlqName::Archive => "archive",
        }
    }

    /// The environment variable holding the DLQ's URL (the stack output of the same name, in upper snake case).
    pub fn dlq_env(self) -> &'static str {
        match self {
            DlqName::Stock => "STOCK_DLQ_URL",
            DlqName::StockPush => "STOCK_PUSH_DLQ_URL",
            DlqName::Orders => "ORDERS_DLQ_URL",
            DlqName::Schedules => "SCHEDULE_DLQ_URL",
            DlqName::Archive => "ARCHIVE_GAP_QUEUE_URL",
        }
    }

    /// The queue whose redrive policy parks messages here (same names as the functions' settings); none for the
    /// Scheduler's DLQ, whose messages are invocations that never reached a queue, nor for the archive's gap
    /// queue, whose messages are stream positions (filled with `shelfsync archive backfill`).
    pub fn source_env(self) -> Option<&'static str> {
        match self {
            DlqName::Stock => Some("STOCK_QUEUE_URL"),
            DlqName::StockPush => Some("STOCK_PUSH_QUEUE_URL"),
            DlqName::Orders => Some("ORDERS_QUEUE_URL"),
            DlqName::Schedules | DlqName::Archive => None,
        }
    }

    pub fn fifo(self) -> bool {
        matches!(self, DlqName::Stock | DlqName::Orders)
    }
}

/// One message received from a DLQ, with what SQS says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DlqMessage {
    pub message_id: String,
    #[serde(skip)]
    pub receipt_handle: String,
    pub body: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// Receives so far, on the source queue and here (a peek counts too).
    pub receive_count: u32,
    /// The queue SQS moved it from (set by SQS's redrive policy).
    pub source_arn: Option<String>,
    pub sent_at: Option<String>,
    /// Message attributes (the Scheduler's DLQ puts its error code and message here), string-valued ones as
    /// text, others by type.
    pub attributes: BTreeMap<String, String>,
    #[serde(skip)]
    raw_attributes: BTreeMap<String, MessageAttributeValue>,
}

/// Receives up to `max` messages, hiding them for `hold_seconds` (FIFO: also holding their groups).
pub async fn receive(
    client: &Client,
    queue_url: &str,
    max: usize,
    hold_seconds: i32,
) -> Result<Vec<DlqMessage>, BackendError> {
    let mut out = Vec::new();
    while out.len() < max {
        let want = (max - out.len()).min(MAX_BATCH) as i32;
        let output = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(want)
            .visibility_timeout(hold_seconds)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        let messages = output.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let system = |name: MessageSystemAttributeName| {
                m.attributes().and_then(|a| a.get(&name)).cloned()
            };
            let raw_attributes: BTreeMap<String, MessageAttributeValue> = m
                .message_attributes()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            out.push(DlqMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                group_id: system(MessageSystemAttributeName::MessageGroupId),
                dedup_id: system(MessageSystemAttributeName::MessageDeduplicationId),
                receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                source_arn: system(MessageSystemAttributeName::DeadLetterQueueSourceArn),
                sent_at: system(MessageSystemAttributeName::SentTimestamp)
                    .and_then(|t| t.parse::<i64>().ok())
                    .map(format_ms),
                attributes: raw_attributes
                    .iter()
                    .map(|(k, v)| {
                        let text = v
                            .string_value()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("({})", v.data_type()));
                        (k.clone(), text)
                    })
                    .collect(),
                raw_attributes,
            });
        }
    }
    Ok(out)
}

/// Makes received messages visible again at once (after a look or a dry run).
pub async fn release(
    client: &Client,
    queue_url: &str,
    messages: &[DlqMessage],
) -> Result<(), BackendError> {
    for chunk in messages.chunks(MAX_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(&m.receipt_handle)
                    .visibility_timeout(0)
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibilityBatch", e))?;
        if let Some(f) = output.failed().first() {
            // Not fatal for a look: the message becomes visible by itself when the hold ends.
            tracing::warn!(
                code = f.code(),
                "a DLQ message stays hidden until its hold ends"
            );
        }
    }
    Ok(())
}

/// Who redrove a message and when.
#[derive(Debug, Clone)]
pub struct RedriveStamp {
    pub by: String,
    pub at_ms: i64,
    pub from: DlqName,
}

/// Sends `messages` to `source_url` in the given order, keeping group, dedup id and message attributes, and
/// adding the redrive stamp. Fails naming the message when one is refused.
pub async fn send_to_source(
    client: &Client,
    source_url: &str,
    fifo: bool,
    messages: &[DlqMessage],
    stamp: &RedriveStamp,
) -> Result<(), BackendError> {
    for chunk in messages.chunks(MAX_BATCH) {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, m) in chunk.iter().enumerate() {
            let mut attributes = m.raw_attributes.clone();
            for (name, value) in [
                (REDRIVEN_BY, stamp.by.clone()),
                (REDRIVEN_AT, format_ms(stamp.at_ms)),
                (REDRIVEN_FROM, stamp.from.as_str().to_string()),
            ] {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(build_error)?;
                attributes.insert(name.to_string(), value);
            }
            if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
                return Err(BackendError::new(
                    "sqs",
                    format!(
                        "message {}: {} attributes with the redrive stamp, SQS allows {MAX_MESSAGE_ATTRIBUTES}",
                        m.message_id,
                        attributes.len()
                    ),
                ));
            }
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(&m.body)
                .set_message_attributes(Some(attributes.into_iter().collect()));
            if fifo {
                let (Some(group), Some(dedup)) = (&m.group_id, &m.dedup_id) else {
                    return Err(BackendError::new(
                        "sqs",
                        format!(
                            "message {}: MessageGroupId or MessageDeduplicationId missing on a FIFO DLQ message",
                            m.message_id
                        ),
                    ));
                };
                entry = entry
                    .message_group_id(group)
                    .message_deduplication_id(dedup);
            }
            entries.push(entry.build().map_err(build_error)?);
        }
        let output = client
            .send_message_batch()
            .queue_url(source_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", e))?;
        if let Some(f) = output.failed().first() {
            // Not retried entry by entry: resending only the failed entries could reorder a group. The caller
            // stops; nothing of this batch is deleted, so a rerun sends it again (dedup ids absorb the rest).
            let index: usize = f.id().trim_start_matches('m').parse().unwrap_or(0);
            return Err(BackendError::new(
                "sqs",
                format!(
                    "SendMessageBatch refused message {}: {} {}",
                    chunk
                        .get(index)
                        .map(|m| m.message_id.as_str())
                        .unwrap_or("?"),
                    f.code(),
                    f.message().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// Deletes messages from the DLQ (after they reached the source queue).
pub async fn delete(
    client: &Client,
    dlq_url: &str,
    messages: &[DlqMessage],
) -> Result<(), BackendError> {
    let handles: Vec<String> = messages.iter().map(|m| m.receipt_handle.clone()).collect();
    crate::adapters::aws::sqs::delete_messages(client, dlq_url, &handles)
        .await
        .map_err(|e| {
            BackendError::new(
                "sqs",
                format!(
                    "{}; they were sent to the source queue and will be sent again by a rerun, which their dedup \
                     ids / the consumers' idempotency absorb",
                    e.message
                ),
            )
        })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedriveReport {
    /// Moved (or, in a dry run, would be moved), in the order sent.
    pub messages: Vec<DlqMessage>,
    pub dry_run: bool,
}

/// How long a redrive hides the batch it is moving: ample for one send and one delete.
pub const REDRIVE_HOLD_SECONDS: i32 = 120;

/// Moves up to `max` messages from the DLQ back to `source_url`, batch by batch.
pub async fn redrive(
    client: &Client,
    dlq_url: &str,
    source_url: &str,
    fifo: bool,
    max: usize,
    stamp: &RedriveStamp,
    dry_run: bool,
) -> Result<RedriveReport, BackendError> {
    let mut report = RedriveReport {
        dry_run,
        ..Default::default()
    };
    if dry_run {
        // Look at everything that would move, then hand it back untouched.
        let seen = receive(client, dlq_url, max, REDRIVE_HOLD_SECONDS).await?;
        release(client, dlq_url, &seen).await?;
        report.messages = seen;
        return Ok(report);
    }
    while report.messages.len() < max {
        let want = (max - report.messages.len()).min(MAX_BATCH);
        let batch = receive(client, dlq_url, want, REDRIVE_HOLD_SECONDS).await?;
        if batch.is_empty() {
            break;
        }
        send_to_source(client, source_url, fifo, &batch, stamp).await?;
        delete(client, dlq_url, &batch).await?;
        report.messages.extend(batch);
    }
    Ok(report)
}

/// A DLQ body read as what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Decoded {
    StockMovement(Box<StockLineMessage>),
    PushRequest(DirtyKey),
    KioskOrder(Box<OrderQueueMessage>),
    SchedulerPayload(serde_json::Value),
    /// Lambda's on-failure record of a stream batch (`DDBStreamBatchInfo`): which records the archive lacks.
    ArchiveGap(ArchiveGap),
    /// The body is not what this queue carries (the parse error says where).
    Unreadable(String),
}

pub fn decode(dlq: DlqName, body: &str) -> Decoded {
    let unreadable = |e: serde_json::Error| Decoded::Unreadable(e.to_string());
    match dlq {
        DlqName::Stock => serde_json::from_str::<StockLineMessage>(body)
            .map(|m| Decoded::StockMovement(Box::new(m)))
            .unwrap_or_else(unreadable),
        DlqName::StockPush => serde_json::from_str::<DirtyKey>(body)
            .map(Decoded::PushRequest)
            .unwrap_or_else(unreadable),
        DlqName::Orders => serde_json::from_str::<OrderQueueMessage>(body)
            .map(|m| Decoded::KioskOrder(Box::new(m)))
            .unwrap_or_else(unreadable),
        // Checked against the reconcile function's own request type, shown as sent.
        DlqName::Schedules => match serde_json::from_str::<ReconRequest>(body) {
            Ok(_) => serde_json::from_str(body)
                .map(Decoded::SchedulerPayload)
                .unwrap_or_else(unreadable),
            Err(e) => Decoded::Unreadable(e.to_string()),
        },
        DlqName::Archive => parse_gap(body)
            .map(Decoded::ArchiveGap)
            .unwrap_or_else(Decoded::Unreadable),
    }
}

/// One line saying what the message is.
pub fn describe(decoded: &Decoded) -> String {
    match decoded {
        Decoded::StockMovement(m) => format!(
            "stock {} of {} at store {} (event {}, line {}, {:?})",
            m.event_type.as_str(),
            m.item,
            m.store,
            m.event_id,
            m.line,
            m.movement
        ),
        Decoded::PushRequest(k) => format!("push request: store {} item {}", k.store, k.item),
        Decoded::KioskOrder(m) => match m.as_ref() {
            OrderQueueMessage::Placed(o) => format!(
                "kiosk order {} at store {} (event {}, {} line(s), {} {})",
                o.cloudshelf_order_id,
                o.store,
                o.event_id,
                o.lines.len(),
                o.payment.amount,
                o.payment.currency
            ),
            OrderQueueMessage::CentraEvent(e) => format!(
                "Centra webhook event: {} {} id {} at {}",
                e.kind, e.action, e.id, e.date
            ),
        },
        Decoded::SchedulerPayload(v) => format!("scheduled reconcile invocation {v}"),
        Decoded::ArchiveGap(g) => format!(
            "archive gap: {} stream record(s) from {} to {} ({}) — fill it: {}",
            g.records,
            g.first_record_at,
            g.last_record_at,
            g.condition.as_deref().unwrap_or("reason not given"),
            g.backfill_command()
        ),
        Decoded::Unreadable(e) => format!("unreadable body: {e}"),
    }
}

/// What our own records say about the message's record: the outbox state of a kiosk order, exceptions naming
/// the event or the store's item.
pub async fn recorded_errors(
    decoded: &Decoded,
    exceptions: &dyn ExceptionLog,
    outbox: &dyn OrderOutbox,
) -> Result<Vec<String>, BackendError> {
    let mut notes = Vec::new();
    let describe_exception = |e: &crate::stock::ports::ExceptionRecord| {
        format!("exception {} [{}]: {}", e.id, e.kind, e.message)
    };
    match decoded {
        Decoded::StockMovement(m) => {
            for e in exceptions.list(Some(m.store.as_str())).await? {
                if e.event_ids.contains(&m.event_id) {
                    notes.push(describe_exception(&e));
                }
            }
        }
        Decoded::PushRequest(k) => {
            let names = [k.item.key(), k.item.group_id()];
            for e in exceptions.list(Some(k.store.as_str())).await? {
                if e.item.as_ref().is_some_and(|i| names.contains(i)) {
                    notes.push(describe_exception(&e));
                }
            }
        }
        Decoded::KioskOrder(m) => {
            if let OrderQueueMessage::Placed(o) = m.as_ref() {
                match outbox.get(&o.cloudshelf_order_id).await? {
                    Some(r) => notes.push(format!(
                        "outbox: {}{}{}",
                        r.state.as_str(),
                        r.exception
                            .as_deref()
                            .map(|x| format!(" ({x})"))
                            .unwrap_or_default(),
                        if r.centra_orders.is_empty() {
                            String::new()
                        } else {
                            format!(", Centra order(s) {:?}", r.centra_orders)
                        }
                    )),
                    None => notes.push("outbox: no record (order-sync never took it)".into()),
                }
                for e in exceptions.list(Some(o.store.as_str())).await? {
                    if e.event_ids.contains(&o.event_id) {
                        notes.push(describe_exception(&e));
                    }
                }
            }
        }
        Decoded::SchedulerPayload(_) | Decoded::ArchiveGap(_) | Decoded::Unreadable(_) => {}
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The functions read only the body and `MessageGroupId` of a record: a redriven message's stamp
    /// attributes change nothing for them.
    #[test]
    fn consumers_read_a_redriven_record_like_any_other() {
        let record = |attributes: &str| {
            format!(
                r#"{{"messageId":"m1","body":"{{\"store\":\"LDN-01\",\"item\":{{\"by\":\"sku\",\"value\":\"A\"}}}}",
                    "attributes":{{"MessageGroupId":"A"}},"messageAttributes":{attributes}}}"#
            )
        };
        let stamped = r#"{"redriven_by":{"stringValue":"alice","dataType":"String"},
                          "redriven_at":{"stringValue":"2026-11-30T00:53:20Z","dataType":"String"},
                          "redriven_from":{"stringValue":"stock","dataType":"String"}}"#;
        let event = |r: String| -> aws_lambda_events::sqs::SqsEvent {
            serde_json::from_str(&format!(r#"{{"Records":[{r}]}}"#)).unwrap()
        };
        let plain = crate::lambda::sqs::fifo_items(event(record("{}")));
        let redriven = crate::lambda::sqs::fifo_items(event(record(stamped)));
        assert_eq!(
            (&plain[0].group_id, &plain[0].payload),
            (&redriven[0].group_id, &redriven[0].payload)
        );
        let (keys, unreadable) = crate::lambda::sqs::dirty_keys(event(record(stamped)));
        assert_eq!((keys.len(), unreadable.len()), (1, 0));
        assert!(matches!(
            decode(DlqName::StockPush, &redriven[0].payload),
            Decoded::PushRequest(_)
        ));
        assert!(matches!(
            decode(DlqName::Orders, &redriven[0].payload),
            Decoded::Unreadable(_)
        ));
    }

    #[test]
    fn names_and_environment() {
        for d in DlqName::ALL {
            assert_eq!(DlqName::parse(d.as_str()), Ok(d));
        }
        assert!(DlqName::parse("push").unwrap_err().contains("stock-push"));
        assert_eq!(DlqName::Schedules.source_env(), None);
        assert!(DlqName::Stock.fifo() && DlqName::Orders.fifo() && !DlqName::StockPush.fifo());
        assert!(matches!(
            decode(
                DlqName::Schedules,
                r#"{"job":"stock_drift","since_minutes":30}"#
            ),
            Decoded::SchedulerPayload(_)
        ));
        assert!(matches!(
            decode(DlqName::Schedules, r#"{"job":"x","surprise":1}"#),
            Decoded::Unreadable(_)
        ));
        assert_eq!(DlqName::Archive.source_env(), None);
    }

    /// Lambda's on-failure record of a DynamoDB stream batch, as the Lambda developer guide shows it.
    #[test]
    fn an_archive_gap_names_the_window_to_backfill() {
        let body = r#"{
            "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:event-archive",
                "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0", "timestamp": "2026-12-07T05:00:00.000Z",
            "DDBStreamBatchInfo": {"shardId": "shardId-00000001574425500210-3b9e5d0b",
                "startSequenceNumber": "800000000003126276362", "endSequenceNumber": "800000000003126276399",
                "approximateArrivalOfFirstRecord": "2026-12-07T04:10:01Z",
                "approximateArrivalOfLastRecord": "2026-12-07T04:11:00Z", "batchSize": 38,
                "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/idem/stream/2026-12-01T00:00:00.000"}
        }"#;
        let Decoded::ArchiveGap(gap) = decode(DlqName::Archive, body) else {
            panic!("not read as an archive gap");
        };
        assert_eq!(
            (gap.records, gap.condition.as_deref()),
            (38, Some("RetryAttemptsExhausted"))
        );
        assert!(describe(&Decoded::ArchiveGap(gap)).ends_with(
            "shelfsync archive backfill --from 2026-12-07T04:10:01Z --to 2026-12-07T04:11:00Z"
        ));
        assert!(matches!(
            decode(DlqName::Archive, r#"{"DDBStreamBatchInfo": {}}"#),
            Decoded::Unreadable(_)
        ));
    }
}
