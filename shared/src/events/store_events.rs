//! Store events API v1: strict parsing with precise errors, and the stock messages an event becomes.
//!
//! Parsing walks the JSON by hand (rather than `#[derive(Deserialize)]`) so every refusal names the exact
//! field path (`lines[1].quantity`) and the reason, which is what a till integrator needs to fix a sender.

use crate::config::mappings::Mappings;
use crate::core::ids::{EventPosition, ItemRef, Movement, StoreCode};
use crate::core::money::is_iso_currency;
use crate::events::strict_json::{clip, StrictJsonError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const MAX_LINES: usize = 500;
/// A sender's clock may run ahead a little; more than this is a broken clock, refused.
const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// The oldest `occurred_at` accepted. Event ids (and the applier's movement markers) are remembered 15 days: an
/// older event could be the resend of one already forgotten and would be applied twice. A day of margin covers
/// clock skew and the time a message waits in the queue.
pub const MAX_EVENT_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// Largest size of a line's quantity, and of the sum of the lines naming one item.
const MAX_QUANTITY: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockEventType {
    #[serde(rename = "stock.sale")]
    Sale,
    #[serde(rename = "stock.return")]
    Return,
    #[serde(rename = "stock.adjustment")]
    Adjustment,
    #[serde(rename = "stock.count")]
    Count,
}

impl StockEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            StockEventType::Sale => "stock.sale",
            StockEventType::Return => "stock.return",
            StockEventType::Adjustment => "stock.adjustment",
            StockEventType::Count => "stock.count",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.field, self.code, self.message)
    }
}

pub(crate) fn invalid(
    code: &'static str,
    field: impl Into<String>,
    message: impl Into<String>,
) -> ValidationError {
    ValidationError {
        code,
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub item: ItemRef,
    /// The EAN when a line names both SKU and EAN (kept for exception records).
    pub ean: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<String>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockEvent {
    pub id: String,
    pub event_type: StockEventType,
    pub occurred_at: DateTime<Utc>,
    pub store: StoreCode,
    pub sequence: Option<u64>,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub lines: Vec<EventLine>,
    /// The store's business date of `occurred_at` (its time zone): the finance day of a sale or return.
    pub business_date: chrono::NaiveDate,
}

/// One (store, item) movement of one event, as queued on the stock FIFO queue (grouped by SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLineMessage {
    pub event_id: String,
    /// Index of the first event line naming this item (lines for the same item are merged).
    pub line: u32,
    pub event_type: StockEventType,
    pub store: StoreCode,
    pub item: ItemRef,
    pub movement: Movement,
    pub position: EventPosition,
    pub received_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Units and gross per currency of a sale or return (the finance daybook); empty for other types and for
    /// messages queued before the daybook existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<crate::core::money::LineValue>,
    /// The store's business date of the event (set with `values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_date: Option<chrono::NaiveDate>,
}

impl StockLineMessage {
    /// Business idempotency key of this movement (never an SQS message id, which changes on redrive).
    pub fn movement_id(&self) -> String {
        format!("{}#{}", self.event_id, self.line)
    }
}

pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

pub(crate) fn string_field(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<String>, ValidationError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("invalid_type", path, "must be a string")),
    }
}

pub(crate) fn required_string(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<String, ValidationError> {
    string_field(obj, name, path)?.ok_or_else(|| invalid("missing_field", path, "is required"))
}

pub(crate) fn check_known_fields(
    obj: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), ValidationError> {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            // The key is echoed once (in `field`), the path clipped: a sender may send anything as a key.
            return Err(invalid(
                "unknown_field",
                clip(&format!("{prefix}{}", clip(key))),
                format!(
                    "is not a field of this object (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// EAN/GTIN shape: 8, 12, 13 or 14 digits. The check digit is not enforced: the contract's own example
/// (`7350000000012`) does not carry a valid one and Centra stores EANs as given.
pub fn check_ean(ean: &str) -> Result<(), String> {
    if !matches!(ean.len(), 8 | 12 | 13 | 14) || !ean.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 8, 12, 13 or 14 digits".into());
    }
    Ok(())
}

pub(crate) fn check_sku(sku: &str) -> Result<(), String> {
    if sku.is_empty() || sku.len() > 100 {
        return Err("must be 1-100 characters".into());
    }
    // FIFO MessageGroupId allows printable ASCII without spaces; the SKU is the group id.
    if !sku.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("may contain only printable ASCII without spaces".into());
    }
    Ok(())
}

fn check_price(price: &str) -> Result<(), String> {
    let (int, frac) = price.split_once('.').unwrap_or((price, ""));
    let ok = !int.is_empty()
        && int.len() <= 12
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 4
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(price.contains('.') && frac.is_empty());
    if ok {
        Ok(())
    } else {
        Err("must be a non-negative decimal string such as \"49.00\"".into())
    }
}

pub(crate) fn check_currency(code: &str) -> Result<(), String> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("must be an ISO 4217 code such as \"GBP\"".into());
    }
    if !is_iso_currency(code) {
        return Err(format!(
            "\"{code}\" is not an active ISO 4217 currency code"
        ));
    }
    Ok(())
}

/// A line's or payment's `currency` must be the store's (`[stores.X] currency`): the finance day of a store is
/// kept in its currency, and a kiosk order is priced on the store's pricelist.
pub(crate) fn check_store_currency(
    currency: &str,
    store: &StoreCode,
    mappings: &Mappings,
    path: &str,
) -> Result<(), ValidationError> {
    match mappings.store(store.as_str()) {
        Some(m) if m.currency != currency => Err(invalid(
            "currency_mismatch",
            path,
            format!("is {currency} but store {store} trades in {}", m.currency),
        )),
        _ => Ok(()),
    }
}

/// The body as a JSON object, refusing duplicate keys (`duplicate_key`, naming the key's path).
pub(crate) fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    match crate::events::strict_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(invalid("invalid_type", "$", "body must be a JSON object")),
        Err(StrictJsonError::DuplicateKey { path }) => Err(invalid(
            "duplicate_key",
            path,
            "appears more than once in its object",
        )),
        Err(StrictJsonError::Malformed(e)) => Err(invalid(
            "malformed_json",
            "$",
            format!("body is not valid JSON: {e}"),
        )),
    }
}

/// Parses and validates one stock event (`order.placed` is refused). `now_ms` bounds `occurred_at` from the future.
pub fn parse_stock_event(
    id: &str,
    body: &[u8],
    mappings: &Mappings,
    now_ms: i64,
) -> Result<StockEvent, ValidationError> {
    stock_event_from_object(id, &parse_json_object(body)?, mappings, now_ms)
}

/// `occurred_at`: required RFC 3339, at most 5 minutes ahead of `now_ms` and at most 14 days behind it.
pub(crate) fn parse_occurred_at(
    obj: &Map<String, Value>,
    now_ms: i64,
) -> Result<DateTime<Utc>, ValidationError> {
    let occurred_raw = required_string(obj, "occurred_at", "occurred_at")?;
    let occurred_at = DateTime::parse_from_rfc3339(&occurred_raw)
        .map_err(|_| {
            invalid(
                "invalid_value",
                "occurred_at",
                "must be an RFC 3339 timestamp such as 2026-11-28T10:15:00Z",
            )
        })?
        .with_timezone(&Utc);
    let at_ms = occurred_at.timestamp_millis();
    if at_ms > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err(invalid(
            "invalid_value",
            "occurred_at",
            "is more than 5 minutes in the future",
        ));
    }
    if at_ms < now_ms.saturating_sub(MAX_EVENT_AGE_MS) {
        return Err(invalid(
            "invalid_value",
            "occurred_at",
            "is more than 14 days in the past (event ids are remembered 15 days); send a stock.count instead",
        ));
    }
    Ok(occurred_at)
}

/// `store`: required, and a store of the mappings.
pub(crate) fn parse_store(
    obj: &Map<String, Value>,
    mappings: &Mappings,
) -> Result<StoreCode, ValidationError> {
    let store_raw = required_string(obj, "store", "store")?;
    let store = StoreCode::parse(&store_raw).map_err(|m| invalid("invalid_value", "store", m))?;
    if mappings.store(store.as_str()).is_none() {
        return Err(invalid(
            "unknown_store",
            "store",
            format!("store \"{store_raw}\" is not in the mappings"),
        ));
    }
    Ok(store)
}

pub(crate) fn stock_event_from_object(
    id: &str,
    obj: &Map<String, Value>,
    mappings: &Mappings,
    now_ms: i64,
) -> Result<StockEvent, ValidationError> {
    // Before the field check: an order body has fields a stock event does not.
    if obj.get("type").and_then(Value::as_str) == Some("order.placed") {
        return Err(invalid(
            "unsupported_type",
            "type",
            "order.placed is not enabled in this deployment",
        ));
    }
    check_known_fields(
        obj,
        &[
            "type",
            "occurred_at",
            "store",
            "sequence",
            "reference",
            "reason",
            "lines",
        ],
        "",
    )?;

    let event_type = parse_stock_event_type(obj)?;

    let occurred_at = parse_occurred_at(obj, now_ms)?;
    let store = parse_store(obj, mappings)?;

    let sequence = match field(obj, "sequence") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            invalid("invalid_type", "sequence", "must be a non-negative integer")
        })?),
    };
    let (reference, reason) = parse_reference_and_reason(obj, event_type)?;

    let lines = parse_stock_lines(obj, event_type, &store, mappings)?;
    let business_date = mappings
        .store(store.as_str())
        .map(|m| m.business_date(occurred_at.timestamp_millis()))
        .unwrap_or_else(|| occurred_at.date_naive());
    Ok(StockEvent {
        id: id.to_string(),
        event_type,
        occurred_at,
        business_date,
        store,
        sequence,
        reference,
        reason,
        lines,
    })
}

/// `type` of a stock event.
fn parse_stock_event_type(obj: &Map<String, Value>) -> Result<StockEventType, ValidationError> {
    let type_str = required_string(obj, "type", "type")?;
    Ok(match type_str.as_str() {
        "stock.sale" => StockEventType::Sale,
        "stock.return" => StockEventType::Return,
        "stock.adjustment" => StockEventType::Adjustment,
        "stock.count" => StockEventType::Count,
        other => {
            return Err(invalid(
                "unknown_type",
                "type",
                format!("\"{}\" is not one of stock.sale, stock.return, stock.adjustment, stock.count, order.placed", clip(other)),
            ))
        }
    })
}

/// `reference` (at most 256 characters) and `reason` (required for stock.adjustment) of a stock event.
fn parse_reference_and_reason(
    obj: &Map<String, Value>,
    event_type: StockEventType,
) -> Result<(Option<String>, Option<String>), ValidationError> {
    let reference = string_field(obj, "reference", "reference")?;
    if reference.as_ref().is_some_and(|r| r.len() > 256) {
        return Err(invalid(
            "invalid_value",
            "reference",
            "must be at most 256 characters",
        ));
    }
    let reason = string_field(obj, "reason", "reason")?;
    if event_type == StockEventType::Adjustment
        && reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(invalid(
            "missing_field",
            "reason",
            "is required for stock.adjustment",
        ));
    }
    Ok((reference, reason))
}

/// `lines` of a stock event: each line's item, quantity (sign and size by type), price and currency; then the
/// rules across lines (one count per item; the lines naming one item add up within bounds).
fn parse_stock_lines(
    obj: &Map<String, Value>,
    event_type: StockEventType,
    store: &StoreCode,
    mappings: &Mappings,
) -> Result<Vec<EventLine>, ValidationError> {
    let lines_value =
        field(obj, "lines").ok_or_else(|| invalid("missing_field", "lines", "is required"))?;
    let lines_arr = lines_value
        .as_array()
        .ok_or_else(|| invalid("invalid_type", "lines", "must be an array"))?;
    if lines_arr.is_empty() || lines_arr.len() > MAX_LINES {
        return Err(invalid(
            "invalid_value",
            "lines",
            format!("must hold 1-{MAX_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(lines_arr.len());
    for (i, line) in lines_arr.iter().enumerate() {
        lines.push(parse_stock_line(
            line,
            &format!("lines[{i}]"),
            event_type,
            store,
            mappings,
        )?);
    }
    check_counted_once(event_type, &lines)?;
    Ok(lines)
}

/// Two counts of one item in one event cannot both be true. Run on the names as sent, and again once they are
/// resolved to Centra sizes (two names of one size are one item).
pub(crate) fn check_counted_once(
    event_type: StockEventType,
    lines: &[EventLine],
) -> Result<(), ValidationError> {
    if event_type != StockEventType::Count {
        return Ok(());
    }
    for (i, line) in lines.iter().enumerate() {
        if let Some(j) = lines[..i].iter().position(|l| l.item == line.item) {
            return Err(invalid(
                "duplicate_item",
                format!("lines[{i}]"),
                format!(
                    "{} is already counted in lines[{j}]",
                    clip(&line.item.to_string())
                ),
            ));
        }
    }
    Ok(())
}

/// The lines naming one item become one movement: its size is bounded like a line's. Only meaningful once the
/// lines are resolved to Centra sizes (a sum per name could pass a bound the size's total does not, or the
/// reverse), so intake runs it after resolution.
pub(crate) fn check_item_sums(lines: &[EventLine]) -> Result<(), ValidationError> {
    for (i, line) in lines.iter().enumerate() {
        let Some(j) = lines[..i].iter().position(|l| l.item == line.item) else {
            continue;
        };
        if lines[i + 1..].iter().any(|l| l.item == line.item) {
            continue; // summed at the item's last line
        }
        let sum = lines
            .iter()
            .filter(|l| l.item == line.item)
            .try_fold(0_i64, |acc, l| acc.checked_add(l.quantity));
        if sum.is_none_or(|s| s.unsigned_abs() > MAX_QUANTITY) {
            return Err(invalid(
                "invalid_value",
                format!("lines[{i}].quantity"),
                format!(
                    "with lines[{j}] and any other line naming the same item adds up to more than {MAX_QUANTITY} in size"
                ),
            ));
        }
    }
    Ok(())
}

/// A line's quantity at path `p`: bounded in size, its sign as the event type needs.
fn check_line_quantity(
    quantity: i64,
    p: &str,
    event_type: StockEventType,
) -> Result<(), ValidationError> {
    let qpath = format!("{p}.quantity");
    // `unsigned_abs`: `abs` of i64::MIN overflows.
    if quantity.unsigned_abs() > MAX_QUANTITY {
        return Err(invalid(
            "invalid_value",
            &qpath,
            format!("must be at most {MAX_QUANTITY} in size"),
        ));
    }
    match event_type {
        StockEventType::Sale | StockEventType::Return if quantity <= 0 => {
            return Err(invalid(
                "invalid_value",
                &qpath,
                format!("must be > 0 for {}", event_type.as_str()),
            ))
        }
        StockEventType::Adjustment if quantity == 0 => {
            return Err(invalid(
                "invalid_value",
                &qpath,
                "must not be 0 for stock.adjustment",
            ))
        }
        StockEventType::Count if quantity < 0 => {
            return Err(invalid(
                "invalid_value",
                &qpath,
                "must be >= 0 for stock.count",
            ))
        }
        _ => {}
    }
    Ok(())
}

/// One line of a stock event at path `p`.
fn parse_stock_line(
    line: &Value,
    p: &str,
    event_type: StockEventType,
    store: &StoreCode,
    mappings: &Mappings,
) -> Result<EventLine, ValidationError> {
    let LineParts {
        object: lo,
        sku,
        ean,
        item,
        quantity,
    } = parse_line_parts(line, p)?;
    check_line_quantity(quantity, p, event_type)?;
    let unit_price = string_field(lo, "unit_price", &format!("{p}.unit_price"))?;
    let currency = string_field(lo, "currency", &format!("{p}.currency"))?;
    if let Some(price) = &unit_price {
        check_price(price).map_err(|m| invalid("invalid_value", format!("{p}.unit_price"), m))?;
    }
    if let Some(c) = &currency {
        let cpath = format!("{p}.currency");
        check_currency(c).map_err(|m| invalid("invalid_value", &cpath, m))?;
        check_store_currency(c, store, mappings, &cpath)?;
    }
    if matches!(event_type, StockEventType::Sale | StockEventType::Return) {
        if unit_price.is_none() {
            return Err(invalid(
                "missing_field",
                format!("{p}.unit_price"),
                format!("is required on {}", event_type.as_str()),
            ));
        }
        if currency.is_none() {
            return Err(invalid(
                "missing_field",
                format!("{p}.currency"),
                format!("is required on {}", event_type.as_str()),
            ));
        }
    }
    Ok(EventLine {
        item,
        ean: if sku.is_some() { ean } else { None },
        quantity,
        unit_price,
        currency,
    })
}

impl StockEvent {
    /// One message per (store, item): lines naming the same item are summed (they are deltas).
    pub fn stock_messages(&self, received_at_ms: i64) -> Vec<StockLineMessage> {
        let position = EventPosition {
            occurred_at_ms: self.occurred_at.timestamp_millis(),
            sequence: self.sequence,
        };
        let mut out: Vec<StockLineMessage> = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.iter().enumerate() {
            let signed = match self.event_type {
                // Parsing bounds the quantity, so the negation cannot overflow.
                StockEventType::Sale => line.quantity.saturating_neg(),
                StockEventType::Return | StockEventType::Adjustment => line.quantity,
                StockEventType::Count => line.quantity,
            };
            let value = line_value(self.event_type, line);
            if let Some(existing) = out.iter_mut().find(|m| m.item == line.item) {
                if let Movement::Delta(d) = &mut existing.movement {
                    // Parsing bounds the sum; saturating keeps a hand-built event from panicking.
                    *d = d.saturating_add(signed);
                }
                if let Some(v) = value {
                    add_value(&mut existing.values, v);
                }
                continue;
            }
            out.push(StockLineMessage {
                business_date: value.as_ref().map(|_| self.business_date),
                values: value.into_iter().collect(),
                event_id: self.id.clone(),
                line: i as u32,
                event_type: self.event_type,
                store: self.store.clone(),
                item: line.item.clone(),
                movement: if self.event_type == StockEventType::Count {
                    Movement::Count(signed)
                } else {
                    Movement::Delta(signed)
                },
                position,
                received_at_ms,
                reference: self.reference.clone(),
            });
        }
        out
    }
}

/// Units and gross of a priced line (sales and returns; validation requires their price and currency).
fn line_value(
    event_type: StockEventType,
    line: &EventLine,
) -> Option<crate::core::money::LineValue> {
    if !matches!(event_type, StockEventType::Sale | StockEventType::Return) {
        return None;
    }
    let price = crate::core::money::Money::parse(line.unit_price.as_deref()?)?;
    Some(crate::core::money::LineValue {
        units: line.quantity,
        gross: price.checked_times(line.quantity)?,
        currency: line.currency.clone()?,
    })
}

fn add_value(
    values: &mut Vec<crate::core::money::LineValue>,
    value: crate::core::money::LineValue,
) {
    match values.iter_mut().find(|v| v.currency == value.currency) {
        Some(v) => {
            // Parsing bounds units and prices far below these types' limits.
            v.units = v.units.saturating_add(value.units);
            v.gross = v.gross.checked_add(value.gross).unwrap_or(v.gross);
        }
        None => values.push(value),
    }
}

/// The part of a line every event type shares: an object of known fields naming a size by SKU and/or EAN, with
/// an integer quantity. Callers check the quantity's sign and range for their type.
pub(crate) struct LineParts<'a> {
    pub object: &'a Map<String, Value>,
    pub sku: Option<String>,
    pub ean: Option<String>,
    pub item: ItemRef,
    pub quantity: i64,
}

pub(crate) fn parse_line_parts<'a>(
    line: &'a Value,
    p: &str,
) -> Result<LineParts<'a>, ValidationError> {
    let lo = line
        .as_object()
        .ok_or_else(|| invalid("invalid_type", p, "must be an object"))?;
    check_known_fields(
        lo,
        &["sku", "ean", "quantity", "unit_price", "currency"],
        &format!("{p}."),
    )?;
    let sku = string_field(lo, "sku", &format!("{p}.sku"))?;
    let ean = string_field(lo, "ean", &format!("{p}.ean"))?;
    if let Some(s) = &sku {
        check_sku(s).map_err(|m| invalid("invalid_value", format!("{p}.sku"), m))?;
    }
    if let Some(e) = &ean {
        check_ean(e).map_err(|m| invalid("invalid_value", format!("{p}.ean"), m))?;
    }
    let item = match (&sku, &ean) {
        (Some(s), _) => ItemRef::Sku(s.clone()),
        (None, Some(e)) => ItemRef::Ean(e.clone()),
        (None, None) => {
            return Err(invalid(
                "missing_field",
                format!("{p}.sku"),
                "a line needs sku or ean",
            ))
        }
    };
    let qpath = format!("{p}.quantity");
    let quantity = field(lo, "quantity")
        .ok_or_else(|| invalid("missing_field", &qpath, "is required"))?
        .as_i64()
        .ok_or_else(|| invalid("invalid_type", &qpath, "must be an integer"))?;
    Ok(LineParts {
        object: lo,
        sku,
        ean,
        item,
        quantity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mappings() -> Mappings {
        Mappings::embedded_default()
    }

    const NOW: i64 = 1_795_900_000_000;

    fn sale() -> Value {
        json!({
            "type": "stock.sale",
            "occurred_at": "2026-11-28T10:15:00Z",
            "store": "LDN-01",
            "sequence": 18342,
            "reference": "till-7/receipt-99812",
            "lines": [
                { "sku": "Prod123Var123789S", "quantity": 2, "unit_price": "49.00", "currency": "GBP" },
                { "ean": "7350000000012", "quantity": 1, "unit_price": "15.00", "currency": "GBP" }
            ]
        })
    }

    fn parse(v: &Value) -> Result<StockEvent, ValidationError> {
        parse_stock_event("evt_1", v.to_string().as_bytes(), &mappings(), NOW)
    }

    fn field_of(v: Value) -> (String, &'static str) {
        let e = parse(&v).unwrap_err();
        (e.field, e.code)
    }

    #[test]
    fn contract_example_parses_into_messages() {
        let e = parse(&sale()).unwrap();
        assert_eq!(e.lines.len(), 2);
        let msgs = e.stock_messages(NOW);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].movement, Movement::Delta(-2));
        assert_eq!(msgs[1].item, ItemRef::Ean("7350000000012".into()));
        assert_eq!(msgs[0].position.sequence, Some(18342));
        assert_eq!(msgs[1].movement_id(), "evt_1#1");
    }

    #[test]
    fn same_item_twice_is_summed() {
        let mut v = sale();
        v["lines"][1] = json!({ "sku": "Prod123Var123789S", "quantity": 3, "unit_price": "49.00", "currency": "GBP" });
        let msgs = parse(&v).unwrap().stock_messages(NOW);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].movement, Movement::Delta(-5));
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut v = sale();
        v["lines"][1]["quantity"] = json!(0);
        assert_eq!(field_of(v), ("lines[1].quantity".into(), "invalid_value"));

        let mut v = sale();
        v["lines"][0]["quantity"] = json!("2");
        assert_eq!(field_of(v), ("lines[0].quantity".into(), "invalid_type"));

        let mut v = sale();
        v["lines"][1]["ean"] = json!("73500000000A2");
        assert_eq!(field_of(v), ("lines[1].ean".into(), "invalid_value"));

        let mut v = sale();
        v["store"] = json!("NOPE-01");
        assert_eq!(field_of(v), ("store".into(), "unknown_store"));

        let mut v = sale();
        v["occurred_at"] = json!("yesterday");
        assert_eq!(field_of(v), ("occurred_at".into(), "invalid_value"));

        let mut v = sale();
        v["type"] = json!("stock.theft");
        assert_eq!(field_of(v), ("type".into(), "unknown_type"));

        let mut v = sale();
        v["lines"][0].as_object_mut().unwrap().remove("unit_price");
        assert_eq!(field_of(v), ("lines[0].unit_price".into(), "missing_field"));

        let mut v = sale();
        v["lines"][0]["currency"] = json!("gbp");
        assert_eq!(field_of(v), ("lines[0].currency".into(), "invalid_value"));

        let mut v = sale();
        v["lines"][0]["quantiy"] = json!(1);
        assert_eq!(field_of(v), ("lines[0].quantiy".into(), "unknown_field"));

        let mut v = sale();
        v["lines"] = json!([]);
        assert_eq!(field_of(v), ("lines".into(), "invalid_value"));

        let mut v = sale();
        v["lines"][0] = json!({ "quantity": 1, "unit_price": "1", "currency": "GBP" });
        assert_eq!(field_of(v), ("lines[0].sku".into(), "missing_field"));

        let mut v = sale();
        v["sequence"] = json!(-1);
        assert_eq!(field_of(v), ("sequence".into(), "invalid_type"));

        let mut v = sale();
        v["occurred_at"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(field_of(v), ("occurred_at".into(), "invalid_value"));

        let e = parse_stock_event("e", b"{not json", &mappings(), NOW).unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn adjustment_and_count_rules() {
        let adj = json!({ "type": "stock.adjustment", "occurred_at": "2026-11-28T10:15:00Z", "store": "LDN-01",
            "lines": [{ "sku": "A", "quantity": -3 }] });
        assert_eq!(field_of(adj.clone()), ("reason".into(), "missing_field"));
        let mut ok = adj;
        ok["reason"] = json!("damaged");
        assert_eq!(
            parse(&ok).unwrap().stock_messages(NOW)[0].movement,
            Movement::Delta(-3)
        );

        let count = json!({ "type": "stock.count", "occurred_at": "2026-11-28T10:15:00Z", "store": "LDN-01",
            "lines": [{ "sku": "A", "quantity": 7 }, { "sku": "A", "quantity": 8 }] });
        assert_eq!(field_of(count), ("lines[1]".into(), "duplicate_item"));
        let count = json!({ "type": "stock.count", "occurred_at": "2026-11-28T10:15:00Z", "store": "LDN-01",
            "lines": [{ "sku": "A", "quantity": -1 }] });
        assert_eq!(
            field_of(count),
            ("lines[0].quantity".into(), "invalid_value")
        );
    }

    #[test]
    fn events_older_than_the_forgotten_ids_are_refused() {
        // An event id is remembered (intake) and its movements marked (applier) 15 days; accepting an older
        // event could apply a resend of a forgotten one twice.
        assert!(
            MAX_EVENT_AGE_MS
                < crate::intake::contract::IntakeSettings::default().idempotency_ttl_s * 1000
        );
    }

    #[test]
    fn ean_shape() {
        assert!(check_ean("7350000000012").is_ok());
        assert!(check_ean("96385074").is_ok());
        assert!(check_ean("40063813339").is_err());
        assert!(check_ean("4006381 33393").is_err());
    }
}
