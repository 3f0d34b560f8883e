//! Small helpers shared by the DynamoDB stores: attribute values in and out, and error mapping.

use crate::core::errors::BackendError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Debug;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<AttributeValue, BackendError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| BackendError::new("dynamodb", format!("cannot serialise item data: {e}")))
}

fn missing(name: &str) -> BackendError {
    BackendError::new(
        "dynamodb",
        format!("item has no readable attribute `{name}`"),
    )
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, BackendError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| missing(name))
}

pub(crate) fn get_i64(item: &Item, name: &str) -> Result<i64, BackendError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing(name))
}

pub(crate) fn get_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, BackendError> {
    serde_json::from_str(get_s(item, name)?).map_err(|e| {
        BackendError::new(
            "dynamodb",
            format!("attribute `{name}` is not valid data: {e}"),
        )
    })
}

/// The message keeps the service error code (e.g. `ProvisionedThroughputExceededException`) visible.
pub(crate) fn dynamo_error<E, R>(operation: &str, err: SdkError<E, R>) -> BackendError
where
    E: std::error::Error + 'static,
    R: Debug + 'static,
{
    BackendError::new(
        "dynamodb",
        format!("{operation}: {}", DisplayErrorContext(err)),
    )
}

pub(crate) fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// Epoch seconds from epoch milliseconds, rounding down (also for times before 1970).
pub(crate) fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every item a Scan answers, following `LastEvaluatedKey` across pages.
pub(crate) async fn scan_all(
    request: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<Item>, BackendError> {
    let mut items = Vec::new();
    let mut start_key = None;
    loop {
        let page = request
            .clone()
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|e| dynamo_error("Scan", e))?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start_key = Some(key),
            _ => return Ok(items),
        }
    }
}

/// Every item a Query answers, following `LastEvaluatedKey` across pages.
pub(crate) async fn query_all(
    request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, BackendError> {
    let mut items = Vec::new();
    let mut start_key = None;
    loop {
        let page = request
            .clone()
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|e| dynamo_error("Query", e))?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start_key = Some(key),
            _ => return Ok(items),
        }
    }
}
