//! The finance daybook in the stock table: `pk = daybook#<store>#<YYYY-MM-DD>`, `sk = <record id>`. Accepting
//! and posting set different attributes with `UpdateItem`, so neither overwrites the other and both are
//! idempotent (posting keeps its first time with `if_not_exists`). A day is one partition, read with `Query`.

use crate::core::errors::BackendError;
use crate::core::ids::StoreCode;
use crate::finance::{Accepted, Daybook, DaybookRecord};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};

/// Postings of one call sent at once (a pushed row covers up to `ledger::MAX_PENDING_MOVEMENTS`).
const MAX_CONCURRENT_UPDATES: usize = 32;

#[derive(Debug, Clone)]
pub struct DynamoDaybook {
    client: Client,
    table: String,
}

impl DynamoDaybook {
    pub fn new(client: Client, stock_table: impl Into<String>) -> Self {
        Self {
            client,
            table: stock_table.into(),
        }
    }
}

fn pk(store: &StoreCode, date: NaiveDate) -> String {
    format!("daybook#{store}#{date}")
}

fn error<E, R>(operation: &str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> BackendError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    BackendError::new(
        "dynamodb",
        format!(
            "{operation}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        ),
    )
}

#[async_trait]
impl Daybook for DynamoDaybook {
    async fn record_accepted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_id: &str,
        accepted: &[Accepted],
    ) -> Result<(), BackendError> {
        let body = serde_json::to_string(accepted)
            .map_err(|e| BackendError::new("daybook", e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk(store, date)))
            .key("sk", AttributeValue::S(record_id.to_string()))
            .update_expression("SET accepted = :a")
            .expression_attribute_values(":a", AttributeValue::S(body))
            .send()
            .await
            .map_err(|e| error("UpdateItem", e))?;
        Ok(())
    }

    async fn record_posted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_ids: &[String],
        posted_at_ms: i64,
        posted_ref: &str,
    ) -> Result<(), BackendError> {
        // One UpdateItem per record (BatchWriteItem cannot update without overwriting the accepted side), sent
        // concurrently: a row's whole pending list (up to 200 movements) costs about one round trip, not 200.
        let updates: Vec<_> = record_ids
            .iter()
            .map(|id| {
                self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk(store, date)))
                .key("sk", AttributeValue::S(id.clone()))
                .update_expression(
                    "SET posted_at = if_not_exists(posted_at, :t), posted_ref = if_not_exists(posted_ref, :r)",
                )
                .expression_attribute_values(":t", AttributeValue::N(posted_at_ms.to_string()))
                .expression_attribute_values(":r", AttributeValue::S(posted_ref.to_string()))
                .send()
            })
            .collect();
        futures::stream::iter(updates)
            .buffer_unordered(MAX_CONCURRENT_UPDATES)
            .map_err(|e| error("UpdateItem", e))
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    async fn day(
        &self,
        store: &StoreCode,
        date: NaiveDate,
    ) -> Result<Vec<DaybookRecord>, BackendError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk(store, date)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| error("Query", e))?;
            for item in page.items() {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                let accepted = match text("accepted") {
                    None => Vec::new(),
                    Some(json) => serde_json::from_str(&json).map_err(|e| {
                        BackendError::new("daybook", format!("unreadable daybook record: {e}"))
                    })?,
                };
                records.push(DaybookRecord {
                    record_id: text("sk").unwrap_or_default(),
                    accepted,
                    posted_at_ms: item
                        .get("posted_at")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok()),
                    posted_ref: text("posted_ref"),
                });
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(records),
            }
        }
    }
}
