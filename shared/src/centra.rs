//! Centra Integration API (GraphQL) client: stock mutations and the stock-change audit trail.
//!
//! Error model (reference §2): schema/permission problems come back as HTTP 200 with `errors[]`; business
//! failures of a mutation as `userErrors` in its payload; rate limiting as HTTP 429 with `Retry-After`. For
//! a mutation, what matters is whether Centra may have applied it: a refused connection or a 429 means no,
//! a timeout or a broken/5xx answer means "maybe" (`Uncertain`), resolved against the audit trail.

use crate::domain::ItemRef;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) const CHANGE_STOCK: &str = "mutation ChangeStock($input: StockChangeInput!) {
  changeStock(input: $input) {
    stockChange { id }
    userErrors { message path }
    userWarnings { message path }
  }
}";

pub(crate) const SET_STOCK: &str = "mutation SetStock($input: StockSetInput!) {
  setStock(input: $input) {
    stockChanges { id }
    userErrors { message path }
    userWarnings { message path }
  }
}";

// Filter/sort argument names of stockChangeConnection are UNVERIFIED (reference §2, §3b): the client only
// pages newest-first and matches the description itself.
pub(crate) const STOCK_CHANGES: &str = "query StockChanges($first: Int!, $after: String) {
  stockChangeConnection(first: $first, after: $after, sort: [id_DESC]) {
    edges { node { id description createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserError {
    pub message: String,
    #[serde(default)]
    pub path: Vec<Value>,
}

impl UserError {
    /// Index of the `productSizes` line this error is about, when its path says.
    pub fn line_index(&self) -> Option<usize> {
        let pos = self
            .path
            .iter()
            .position(|p| p.as_str() == Some("productSizes"))?;
        self.path.get(pos + 1)?.as_u64().map(|i| i as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MutationResult {
    pub stock_change_ids: Vec<String>,
    pub user_errors: Vec<UserError>,
    pub user_warnings: Vec<UserError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CentraError {
    #[error("rate limited by Centra (retry at {retry_at_ms:?})")]
    RateLimited { retry_at_ms: Option<i64> },
    #[error("request not delivered: {0}")]
    NotSent(String),
    /// The outcome is unknown. `settled`: Centra answered (a 500/503, a broken body), so the request is no
    /// longer running and the audit trail already tells; otherwise (timeout, 502/504, reset) it may still
    /// be running and only time settles it.
    #[error("outcome unknown: {detail}")]
    Uncertain { detail: String, settled: bool },
    #[error("Centra rejected the token (HTTP {0})")]
    Unauthorized(u16),
    #[error("Centra GraphQL errors: {0}")]
    GraphQl(String),
    #[error("unexpected answer from Centra: {0}")]
    Protocol(String),
}

impl CentraError {
    /// A mutation that failed this way may have been applied.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, CentraError::Uncertain { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `outFromWarehouse`: units left the store.
    Out,
    /// `intoWarehouse`: units came back.
    In,
}

#[derive(Clone)]
pub struct CentraClient {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl std::fmt::Debug for CentraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentraClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn product_size(item: &ItemRef) -> Value {
    match item {
        ItemRef::Sku(s) => json!({ "SKU": s }),
        ItemRef::Ean(e) => json!({ "EAN": e }),
    }
}

/// `Retry-After` as delta seconds, a Unix timestamp, or an HTTP date (Centra documents "a timestamp").
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Anything this large is an epoch timestamp, not a delay.
        return Some(if n > 1_000_000_000 {
            n * 1000
        } else {
            now_ms + n * 1000
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
        return Some(t.timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// When a 429 answer says the caller may resume (`Retry-After` as seconds or a date), in epoch ms.
pub fn retry_at_from_headers(headers: &reqwest::header::HeaderMap, now_ms: i64) -> Option<i64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms))
}

impl CentraClient {
    pub fn new(url: impl Into<String>, token: impl Into<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client with rustls");
        Self {
            http,
            url: url.into(),
            token: token.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn post(&self, query: &str, variables: Value) -> Result<Value, CentraError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    CentraError::NotSent(e.to_string())
                } else {
                    CentraError::Uncertain {
                        detail: e.to_string(),
                        settled: false,
                    }
                }
            })?;
        let status = response.status();
        if status.as_u16() == 429 {
            let retry_at_ms = crate::centra::retry_at_from_headers(response.headers(), now_ms);
            return Err(CentraError::RateLimited { retry_at_ms });
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(CentraError::Unauthorized(status.as_u16()));
        }
        let body = response.bytes().await.map_err(|e| CentraError::Uncertain {
            detail: format!("response body lost: {e}"),
            settled: true,
        })?;
        if status.is_server_error() {
            // A gateway timeout means the backend may still be working on it.
            let settled = !matches!(status.as_u16(), 502 | 504);
            return Err(CentraError::Uncertain {
                detail: format!("HTTP {status}"),
                settled,
            });
        }
        if !status.is_success() {
            return Err(CentraError::Protocol(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|e| CentraError::Uncertain {
            detail: format!("unreadable response: {e}"),
            settled: true,
        })?;
        if let Some(errors) = doc
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| {
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                })
                .collect();
            return Err(CentraError::GraphQl(messages.join("; ")));
        }
        doc.get("data")
            .cloned()
            .ok_or_else(|| CentraError::Protocol("no data in response".into()))
    }

    fn mutation_result(
        data: &Value,
        field: &str,
        ids_field: &str,
    ) -> Result<MutationResult, CentraError> {
        let payload = data
            .get(field)
            .ok_or_else(|| CentraError::Protocol(format!("no {field} in data")))?;
        let list = |name: &str| -> Vec<UserError> {
            payload
                .get(name)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        };
        let ids = match payload.get(ids_field) {
            Some(Value::Array(items)) => {
                items.iter().filter_map(|i| id_text(i.get("id"))).collect()
            }
            Some(obj @ Value::Object(_)) => id_text(obj.get("id")).into_iter().collect(),
            _ => Vec::new(),
        };
        Ok(MutationResult {
            stock_change_ids: ids,
            user_errors: list("userErrors"),
            user_warnings: list("userWarnings"),
        })
    }

    /// `changeStock`: many sizes of one warehouse in one mutation.
    pub async fn change_stock(
        &self,
        warehouse_id: u64,
        direction: Direction,
        description: &str,
        lines: &[(ItemRef, i64)],
    ) -> Result<MutationResult, CentraError> {
        let warehouse_key = match direction {
            Direction::Out => "outFromWarehouse",
            Direction::In => "intoWarehouse",
        };
        let sizes: Vec<Value> = lines
            .iter()
            // Quantity field name UNVERIFIED (reference §3a): `deliveredQuantity`.
            .map(|(item, qty)| json!({ "productSize": product_size(item), "deliveredQuantity": qty }))
            .collect();
        let input = json!({
            warehouse_key: { "id": warehouse_id },
            "description": description,
            "productSizes": sizes,
        });
        let data = self.post(CHANGE_STOCK, json!({ "input": input })).await?;
        Self::mutation_result(&data, "changeStock", "stockChange")
    }

    /// `setStock` with `stockQuantityType: PHYSICAL` (absolute levels from store counts).
    pub async fn set_stock(
        &self,
        warehouse_id: u64,
        description: &str,
        lines: &[(ItemRef, i64)],
    ) -> Result<MutationResult, CentraError> {
        let sizes: Vec<Value> = lines
            .iter()
            .map(|(item, qty)| json!({ "productSize": product_size(item), "quantity": qty }))
            .collect();
        let input = json!({
            "warehouse": { "id": warehouse_id },
            "description": description,
            "stockQuantityType": "PHYSICAL",
            "productSizes": sizes,
        });
        let data = self.post(SET_STOCK, json!({ "input": input })).await?;
        Self::mutation_result(&data, "setStock", "stockChanges")
    }

    /// Looks for a stock change whose description contains `marker`, newest first, over at most
    /// `max_pages` pages of 100. Returns its id.
    pub async fn find_stock_change(
        &self,
        marker: &str,
        max_pages: usize,
    ) -> Result<Option<String>, CentraError> {
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let data = self
                .post(STOCK_CHANGES, json!({ "first": 100, "after": after }))
                .await?;
            let conn = data
                .get("stockChangeConnection")
                .ok_or_else(|| CentraError::Protocol("no stockChangeConnection in data".into()))?;
            let edges = conn
                .get("edges")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for edge in &edges {
                let node = &edge["node"];
                if node
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.contains(marker))
                {
                    return Ok(id_text(node.get("id")));
                }
            }
            let page = &conn["pageInfo"];
            if page.get("hasNextPage").and_then(Value::as_bool) != Some(true) {
                return Ok(None);
            }
            after = page
                .get("endCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(None)
    }
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_retry_after("7", now), Some(now + 7000));
        assert_eq!(
            parse_retry_after("1795860900", now),
            Some(1_795_860_900_000)
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:15:00 GMT", now),
            Some(
                chrono::DateTime::parse_from_rfc3339("2026-11-28T10:15:00Z")
                    .unwrap()
                    .timestamp_millis()
            )
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn user_error_line_index() {
        let e = UserError {
            message: "x".into(),
            path: vec![
                json!("input"),
                json!("productSizes"),
                json!(3),
                json!("productSize"),
            ],
        };
        assert_eq!(e.line_index(), Some(3));
        assert_eq!(
            UserError {
                message: "x".into(),
                path: vec![]
            }
            .line_index(),
            None
        );
    }
}
