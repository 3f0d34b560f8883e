//! The idempotency table's stream, read for the event archive: completed intake records and
//! applied-movement markers, decoded with the same attribute readers as the table's adapters.

use crate::adapters::aws::attrs::{get_s, Item};
use crate::adapters::aws::idempotency::parse_record;
use crate::adapters::aws::ledger::parse_applied_marker;
use crate::archive::ArchivedChange;
use crate::stock::ports::IdempotencyStatus;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_dynamo::AttributeValue as StreamValue;

/// Record keys the archive is about (the ESM's filter lets only these through; checked again here).
const ACCEPTED_PREFIXES: [&str; 2] = ["store-event#", "centra-event#"];
const APPLIED_PREFIX: &str = "applied#";

/// A stream image attribute as the SDK's type, so one reader serves the table and its stream.
fn sdk_value(value: &StreamValue) -> AttributeValue {
    match value {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::B(b) => AttributeValue::B(Blob::new(b.clone())),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.iter().cloned().map(Blob::new).collect()),
        StreamValue::L(v) => AttributeValue::L(v.iter().map(sdk_value).collect()),
        StreamValue::M(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), sdk_value(v))).collect())
        }
    }
}

fn sdk_item(image: &serde_dynamo::Item) -> Item {
    image
        .iter()
        .map(|(k, v)| (k.clone(), sdk_value(v)))
        .collect()
}

/// The archive's view of one stream record; `None` for records the archive does not keep (in-progress
/// leases, push records, the budget, removals by TTL).
pub fn change_of(record: &EventRecord) -> Option<ArchivedChange> {
    if record.event_name == "REMOVE" {
        return None;
    }
    change_of_item(
        &sdk_item(&record.change.new_image),
        record
            .change
            .approximate_creation_date_time
            .timestamp_millis(),
    )
}

/// The archive's view of an idempotency table item (from the stream, or scanned by a backfill); `at_ms` dates
/// an unreadable one.
pub fn change_of_item(item: &Item, at_ms: i64) -> Option<ArchivedChange> {
    let key = get_s(item, "id").ok()?.to_string();
    let unreadable = |reason: String| {
        Some(ArchivedChange::Unreadable {
            key: key.clone(),
            at_ms,
            reason,
        })
    };
    if ACCEPTED_PREFIXES.iter().any(|p| key.starts_with(p)) {
        let record = match parse_record(item) {
            Ok(record) => record,
            Err(e) => return unreadable(e.to_string()),
        };
        return match (record.status, record.accepted) {
            (IdempotencyStatus::Completed, Some(request)) => {
                Some(ArchivedChange::Accepted { key, request })
            }
            // Completed before the archive existed: nothing to archive but the fact.
            (IdempotencyStatus::Completed, None) => {
                unreadable("completed record without its request".into())
            }
            (IdempotencyStatus::InProgress, _) => None,
        };
    }
    if let Some(movement_id) = key.strip_prefix(APPLIED_PREFIX) {
        return match parse_applied_marker(item) {
            Ok(marker) => Some(ArchivedChange::Applied {
                movement_id: movement_id.to_string(),
                marker,
            }),
            Err(e) => unreadable(e.to_string()),
        };
    }
    None
}

/// The batch's changes in stream order, and the id that names its objects (its first record's).
pub fn changes_of(event: &Event) -> (String, Vec<ArchivedChange>) {
    let batch_id = event
        .records
        .first()
        .map(|r| r.event_id.clone())
        .unwrap_or_default();
    (
        batch_id,
        event.records.iter().filter_map(change_of).collect(),
    )
}
