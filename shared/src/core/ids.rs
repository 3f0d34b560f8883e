//! Domain vocabulary shared by every function: stores, items, movements.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A store code from the mappings (`LDN-01`): 1–32 of `A-Z a-z 0-9 - _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreCode(String);

impl StoreCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 32 {
            return Err("must be 1-32 characters".into());
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("may contain only letters, digits, '-' and '_'".into());
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a line names a product size. Centra accepts either in `ProductSizeInput` (`SKU` / `EAN`), so the
/// integration needs no Centra ids. The full SKU is the preferred, immutable join key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "lowercase")]
pub enum ItemRef {
    Sku(String),
    Ean(String),
}

impl ItemRef {
    /// Stable text key (`sku:<SKU>` / `ean:<EAN>`) used for ledger rows and queue groups.
    pub fn key(&self) -> String {
        match self {
            ItemRef::Sku(s) => format!("sku:{s}"),
            ItemRef::Ean(e) => format!("ean:{e}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, value) = key.split_once(':')?;
        if value.is_empty() {
            return None;
        }
        match kind {
            "sku" => Some(ItemRef::Sku(value.to_string())),
            "ean" => Some(ItemRef::Ean(value.to_string())),
            _ => None,
        }
    }

    /// FIFO `MessageGroupId`: the SKU itself (the design card's grouping); EAN-only lines group by `ean:<EAN>`.
    pub fn group_id(&self) -> String {
        match self {
            ItemRef::Sku(s) => s.clone(),
            ItemRef::Ean(e) => format!("ean:{e}"),
        }
    }

    pub fn value(&self) -> &str {
        match self {
            ItemRef::Sku(s) => s,
            ItemRef::Ean(e) => e,
        }
    }
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemRef::Sku(s) => write!(f, "SKU {s}"),
            ItemRef::Ean(e) => write!(f, "EAN {e}"),
        }
    }
}

/// What a store event does to one item's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "quantity", rename_all = "lowercase")]
pub enum Movement {
    /// Signed change of on-hand units (sale < 0, return > 0, adjustment either way).
    Delta(i64),
    /// Absolute on-hand units counted at the event's `occurred_at`.
    Count(i64),
}

/// Position of an event in its store's history: the store's `sequence` when it sends one, else `occurred_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPosition {
    pub occurred_at_ms: i64,
    pub sequence: Option<u64>,
}

impl EventPosition {
    /// Ordering of two events of the same store: by `sequence` when both carry one, else by time.
    pub fn cmp_to(&self, other: &EventPosition) -> std::cmp::Ordering {
        match (self.sequence, other.sequence) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.occurred_at_ms.cmp(&other.occurred_at_ms),
        }
    }
}
