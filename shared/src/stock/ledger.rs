//! The per-(store, item) stock ledger: what the store told us, and how much of it Centra already holds.
//!
//! Pure functions only; storage is behind `ports::LedgerStore`. Every write of a row is conditional on its
//! `rev`, so the applier and the pusher can touch one row concurrently without losing either's update.
//!
//! Model: a `stock.count` opens a new epoch holding an absolute quantity; deltas (sales, returns, adjustments)
//! accumulate on top of it. Centra receives either the net delta not yet pushed (`changeStock`) or, when an
//! unpushed count exists, the absolute `count + deltas since` (`setStock` PHYSICAL).

use crate::core::ids::{EventPosition, ItemRef, Movement, StoreCode};
use crate::events::store_events::StockLineMessage;
use serde::{Deserialize, Serialize};

/// At most this many not-yet-pushed movements are remembered per row (for exception records and lag).
pub const MAX_PENDING_MOVEMENTS: usize = 200;
/// Deltas remembered with their position, so a count that arrives after later deltas (a resend, a DLQ
/// redrive) keeps them. A count arriving more than this many movements late is treated as newest.
pub const MAX_RECENT_DELTAS: usize = 256;
/// Pushes and movements remembered per row for `shelfsync trace` (a movement leaves `pending` once pushed, so
/// without them nothing would say which push carried it).
pub const MAX_RECENT_PUSHES: usize = 20;
pub const MAX_RECENT_MOVEMENTS: usize = 20;

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
    /// The name the movement was accepted under when it differs from the row's (a legacy EAN row merged into
    /// its SKU row): finance records are keyed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_as: Option<ItemRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub push_id: String,
    pub until_ms: i64,
    /// Audit-trail checks that settled nothing since the push was abandoned (the lease is extended each time).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
    /// A row keyed by a name that is not its size's canonical one (an EAN row from before items were resolved
    /// at intake) is merged into the canonical row and then points there; movements still arriving for it are
    /// applied to that row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_into: Option<ItemRef>,
    /// What a merge still has to apply to the canonical row (written before the merge, cleared after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<PendingMerge>,
    /// A push whose outcome could not be settled from Centra's audit trail within the bound: the row is parked
    /// until an operator says whether Centra applied it (`shelfsync unblock --applied|--not-applied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<UnresolvedPush>,
    /// The last pushes Centra holds for this row, newest last (at most [`MAX_RECENT_PUSHES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_pushes: Vec<RowPush>,
    /// The last movements applied to this row or ignored as stale, newest last (at most
    /// [`MAX_RECENT_MOVEMENTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_movements: Vec<MovementNote>,
}

/// A push that Centra holds for a row: it carried every movement up to `version_through`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowPush {
    pub push_id: String,
    pub kind: ChangeKind,
    pub quantity: i64,
    pub epoch: u64,
    /// The row's `pushed_version` before this push: it carried the versions after it, up to `version_through`.
    pub pushed_before: u64,
    pub version_through: u64,
    /// When the pusher recorded that Centra holds it.
    pub at_ms: i64,
}

impl RowPush {
    /// Whether this push is the one that brought row version `version` to Centra.
    pub fn carried(&self, version: u64) -> bool {
        self.pushed_before < version && version <= self.version_through
    }
}

/// One movement as the applier saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementNote {
    pub event_id: String,
    pub line: u32,
    /// `stock.sale`, `stock.count`, …
    pub event_type: String,
    pub movement: Movement,
    pub occurred_at_ms: i64,
    pub applied_at_ms: i64,
    /// The row version it became; `None`: ignored as older than the applied stock count.
    pub version: Option<u64>,
}

fn remember<T>(list: &mut Vec<T>, entry: T, max: usize) {
    list.push(entry);
    if list.len() > max {
        let excess = list.len() - max;
        list.drain(..excess);
    }
}

/// The unpushed state of a legacy row, carried into its canonical row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMerge {
    pub into: ItemRef,
    pub movement: Movement,
    pub position: EventPosition,
    /// Idempotency key of the merge movement on the canonical row.
    pub movement_id: String,
    pub pending: Vec<PendingMovement>,
    #[serde(default)]
    pub dropped_daybook_dates: std::collections::BTreeSet<chrono::NaiveDate>,
}

/// A push Centra may or may not have applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedPush {
    pub push_id: String,
    pub index: u32,
    pub line: PushLine,
    /// The text to look for in Centra's stock changes (`comment`).
    pub marker: String,
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
            retired_into: None,
            merge: None,
            unresolved: None,
            recent_pushes: Vec::new(),
            recent_movements: Vec::new(),
        }
    }

    /// On-hand units the store reports, when a count anchors it (else only the net change is known).
    pub fn store_quantity(&self) -> Option<i64> {
        self.count_qty.map(|c| c.saturating_add(self.delta_applied))
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
    let note = |version| MovementNote {
        event_id: msg.event_id.clone(),
        line: msg.line,
        event_type: msg.event_type.as_str().to_string(),
        movement: msg.movement,
        occurred_at_ms: msg.position.occurred_at_ms,
        applied_at_ms: now_ms,
        version,
    };
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
            remember(&mut row.recent_movements, note(None), MAX_RECENT_MOVEMENTS);
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
            row.delta_applied = after
                .iter()
                .try_fold(0i64, |sum, (_, d)| sum.checked_add(*d))
                .unwrap_or(i64::MAX);
            row.delta_pushed = 0;
            row.recent_deltas = after;
        }
        Movement::Delta(d) => {
            // Saturates rather than wraps: a row this far out is a data error the drift check shows.
            row.delta_applied = row.delta_applied.saturating_add(d);
            row.recent_deltas.push((msg.position, d));
            if row.recent_deltas.len() > MAX_RECENT_DELTAS {
                let excess = row.recent_deltas.len() - MAX_RECENT_DELTAS;
                row.recent_deltas.drain(..excess);
            }
        }
    }
    row.version += 1;
    remember(
        &mut row.recent_movements,
        note(Some(row.version)),
        MAX_RECENT_MOVEMENTS,
    );
    row.pending.push(PendingMovement {
        version: row.version,
        event_id: msg.event_id.clone(),
        occurred_at_ms: msg.position.occurred_at_ms,
        received_at_ms: msg.received_at_ms,
        daybook_date: msg.business_date.filter(|_| !msg.values.is_empty()),
        accepted_as: None,
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

/// The newest position a row has seen (its count or its latest delta).
fn newest_position(row: &LedgerRow) -> Option<EventPosition> {
    row.recent_deltas
        .iter()
        .map(|(p, _)| *p)
        .chain(row.last_count)
        .max_by(|a, b| a.cmp_to(b))
}

/// Starts merging a legacy row (keyed by a name other than its size's canonical one) into the canonical row
/// `into`: its unpushed state becomes one movement kept in `row.merge`, and the row itself counts as pushed and
/// points to `into`. Returns false when nothing was unpushed (the row is only retired).
pub fn begin_merge(row: &mut LedgerRow, into: &ItemRef, now_ms: i64) -> bool {
    let movement = match (row.count_qty, row.count_pushed) {
        (Some(count), false) => Some(Movement::Count(
            count.saturating_add(row.delta_applied).max(0),
        )),
        _ => {
            let net = row.delta_applied.saturating_sub(row.delta_pushed);
            (net != 0).then_some(Movement::Delta(net))
        }
    };
    let position = newest_position(row).unwrap_or(EventPosition {
        occurred_at_ms: row
            .pending
            .iter()
            .map(|p| p.occurred_at_ms)
            .max()
            .unwrap_or(now_ms),
        sequence: None,
    });
    let has_movement = movement.is_some();
    if let Some(movement) = movement {
        let legacy = row.item.clone();
        row.merge = Some(PendingMerge {
            into: into.clone(),
            movement,
            position,
            movement_id: format!("merge#{}#{}#v{}", row.store, row.item.key(), row.version),
            pending: std::mem::take(&mut row.pending)
                .into_iter()
                .map(|mut p| {
                    p.accepted_as.get_or_insert_with(|| legacy.clone());
                    p
                })
                .collect(),
            dropped_daybook_dates: std::mem::take(&mut row.dropped_daybook_dates),
        });
    }
    row.pending.clear();
    row.count_pushed = true;
    row.delta_pushed = row.delta_applied;
    row.pushed_version = row.version;
    row.retired_into = Some(into.clone());
    row.updated_at_ms = now_ms;
    has_movement
}

/// Applies a merge to the canonical row: one movement at the legacy row's newest position, carrying the legacy
/// row's unpushed movements (for lag and the finance daybook). Stale when the canonical row holds a newer count.
pub fn absorb_merge(
    target: Option<LedgerRow>,
    store: &StoreCode,
    merge: &PendingMerge,
    now_ms: i64,
) -> ApplyDecision {
    let msg = StockLineMessage {
        event_id: merge.movement_id.clone(),
        line: 0,
        event_type: match merge.movement {
            Movement::Count(_) => crate::events::store_events::StockEventType::Count,
            Movement::Delta(_) => crate::events::store_events::StockEventType::Adjustment,
        },
        store: store.clone(),
        item: merge.into.clone(),
        movement: merge.movement,
        position: merge.position,
        received_at_ms: now_ms,
        reference: None,
        values: Vec::new(),
        business_date: None,
    };
    match apply_movement(target, &msg, now_ms) {
        ApplyDecision::Apply(mut row) => {
            // The merge's own entry stands for the legacy row's movements.
            let version = row.version;
            row.pending.pop();
            row.pending
                .extend(merge.pending.iter().cloned().map(|mut p| {
                    p.version = version;
                    p
                }));
            if !merge.dropped_daybook_dates.is_empty() {
                row.dropped_daybook_dates
                    .extend(merge.dropped_daybook_dates.iter().copied());
                row.dropped_through_version = row.dropped_through_version.max(version);
            }
            ApplyDecision::Apply(row)
        }
        stale => stale,
    }
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
        return Some(base(
            ChangeKind::Set,
            count.saturating_add(row.delta_applied).max(0),
        ));
    }
    let delta = row.delta_applied.saturating_sub(row.delta_pushed);
    match delta.cmp(&0) {
        std::cmp::Ordering::Less => Some(base(ChangeKind::Decrease, delta.saturating_neg())),
        std::cmp::Ordering::Greater => Some(base(ChangeKind::Increase, delta)),
        std::cmp::Ordering::Equal => {
            // Nothing to send, but movements that net to zero are in Centra all the same.
            None
        }
    }
}

/// Records that Centra holds `line`, sent by push `push_id`. Idempotent: running it twice changes nothing
/// more. Returns the movements this push covered (for lag metrics).
pub fn mark_pushed(
    row: &mut LedgerRow,
    push_id: &str,
    line: &PushLine,
    now_ms: i64,
) -> Vec<PendingMovement> {
    let known = row
        .recent_pushes
        .iter()
        .any(|p| p.push_id == push_id && p.version_through == line.version_through);
    if !known {
        // Also a push from an older epoch: Centra received it, even if a newer count supersedes it.
        let push = RowPush {
            push_id: push_id.to_string(),
            kind: line.kind,
            quantity: line.quantity,
            epoch: line.epoch,
            pushed_before: row.pushed_version,
            version_through: line.version_through,
            at_ms: now_ms,
        };
        remember(&mut row.recent_pushes, push, MAX_RECENT_PUSHES);
    }
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
    /// Centra's stock-change id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// Lines of an applied mutation that Centra refused or skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedLine>,
}

/// A line of an applied mutation that Centra did not apply, with its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedLine {
    pub line: u32,
    pub message: String,
}

/// The record written before any Centra call, so a crash or a lost response can be resolved later against
/// Centra's stock-change audit trail (the `description`, stored by Centra as the change's `comment`, carries
/// `push_id/index`).
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

    /// The mutation that carries `item` (a refused mutation's lines are carried by what was split off it).
    pub fn mutation_for(&self, item: &ItemRef) -> Option<&PushMutation> {
        self.mutation_position(item).map(|i| &self.mutations[i])
    }

    pub fn mutation_position(&self, item: &ItemRef) -> Option<usize> {
        self.mutations.iter().position(|m| {
            m.status != MutationStatus::Split && m.lines.iter().any(|l| &l.item == item)
        })
    }

    /// Appends a pending mutation with the next index.
    pub fn add_mutation(&mut self, kind: ChangeKind, lines: Vec<PushLine>) {
        self.mutations.push(PushMutation {
            index: self.mutations.len() as u32,
            kind,
            lines,
            status: MutationStatus::Pending,
            change_id: None,
            skipped: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::store_events::StockEventType;

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
                m.values = vec![crate::core::money::LineValue {
                    units: 1,
                    gross: crate::core::money::Money::parse("1").unwrap(),
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
        mark_pushed(&mut r, "p1", &line, 1_000);
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
        let covered = mark_pushed(&mut r, "p1", &line, 20);
        assert_eq!(covered.len(), 1);
        assert!(mark_pushed(&mut r, "p1", &line, 21).is_empty());
        let next = pending_change(&r).unwrap();
        assert_eq!((next.kind, next.quantity), (ChangeKind::Decrease, 1));
        assert_eq!(r.pending.len(), 1);
    }

    #[test]
    fn the_row_remembers_which_push_carried_a_movement_and_which_were_stale() {
        let r = applied(apply_movement(
            None,
            &msg("count", Movement::Count(5), 100, None),
            100,
        ));
        let mut r = applied(apply_movement(
            Some(r),
            &msg("sale", Movement::Delta(-1), 110, None),
            110,
        ));
        let line = pending_change(&r).unwrap();
        mark_pushed(&mut r, "push-a", &line, 120);
        mark_pushed(&mut r, "push-a", &line, 121);
        assert!(r.pending.is_empty(), "pushed movements leave pending");
        assert_eq!(r.recent_pushes.len(), 1, "a repeated mark is one push");
        let push = &r.recent_pushes[0];
        assert_eq!(
            (push.push_id.as_str(), push.version_through, push.at_ms),
            ("push-a", 2, 120)
        );
        assert!(push.carried(1) && push.carried(2) && !push.carried(3));
        let r = match apply_movement(Some(r), &msg("old", Movement::Delta(-1), 50, None), 130) {
            ApplyDecision::Stale { row, .. } => row,
            ApplyDecision::Apply(_) => panic!("older than the count"),
        };
        let notes: Vec<(&str, Option<u64>)> = r
            .recent_movements
            .iter()
            .map(|m| (m.event_id.as_str(), m.version))
            .collect();
        assert_eq!(
            notes,
            [("count", Some(1)), ("sale", Some(2)), ("old", None)]
        );

        let mut r = r;
        for i in 0..MAX_RECENT_PUSHES as i64 + 5 {
            let m = msg(&format!("s{i}"), Movement::Delta(-1), 200 + i, None);
            r = applied(apply_movement(Some(r), &m, 200 + i));
            let line = pending_change(&r).unwrap();
            mark_pushed(&mut r, &format!("p{i}"), &line, 300 + i);
        }
        assert_eq!(r.recent_pushes.len(), MAX_RECENT_PUSHES);
        assert_eq!(r.recent_movements.len(), MAX_RECENT_MOVEMENTS);
        assert_eq!(
            r.recent_pushes.last().map(|p| p.version_through),
            Some(r.version),
            "newest last"
        );
        // Each remembered push carried exactly the one sale after the previous push.
        assert!(r
            .recent_pushes
            .iter()
            .all(|p| p.carried(p.version_through) && !p.carried(p.version_through - 1)));
        // Rows written before these lists existed still read.
        let mut old = serde_json::to_value(LedgerRow::new(
            StoreCode::parse("LDN-01").unwrap(),
            ItemRef::Sku("A".into()),
        ))
        .unwrap();
        old.as_object_mut().unwrap().remove("recent_pushes");
        old.as_object_mut().unwrap().remove("recent_movements");
        assert!(serde_json::from_value::<LedgerRow>(old).is_ok());
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
        mark_pushed(&mut r, "p1", &old, 30);
        let line = pending_change(&r).unwrap();
        assert_eq!((line.kind, line.quantity), (ChangeKind::Set, 3));
        assert_eq!(r.pending.len(), 2, "the count is not in Centra yet");
    }
}
