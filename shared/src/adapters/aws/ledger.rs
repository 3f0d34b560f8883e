//! Ledger rows and exception records in the stock table (`pk`, `sk`); applied-movement markers and push
//! records in the idempotency table (`id`, TTL on `expiration`).
//!
//! Revisions: every write stores `rev = expected_rev + 1` (1 for a new row), both in the `rev` attribute the
//! conditions test and inside `data`. Callers pass the row with the rev they read and see the new one on
//! their next `get`; they never bump `rev` themselves.

use crate::adapters::aws::attrs::{
    dynamo_error, get_i64, get_json, get_s, is_condition_failed, json, n, now_ms, query_all, s,
    scan_all, seconds, Item,
};
use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::stock::ledger::{LedgerRow, PushRecord};
use crate::stock::ports::{
    AppliedMarker, AppliedMarkers, ApplyWrite, ExceptionLog, ExceptionRecord, LedgerStore, PushLog,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

#[derive(Debug, Clone)]
pub struct DynamoLedgerStore {
    pub client: Client,
    pub stock_table: String,
    pub idempotency_table: String,
}

impl DynamoLedgerStore {
    pub fn new(
        client: Client,
        stock_table: impl Into<String>,
        idempotency_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            stock_table: stock_table.into(),
            idempotency_table: idempotency_table.into(),
        }
    }
}

fn ledger_pk(store: &StoreCode) -> String {
    format!("ledger#{store}")
}

fn exception_pk(store: &str) -> String {
    format!("exception#{store}")
}

fn exception_sk(exception: &ExceptionRecord) -> String {
    // Zero-padded so the sort key orders by time.
    format!("{:013}#{}", exception.created_at_ms, exception.id)
}

fn push_id_key(push_id: &str) -> String {
    format!("push#{push_id}")
}

fn applied_marker_key(movement_id: &str) -> String {
    format!("applied#{movement_id}")
}

/// The stored item for `row` written as revision `new_rev`.
fn row_item(row: &LedgerRow, new_rev: u64) -> Result<Item, BackendError> {
    let mut stored = row.clone();
    stored.rev = new_rev;
    Ok(Item::from([
        ("pk".to_string(), s(ledger_pk(&row.store))),
        ("sk".to_string(), s(row.item.key())),
        ("rev".to_string(), n(new_rev)),
        ("data".to_string(), json(&stored)?),
        // For operators browsing the table: which rows still owe Centra something, and how fresh they are.
        (
            "unpushed".to_string(),
            AttributeValue::Bool(row.has_unpushed()),
        ),
        ("updated_at_ms".to_string(), n(row.updated_at_ms)),
    ]))
}

fn parse_row(item: &Item) -> Result<LedgerRow, BackendError> {
    let mut row: LedgerRow = get_json(item, "data")?;
    // The attribute is what the write conditions test, so it is the authority.
    row.rev = u64::try_from(get_i64(item, "rev")?)
        .map_err(|_| BackendError::new("dynamodb", "ledger row has a negative rev"))?;
    Ok(row)
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
// Another transaction touched the same item at the same moment; re-reading and retrying resolves it.
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

fn classify_cancellation(codes: &[Option<&str>]) -> Option<ApplyWrite> {
    let marker = codes.first().copied().flatten();
    let row = codes.get(1).copied().flatten();
    // A duplicate wins over a conflict: the movement is in the row already, whatever happened to it since.
    if marker == Some(CONDITION_FAILED) {
        return Some(ApplyWrite::Duplicate);
    }
    if row == Some(CONDITION_FAILED) || [marker, row].contains(&Some(TRANSACTION_CONFLICT)) {
        return Some(ApplyWrite::Conflict);
    }
    None
}

#[async_trait]
impl LedgerStore for DynamoLedgerStore {
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.stock_table)
            .key("pk", s(ledger_pk(store)))
            .key("sk", s(item.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output.item().map(parse_row).transpose()
    }

    async fn apply(
        &self,
        movement_id: &str,
        marker_expires_at_s: i64,
        row: &LedgerRow,
        expected_rev: Option<u64>,
    ) -> Result<ApplyWrite, BackendError> {
        let build_error =
            |e: aws_sdk_dynamodb::error::BuildError| BackendError::new("dynamodb", e.to_string());
        let marker = Put::builder()
            .table_name(&self.idempotency_table)
            .item("id", s(applied_marker_key(movement_id)))
            .item("expiration", n(marker_expires_at_s))
            // What the event archive records of an applied movement (the table's stream carries it there).
            .item("store", s(row.store.as_str()))
            .item("item", s(row.item.key()))
            .item("version", n(row.version))
            .item("applied_at_ms", n(row.updated_at_ms))
            // An expired marker may still be present (TTL deletion lags) and no longer counts.
            .condition_expression("attribute_not_exists(#id) OR #expiration < :now_s")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_values(":now_s", n(seconds(now_ms())))
            .build()
            .map_err(build_error)?;
        let row_put = Put::builder()
            .table_name(&self.stock_table)
            .set_item(Some(row_item(row, expected_rev.map_or(1, |r| r + 1))?));
        let row_put = match expected_rev {
            None => row_put.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => row_put
                .condition_expression("#rev = :expected")
                .expression_attribute_names("#rev", "rev")
                .expression_attribute_values(":expected", n(rev)),
        }
        .build()
        .map_err(build_error)?;

        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().put(row_put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(ApplyWrite::Written),
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    err.as_service_error()
                {
                    let codes: Vec<Option<&str>> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code())
                        .collect();
                    if let Some(outcome) = classify_cancellation(&codes) {
                        return Ok(outcome);
                    }
                }
                Err(dynamo_error("TransactWriteItems", err))
            }
        }
    }

    async fn put(&self, row: &LedgerRow, expected_rev: u64) -> Result<bool, BackendError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.stock_table)
            .set_item(Some(row_item(row, expected_rev + 1)?))
            .condition_expression("#rev = :expected")
            .expression_attribute_names("#rev", "rev")
            .expression_attribute_values(":expected", n(expected_rev))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(dynamo_error("PutItem", err)),
        }
    }

    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError> {
        let items = query_partition(&self.client, &self.stock_table, ledger_pk(store)).await?;
        items.iter().map(parse_row).collect()
    }
}

/// Every item of one partition.
async fn query_partition(
    client: &Client,
    table: &str,
    pk: String,
) -> Result<Vec<Item>, BackendError> {
    query_all(
        client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true),
    )
    .await
}

#[async_trait]
impl AppliedMarkers for DynamoLedgerStore {
    async fn applied_marker(
        &self,
        movement_id: &str,
    ) -> Result<Option<AppliedMarker>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.idempotency_table)
            .key("id", s(applied_marker_key(movement_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output.item().map(parse_applied_marker).transpose()
    }
}

/// An applied-movement marker as stored (read by `trace` and, from the table's stream, by the event archive).
pub(crate) fn parse_applied_marker(item: &Item) -> Result<AppliedMarker, BackendError> {
    Ok(AppliedMarker {
        store: get_s(item, "store")?.to_string(),
        item: get_s(item, "item")?.to_string(),
        version: u64::try_from(get_i64(item, "version")?).unwrap_or(0),
        applied_at_ms: get_i64(item, "applied_at_ms")?,
    })
}

#[async_trait]
impl PushLog for DynamoLedgerStore {
    async fn put(&self, record: &PushRecord) -> Result<(), BackendError> {
        self.client
            .put_item()
            .table_name(&self.idempotency_table)
            .item("id", s(push_id_key(&record.push_id)))
            .item("data", json(record)?)
            .item("expiration", n(record.expires_at_s))
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem", e))?;
        Ok(())
    }

    async fn get(&self, push_id: &str) -> Result<Option<PushRecord>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.idempotency_table)
            .key("id", s(push_id_key(push_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output.item().map(|item| get_json(item, "data")).transpose()
    }
}

#[async_trait]
impl ExceptionLog for DynamoLedgerStore {
    async fn record(&self, exception: &ExceptionRecord) -> Result<(), BackendError> {
        self.client
            .put_item()
            .table_name(&self.stock_table)
            .item("pk", s(exception_pk(&exception.store)))
            .item("sk", s(exception_sk(exception)))
            .item("data", json(exception)?)
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem", e))?;
        Ok(())
    }

    async fn list(&self, store: Option<&str>) -> Result<Vec<ExceptionRecord>, BackendError> {
        let items = match store {
            Some(store) => {
                query_partition(&self.client, &self.stock_table, exception_pk(store)).await?
            }
            None => self.scan_exceptions().await?,
        };
        let mut records = items
            .iter()
            .map(|item| get_json::<ExceptionRecord>(item, "data"))
            .collect::<Result<Vec<_>, _>>()?;
        // A scan returns partitions in hash order; operators read them oldest first, like a query.
        records.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(records)
    }
}

impl DynamoLedgerStore {
    async fn scan_exceptions(&self) -> Result<Vec<Item>, BackendError> {
        scan_all(
            self.client
                .scan()
                .table_name(&self.stock_table)
                .filter_expression("begins_with(pk, :exception)")
                .expression_attribute_values(":exception", s("exception#"))
                .consistent_read(true),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_takes_priority_over_conflict() {
        let both = [Some(CONDITION_FAILED), Some(CONDITION_FAILED)];
        assert_eq!(classify_cancellation(&both), Some(ApplyWrite::Duplicate));
        let row_only = [Some("None"), Some(CONDITION_FAILED)];
        assert_eq!(classify_cancellation(&row_only), Some(ApplyWrite::Conflict));
        let racing = [Some(TRANSACTION_CONFLICT), Some("None")];
        assert_eq!(classify_cancellation(&racing), Some(ApplyWrite::Conflict));
        assert_eq!(
            classify_cancellation(&[Some("ValidationError"), None]),
            None
        );
    }
}
