//! Centra's mutation limit in DynamoDB, shared by every Lambda instance (Centra counts per environment, not
//! per caller): a token bucket like Centra's own for the 10 s quota (read, compute, conditional write), a
//! fixed-window counter for the hourly quota, and a shared pause after a 429.

use crate::adapters::aws::attrs::{dynamo_error, get_i64, is_condition_failed, n, s, seconds};
use crate::core::errors::BackendError;
use crate::stock::budget::{BucketState, TokenBucket};
use crate::stock::ports::{BudgetDecision, MutationBudget};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

const ONE_HOUR_MS: i64 = 3_600_000;
/// Counters and blocks are kept a while past their end before TTL may remove them (the condition never reads
/// an ended window, so this only bounds table growth).
const KEEP_AFTER_END_S: i64 = 3_600;

#[derive(Debug, Clone)]
pub struct DynamoMutationBudget {
    pub client: Client,
    /// The idempotency table (`id` key, TTL on `expiration`).
    pub table: String,
    /// Which Centra environment the budget counts for.
    pub scope: String,
    pub per_10s: u32,
    pub per_hour: u32,
}

impl DynamoMutationBudget {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        scope: impl Into<String>,
        per_10s: u32,
        per_hour: u32,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            scope: scope.into(),
            per_10s,
            per_hour,
        }
    }

    fn blocked_key(&self) -> String {
        format!("budget#{}#blocked", self.scope)
    }

    fn bucket_key(&self) -> String {
        format!("budget#{}#bucket", self.scope)
    }

    /// Takes one token from the shared bucket: `Ok(None)` granted, `Ok(Some(t))` not before `t`.
    async fn take_token(&self, now_ms: i64) -> Result<Option<i64>, BackendError> {
        let bucket = TokenBucket::per_10s(self.per_10s);
        // Each round is one consistent read and one conditional write; losing a race means another
        // instance took a token meanwhile, so read again.
        for _ in 0..8 {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("id", s(self.bucket_key()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| dynamo_error("GetItem", e))?;
            let state = match output.item() {
                Some(item) => Some(BucketState {
                    milli_tokens: get_i64(item, "milli_tokens")?,
                    at_ms: get_i64(item, "at_ms")?,
                }),
                None => None,
            };
            let next = match bucket.take(state, now_ms) {
                Ok(next) => next,
                Err(at) => return Ok(Some(at)),
            };
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("id", s(self.bucket_key()))
                .item("milli_tokens", n(next.milli_tokens))
                .item("at_ms", n(next.at_ms))
                .item("expiration", n(seconds(now_ms) + KEEP_AFTER_END_S));
            put = match state {
                None => put.condition_expression("attribute_not_exists(id)"),
                Some(old) => put
                    .condition_expression("#milli = :old_milli AND #at = :old_at")
                    .expression_attribute_names("#milli", "milli_tokens")
                    .expression_attribute_names("#at", "at_ms")
                    .expression_attribute_values(":old_milli", n(old.milli_tokens))
                    .expression_attribute_values(":old_at", n(old.at_ms)),
            };
            match put.send().await {
                Ok(_) => return Ok(None),
                Err(err) if is_condition_failed(&err) => continue,
                Err(err) => return Err(dynamo_error("PutItem", err)),
            }
        }
        // Heavy contention: back off briefly rather than spin.
        Ok(Some(now_ms + 100))
    }

    fn window_key(&self, width: &str, start_ms: i64) -> String {
        format!("budget#{}#{width}#{start_ms}", self.scope)
    }

    async fn blocked_until(&self) -> Result<Option<i64>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(self.blocked_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        output
            .item()
            .map(|item| get_i64(item, "until_ms"))
            .transpose()
    }

    /// Counts one use in the window starting at `start_ms` unless it is full. Returns whether it counted.
    async fn take_from_window(
        &self,
        width: &str,
        start_ms: i64,
        width_ms: i64,
        limit: u32,
    ) -> Result<bool, BackendError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(self.window_key(width, start_ms)))
            .update_expression("SET #expiration = :expiration ADD #used :one")
            .condition_expression("attribute_not_exists(#used) OR #used < :limit")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(
                ":expiration",
                n(seconds(start_ms + width_ms) + KEEP_AFTER_END_S),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(dynamo_error("UpdateItem", err)),
        }
    }
}

fn window_start(now_ms: i64, width_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(width_ms)
}

#[async_trait]
impl MutationBudget for DynamoMutationBudget {
    async fn try_acquire(&self, now_ms: i64) -> Result<BudgetDecision, BackendError> {
        if let Some(until_ms) = self.blocked_until().await? {
            if until_ms > now_ms {
                return Ok(BudgetDecision::WaitUntil(until_ms));
            }
        }
        if let Some(at) = self.take_token(now_ms).await? {
            return Ok(BudgetDecision::WaitUntil(at));
        }
        // The token is spent even if the hour is full; harmless, because the caller then waits for the
        // hour's end, long after the bucket has refilled.
        let hour = window_start(now_ms, ONE_HOUR_MS);
        if !self
            .take_from_window("1h", hour, ONE_HOUR_MS, self.per_hour)
            .await?
        {
            return Ok(BudgetDecision::WaitUntil(hour + ONE_HOUR_MS));
        }
        Ok(BudgetDecision::Granted)
    }

    async fn block_until(&self, until_ms: i64) -> Result<(), BackendError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(self.blocked_key()))
            .update_expression("SET #until_ms = :until_ms, #expiration = :expiration")
            // Never shortens a longer block another instance already set.
            .condition_expression("attribute_not_exists(#until_ms) OR #until_ms < :until_ms")
            .expression_attribute_names("#until_ms", "until_ms")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_values(":until_ms", n(until_ms))
            .expression_attribute_values(":expiration", n(seconds(until_ms) + KEEP_AFTER_END_S))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(dynamo_error("UpdateItem", err)),
        }
    }
}
