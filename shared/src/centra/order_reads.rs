//! Order reads over Centra's Integration API (GraphQL): an order's current state for the lifecycle handler,
//! the lookup that adopts an order whose create response was lost, and shipment/return → order number.
//!
//! `orders(where: OrderFilter, limit, page)` is documented (`Query.orders`, `OrderFilter` in
//! `schema/centra/integration-subset.graphql`); the `createdAt` range's field
//! names (`from`/`to`), what `search` matches, and the `shipments`/`returns` filter shapes are UNVERIFIED. So
//! the tag lookup re-checks `internalComment` itself and never trusts `search` alone.

use crate::centra::{CentraClient, CentraError};
use crate::core::money::Amount;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Fields read for every order.
const ORDER_FIELDS: &str = "number status internalComment store { id } \
grandTotal { value currency { code } } shipments { isShipped } \
paymentHistory { entryType status value { value } }";

const TAG_PAGE_SIZE: u64 = 50;
/// 10,000 orders of one store in the lookup window means the window is wrong, not that we should read on.
const TAG_MAX_PAGES: u64 = 200;

/// What the integration needs of one Centra order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentraOrderState {
    pub number: u64,
    /// PENDING, CONFIRMED, PROCESSING, SHIPPED, ARCHIVED, CANCELLED.
    pub status: String,
    pub store_id: u64,
    pub internal_comment: Option<String>,
    pub grand_total: Amount,
    pub currency: String,
    /// Sum of successful CAPTURE payment entries.
    pub captured: Amount,
    /// Sum of successful REFUND payment entries.
    pub refunded: Amount,
    /// Some shipment has shipped.
    pub shipped: bool,
}

pub(crate) fn orders_query() -> String {
    format!(
        "query Orders($where: OrderFilter, $limit: Int, $page: Int) {{ \
         orders(where: $where, limit: $limit, page: $page) {{ {ORDER_FIELDS} }} }}"
    )
}

/// The order number of a shipment or return by id (`root` is `shipments` or `returns`).
pub(crate) fn lookup_query(root: &str) -> String {
    format!(
        "query Lookup($id: [Int!]) {{ {root}(where: {{ id: $id }}, limit: 1) {{ id order {{ number }} }} }}"
    )
}

impl CentraClient {
    /// Orders of `store_id` created since `created_from` whose `internalComment` contains `tag`. Pages
    /// through every match of Centra's `search`, keeping only exact (case-sensitive) tag matches.
    pub async fn find_orders_by_tag(
        &self,
        store_id: u64,
        tag: &str,
        created_from: DateTime<Utc>,
    ) -> Result<Vec<CentraOrderState>, CentraError> {
        let query = orders_query();
        let filter = json!({
            "storeId": [store_id],
            "createdAt": { "from": created_from.to_rfc3339_opts(SecondsFormat::Secs, true) },
            "search": tag,
        });
        let mut found = Vec::new();
        for page in 1..=TAG_MAX_PAGES {
            let data = self
                .post(
                    &query,
                    json!({ "where": filter, "limit": TAG_PAGE_SIZE, "page": page }),
                )
                .await?;
            let rows = order_rows(&data)?;
            for row in rows {
                let state = order_state(row)?;
                let tagged = state
                    .internal_comment
                    .as_deref()
                    .is_some_and(|c| c.contains(tag));
                if tagged && state.store_id == store_id {
                    found.push(state);
                }
            }
            if (rows.len() as u64) < TAG_PAGE_SIZE {
                return Ok(found);
            }
        }
        Err(CentraError::Protocol(format!(
            "more than {} orders match \"{tag}\" in store {store_id}; refusing to guess",
            TAG_PAGE_SIZE * TAG_MAX_PAGES
        )))
    }

    /// The order with this number, if Centra has it.
    pub async fn order(&self, number: u64) -> Result<Option<CentraOrderState>, CentraError> {
        let data = self
            .post(
                &orders_query(),
                json!({ "where": { "number": [number] }, "limit": 1, "page": 1 }),
            )
            .await?;
        for row in order_rows(&data)? {
            let state = order_state(row)?;
            // A server ignoring the filter must not make another order pass for this one.
            if state.number == number {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }

    /// The number of the order a shipment belongs to.
    pub async fn order_number_for_shipment(&self, id: u64) -> Result<Option<u64>, CentraError> {
        self.order_number_of("shipments", id).await
    }

    /// The number of the order a return belongs to.
    pub async fn order_number_for_return(&self, id: u64) -> Result<Option<u64>, CentraError> {
        self.order_number_of("returns", id).await
    }

    async fn order_number_of(&self, root: &str, id: u64) -> Result<Option<u64>, CentraError> {
        let query = lookup_query(root);
        let data = self.post(&query, json!({ "id": [id] })).await?;
        let rows = data
            .get(root)
            .and_then(Value::as_array)
            .ok_or_else(|| CentraError::Protocol(format!("no {root} list in data")))?;
        for row in rows {
            if as_u64(row.get("id")) == Some(id) {
                return as_u64(row.pointer("/order/number"))
                    .map(Some)
                    .ok_or_else(|| {
                        CentraError::Protocol(format!("{root} {id} has no order number"))
                    });
            }
        }
        Ok(None)
    }
}

fn order_rows(data: &Value) -> Result<&Vec<Value>, CentraError> {
    data.get("orders")
        .and_then(Value::as_array)
        .ok_or_else(|| CentraError::Protocol("no orders list in data".into()))
}

/// Ints may come as JSON numbers or strings.
fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A `MonetaryValue.value` (a Float; tolerated as a numeric string).
fn amount(v: Option<&Value>) -> Option<Amount> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Amount::from_f64(f))
}

fn order_state(row: &Value) -> Result<CentraOrderState, CentraError> {
    let missing = |what: &str| CentraError::Protocol(format!("order without {what}: {row}"));
    let number = as_u64(row.get("number")).ok_or_else(|| missing("number"))?;
    let sum_of = |entry_type: &str| {
        row.get("paymentHistory")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.get("entryType").and_then(Value::as_str) == Some(entry_type)
                    && e.get("status").and_then(Value::as_str) == Some("SUCCESS")
            })
            .filter_map(|e| amount(e.pointer("/value/value")))
            .fold(Amount::ZERO, |acc, a| acc.checked_add(a).unwrap_or(acc))
    };
    Ok(CentraOrderState {
        number,
        status: row
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("status"))?
            .to_string(),
        store_id: as_u64(row.pointer("/store/id")).ok_or_else(|| missing("store.id"))?,
        internal_comment: row
            .get("internalComment")
            .and_then(Value::as_str)
            .map(str::to_string),
        grand_total: amount(row.pointer("/grandTotal/value"))
            .ok_or_else(|| missing("grandTotal"))?,
        currency: row
            .pointer("/grandTotal/currency/code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        captured: sum_of("CAPTURE"),
        refunded: sum_of("REFUND"),
        shipped: row
            .get("shipments")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s.get("isShipped").and_then(Value::as_bool) == Some(true))
            }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_sums_successful_captures_and_refunds_only() {
        let row = json!({
            "number": 1000, "status": "SHIPPED", "internalComment": null, "store": {"id": 1},
            "grandTotal": {"value": 54.0, "currency": {"code": "GBP"}},
            "shipments": [{"isShipped": false}, {"isShipped": true}],
            "paymentHistory": [
                {"entryType": "AUTH", "status": "SUCCESS", "value": {"value": 54.0}},
                {"entryType": "CAPTURE", "status": "SUCCESS", "value": {"value": 50.5}},
                {"entryType": "CAPTURE", "status": "FAILED", "value": {"value": 3.5}},
                {"entryType": "REFUND", "status": "SUCCESS", "value": {"value": "10.25"}},
            ],
        });
        let s = order_state(&row).unwrap();
        assert_eq!(s.captured, Amount::from_thousandths(50_500));
        assert_eq!(s.refunded, Amount::from_thousandths(10_250));
        assert_eq!(s.grand_total, Amount::from_thousandths(54_000));
        assert!(s.shipped);
        assert_eq!(s.internal_comment, None);
    }
}
