//! Centra Integration API (GraphQL) client: stock mutations, the stock-change audit trail and size lookups.
//!
//! Error model (Centra's Integration API docs, "Error handling"): schema/permission problems come back as HTTP 200
//! with `errors[]`; business failures of a mutation as `userErrors` in its payload, skipped lines as
//! `userWarnings`; rate limiting as HTTP 429 with `Retry-After`. For a mutation, what matters is whether Centra
//! may have applied it: a refused connection, a 429 or a request Centra refused before running it mean no; a
//! timeout, a broken/5xx answer or a payload this client cannot read mean "maybe" (`Uncertain`), resolved
//! against the audit trail. Answers are read leniently in shape and strictly in meaning: an answer that cannot
//! be read never counts as success.

pub mod catalogue;
pub mod order_reads;
pub mod orders;

use crate::core::ids::ItemRef;
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

/// The audit trail, by documented arguments only: `stockChangeConnection(where:, last:)` (the one public
/// example) with `StockChangeFilter.warehouseId` and `comment` (stockchangefilter.html). The input's
/// `description` is stored as the change's `comment`; `StockChange` has no `description` field.
pub(crate) const STOCK_CHANGES: &str =
    "query StockChanges($where: StockChangeFilter!, $last: Int!) {
  stockChangeConnection(where: $where, last: $last) {
    edges { node {
      id createdAt comment
      lines(limit: 200) { deliveredQuantity productSize { id SKU EAN } }
    } }
  }
}";

/// A size by SKU or EAN (`ProductSizeFilter`, productsizefilter.html), for resolving a line's identity.
pub(crate) const SIZE_LOOKUP: &str = "query SizeLookup($where: ProductSizeFilter!) {
  productSizes(where: $where) { id SKU EAN }
}";

/// At most this many changes come back for one marker; the marker is unique, so more means the server did not
/// filter.
const AUDIT_LAST: u32 = 10;

/// One entry of `userErrors` / `userWarnings`. Read leniently: Centra's `path` may be null, and a list index in
/// it may come as a number or as a string (`"18"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIssue {
    pub message: String,
    pub path: Vec<Value>,
}

impl UserIssue {
    /// Never fails: an entry of an unexpected shape still counts as an issue (with what could be read).
    pub fn from_value(v: &Value) -> Self {
        let message = match v.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => match v {
                Value::String(s) => s.clone(),
                Value::Object(_) => "(Centra gave no message)".to_string(),
                other => other.to_string(),
            },
            Some(other) => other.to_string(),
        };
        let path = match v.get("path") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) => s.split('.').map(|p| json!(p)).collect(),
            _ => Vec::new(),
        };
        Self { message, path }
    }

    /// Index of the `productSizes` line this issue is about, when its path says (numbers or numeric strings).
    pub fn line_index(&self) -> Option<usize> {
        let pos = self
            .path
            .iter()
            .position(|p| p.as_str() == Some("productSizes"))?;
        match self.path.get(pos + 1)? {
            Value::Number(n) => n.as_u64().and_then(|i| usize::try_from(i).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Centra's answer to a stock mutation, as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MutationReply {
    /// Ids of the stock changes Centra created (none when it created none, or did not say).
    pub stock_change_ids: Vec<String>,
    pub user_errors: Vec<UserIssue>,
    pub user_warnings: Vec<UserIssue>,
    /// Top-level GraphQL `errors` that came beside the payload (logged; the payload decides).
    pub graphql_errors: Vec<String>,
}

/// A top-level GraphQL error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlIssue {
    pub message: String,
    /// `extensions.category` (`graphql`, `authorization`, …) when given.
    pub category: Option<String>,
}

impl GraphqlIssue {
    /// A problem with the request itself (its document, variables or permissions): Centra ran nothing.
    fn is_request_error(&self) -> bool {
        const PREFIXES: [&str; 7] = [
            "Cannot query field",
            "Unknown argument",
            "Unknown type",
            "Syntax Error",
            "Variable \"$",
            "Field \"",
            "You need ",
        ];
        matches!(
            self.category.as_deref(),
            Some("graphql" | "validation" | "authorization" | "authentication")
        ) || PREFIXES.iter().any(|p| self.message.starts_with(p))
    }
}

/// A GraphQL answer: `data` when present (even beside `errors`), and the errors.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlReply {
    pub data: Option<Value>,
    pub errors: Vec<GraphqlIssue>,
}

fn error_text(errors: &[GraphqlIssue]) -> String {
    errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
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
    /// Centra refused the request before running it (its document, variables or permissions): nothing was
    /// applied, and sending it again changes nothing.
    #[error("Centra refused the request: {0}")]
    Rejected(String),
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

/// One line of a stock change in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    pub size_id: Option<u64>,
    pub sku: Option<String>,
    pub ean: Option<String>,
    pub quantity: i64,
}

impl ChangeLine {
    /// Whether this line is about the size `item` names.
    pub fn names(&self, item: &ItemRef) -> bool {
        match item {
            ItemRef::Sku(s) => self.sku.as_deref() == Some(s),
            ItemRef::Ean(e) => self.ean.as_deref() == Some(e),
        }
    }
}

/// A stock change found in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundChange {
    pub id: String,
    pub created_at: Option<String>,
    pub lines: Vec<ChangeLine>,
}

/// What the audit trail says about one pushed mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLookup {
    /// Centra holds a change carrying the marker.
    Found(FoundChange),
    /// The filtered search covers the warehouse's whole trail and holds no such change: it was not applied.
    NotApplied,
    /// The answer does not settle it (e.g. Centra returned changes that do not match the filter): look again
    /// later, never resend on it.
    Inconclusive(String),
}

/// A Centra product size as a lookup returns it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SizeRecord {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ean: Option<String>,
}

#[derive(Clone)]
pub struct CentraClient {
    http: crate::http_client::LazyHttp,
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
/// `now_ms` must be the time the answer arrived: a delta counts from then.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Anything this large is an epoch timestamp, not a delay.
        return if n > 1_000_000_000 {
            n.checked_mul(1000)
        } else {
            n.checked_mul(1000).and_then(|d| now_ms.checked_add(d))
        };
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
        return Some(t.timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// When a 429 answer says the caller may resume (`Retry-After` as seconds or a date), in epoch ms. Read the
/// clock when the answer has arrived, not when the request left: a slow answer would otherwise shorten the
/// pause.
pub fn retry_at_from_headers(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms))
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn opt_text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads a mutation payload. `Err` (an uncertain outcome) when the payload is missing or does not hold the
/// lists this client selected: such an answer must never read as "no errors".
pub fn read_mutation_reply(
    reply: &GraphqlReply,
    field: &str,
    ids_field: &str,
) -> Result<MutationReply, CentraError> {
    let uncertain = |detail: String| CentraError::Uncertain {
        detail,
        settled: true,
    };
    let payload = match reply.data.as_ref().map(|d| d.get(field)) {
        Some(Some(p @ Value::Object(_))) => p,
        // No data at all: the request failed before execution (a validation or permission error) or the
        // answer is broken.
        None if !reply.errors.is_empty()
            && reply.errors.iter().all(GraphqlIssue::is_request_error) =>
        {
            return Err(CentraError::Rejected(error_text(&reply.errors)))
        }
        _ if !reply.errors.is_empty() => {
            return Err(uncertain(format!(
                "{field} answered errors without a payload: {}",
                error_text(&reply.errors)
            )))
        }
        _ => return Err(uncertain(format!("no {field} payload in the answer"))),
    };
    let issues = |name: &str| -> Result<Vec<UserIssue>, CentraError> {
        match payload.get(name) {
            Some(Value::Array(items)) => Ok(items.iter().map(UserIssue::from_value).collect()),
            other => Err(uncertain(format!(
                "{field}.{name} is not a list: {}",
                other.map_or("missing".to_string(), |v| v.to_string())
            ))),
        }
    };
    let stock_change_ids = match payload.get(ids_field) {
        Some(Value::Array(items)) => items.iter().filter_map(|i| id_text(i.get("id"))).collect(),
        Some(obj @ Value::Object(_)) => id_text(obj.get("id")).into_iter().collect(),
        _ => Vec::new(),
    };
    Ok(MutationReply {
        stock_change_ids,
        user_errors: issues("userErrors")?,
        user_warnings: issues("userWarnings")?,
        graphql_errors: reply.errors.iter().map(|e| e.message.clone()).collect(),
    })
}

/// Reads the audit-trail answer for `marker`.
pub fn read_audit_lookup(data: &Value, marker: &str) -> Result<AuditLookup, CentraError> {
    let edges = data
        .pointer("/stockChangeConnection/edges")
        .and_then(Value::as_array)
        .ok_or_else(|| CentraError::Protocol("no stockChangeConnection.edges in data".into()))?;
    if edges.is_empty() {
        return Ok(AuditLookup::NotApplied);
    }
    let found = edges.iter().map(|e| &e["node"]).find(|node| {
        node.get("comment")
            .and_then(Value::as_str)
            .is_some_and(|c| c.contains(marker))
    });
    let Some(node) = found else {
        return Ok(AuditLookup::Inconclusive(format!(
            "Centra returned {} stock changes for a comment filter none of them matches",
            edges.len()
        )));
    };
    let id = id_text(node.get("id"))
        .ok_or_else(|| CentraError::Protocol("a stock change without an id".into()))?;
    let lines = node
        .get("lines")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .map(|l| ChangeLine {
                    size_id: id_number(l.pointer("/productSize/id")),
                    sku: opt_text(l.pointer("/productSize/SKU")),
                    ean: opt_text(l.pointer("/productSize/EAN")),
                    quantity: l
                        .get("deliveredQuantity")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(AuditLookup::Found(FoundChange {
        id,
        created_at: opt_text(node.get("createdAt")),
        lines,
    }))
}

impl CentraClient {
    pub fn new(url: impl Into<String>, token: impl Into<String>, timeout: Duration) -> Self {
        Self {
            http: crate::http_client::LazyHttp::new(timeout, Duration::from_secs(3)),
            url: url.into(),
            token: token.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one document and returns Centra's answer as written: `data` even when `errors` came beside it.
    pub(crate) async fn post_reply(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<GraphqlReply, CentraError> {
        let response = self
            .http
            .get()
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
            let retry_at_ms = retry_at_from_headers(response.headers());
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
        let errors = match doc.get("errors") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|e| GraphqlIssue {
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_string(),
                    category: e
                        .pointer("/extensions/category")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(GraphqlReply {
            data: doc.get("data").filter(|d| !d.is_null()).cloned(),
            errors,
        })
    }

    /// A read: its data, or an error if Centra reported any (a partial read is not used).
    pub(crate) async fn post(&self, query: &str, variables: Value) -> Result<Value, CentraError> {
        let reply = self.post_reply(query, variables).await?;
        if !reply.errors.is_empty() {
            return Err(CentraError::GraphQl(error_text(&reply.errors)));
        }
        reply
            .data
            .ok_or_else(|| CentraError::Protocol("no data in response".into()))
    }

    /// `changeStock`: many sizes of one warehouse in one mutation.
    pub async fn change_stock(
        &self,
        warehouse_id: u64,
        direction: Direction,
        description: &str,
        lines: &[(ItemRef, i64)],
    ) -> Result<MutationReply, CentraError> {
        let warehouse_key = match direction {
            Direction::Out => "outFromWarehouse",
            Direction::In => "intoWarehouse",
        };
        let sizes: Vec<Value> = lines
            .iter()
            // Quantity field name UNVERIFIED (StockChangeProductSizeInput's names are not on its page):
            // `deliveredQuantity`, as on ProductSizeStockChangeInput. `shelfsync centra-check` confirms it.
            .map(|(item, qty)| json!({ "productSize": product_size(item), "deliveredQuantity": qty }))
            .collect();
        let input = json!({
            warehouse_key: { "id": warehouse_id },
            "description": description,
            "productSizes": sizes,
        });
        let reply = self
            .post_reply(CHANGE_STOCK, json!({ "input": input }))
            .await?;
        read_mutation_reply(&reply, "changeStock", "stockChange")
    }

    /// `setStock` with `stockQuantityType: PHYSICAL` (absolute levels from store counts).
    pub async fn set_stock(
        &self,
        warehouse_id: u64,
        description: &str,
        lines: &[(ItemRef, i64)],
    ) -> Result<MutationReply, CentraError> {
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
        let reply = self
            .post_reply(SET_STOCK, json!({ "input": input }))
            .await?;
        read_mutation_reply(&reply, "setStock", "stockChanges")
    }

    /// Looks up the change whose comment carries `marker` in one warehouse's audit trail. The comment filter
    /// runs over the whole trail, however many other changes the environment made since.
    pub async fn find_push_change(
        &self,
        warehouse_id: u64,
        marker: &str,
    ) -> Result<AuditLookup, CentraError> {
        let filter = json!({ "warehouseId": [warehouse_id], "comment": { "contains": marker } });
        let data = self
            .post(
                STOCK_CHANGES,
                json!({ "where": filter, "last": AUDIT_LAST }),
            )
            .await?;
        read_audit_lookup(&data, marker)
    }

    /// Sizes whose SKU (or EAN) equals `value` exactly.
    pub async fn sizes_named(&self, item: &ItemRef) -> Result<Vec<SizeRecord>, CentraError> {
        let filter = match item {
            ItemRef::Sku(s) => json!({ "SKU": { "equals": s } }),
            ItemRef::Ean(e) => json!({ "EAN": { "equals": e } }),
        };
        let data = self.post(SIZE_LOOKUP, json!({ "where": filter })).await?;
        let rows = data
            .get("productSizes")
            .and_then(Value::as_array)
            .ok_or_else(|| CentraError::Protocol("no productSizes list in data".into()))?;
        let mut sizes = Vec::new();
        for row in rows {
            let record = SizeRecord {
                id: id_number(row.get("id"))
                    .ok_or_else(|| CentraError::Protocol("a product size without an id".into()))?,
                sku: opt_text(row.get("SKU")),
                ean: opt_text(row.get("EAN")),
            };
            // A server that ignored the filter must not make another size pass for this one.
            let matches = match item {
                ItemRef::Sku(s) => record.sku.as_deref() == Some(s),
                ItemRef::Ean(e) => record.ean.as_deref() == Some(e),
            };
            if matches {
                sizes.push(record);
            }
        }
        Ok(sizes)
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
        assert_eq!(parse_retry_after("9223372036854775807", now), None);
    }

    #[test]
    fn issue_paths_are_read_in_every_shape() {
        let issue = |v: Value| UserIssue::from_value(&v);
        assert_eq!(
            issue(json!({"message": "x", "path": ["input", "productSizes", 3, "productSize"]}))
                .line_index(),
            Some(3)
        );
        // A list index sent as a string still names the line.
        assert_eq!(
            issue(json!({"message": "x", "path": ["input", "productSizes", "18"]})).line_index(),
            Some(18)
        );
        let null_path = issue(json!({"message": "refused", "path": null}));
        assert_eq!(null_path.message, "refused");
        assert_eq!(null_path.line_index(), None);
        assert_eq!(
            issue(json!({"path": ["input"]})).message,
            "(Centra gave no message)"
        );
        assert_eq!(issue(json!("plain text")).message, "plain text");
    }

    fn reply(v: Value) -> GraphqlReply {
        GraphqlReply {
            data: v.get("data").filter(|d| !d.is_null()).cloned(),
            errors: v
                .get("errors")
                .and_then(Value::as_array)
                .map(|es| {
                    es.iter()
                        .map(|e| GraphqlIssue {
                            message: e["message"].as_str().unwrap_or("").to_string(),
                            category: e
                                .pointer("/extensions/category")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn read(v: Value) -> Result<MutationReply, CentraError> {
        read_mutation_reply(&reply(v), "changeStock", "stockChange")
    }

    #[test]
    fn errors_with_a_path_of_null_are_errors() {
        let r = read(json!({"data": {"changeStock": {"stockChange": null,
            "userErrors": [{"message": "Product size not found", "path": null}], "userWarnings": []}}}))
        .unwrap();
        assert_eq!(
            r.user_errors.len(),
            1,
            "a null path must not hide the error"
        );
        assert!(r.stock_change_ids.is_empty());
    }

    #[test]
    fn an_unreadable_payload_is_uncertain_never_success() {
        for broken in [
            json!({"data": {"changeStock": {"stockChange": {"id": 1}, "userErrors": "oops", "userWarnings": []}}}),
            json!({"data": {"changeStock": {"stockChange": {"id": 1}, "userWarnings": []}}}),
            json!({"data": {"changeStock": null}}),
            json!({"data": {}}),
            json!({}),
        ] {
            assert!(
                matches!(read(broken.clone()), Err(CentraError::Uncertain { .. })),
                "{broken}"
            );
        }
    }

    #[test]
    fn errors_beside_an_applied_payload_mean_applied() {
        let r = read(json!({"data": {"changeStock": {"stockChange": {"id": 77}, "userErrors": [], "userWarnings": []}},
            "errors": [{"message": "Field \"x\" is deprecated", "path": ["changeStock"]}]}))
        .unwrap();
        assert_eq!(r.stock_change_ids, ["77"]);
        assert_eq!(r.graphql_errors.len(), 1);
    }

    #[test]
    fn errors_without_data_are_uncertain_unless_the_request_was_refused() {
        assert!(matches!(
            read(json!({"errors": [{"message": "Internal server error"}]})),
            Err(CentraError::Uncertain { settled: true, .. })
        ));
        assert!(matches!(
            read(
                json!({"data": {"changeStock": null}, "errors": [{"message": "Internal server error"}]})
            ),
            Err(CentraError::Uncertain { .. })
        ));
        assert!(matches!(
            read(
                json!({"errors": [{"message": "Cannot query field \"description\" on type \"StockChange\".",
                "extensions": {"category": "graphql"}}]})
            ),
            Err(CentraError::Rejected(_))
        ));
        assert!(matches!(
            read(json!({"errors": [{"message": "You need StockChange:write permission"}]})),
            Err(CentraError::Rejected(_))
        ));
    }

    #[test]
    fn audit_lookup_reads_found_absent_and_unfiltered_answers() {
        let marker = "push abc/0 ";
        let found = json!({"stockChangeConnection": {"edges": [{"node": {"id": 9, "createdAt": "2026-12-01T10:00:00+00:00",
            "comment": "cloudshelf-centra push abc/0 store LDN-01",
            "lines": [{"deliveredQuantity": 2, "productSize": {"id": 5, "SKU": "A", "EAN": null}}]}}]}});
        match read_audit_lookup(&found, marker).unwrap() {
            AuditLookup::Found(c) => {
                assert_eq!(c.id, "9");
                assert!(c.lines[0].names(&ItemRef::Sku("A".into())));
            }
            other => panic!("{other:?}"),
        }
        let empty = json!({"stockChangeConnection": {"edges": []}});
        assert_eq!(
            read_audit_lookup(&empty, marker).unwrap(),
            AuditLookup::NotApplied
        );
        let unfiltered = json!({"stockChangeConnection": {"edges": [{"node": {"id": 1, "comment": "someone else"}}]}});
        assert!(matches!(
            read_audit_lookup(&unfiltered, marker).unwrap(),
            AuditLookup::Inconclusive(_)
        ));
    }
}
