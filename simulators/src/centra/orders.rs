//! Centra's Order API (`POST /order-api/<plugin>/order`, docs/orders.md §2) and the order data the Integration
//! API reads back (`orders`, `shipments`, `returns` in `schema/centra/integration-subset.graphql`).
//!
//! One Order-API plugin belongs to one DTC store; markets, pricelists and shipping options belong to stores
//! too, and an order may only use those of its plugin's store. Sizes come from the shared catalogue
//! ([`Store`]). Orders allocate from a per-SKU "order stock" that is unlimited until a test sets it, and
//! SKUs marked as shipping from another allocation split the order in two, as Centra may.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::schema::{OrderFilter, PageArgs, SizeRef};
use super::store::{paginate, Store};
use crate::graphql::GraphqlError;

/// Statuses an operator may move an order to (Centra's order flow; `OrderStatus` in
/// `schema/centra/integration-subset.graphql`).
pub const ORDER_STATUSES: [&str; 6] = [
    "PENDING",
    "CONFIRMED",
    "PROCESSING",
    "SHIPPED",
    "ARCHIVED",
    "CANCELLED",
];

/// First number of the simulated order sequence.
const FIRST_ORDER_NUMBER: u64 = 1000;

/// An address as sent to the Order API (`address`, `invoiceAddress`, `deliveryAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimAddress {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub tele: Option<String>,
    pub cell: Option<String>,
    pub address: Option<String>,
    pub coaddress: Option<String>,
    pub city: Option<String>,
    pub zipcode: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCustomer {
    pub id: u64,
    pub email: String,
    /// Auto-created for one order (`customerRegister` false or absent).
    pub is_guest: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimOrderLine {
    pub size_id: u64,
    pub sku: String,
    pub ean: Option<String>,
    pub qty: i64,
    pub unit_price: f64,
    pub original_price: Option<f64>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimShipment {
    pub id: u64,
    /// `<order number>-<n>`, as Centra numbers shipments.
    pub number: String,
    pub order_number: u64,
    pub is_shipped: bool,
    pub is_captured: bool,
    pub captured_value: f64,
}

/// One `paymentHistory` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPaymentEntry {
    pub id: u64,
    /// AUTH, CAPTURE, REFUND or CANCEL (Centra's `PaymentHistoryEntryType`).
    pub entry_type: String,
    /// SUCCESS or FAILED (UNVERIFIED value names).
    pub status: String,
    pub value: f64,
    pub transaction: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimReturn {
    pub id: u64,
    pub order_number: u64,
    pub amount: f64,
}

/// A DTC order as stored by the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    pub number: u64,
    pub store_id: u64,
    /// The Order-API plugin that created it.
    pub plugin: String,
    pub market_id: u64,
    pub pricelist_id: u64,
    pub currency: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<SimOrderLine>,
    pub billing_address: SimAddress,
    pub shipping_address: SimAddress,
    pub customer: SimCustomer,
    pub internal_comment: Option<String>,
    pub comment: Option<String>,
    pub extra_attributes: BTreeMap<String, String>,
    /// Shipping option uri (`shippingList`), when one applies.
    pub shipping_uri: Option<String>,
    pub shipping_value: f64,
    /// Lines (qty × unitPrice) plus shipping.
    pub grand_total: f64,
    pub send_email: Option<bool>,
    pub payment_history: Vec<SimPaymentEntry>,
    pub shipments: Vec<SimShipment>,
    pub returns: Vec<SimReturn>,
}

/// An Order-API refusal: `{"status":"no","code":N,"msg":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub code: i64,
    pub msg: String,
}

fn reject<T>(code: i64, msg: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        code,
        msg: msg.into(),
    })
}

pub(crate) struct Plugin {
    pub secret: String,
    pub store_id: u64,
}

struct Pricelist {
    store_id: u64,
    currency: String,
}

#[derive(Default)]
pub(crate) struct OrderBook {
    plugins: BTreeMap<String, Plugin>,
    markets: BTreeMap<u64, u64>,
    pricelists: BTreeMap<u64, Pricelist>,
    /// uri → store id.
    shipping_options: BTreeMap<String, u64>,
    payment_plugin: Option<u64>,
    /// SKU → units left to allocate; SKUs absent here are unlimited.
    order_stock: BTreeMap<String, i64>,
    split_skus: BTreeSet<String>,
    blocked_emails: BTreeSet<String>,
    customers: Vec<SimCustomer>,
    orders: BTreeMap<u64, SimOrder>,
    next_number: u64,
    next_entry_id: u64,
    next_shipment_id: u64,
    next_return_id: u64,
}

/// What a validated request turned into, before anything is written.
struct Draft {
    store_id: u64,
    market_id: u64,
    pricelist_id: u64,
    currency: String,
    billing: SimAddress,
    shipping: SimAddress,
    shipping_uri: Option<String>,
    shipping_value: f64,
    lines: Vec<SimOrderLine>,
    payment: Vec<(String, String, f64, Option<String>)>,
    order_number: Option<u64>,
    customer: CustomerChoice,
    internal_comment: Option<String>,
    comment: Option<String>,
    extra_attributes: BTreeMap<String, String>,
    send_email: Option<bool>,
    order_date: Option<DateTime<Utc>>,
    adjust_stock: bool,
}

/// A payment entry as the request gives it: (type, status, amount, transaction).
type PaymentEntry = (String, String, f64, Option<String>);

enum CustomerChoice {
    Guest(String),
    Registered(String),
    Existing(u64),
}

impl OrderBook {
    pub fn add_plugin(&mut self, name: &str, secret: &str, store_id: u64) {
        self.plugins.insert(
            name.to_string(),
            Plugin {
                secret: secret.to_string(),
                store_id,
            },
        );
    }

    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.get(name)
    }

    pub fn add_market(&mut self, id: u64, store_id: u64) {
        self.markets.insert(id, store_id);
    }

    pub fn add_pricelist(&mut self, id: u64, store_id: u64, currency: &str) {
        self.pricelists.insert(
            id,
            Pricelist {
                store_id,
                currency: currency.to_string(),
            },
        );
    }

    pub fn add_shipping_option(&mut self, uri: &str, store_id: u64) {
        self.shipping_options.insert(uri.to_string(), store_id);
    }

    pub fn set_payment_plugin(&mut self, id: Option<u64>) {
        self.payment_plugin = id;
    }

    pub fn set_order_stock(&mut self, sku: &str, qty: i64) {
        self.order_stock.insert(sku.to_string(), qty);
    }

    pub fn order_stock(&self, sku: &str) -> Option<i64> {
        self.order_stock.get(sku).copied()
    }

    pub fn set_split_sku(&mut self, sku: &str) {
        self.split_skus.insert(sku.to_string());
    }

    pub fn block_customer_registration(&mut self, email: &str) {
        self.blocked_emails.insert(email.to_lowercase());
    }

    pub fn orders(&self) -> Vec<SimOrder> {
        self.orders.values().cloned().collect()
    }

    pub fn order(&self, number: u64) -> Option<SimOrder> {
        self.orders.get(&number).cloned()
    }

    pub fn customers(&self) -> Vec<SimCustomer> {
        self.customers.clone()
    }

    fn order_mut(&mut self, number: u64) -> &mut SimOrder {
        self.orders
            .get_mut(&number)
            .unwrap_or_else(|| panic!("simulated Centra has no order {number}"))
    }

    pub fn set_status(&mut self, number: u64, status: &str, now: DateTime<Utc>) {
        assert!(
            ORDER_STATUSES.contains(&status),
            "unknown order status {status:?}; use one of {ORDER_STATUSES:?}"
        );
        let order = self.order_mut(number);
        order.status = status.to_string();
        order.updated_at = now;
    }

    /// A shipped shipment of the whole order, not yet captured.
    pub fn add_shipment(&mut self, number: u64, now: DateTime<Utc>) -> u64 {
        self.next_shipment_id += 1;
        let id = self.next_shipment_id;
        let order = self.order_mut(number);
        let n = order.shipments.len() + 1;
        order.shipments.push(SimShipment {
            id,
            number: format!("{number}-{n}"),
            order_number: number,
            is_shipped: true,
            is_captured: false,
            captured_value: 0.0,
        });
        order.updated_at = now;
        id
    }

    /// A successful CAPTURE entry; the latest shipment, if any, records it.
    pub fn capture(&mut self, number: u64, amount: f64, now: DateTime<Utc>) {
        let entry = self.entry_id();
        let order = self.order_mut(number);
        order
            .payment_history
            .push(payment_entry(entry, "CAPTURE", "SUCCESS", amount, None));
        if let Some(s) = order.shipments.last_mut() {
            s.is_captured = true;
            s.captured_value = round3(s.captured_value + amount);
        }
        order.updated_at = now;
    }

    /// A return plus a successful REFUND entry; returns the return id.
    pub fn refund(&mut self, number: u64, amount: f64, now: DateTime<Utc>) -> u64 {
        let entry = self.entry_id();
        self.next_return_id += 1;
        let id = self.next_return_id;
        let order = self.order_mut(number);
        order
            .payment_history
            .push(payment_entry(entry, "REFUND", "SUCCESS", amount, None));
        order.returns.push(SimReturn {
            id,
            order_number: number,
            amount,
        });
        order.updated_at = now;
        id
    }

    fn entry_id(&mut self) -> u64 {
        self.next_entry_id += 1;
        self.next_entry_id
    }

    fn next_free_number(&mut self) -> u64 {
        let mut n = self.next_number.max(FIRST_ORDER_NUMBER);
        while self.orders.contains_key(&n) {
            n += 1;
        }
        self.next_number = n + 1;
        n
    }

    /// `POST <base>/order`: validate everything, then create one order, or two when split SKUs are mixed
    /// with others. All or nothing.
    pub fn create(
        &mut self,
        plugin: &str,
        body: &Value,
        sizes: &Store,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, Rejection> {
        let store_id = match self.plugins.get(plugin) {
            Some(p) => p.store_id,
            None => return reject(-7, format!("Unknown plugin {plugin}")),
        };
        let draft = self.validate(store_id, body, sizes)?;
        Ok(self.apply(plugin, draft, now))
    }

    fn validate(&self, store_id: u64, body: &Value, sizes: &Store) -> Result<Draft, Rejection> {
        let Some(o) = body.as_object() else {
            return reject(-7, "Request body must be a JSON object");
        };
        // Order of checks is the simulator's own; Centra does not document it.
        let products = match field(o, "products") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) | None => return reject(-3, "No products in order"),
            Some(_) => return reject(-7, "products must be a list"),
        };
        let (billing, shipping) = Self::validate_addresses(o)?;
        let market_id = self.validate_market(o, store_id)?;
        let pricelist_id = self.validate_pricelist(o, store_id)?;
        let currency = self.pricelists[&pricelist_id].currency.clone();
        let shipping_uri = self.validate_shipping_option(o, store_id)?;
        let shipping_value = match field(o, "shippingValue") {
            Some(v) => number(v, "shippingValue")?,
            None => 0.0,
        };
        let payment = self.validate_payment(o)?;
        let order_number = self.validate_order_number(o)?;
        let mut lines = Vec::new();
        for (i, p) in products.iter().enumerate() {
            lines.push(Self::validate_line(i, p, sizes)?);
        }
        let email = billing.email.clone().unwrap_or_default();
        let customer = self.validate_customer(o, email)?;
        let adjust_stock = field(o, "adjustStock").and_then(Value::as_bool) != Some(false);
        let force_create = field(o, "forceCreate").and_then(Value::as_bool) == Some(true);
        if adjust_stock && !force_create {
            self.check_order_stock(&lines)?;
        }
        let extra_attributes = extra_attributes(o)?;
        let order_date = order_date(o)?;

        Ok(Draft {
            store_id,
            market_id,
            pricelist_id,
            currency,
            billing,
            shipping,
            shipping_uri,
            shipping_value,
            lines,
            payment,
            order_number,
            customer,
            internal_comment: field(o, "internalComment").map(text),
            comment: field(o, "comment").map(text),
            extra_attributes,
            send_email: field(o, "sendEmail").and_then(Value::as_bool),
            order_date,
            adjust_stock,
        })
    }

    /// The billing and delivery addresses (`address` for both, or `invoiceAddress` and `deliveryAddress`):
    /// the billing email and both countries are required.
    fn validate_addresses(o: &Map<String, Value>) -> Result<(SimAddress, SimAddress), Rejection> {
        let (billing, shipping) = match (
            field(o, "address"),
            field(o, "invoiceAddress"),
            field(o, "deliveryAddress"),
        ) {
            (Some(a), _, _) => {
                let a = address(a, "address")?;
                (a.clone(), a)
            }
            (None, Some(i), Some(d)) => (
                address(i, "invoiceAddress")?,
                address(d, "deliveryAddress")?,
            ),
            _ => {
                return reject(
                    -4,
                    "Missing address (or invoiceAddress and deliveryAddress)",
                )
            }
        };
        let billing_key = if field(o, "address").is_some() {
            "address"
        } else {
            "invoiceAddress"
        };
        if billing.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            return reject(-4, format!("Missing required field {billing_key}.email"));
        }
        for (key, a) in [(billing_key, &billing), ("deliveryAddress", &shipping)] {
            match a.country.as_deref() {
                None | Some("") => {
                    return reject(-4, format!("Missing required field {key}.country"))
                }
                Some(c) if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) => {
                    return reject(
                        -4,
                        format!("{key}.country must be an ISO 3166-1 alpha-2 code, got \"{c}\""),
                    )
                }
                Some(_) => {}
            }
        }

        Ok((billing, shipping))
    }

    /// The order's market: one of its store's (the store's first when none is named).
    fn validate_market(&self, o: &Map<String, Value>, store_id: u64) -> Result<u64, Rejection> {
        Ok(match id_field(o, &["marketId", "market"])? {
            Some(id) if self.markets.get(&id) == Some(&store_id) => id,
            Some(id) => return reject(-1, format!("Market {id} is not available in this store")),
            // Centra derives it from the country; the simulator takes the store's first market.
            None => match self.markets.iter().find(|(_, s)| **s == store_id) {
                Some((id, _)) => *id,
                None => return reject(-4, "Missing required field marketId"),
            },
        })
    }

    /// The order's pricelist: one of its store's (the store's first when none is named).
    fn validate_pricelist(&self, o: &Map<String, Value>, store_id: u64) -> Result<u64, Rejection> {
        Ok(match id_field(o, &["pricelistId", "pricelist"])? {
            Some(id)
                if self
                    .pricelists
                    .get(&id)
                    .is_some_and(|p| p.store_id == store_id) =>
            {
                id
            }
            Some(id) => {
                return reject(-1, format!("Pricelist {id} is not available in this store"))
            }
            None => match self.pricelists.iter().find(|(_, p)| p.store_id == store_id) {
                Some((id, _)) => *id,
                None => return reject(-4, "Missing required field pricelistId"),
            },
        })
    }

    /// The order's shipping option: one of its store's (the store's first when none is named).
    fn validate_shipping_option(
        &self,
        o: &Map<String, Value>,
        store_id: u64,
    ) -> Result<Option<String>, Rejection> {
        // An unknown uri as -4 naming shippingList: UNVERIFIED (Centra documents no code for it).
        Ok(match field(o, "shippingList") {
            Some(Value::String(uri)) if self.shipping_options.get(uri) == Some(&store_id) => {
                Some(uri.clone())
            }
            Some(v) => {
                return reject(
                    -4,
                    format!("shippingList: no shipping option with uri {v} in this store"),
                )
            }
            None => self
                .shipping_options
                .iter()
                .find(|(_, s)| **s == store_id)
                .map(|(uri, _)| uri.clone()),
        })
    }

    /// The payment entries (type, status, amount, transaction) of the optional `payment`.
    fn validate_payment(&self, o: &Map<String, Value>) -> Result<Vec<PaymentEntry>, Rejection> {
        let mut payment = Vec::new();
        if let Some(p) = field(o, "payment") {
            let Some(p) = p.as_object() else {
                return reject(-7, "payment must be an object");
            };
            let Some(id) = field(p, "id").and_then(Value::as_u64) else {
                return reject(-4, "Missing required field payment.id");
            };
            // UNVERIFIED: the code for an unknown payment plugin; -7 (general) here.
            if self.payment_plugin.is_some_and(|want| want != id) {
                return reject(-7, format!("Payment plugin {id} not found"));
            }
            for (key, entry_type) in [("auth", "AUTH"), ("capture", "CAPTURE")] {
                let Some(t) = field(p, key) else { continue };
                let Some(t) = t.as_object() else {
                    return reject(-7, format!("payment.{key} must be an object"));
                };
                // Status 1 taken as success, anything else as failure: UNVERIFIED meaning of 0|1|2.
                let status = match field(t, "status").and_then(Value::as_i64) {
                    Some(1) => "SUCCESS",
                    _ => "FAILED",
                };
                let amount = match field(t, "amount") {
                    Some(v) => number(v, &format!("payment.{key}.amount"))?,
                    None => 0.0,
                };
                let transaction = field(t, "transaction").map(text);
                payment.push((
                    entry_type.to_string(),
                    status.to_string(),
                    amount,
                    transaction,
                ));
            }
        }

        Ok(payment)
    }

    /// The optional `orderNumber`: a number no order has yet.
    fn validate_order_number(&self, o: &Map<String, Value>) -> Result<Option<u64>, Rejection> {
        Ok(match field(o, "orderNumber") {
            None => None,
            Some(v) => {
                let n = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                match n {
                    Some(n) if self.orders.contains_key(&n) => {
                        return reject(-5, format!("Order number {n} already exists"))
                    }
                    Some(n) => Some(n),
                    None => return reject(-7, format!("orderNumber must be a number, got {v}")),
                }
            }
        })
    }

    /// `products[i]`: an active size, a positive quantity and a price.
    fn validate_line(i: usize, p: &Value, sizes: &Store) -> Result<SimOrderLine, Rejection> {
        let Some(p) = p.as_object() else {
            return reject(-7, format!("products[{i}] must be an object"));
        };
        let size_ref = if let Some(id) = field(p, "id") {
            match id.as_u64() {
                Some(id) => SizeRef::Id(id),
                None => return reject(-7, format!("products[{i}].id must be a number")),
            }
        } else if let Some(ean) = field(p, "ean") {
            SizeRef::Ean(text(ean))
        } else if let Some(sku) = field(p, "sku") {
            SizeRef::Sku(text(sku))
        } else {
            return reject(
                -4,
                format!("products[{i}]: one of sku, ean or id is required"),
            );
        };
        let Some(size) = sizes.find_size(&size_ref) else {
            return reject(-1, format!("Product {size_ref} not found"));
        };
        if !size.active {
            return reject(-1, format!("Product {size_ref} is not active"));
        }
        let qty = match field(p, "qty") {
            None => return reject(-4, format!("Missing required field products[{i}].qty")),
            Some(v) => match v.as_i64() {
                Some(q) if q > 0 => q,
                _ => {
                    return reject(
                        -4,
                        format!("products[{i}].qty must be a positive integer, got {v}"),
                    )
                }
            },
        };
        // The simulator keeps no pricelist prices, so the price must come with the line.
        let unit_price = match field(p, "unitPrice") {
            Some(v) => number(v, &format!("products[{i}].unitPrice"))?,
            None => {
                return reject(
                    -4,
                    format!(
                        "Missing products[{i}].unitPrice (the simulator has no pricelist prices)"
                    ),
                )
            }
        };
        let original_price = match field(p, "originalPrice") {
            Some(v) => Some(number(v, &format!("products[{i}].originalPrice"))?),
            None => None,
        };
        Ok(SimOrderLine {
            size_id: size.id,
            sku: size.sku.clone(),
            ean: size.ean.clone(),
            qty,
            unit_price,
            original_price,
            comment: field(p, "comment").map(text),
        })
    }

    /// The customer: an existing one, one registered with the billing email, or a guest.
    fn validate_customer(
        &self,
        o: &Map<String, Value>,
        email: String,
    ) -> Result<CustomerChoice, Rejection> {
        Ok(if let Some(id) = field(o, "customerId") {
            match id.as_u64() {
                Some(id) if self.customers.iter().any(|c| c.id == id) => {
                    CustomerChoice::Existing(id)
                }
                // UNVERIFIED: an unknown customerId reported as -6.
                _ => return reject(-6, format!("Customer {id} not found")),
            }
        } else if field(o, "customerRegister").and_then(Value::as_bool) == Some(true) {
            if self.blocked_emails.contains(&email.to_lowercase()) {
                return reject(-6, format!("Customer registration failed for {email}"));
            }
            CustomerChoice::Registered(email)
        } else {
            CustomerChoice::Guest(email)
        })
    }

    /// The order stock covers what the lines ask for, per SKU.
    fn check_order_stock(&self, lines: &[SimOrderLine]) -> Result<(), Rejection> {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for l in lines {
            *wanted.entry(l.sku.as_str()).or_default() += l.qty;
        }
        for (sku, qty) in wanted {
            if let Some(have) = self.order_stock.get(sku).filter(|h| **h < qty) {
                return reject(
                    -2,
                    format!(
                        "Not enough stock for {sku}: {qty} requested, {} available",
                        (*have).max(0)
                    ),
                );
            }
        }
        Ok(())
    }

    fn apply(&mut self, plugin: &str, draft: Draft, now: DateTime<Utc>) -> Vec<u64> {
        if draft.adjust_stock {
            for l in &draft.lines {
                if let Some(have) = self.order_stock.get_mut(&l.sku) {
                    // forceCreate back-orders what is missing rather than going negative.
                    *have = (*have - l.qty).max(0);
                }
            }
        }
        let customer = self.customer_for(draft.customer);

        let (main, split): (Vec<SimOrderLine>, Vec<SimOrderLine>) = draft
            .lines
            .into_iter()
            .partition(|l| !self.split_skus.contains(&l.sku));
        let groups: Vec<Vec<SimOrderLine>> = [main, split]
            .into_iter()
            .filter(|g| !g.is_empty())
            .collect();

        let created_at = draft.order_date.unwrap_or(now);
        let mut numbers = Vec::new();
        for (i, lines) in groups.into_iter().enumerate() {
            let first = i == 0;
            let number = match (first, draft.order_number) {
                (true, Some(n)) => n,
                _ => self.next_free_number(),
            };
            // Shipping and the payment record stay with the first order of a split.
            let shipping_value = if first { draft.shipping_value } else { 0.0 };
            let payment_history = if first {
                draft
                    .payment
                    .iter()
                    .map(|(t, s, v, tx)| {
                        let id = self.entry_id();
                        payment_entry(id, t, s, *v, tx.clone())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let lines_total: f64 = lines.iter().map(|l| l.qty as f64 * l.unit_price).sum();
            self.orders.insert(
                number,
                SimOrder {
                    number,
                    store_id: draft.store_id,
                    plugin: plugin.to_string(),
                    market_id: draft.market_id,
                    pricelist_id: draft.pricelist_id,
                    currency: draft.currency.clone(),
                    status: "PENDING".to_string(),
                    created_at,
                    updated_at: now,
                    lines,
                    billing_address: draft.billing.clone(),
                    shipping_address: draft.shipping.clone(),
                    customer: customer.clone(),
                    internal_comment: draft.internal_comment.clone(),
                    comment: draft.comment.clone(),
                    extra_attributes: draft.extra_attributes.clone(),
                    shipping_uri: draft.shipping_uri.clone(),
                    shipping_value,
                    grand_total: round3(lines_total + shipping_value),
                    send_email: draft.send_email,
                    payment_history,
                    shipments: Vec::new(),
                    returns: Vec::new(),
                },
            );
            numbers.push(number);
        }
        numbers
    }

    /// The order's customer: the one named, the registered one with that email (or a new one),
    /// or a new guest.
    fn customer_for(&mut self, choice: CustomerChoice) -> SimCustomer {
        match choice {
            CustomerChoice::Existing(id) => self
                .customers
                .iter()
                .find(|c| c.id == id)
                .cloned()
                .expect("checked in validate"),
            CustomerChoice::Registered(email) => {
                let found = self
                    .customers
                    .iter()
                    .find(|c| !c.is_guest && c.email.eq_ignore_ascii_case(&email))
                    .cloned();
                found.unwrap_or_else(|| self.new_customer(email, false))
            }
            CustomerChoice::Guest(email) => self.new_customer(email, true),
        }
    }

    fn new_customer(&mut self, email: String, is_guest: bool) -> SimCustomer {
        let c = SimCustomer {
            id: self.customers.len() as u64 + 1,
            email,
            is_guest,
        };
        self.customers.push(c.clone());
        c
    }

    /// `orders(where: OrderFilter, limit, page)`, by number ascending.
    pub fn query_orders(
        &self,
        filter: &OrderFilter,
        page: &PageArgs,
    ) -> Result<Value, GraphqlError> {
        let search = filter.search.as_ref().map(|s| s.to_lowercase());
        let list: Vec<Value> = self
            .orders
            .values()
            .filter(|o| {
                filter.numbers.as_ref().is_none_or(|n| n.contains(&o.number))
                    && filter.store_ids.as_ref().is_none_or(|s| s.contains(&o.store_id))
                    && filter.created_from.is_none_or(|from| o.created_at >= from)
                    && filter.created_to.is_none_or(|to| o.created_at <= to)
                    // Deliberately looser than an exact match (case-insensitive), so a client that
                    // trusts `search` alone is caught out: Centra's search semantics are UNVERIFIED.
                    && search.as_ref().is_none_or(|s| {
                        o.internal_comment
                            .as_deref()
                            .is_some_and(|c| c.to_lowercase().contains(s))
                    })
            })
            .map(order_json)
            .collect();
        Ok(Value::Array(paginate(list, page)?))
    }

    /// `shipments(where: {id})`.
    pub fn query_shipments(
        &self,
        ids: Option<&[u64]>,
        page: &PageArgs,
    ) -> Result<Value, GraphqlError> {
        let mut rows: Vec<(u64, Value)> = Vec::new();
        for o in self.orders.values() {
            for s in &o.shipments {
                if ids.is_none_or(|ids| ids.contains(&s.id)) {
                    let mut v = shipment_json(s, o);
                    v["order"] = order_json(o);
                    rows.push((s.id, v));
                }
            }
        }
        rows.sort_by_key(|(id, _)| *id);
        Ok(Value::Array(paginate(
            rows.into_iter().map(|(_, v)| v).collect(),
            page,
        )?))
    }

    /// `returns(where: {id})`.
    pub fn query_returns(
        &self,
        ids: Option<&[u64]>,
        page: &PageArgs,
    ) -> Result<Value, GraphqlError> {
        let mut rows: Vec<(u64, Value)> = Vec::new();
        for o in self.orders.values() {
            for r in &o.returns {
                if ids.is_none_or(|ids| ids.contains(&r.id)) {
                    let v = json!({
                        "__typename": "Return",
                        "id": r.id,
                        "returnedValue": money(r.amount, &o.currency),
                        "order": order_json(o),
                    });
                    rows.push((r.id, v));
                }
            }
        }
        rows.sort_by_key(|(id, _)| *id);
        Ok(Value::Array(paginate(
            rows.into_iter().map(|(_, v)| v).collect(),
            page,
        )?))
    }
}

/// The optional `extraAttributes`, as text.
fn extra_attributes(o: &Map<String, Value>) -> Result<BTreeMap<String, String>, Rejection> {
    Ok(match field(o, "extraAttributes") {
        None => BTreeMap::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(_) => return reject(-7, "extraAttributes must be an object"),
    })
}

/// The optional `orderDate`.
fn order_date(o: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, Rejection> {
    Ok(match field(o, "orderDate") {
        None => None,
        Some(v) => match v.as_str().and_then(parse_date) {
            Some(d) => Some(d),
            None => return reject(-7, format!("orderDate is not a date: {v}")),
        },
    })
}

fn payment_entry(
    id: u64,
    entry_type: &str,
    status: &str,
    value: f64,
    transaction: Option<String>,
) -> SimPaymentEntry {
    SimPaymentEntry {
        id,
        entry_type: entry_type.to_string(),
        status: status.to_string(),
        value,
        transaction,
    }
}

fn field<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// Strings as they are; anything else as its JSON text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON number, or a numeric string (PHP-backed APIs commonly accept both).
fn number(v: &Value, what: &str) -> Result<f64, Rejection> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n: &f64| n.is_finite())
        .map_or_else(
            || reject(-7, format!("{what} must be a number, got {v}")),
            Ok,
        )
}

/// The first of `keys` present, as an id.
fn id_field(o: &Map<String, Value>, keys: &[&str]) -> Result<Option<u64>, Rejection> {
    for key in keys {
        if let Some(v) = field(o, key) {
            return match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(id) => Ok(Some(id)),
                None => reject(-7, format!("{key} must be an id, got {v}")),
            };
        }
    }
    Ok(None)
}

fn address(v: &Value, key: &str) -> Result<SimAddress, Rejection> {
    let Some(o) = v.as_object() else {
        return reject(-7, format!("{key} must be an object"));
    };
    let s = |k: &str| field(o, k).map(text);
    Ok(SimAddress {
        email: s("email"),
        first_name: s("firstName"),
        last_name: s("lastName"),
        tele: s("tele"),
        cell: s("cell"),
        address: s("address"),
        coaddress: s("coaddress"),
        city: s("city"),
        zipcode: s("zipcode"),
        state: s("state"),
        country: s("country"),
    })
}

/// ISO-8601 (with offset) or Centra's "YYYY-MM-DD HH:MM:SS" (taken as UTC).
pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

fn iso(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Money sums in f64 pick up binary noise; three decimals cover every currency.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn money(value: f64, currency: &str) -> Value {
    json!({
        "__typename": "MonetaryValue",
        "value": value,
        "currency": {"__typename": "Currency", "code": currency},
    })
}

fn shipment_json(s: &SimShipment, o: &SimOrder) -> Value {
    json!({
        "__typename": "Shipment",
        "id": s.id,
        "number": s.number,
        "isShipped": s.is_shipped,
        "isCaptured": s.is_captured,
        "capturedValue": money(s.captured_value, &o.currency),
        // Nested back-reference without shipments, so the document stays finite.
        "order": {"__typename": "DirectToConsumerOrder", "id": o.number.to_string(), "number": o.number},
    })
}

fn address_json(a: &SimAddress) -> Value {
    json!({
        "__typename": "Address",
        "email": a.email,
        "firstName": a.first_name,
        "lastName": a.last_name,
        "phoneNumber": a.cell.as_ref().or(a.tele.as_ref()),
        "address1": a.address,
        "address2": a.coaddress,
        "city": a.city,
        "zipCode": a.zipcode,
        "stateOrProvince": a.state,
        "country": {"__typename": "Country", "code": a.country},
    })
}

/// A DTC order as the Integration API shows it (field names from the schema pages: `DirectToConsumerOrder` in
/// `schema/centra/integration-subset.graphql`).
pub(crate) fn order_json(o: &SimOrder) -> Value {
    let lines: Vec<Value> = o
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "__typename": "DirectToConsumerOrderLine",
                "id": o.number * 1000 + i as u64 + 1,
                "productSize": {
                    "__typename": "ProductSize",
                    "id": l.size_id,
                    "SKU": l.sku,
                    "EAN": l.ean,
                },
                "quantity": l.qty,
                "unitPrice": money(l.unit_price, &o.currency),
                "unitOriginalPrice": money(l.original_price.unwrap_or(l.unit_price), &o.currency),
                "comment": l.comment,
            })
        })
        .collect();
    let history: Vec<Value> = o
        .payment_history
        .iter()
        .map(|e| {
            json!({
                "__typename": "PaymentHistoryEntry",
                "id": e.id,
                "entryType": e.entry_type,
                "status": e.status,
                "value": money(e.value, &o.currency),
                "externalReference": e.transaction,
            })
        })
        .collect();
    let shipments: Vec<Value> = o.shipments.iter().map(|s| shipment_json(s, o)).collect();
    let extra: Vec<Value> = o
        .extra_attributes
        .iter()
        .map(|(k, v)| json!({"__typename": "OrderAttribute", "name": k, "value": v}))
        .collect();
    json!({
        "__typename": "DirectToConsumerOrder",
        "id": o.number.to_string(),
        "number": o.number,
        "status": o.status,
        "createdAt": iso(o.created_at),
        "updatedAt": iso(o.updated_at),
        "internalComment": o.internal_comment,
        "otherComment": o.comment,
        "store": {"__typename": "Store", "id": o.store_id},
        "market": {"__typename": "Market", "id": o.market_id},
        "pricelist": {"__typename": "Pricelist", "id": o.pricelist_id},
        "currency": {"__typename": "Currency", "code": o.currency},
        "grandTotal": money(o.grand_total, &o.currency),
        "shippingPriceGroup": o.shipping_uri.as_ref().map(|uri| json!({
            "__typename": "ShippingPriceGroup",
            "shippingOption": {"__typename": "ShippingOption", "uri": uri},
        })),
        "lines": lines,
        "shipments": shipments,
        "paymentHistory": history,
        // Customer field names (`isGuest` in particular) are UNVERIFIED.
        "customer": {
            "__typename": "Customer",
            "id": o.customer.id,
            "email": o.customer.email,
            "isGuest": o.customer.is_guest,
        },
        "billingAddress": address_json(&o.billing_address),
        "shippingAddress": address_json(&o.shipping_address),
        "attributes": extra,
    })
}
