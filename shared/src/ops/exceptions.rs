//! Exception records with their resolution: `shelfsync exceptions [--kind] [--json]` and
//! `shelfsync exceptions resolve <id> --note …`.
//!
//! The resolution (who, when, note) is a `resolution` attribute beside the record's `data` on the same stock
//! table item (`pk = exception#<store>`), set by one write conditional on there being none, so resolving twice
//! resolves once. When the integration records the same exception again (a retried order refused again), it
//! rewrites the whole item: the exception is open again, as it should be.

use crate::adapters::aws::attrs::{dynamo_error, query_all, scan_all};
use crate::core::errors::BackendError;
use crate::stock::ports::ExceptionRecord;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub by: String,
    pub at_ms: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionEntry {
    #[serde(flatten)]
    pub record: ExceptionRecord,
    pub resolution: Option<Resolution>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveOutcome {
    WouldResolve(ExceptionEntry),
    Resolved(ExceptionEntry),
    AlreadyResolved(ExceptionEntry),
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("--note: must say what was done (it is kept on the record)")]
    EmptyNote,
    #[error("no exception record with id {0:?} (ids are listed by `shelfsync exceptions`)")]
    NotFound(String),
    #[error("id {id:?} names {count} exception records (stores {stores}); give --store")]
    Ambiguous {
        id: String,
        count: usize,
        stores: String,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn parse(item: &Item) -> Result<ExceptionEntry, BackendError> {
    let bad = |name: &str, e: String| {
        BackendError::new(
            "dynamodb",
            format!(
                "exception item {}/{}: attribute `{name}` {e}",
                string_attr(item, "pk").unwrap_or("?"),
                string_attr(item, "sk").unwrap_or("?")
            ),
        )
    };
    let data = string_attr(item, "data").ok_or_else(|| bad("data", "is missing".into()))?;
    let record: ExceptionRecord =
        serde_json::from_str(data).map_err(|e| bad("data", format!("is not valid: {e}")))?;
    let resolution = string_attr(item, "resolution")
        .map(serde_json::from_str::<Resolution>)
        .transpose()
        .map_err(|e| bad("resolution", format!("is not valid: {e}")))?;
    Ok(ExceptionEntry { record, resolution })
}

/// Exception records in the stock table, with their resolutions.
#[derive(Debug, Clone)]
pub struct ExceptionBook {
    client: Client,
    table: String,
}

impl ExceptionBook {
    pub fn new(client: Client, stock_table: impl Into<String>) -> Self {
        Self {
            client,
            table: stock_table.into(),
        }
    }

    async fn items(&self, store: Option<&str>) -> Result<Vec<Item>, BackendError> {
        match store {
            Some(store) => {
                query_all(
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(
                            ":pk",
                            AttributeValue::S(format!("exception#{store}")),
                        )
                        .consistent_read(true),
                )
                .await
            }
            None => {
                scan_all(
                    self.client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression("begins_with(pk, :exception)")
                        .expression_attribute_values(
                            ":exception",
                            AttributeValue::S("exception#".into()),
                        )
                        .consistent_read(true),
                )
                .await
            }
        }
    }

    /// Oldest first; `kind` filters on the exact kind (`unmapped_shipping_method`, `centra_rejected_line`, …).
    pub async fn list(
        &self,
        store: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Vec<ExceptionEntry>, BackendError> {
        let mut entries = self
            .items(store)
            .await?
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        entries.retain(|e| kind.is_none_or(|k| e.record.kind == k));
        entries.sort_by(|a, b| {
            (a.record.created_at_ms, &a.record.id).cmp(&(b.record.created_at_ms, &b.record.id))
        });
        Ok(entries)
    }

    /// Records the resolution on the exception `id` unless it already has one.
    pub async fn resolve(
        &self,
        id: &str,
        store: Option<&str>,
        note: &str,
        by: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<ResolveOutcome, ResolveError> {
        if note.trim().is_empty() {
            return Err(ResolveError::EmptyNote);
        }
        let (item, mut entry) = self.find_one(id, store).await?;
        if entry.resolution.is_some() {
            return Ok(ResolveOutcome::AlreadyResolved(entry));
        }
        let resolution = Resolution {
            by: by.to_string(),
            at_ms: now_ms,
            note: note.trim().to_string(),
        };
        if dry_run {
            entry.resolution = Some(resolution);
            return Ok(ResolveOutcome::WouldResolve(entry));
        }
        let json = serde_json::to_string(&resolution)
            .map_err(|e| BackendError::new("dynamodb", format!("resolution: {e}")))?;
        let key = |name: &str| {
            item.get(name)
                .cloned()
                .unwrap_or(AttributeValue::Null(true))
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key("pk"))
            .key("sk", key("sk"))
            .update_expression("SET #resolution = :resolution")
            // Exists (not deleted meanwhile) and not resolved by someone else since the read.
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#resolution)")
            .expression_attribute_names("#resolution", "resolution")
            .expression_attribute_values(":resolution", AttributeValue::S(json))
            .send()
            .await;
        match result {
            Ok(_) => {
                entry.resolution = Some(resolution);
                Ok(ResolveOutcome::Resolved(entry))
            }
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                // Someone resolved it between our read and write: say who.
                let current = self
                    .list(Some(&entry.record.store), None)
                    .await?
                    .into_iter()
                    .find(|e| e.record.id == id && e.resolution.is_some())
                    .ok_or_else(|| ResolveError::NotFound(id.to_string()))?;
                Ok(ResolveOutcome::AlreadyResolved(current))
            }
            Err(e) => Err(dynamo_error("UpdateItem", e).into()),
        }
    }

    /// The one exception with this id (in `store`, or any): none or several is an error.
    async fn find_one(
        &self,
        id: &str,
        store: Option<&str>,
    ) -> Result<(Item, ExceptionEntry), ResolveError> {
        let mut matches: Vec<(Item, ExceptionEntry)> = Vec::new();
        for item in self.items(store).await? {
            let entry = parse(&item)?;
            if entry.record.id == id {
                matches.push((item, entry));
            }
        }
        match matches.len() {
            0 => Err(ResolveError::NotFound(id.to_string())),
            1 => Ok(matches.remove(0)),
            count => Err(ResolveError::Ambiguous {
                id: id.to_string(),
                count,
                stores: matches
                    .iter()
                    .map(|(_, e)| e.record.store.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}
