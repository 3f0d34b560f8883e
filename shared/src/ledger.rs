//! The per-(store, item) stock ledger: what the store told us, and how much of it Centra already holds.
//!
//! Pure functions only; storage is behind `ports::LedgerStore`. Every write of a row is conditional on its
//! `rev`, so the applier and the pusher can touch one row concurrently without losing either's update.
//!
//! Model: a `stock.count` opens a new epoch holding an absolute quantity; deltas (sales, returns, adjustments)
//! accumulate on top of it. Centra receives either the net delta not yet pushed (`changeStock`) or, when an
//! unpushed count exists, the absolute `count + deltas since` (`setStock` PHYSICAL).

use crate::domain::{EventPosition, ItemRef, Movement, StoreCode};
use crate::store_events::StockLineMessage;
use serde::{Deserialize, Serialize};

/// At most this many not-yet-pushed movements are remembered per row (for exception records and lag).
pub const MAX_PENDING_MOVEMENTS: usize = 200;
/// Deltas remembered with their position, so a count that arrives after later deltas (a resend, a DLQ
/// redrive) keeps them. A count arriving more than this many movements late is treated as newest.
pub const MAX_RECENT_DELTAS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMovement {
    pub version: u64,
    pub event_id: String,
    pub occurred_at_ms: i64,
    pub received_at_ms: i64,
    /// The business date of a sale or return in the finance daybook: its posting is recorded there once
    /// Centra holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daybook_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub push_id: String,
    pub until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub store: StoreCode,
    pub item: ItemRef,
    /// Bumped by every write (optimistic concurrency).
    pub rev: u64,
    /// Number of movements applied.
    pub version: u64,
    /// Bumped by every applied count.
    pub epoch: u64,
    pub last_count: Option<EventPosition>,
    pub count_qty: Option<i64>,
    pub count_pushed: bool,
    /// Sum of deltas applied in this epoch, and how much of it Centra holds.
    pub delta_applied: i64,
    pub delta_pushed: i64,
    /// Highest `version` Centra is known to hold.
    pub pushed_version: u64,
    pub pending: Vec<PendingMovement>,
    pub lease: Option<Lease>,
    /// Centra refused this item (e.g. unknown SKU): pushes skip it until an operator clears it.
    pub blocked: Option<String>,
    pub stale_ignored: u64,
    pub updated_at_ms: i64,
    pub last_pushed_at_ms: Option<i64>,
    /// Deltas of the current epoch with their positions (newest last).
    #[serde(default)]
    pub recent_deltas: Vec<(EventPosition, i64)>,
    /// Business dates of sales and returns dropped from `pending` before Centra held them (a row over
    /// `MAX_PENDING_MOVEMENTS`, e.g. a busy SKU of a daily-posting store): the pusher posts them in the finance
    /// daybook by date once `pushed_version` reaches `dropped_through_version`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub dropped_daybook_dates: std::collections::BTreeSet<chrono::NaiveDate>,
    /// Highest version dropped from `pending` while unpushed.
    #[serde(default)]
    pub dropped_through_version: u64,
}

impl LedgerRow {
    pub fn new(store: StoreCode, item: ItemRef) -> Self {
        Self {
            store,
            item,
            rev: 0,
            version: 0,
            epoch: 0,
            last_count: None,
            count_qty: None,
            count_pushed: false,
            delta_applied: 0,
            delta_pushed: 0,
            pushed_version: 0,
            pending: Vec::new(),
            lease: None,
            blocked: None,
            stale_ignored: 0,
            updated_at_ms: 0,
            last_pushed_at_ms: None,
            recent_deltas: Vec::new(),
            dropped_daybook_dates: std::collections::BTreeSet::new(),
            dropped_through_version: 0,
        }
    }

    /// On-hand units the store reports, when a count anchors it (else only the net change is known).
    pub fn store_quantity(&self) -> Option<i64> {
        self.count_qty.map(|c| c + self.delta_applied)
    }

    pub fn has_unpushed(&self) -> bool {
        pending_change(self).is_some()
    }

    pub fn lease_active(&self, now_ms: i64) -> bool {
        self.lease.as_ref().is_some_and(|l| l.until_ms >= now_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyDecision {
    Apply(LedgerRow),
    /// Older than the last applied count: the count already reflects it.
    Stale {
        reason: String,
        row: LedgerRow,
    },
}

/// Applies one movement to a row (or a new row). Does not touch `rev`; the store bumps it on write.
pub fn apply_movement(
    row: Option<LedgerRow>,
    msg: &StockLineMessage,
    now_ms: i64,
) -> ApplyDecision {
    let mut row = row.unwrap_or_else(|| LedgerRow::new(msg.store.clone(), msg.item.clone()));
    if let Some(last) = &row.last_count {
        let ord = msg.position.cmp_to(last);
        let stale = match msg.movement {
            // A count at the same position as the applied one is a repeat with a new id: nothing newer to learn.
            Movement::Count(_) => ord != std::cmp::Ordering::Greater,
            // A delta at the count's instant is taken as after it; strictly older ones are inside the count.
            Movement::Delta(_) => ord == std::cmp::Ordering::Less,
        };
        if stale {
            row.stale_ignored += 1;
            row.updated_at_ms = now_ms;
            return ApplyDecision::Stale {
                reason: format!(
                    "{} is older than the stock count applied for {} at {}",
                    msg.event_type.as_str(),
                    msg.item,
                    last.occurred_at_ms
                ),
                row,
            };
        }
    }
    match msg.movement {
        Movement::Count(q) => {
            // Deltas that happened after the count but were applied before it stay on top of it.
            let after: Vec<(EventPosition, i64)> = row
                .recent_deltas
                .iter()
                .filter(|(p, _)| p.cmp_to(&msg.position) != std::cmp::Ordering::Less)
                .copied()
                .collect();
            row.epoch += 1;
            row.last_count = Some(msg.position);
            row.count_qty = Some(q);
            row.count_pushed = false;
            row.delta_applied = after.iter().map(|(_, d)| d).sum();
            row.delta_pushed = 0;
            row.recent_deltas = after;
        }
        Movement::Delta(d) => {
            row.delta_applied += d;
            row.recent_deltas.push((msg.position, d));
            if row.recent_deltas.len() > MAX_RECENT_DELTAS {
                let excess = row.recent_deltas.len() - MAX_RECENT_DELTAS;
                row.recent_deltas.drain(..excess);
            }
        }
    }
    row.version += 1;
    row.pending.push(PendingMovement {
        version: row.version,
        event_id: msg.event_id.clone(),
        occurred_at_ms: msg.position.occurred_at_ms,
        received_at_ms: msg.received_at_ms,
        daybook_date: msg.business_date.filter(|_| !msg.values.is_empty()),
    });
    if row.pending.len() > MAX_PENDING_MOVEMENTS {
        let excess = row.pending.len() - MAX_PENDING_MOVEMENTS;
        for dropped in row.pending.drain(..excess) {
            row.dropped_through_version = row.dropped_through_version.max(dropped.version);
            row.dropped_daybook_dates.extend(dropped.daybook_date);
        }
    }
    row.updated_at_ms = now_ms;
    ApplyDecision::Apply(row)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// `changeStock` with `outFromWarehouse`.
    Decrease,
    /// `changeStock` with `intoWarehouse`.
    Increase,
    /// `setStock` PHYSICAL.
    Set,
}

/// What Centra must receive for one row, as computed when the pusher leased it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushLine {
    pub item: ItemRef,
    pub kind: ChangeKind,
    /// Units for Decrease/Increase (positive); the absolute level for Set.
    pub quantity: i64,
    pub epoch: u64,
    /// `delta_applied` at lease time: after success Centra holds every delta up to here.
    pub delta_through: i64,
    pub version_through: u64,
}

/// The change Centra has not received yet, if any.
pub fn pending_change(row: &LedgerRow) -> Option<PushLine> {
    let base = |kind, quantity| PushLine {
        item: row.item.clone(),
        kind,
        quantity,
        epoch: row.epoch,
        delta_through: row.delta_applied,
        version_through: row.version,
    };
    if let (Some(count), false) = (row.count_qty, row.count_pushed) {
        // Centra cannot hold negative physical stock; a count followed by more sales than counted is floored.
        return Some(base(ChangeKind::Set, (count + row.delta_applied).max(0)));
    }
    let delta = row.delta_applied - row.delta_pushed;
    match delta.cmp(&0) {
        std::cmp::Ordering::Less => Some(base(ChangeKind::Decrease, -delta)),
        std::cmp::Ordering::Greater => Some(base(ChangeKind::Increase, delta)),
        std::cmp::Ordering::Equal => {
            // Nothing to send, but movements that net to zero are in Centra all the same.
            None
        }
    }
}

/// Records that Centra holds `line`. Idempotent: running it twice changes nothing more. Returns the
/// movements this push covered (for lag metrics).
pub fn mark_pushed(row: &mut LedgerRow, line: &PushLine, now_ms: i64) -> Vec<PendingMovement> {
    row.last_pushed_at_ms = Some(now_ms);
    row.updated_at_ms = now_ms;
    if row.epoch != line.epoch {
        // Pushed before a newer count was applied: that count supersedes it and is still pending.
        return Vec::new();
    }
    if line.kind == ChangeKind::Set {
        row.count_pushed = true;
    }
    row.delta_pushed = line.delta_through;
    row.pushed_version = row.pushed_version.max(line.version_through);
    let through = row.pushed_version;
    let (covered, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut row.pending)
        .into_iter()
        .partition(|p| p.version <= through);
    row.pending = rest;
    covered
}

/// The dates of dropped sales and returns (see `LedgerRow::dropped_daybook_dates`) once Centra holds every
/// dropped movement; cleared from the row, so the caller posts them before writing it.
pub fn take_posted_dropped_dates(row: &mut LedgerRow) -> Vec<chrono::NaiveDate> {
    if row.pushed_version < row.dropped_through_version {
        return Vec::new();
    }
    std::mem::take(&mut row.dropped_daybook_dates)
        .into_iter()
        .collect()
}

/// Clears the lease if `push_id` holds it.
pub fn release_lease(row: &mut LedgerRow, push_id: &str) -> bool {
    if row.lease.as_ref().is_some_and(|l| l.push_id == push_id) {
        row.lease = None;
        true
    } else {
        false
    }
}

/// Normalised zero-net rows still carry pending movements; when nothing is left to send they count as pushed.
pub fn settle_zero_net(row: &mut LedgerRow, now_ms: i64) -> Vec<PendingMovement> {
    if pending_change(row).is_none() && !row.pending.is_empty() {
        let covered = std::mem::take(&mut row.pending);
        row.pushed_version = row.version;
        row.updated_at_ms = now_ms;
        return covered;
    }
    Vec::new()
}

// ---------------------------------------------------------------- push records

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationStatus {
    /// Written before the call; the outcome is not known yet.
    Pending,
    Applied,
    /// Definitely not applied (429, refused with userErrors, never sent).
    NotApplied,
    /// Superseded by smaller mutations after Centra refused one line.
    Split,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMutation {
    pub index: u32,
    pub kind: ChangeKind,
    pub lines: Vec<PushLine>,
    pub status: MutationStatus,
}

/// The record written before any Centra call, so a crash or a lost response can be resolved later against
/// Centra's stock-change audit trail (the `description` carries `push_id/index`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    pub push_id: String,
    pub store: StoreCode,
    pub warehouse_id: u64,
    pub created_at_ms: i64,
    pub expires_at_s: i64,
    pub mutations: Vec<PushMutation>,
}

impl PushRecord {
    pub fn description(&self, index: u32) -> String {
        format!(
            "cloudshelf-centra push {}/{} store {}",
            self.push_id, index, self.store
        )
    }

    pub fn marker(push_id: &str, index: u32) -> String {
        format!("push {push_id}/{index} ")
    }

    pub fn mutation_for(&self, item: &ItemRef) -> Option<&PushMutation> {
        self.mutations
            .iter()
            .filter(|m| m.status != MutationStatus::Split)
            .find(|m| m.lines.iter().any(|l| &l.item == item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_events::StockEventType;

    fn msg(id: &str, movement: Movement, at: i64, seq: Option<u64>) -> StockLineMessage {
        StockLineMessage {
            event_id: id.into(),
            line: 0,
            event_type: match movement {
                Movement::Count(_) => StockEventType::Count,
                Movement::Delta(d) if d < 0 => StockEventType::Sale,
                Movement::Delta(_) => StockEventType::Return,
            },
            store: StoreCode::parse("LDN-01").unwrap(),
            item: ItemRef::Sku("A".into()),
            movement,
            position: EventPosition {
                occurred_at_ms: at,
                sequence: seq,
            },
            received_at_ms: at,
            reference: None,
            values: Vec::new(),
            business_date: None,
        }
    }

    fn applied(d: ApplyDecision) -> LedgerRow {
        match d {
            ApplyDecision::Apply(r) => r,
            ApplyDecision::Stale { reason, .. } => panic!("unexpected stale: {reason}"),
        }
    }

    #[test]
    fn sales_dropped_over_the_pending_cap_are_posted_once_a_push_covers_them() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let mut row = None;
        for i in 0..MAX_PENDING_MOVEMENTS as i64 + 3 {
            let mut m = msg(&format!("s{i}"), Movement::Delta(-1), i, None);
            if i != 1 {
                // `s1` carries no finance value (e.g. queued before the daybook existed).
                m.business_date = Some(day);
                m.values = vec![crate::finance::LineValue {
                    units: 1,
                    gross: crate::finance::Money::parse("1").unwrap(),
                    currency: "GBP".into(),
                }];
            }
            row = Some(applied(apply_movement(row, &m, i)));
        }
        let mut r = row.unwrap();
        assert_eq!(r.pending.len(), MAX_PENDING_MOVEMENTS);
        assert_eq!(r.dropped_through_version, 3);
        assert_eq!(r.dropped_daybook_dates.iter().collect::<Vec<_>>(), [&day]);
        assert!(
            take_posted_dropped_dates(&mut r).is_empty(),
            "not pushed yet"
        );
        let line = pending_change(&r).unwrap();
        mark_pushed(&mut r, &line, 1_000);
        assert_eq!(take_posted_dropped_dates(&mut r), [day]);
        assert!(take_posted_dropped_dates(&mut r).is_empty(), "taken once");
    }

    #[test]
    fn deltas_accumulate_and_push_as_one_decrease() {
        let r = applied(apply_movement(
            None,
            &msg("a", Movement::Delta(-2), 10, None),
            10,
        ));
        let r = applied(apply_movement(
            Some(r),
            &msg("b", Movement::Delta(-1), 11, None),
            11,
        ));
        let r = applied(apply_movement(
            Some(r),
            &msg("c", Movement::Delta(1), 12, None),
            12,
        ));
        let line = pending_change(&r).unwrap();
        assert_eq!((line.kind, line.quantity), (ChangeKind::Decrease, 2));
    }

    #[test]
    fn count_then_deltas_push_as_absolute_set() {
        let r = applied(apply_movement(
            None,
            &msg("a", Movement::Delta(-2), 10, None),
            10,
        ));
        let r = applied(apply_movement(
            Some(r),
            &msg("c", Movement::Count(7), 20, None),
            20,
        ));
        let r = applied(apply_movement(
            Some(r),
            &msg("d", Movement::Delta(-3), 30, None),
            30,
        ));
        let line = pending_change(&r).unwrap();
        assert_eq!((line.kind, line.quantity), (ChangeKind::Set, 4));
    }

    #[test]
    fn stale_count_and_stale_delta_are_ignored() {
        let r = applied(apply_movement(
            None,
            &msg("c2", Movement::Count(5), 100, None),
            100,
        ));
        match apply_movement(
            Some(r.clone()),
            &msg("c1", Movement::Count(9), 50, None),
            101,
        ) {
            ApplyDecision::Stale { row, .. } => assert_eq!(row.count_qty, Some(5)),
            _ => panic!("older count must be stale"),
        }
        assert!(matches!(
            apply_movement(
                Some(r.clone()),
                &msg("s", Movement::Delta(-1), 99, None),
                101
            ),
            ApplyDecision::Stale { .. }
        ));
        // Same instant as the count: applied on top.
        let r2 = applied(apply_movement(
            Some(r),
            &msg("s2", Movement::Delta(-1), 100, None),
            101,
        ));
        assert_eq!(r2.store_quantity(), Some(4));
    }

    #[test]
    fn count_arriving_after_a_later_sale_keeps_that_sale() {
        let r = applied(apply_movement(
            None,
            &msg("early", Movement::Delta(-1), 50, None),
            50,
        ));
        let r = applied(apply_movement(
            Some(r),
            &msg("later", Movement::Delta(-2), 200, None),
            200,
        ));
        // The count was taken at 100: it includes "early" but not "later".
        let r = applied(apply_movement(
            Some(r),
            &msg("count", Movement::Count(10), 100, None),
            300,
        ));
        assert_eq!(r.store_quantity(), Some(8));
        let line = pending_change(&r).unwrap();
        assert_eq!((line.kind, line.quantity), (ChangeKind::Set, 8));
    }

    #[test]
    fn sequence_orders_before_time_when_both_present() {
        let r = applied(apply_movement(
            None,
            &msg("c", Movement::Count(5), 100, Some(10)),
            100,
        ));
        // Later clock but earlier sequence: stale.
        assert!(matches!(
            apply_movement(
                Some(r.clone()),
                &msg("s", Movement::Delta(-1), 200, Some(9)),
                201
            ),
            ApplyDecision::Stale { .. }
        ));
        applied(apply_movement(
            Some(r),
            &msg("s", Movement::Delta(-1), 50, Some(11)),
            201,
        ));
    }

    #[test]
    fn mark_pushed_is_idempotent_and_keeps_later_movements_pending() {
        let r = applied(apply_movement(
            None,
            &msg("a", Movement::Delta(-2), 10, None),
            10,
        ));
        let line = pending_change(&r).unwrap();
        let mut r = applied(apply_movement(
            Some(r),
            &msg("b", Movement::Delta(-1), 11, None),
            11,
        ));
        let covered = mark_pushed(&mut r, &line, 20);
        assert_eq!(covered.len(), 1);
        assert!(mark_pushed(&mut r, &line, 21).is_empty());
        let next = pending_change(&r).unwrap();
        assert_eq!((next.kind, next.quantity), (ChangeKind::Decrease, 1));
        assert_eq!(r.pending.len(), 1);
    }

    #[test]
    fn push_from_an_older_epoch_leaves_the_new_count_pending() {
        let r = applied(apply_movement(
            None,
            &msg("a", Movement::Delta(-2), 10, None),
            10,
        ));
        let old = pending_change(&r).unwrap();
        let mut r = applied(apply_movement(
            Some(r),
            &msg("c", Movement::Count(3), 20, None),
            20,
        ));
        mark_pushed(&mut r, &old, 30);
        let line = pending_change(&r).unwrap();
        assert_eq!((line.kind, line.quantity), (ChangeKind::Set, 3));
        assert_eq!(r.pending.len(), 2, "the count is not in Centra yet");
    }
}
