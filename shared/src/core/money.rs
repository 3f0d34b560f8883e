//! Money: exact fixed-point amounts. `Money` (ten-thousandths: prices take up to 4 decimals) values stock lines
//! and finance totals; `Amount` (thousandths, serialised as a decimal string) prices kiosk orders. Both exact, so
//! totals add up; floats appear only where Centra's and Cloudshelf's APIs take JSON numbers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Money in ten-thousandths (prices take up to 4 decimals), exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(pub i128);

impl Money {
    const SCALE: i128 = 10_000;

    /// A non-negative decimal string with at most 4 decimals (`"49.00"`), as store events carry it.
    pub fn parse(raw: &str) -> Option<Money> {
        let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
        if whole.is_empty()
            || frac.len() > 4
            || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i128 = whole.parse().ok()?;
        let frac_value: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let frac_scaled = frac_value * 10_i128.pow(4 - frac.len() as u32);
        // Checked: the digits come from outside (a 35-digit whole overflows once scaled).
        Some(Money(
            whole.checked_mul(Self::SCALE)?.checked_add(frac_scaled)?,
        ))
    }

    /// The amount of `n` units at this price; `None` on overflow (quantities and prices come from outside).
    pub fn checked_times(self, n: i64) -> Option<Money> {
        self.0.checked_mul(i128::from(n)).map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl fmt::Display for Money {
    /// Two decimals, more only when they are not zero (`98.00`, `12.3450` → `12.345`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / 10_000;
        let mut frac = format!("{:04}", abs % 10_000);
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        write!(f, "{sign}{whole}.{frac}")
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.as_str()),
        };
        let m = Money::parse(digits)
            .ok_or_else(|| serde::de::Error::custom(format!("not an amount: {raw:?}")))?;
        Ok(if negative { Money(-m.0) } else { m })
    }
}

/// Units and gross value of one stock message in one currency (lines of an event naming the same item are
/// merged into one message; their values are summed per currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineValue {
    pub units: i64,
    pub gross: Money,
    pub currency: String,
}

/// A non-negative-or-negative decimal amount in thousandths of the currency unit (3 decimals cover every ISO 4217
/// currency). Serialised as a decimal string ("49.00").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    const SCALE: i64 = 1000;

    pub fn from_thousandths(t: i64) -> Self {
        Amount(t)
    }
    pub fn thousandths(self) -> i64 {
        self.0
    }

    /// Parses `"49"`, `"49.5"`, `"49.00"`, `"-3.250"`: at most 3 decimals, no exponent, no sign other than a
    /// leading `-`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be a decimal string such as \"49.00\"".into());
        }
        if digits.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
            return Err("must be a decimal string such as \"49.00\"".into());
        }
        if frac.len() > 3 {
            return Err("has more than 3 decimals".into());
        }
        if whole.len() > 12 {
            return Err("is too large".into());
        }
        let whole: i64 = whole.parse().map_err(|_| "is too large".to_string())?;
        let mut frac_t: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_t += i64::from(b - b'0') * 10_i64.pow(2 - i as u32);
        }
        let value = whole * Self::SCALE + frac_t;
        Ok(Amount(if negative { -value } else { value }))
    }

    pub fn checked_mul(self, qty: i64) -> Option<Self> {
        self.0.checked_mul(qty).map(Amount)
    }
    pub fn checked_add(self, other: Amount) -> Option<Self> {
        self.0.checked_add(other.0).map(Amount)
    }
    pub fn saturating_sub(self, other: Amount) -> Self {
        Amount(self.0.saturating_sub(other.0))
    }

    /// For JSON numbers at the API edge (Centra `unitPrice`, Cloudshelf `price`).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Nearest amount to a JSON number read from an API (Centra `MonetaryValue.value`).
    pub fn from_f64(v: f64) -> Self {
        Amount((v * Self::SCALE as f64).round() as i64)
    }
}

impl fmt::Display for Amount {
    /// Two decimals, or three when the third is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / 1000;
        let frac = abs % 1000;
        if frac.is_multiple_of(10) {
            write!(f, "{sign}{whole}.{:02}", frac / 10)
        } else {
            write!(f, "{sign}{whole}.{frac:03}")
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Amount::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// ISO 4217 currency codes in use (List One), sorted (binary-searched). Source: Debian `iso-codes` 4.15.0
/// (`iso_4217.json`), plus XCG (Caribbean guilder, 2025) and ZWG (Zimbabwe Gold, 2024) assigned after it, less
/// HRK (replaced by EUR on 2023-01-01). Codes in a transition (ANG, SLL, ZWL) stay until it ends; funds and
/// metals (XAU, XDR, …) are listed because ISO lists them, and a store currency rules them out anyway.
const ISO_4217_ACTIVE: [&str; 182] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR",
    "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Is `code` an active ISO 4217 code (upper case)?
pub fn is_iso_currency(code: &str) -> bool {
    ISO_4217_ACTIVE.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_list_is_sorted_and_current() {
        assert!(ISO_4217_ACTIVE.windows(2).all(|w| w[0] < w[1]));
        for c in ["GBP", "SEK", "DKK", "EUR", "USD", "ZWG", "XCG"] {
            assert!(is_iso_currency(c), "{c}");
        }
        for c in ["ZZZ", "HRK", "gbp", "GB", "GBPX", ""] {
            assert!(!is_iso_currency(c), "{c}");
        }
    }
}
