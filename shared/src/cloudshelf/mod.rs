//! Cloudshelf Omnichannel API (GraphQL) client: read orders, report their status back, poll for orders
//! changed since a watermark, and push per-location stock levels.
//!
//! Error model: auth is `Authorization: Token <apiKey>` (header of `schema/cloudshelf.graphql`); schema
//! problems and the query complexity/depth limits come back as top-level `errors[]`; business failures of an
//! upsert as `userErrors` in its payload. Rate limiting is by query complexity; how a throttled request is
//! answered is UNVERIFIED, so any HTTP 429 is `RateLimited` (with `Retry-After` honoured if one ever appears).
//! All user data travels in GraphQL variables, never in the query text.
//!
//! `upsertOrders` sets absolute values (status, third-party id), so repeating it after an uncertain failure
//! (`Transient`) is safe.

pub mod catalogue;

use crate::core::money::Amount;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Maximum query complexity, from Cloudshelf's API documentation (`schema/cloudshelf.graphql` does not carry it).
pub const MAX_QUERY_COMPLEXITY: u32 = 500;

pub(crate) const ORDER: &str = "query Order($id: GlobalId!) {
  order(id: $id) {
    id status thirdPartyId updatedAt
    lines { productVariantId productVariantName quantity price currencyCode }
  }
}";

// `orders` has no filter (only paging and `sortBy`: `Query.orders` in `schema/cloudshelf.graphql`): newest first,
// paged until the watermark is passed.
pub(crate) const ORDERS_BY_UPDATED_AT: &str =
    "query OrdersByUpdatedAt($first: Int!, $after: String) {
  orders(first: $first, after: $after, sortBy: {updatedAt: DESC}) {
    edges { node {
      id status thirdPartyId updatedAt
      lines { productVariantId productVariantName quantity price currencyCode }
    } }
    pageInfo { hasNextPage endCursor }
  }
}";

/// Cost of `ORDERS_BY_UPDATED_AT` outside `edges`: orders, pageInfo, hasNextPage, endCursor.
const ORDERS_FIXED_COST: u32 = 4;
/// Cost of one edge: edges, node, 4 scalars, lines and its 5 scalars. Lines are counted once, not per line
/// (how Cloudshelf weighs lists is UNVERIFIED; the simulator counts them this way).
const ORDERS_EDGE_COST: u32 = 12;
/// Largest page that keeps `ORDERS_BY_UPDATED_AT` within the complexity limit.
pub const MAX_ORDERS_PAGE_SIZE: u32 = (MAX_QUERY_COMPLEXITY - ORDERS_FIXED_COST) / ORDERS_EDGE_COST;
// A page of at least one order must fit at all.
const _: () = assert!(MAX_ORDERS_PAGE_SIZE >= 1);

pub(crate) const UPSERT_ORDERS: &str = "mutation UpsertOrders($input: [OrderInput!]!) {
  upsertOrders(input: $input) {
    orders { id status thirdPartyId }
    userErrors { code message }
  }
}";

pub(crate) const UPSERT_STOCK_LEVELS: &str =
    "mutation UpsertStockLevels($input: [StockLevelInput!]!) {
  upsertStockLevels(input: $input) {
    userErrors { code message }
  }
}";

/// Inputs per `upsertStockLevels` call: the chunk size of Cloudshelf's Shopify connector
/// (Cloudshelf/Shopify_CSConnector, the repository `schema/cloudshelf.graphql` is rendered from). The real
/// limit is UNVERIFIED.
pub const STOCK_LEVELS_CHUNK: usize = 1000;

/// One `StockLevelInput`. Both ids take a Cloudshelf gid or the platformProvidedId (external gid) the location
/// or variant was ingested under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevelUpdate {
    pub location_id: String,
    pub product_variant_id: String,
    /// Absolute quantity; Cloudshelf only derives `isInStock` from it (against its safety stock).
    pub quantity: i64,
}

/// `UserErrorCode`s that may go away on a retry; every other code is permanent.
const TRANSIENT_USER_ERROR_CODES: [&str; 3] = [
    "UNKNOWN_ERROR",
    "TEMPORARY_RESTRICTION",
    "ALREADY_IN_PROGRESS",
];

/// One entry of an upsert's `userErrors`. `code` is kept as text so that codes added later still parse.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CloudshelfUserError {
    pub code: String,
    pub message: String,
}

impl CloudshelfUserError {
    pub fn is_transient(&self) -> bool {
        TRANSIENT_USER_ERROR_CODES.contains(&self.code.as_str())
    }
}

fn describe(errors: &[CloudshelfUserError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudshelfError {
    #[error("rate limited by Cloudshelf (retry at {retry_at_ms:?})")]
    RateLimited { retry_at_ms: Option<i64> },
    /// HTTP 401/403, or an `UNAUTHENTICATED` error in a 200 answer (then 200).
    #[error("Cloudshelf rejected the API key (HTTP {0})")]
    Unauthorized(u16),
    /// Nothing reached Cloudshelf (connection refused, DNS).
    #[error("request not delivered: {0}")]
    NotSent(String),
    /// Timeout, 5xx, broken body: may or may not have been applied; retrying is safe.
    #[error("transient Cloudshelf failure: {0}")]
    Transient(String),
    /// Top-level `errors[]`, including the complexity/depth limits: the request itself is wrong.
    #[error("Cloudshelf GraphQL errors: {0}")]
    GraphQl(String),
    #[error("Cloudshelf rejected the input: {}", describe(.0))]
    UserErrors(Vec<CloudshelfUserError>),
    #[error("unexpected answer from Cloudshelf: {0}")]
    Protocol(String),
}

impl CloudshelfError {
    /// Worth retrying later as is. `UserErrors` are transient only when every one of them is.
    pub fn is_transient(&self) -> bool {
        match self {
            CloudshelfError::RateLimited { .. }
            | CloudshelfError::NotSent(_)
            | CloudshelfError::Transient(_) => true,
            CloudshelfError::UserErrors(errors) => {
                !errors.is_empty() && errors.iter().all(CloudshelfUserError::is_transient)
            }
            CloudshelfError::Unauthorized(_)
            | CloudshelfError::GraphQl(_)
            | CloudshelfError::Protocol(_) => false,
        }
    }

    /// Whether the `userErrors` include this code (e.g. `ENTITY_NOT_FOUND`).
    pub fn has_user_error(&self, code: &str) -> bool {
        matches!(self, CloudshelfError::UserErrors(errors) if errors.iter().any(|e| e.code == code))
    }
}

/// `OrderStatus` of the schema. Serialised with the GraphQL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloudshelfOrderStatus {
    DraftBasket,
    Placed,
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
}

impl CloudshelfOrderStatus {
    pub const ALL: [CloudshelfOrderStatus; 6] = [
        CloudshelfOrderStatus::DraftBasket,
        CloudshelfOrderStatus::Placed,
        CloudshelfOrderStatus::Paid,
        CloudshelfOrderStatus::PartiallyRefunded,
        CloudshelfOrderStatus::Refunded,
        CloudshelfOrderStatus::Voided,
    ];

    /// The GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudshelfOrderStatus::DraftBasket => "DRAFT_BASKET",
            CloudshelfOrderStatus::Placed => "PLACED",
            CloudshelfOrderStatus::Paid => "PAID",
            CloudshelfOrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            CloudshelfOrderStatus::Refunded => "REFUNDED",
            CloudshelfOrderStatus::Voided => "VOIDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for CloudshelfOrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudshelfOrderLine {
    /// Cloudshelf's `productVariantId`: a Cloudshelf gid or the external gid the variant was ingested under.
    pub product_variant_id: String,
    pub product_variant_name: String,
    pub quantity: i64,
    /// Unit price as Cloudshelf reports it (a JSON float, rounded to thousandths).
    pub price: Amount,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudshelfOrder {
    pub id: String,
    pub status: CloudshelfOrderStatus,
    pub third_party_id: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<CloudshelfOrderLine>,
}

#[derive(Clone)]
pub struct CloudshelfClient {
    http: crate::http_client::LazyHttp,
    url: String,
    api_key: String,
}

impl std::fmt::Debug for CloudshelfClient {
    /// Leaves the API key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudshelfClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl CloudshelfClient {
    /// `timeout` bounds each whole request (connect, send, answer).
    pub fn new(url: impl Into<String>, api_key: impl Into<String>, timeout: Duration) -> Self {
        Self {
            http: crate::http_client::LazyHttp::new(timeout, Duration::from_secs(3).min(timeout)),
            url: url.into(),
            api_key: api_key.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    // pub(crate) for the catalogue reads and upserts in `cloudshelf_catalogue`.
    pub(crate) async fn post(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<Value, CloudshelfError> {
        let response = self
            .http
            .get()
            .post(&self.url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Token {}", self.api_key),
            )
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    CloudshelfError::NotSent(e.to_string())
                } else {
                    CloudshelfError::Transient(e.to_string())
                }
            })?;
        let status = response.status().as_u16();
        if status == 429 {
            let retry_at_ms = crate::centra::retry_at_from_headers(response.headers());
            return Err(CloudshelfError::RateLimited { retry_at_ms });
        }
        if status == 401 || status == 403 {
            return Err(CloudshelfError::Unauthorized(status));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| CloudshelfError::Transient(format!("response body lost: {e}")))?;
        // 408 and 499 (client closed) are what Cloudshelf's own client retries besides 5xx.
        if status >= 500 || status == 408 || status == 499 {
            return Err(CloudshelfError::Transient(format!("HTTP {status}")));
        }
        let doc = parse_document(status, &body)?;
        check_graphql_errors(status, &doc)?;
        if !(200..300).contains(&status) {
            return Err(CloudshelfError::Protocol(format!(
                "HTTP {status} without errors"
            )));
        }
        doc.get("data")
            .cloned()
            .ok_or_else(|| CloudshelfError::Protocol("no data in response".into()))
    }

    /// `order(id)`: `None` when Cloudshelf does not know the id. Takes a Cloudshelf or an external gid (a
    /// basket-transfer id must be base64-decoded first).
    pub async fn order(&self, id: &str) -> Result<Option<CloudshelfOrder>, CloudshelfError> {
        let data = self.post(ORDER, json!({ "id": id })).await?;
        match data.get("order") {
            None => Err(CloudshelfError::Protocol("no order in data".into())),
            Some(Value::Null) => Ok(None),
            Some(node) => parse_order(node).map(Some),
        }
    }

    /// `upsertOrders` with one input: sets `status` and, when given, `newThirdPartyId` (which becomes the
    /// order's `thirdPartyId`). Non-empty `userErrors` → `UserErrors`.
    pub async fn set_order_status(
        &self,
        id: &str,
        status: CloudshelfOrderStatus,
        new_third_party_id: Option<&str>,
    ) -> Result<(), CloudshelfError> {
        let mut input = json!({ "id": id, "status": status.as_str() });
        // Left out rather than sent as null, so that an absent id cannot clear the stored one.
        if let Some(tp) = new_third_party_id {
            input["newThirdPartyId"] = json!(tp);
        }
        let data = self
            .post(UPSERT_ORDERS, json!({ "input": [input] }))
            .await?;
        let payload = data
            .get("upsertOrders")
            .filter(|p| p.is_object())
            .ok_or_else(|| CloudshelfError::Protocol("no upsertOrders in data".into()))?;
        let user_errors: Vec<CloudshelfUserError> = match payload.get("userErrors") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| CloudshelfError::Protocol(format!("userErrors: {e}")))?,
        };
        if !user_errors.is_empty() {
            return Err(CloudshelfError::UserErrors(user_errors));
        }
        let applied = payload
            .get("orders")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty());
        if !applied {
            return Err(CloudshelfError::Protocol(
                "upsertOrders returned neither orders nor userErrors".into(),
            ));
        }
        Ok(())
    }

    /// `upsertStockLevels`, in chunks of [`STOCK_LEVELS_CHUNK`]. Returns the `userErrors` of all chunks: the
    /// inputs they do not concern were applied (Cloudshelf's userErrors carry no input index, so the caller
    /// matches them by message if it must). Levels are absolute, so repeating a call after a transient failure
    /// (which may have applied earlier chunks, or the failed one) is safe.
    pub async fn upsert_stock_levels(
        &self,
        levels: &[StockLevelUpdate],
    ) -> Result<Vec<CloudshelfUserError>, CloudshelfError> {
        let mut user_errors = Vec::new();
        for chunk in levels.chunks(STOCK_LEVELS_CHUNK) {
            let input: Vec<Value> = chunk
                .iter()
                .map(|l| {
                    json!({
                        "locationId": l.location_id,
                        "productVariantId": l.product_variant_id,
                        "quantity": l.quantity,
                    })
                })
                .collect();
            let data = self
                .post(UPSERT_STOCK_LEVELS, json!({ "input": input }))
                .await?;
            let payload = data
                .get("upsertStockLevels")
                .filter(|p| p.is_object())
                .ok_or_else(|| CloudshelfError::Protocol("no upsertStockLevels in data".into()))?;
            if let Some(v) = payload.get("userErrors").filter(|v| !v.is_null()) {
                let errors: Vec<CloudshelfUserError> = serde_json::from_value(v.clone())
                    .map_err(|e| CloudshelfError::Protocol(format!("userErrors: {e}")))?;
                user_errors.extend(errors);
            }
        }
        Ok(user_errors)
    }

    /// Orders with `updatedAt >= since`, oldest first, so a caller can advance its watermark as it goes.
    /// The bound is inclusive because several orders can share a millisecond: the caller dedupes on
    /// (id, updatedAt). Pages `orders(sortBy: {updatedAt: DESC})` and stops at the first older order.
    /// `page_size` is capped at [`MAX_ORDERS_PAGE_SIZE`] to stay within the complexity limit.
    pub async fn orders_updated_since(
        &self,
        since: DateTime<Utc>,
        page_size: u32,
    ) -> Result<Vec<CloudshelfOrder>, CloudshelfError> {
        let first = page_size.clamp(1, MAX_ORDERS_PAGE_SIZE);
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let data = self
                .post(
                    ORDERS_BY_UPDATED_AT,
                    json!({ "first": first, "after": after }),
                )
                .await?;
            let conn = data
                .get("orders")
                .filter(|c| c.is_object())
                .ok_or_else(|| CloudshelfError::Protocol("no orders in data".into()))?;
            let edges = match conn.get("edges") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(edges)) => edges.as_slice(),
                Some(_) => return Err(CloudshelfError::Protocol("edges is not a list".into())),
            };
            for edge in edges {
                let node = edge
                    .get("node")
                    .filter(|n| n.is_object())
                    .ok_or_else(|| CloudshelfError::Protocol("edge without node".into()))?;
                let order = parse_order(node)?;
                if order.updated_at < since {
                    found.reverse();
                    return Ok(found);
                }
                // An offset-paged server could repeat an order that moved during the scan.
                if seen.insert(order.id.clone()) {
                    found.push(order);
                }
            }
            let page = conn.get("pageInfo").cloned().unwrap_or(Value::Null);
            if page.get("hasNextPage").and_then(Value::as_bool) != Some(true) {
                break;
            }
            let next = page
                .get("endCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            if next.is_none() || next == after || edges.is_empty() {
                return Err(CloudshelfError::Protocol(
                    "hasNextPage without a new endCursor".into(),
                ));
            }
            after = next;
        }
        found.reverse();
        Ok(found)
    }
}

/// The response body as JSON: a 2xx that does not parse was cut short (transient), anything
/// else is a protocol error.
fn parse_document(status: u16, body: &[u8]) -> Result<Value, CloudshelfError> {
    match serde_json::from_slice(body) {
        Ok(doc) => Ok(doc),
        // A 200 whose body does not parse was most likely cut short.
        Err(e) if (200..300).contains(&status) => Err(CloudshelfError::Transient(format!(
            "unreadable response: {e}"
        ))),
        Err(_) => Err(CloudshelfError::Protocol(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        ))),
    }
}

/// GraphQL `errors[]`: UNAUTHENTICATED as unauthorized, the rest as one GraphQL error.
fn check_graphql_errors(status: u16, doc: &Value) -> Result<(), CloudshelfError> {
    if let Some(errors) = doc
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let code = |e: &Value| {
            e.pointer("/extensions/code")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        // Some GraphQL servers answer a bad key with 200 + UNAUTHENTICATED rather than 401.
        if errors
            .iter()
            .any(|e| code(e).as_deref() == Some("UNAUTHENTICATED"))
        {
            return Err(CloudshelfError::Unauthorized(status));
        }
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                let message = e.get("message").and_then(Value::as_str).unwrap_or("?");
                match code(e) {
                    Some(c) => format!("{message} ({c})"),
                    None => message.to_string(),
                }
            })
            .collect();
        return Err(CloudshelfError::GraphQl(messages.join("; ")));
    }
    Ok(())
}

fn str_field<'a>(node: &'a Value, name: &str) -> Result<&'a str, CloudshelfError> {
    node.get(name).and_then(Value::as_str).ok_or_else(|| {
        CloudshelfError::Protocol(format!("order field {name} missing or not a string"))
    })
}

fn parse_order(node: &Value) -> Result<CloudshelfOrder, CloudshelfError> {
    let id = str_field(node, "id")?.to_string();
    let status_text = str_field(node, "status")?;
    let status = CloudshelfOrderStatus::parse(status_text)
        .ok_or_else(|| CloudshelfError::Protocol(format!("unknown order status {status_text}")))?;
    let updated_at = DateTime::parse_from_rfc3339(str_field(node, "updatedAt")?)
        .map_err(|e| CloudshelfError::Protocol(format!("order {id} updatedAt: {e}")))?
        .with_timezone(&Utc);
    let third_party_id = node
        .get("thirdPartyId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let lines = node
        .get("lines")
        .and_then(Value::as_array)
        .ok_or_else(|| CloudshelfError::Protocol(format!("order {id} without lines")))?
        .iter()
        .map(|l| {
            let bad = |what: &str| CloudshelfError::Protocol(format!("order {id} line {what}"));
            Ok(CloudshelfOrderLine {
                product_variant_id: str_field(l, "productVariantId")?.to_string(),
                product_variant_name: l
                    .get("productVariantName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                quantity: l
                    .get("quantity")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("quantity"))?,
                price: l
                    .get("price")
                    .and_then(Value::as_f64)
                    .map(Amount::from_f64)
                    .ok_or_else(|| bad("price"))?,
                currency: str_field(l, "currencyCode")?.to_string(),
            })
        })
        .collect::<Result<Vec<_>, CloudshelfError>>()?;
    Ok(CloudshelfOrder {
        id,
        status,
        third_party_id,
        updated_at,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page-size cap is derived from hand-counted costs; check them against the query text with the
    /// simulator's cost model (every field 1, `edges` × `first`).
    #[test]
    fn orders_query_cost_matches_the_constants() {
        let vars = json!({ "first": 1, "after": null });
        let op =
            simulators::graphql::prepare(ORDERS_BY_UPDATED_AT, None, vars.as_object().unwrap())
                .unwrap();
        assert_eq!(
            simulators::cloudshelf::query_complexity(&op.fields, 10),
            u64::from(ORDERS_FIXED_COST + ORDERS_EDGE_COST)
        );
    }

    #[test]
    fn status_names_round_trip() {
        for s in CloudshelfOrderStatus::ALL {
            assert_eq!(CloudshelfOrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert_eq!(CloudshelfOrderStatus::parse("paid"), None);
    }

    #[test]
    fn transience_of_user_errors_follows_their_codes() {
        let e = |code: &str| CloudshelfUserError {
            code: code.into(),
            message: "m".into(),
        };
        assert!(!CloudshelfError::UserErrors(vec![e("ENTITY_NOT_FOUND")]).is_transient());
        assert!(CloudshelfError::UserErrors(vec![e("TEMPORARY_RESTRICTION")]).is_transient());
        assert!(
            !CloudshelfError::UserErrors(vec![e("UNKNOWN_ERROR"), e("INVALID_ARGUMENT")])
                .is_transient()
        );
        assert!(!CloudshelfError::UserErrors(vec![]).is_transient());
        assert!(CloudshelfError::RateLimited { retry_at_ms: None }.is_transient());
        assert!(!CloudshelfError::GraphQl("x".into()).is_transient());
    }

    #[test]
    fn debug_hides_the_api_key() {
        let c = CloudshelfClient::new("http://x/graphql", "secret-key-123", Duration::from_secs(1));
        let text = format!("{c:?}");
        assert!(!text.contains("secret-key-123"), "{text}");
        assert!(text.contains("http://x/graphql"));
    }
}
