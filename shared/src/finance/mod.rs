//! Finance daybook: every sale and return the integration accepts from a store, and every kiosk order, is
//! recorded per store and business day with its units and gross value, and marked posted once Centra holds the
//! movement (or created the order). The daily close
//! (`recon::finance`) compares the two per kind and currency: a day is *validated* when everything accepted was
//! posted, and the records that differ are listed when it is not.
//!
//! A record is keyed `(store, business date, record id)`, the record id being `<event id>#<item>` — exactly one
//! stock message, so the applier (accepting) and the pusher (posting a ledger row's pending movements) name the
//! same record without sharing anything else. Recording is idempotent: a redelivered message re-records the same
//! values, a repeated post keeps the first posting.

mod unposted;
pub use unposted::explain_unposted;

use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::core::money::Money;
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinanceKind {
    Sale,
    Return,
    /// An endless-aisle order taken at a kiosk: accepted from the store, posted once Centra created it.
    KioskOrder,
}

impl FinanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FinanceKind::Sale => "sale",
            FinanceKind::Return => "return",
            FinanceKind::KioskOrder => "kiosk_order",
        }
    }
}

/// The daybook's id of the record one stock message makes.
pub fn record_id(event_id: &str, item: &ItemRef) -> String {
    format!("{event_id}#{}", item.key())
}

/// A sale or return as accepted (one stock message, one currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub kind: FinanceKind,
    pub units: i64,
    pub gross: Money,
    pub currency: String,
    pub accepted_at_ms: i64,
}

/// One record of a store day: accepted, posted, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaybookRecord {
    pub record_id: String,
    /// One entry per currency of the message (almost always one).
    pub accepted: Vec<Accepted>,
    pub posted_at_ms: Option<i64>,
    /// The push that brought the movement to Centra.
    pub posted_ref: Option<String>,
}

#[async_trait]
pub trait Daybook: Send + Sync {
    /// Records what a stock message accepted; the same call again changes nothing, and a posting already
    /// recorded is kept.
    async fn record_accepted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_id: &str,
        accepted: &[Accepted],
    ) -> Result<(), BackendError>;
    /// Marks records posted (keeps the first posting of each).
    async fn record_posted(
        &self,
        store: &StoreCode,
        date: NaiveDate,
        record_ids: &[String],
        posted_at_ms: i64,
        posted_ref: &str,
    ) -> Result<(), BackendError>;
    /// Every record of a store day.
    async fn day(
        &self,
        store: &StoreCode,
        date: NaiveDate,
    ) -> Result<Vec<DaybookRecord>, BackendError>;
}

/// What the stock path does for finance: record accepted and posted sales and returns in the daybook, and hold
/// the movements of stores that post daily.
#[derive(Clone, Default)]
pub struct FinanceHooks {
    /// `None`: no daybook (finance close not run).
    pub daybook: Option<std::sync::Arc<dyn Daybook>>,
    /// Stores with `finance_posting = "daily"`: applying a movement does not mark the row for the pusher; the
    /// daily close flushes the store ([`flush_store`]).
    pub held_stores: std::collections::HashSet<StoreCode>,
}

impl FinanceHooks {
    pub fn new(
        mappings: &crate::config::mappings::Mappings,
        daybook: Option<std::sync::Arc<dyn Daybook>>,
    ) -> Self {
        Self {
            daybook,
            held_stores: mappings
                .stores()
                .filter(|m| m.finance_posting == crate::config::mappings::FinancePosting::Daily)
                .map(|m| m.store.clone())
                .collect(),
        }
    }

    /// Records a sale or return message as accepted (nothing for other messages or without a daybook).
    pub async fn accepted(
        &self,
        msg: &crate::events::store_events::StockLineMessage,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let (Some(daybook), Some(date)) = (&self.daybook, msg.business_date) else {
            return Ok(());
        };
        let kind = match msg.event_type {
            crate::events::store_events::StockEventType::Sale => FinanceKind::Sale,
            crate::events::store_events::StockEventType::Return => FinanceKind::Return,
            _ => return Ok(()),
        };
        let accepted: Vec<Accepted> = msg
            .values
            .iter()
            .map(|v| Accepted {
                kind,
                units: v.units,
                gross: v.gross,
                currency: v.currency.clone(),
                accepted_at_ms: msg.received_at_ms.min(now_ms),
            })
            .collect();
        if accepted.is_empty() {
            return Ok(());
        }
        daybook
            .record_accepted(
                &msg.store,
                date,
                &record_id(&msg.event_id, &msg.item),
                &accepted,
            )
            .await
    }

    /// Records the daybook movements among `movements` (of one ledger row) as posted by `posted_ref`.
    pub async fn posted(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        movements: &[crate::stock::ledger::PendingMovement],
        posted_ref: &str,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let Some(daybook) = &self.daybook else {
            return Ok(());
        };
        let mut by_date: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        for m in movements {
            if let Some(date) = m.daybook_date {
                by_date.entry(date).or_default().push(record_id(
                    &m.event_id,
                    m.accepted_as.as_ref().unwrap_or(item),
                ));
            }
        }
        for (date, ids) in by_date {
            daybook
                .record_posted(store, date, &ids, now_ms, posted_ref)
                .await?;
        }
        Ok(())
    }

    /// The unposted sales and returns of `item` on `dates` that are no longer in its ledger row's `pending`
    /// (dropped there by the row's cap): the ones a push through `LedgerRow::dropped_through_version` carried.
    /// Read before the row is confirmed unchanged, so nothing applied after the read is included.
    pub async fn dropped_records(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        dates: &[NaiveDate],
        still_pending: &[crate::stock::ledger::PendingMovement],
    ) -> Result<Vec<(NaiveDate, Vec<String>)>, BackendError> {
        let Some(daybook) = &self.daybook else {
            return Ok(Vec::new());
        };
        let suffix = format!("#{}", item.key());
        let pending: std::collections::HashSet<String> = still_pending
            .iter()
            .map(|p| record_id(&p.event_id, item))
            .collect();
        let mut out = Vec::new();
        for date in dates {
            let ids: Vec<String> = daybook
                .day(store, *date)
                .await?
                .into_iter()
                .filter(|r| {
                    r.posted_at_ms.is_none()
                        && r.record_id.ends_with(&suffix)
                        && !pending.contains(&r.record_id)
                        && r.accepted.iter().any(|a| a.kind != FinanceKind::KioskOrder)
                })
                .map(|r| r.record_id)
                .collect();
            if !ids.is_empty() {
                out.push((*date, ids));
            }
        }
        Ok(out)
    }

    /// Records `records` (from [`FinanceHooks::dropped_records`]) as posted by `posted_ref`.
    pub async fn post_records(
        &self,
        store: &StoreCode,
        records: &[(NaiveDate, Vec<String>)],
        posted_ref: &str,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let Some(daybook) = &self.daybook else {
            return Ok(());
        };
        for (date, ids) in records {
            daybook
                .record_posted(store, *date, ids, now_ms, posted_ref)
                .await?;
        }
        Ok(())
    }
}

/// The daybook record of a kiosk order: id `order:<Cloudshelf id>`, units and gross (lines and shipping) in
/// the payment's currency, on the store's business day of the order.
pub fn kiosk_order_record(
    mappings: &crate::config::mappings::Mappings,
    order: &crate::events::orders::KioskOrder,
) -> (NaiveDate, String, Accepted) {
    let at_ms = order.occurred_at.timestamp_millis();
    let date = mappings
        .store(order.store.as_str())
        .map(|m| m.business_date(at_ms))
        .unwrap_or_else(|| order.occurred_at.date_naive());
    // Amount is in thousandths, Money in ten-thousandths.
    let to_money = |a: crate::core::money::Amount| Money(i128::from(a.thousandths()) * 10);
    let lines: Money = order
        .lines
        .iter()
        // An i64 amount × 10 × a u32 quantity is below 2^99: cannot overflow i128.
        .map(|l| {
            to_money(l.unit_price)
                .checked_times(i64::from(l.quantity))
                .expect("i64 × u32 fits in i128")
        })
        .fold(Money::default(), |a, b| a + b);
    let accepted = Accepted {
        kind: FinanceKind::KioskOrder,
        units: order.lines.iter().map(|l| i64::from(l.quantity)).sum(),
        gross: lines + to_money(order.shipping_price),
        currency: order.payment.currency.clone(),
        accepted_at_ms: order.received_at_ms,
    };
    (
        date,
        format!("order:{}", order.cloudshelf_order_id),
        accepted,
    )
}

/// Marks every ledger row of `store` with unpushed movements dirty, so the pusher posts them now (the daily
/// batch of a store with `finance_posting = "daily"`). Returns how many rows were marked.
pub async fn flush_store(
    ledger: &dyn crate::stock::ports::LedgerStore,
    push_queue: &dyn crate::stock::ports::PushQueue,
    store: &StoreCode,
) -> Result<usize, BackendError> {
    let keys: Vec<crate::stock::ports::DirtyKey> = ledger
        .list_store(store)
        .await?
        .into_iter()
        .filter(|r| r.has_unpushed() && r.blocked.is_none())
        .map(|r| crate::stock::ports::DirtyKey {
            store: r.store,
            item: r.item,
        })
        .collect();
    for chunk in keys.chunks(100) {
        push_queue.mark_dirty(chunk, 0).await?;
    }
    Ok(keys.len())
}

/// Count, units and gross of one (kind, currency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub count: u64,
    pub units: i64,
    pub gross: Money,
}

impl Totals {
    fn add(&mut self, a: &Accepted) {
        self.count += 1;
        self.units += a.units;
        self.gross += a.gross;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotals {
    pub kind: FinanceKind,
    pub currency: String,
    pub accepted: Totals,
    pub posted: Totals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Accepted from the store, not (yet) in Centra.
    AcceptedNotPosted,
    /// Centra holds a movement the daybook never saw accepted.
    PostedNotAccepted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub record_id: String,
    pub accepted: Vec<Accepted>,
    /// Minutes since it was accepted (for the unposted).
    pub minutes: Option<i64>,
    pub posted_ref: Option<String>,
    /// Why it is not posted, when known ([`explain_unposted`]; the pure close leaves it empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One store's business day at close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayClose {
    pub store: String,
    pub business_date: NaiveDate,
    /// Everything accepted was posted and nothing was posted unaccepted.
    pub validated: bool,
    pub totals: Vec<KindTotals>,
    pub differences: Vec<Difference>,
}

/// Totals accepted vs posted per (kind, currency) and the records that differ.
pub fn close_store_day(
    store: &StoreCode,
    date: NaiveDate,
    records: &[DaybookRecord],
    now_ms: i64,
) -> DayClose {
    let mut totals: BTreeMap<(FinanceKind, String), KindTotals> = BTreeMap::new();
    let mut differences = Vec::new();
    let mut sorted: Vec<&DaybookRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    for record in sorted {
        for a in &record.accepted {
            let entry = totals
                .entry((a.kind, a.currency.clone()))
                .or_insert_with(|| KindTotals {
                    kind: a.kind,
                    currency: a.currency.clone(),
                    accepted: Totals::default(),
                    posted: Totals::default(),
                });
            entry.accepted.add(a);
            if record.posted_at_ms.is_some() {
                entry.posted.add(a);
            }
        }
        match (record.accepted.is_empty(), record.posted_at_ms) {
            (false, None) => differences.push(Difference {
                kind: DifferenceKind::AcceptedNotPosted,
                record_id: record.record_id.clone(),
                accepted: record.accepted.clone(),
                minutes: record
                    .accepted
                    .iter()
                    .map(|a| (now_ms - a.accepted_at_ms) / 60_000)
                    .max(),
                posted_ref: None,
                reason: None,
            }),
            (true, Some(_)) => differences.push(Difference {
                kind: DifferenceKind::PostedNotAccepted,
                record_id: record.record_id.clone(),
                accepted: Vec::new(),
                minutes: None,
                posted_ref: record.posted_ref.clone(),
                reason: None,
            }),
            _ => {}
        }
    }
    DayClose {
        store: store.to_string(),
        business_date: date,
        validated: differences.is_empty(),
        totals: totals.into_values().collect(),
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryDaybook;
    use crate::config::mappings::Mappings;

    #[test]
    fn money_is_exact_and_round_trips() {
        let p = Money::parse("49.99").unwrap();
        assert_eq!(p.checked_times(3).unwrap().to_string(), "149.97");
        assert_eq!(Money::parse("0.1234").unwrap().to_string(), "0.1234");
        assert_eq!(Money::parse("12").unwrap().to_string(), "12.00");
        for bad in ["", ".5", "1.23456", "-1", "1e3", "1.2.3"] {
            assert_eq!(Money::parse(bad), None, "{bad}");
        }
        // Out-of-range input is `None`, not a panic (debug) or a wrapped value (release).
        assert_eq!(Money::parse(&"9".repeat(38)), None);
        assert_eq!(Money::parse(&"9".repeat(40)), None);
        assert_eq!(Money(i128::MAX / 2).checked_times(3), None);
        assert_eq!(
            Money(1).checked_times(i64::MIN),
            Some(Money(i128::from(i64::MIN)))
        );
        assert_eq!(Money(i128::MAX).checked_add(Money(1)), None);
        let json = serde_json::to_string(&Money(-12_500)).unwrap();
        assert_eq!(json, "\"-1.25\"");
        assert_eq!(
            serde_json::from_str::<Money>(&json).unwrap(),
            Money(-12_500)
        );
    }

    fn store_in(zone: &str, closes: &str) -> crate::config::mappings::StoreMapping {
        let m = Mappings::from_toml(&format!(
            "[stores.LDN-01]\ncentra_warehouse_id = 1\ncloudshelf_location = \"gid://x/1\"\ncurrency = \"GBP\"\ntimezone = \"{zone}\"\ncloses_at = \"{closes}\"\n"
        ))
        .unwrap();
        m.store("LDN-01").unwrap().clone()
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn business_day_is_the_stores_local_date_and_closes_at_its_local_time() {
        let ny = store_in("America/New_York", "21:00");
        // 02:30 UTC on the 15th is 22:30 on the 14th in New York (EDT): after close, still the 14th.
        let d = ny.business_date(ms("2026-07-15T02:30:00Z"));
        assert_eq!(d.to_string(), "2026-07-14");
        assert_eq!(
            ny.close_instant(d).to_rfc3339(),
            "2026-07-15T01:00:00+00:00"
        );
        assert_eq!(
            ny.last_closed_date(ms("2026-07-15T00:59:00Z")).to_string(),
            "2026-07-13"
        );
        assert_eq!(
            ny.last_closed_date(ms("2026-07-15T01:00:00Z")).to_string(),
            "2026-07-14"
        );
        // Winter: EST, one hour later in UTC.
        let winter = chrono::NaiveDate::from_ymd_opt(2026, 1, 14).unwrap();
        assert_eq!(
            ny.close_instant(winter).to_rfc3339(),
            "2026-01-15T02:00:00+00:00"
        );
    }

    #[test]
    fn a_closing_time_in_the_dst_gap_closes_after_the_gap() {
        // Europe/Stockholm skips 02:00–02:59 on 2026-03-29.
        let sto = store_in("Europe/Stockholm", "02:30");
        let gap_day = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(
            sto.close_instant(gap_day).to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
        let err = Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 1\ncloudshelf_location = \"gid://x/1\"\ncurrency = \"GBP\"\ntimezone = \"Mars/Base\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("stores.LDN-01.timezone"), "{err}");
        let err = Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 1\ncloudshelf_location = \"gid://x/1\"\ncurrency = \"GBP\"\ncloses_at = \"25:00\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("stores.LDN-01.closes_at"), "{err}");
    }

    fn accepted(kind: FinanceKind, units: i64, gross: &str, currency: &str) -> Accepted {
        Accepted {
            kind,
            units,
            gross: Money::parse(gross).unwrap(),
            currency: currency.into(),
            accepted_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn a_day_validates_only_when_every_accepted_record_was_posted() {
        let book = MemoryDaybook::new();
        let store = StoreCode::parse("LDN-01").unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let sale = [accepted(FinanceKind::Sale, 2, "98.00", "GBP")];
        book.record_accepted(&store, day, "e1#sku:A", &sale)
            .await
            .unwrap();
        // A redelivered message records the same values once.
        book.record_accepted(&store, day, "e1#sku:A", &sale)
            .await
            .unwrap();
        book.record_accepted(
            &store,
            day,
            "e2#sku:B",
            &[accepted(FinanceKind::Return, 1, "15.00", "GBP")],
        )
        .await
        .unwrap();
        book.record_accepted(
            &store,
            day,
            "e3#sku:C",
            &[accepted(FinanceKind::Sale, 1, "20.00", "EUR")],
        )
        .await
        .unwrap();
        book.record_posted(
            &store,
            day,
            &["e1#sku:A".into(), "e2#sku:B".into()],
            5,
            "push-1",
        )
        .await
        .unwrap();

        let close = close_store_day(
            &store,
            day,
            &book.day(&store, day).await.unwrap(),
            60 * 60_000,
        );
        assert!(!close.validated);
        assert_eq!(close.differences.len(), 1);
        assert_eq!(close.differences[0].record_id, "e3#sku:C");
        assert_eq!(close.differences[0].kind, DifferenceKind::AcceptedNotPosted);
        assert_eq!(close.differences[0].minutes, Some(60));
        let gbp_sales = close
            .totals
            .iter()
            .find(|t| t.kind == FinanceKind::Sale && t.currency == "GBP")
            .unwrap();
        assert_eq!((gbp_sales.accepted.count, gbp_sales.accepted.units), (1, 2));
        assert_eq!(gbp_sales.accepted, gbp_sales.posted);
        assert_eq!(gbp_sales.accepted.gross.to_string(), "98.00");

        // Posting the rest (twice: the first posting is kept) validates the day; re-accepting keeps the post.
        book.record_posted(&store, day, &["e3#sku:C".into()], 9, "push-2")
            .await
            .unwrap();
        book.record_posted(&store, day, &["e3#sku:C".into()], 10, "push-3")
            .await
            .unwrap();
        book.record_accepted(
            &store,
            day,
            "e3#sku:C",
            &[accepted(FinanceKind::Sale, 1, "20.00", "EUR")],
        )
        .await
        .unwrap();
        let records = book.day(&store, day).await.unwrap();
        let c = records.iter().find(|r| r.record_id == "e3#sku:C").unwrap();
        assert_eq!(c.posted_ref.as_deref(), Some("push-2"));
        assert!(close_store_day(&store, day, &records, 0).validated);

        // A posting nobody accepted is a difference too.
        book.record_posted(&store, day, &["ghost#sku:Z".into()], 11, "push-4")
            .await
            .unwrap();
        let close = close_store_day(&store, day, &book.day(&store, day).await.unwrap(), 0);
        assert!(!close.validated);
        assert_eq!(close.differences[0].kind, DifferenceKind::PostedNotAccepted);
    }
}
