//! Intake idempotency records in DynamoDB, in the Powertools layout (`id`, `status`, `expiration` in epoch
//! seconds as the TTL attribute) plus an `owner` fencing token and a lease in epoch milliseconds.

use crate::adapters::aws::attrs::{
    dynamo_error, get_i64, get_s, is_condition_failed, n, s, seconds, Item,
};
use crate::core::errors::BackendError;
use crate::core::gzip::{gunzip, gzip, INLINE_BODY_LIMIT};
use crate::events::store_events::MAX_BODY_BYTES;
use crate::stock::ports::{
    AcceptedRequest, AcquireOutcome, IdempotencyRecord, IdempotencyStatus, IdempotencyStore,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_dynamodb::Client;

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    pub client: Client,
    pub table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn status_text(status: IdempotencyStatus) -> &'static str {
    match status {
        IdempotencyStatus::InProgress => IN_PROGRESS,
        IdempotencyStatus::Completed => COMPLETED,
    }
}

fn record_item(record: &IdempotencyRecord) -> Item {
    let mut item = Item::from([
        ("id".to_string(), s(&record.key)),
        ("status".to_string(), s(status_text(record.status))),
        ("body_hash".to_string(), s(&record.body_hash)),
        ("owner".to_string(), s(&record.owner)),
        ("lease_until_ms".to_string(), n(record.lease_until_ms)),
        ("expiration".to_string(), n(record.expires_at_s)),
    ]);
    if let Some(accepted) = &record.accepted {
        put_accepted(&mut item, accepted);
    }
    item
}

/// The accepted request's attributes: small UTF-8 bodies as text (`body`), others gzip (`body_gz`), which
/// keeps the largest body (256 KiB) far under DynamoDB's 400 KB item limit.
fn put_accepted(item: &mut Item, accepted: &AcceptedRequest) {
    item.insert("store".into(), s(&accepted.store));
    item.insert("event_type".into(), s(&accepted.event_type));
    item.insert("received_at_ms".into(), n(accepted.received_at_ms));
    if let Some(timestamp) = &accepted.webhook_timestamp {
        item.insert("webhook_timestamp".into(), s(timestamp));
    }
    match std::str::from_utf8(&accepted.body) {
        Ok(text) if accepted.body.len() <= INLINE_BODY_LIMIT => {
            item.insert("body".into(), s(text));
        }
        _ => {
            item.insert(
                "body_gz".into(),
                AttributeValue::B(Blob::new(gzip(&accepted.body))),
            );
        }
    }
}

/// The accepted request on a stored record, if it has one (records from before the archive do not).
pub(crate) fn parse_accepted(item: &Item) -> Result<Option<AcceptedRequest>, BackendError> {
    if !item.contains_key("received_at_ms") {
        return Ok(None);
    }
    let body = match (item.get("body"), item.get("body_gz")) {
        (Some(AttributeValue::S(text)), _) => text.clone().into_bytes(),
        (_, Some(AttributeValue::B(packed))) => gunzip(packed.as_ref(), MAX_BODY_BYTES)
            .map_err(|e| BackendError::new("dynamodb", format!("idempotency record body: {e}")))?,
        _ => {
            return Err(BackendError::new(
                "dynamodb",
                "idempotency record has no body or body_gz",
            ))
        }
    };
    Ok(Some(AcceptedRequest {
        store: get_s(item, "store")?.to_string(),
        event_type: get_s(item, "event_type")?.to_string(),
        received_at_ms: get_i64(item, "received_at_ms")?,
        webhook_timestamp: match item.get("webhook_timestamp") {
            Some(AttributeValue::S(t)) => Some(t.clone()),
            _ => None,
        },
        body,
    }))
}

pub(crate) fn parse_record(item: &Item) -> Result<IdempotencyRecord, BackendError> {
    let status = match get_s(item, "status")? {
        IN_PROGRESS => IdempotencyStatus::InProgress,
        COMPLETED => IdempotencyStatus::Completed,
        other => {
            return Err(BackendError::new(
                "dynamodb",
                format!("idempotency record has unknown status `{other}`"),
            ))
        }
    };
    Ok(IdempotencyRecord {
        key: get_s(item, "id")?.to_string(),
        status,
        body_hash: get_s(item, "body_hash")?.to_string(),
        owner: get_s(item, "owner")?.to_string(),
        lease_until_ms: get_i64(item, "lease_until_ms")?,
        expires_at_s: get_i64(item, "expiration")?,
        accepted: parse_accepted(item)?,
    })
}

impl DynamoIdempotencyStore {
    async fn conditional_put(
        &self,
        record: &IdempotencyRecord,
        now_ms: i64,
    ) -> Result<Option<Item>, BackendError> {
        // `expiration` is in seconds and `lease_until_ms` in milliseconds: each is compared with `now` in its
        // own unit.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record)))
            .condition_expression(
                "attribute_not_exists(#id) OR #expiration < :now_s \
                 OR (#status = :inprogress AND #lease_until_ms < :now_ms)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease_until_ms", "lease_until_ms")
            .expression_attribute_values(":now_s", n(seconds(now_ms)))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":inprogress", s(IN_PROGRESS))
            // The holder's record comes back with the failure: no second round trip.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    Ok(Some(e.item().cloned().unwrap_or_default()))
                }
                _ => Err(dynamo_error("PutItem", err)),
            },
        }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn acquire(
        &self,
        record: &IdempotencyRecord,
        now_ms: i64,
    ) -> Result<AcquireOutcome, BackendError> {
        let existing = match self.conditional_put(record, now_ms).await? {
            None => return Ok(AcquireOutcome::Acquired),
            Some(old) => old,
        };
        if !existing.is_empty() {
            return Ok(AcquireOutcome::Existing(parse_record(&existing)?));
        }
        // Only when the service did not return the old item: read it, and if it vanished in between (released
        // by its owner), the key is free again.
        match self.get(&record.key).await? {
            Some(current) => Ok(AcquireOutcome::Existing(current)),
            None => match self.conditional_put(record, now_ms).await? {
                None => Ok(AcquireOutcome::Acquired),
                Some(_) => match self.get(&record.key).await? {
                    Some(current) => Ok(AcquireOutcome::Existing(current)),
                    None => Err(BackendError::new(
                        "dynamodb",
                        format!(
                            "idempotency record {} changes too fast to acquire",
                            record.key
                        ),
                    )),
                },
            },
        }
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        expires_at_s: i64,
    ) -> Result<bool, BackendError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET #status = :completed, #expiration = :expiration")
            // Fencing: an attempt whose lease was taken over must not mark the new holder's work as done.
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":expiration", n(expires_at_s))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(dynamo_error("UpdateItem", err)),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<bool, BackendError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(key))
            .condition_expression("#owner = :owner AND #status = :inprogress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":inprogress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(dynamo_error("DeleteItem", err)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output.item().map(parse_record).transpose()
    }
}
