//! `shelfsync trace`: where one store event, one (store, item) or one kiosk order has got to, read from what the
//! integration already stores — idempotency records (the accepted request), the applier's movement markers,
//! ledger rows (their recent movements and pushes), push records, exception records, the order outbox — and,
//! when a Centra client is given, Centra's stock and stock-change audit trail. It changes nothing.
//!
//! The result is one serde [`Trace`]; the CLI renders it (for a person, or as JSON) whichever stack it came
//! from: the deployed tables, `serve`'s `/ops/trace/*` endpoints, or the demo. Where a stage cannot be known
//! from the records, the trace says so and names where to look instead of guessing.

use crate::centra::catalogue::CentraStockRow;
use crate::centra::{AuditLookup, CentraClient};
use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::core::operator::OperatorAction;
use crate::events::store_events::parse_stock_event;
use crate::orders::outbox::{LifecycleNote, OrderOutbox, OutboxRecord, OutboxState, OutboxStep};
use crate::stock::ledger::{
    ChangeKind, LedgerRow, MovementNote, MutationStatus, PendingMovement, PushRecord, RowPush,
    MAX_RECENT_PUSHES,
};
use crate::stock::ports::{
    AppliedMarkers, ExceptionLog, ExceptionRecord, IdempotencyStatus, IdempotencyStore,
    LedgerStore, PushLog,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where a trace reads from.
#[derive(Clone)]
pub struct TraceSources {
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub markers: Arc<dyn AppliedMarkers>,
    pub push_log: Arc<dyn PushLog>,
    pub exceptions: Arc<dyn ExceptionLog>,
    /// `None`: orders are not configured here.
    pub outbox: Option<Arc<dyn OrderOutbox>>,
    /// Centra, for its stock and its stock changes; `None`: not asked (the trace says so).
    pub centra: Option<CentraClient>,
    pub mappings: Arc<Mappings>,
    pub clock: SharedClock,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trace", rename_all = "snake_case")]
pub enum Trace {
    Event(EventTrace),
    Item(ItemTrace),
    Order(OrderTrace),
}

// ---------------------------------------------------------------- event

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTrace {
    pub webhook_id: String,
    pub accepted: Option<Accepted>,
    pub lines: Vec<LineTrace>,
    /// Exception records naming this event.
    pub exceptions: Vec<ExceptionRecord>,
    /// What cannot be known from the records, said plainly.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub store: String,
    pub event_type: String,
    /// When intake received the request it accepted.
    pub received_at_ms: i64,
    pub webhook_timestamp: Option<String>,
    /// `completed`, or `in_progress` while intake has not finished queueing it.
    pub intake_status: String,
    pub occurred_at_ms: Option<i64>,
}

/// How far one line of an event got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStage {
    /// No applied marker: still in the stock queue (or its DLQ), or intake never queued it.
    NotApplied,
    /// Applied to the ledger; Centra does not hold it yet.
    WaitingForPush,
    /// Applied, but the row is blocked (Centra refused it, or a push's outcome is unsettled).
    Blocked,
    /// Ignored as older than the stock count applied before it (the count carries it to Centra).
    Stale,
    /// Centra holds it.
    InCentra,
    /// The records could not be read (see the line's detail).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineTrace {
    /// Index in the event's `lines`.
    pub line: u32,
    pub sku: Option<String>,
    pub ean: Option<String>,
    pub quantity: i64,
    /// The ledger row (Centra size) the applier put it on, from its marker.
    pub resolved_to: Option<String>,
    /// Another line of the event naming the same size: intake sent both as one movement, keyed by that line.
    pub merged_into_line: Option<u32>,
    pub stage: LineStage,
    /// The row version the movement became.
    pub version: Option<u64>,
    pub applied_at_ms: Option<i64>,
    /// Where it is now, in words.
    pub detail: String,
    pub row: Option<RowSummary>,
    pub push: Option<PushTrace>,
    /// From intake accepting the event to the pusher recording that Centra holds it.
    pub accepted_to_centra_ms: Option<i64>,
    /// From the event's `occurred_at` to the same.
    pub occurred_to_centra_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSummary {
    pub store: String,
    pub item: String,
    pub version: u64,
    pub pushed_version: u64,
    pub epoch: u64,
    pub count_qty: Option<i64>,
    pub last_count_at_ms: Option<i64>,
    /// On-hand units the store reports (when a count anchors the row).
    pub store_quantity: Option<i64>,
    pub delta_applied: i64,
    pub delta_pushed: i64,
    pub pending: usize,
    pub stale_ignored: u64,
    pub blocked: Option<String>,
    pub lease_push_id: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub retired_into: Option<String>,
    pub updated_at_ms: i64,
    pub last_pushed_at_ms: Option<i64>,
}

impl RowSummary {
    fn of(row: &LedgerRow) -> Self {
        Self {
            store: row.store.to_string(),
            item: row.item.key(),
            version: row.version,
            pushed_version: row.pushed_version,
            epoch: row.epoch,
            count_qty: row.count_qty,
            last_count_at_ms: row.last_count.map(|p| p.occurred_at_ms),
            store_quantity: row.store_quantity(),
            delta_applied: row.delta_applied,
            delta_pushed: row.delta_pushed,
            pending: row.pending.len(),
            stale_ignored: row.stale_ignored,
            blocked: row.blocked.clone(),
            lease_push_id: row.lease.as_ref().map(|l| l.push_id.clone()),
            lease_until_ms: row.lease.as_ref().map(|l| l.until_ms),
            retired_into: row.retired_into.as_ref().map(ItemRef::key),
            updated_at_ms: row.updated_at_ms,
            last_pushed_at_ms: row.last_pushed_at_ms,
        }
    }
}

/// One push that carried a row to Centra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTrace {
    pub push_id: String,
    /// `changeStock` out / in, or `setStock`.
    pub kind: ChangeKind,
    pub quantity: i64,
    pub version_through: u64,
    /// When the pusher recorded that Centra holds it.
    pub recorded_at_ms: i64,
    pub warehouse_id: Option<u64>,
    /// The mutation of the push record that carried this row.
    pub mutation_index: Option<u32>,
    pub mutation_status: Option<MutationStatus>,
    /// Centra's stock-change id, as the push record holds it.
    pub centra_change_id: Option<String>,
    /// Centra's `createdAt` of that change, from its audit trail (when Centra was asked).
    pub centra_change_at: Option<String>,
}

// ---------------------------------------------------------------- item

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemTrace {
    pub store: String,
    pub item: String,
    pub warehouse_id: Option<u64>,
    /// Movements and pushes older than this are left out.
    pub since_ms: Option<i64>,
    pub row: Option<RowSummary>,
    /// Applied, not yet in Centra.
    pub pending: Vec<PendingMovement>,
    /// The last movements the row remembers (applied or stale), newest last.
    pub movements: Vec<MovementNote>,
    pub pushes: Vec<PushTrace>,
    pub centra_stock: CentraStock,
    pub exceptions: Vec<ExceptionRecord>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CentraStock {
    Found {
        size_id: u64,
        physical: i64,
        free_to_allocate: i64,
    },
    /// The warehouse lists no stock for that size.
    Absent,
    NotAsked {
        reason: String,
    },
    Failed {
        message: String,
    },
}

// ---------------------------------------------------------------- order

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderTrace {
    /// What was asked for: a Cloudshelf order id or a Centra order number.
    pub query: String,
    pub cloudshelf_order_id: Option<String>,
    pub order: Option<OrderSummary>,
    /// States entered, with times, oldest first.
    pub history: Vec<OutboxStep>,
    pub lifecycle: Vec<LifecycleTrace>,
    pub operator_actions: Vec<OperatorAction>,
    pub exceptions: Vec<ExceptionRecord>,
    pub notes: Vec<String>,
}

/// The outbox record without the customer data it may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub store: String,
    pub event_id: String,
    /// When intake accepted the `order.placed` event (its idempotency record).
    pub accepted_at_ms: Option<i64>,
    pub state: OutboxState,
    pub attempts: u32,
    pub centra_orders: Vec<u64>,
    pub centra_store_id: Option<u64>,
    /// The Cloudshelf status we last set.
    pub reported_status: Option<String>,
    pub exception: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub first_attempt_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleTrace {
    #[serde(flatten)]
    pub note: LifecycleNote,
    /// When the Centra webhook intake accepted it (its idempotency record).
    pub received_at_ms: Option<i64>,
}

// ---------------------------------------------------------------- tracing

const STOCK_DLQ_HINT: &str = "see `shelfsync dlq list stock`";
const PUSH_DLQ_HINT: &str = "see `shelfsync dlq list stock-push`";

impl TraceSources {
    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The row for `item`, following a legacy row merged into its canonical one.
    async fn row(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        notes: &mut Vec<String>,
    ) -> Result<Option<LedgerRow>, BackendError> {
        let row = self.ledger.get(store, item).await?;
        match row.as_ref().and_then(|r| r.retired_into.clone()) {
            Some(into) => {
                notes.push(format!(
                    "row {item} was merged into {into} (same Centra size); showing {into}"
                ));
                self.ledger.get(store, &into).await
            }
            None => Ok(row),
        }
    }

    async fn exceptions_where(
        &self,
        store: &str,
        keep: impl Fn(&ExceptionRecord) -> bool,
    ) -> Result<Vec<ExceptionRecord>, BackendError> {
        Ok(self
            .exceptions
            .list(Some(store))
            .await?
            .into_iter()
            .filter(keep)
            .collect())
    }

    /// The push that carried `version` of `row`, with its record; `None` when the row no longer remembers it.
    async fn push_through(
        &self,
        row: &LedgerRow,
        version: u64,
        ask_centra: bool,
    ) -> Result<Option<PushTrace>, BackendError> {
        let Some(push) = row.recent_pushes.iter().find(|p| p.carried(version)) else {
            return Ok(None);
        };
        self.push_trace(row, push, ask_centra).await.map(Some)
    }

    async fn push_trace(
        &self,
        row: &LedgerRow,
        push: &RowPush,
        ask_centra: bool,
    ) -> Result<PushTrace, BackendError> {
        let record: Option<PushRecord> = self.push_log.get(&push.push_id).await?;
        let mutation = record.as_ref().and_then(|r| r.mutation_for(&row.item));
        let mut trace = PushTrace {
            push_id: push.push_id.clone(),
            kind: push.kind,
            quantity: push.quantity,
            version_through: push.version_through,
            recorded_at_ms: push.at_ms,
            warehouse_id: record.as_ref().map(|r| r.warehouse_id),
            mutation_index: mutation.map(|m| m.index),
            mutation_status: mutation.map(|m| m.status),
            centra_change_id: mutation.and_then(|m| m.change_id.clone()),
            centra_change_at: None,
        };
        if let (true, Some(centra), Some(record), Some(m)) =
            (ask_centra, &self.centra, &record, mutation)
        {
            // The change's time is Centra's; the same audit-trail read the pusher's recovery uses.
            let marker = PushRecord::marker(&record.push_id, m.index);
            if let Ok(AuditLookup::Found(change)) =
                centra.find_push_change(record.warehouse_id, &marker).await
            {
                trace.centra_change_id.get_or_insert(change.id);
                trace.centra_change_at = change.created_at;
            }
        }
        Ok(trace)
    }

    /// Why an applied movement is not in Centra yet.
    fn waiting_reason(&self, row: &LedgerRow) -> (LineStage, String) {
        let store = &row.store;
        let flag = match &row.item {
            ItemRef::Sku(s) => format!("--sku {s}"),
            ItemRef::Ean(e) => format!("--ean {e}"),
        };
        if let Some(blocked) = &row.blocked {
            let how = match &row.unresolved {
                Some(u) => format!(
                    "look for a stock change whose comment contains \"{}\" in Centra, then `shelfsync unblock --store {store} {flag} --applied` or `--not-applied`",
                    u.marker.trim_end()
                ),
                None => format!(
                    "fix what Centra refused, then `shelfsync unblock --store {store} {flag}`"
                ),
            };
            return (
                LineStage::Blocked,
                format!("applied, but the item is blocked: {blocked}; {how}"),
            );
        }
        if let Some(lease) = row.lease.as_ref().filter(|_| row.lease_active(self.now())) {
            return (
                LineStage::WaitingForPush,
                format!(
                    "applied; being pushed now by push {} (lease until {})",
                    lease.push_id,
                    super::format_ms(lease.until_ms)
                ),
            );
        }
        if crate::finance::FinanceHooks::new(&self.mappings, None)
            .held_stores
            .contains(store)
        {
            return (
                LineStage::WaitingForPush,
                format!("applied; held for {store}'s daily posting: pushed when the finance close flushes the store"),
            );
        }
        (
            LineStage::WaitingForPush,
            format!("applied; waiting in the push queue for the next push, or in its DLQ ({PUSH_DLQ_HINT})"),
        )
    }

    pub async fn trace_event(&self, webhook_id: &str) -> Result<EventTrace, BackendError> {
        let mut trace = EventTrace {
            webhook_id: webhook_id.to_string(),
            accepted: None,
            lines: Vec::new(),
            exceptions: Vec::new(),
            notes: Vec::new(),
        };
        let Some(record) = self
            .idempotency
            .get(&format!("store-event#{webhook_id}"))
            .await?
        else {
            trace.notes.push(format!(
                "no store event with webhook id {webhook_id} was accepted in the last 15 days (intake keeps ids that \
                 long; a refused request leaves no record)"
            ));
            return Ok(trace);
        };
        let intake_status = match record.status {
            IdempotencyStatus::Completed => "completed",
            IdempotencyStatus::InProgress => "in_progress",
        };
        let Some(request) = record.accepted else {
            trace.notes.push(
                "accepted before intake kept the request: its lines cannot be read back".into(),
            );
            return Ok(trace);
        };
        trace.exceptions = self
            .exceptions_where(&request.store, |e| {
                e.event_ids.iter().any(|id| id == webhook_id)
            })
            .await?;
        let mut accepted = Accepted {
            store: request.store.clone(),
            event_type: request.event_type.clone(),
            received_at_ms: request.received_at_ms,
            webhook_timestamp: request.webhook_timestamp.clone(),
            intake_status: intake_status.to_string(),
            occurred_at_ms: None,
        };
        if record.status == IdempotencyStatus::InProgress {
            trace.notes.push(
                "intake has not finished accepting it (no 2xx yet): the sender will retry, or the lease runs out"
                    .into(),
            );
        }
        if request.event_type == "order.placed" {
            trace.notes.push(
                "a kiosk order: trace it with `shelfsync trace order <cloudshelf order id>`".into(),
            );
            trace.accepted = Some(accepted);
            return Ok(trace);
        }
        // Validated against the time it was received, as intake did.
        let event = match parse_stock_event(
            webhook_id,
            &request.body,
            &self.mappings,
            request.received_at_ms,
        ) {
            Ok(event) => event,
            Err(e) => {
                trace.notes.push(format!(
                    "the kept request no longer reads as a stock event ({e}); the mappings may have changed"
                ));
                trace.accepted = Some(accepted);
                return Ok(trace);
            }
        };
        accepted.occurred_at_ms = Some(event.occurred_at.timestamp_millis());
        trace.accepted = Some(accepted);
        let mut traced: Vec<LineTrace> = Vec::new();
        for (i, line) in event.lines.iter().enumerate() {
            let (sku, ean) = match &line.item {
                ItemRef::Sku(s) => (Some(s.clone()), line.ean.clone()),
                ItemRef::Ean(e) => (None, Some(e.clone())),
            };
            // A marker written before markers named their row cannot be read back; the other lines still can.
            let marker = self
                .markers
                .applied_marker(&format!("{webhook_id}#{i}"))
                .await;
            let mut out = LineTrace {
                line: i as u32,
                sku,
                ean,
                quantity: line.quantity,
                resolved_to: None,
                merged_into_line: None,
                stage: LineStage::NotApplied,
                version: None,
                applied_at_ms: None,
                detail: String::new(),
                row: None,
                push: None,
                accepted_to_centra_ms: None,
                occurred_to_centra_ms: None,
            };
            let marker = match marker {
                Ok(marker) => marker,
                Err(e) => {
                    out.stage = LineStage::Unknown;
                    out.detail = format!(
                        "its applied marker cannot be read ({e}); `shelfsync trace item` shows the row"
                    );
                    traced.push(out);
                    continue;
                }
            };
            let Some(marker) = marker else {
                // Intake sums lines naming the same item into one movement keyed by the first of them.
                if let Some(first) = traced.iter().find(|t| {
                    t.merged_into_line.is_none()
                        && ((t.sku.is_some() && t.sku == out.sku)
                            || (t.sku.is_none() && t.ean.is_some() && t.ean == out.ean))
                }) {
                    let mut merged = first.clone();
                    merged.line = out.line;
                    merged.quantity = out.quantity;
                    merged.merged_into_line = Some(first.line);
                    merged.detail = format!(
                        "same item as line {}: sent with it as one movement; {}",
                        first.line, first.detail
                    );
                    traced.push(merged);
                    continue;
                }
                out.detail = format!(
                    "not applied yet: waiting in the stock queue or its DLQ ({STOCK_DLQ_HINT}), unless it names the \
                     same Centra size as another line and was sent with it"
                );
                traced.push(out);
                continue;
            };
            out.resolved_to = Some(marker.item.clone());
            out.applied_at_ms = Some(marker.applied_at_ms);
            let (Ok(store), Some(item)) = (
                StoreCode::parse(&marker.store),
                ItemRef::from_key(&marker.item),
            ) else {
                out.detail = format!(
                    "applied to {} {}, a row this trace cannot read",
                    marker.store, marker.item
                );
                traced.push(out);
                continue;
            };
            let Some(row) = self.row(&store, &item, &mut trace.notes).await? else {
                out.detail = "applied, but its ledger row is gone".into();
                traced.push(out);
                continue;
            };
            out.row = Some(RowSummary::of(&row));
            let note = row
                .recent_movements
                .iter()
                .find(|m| m.event_id == webhook_id && m.line == i as u32);
            let version = match note {
                Some(MovementNote { version: None, .. }) => {
                    out.stage = LineStage::Stale;
                    out.detail = format!(
                        "ignored: older than the stock count applied for {} at {}; that count carries it to Centra",
                        row.item,
                        row.last_count
                            .map(|p| super::format_ms(p.occurred_at_ms))
                            .unwrap_or_else(|| "?".into())
                    );
                    traced.push(out);
                    continue;
                }
                Some(MovementNote {
                    version: Some(v), ..
                }) => *v,
                None => {
                    if !row.pending.iter().any(|p| p.event_id == webhook_id) {
                        trace.notes.push(format!(
                            "line {i}: the row no longer remembers this movement; taken as version {} (it may instead \
                             have been ignored as stale)",
                            marker.version
                        ));
                    }
                    marker.version
                }
            };
            out.version = Some(version);
            if row.pushed_version >= version {
                out.stage = LineStage::InCentra;
                out.push = self.push_through(&row, version, true).await?;
                match &out.push {
                    Some(p) => {
                        out.detail = format!("carried by push {}", p.push_id);
                        out.accepted_to_centra_ms = Some(p.recorded_at_ms - request.received_at_ms);
                        out.occurred_to_centra_ms = Some(p.recorded_at_ms - event.occurred_at.timestamp_millis());
                    }
                    None => {
                        out.detail = format!(
                            "in Centra (the row's pushed version is {}), but the row does not remember a push that \
                             carried it: one older than the last {MAX_RECENT_PUSHES} pushes, one from before pushes \
                             were recorded, movements that netted to zero, or a legacy row merged into this one",
                            row.pushed_version
                        )
                    }
                }
            } else {
                (out.stage, out.detail) = self.waiting_reason(&row);
            }
            traced.push(out);
        }
        trace.lines = traced;
        Ok(trace)
    }

    pub async fn trace_item(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        since_ms: Option<i64>,
    ) -> Result<ItemTrace, BackendError> {
        let mut notes = Vec::new();
        let warehouse_id = self
            .mappings
            .store(store.as_str())
            .map(|m| m.centra_warehouse_id);
        if warehouse_id.is_none() {
            notes.push(format!("store {store} is not in the mappings"));
        }
        let row = self.row(store, item, &mut notes).await?;
        let recent = |at: i64| since_ms.is_none_or(|s| at >= s);
        let mut trace = ItemTrace {
            store: store.to_string(),
            item: item.key(),
            warehouse_id,
            since_ms,
            row: row.as_ref().map(RowSummary::of),
            pending: Vec::new(),
            movements: Vec::new(),
            pushes: Vec::new(),
            centra_stock: CentraStock::NotAsked {
                reason: if self.centra.is_none() {
                    "no Centra client configured (CENTRA_API_URL)".into()
                } else {
                    "the store has no Centra warehouse in the mappings".into()
                },
            },
            exceptions: Vec::new(),
            notes,
        };
        let shown = row.as_ref().map_or(item.clone(), |r| r.item.clone());
        match &row {
            None => trace
                .notes
                .push(format!("no ledger row: {store} never reported {item}")),
            Some(row) => {
                trace.pending = row
                    .pending
                    .iter()
                    .filter(|p| recent(p.received_at_ms))
                    .cloned()
                    .collect();
                trace.movements = row
                    .recent_movements
                    .iter()
                    .filter(|m| recent(m.applied_at_ms))
                    .cloned()
                    .collect();
                for push in row.recent_pushes.iter().filter(|p| recent(p.at_ms)) {
                    trace.pushes.push(self.push_trace(row, push, false).await?);
                }
                if row.version > 0 && row.recent_movements.is_empty() {
                    trace.notes.push(
                        "the row predates movement history: only its counters and pending movements are known"
                            .into(),
                    );
                }
                if row.has_unpushed() {
                    trace.notes.push(self.waiting_reason(row).1);
                }
            }
        }
        let key = shown.key();
        let value = shown.value().to_string();
        trace.exceptions = self
            .exceptions_where(store.as_str(), |e| {
                e.item.as_deref() == Some(key.as_str()) || e.item.as_deref() == Some(&value)
            })
            .await?;
        if let (Some(centra), Some(wh)) = (&self.centra, warehouse_id) {
            trace.centra_stock = match centra.all_warehouse_stock(wh, 200).await {
                Ok(rows) => centra_stock_of(&rows, &shown),
                Err(e) => CentraStock::Failed {
                    message: e.to_string(),
                },
            };
        }
        Ok(trace)
    }

    pub async fn trace_order(&self, query: &str) -> Result<OrderTrace, BackendError> {
        let mut trace = OrderTrace {
            query: query.to_string(),
            cloudshelf_order_id: None,
            order: None,
            history: Vec::new(),
            lifecycle: Vec::new(),
            operator_actions: Vec::new(),
            exceptions: Vec::new(),
            notes: Vec::new(),
        };
        let Some(outbox) = &self.outbox else {
            trace
                .notes
                .push("kiosk orders are not configured here".into());
            return Ok(trace);
        };
        let mut record = outbox.get(query).await?;
        if record.is_none() {
            if let Ok(number) = query.parse::<u64>() {
                if let Some(id) = outbox.find_by_centra_order(number).await? {
                    record = outbox.get(&id).await?;
                }
            }
        }
        let Some(record) = record else {
            trace.notes.push(format!(
                "no kiosk order {query}: neither a Cloudshelf order id order-sync received nor a Centra order number \
                 it created (an order still in the orders queue or its DLQ has no record yet: `shelfsync dlq list orders`)"
            ));
            return Ok(trace);
        };
        trace.cloudshelf_order_id = Some(record.cloudshelf_order_id.clone());
        let accepted_at_ms = self
            .idempotency
            .get(&format!("store-event#{}", record.event_id))
            .await?
            .and_then(|r| r.accepted)
            .map(|a| a.received_at_ms);
        trace.notes.push(order_whereabouts(&record));
        if record.history.is_empty() {
            trace.notes.push(
                "written before state history was kept: only its creation and last update times are known".into(),
            );
        }
        for note in &record.lifecycle {
            let received_at_ms = self
                .idempotency
                .get(&format!("centra-event#{}", note.dedupe_key))
                .await?
                .and_then(|r| r.accepted)
                .map(|a| a.received_at_ms);
            trace.lifecycle.push(LifecycleTrace {
                note: note.clone(),
                received_at_ms,
            });
        }
        let id = record.cloudshelf_order_id.clone();
        trace.exceptions = self
            .exceptions_where(record.store.as_str(), |e| e.item.as_deref() == Some(&id))
            .await?;
        trace.history = record.history.clone();
        trace.operator_actions = record.operator_actions.clone();
        trace.order = Some(OrderSummary {
            store: record.store.to_string(),
            event_id: record.event_id,
            accepted_at_ms,
            state: record.state,
            attempts: record.attempts,
            centra_orders: record.centra_orders,
            centra_store_id: record.centra_store_id,
            reported_status: record.reported_status,
            exception: record.exception,
            created_at_ms: record.created_at_ms,
            updated_at_ms: record.updated_at_ms,
            first_attempt_at_ms: record.first_attempt_at_ms,
        });
        Ok(trace)
    }
}

/// What an order's state means for someone waiting on it.
fn order_whereabouts(record: &OutboxRecord) -> String {
    let id = &record.cloudshelf_order_id;
    match record.state {
        OutboxState::Received => format!(
            "received, not in Centra yet: waiting in the orders queue for order-sync, or in its DLQ (`shelfsync dlq list orders`); {} attempt(s) so far",
            record.attempts
        ),
        OutboxState::Injecting => "a Centra create was sent and its outcome is not recorded yet: the next attempt looks the order up by its tag before creating".into(),
        OutboxState::Injected => "Centra holds it; Cloudshelf has not been told yet (order-sync retries from the orders queue)".into(),
        OutboxState::Reported => format!(
            "done: Cloudshelf was told {}",
            record.reported_status.as_deref().unwrap_or("?")
        ),
        OutboxState::Exception => format!(
            "parked in exception: {}; fix it, then `shelfsync orders retry {id}`",
            record.exception.as_deref().unwrap_or("(no reason recorded)")
        ),
    }
}

fn centra_stock_of(rows: &[CentraStockRow], item: &ItemRef) -> CentraStock {
    let found = rows.iter().find(|r| match item {
        ItemRef::Sku(s) => &r.sku == s,
        ItemRef::Ean(e) => r.ean.as_deref() == Some(e),
    });
    match found {
        Some(r) => CentraStock::Found {
            size_id: r.size_id,
            physical: r.physical,
            free_to_allocate: r.free_to_allocate,
        },
        None => CentraStock::Absent,
    }
}

/// `2d`, `36h`, `90m`, `45s` → milliseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (s, m, h, d), e.g. 2d"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then s, m, h or d"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_the_units_operators_type() {
        assert_eq!(parse_since("2d"), Ok(2 * 86_400_000));
        assert_eq!(parse_since("90m"), Ok(90 * 60_000));
        assert!(parse_since("2").is_err());
        assert!(parse_since("2w").is_err());
    }

    #[test]
    fn a_trace_reads_back_as_it_was_written() {
        let trace = Trace::Item(ItemTrace {
            store: "LDN-01".into(),
            item: "sku:A".into(),
            warehouse_id: Some(1),
            since_ms: None,
            row: None,
            pending: Vec::new(),
            movements: Vec::new(),
            pushes: Vec::new(),
            centra_stock: CentraStock::Found {
                size_id: 3,
                physical: 4,
                free_to_allocate: 2,
            },
            exceptions: Vec::new(),
            notes: vec!["x".into()],
        });
        let text = serde_json::to_string(&trace).unwrap();
        assert_eq!(serde_json::from_str::<Trace>(&text).unwrap(), trace);
    }
}
