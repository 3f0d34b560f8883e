//! `order.placed` store events: strict parsing into a [`KioskOrder`], and the one orders-queue message it becomes.
//!
//! Same approach as `store_events`: the JSON is walked by hand so every refusal names the exact field path
//! (`delivery_address.lines[1]`, `lines[2].currency`, `payment.amount`) and the reason. The order was paid at the
//! kiosk, so everything that would make Centra refuse it later and can be checked here is checked here.

use crate::config::mappings::Mappings;
use crate::core::money::Amount;
use crate::events::orders::{
    Customer, DeliveryAddress, KioskOrder, KioskOrderLine, KioskPayment, PaymentStatus,
};
use crate::events::store_events::{
    check_currency, check_known_fields, check_store_currency, field, invalid, parse_json_object,
    parse_line_parts, parse_occurred_at, parse_store, required_string, string_field, LineParts,
    ValidationError, MAX_LINES,
};
use serde_json::{Map, Value};

/// Countries whose delivery address must carry `region` (Centra's `state`).
///
/// Centra's Order API documents `state` as "required for some countries" without a list (docs/orders.md §1:
/// `region` where the country needs one). These are the
/// countries whose addresses are not deliverable without a state/province/territory and for which Centra keeps
/// a state list (its checkout asks for one): United States, Canada, Australia. The exact set Centra enforces is
/// UNVERIFIED; add a country here when Centra refuses an order of it for a missing `state`.
pub const REGION_REQUIRED_COUNTRIES: &[&str] = &["US", "CA", "AU"];

/// ISO 3166-1 alpha-2 codes officially assigned (249), sorted (binary-searched). Checked against the Debian
/// `iso-codes` data (`iso_3166-1.json`) and tzdata's `iso3166.tab`. User-assigned codes such as `XK` are refused.
const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

const MAX_ORDER_ID: usize = 256;
const MAX_EMAIL: usize = 254;
const MAX_NAME: usize = 100;
const MAX_PHONE: usize = 32;
const MAX_ADDRESS_LINE: usize = 128;
const MAX_CITY: usize = 100;
const MAX_POSTCODE: usize = 20;
const MAX_REGION: usize = 100;
const MAX_SHIPPING_METHOD: usize = 64;
const MAX_REFERENCE: usize = 256;
const MAX_PROVIDER: usize = 64;
const MAX_QUANTITY: i64 = 1_000_000;

/// Is `code` an assigned ISO 3166-1 alpha-2 code (upper case)?
pub fn is_iso_country(code: &str) -> bool {
    ISO_3166_ALPHA2.binary_search(&code).is_ok()
}

/// E-mail shape: one `@`, a non-empty local part, a domain with a dot (no empty label), no whitespace or
/// control characters, at most 254 characters. Deliverability is not this check's business.
pub fn check_email(email: &str) -> Result<(), String> {
    if email.is_empty() || email.len() > MAX_EMAIL {
        return Err(format!("must be 1-{MAX_EMAIL} characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("must contain exactly one '@'".into());
    };
    if local.is_empty() {
        return Err("needs a local part before '@'".into());
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err("needs a domain with a dot after '@', such as example.com".into());
    }
    Ok(())
}

/// A Cloudshelf GlobalId: `gid://<namespace>/<Type>/<id>`, printable ASCII without spaces, 1-256 characters.
pub fn check_global_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ORDER_ID {
        return Err(format!("must be 1-{MAX_ORDER_ID} characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("may contain only printable ASCII without spaces".into());
    }
    let shaped = id
        .strip_prefix("gid://")
        .is_some_and(|rest| rest.split('/').count() >= 3 && rest.split('/').all(|s| !s.is_empty()));
    if !shaped {
        return Err("must be a GlobalId such as gid://cloudshelf/Order/01JD...".into());
    }
    Ok(())
}

/// Parses and validates an `order.placed` body (the intake goes through `store_events::parse_store_event`).
pub fn parse_order_placed(
    id: &str,
    body: &[u8],
    mappings: &Mappings,
    now_ms: i64,
) -> Result<KioskOrder, ValidationError> {
    // Duplicate keys are refused here too (`duplicate_key`), as for stock events.
    let obj = parse_json_object(body)?;
    order_from_object(id, &obj, mappings, now_ms)
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, ValidationError> {
    field(obj, name)
        .ok_or_else(|| invalid("missing_field", path, "is required"))?
        .as_object()
        .ok_or_else(|| invalid("invalid_type", path, "must be an object"))
}

fn check_len(value: &str, path: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(invalid("invalid_value", path, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(
            "invalid_value",
            path,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_value",
            path,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A required free-text string: present, not blank, at most `max` characters, no control characters.
fn required_text(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let value = required_string(obj, name, path)?;
    check_len(&value, path, max)?;
    Ok(value)
}

/// An optional free-text string: absent, `null` and blank all mean "not given"; otherwise as `required_text`.
fn optional_text(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    match string_field(obj, name, path)? {
        Some(v) if !v.trim().is_empty() => {
            check_len(&v, path, max)?;
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

/// A decimal string ≥ 0 with at most 3 decimals.
fn amount(value: &Value, path: &str) -> Result<Amount, ValidationError> {
    let raw = value.as_str().ok_or_else(|| {
        invalid(
            "invalid_type",
            path,
            "must be a decimal string such as \"49.00\"",
        )
    })?;
    if raw.starts_with('-') {
        return Err(invalid("invalid_value", path, "must not be negative"));
    }
    Amount::parse(raw).map_err(|m| invalid("invalid_value", path, m))
}

fn required_amount(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Amount, ValidationError> {
    amount(
        field(obj, name).ok_or_else(|| invalid("missing_field", path, "is required"))?,
        path,
    )
}

fn currency(obj: &Map<String, Value>, name: &str, path: &str) -> Result<String, ValidationError> {
    let c = required_string(obj, name, path)?;
    check_currency(&c).map_err(|m| invalid("invalid_value", path, m))?;
    Ok(c)
}

fn parse_customer(obj: &Map<String, Value>) -> Result<Customer, ValidationError> {
    let c = object(obj, "customer", "customer")?;
    check_known_fields(
        c,
        &["email", "first_name", "last_name", "phone"],
        "customer.",
    )?;
    let email = required_string(c, "email", "customer.email")?;
    check_email(&email).map_err(|m| invalid("invalid_value", "customer.email", m))?;
    Ok(Customer {
        email,
        first_name: optional_text(c, "first_name", "customer.first_name", MAX_NAME)?,
        last_name: optional_text(c, "last_name", "customer.last_name", MAX_NAME)?,
        phone: optional_text(c, "phone", "customer.phone", MAX_PHONE)?,
    })
}

fn parse_address(obj: &Map<String, Value>) -> Result<DeliveryAddress, ValidationError> {
    const P: &str = "delivery_address";
    let a = object(obj, "delivery_address", P)?;
    check_known_fields(
        a,
        &["lines", "city", "postcode", "region", "country"],
        "delivery_address.",
    )?;
    let lines_path = "delivery_address.lines";
    let raw_lines = field(a, "lines")
        .ok_or_else(|| invalid("missing_field", lines_path, "is required"))?
        .as_array()
        .ok_or_else(|| invalid("invalid_type", lines_path, "must be an array of strings"))?;
    if raw_lines.is_empty() || raw_lines.len() > 3 {
        return Err(invalid("invalid_value", lines_path, "must hold 1-3 lines"));
    }
    let mut lines = Vec::with_capacity(raw_lines.len());
    for (i, line) in raw_lines.iter().enumerate() {
        let path = format!("{lines_path}[{i}]");
        let text = line
            .as_str()
            .ok_or_else(|| invalid("invalid_type", &path, "must be a string"))?;
        check_len(text, &path, MAX_ADDRESS_LINE)?;
        lines.push(text.to_string());
    }
    let city = required_text(a, "city", "delivery_address.city", MAX_CITY)?;
    let postcode = required_text(a, "postcode", "delivery_address.postcode", MAX_POSTCODE)?;
    let region = optional_text(a, "region", "delivery_address.region", MAX_REGION)?;
    let country_path = "delivery_address.country";
    let country = required_string(a, "country", country_path)?;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "invalid_value",
            country_path,
            "must be an ISO 3166-1 alpha-2 code in upper case such as \"GB\"",
        ));
    }
    if !is_iso_country(&country) {
        return Err(invalid(
            "invalid_value",
            country_path,
            format!("\"{country}\" is not an assigned ISO 3166-1 alpha-2 country code"),
        ));
    }
    if region.is_none() && REGION_REQUIRED_COUNTRIES.contains(&country.as_str()) {
        return Err(invalid(
            "missing_field",
            "delivery_address.region",
            format!("is required for addresses in {country} (Centra needs the state)"),
        ));
    }
    Ok(DeliveryAddress {
        lines,
        city,
        postcode,
        region,
        country,
    })
}

fn parse_payment(obj: &Map<String, Value>) -> Result<KioskPayment, ValidationError> {
    let p = object(obj, "payment", "payment")?;
    check_known_fields(
        p,
        &["provider", "transaction_id", "amount", "currency", "status"],
        "payment.",
    )?;
    let provider = required_text(p, "provider", "payment.provider", MAX_PROVIDER)?;
    let transaction_id =
        required_text(p, "transaction_id", "payment.transaction_id", MAX_REFERENCE)?;
    let amount = required_amount(p, "amount", "payment.amount")?;
    let currency = currency(p, "currency", "payment.currency")?;
    let status = match required_string(p, "status", "payment.status")?.as_str() {
        "captured" => PaymentStatus::Captured,
        "authorized" => PaymentStatus::Authorized,
        other => {
            return Err(invalid(
                "invalid_value",
                "payment.status",
                format!(
                    "\"{}\" is not one of captured, authorized",
                    crate::events::strict_json::clip(other)
                ),
            ))
        }
    };
    Ok(KioskPayment {
        provider,
        transaction_id,
        amount,
        currency,
        status,
    })
}

fn parse_lines(
    obj: &Map<String, Value>,
    payment_currency: &str,
) -> Result<Vec<KioskOrderLine>, ValidationError> {
    let raw = field(obj, "lines")
        .ok_or_else(|| invalid("missing_field", "lines", "is required"))?
        .as_array()
        .ok_or_else(|| invalid("invalid_type", "lines", "must be an array"))?;
    if raw.is_empty() || raw.len() > MAX_LINES {
        return Err(invalid(
            "invalid_value",
            "lines",
            format!("must hold 1-{MAX_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(raw.len());
    for (i, line) in raw.iter().enumerate() {
        let p = format!("lines[{i}]");
        let LineParts {
            object: lo,
            sku,
            ean,
            item,
            quantity,
        } = parse_line_parts(line, &p)?;
        let qpath = format!("{p}.quantity");
        if quantity <= 0 {
            return Err(invalid("invalid_value", &qpath, "must be > 0"));
        }
        if quantity > MAX_QUANTITY {
            return Err(invalid(
                "invalid_value",
                &qpath,
                format!("must be at most {MAX_QUANTITY}"),
            ));
        }
        let unit_price = required_amount(lo, "unit_price", &format!("{p}.unit_price"))?;
        let cpath = format!("{p}.currency");
        let line_currency = currency(lo, "currency", &cpath)?;
        if line_currency != payment_currency {
            return Err(invalid(
                "currency_mismatch",
                &cpath,
                format!("is {line_currency} but the payment is in {payment_currency}"),
            ));
        }
        lines.push(KioskOrderLine {
            item,
            sku,
            ean,
            quantity: quantity as u32,
            unit_price,
            currency: line_currency,
        });
    }
    Ok(lines)
}

/// Validates an `order.placed` object (the `type` is known to be `order.placed`).
pub(crate) fn order_from_object(
    id: &str,
    obj: &Map<String, Value>,
    mappings: &Mappings,
    now_ms: i64,
) -> Result<KioskOrder, ValidationError> {
    check_fields_and_type(obj)?;
    let occurred_at = parse_occurred_at(obj, now_ms)?;
    let store = parse_store(obj, mappings)?;

    let cloudshelf_order_id = required_string(obj, "cloudshelf_order_id", "cloudshelf_order_id")?;
    check_global_id(&cloudshelf_order_id)
        .map_err(|m| invalid("invalid_value", "cloudshelf_order_id", m))?;
    let device = optional_text(obj, "device", "device", MAX_REFERENCE)?;
    let sales_assistant = optional_text(obj, "sales_assistant", "sales_assistant", MAX_REFERENCE)?;

    let customer = parse_customer(obj)?;
    let delivery_address = parse_address(obj)?;

    let (shipping_method, shipping_price) = parse_shipping(obj)?;

    let payment = parse_payment(obj)?;
    // The store's currency is its pricelist's (the mappings enforce it): checked on the payment, and each line
    // must match the payment.
    check_store_currency(&payment.currency, &store, mappings, "payment.currency")?;
    let lines = parse_lines(obj, &payment.currency)?;

    check_total(&lines, shipping_price, &payment)?;

    Ok(KioskOrder {
        event_id: id.to_string(),
        cloudshelf_order_id,
        store,
        occurred_at,
        device,
        sales_assistant,
        customer,
        delivery_address,
        shipping_method,
        shipping_price,
        payment,
        lines,
        received_at_ms: now_ms,
    })
}

/// Only known fields, and `type` is `order.placed`.
fn check_fields_and_type(obj: &Map<String, Value>) -> Result<(), ValidationError> {
    check_known_fields(
        obj,
        &[
            "type",
            "occurred_at",
            "store",
            "cloudshelf_order_id",
            "device",
            "sales_assistant",
            "customer",
            "delivery_address",
            "shipping_method",
            "shipping_price",
            "payment",
            "lines",
        ],
        "",
    )?;
    let kind = required_string(obj, "type", "type")?;
    if kind != "order.placed" {
        return Err(invalid(
            "invalid_value",
            "type",
            format!("\"{kind}\" is not order.placed"),
        ));
    }
    Ok(())
}

/// `shipping_method` (a short code) and `shipping_price` (zero when absent).
fn parse_shipping(obj: &Map<String, Value>) -> Result<(String, Amount), ValidationError> {
    let shipping_method = required_string(obj, "shipping_method", "shipping_method")?;
    let method_ok = !shipping_method.is_empty()
        && shipping_method.len() <= MAX_SHIPPING_METHOD
        && shipping_method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !method_ok {
        return Err(invalid(
            "invalid_value",
            "shipping_method",
            format!("must be 1-{MAX_SHIPPING_METHOD} characters of A-Z a-z 0-9 . _ -"),
        ));
    }
    let shipping_price = match field(obj, "shipping_price") {
        None => Amount::ZERO,
        Some(v) => amount(v, "shipping_price")?,
    };
    Ok((shipping_method, shipping_price))
}

/// The payment's amount must be the lines' total plus shipping.
fn check_total(
    lines: &[KioskOrderLine],
    shipping_price: Amount,
    payment: &KioskPayment,
) -> Result<(), ValidationError> {
    let overflow = || invalid("invalid_value", "lines", "the order total is too large");
    let lines_total = lines.iter().try_fold(Amount::ZERO, |acc, l| {
        acc.checked_add(l.unit_price.checked_mul(i64::from(l.quantity))?)
    });
    let total = lines_total
        .ok_or_else(overflow)?
        .checked_add(shipping_price)
        .ok_or_else(overflow)?;
    if total != payment.amount {
        return Err(invalid(
            "total_mismatch",
            "payment.amount",
            format!(
                "is {} {} but the lines ({}) plus shipping ({}) come to {} {}",
                payment.amount,
                payment.currency,
                lines_total.unwrap_or_default(),
                shipping_price,
                total,
                payment.currency
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_list_is_sorted_and_complete() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        for c in ["GB", "SE", "US", "AX", "ZW", "AD"] {
            assert!(is_iso_country(c), "{c}");
        }
        for c in ["UK", "XK", "EU", "ZZ", "gb"] {
            assert!(!is_iso_country(c), "{c}");
        }
    }

    #[test]
    fn email_shapes() {
        assert!(check_email("ann@example.com").is_ok());
        assert!(check_email("a.b+c@mail.example.co.uk").is_ok());
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann@ex@ample.com",
            "ann lee@example.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@example.com.",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert!(check_email(&long).is_err());
        assert!(check_email(&long[1..]).is_ok());
    }

    #[test]
    fn global_id_shapes() {
        assert!(check_global_id("gid://cloudshelf/Order/01JD").is_ok());
        assert!(check_global_id("gid://external/KioskOrder/1042").is_ok());
        for bad in [
            "",
            "01JD",
            "gid://",
            "gid://cloudshelf/Order",
            "gid://cloudshelf//1",
            "gid://cloudshelf/Order/ 1",
            "http://cloudshelf/Order/1",
        ] {
            assert!(check_global_id(bad).is_err(), "{bad:?}");
        }
    }
}
