//! Centra Order API client: `POST <plugin base>/order` creates a DTC order paid outside Centra
//! (docs/orders.md §2).
//!
//! What matters to the caller is whether the order may exist. A refused connection, a 401, a 429 or a coded
//! refusal (`{"status":"no","code":N}`) mean it does not; a timeout, a 5xx, a dropped connection or an
//! unreadable success body mean it may (`Uncertain`), which the caller resolves by looking the order up by
//! its tag (see `centra_order_reads`).

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One Order-API plugin: its base URL (which picks the Centra store) and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OrderApiTarget {
    pub base_url: String,
    pub secret: String,
}

impl std::fmt::Debug for OrderApiTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderApiTarget")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The body of `POST <base>/order`, with Centra's field names. `None` fields are left out, so Centra applies
/// its defaults (e.g. `customerRegister` absent = guest customer).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    pub market_id: u64,
    pub pricelist_id: u64,
    /// Shipping option `uri`.
    pub shipping_list: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_value: Option<f64>,
    pub address: CreateOrderAddress,
    pub products: Vec<CreateOrderProduct>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<CreateOrderPayment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_comment: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_attributes: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_email: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_register: Option<bool>,
}

/// `address`: billing = delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderAddress {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coaddress: Option<String>,
    pub city: String,
    pub zipcode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// One line: a size by `sku` or `ean` (set exactly one).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderProduct {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ean: Option<String>,
    pub qty: u32,
    /// Kiosk price; without it Centra prices from the pricelist.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "money_opt")]
    pub unit_price: Option<f64>,
}

/// `payment`: the plugin id and what was taken outside Centra (`capture` or `auth`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateOrderPayment {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PaymentRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<PaymentRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentRecord {
    /// 0|1|2 per Centra's docs; 1 is taken to mean success (UNVERIFIED).
    pub status: u8,
    pub transaction: String,
    pub method: String,
    #[serde(serialize_with = "money")]
    pub amount: f64,
}

/// Money rounded to 3 decimals, so binary noise (`54.00000000001`) never reaches Centra.
fn money<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

fn money_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => money(v, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderApiError {
    /// Centra answered `{"status":"no","code":N,"msg":...}`: no order was created.
    #[error("Centra refused the order (code {code}): {reason}")]
    Rejected {
        code: i64,
        /// Retrying the same request cannot help; an operator must act.
        permanent: bool,
        /// What the code means plus Centra's message, for an operator.
        reason: String,
        centra_message: String,
    },
    /// HTTP 429: not created; `retry_at_ms` from `Retry-After`.
    #[error("rate limited by Centra (retry at {retry_at_ms:?})")]
    RateLimited { retry_at_ms: Option<i64> },
    /// HTTP 401/403: the plugin secret was refused.
    #[error("Centra refused the Order-API secret (HTTP {0})")]
    Unauthorized(u16),
    /// Any other 4xx without Centra's error body (e.g. 404: wrong plugin URL): not created.
    #[error("Centra answered HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// The request never reached Centra: certainly not created.
    #[error("order request not delivered: {0}")]
    NotSent(String),
    /// The order may or may not exist (timeout, 5xx, dropped connection, unreadable success body).
    #[error("order outcome unknown: {detail}")]
    Uncertain { detail: String },
}

impl OrderApiError {
    /// Retrying the same request cannot succeed without an operator (a coded permanent refusal, a bad
    /// secret or a wrong plugin URL).
    pub fn is_permanent(&self) -> bool {
        match self {
            OrderApiError::Rejected { permanent, .. } => *permanent,
            OrderApiError::Unauthorized(_) | OrderApiError::Refused { .. } => true,
            OrderApiError::RateLimited { .. }
            | OrderApiError::NotSent(_)
            | OrderApiError::Uncertain { .. } => false,
        }
    }

    /// The order may exist in Centra.
    pub fn may_have_created(&self) -> bool {
        matches!(self, OrderApiError::Uncertain { .. })
    }
}

/// Meaning of Centra's Order-API error codes (listed in docs/orders.md §2) and whether a retry can help.
fn code_meaning(code: i64) -> (&'static str, bool) {
    match code {
        -1 => ("a product is not sellable: inactive, not displayed in the market, or not in the pricelist; check the SKU and the store's market/pricelist in Centra", true),
        -2 => ("not enough stock in Centra to allocate the order; an operator must restock or place it by hand", true),
        -3 => ("the order has no products", true),
        -4 => ("a required field is missing or invalid (address e-mail, country, state, or the shipping option uri)", true),
        -5 => ("the order number already exists in Centra", true),
        -6 => ("Centra could not register or attach the customer", true),
        -7 => ("Centra reported a general error", false),
        _ => ("Centra refused the order with an unknown code", true),
    }
}

/// Order-API client; one instance serves every plugin.
#[derive(Debug, Clone)]
pub struct CentraOrderApi {
    http: crate::http_client::LazyHttp,
    timeout: Duration,
}

impl CentraOrderApi {
    /// `timeout` bounds the whole request; past it the outcome is `Uncertain`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: crate::http_client::LazyHttp::new(timeout, timeout.min(Duration::from_secs(3))),
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST <base_url>/order`; the order numbers Centra created (more than one when it split the order).
    pub async fn create_order(
        &self,
        target: &OrderApiTarget,
        req: &CreateOrderRequest,
    ) -> Result<Vec<u64>, OrderApiError> {
        let url = format!("{}/order", target.base_url.trim_end_matches('/'));
        let response = self
            .http
            .get()
            .post(&url)
            .header("API-Authorization", &target.secret)
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_builder() {
                    OrderApiError::NotSent(e.to_string())
                } else {
                    OrderApiError::Uncertain {
                        detail: e.to_string(),
                    }
                }
            })?;
        let status = response.status().as_u16();
        if status == 429 {
            let retry_at_ms = crate::centra::retry_at_from_headers(response.headers());
            return Err(OrderApiError::RateLimited { retry_at_ms });
        }
        if status == 401 || status == 403 {
            return Err(OrderApiError::Unauthorized(status));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| OrderApiError::Uncertain {
                detail: format!("HTTP {status}, response body lost: {e}"),
            })?;
        let excerpt = || {
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        };
        // 408 and every 5xx: Centra (or a proxy) may have created the order before failing.
        if status >= 500 || status == 408 {
            return Err(OrderApiError::Uncertain {
                detail: format!("HTTP {status}: {}", excerpt()),
            });
        }
        let doc: Option<Value> = serde_json::from_slice(&body).ok();
        // Read the body whatever the status: which HTTP status Centra uses for errors is UNVERIFIED.
        if let Some(doc) = &doc {
            if doc.get("status").and_then(Value::as_str) == Some("no") {
                return Err(rejection(doc));
            }
        }
        if (200..300).contains(&status) {
            let numbers = doc.as_ref().and_then(order_numbers);
            return match numbers {
                Some(n) if !n.is_empty() => Ok(n),
                _ => Err(OrderApiError::Uncertain {
                    detail: format!("HTTP {status} without order numbers: {}", excerpt()),
                }),
            };
        }
        Err(OrderApiError::Refused {
            status,
            body: excerpt(),
        })
    }
}

fn rejection(doc: &Value) -> OrderApiError {
    let centra_message = doc
        .get("msg")
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let code = doc.get("code").and_then(|c| {
        c.as_i64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
    });
    // No code at all is treated like -7: certainly not created, and nothing says a retry cannot help.
    let code = code.unwrap_or(-7);
    let (meaning, permanent) = code_meaning(code);
    OrderApiError::Rejected {
        code,
        permanent,
        reason: format!("{meaning} (Centra: \"{centra_message}\")"),
        centra_message,
    }
}

/// `{"status":"ok","orders":[1234, 1235]}`; numbers may come as strings.
fn order_numbers(doc: &Value) -> Option<Vec<u64>> {
    if doc.get("status").and_then(Value::as_str) != Some("ok") {
        return None;
    }
    doc.get("orders")?
        .as_array()?
        .iter()
        .map(|n| n.as_u64().or_else(|| n.as_str()?.trim().parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_uses_centra_names_and_omits_unset_fields() {
        let req = CreateOrderRequest {
            market_id: 3,
            pricelist_id: 5,
            shipping_list: "home-delivery-uk".into(),
            shipping_value: Some(5.0),
            address: CreateOrderAddress {
                email: "a@b.com".into(),
                first_name: Some("A".into()),
                last_name: None,
                cell: None,
                address: "1 High St".into(),
                coaddress: None,
                city: "London".into(),
                zipcode: "W1 1AA".into(),
                state: None,
                country: "GB".into(),
            },
            products: vec![CreateOrderProduct {
                sku: Some("Prod123Var123789S".into()),
                ean: None,
                qty: 1,
                unit_price: Some(0.1 + 0.2),
            }],
            payment: Some(CreateOrderPayment {
                id: 36,
                capture: Some(PaymentRecord {
                    status: 1,
                    transaction: "psp_123".into(),
                    method: "card".into(),
                    amount: 54.0,
                }),
                auth: None,
            }),
            internal_comment: Some("tag".into()),
            extra_attributes: BTreeMap::new(),
            send_email: None,
            customer_register: None,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "marketId": 3, "pricelistId": 5, "shippingList": "home-delivery-uk", "shippingValue": 5.0,
                "address": {"email": "a@b.com", "firstName": "A", "address": "1 High St", "city": "London",
                            "zipcode": "W1 1AA", "country": "GB"},
                "products": [{"sku": "Prod123Var123789S", "qty": 1, "unitPrice": 0.3}],
                "payment": {"id": 36, "capture": {"status": 1, "transaction": "psp_123", "method": "card", "amount": 54.0}},
                "internalComment": "tag",
            })
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = OrderApiTarget {
            base_url: "http://x/order-api/p".into(),
            secret: "s3cr3t".into(),
        };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn rejection_codes_map_to_permanence() {
        for (code, permanent) in [
            (-1, true),
            (-2, true),
            (-3, true),
            (-4, true),
            (-5, true),
            (-6, true),
            (-7, false),
            (-99, true),
        ] {
            let e = rejection(&json!({"status": "no", "code": code, "msg": "m"}));
            assert_eq!(e.is_permanent(), permanent, "code {code}");
        }
        let e = rejection(&json!({"status": "no", "msg": "no code"}));
        assert!(matches!(
            e,
            OrderApiError::Rejected {
                code: -7,
                permanent: false,
                ..
            }
        ));
    }
}
