//! Order vocabulary shared by intake, order injection and the lifecycle handler.
//!
//! Money is fixed-point (`Amount`, thousandths) so totals add up exactly; floats appear only at the edge where
//! Centra's Order API and Cloudshelf's GraphQL take JSON numbers.

use crate::core::ids::{ItemRef, StoreCode};
use crate::core::money::Amount;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAddress {
    /// 1–3 street lines; Centra takes the first as `address`, the second as `coaddress`.
    pub lines: Vec<String>,
    pub city: String,
    pub postcode: String,
    /// State/region, required for some countries (US, CA, AU, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Captured,
    Authorized,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskPayment {
    pub provider: String,
    pub transaction_id: String,
    pub amount: Amount,
    /// ISO 4217, upper case.
    pub currency: String,
    pub status: PaymentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskOrderLine {
    /// How Centra is asked for the size: SKU when the line has one, else EAN.
    pub item: ItemRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ean: Option<String>,
    pub quantity: u32,
    pub unit_price: Amount,
    pub currency: String,
}

/// A validated `order.placed` store event: a kiosk endless-aisle order for home delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskOrder {
    /// The store event id (`webhook-id`).
    pub event_id: String,
    /// Cloudshelf `Order` GlobalId: the business idempotency key of the whole order flow.
    pub cloudshelf_order_id: String,
    pub store: StoreCode,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_assistant: Option<String>,
    pub customer: Customer,
    pub delivery_address: DeliveryAddress,
    /// The kiosk's shipping option code; mapped to a Centra shipping option `uri`.
    pub shipping_method: String,
    /// Shipping charged to the shopper (0 when free).
    pub shipping_price: Amount,
    pub payment: KioskPayment,
    pub lines: Vec<KioskOrderLine>,
    pub received_at_ms: i64,
}

impl KioskOrder {
    pub fn lines_total(&self) -> Option<Amount> {
        self.lines.iter().try_fold(Amount::ZERO, |acc, l| {
            acc.checked_add(l.unit_price.checked_mul(i64::from(l.quantity))?)
        })
    }
}

/// One event of a Centra Integration-API webhook call (`{"type":"order","action":"update","date":"…","id":2735}`).
/// Ids only: the handler re-fetches current state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CentraWebhookEvent {
    /// `order`, `shipment`, `return`, `customer`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    /// Order number for `order`; shipment / return id for those types.
    pub id: String,
    /// Centra's own timestamp text, kept verbatim (part of the dedupe key).
    pub date: String,
}

impl CentraWebhookEvent {
    /// Dedupe key: Centra may send the same (type, action, id, date) several times.
    pub fn dedupe_key(&self) -> String {
        format!(
            "centra:{}:{}:{}:{}",
            self.kind, self.action, self.id, self.date
        )
    }
}

/// A message on the orders FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderQueueMessage {
    /// Group id: the Cloudshelf order id. Dedup id: sha256 of the event id.
    Placed(Box<KioskOrder>),
    /// Group id: `centra-<type>-<id>`. Dedup id: sha256 of `dedupe_key()`.
    CentraEvent(CentraWebhookEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_and_print_with_two_or_three_decimals() {
        assert_eq!(Amount::parse("49").unwrap().thousandths(), 49_000);
        assert_eq!(Amount::parse("49.5").unwrap().thousandths(), 49_500);
        assert_eq!(Amount::parse("0.125").unwrap().thousandths(), 125);
        assert_eq!(Amount::parse("-3.25").unwrap().thousandths(), -3_250);
        assert_eq!(Amount::parse("49.5").unwrap().to_string(), "49.50");
        assert_eq!(Amount::parse("0.125").unwrap().to_string(), "0.125");
        for bad in ["", "1.", ".5", "1.2345", "1e3", "+1", "abc", "1.2.3"] {
            assert!(Amount::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn lines_total_adds_quantity_times_price() {
        let line = |q, p: &str| KioskOrderLine {
            item: ItemRef::Sku("A".into()),
            sku: Some("A".into()),
            ean: None,
            quantity: q,
            unit_price: Amount::parse(p).unwrap(),
            currency: "GBP".into(),
        };
        let order = KioskOrder {
            event_id: "e".into(),
            cloudshelf_order_id: "gid://cloudshelf/Order/1".into(),
            store: StoreCode::parse("LDN-01").unwrap(),
            occurred_at: Utc::now(),
            device: None,
            sales_assistant: None,
            customer: Customer {
                email: "a@b.co".into(),
                first_name: None,
                last_name: None,
                phone: None,
            },
            delivery_address: DeliveryAddress {
                lines: vec!["1 High St".into()],
                city: "London".into(),
                postcode: "W1 1AA".into(),
                region: None,
                country: "GB".into(),
            },
            shipping_method: "home-standard".into(),
            shipping_price: Amount::parse("5").unwrap(),
            payment: KioskPayment {
                provider: "adyen".into(),
                transaction_id: "psp_1".into(),
                amount: Amount::parse("103.00").unwrap(),
                currency: "GBP".into(),
                status: PaymentStatus::Captured,
            },
            lines: vec![line(2, "49.00"), line(1, "0.5")],
            received_at_ms: 0,
        };
        assert_eq!(order.lines_total().unwrap().to_string(), "98.50");
        let json =
            serde_json::to_string(&OrderQueueMessage::Placed(Box::new(order.clone()))).unwrap();
        let back: OrderQueueMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, OrderQueueMessage::Placed(Box::new(order)));
    }
}
