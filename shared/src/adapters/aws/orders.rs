//! The order outbox in the stock table: `pk = order#<Cloudshelf order id>`, `sk = outbox`, and one index item
//! per Centra order number (`pk = centra-order#<number>`, `sk = index`) so the lifecycle can tell our orders
//! from others with one read and no Centra call.

use crate::adapters::aws::attrs::{
    dynamo_error, get_i64, get_json, get_s, is_condition_failed, json, n, s, scan_all,
};
use crate::core::errors::BackendError;
use crate::orders::outbox::{OrderOutbox, OutboxRecord};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

#[derive(Debug, Clone)]
pub struct DynamoOrderOutbox {
    client: Client,
    table: String,
}

impl DynamoOrderOutbox {
    pub fn new(client: Client, stock_table: impl Into<String>) -> Self {
        Self {
            client,
            table: stock_table.into(),
        }
    }
}

fn outbox_pk(id: &str) -> String {
    format!("order#{id}")
}

fn index_pk(number: u64) -> String {
    format!("centra-order#{number}")
}

fn parse(item: &crate::adapters::aws::attrs::Item) -> Result<OutboxRecord, BackendError> {
    let mut record: OutboxRecord = get_json(item, "data")?;
    record.rev = u64::try_from(get_i64(item, "rev")?)
        .map_err(|_| BackendError::new("dynamodb", "outbox record has a negative rev"))?;
    Ok(record)
}

#[async_trait]
impl OrderOutbox for DynamoOrderOutbox {
    async fn get(&self, id: &str) -> Result<Option<OutboxRecord>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(id)))
            .key("sk", s("outbox"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output.item().map(parse).transpose()
    }

    async fn put(
        &self,
        record: &OutboxRecord,
        expected_rev: Option<u64>,
    ) -> Result<bool, BackendError> {
        // The index goes first: an index item without its outbox write is harmless (it names an order the
        // outbox will name too once the retry lands), a missing one would hide our order from the lifecycle.
        for number in &record.centra_orders {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(index_pk(*number)))
                .item("sk", s("index"))
                .item("cloudshelf_order_id", s(&record.cloudshelf_order_id))
                .send()
                .await
                .map_err(|e| dynamo_error("PutItem", e))?;
        }
        let new_rev = expected_rev.unwrap_or(0) + 1;
        let mut stored = record.clone();
        stored.rev = new_rev;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(outbox_pk(&record.cloudshelf_order_id)))
            .item("sk", s("outbox"))
            .item("rev", n(new_rev))
            // Plain attributes for operators browsing the table and for reconciliation scans.
            .item("state", s(record.state.as_str()))
            .item("store", s(record.store.as_str()))
            .item("updated_at_ms", n(record.updated_at_ms))
            .item("data", json(&stored)?);
        let request = match expected_rev {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => request
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", n(rev)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(dynamo_error("PutItem", e)),
        }
    }

    async fn find_by_centra_order(&self, number: u64) -> Result<Option<String>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(index_pk(number)))
            .key("sk", s("index"))
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output
            .item()
            .map(|item| get_s(item, "cloudshelf_order_id").map(str::to_string))
            .transpose()
    }

    async fn list(&self) -> Result<Vec<OutboxRecord>, BackendError> {
        let items = scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :order) AND sk = :outbox")
                .expression_attribute_values(":order", s("order#"))
                .expression_attribute_values(":outbox", s("outbox"))
                .consistent_read(true),
        )
        .await?;
        let mut records = items.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| {
            (a.created_at_ms, &a.cloudshelf_order_id)
                .cmp(&(b.created_at_ms, &b.cloudshelf_order_id))
        });
        Ok(records)
    }
}
