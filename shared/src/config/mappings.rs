//! Mapping configuration: which Centra warehouse and Cloudshelf location each store code stands for.
//!
//! Loaded at start-up (and by `shelfsync validate`); an invalid mapping fails loudly naming the offending key,
//! at deploy or start, not at 3 a.m.

use crate::core::ids::StoreCode;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappings {
    #[serde(default)]
    stores: BTreeMap<String, RawStore>,
    #[serde(default)]
    order_api: BTreeMap<String, RawOrderApi>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrderApi {
    base_url: String,
    /// Name of the secret (env var, or `<name>_SECRET_ARN` / `<name>_SSM_PARAMETER`) holding `API-Authorization`.
    secret: String,
    centra_store_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStoreOrders {
    order_api: String,
    market_id: i64,
    pricelist_id: i64,
    currency: String,
    #[serde(default)]
    payment_plugin_id: Option<i64>,
    #[serde(default)]
    register_customers: bool,
    #[serde(default)]
    shipping: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    centra_warehouse_id: i64,
    cloudshelf_location: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    orders: Option<RawStoreOrders>,
    #[serde(default)]
    drift_policy: DriftPolicy,
    /// IANA time zone of the store (its business day), default UTC.
    #[serde(default)]
    timezone: Option<String>,
    /// Local closing time `HH:MM`, default 22:00: the finance close of a day runs after it.
    #[serde(default)]
    closes_at: Option<String>,
    #[serde(default)]
    finance_posting: FinancePosting,
    /// ISO 4217 currency of the store's sales and returns; default: `orders.currency`.
    #[serde(default)]
    currency: Option<String>,
}

/// Exactly `HH:MM` (00:00–23:59), so that `9:00` or `21:00:00` fails at start-up rather than guessing.
fn parse_closing_time(text: &str) -> Option<chrono::NaiveTime> {
    let b = text.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    chrono::NaiveTime::from_hms_opt(text[..2].parse().ok()?, text[3..].parse().ok()?, 0)
}

/// When a store's sales and returns are posted to Centra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinancePosting {
    /// As they happen (seconds): Centra's stock of the store is always current.
    #[default]
    Realtime,
    /// Held, and posted in one batch at the store's close. The day closes on one posting, but Centra's view of
    /// the store's stock is stale all day: only for warehouses that do not feed online availability.
    Daily,
}

/// What the scheduled stock-drift check does when Centra's stock of a store warehouse differs from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftPolicy {
    /// List it in the report only.
    #[default]
    Report,
    /// Also queue the store's ledger quantity as a count, which the pusher then sets in Centra.
    Correct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMapping {
    pub store: StoreCode,
    pub name: Option<String>,
    pub centra_warehouse_id: u64,
    /// Cloudshelf `Location` GlobalId (Cloudshelf's own or `gid://external/<Namespace>/<id>`).
    pub cloudshelf_location: String,
    /// How kiosk home-delivery orders of this store become Centra orders; `None`: the store takes none.
    pub orders: Option<StoreOrderMapping>,
    /// `drift_policy = "report" | "correct"` (default `report`).
    pub drift_policy: DriftPolicy,
    /// `timezone` (IANA, default UTC).
    pub timezone: chrono_tz::Tz,
    /// `closes_at` (local, default 22:00).
    pub closes_at: chrono::NaiveTime,
    /// `finance_posting = "realtime" | "daily"` (default realtime).
    pub finance_posting: FinancePosting,
    /// `currency` (ISO 4217), default `orders.currency`: the only currency its events may carry.
    pub currency: String,
}

impl StoreMapping {
    /// The store's business date of an instant: its local calendar date (a sale after closing time still
    /// belongs to that day).
    pub fn business_date(&self, at_ms: i64) -> chrono::NaiveDate {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms)
            .unwrap_or_default()
            .with_timezone(&self.timezone)
            .date_naive()
    }

    /// When `date` closes: its local closing time, as an instant. A closing time that does not exist that day
    /// (a DST gap) is taken after the gap; an ambiguous one (DST fold) at its later occurrence.
    pub fn close_instant(&self, date: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        let mut local = date.and_time(self.closes_at);
        for _ in 0..4 {
            match self.timezone.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => return t.with_timezone(&chrono::Utc),
                chrono::LocalResult::Ambiguous(_, later) => {
                    return later.with_timezone(&chrono::Utc)
                }
                chrono::LocalResult::None => local += chrono::Duration::minutes(30),
            }
        }
        chrono::Utc.from_utc_datetime(&local)
    }

    /// The latest business date whose close has passed at `now_ms`.
    pub fn last_closed_date(&self, now_ms: i64) -> chrono::NaiveDate {
        let today = self.business_date(now_ms);
        if self.close_instant(today).timestamp_millis() <= now_ms {
            today
        } else {
            today.pred_opt().unwrap_or(today)
        }
    }
}

/// One Centra Order-API plugin, i.e. one Centra DTC store that owns injected orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderApiMapping {
    pub name: String,
    pub base_url: String,
    /// Secret *name*, resolved at start (never the secret itself in the mappings file).
    pub secret: String,
    /// Centra store id, for GraphQL order lookups (`orders(where:{storeId})`).
    pub centra_store_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOrderMapping {
    /// Key into `[order_api.<name>]`.
    pub order_api: String,
    pub market_id: u64,
    pub pricelist_id: u64,
    /// The pricelist's currency: a kiosk order in another currency would be priced wrongly.
    pub currency: String,
    /// Centra payment plugin id that records the kiosk capture; `None`: no payment record is sent.
    pub payment_plugin_id: Option<u64>,
    /// Attach orders to the registered customer with the same e-mail instead of a guest customer.
    pub register_customers: bool,
    /// Kiosk shipping method code → Centra shipping option `uri`.
    pub shipping: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Mappings {
    stores: BTreeMap<StoreCode, StoreMapping>,
    order_apis: BTreeMap<String, OrderApiMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping error at `{key}`: {message}")]
pub struct MappingError {
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        key: key.into(),
        message: message.into(),
    }
}

/// One `[order_api.<name>]` table: an http(s) base URL, a secret name, a positive store id.
fn validate_order_api(name: &str, api: RawOrderApi) -> Result<OrderApiMapping, MappingError> {
    let key = format!("order_api.{name}");
    if !(api.base_url.starts_with("https://") || api.base_url.starts_with("http://")) {
        return Err(err(
            format!("{key}.base_url"),
            "must be the Order-API plugin's http(s) base URL",
        ));
    }
    if api.secret.trim().is_empty() {
        return Err(err(
            format!("{key}.secret"),
            "must name the secret holding the API-Authorization value",
        ));
    }
    if api.centra_store_id <= 0 {
        return Err(err(
            format!("{key}.centra_store_id"),
            "must be a positive Centra store id",
        ));
    }
    Ok(OrderApiMapping {
        name: name.to_string(),
        base_url: api.base_url.trim_end_matches('/').to_string(),
        secret: api.secret,
        centra_store_id: api.centra_store_id as u64,
    })
}

/// One `[stores.<code>]` table. `warehouse_owner` records which store maps each warehouse, so
/// that a second store on the same warehouse is refused.
fn validate_store(
    code: &str,
    store: RawStore,
    warehouse_owner: &mut BTreeMap<u64, String>,
    order_apis: &BTreeMap<String, OrderApiMapping>,
) -> Result<(StoreCode, StoreMapping), MappingError> {
    let key = format!("stores.{code}");
    let store_code = StoreCode::parse(code).map_err(|m| err(&key, format!("store code {m}")))?;
    if store.centra_warehouse_id <= 0 {
        return Err(err(
            format!("{key}.centra_warehouse_id"),
            "must be a positive Centra warehouse id",
        ));
    }
    let warehouse = store.centra_warehouse_id as u64;
    if let Some(other) = warehouse_owner.insert(warehouse, code.to_string()) {
        // Two stores writing one warehouse would each push their own deltas and counts over the other's.
        return Err(err(
            format!("{key}.centra_warehouse_id"),
            format!("warehouse {warehouse} is already mapped to store {other}"),
        ));
    }
    if !store.cloudshelf_location.starts_with("gid://")
        || store.cloudshelf_location.len() <= "gid://".len()
    {
        return Err(err(
            format!("{key}.cloudshelf_location"),
            "must be a Cloudshelf GlobalId such as gid://external/CentraWarehouse/12",
        ));
    }
    let orders = match store.orders {
        None => None,
        Some(o) => Some(validate_store_orders(&key, o, order_apis)?),
    };
    let currency = store_currency(&key, store.currency, orders.as_ref())?;
    let (timezone, closes_at) =
        store_clock(&key, store.timezone.as_deref(), store.closes_at.as_deref())?;
    Ok((
        store_code.clone(),
        StoreMapping {
            store: store_code,
            name: store.name,
            centra_warehouse_id: warehouse,
            cloudshelf_location: store.cloudshelf_location,
            orders,
            drift_policy: store.drift_policy,
            timezone,
            closes_at,
            finance_posting: store.finance_posting,
            currency,
        },
    ))
}

/// The store's time zone (UTC when absent) and local closing time (22:00 when absent).
fn store_clock(
    key: &str,
    timezone: Option<&str>,
    closes_at: Option<&str>,
) -> Result<(chrono_tz::Tz, chrono::NaiveTime), MappingError> {
    let timezone = match timezone {
        None => chrono_tz::UTC,
        Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
            err(
                format!("{key}.timezone"),
                format!("{name:?} is not an IANA time zone (e.g. Europe/London)"),
            )
        })?,
    };
    let closes_at = match closes_at {
        None => chrono::NaiveTime::from_hms_opt(22, 0, 0).expect("valid time"),
        Some(text) => parse_closing_time(text).ok_or_else(|| {
            err(
                format!("{key}.closes_at"),
                format!("{text:?} is not a local time HH:MM"),
            )
        })?,
    };
    Ok((timezone, closes_at))
}

impl Mappings {
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let raw: RawMappings = toml::from_str(text).map_err(|e| {
            // toml names the key/line itself; keep its message.
            err("(file)", e.to_string().trim().replace('\n', " "))
        })?;
        if raw.stores.is_empty() {
            return Err(err("stores", "no store is mapped"));
        }
        let mut order_apis = BTreeMap::new();
        for (name, api) in raw.order_api {
            let mapping = validate_order_api(&name, api)?;
            order_apis.insert(name, mapping);
        }
        let mut stores = BTreeMap::new();
        let mut warehouse_owner: BTreeMap<u64, String> = BTreeMap::new();
        for (code, store) in raw.stores {
            let (store_code, mapping) =
                validate_store(&code, store, &mut warehouse_owner, &order_apis)?;
            stores.insert(store_code, mapping);
        }
        Ok(Self { stores, order_apis })
    }

    pub fn store(&self, code: &str) -> Option<&StoreMapping> {
        StoreCode::parse(code)
            .ok()
            .and_then(|c| self.stores.get(&c))
    }

    pub fn stores(&self) -> impl Iterator<Item = &StoreMapping> {
        self.stores.values()
    }

    pub fn order_api(&self, name: &str) -> Option<&OrderApiMapping> {
        self.order_apis.get(name)
    }

    pub fn order_apis(&self) -> impl Iterator<Item = &OrderApiMapping> {
        self.order_apis.values()
    }

    /// The mappings the local run and tests use when none are given.
    pub fn embedded_default() -> Self {
        Self::from_toml(EMBEDDED_DEFAULT).expect("embedded mappings are valid")
    }
}

fn validate_store_orders(
    store_key: &str,
    raw: RawStoreOrders,
    order_apis: &BTreeMap<String, OrderApiMapping>,
) -> Result<StoreOrderMapping, MappingError> {
    let key = format!("{store_key}.orders");
    if !order_apis.contains_key(&raw.order_api) {
        return Err(err(
            format!("{key}.order_api"),
            format!("no [order_api.{}] section defines it", raw.order_api),
        ));
    }
    let positive = |v: i64, field: &str| -> Result<u64, MappingError> {
        if v <= 0 {
            Err(err(
                format!("{key}.{field}"),
                "must be a positive Centra id",
            ))
        } else {
            Ok(v as u64)
        }
    };
    let market_id = positive(raw.market_id, "market_id")?;
    let pricelist_id = positive(raw.pricelist_id, "pricelist_id")?;
    let payment_plugin_id = raw
        .payment_plugin_id
        .map(|v| positive(v, "payment_plugin_id"))
        .transpose()?;
    check_currency(&format!("{key}.currency"), &raw.currency)?;
    for (method, uri) in &raw.shipping {
        if uri.trim().is_empty() {
            return Err(err(
                format!("{key}.shipping.{method}"),
                "must be a Centra shipping option uri",
            ));
        }
    }
    Ok(StoreOrderMapping {
        order_api: raw.order_api,
        market_id,
        pricelist_id,
        currency: raw.currency,
        payment_plugin_id,
        register_customers: raw.register_customers,
        shipping: raw.shipping,
    })
}

fn check_currency(key: &str, code: &str) -> Result<(), MappingError> {
    if crate::core::money::is_iso_currency(code) {
        Ok(())
    } else {
        Err(err(key, "must be an active ISO 4217 code such as GBP"))
    }
}

/// A store's currency: its own `currency`, else its kiosk orders' (pricelist) currency; the two must agree, as
/// kiosk orders are paid at the store's till. A store with neither cannot check its events' currency: an error.
fn store_currency(
    store_key: &str,
    own: Option<String>,
    orders: Option<&StoreOrderMapping>,
) -> Result<String, MappingError> {
    match (own, orders) {
        (Some(own), orders) => {
            check_currency(&format!("{store_key}.currency"), &own)?;
            if let Some(o) = orders.filter(|o| o.currency != own) {
                return Err(err(
                    format!("{store_key}.orders.currency"),
                    format!(
                        "is {} but the store's currency is {own}: kiosk orders are paid in the store's currency",
                        o.currency
                    ),
                ));
            }
            Ok(own)
        }
        (None, Some(o)) => Ok(o.currency.clone()),
        (None, None) => Err(err(
            format!("{store_key}.currency"),
            "is required (ISO 4217, e.g. GBP): the only currency the store's events may carry",
        )),
    }
}

pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/mappings.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let m = Mappings::embedded_default();
        assert!(m.store("LDN-01").is_some());
        assert_eq!(m.store("STO-01").unwrap().currency, "SEK");
        assert_eq!(m.store("CPH-01").unwrap().currency, "DKK");
    }

    #[test]
    fn store_currency_is_its_own_or_its_orders_and_required() {
        let store = |extra: &str| {
            Mappings::from_toml(&format!(
                "[order_api.uk]\nbase_url = \"https://x.centra.com/api/order\"\nsecret = \"S\"\ncentra_store_id = 1\n\
                 [stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\n{extra}"
            ))
        };
        let orders = "[stores.A.orders]\norder_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n";
        let m = store("currency = \"EUR\"\n").unwrap();
        assert_eq!(m.store("A").unwrap().currency, "EUR");
        let m = store(orders).unwrap();
        assert_eq!(
            m.store("A").unwrap().currency,
            "GBP",
            "defaults to orders.currency"
        );
        let m = store(&format!("currency = \"GBP\"\n{orders}")).unwrap();
        assert_eq!(m.store("A").unwrap().currency, "GBP");

        let e = store("").unwrap_err();
        assert_eq!(e.key, "stores.A.currency");
        let e = store("currency = \"ZZZ\"\n").unwrap_err();
        assert_eq!(e.key, "stores.A.currency");
        let e = store("currency = \"gbp\"\n").unwrap_err();
        assert_eq!(e.key, "stores.A.currency");
        let e = store(&format!("currency = \"EUR\"\n{orders}")).unwrap_err();
        assert_eq!(e.key, "stores.A.orders.currency");
        assert!(e.message.contains("EUR"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 0\ncloudshelf_location = \"gid://x/1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.LDN-01.centra_warehouse_id");

        let e = Mappings::from_toml(
            "[stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\ncurrency = \"GBP\"\n\
             [stores.B]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/2\"\ncurrency = \"GBP\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.B.centra_warehouse_id");
        assert!(e.message.contains("store A"));

        let e = Mappings::from_toml(
            "[stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"loc-1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.A.cloudshelf_location");

        let e = Mappings::from_toml(
            "[stores.\"bad code\"]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "stores.bad code");

        let orders = |extra: &str| {
            Mappings::from_toml(&format!(
                "[order_api.uk]\nbase_url = \"https://x.centra.com/api/order\"\nsecret = \"S\"\ncentra_store_id = 1\n\
                 [stores.A]\ncentra_warehouse_id = 3\ncloudshelf_location = \"gid://x/1\"\n\
                 [stores.A.orders]\n{extra}"
            ))
        };
        let ok = orders("order_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n[stores.A.orders.shipping]\nhome = \"home-uk\"\n").unwrap();
        let o = ok.store("A").unwrap().orders.as_ref().unwrap();
        assert_eq!(o.shipping.get("home").map(String::as_str), Some("home-uk"));
        assert_eq!(ok.order_api("uk").unwrap().centra_store_id, 1);
        let e = orders("order_api = \"us\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n")
            .unwrap_err();
        assert_eq!(e.key, "stores.A.orders.order_api");
        let e = orders("order_api = \"uk\"\nmarket_id = 0\npricelist_id = 5\ncurrency = \"GBP\"\n")
            .unwrap_err();
        assert_eq!(e.key, "stores.A.orders.market_id");
        let e = orders("order_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"gbp\"\n")
            .unwrap_err();
        assert_eq!(e.key, "stores.A.orders.currency");

        let e = orders("order_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"ZZZ\"\n")
            .unwrap_err();
        assert_eq!(e.key, "stores.A.orders.currency");

        let e = Mappings::from_toml("[stores.A]\ncentra_warehouse = 3\n").unwrap_err();
        assert!(e.message.contains("centra_warehouse"), "{e}");
    }
}
