//! The envelope of a store event: its `type` picks the parser (stock movement or `order.placed`).

use crate::config::mappings::Mappings;
use crate::events::order_placed::order_from_object;
use crate::events::orders::KioskOrder;
use crate::events::store_events::{
    parse_json_object, stock_event_from_object, StockEvent, ValidationError,
};
use serde_json::Value;

/// A validated store event of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    Stock(StockEvent),
    /// `order.placed`: a kiosk home-delivery order, queued on the orders queue.
    OrderPlaced(Box<KioskOrder>),
}

impl StoreEvent {
    pub fn store(&self) -> &crate::core::ids::StoreCode {
        match self {
            StoreEvent::Stock(stock) => &stock.store,
            StoreEvent::OrderPlaced(order) => &order.store,
        }
    }

    /// The contract's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            StoreEvent::Stock(stock) => stock.event_type.as_str(),
            StoreEvent::OrderPlaced(_) => "order.placed",
        }
    }
}

/// Parses and validates one store event: a stock movement, or `order.placed` when `accept_orders` (the
/// deployment has an orders queue; otherwise `order.placed` is refused as `unsupported_type`).
pub fn parse_store_event(
    id: &str,
    body: &[u8],
    mappings: &Mappings,
    now_ms: i64,
    accept_orders: bool,
) -> Result<StoreEvent, ValidationError> {
    let obj = parse_json_object(body)?;
    if accept_orders && obj.get("type").and_then(Value::as_str) == Some("order.placed") {
        return order_from_object(id, &obj, mappings, now_ms)
            .map(|order| StoreEvent::OrderPlaced(Box::new(order)));
    }
    stock_event_from_object(id, &obj, mappings, now_ms).map(StoreEvent::Stock)
}
