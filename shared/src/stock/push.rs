//! Stage 2 of stock sync: push what the ledger holds but Centra has not received, coalesced per store
//! warehouse (one mutation carries many sizes, each at most once), paced by one mutation budget shared by every
//! instance.
//!
//! Exactly-once towards Centra:
//! 1. each row is leased to one push (`push_id`) with a conditional write, so one key is pushed by one
//!    worker at a time;
//! 2. a push record listing every mutation is written *before* the first call, and again before any
//!    mutation that a refusal split off is sent; each mutation's `description` (Centra's `comment`) carries
//!    `push <id>/<index>`;
//! 3. after the call the rows record what Centra holds and the lease is released.
//!
//! A crash or a lost response leaves the lease and a `Pending` mutation behind. Whoever next finds the
//! expired lease looks the mutation up in the warehouse's stock-change audit trail (by its comment): found
//! means applied (record it, with Centra's change id), absent means not applied (release; the units are still
//! pending). An answer that settles neither keeps the row leased and is asked again; after a bound the row is
//! parked for an operator — never resent blindly.
//!
//! Centra's answer is read line by line: a line named by `userErrors` was refused, one named by
//! `userWarnings` was skipped; either is parked as an exception and the rest counts as applied. Poison costs a
//! bounded number of mutations: a named line is split off at once, bisection runs only when Centra names none,
//! and is capped.

use crate::centra::{
    AuditLookup, CentraClient, CentraError, Direction, FoundChange, MutationReply, UserIssue,
};
use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::stock::identity::{canonical, ItemCatalogue, Lookup};
use crate::stock::ledger::{
    mark_pushed, pending_change, release_lease, settle_zero_net, take_posted_dropped_dates,
    ChangeKind, Lease, LedgerRow, MutationStatus, PendingMovement, PushLine, PushMutation,
    PushRecord, SkippedLine, UnresolvedPush,
};
use crate::stock::ports::{
    BudgetDecision, DirtyKey, ExceptionLog, ExceptionRecord, LedgerStore, MutationBudget, PushLog,
    PushQueue,
};
use crate::telemetry::metrics::{names, Metrics};
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PushSettings {
    /// How long a push owns its rows. Must exceed the Centra HTTP timeout and the function timeout.
    pub lease_ms: i64,
    pub max_lines_per_mutation: usize,
    pub record_ttl_s: i64,
    /// Attempts for a request that did not reach Centra (connection refused).
    pub max_send_attempts: u32,
    /// Mutations one push may add by halving a refusal Centra did not attribute to a line; past it, the lines
    /// of such a refusal are parked.
    pub max_split_mutations: usize,
    /// Audit-trail answers that settle nothing before a row is parked for an operator.
    pub max_unresolved_checks: u32,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            lease_ms: 150_000,
            max_lines_per_mutation: 200,
            record_ttl_s: 15 * 24 * 3600,
            max_send_attempts: 3,
            max_split_mutations: 24,
            max_unresolved_checks: 12,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushReport {
    /// Keys whose push failed for now: their queue messages should be redelivered.
    pub failed_keys: Vec<DirtyKey>,
    pub mutations_applied: u32,
    pub lines_applied: usize,
    /// Lines Centra refused or skipped (parked as exceptions).
    pub lines_rejected: usize,
    /// Centra write time minus `occurred_at`, per movement that reached Centra.
    pub lags_ms: Vec<i64>,
    /// Centra write time minus the time intake accepted the movement.
    pub since_accepted_ms: Vec<i64>,
}

impl PushReport {
    fn merge(&mut self, other: PushReport) {
        self.failed_keys.extend(other.failed_keys);
        self.mutations_applied += other.mutations_applied;
        self.lines_applied += other.lines_applied;
        self.lines_rejected += other.lines_rejected;
        self.lags_ms.extend(other.lags_ms);
        self.since_accepted_ms.extend(other.since_accepted_ms);
    }

    fn retry(&mut self, store: &StoreCode, item: &ItemRef) {
        self.failed_keys.push(DirtyKey {
            store: store.clone(),
            item: item.clone(),
        });
    }
}

pub struct StockPusher {
    pub ledger: Arc<dyn LedgerStore>,
    pub push_log: Arc<dyn PushLog>,
    pub exceptions: Arc<dyn ExceptionLog>,
    pub budget: Arc<dyn MutationBudget>,
    pub push_queue: Arc<dyn PushQueue>,
    pub centra: CentraClient,
    /// Centra's sizes: legacy rows named by EAN are merged into their SKU rows, and no mutation names one size
    /// twice.
    pub catalogue: Arc<ItemCatalogue>,
    pub mappings: Arc<Mappings>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub settings: PushSettings,
    pub finance: crate::finance::FinanceHooks,
}

enum LeaseResult {
    Leased(PushLine),
    NothingToPush,
    Blocked,
    /// Another push holds the row (or its outcome is still being settled) until this time.
    Busy(i64),
}

/// What became of one mutation.
#[derive(Debug, Clone, PartialEq)]
enum MutationOutcome {
    /// Centra holds every line except `skipped` (line index, Centra's message), which it refused or skipped.
    Applied {
        change_id: Option<String>,
        skipped: Vec<(usize, String)>,
    },
    /// Definitely not applied; the units stay pending.
    NotApplied(String),
    /// Centra refused these lines (indices into the mutation) and applied nothing.
    Refused(Vec<(usize, String)>),
    /// Centra refused the mutation without saying which line; nothing was applied.
    Bisect(String),
    /// Unknown whether applied and not settled by the audit trail yet: resolved after the lease ends.
    Unresolved,
}

/// How Centra's reply reads before any audit-trail check.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Settled(MutationOutcome),
    /// Centra applied something but did not say which lines it skipped (or gave no change id): its audit
    /// trail tells.
    CheckTrail {
        skipped: Vec<(usize, String)>,
        why: String,
    },
}

/// Splits Centra's issues into the lines they name and the ones that name none. A one-line mutation's issues
/// are that line's.
fn attribute(lines: usize, issues: &[UserIssue]) -> (Vec<(usize, String)>, Vec<String>) {
    let mut named: BTreeMap<usize, String> = BTreeMap::new();
    let mut loose = Vec::new();
    for issue in issues {
        match issue.line_index().filter(|i| *i < lines) {
            Some(i) => {
                named.entry(i).or_insert_with(|| issue.message.clone());
            }
            None if lines == 1 => {
                named.entry(0).or_insert_with(|| issue.message.clone());
            }
            None => loose.push(issue.message.clone()),
        }
    }
    (named.into_iter().collect(), loose)
}

fn union(mut a: Vec<(usize, String)>, b: Vec<(usize, String)>) -> Vec<(usize, String)> {
    for (i, m) in b {
        if !a.iter().any(|(j, _)| *j == i) {
            a.push((i, m));
        }
    }
    a.sort_by_key(|(i, _)| *i);
    a
}

/// Reads Centra's reply to one mutation of `lines` lines, line by line.
fn read_reply(lines: usize, reply: &MutationReply) -> Reading {
    let change = reply.stock_change_ids.first().cloned();
    let (warned, loose_warnings) = attribute(lines, &reply.user_warnings);
    if !reply.user_errors.is_empty() {
        let (refused, loose_errors) = attribute(lines, &reply.user_errors);
        if change.is_none() {
            // Nothing applied. Split off what Centra named; halve only when it named nothing.
            return Reading::Settled(if refused.is_empty() {
                MutationOutcome::Bisect(loose_errors.join("; "))
            } else {
                MutationOutcome::Refused(refused)
            });
        }
        let skipped = union(refused, warned);
        if loose_errors.is_empty() && loose_warnings.is_empty() {
            return Reading::Settled(MutationOutcome::Applied {
                change_id: change,
                skipped,
            });
        }
        return Reading::CheckTrail {
            skipped,
            why: loose_errors
                .into_iter()
                .chain(loose_warnings)
                .collect::<Vec<_>>()
                .join("; "),
        };
    }
    if warned.len() == lines {
        // Every line skipped: Centra changed nothing, whatever it says about a change.
        return Reading::Settled(MutationOutcome::Applied {
            change_id: change,
            skipped: warned,
        });
    }
    match (change, loose_warnings.is_empty()) {
        (Some(id), true) => Reading::Settled(MutationOutcome::Applied {
            change_id: Some(id),
            skipped: warned,
        }),
        (None, _) => Reading::CheckTrail {
            skipped: warned,
            why: "Centra returned no stock change id".into(),
        },
        (Some(_), false) => Reading::CheckTrail {
            skipped: warned,
            why: loose_warnings.join("; "),
        },
    }
}

/// Lines of a change mutation that Centra's stock change does not hold. For `setStock` a size set to the level
/// it had may leave no line, so absence proves nothing there; a change listing no lines says nothing either.
fn absent_lines(
    kind: ChangeKind,
    lines: &[PushLine],
    change: &FoundChange,
) -> Vec<(usize, String)> {
    if kind == ChangeKind::Set || change.lines.is_empty() {
        return Vec::new();
    }
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !change.lines.iter().any(|c| c.names(&l.item)))
        .map(|(i, _)| (i, format!("not in Centra's stock change {}", change.id)))
        .collect()
}

fn delay_seconds(until_ms: i64, now_ms: i64) -> u32 {
    ((until_ms - now_ms).max(0) / 1000 + 1).min(900) as u32
}

/// What recovering an abandoned lease came to.
enum Recovery {
    /// The row is free again (or parked).
    Done,
    /// Not settled yet; look again at this time.
    Wait(i64),
}

impl StockPusher {
    /// Pushes the given keys; `deadline_ms` is when this invocation must have returned.
    pub async fn push_keys(&self, keys: Vec<DirtyKey>, deadline_ms: i64) -> PushReport {
        // The pusher only reads its catalogue from memory (legacy EAN rows, one line per size), and in Lambda no
        // intake fills it: load the snapshot on the first push rather than at start-up (cold start).
        self.catalogue.preload().await;
        let mut by_store: BTreeMap<StoreCode, BTreeSet<ItemRef>> = BTreeMap::new();
        for k in keys {
            by_store.entry(k.store).or_default().insert(k.item);
        }
        let mut report = PushReport::default();
        let runs = by_store
            .into_iter()
            .map(|(store, items)| self.push_store(store, items, deadline_ms));
        for r in join_all(runs).await {
            report.merge(r);
        }
        for lag in &report.lags_ms {
            self.metrics.observe_ms(names::SYNC_LAG, *lag);
        }
        report
    }

    /// One store: merge legacy names → lease → one line per size → plan → send and settle.
    async fn push_store(
        &self,
        store: StoreCode,
        items: BTreeSet<ItemRef>,
        deadline_ms: i64,
    ) -> PushReport {
        let mut report = PushReport::default();
        let Some(mapping) = self.mappings.store(store.as_str()) else {
            // The store was removed from the mappings after its events were accepted: keep the ledger,
            // tell an operator.
            self.record_exception(
                &store,
                None,
                "unmapped_store",
                format!("store {store} is no longer in the mappings"),
                vec![],
                None,
            )
            .await;
            return report;
        };
        let items = self.merge_legacy_names(&store, items).await;
        let push_id = uuid::Uuid::new_v4().simple().to_string();
        let leased = self.lease_all(&store, items, &push_id, &mut report).await;
        let lines = self
            .one_line_per_size(&store, leased, &push_id, &mut report)
            .await;
        if lines.is_empty() {
            return report;
        }
        let mut record = self.plan(&store, mapping.centra_warehouse_id, &push_id, lines);
        if let Err(e) = self.push_log.put(&record).await {
            tracing::error!(%store, error = %e, "could not write push record; nothing sent");
            for line in record.mutations.iter().flat_map(|m| &m.lines) {
                let _ = self.finish_row(&store, &line.item, &push_id, None).await;
                report.retry(&store, &line.item);
            }
            return report;
        }
        self.send_and_settle(&mut record, deadline_ms, &mut report)
            .await;
        report
    }

    /// Rows named by an EAN whose size has a SKU (kept from before intake resolved names) are merged into the
    /// SKU row first, so one size never goes out under two names.
    async fn merge_legacy_names(
        &self,
        store: &StoreCode,
        items: BTreeSet<ItemRef>,
    ) -> BTreeSet<ItemRef> {
        let mut out = BTreeSet::new();
        for item in items {
            let target = match self.catalogue.cached(&item) {
                Some(Lookup::Known(size)) => canonical(&size).filter(|c| c != &item),
                _ => None,
            };
            let Some(target) = target else {
                out.insert(item);
                continue;
            };
            match crate::stock::identity::merge_legacy_row(
                self.ledger.as_ref(),
                &self.finance,
                store,
                &item,
                &target,
                self.clock.now_millis(),
            )
            .await
            {
                Ok(true) => {
                    tracing::info!(%store, from = %item, into = %target, "legacy ledger row merged");
                    out.insert(target);
                }
                // Leased or parked: it goes its old way this time; `one_line_per_size` keeps it out of a
                // mutation that names its size already.
                Ok(false) => {
                    out.insert(item);
                    out.insert(target);
                }
                Err(e) => {
                    tracing::warn!(%store, item = %item, error = %e, "legacy ledger row not merged yet");
                    out.insert(item);
                }
            }
        }
        out
    }

    /// Leases every row with something to push; rows another push holds are looked at again after its lease.
    async fn lease_all(
        &self,
        store: &StoreCode,
        items: BTreeSet<ItemRef>,
        push_id: &str,
        report: &mut PushReport,
    ) -> Vec<PushLine> {
        let mut lines = Vec::new();
        let mut busy = Vec::new();
        for item in items {
            match self.lease(store, &item, push_id).await {
                Ok(LeaseResult::Leased(line)) => lines.push(line),
                Ok(LeaseResult::NothingToPush) | Ok(LeaseResult::Blocked) => {}
                Ok(LeaseResult::Busy(until)) => busy.push((item, until)),
                Err(e) => {
                    tracing::warn!(%store, %item, error = %e, "could not lease ledger row");
                    report.retry(store, &item);
                }
            }
        }
        // A holder that crashed re-queues nothing: look again once its lease has ended.
        let now = self.clock.now_millis();
        for (item, until) in busy {
            self.look_again(store, item, delay_seconds(until, now), report)
                .await;
        }
        lines
    }

    /// Marks the key dirty again after `delay_seconds`; if even that fails, the caller's message comes back.
    async fn look_again(
        &self,
        store: &StoreCode,
        item: ItemRef,
        delay_seconds: u32,
        report: &mut PushReport,
    ) {
        let key = DirtyKey {
            store: store.clone(),
            item,
        };
        if self
            .push_queue
            .mark_dirty(std::slice::from_ref(&key), delay_seconds)
            .await
            .is_err()
        {
            report.failed_keys.push(key);
        }
    }

    /// Centra skips a size named twice in one mutation: keep one line per size (by Centra size id where the
    /// catalogue knows it) and push the others in a later round.
    async fn one_line_per_size(
        &self,
        store: &StoreCode,
        lines: Vec<PushLine>,
        push_id: &str,
        report: &mut PushReport,
    ) -> Vec<PushLine> {
        let mut seen = HashSet::new();
        let mut kept = Vec::with_capacity(lines.len());
        for line in lines {
            let size_key = match self.catalogue.cached(&line.item) {
                Some(Lookup::Known(size)) => format!("size:{}", size.id),
                _ => line.item.key(),
            };
            if seen.insert(size_key) {
                kept.push(line);
                continue;
            }
            tracing::warn!(%store, item = %line.item, "size already in this push under another name; deferred");
            let _ = self.finish_row(store, &line.item, push_id, None).await;
            self.look_again(store, line.item, 1, report).await;
        }
        kept
    }

    /// One record: per kind (decrease, increase, set), chunks of at most `max_lines_per_mutation` lines.
    fn plan(
        &self,
        store: &StoreCode,
        warehouse_id: u64,
        push_id: &str,
        lines: Vec<PushLine>,
    ) -> PushRecord {
        let now = self.clock.now_millis();
        let mut record = PushRecord {
            push_id: push_id.to_string(),
            store: store.clone(),
            warehouse_id,
            created_at_ms: now,
            expires_at_s: now.div_euclid(1000) + self.settings.record_ttl_s,
            mutations: Vec::new(),
        };
        for kind in [ChangeKind::Decrease, ChangeKind::Increase, ChangeKind::Set] {
            let of_kind: Vec<PushLine> = lines.iter().filter(|l| l.kind == kind).cloned().collect();
            for chunk in of_kind.chunks(self.settings.max_lines_per_mutation.max(1)) {
                record.add_mutation(kind, chunk.to_vec());
            }
        }
        record
    }

    /// Sends the record's pending mutations one by one (splits are appended and sent in turn) and settles
    /// each one's rows by its outcome.
    async fn send_and_settle(
        &self,
        record: &mut PushRecord,
        deadline_ms: i64,
        report: &mut PushReport,
    ) {
        let mut split_mutations = 0usize;
        let mut next = 0;
        while next < record.mutations.len() {
            let index = next;
            next += 1;
            if record.mutations[index].status != MutationStatus::Pending {
                continue;
            }
            let outcome = self.execute(record, index, deadline_ms).await;
            let mutation = record.mutations[index].clone();
            match outcome {
                MutationOutcome::Applied { change_id, skipped } => {
                    self.record_applied(record, index, change_id, &skipped, report)
                        .await;
                }
                MutationOutcome::NotApplied(reason) => {
                    self.release_not_applied(record, index, &mutation, &reason, report)
                        .await;
                }
                MutationOutcome::Refused(bad) => {
                    self.resend_unrefused_lines(record, index, &mutation, &bad, report)
                        .await;
                }
                MutationOutcome::Bisect(message) => {
                    self.bisect_refused(
                        record,
                        index,
                        &mutation,
                        &message,
                        &mut split_mutations,
                        report,
                    )
                    .await;
                }
                MutationOutcome::Unresolved => {
                    self.requeue_unresolved(&record.store, &mutation, report)
                        .await;
                }
            }
        }
    }

    /// An applied mutation: recorded with what Centra skipped, then its rows settled.
    async fn record_applied(
        &self,
        record: &mut PushRecord,
        index: usize,
        change_id: Option<String>,
        skipped: &[(usize, String)],
        report: &mut PushReport,
    ) {
        let m = &mut record.mutations[index];
        m.status = MutationStatus::Applied;
        m.change_id = change_id;
        m.skipped = skipped
            .iter()
            .map(|(i, message)| SkippedLine {
                line: *i as u32,
                message: message.clone(),
            })
            .collect();
        let mutation = m.clone();
        // Best effort: recovery finds the same from the audit trail.
        self.save_record(record).await;
        report.mutations_applied += 1;
        let (store, push_id) = (record.store.clone(), record.push_id.clone());
        self.settle_applied(&store, &push_id, &mutation, report)
            .await;
    }

    /// A mutation definitely not applied: its rows are released and their keys retried.
    async fn release_not_applied(
        &self,
        record: &mut PushRecord,
        index: usize,
        mutation: &PushMutation,
        reason: &str,
        report: &mut PushReport,
    ) {
        let store = record.store.clone();
        let push_id = record.push_id.clone();
        record.mutations[index].status = MutationStatus::NotApplied;
        self.save_record(record).await;
        tracing::warn!(%store, push_id, index, %reason, "mutation not applied; keys will be retried");
        for line in &mutation.lines {
            let _ = self.finish_row(&store, &line.item, &push_id, None).await;
            report.retry(&store, &line.item);
        }
    }

    /// Centra refused named lines: they are parked, the rest go out again as a new mutation.
    async fn resend_unrefused_lines(
        &self,
        record: &mut PushRecord,
        index: usize,
        mutation: &PushMutation,
        bad: &[(usize, String)],
        report: &mut PushReport,
    ) {
        let store = record.store.clone();
        let push_id = record.push_id.clone();
        record.mutations[index].status = MutationStatus::Split;
        for (i, message) in bad {
            let line = &mutation.lines[*i];
            self.park(
                &store,
                line,
                &push_id,
                "centra_rejected_line",
                message,
                report,
            )
            .await;
        }
        let bad: BTreeSet<usize> = bad.iter().map(|(i, _)| *i).collect();
        let good: Vec<PushLine> = mutation
            .lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains(i))
            .map(|(_, l)| l.clone())
            .collect();
        // Centra applied none of it; resend the lines it had no objection to.
        let first_new = record.mutations.len();
        if !good.is_empty() {
            record.add_mutation(mutation.kind, good);
        }
        self.record_split(record, first_new, report).await;
    }

    /// Centra refused the mutation without naming a line: it goes out again in halves, up to the cap on
    /// split mutations (`split_mutations` counts those of this push).
    async fn bisect_refused(
        &self,
        record: &mut PushRecord,
        index: usize,
        mutation: &PushMutation,
        message: &str,
        split_mutations: &mut usize,
        report: &mut PushReport,
    ) {
        let store = record.store.clone();
        let push_id = record.push_id.clone();
        record.mutations[index].status = MutationStatus::Split;
        let half = mutation.lines.len().div_ceil(2).max(1);
        let parts = mutation.lines.len().div_ceil(half);
        if *split_mutations + parts > self.settings.max_split_mutations {
            // Halving costs Centra's budget: past the cap the lines are parked with Centra's words.
            for line in &mutation.lines {
                let kind = "centra_refused_unattributed";
                self.park(&store, line, &push_id, kind, message, report)
                    .await;
            }
            self.save_record(record).await;
            return;
        }
        tracing::warn!(%store, push_id, index, %message, "Centra refused a mutation without naming the line; splitting");
        *split_mutations += parts;
        let first_new = record.mutations.len();
        for part in mutation.lines.chunks(half) {
            record.add_mutation(mutation.kind, part.to_vec());
        }
        self.record_split(record, first_new, report).await;
    }

    /// Unknown whether applied: leave lease and record as they are; look again after the lease ends.
    async fn requeue_unresolved(
        &self,
        store: &StoreCode,
        mutation: &PushMutation,
        report: &mut PushReport,
    ) {
        let now = self.clock.now_millis();
        let keys: Vec<DirtyKey> = mutation
            .lines
            .iter()
            .map(|l| DirtyKey {
                store: store.clone(),
                item: l.item.clone(),
            })
            .collect();
        let delay = delay_seconds(now + self.settings.lease_ms, now);
        if self.push_queue.mark_dirty(&keys, delay).await.is_err() {
            report.failed_keys.extend(keys);
        }
    }

    /// Mutations split off a refusal are sent only once the record names them: otherwise a recovery would
    /// know only the refused mutation and could not tell what the new ones applied. If the record cannot be
    /// written, they are not sent (the refusal applied nothing, so their rows are simply released).
    async fn record_split(
        &self,
        record: &mut PushRecord,
        first_new: usize,
        report: &mut PushReport,
    ) {
        if self.save_record(record).await {
            return;
        }
        for m in &mut record.mutations[first_new..] {
            m.status = MutationStatus::NotApplied;
            for line in &m.lines {
                let _ = self
                    .finish_row(&record.store, &line.item, &record.push_id, None)
                    .await;
                report.retry(&record.store, &line.item);
            }
        }
    }

    /// Records what an applied mutation did on each row: Centra holds the line, or it skipped/refused it.
    async fn settle_applied(
        &self,
        store: &StoreCode,
        push_id: &str,
        mutation: &PushMutation,
        report: &mut PushReport,
    ) {
        for (i, line) in mutation.lines.iter().enumerate() {
            if let Some(skip) = mutation.skipped.iter().find(|s| s.line as usize == i) {
                self.park(
                    store,
                    line,
                    push_id,
                    "centra_skipped_line",
                    &skip.message,
                    report,
                )
                .await;
                continue;
            }
            match self
                .finish_row(store, &line.item, push_id, Some(line))
                .await
            {
                Ok(covered) => {
                    report.lines_applied += 1;
                    let now = self.clock.now_millis();
                    report
                        .lags_ms
                        .extend(covered.iter().map(|m| now - m.occurred_at_ms));
                    report
                        .since_accepted_ms
                        .extend(covered.iter().map(|m| now - m.received_at_ms));
                }
                // Centra holds it; once the lease ends, the redelivered key's recovery finds the Applied
                // record (or the audit trail) and records it.
                Err(e) => {
                    tracing::warn!(%store, item = %line.item, error = %e, "could not record applied push");
                    report.retry(store, &line.item);
                }
            }
        }
    }

    async fn execute(
        &self,
        record: &PushRecord,
        index: usize,
        deadline_ms: i64,
    ) -> MutationOutcome {
        let mutation = &record.mutations[index];
        let description = record.description(mutation.index);
        let payload: Vec<(ItemRef, i64)> = mutation
            .lines
            .iter()
            .map(|l| (l.item.clone(), l.quantity))
            .collect();
        let mut attempts = 0;
        // Never before a `Retry-After` this push was given, whatever the shared budget says.
        let mut not_before = 0i64;
        loop {
            if let Err(reason) = self.wait_for_budget(deadline_ms, not_before).await {
                return MutationOutcome::NotApplied(reason);
            }
            attempts += 1;
            let result = self
                .send_mutation(record, mutation, &description, &payload)
                .await;
            match result {
                Ok(reply) => return self.outcome_of_reply(record, index, &reply).await,
                Err(CentraError::RateLimited { retry_at_ms }) => {
                    self.metrics.count(names::CENTRA_RATE_LIMITED, 1);
                    let until = retry_at_ms.unwrap_or_else(|| self.clock.now_millis() + 10_000);
                    not_before = not_before.max(until);
                    if let Err(e) = self.budget.block_until(until).await {
                        tracing::warn!(error = %e, "could not share the 429 pause");
                    }
                    continue;
                }
                Err(CentraError::NotSent(e)) if attempts < self.settings.max_send_attempts => {
                    tracing::warn!(error = %e, attempts, "Centra unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                    continue;
                }
                Err(CentraError::Rejected(message)) => {
                    // Our request does not fit this Centra (schema or permissions): every retry would fail the
                    // same way until the deployment is fixed. Nothing was applied; the units stay pending.
                    tracing::error!(store = %record.store, %message, "Centra refused the stock mutation request itself");
                    return MutationOutcome::NotApplied(message);
                }
                Err(CentraError::Uncertain { detail, settled }) => {
                    self.metrics.count(names::CENTRA_UNCERTAIN, 1);
                    tracing::warn!(store = %record.store, push_id = %record.push_id, index, %detail, settled, "uncertain Centra outcome; checking audit trail");
                    match self.audit(record, mutation).await {
                        Some(AuditLookup::Found(change)) => {
                            self.metrics.count(names::CENTRA_MUTATIONS, 1);
                            return MutationOutcome::Applied {
                                skipped: absent_lines(mutation.kind, &mutation.lines, &change),
                                change_id: Some(change.id),
                            };
                        }
                        // Centra finished with it and did not apply it: a transient failure, retry with backoff.
                        Some(AuditLookup::NotApplied)
                            if settled && attempts < self.settings.max_send_attempts =>
                        {
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts)))
                                .await;
                            continue;
                        }
                        // It may still land: only the lease's end makes a resend safe.
                        _ => return MutationOutcome::Unresolved,
                    }
                }
                Err(e) => return MutationOutcome::NotApplied(e.to_string()),
            }
        }
    }

    /// One call to Centra for the mutation, timed.
    async fn send_mutation(
        &self,
        record: &PushRecord,
        mutation: &PushMutation,
        description: &str,
        payload: &[(ItemRef, i64)],
    ) -> Result<MutationReply, CentraError> {
        let started = std::time::Instant::now();
        let result = match mutation.kind {
            ChangeKind::Decrease => {
                self.centra
                    .change_stock(record.warehouse_id, Direction::Out, description, payload)
                    .await
            }
            ChangeKind::Increase => {
                self.centra
                    .change_stock(record.warehouse_id, Direction::In, description, payload)
                    .await
            }
            ChangeKind::Set => {
                self.centra
                    .set_stock(record.warehouse_id, description, payload)
                    .await
            }
        };
        self.metrics.observe_ms(
            names::CENTRA_MUTATION_LATENCY,
            started.elapsed().as_millis() as i64,
        );
        result
    }

    /// What Centra's answer to mutation `index` says was applied, from its audit trail when the answer does
    /// not say.
    async fn outcome_of_reply(
        &self,
        record: &PushRecord,
        index: usize,
        reply: &MutationReply,
    ) -> MutationOutcome {
        let mutation = &record.mutations[index];
        self.metrics.count(names::CENTRA_MUTATIONS, 1);
        if !reply.graphql_errors.is_empty() {
            tracing::warn!(store = %record.store, push_id = %record.push_id, index, errors = ?reply.graphql_errors, "Centra errors beside the mutation's payload");
        }
        match read_reply(mutation.lines.len(), reply) {
            Reading::Settled(outcome) => outcome,
            Reading::CheckTrail { skipped, why } => {
                tracing::warn!(store = %record.store, push_id = %record.push_id, index, %why, "Centra's answer does not say which lines it applied; checking its audit trail");
                match self.audit(record, mutation).await {
                    Some(AuditLookup::Found(change)) => MutationOutcome::Applied {
                        skipped: union(
                            skipped,
                            absent_lines(mutation.kind, &mutation.lines, &change),
                        ),
                        change_id: Some(change.id),
                    },
                    Some(AuditLookup::NotApplied) => {
                        MutationOutcome::NotApplied(format!("Centra made no stock change ({why})"))
                    }
                    _ => MutationOutcome::Unresolved,
                }
            }
        }
    }

    /// The audit trail's answer for one mutation; `None` when Centra could not be asked.
    async fn audit(&self, record: &PushRecord, mutation: &PushMutation) -> Option<AuditLookup> {
        let marker = PushRecord::marker(&record.push_id, mutation.index);
        match self
            .centra
            .find_push_change(record.warehouse_id, &marker)
            .await
        {
            Ok(lookup) => {
                if let AuditLookup::Inconclusive(why) = &lookup {
                    tracing::error!(store = %record.store, %marker, %why, "audit trail answer settles nothing");
                }
                Some(lookup)
            }
            Err(e) => {
                tracing::warn!(store = %record.store, %marker, error = %e, "audit trail not readable now");
                None
            }
        }
    }

    async fn wait_for_budget(&self, deadline_ms: i64, not_before: i64) -> Result<(), String> {
        loop {
            let now = self.clock.now_millis();
            if not_before > now {
                if not_before >= deadline_ms {
                    return Err("Centra's Retry-After ends after the deadline".into());
                }
                tokio::time::sleep(Duration::from_millis((not_before - now) as u64)).await;
                continue;
            }
            match self.budget.try_acquire(now).await {
                Ok(BudgetDecision::Granted) => return Ok(()),
                Ok(BudgetDecision::WaitUntil(t)) if t < deadline_ms => {
                    tokio::time::sleep(Duration::from_millis((t - now).max(1) as u64)).await;
                }
                Ok(BudgetDecision::WaitUntil(_)) => {
                    return Err("mutation budget exhausted until after the deadline".into())
                }
                Err(e) => return Err(format!("mutation budget unavailable: {e}")),
            }
        }
    }

    async fn lease(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        push_id: &str,
    ) -> Result<LeaseResult, BackendError> {
        for _ in 0..10 {
            let Some(mut row) = self.ledger.get(store, item).await? else {
                return Ok(LeaseResult::NothingToPush);
            };
            let now = self.clock.now_millis();
            if let Some(lease) = row.lease.clone() {
                if lease.until_ms >= now {
                    return Ok(LeaseResult::Busy(lease.until_ms));
                }
                match self.recover(store, item, &lease).await? {
                    Recovery::Done => continue,
                    Recovery::Wait(until) => return Ok(LeaseResult::Busy(until)),
                }
            }
            if row.retired_into.is_some() && row.merge.is_none() {
                return Ok(LeaseResult::NothingToPush);
            }
            if row.blocked.is_some() {
                return Ok(LeaseResult::Blocked);
            }
            let Some(line) = pending_change(&row) else {
                if !row.pending.is_empty() {
                    let rev = row.rev;
                    let settled = settle_zero_net(&mut row, now);
                    let Some(dropped) = self.dropped_postings(&mut row).await? else {
                        continue;
                    };
                    // Centra's number was already right (the movements cancel out): they count as posted.
                    self.finance
                        .posted(store, item, &settled, "net-zero", now)
                        .await?;
                    self.finance
                        .post_records(store, &dropped, "net-zero", now)
                        .await?;
                    if !self.ledger.put(&row, rev).await? {
                        continue;
                    }
                }
                return Ok(LeaseResult::NothingToPush);
            };
            let rev = row.rev;
            row.lease = Some(Lease {
                push_id: push_id.to_string(),
                until_ms: now + self.settings.lease_ms,
                checks: 0,
            });
            if self.ledger.put(&row, rev).await? {
                return Ok(LeaseResult::Leased(line));
            }
        }
        Ok(LeaseResult::Busy(self.clock.now_millis() + 1_000))
    }

    /// Resolves an abandoned lease from the push record or, when the record does not know, Centra's audit trail.
    async fn recover(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        lease: &Lease,
    ) -> Result<Recovery, BackendError> {
        let push_id = lease.push_id.as_str();
        let Some(mut record) = self.push_log.get(push_id).await? else {
            // No record: the push died before writing it, so nothing was sent.
            self.finish_row(store, item, push_id, None).await?;
            return Ok(Recovery::Done);
        };
        let Some(position) = record.mutation_position(item) else {
            self.finish_row(store, item, push_id, None).await?;
            return Ok(Recovery::Done);
        };
        if record.mutations[position].status == MutationStatus::Pending {
            if let Some(recovery) = self
                .settle_pending_from_trail(store, item, lease, &mut record, position)
                .await?
            {
                return Ok(recovery);
            }
        }
        self.finish_recovered(store, item, push_id, &record, position)
            .await
    }

    /// A pending mutation of an abandoned push, settled from Centra's audit trail: recorded applied or not
    /// applied (then `None`: the row is finished from the record), or the recovery's answer when the trail
    /// settles nothing.
    async fn settle_pending_from_trail(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        lease: &Lease,
        record: &mut PushRecord,
        position: usize,
    ) -> Result<Option<Recovery>, BackendError> {
        let push_id = lease.push_id.as_str();
        let mutation = record.mutations[position].clone();
        let marker = PushRecord::marker(push_id, mutation.index);
        match self
            .centra
            .find_push_change(record.warehouse_id, &marker)
            .await
        {
            Ok(AuditLookup::Found(change)) => {
                let m = &mut record.mutations[position];
                m.status = MutationStatus::Applied;
                m.skipped = absent_lines(mutation.kind, &mutation.lines, &change)
                    .into_iter()
                    .map(|(i, message)| SkippedLine {
                        line: i as u32,
                        message,
                    })
                    .collect();
                m.change_id = Some(change.id);
                self.push_log.put(record).await?;
                tracing::info!(%store, %item, push_id, index = mutation.index, "abandoned push found in the audit trail: applied");
            }
            Ok(AuditLookup::NotApplied) => {
                record.mutations[position].status = MutationStatus::NotApplied;
                self.push_log.put(record).await?;
                tracing::info!(%store, %item, push_id, index = mutation.index, "abandoned push not in the audit trail: not applied");
            }
            Ok(AuditLookup::Inconclusive(why)) => {
                return self
                    .unsettled(store, item, lease, record, position, &why)
                    .await
                    .map(Some)
            }
            Err(
                e @ (CentraError::GraphQl(_) | CentraError::Rejected(_) | CentraError::Protocol(_)),
            ) => {
                return self
                    .unsettled(store, item, lease, record, position, &e.to_string())
                    .await
                    .map(Some)
            }
            // Centra unreachable or busy: not a verdict, ask again shortly.
            Err(e) => {
                tracing::warn!(%store, %item, push_id, error = %e, "cannot resolve abandoned push yet");
                return Ok(Some(Recovery::Wait(self.clock.now_millis() + 30_000)));
            }
        }
        Ok(None)
    }

    /// Finishes the row of an abandoned push from its settled mutation: its line recorded as held by Centra,
    /// parked when Centra skipped it, or released when the mutation was not applied.
    async fn finish_recovered(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        push_id: &str,
        record: &PushRecord,
        position: usize,
    ) -> Result<Recovery, BackendError> {
        let mutation = record.mutations[position].clone();
        let (line_index, line) = mutation
            .lines
            .iter()
            .enumerate()
            .find(|(_, l)| &l.item == item)
            .map(|(i, l)| (i, l.clone()))
            .expect("mutation_position matched");
        match mutation.status {
            MutationStatus::Applied => {
                if let Some(skip) = mutation
                    .skipped
                    .iter()
                    .find(|s| s.line as usize == line_index)
                {
                    if self
                        .reject_line(store, &line, push_id, "centra_skipped_line", &skip.message)
                        .await
                    {
                        return Ok(Recovery::Done);
                    }
                    return Ok(Recovery::Wait(self.clock.now_millis() + 5_000));
                }
                let covered = self.finish_row(store, item, push_id, Some(&line)).await?;
                let now = self.clock.now_millis();
                for m in covered {
                    self.metrics
                        .observe_ms(names::SYNC_LAG, now - m.occurred_at_ms);
                }
            }
            _ => {
                self.finish_row(store, item, push_id, None).await?;
            }
        }
        Ok(Recovery::Done)
    }

    /// The audit trail settled nothing: keep the row leased (so nothing resends it) and ask again after
    /// another lease; after `max_unresolved_checks` answers like this, park it for an operator.
    async fn unsettled(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        lease: &Lease,
        record: &PushRecord,
        position: usize,
        why: &str,
    ) -> Result<Recovery, BackendError> {
        let mutation = &record.mutations[position];
        let checks = lease.checks + 1;
        let marker = PushRecord::marker(&record.push_id, mutation.index);
        for _ in 0..10 {
            let Some(mut row) = self.ledger.get(store, item).await? else {
                return Ok(Recovery::Done);
            };
            if row.lease.as_ref() != Some(lease) {
                return Ok(Recovery::Done);
            }
            let rev = row.rev;
            let now = self.clock.now_millis();
            if checks < self.settings.max_unresolved_checks {
                let until = now + self.settings.lease_ms;
                row.lease = Some(Lease {
                    push_id: lease.push_id.clone(),
                    until_ms: until,
                    checks,
                });
                if self.ledger.put(&row, rev).await? {
                    tracing::warn!(%store, %item, %marker, checks, %why, "push outcome still unknown; asking again after the lease");
                    return Ok(Recovery::Wait(until));
                }
                continue;
            }
            let line = mutation
                .lines
                .iter()
                .find(|l| &l.item == item)
                .cloned()
                .expect("mutation_position matched");
            let event_ids = row.pending.iter().map(|p| p.event_id.clone()).collect();
            row.unresolved = Some(UnresolvedPush {
                push_id: record.push_id.clone(),
                index: mutation.index,
                line,
                marker: marker.clone(),
            });
            row.blocked = Some(format!(
                "Centra's audit trail does not settle push {}/{} after {checks} checks ({why})",
                record.push_id, mutation.index
            ));
            row.lease = None;
            if self.ledger.put(&row, rev).await? {
                self.metrics.count(names::UNRESOLVED_PUSHES, 1);
                self.record_exception(
                    store,
                    Some(item),
                    "unresolved_push",
                    format!(
                        "whether Centra applied {item} of push {}/{} at store {store} is unknown: look in warehouse {}'s stock changes for a comment containing \"{}\", then run `shelfsync unblock --store {store} --{} {} --applied` (or `--not-applied`)",
                        record.push_id,
                        mutation.index,
                        record.warehouse_id,
                        marker.trim_end(),
                        match item { ItemRef::Sku(_) => "sku", ItemRef::Ean(_) => "ean" },
                        item.value()
                    ),
                    event_ids,
                    Some(why.to_string()),
                )
                .await;
                return Ok(Recovery::Done);
            }
        }
        Ok(Recovery::Wait(self.clock.now_millis() + 1_000))
    }

    /// Records the outcome on the row (`line` = what Centra now holds, `None` = nothing) and releases the
    /// lease, if `push_id` still holds it. Re-queues the key when more is pending.
    async fn finish_row(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        push_id: &str,
        line: Option<&PushLine>,
    ) -> Result<Vec<PendingMovement>, BackendError> {
        for _ in 0..20 {
            let Some(mut row) = self.ledger.get(store, item).await? else {
                return Ok(Vec::new());
            };
            if row.lease.as_ref().map(|l| l.push_id.as_str()) != Some(push_id) {
                return Ok(Vec::new());
            }
            let rev = row.rev;
            let now = self.clock.now_millis();
            let covered = match line {
                Some(l) => mark_pushed(&mut row, push_id, l, now),
                None => Vec::new(),
            };
            release_lease(&mut row, push_id);
            let more = row.has_unpushed() && row.blocked.is_none();
            let Some(dropped) = self.dropped_postings(&mut row).await? else {
                continue;
            };
            // Centra holds these already; recorded before the row so that a failure leaves the lease to the
            // recovery path, which finishes (and records) again.
            self.finance
                .posted(store, item, &covered, push_id, now)
                .await?;
            self.finance
                .post_records(store, &dropped, push_id, now)
                .await?;
            if self.ledger.put(&row, rev).await? {
                if more && line.is_some() {
                    let key = DirtyKey {
                        store: store.clone(),
                        item: item.clone(),
                    };
                    self.push_queue.mark_dirty(&[key], 0).await?;
                }
                return Ok(covered);
            }
        }
        Err(BackendError::new(
            "ledger",
            format!("row {store} {item} kept changing"),
        ))
    }

    /// The daybook records of sales and returns dropped from `row.pending` that Centra now holds (the dates are
    /// taken from the row). `None`: the row changed while the daybook was read, and a movement applied meanwhile
    /// must not be posted with them; read the row again.
    async fn dropped_postings(
        &self,
        row: &mut LedgerRow,
    ) -> Result<Option<Vec<(chrono::NaiveDate, Vec<String>)>>, BackendError> {
        let dates = take_posted_dropped_dates(row);
        if dates.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let records = self
            .finance
            .dropped_records(&row.store, &row.item, &dates, &row.pending)
            .await?;
        let unchanged = self
            .ledger
            .get(&row.store, &row.item)
            .await?
            .is_some_and(|current| current.rev == row.rev);
        Ok(unchanged.then_some(records))
    }

    /// [`Self::reject_line`], counted in the report; a row that could not be parked comes back.
    async fn park(
        &self,
        store: &StoreCode,
        line: &PushLine,
        push_id: &str,
        kind: &str,
        message: &str,
        report: &mut PushReport,
    ) {
        if self.reject_line(store, line, push_id, kind, message).await {
            report.lines_rejected += 1;
        } else {
            report.retry(store, &line.item);
        }
    }

    /// Parks a line Centra refused or skipped: the row is blocked (its movements wait, nothing is lost) and an
    /// operator gets an exception with Centra's words. False when the row could not be written: its key must
    /// come back, or the lease would outlive everyone's interest in the row.
    async fn reject_line(
        &self,
        store: &StoreCode,
        line: &PushLine,
        push_id: &str,
        kind: &str,
        message: &str,
    ) -> bool {
        let mut event_ids = Vec::new();
        let mut parked = false;
        for _ in 0..20 {
            let Ok(Some(mut row)) = self.ledger.get(store, &line.item).await else {
                break;
            };
            if row.lease.as_ref().map(|l| l.push_id.as_str()) != Some(push_id) {
                // Settled by someone else meanwhile.
                return true;
            }
            let rev = row.rev;
            event_ids = row.pending.iter().map(|p| p.event_id.clone()).collect();
            row.blocked = Some(format!("Centra refused {}: {message}", line.item));
            release_lease(&mut row, push_id);
            match self.ledger.put(&row, rev).await {
                Ok(true) => {
                    parked = true;
                    break;
                }
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(%store, item = %line.item, error = %e, "could not park a refused line");
                    break;
                }
            }
        }
        if !parked {
            return false;
        }
        self.record_exception(
            store,
            Some(&line.item),
            kind,
            format!(
                "Centra {} {:?} of {} for {} at store {store}; later movements of this item wait until an operator clears it",
                if kind == "centra_skipped_line" { "skipped" } else { "refused" },
                line.kind, line.quantity, line.item
            ),
            event_ids,
            Some(message.to_string()),
        )
        .await;
        true
    }

    async fn record_exception(
        &self,
        store: &StoreCode,
        item: Option<&ItemRef>,
        kind: &str,
        message: String,
        event_ids: Vec<String>,
        centra_message: Option<String>,
    ) {
        self.metrics.count(names::STOCK_EXCEPTIONS, 1);
        let now = self.clock.now_millis();
        let exception = ExceptionRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            store: store.to_string(),
            item: item.map(ItemRef::key),
            kind: kind.to_string(),
            message: message.clone(),
            event_ids,
            centra_message,
            created_at_ms: now,
            ..Default::default()
        };
        tracing::error!(%store, item = ?item.map(ItemRef::key), kind, %message, "stock exception");
        if let Err(e) = self.exceptions.record(&exception).await {
            // The row stays blocked with the reason, so the exception is not lost with the log write.
            tracing::error!(error = %e, "could not write exception record");
        }
    }

    /// Returns whether the record was written.
    async fn save_record(&self, record: &PushRecord) -> bool {
        match self.push_log.put(record).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(push_id = %record.push_id, error = %e, "could not update push record");
                false
            }
        }
    }
}

/// What an operator says about a push whose outcome Centra's audit trail could not settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Centra holds it (a stock change with its comment exists).
    Applied,
    /// Centra does not: the units go out with the next push.
    NotApplied,
}

/// What `unblock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnblockOutcome {
    Unblocked,
    NotBlocked,
    /// The row waits on a push whose outcome is unknown: say whether Centra applied it (the marker to look for).
    NeedsVerdict {
        marker: String,
    },
}

/// Operator action after fixing what Centra refused (e.g. the SKU now exists): clears the row's block and
/// queues it, so everything the store reported since goes out with the next push. A row parked on an unsettled
/// push needs the operator's `verdict` from Centra's stock changes.
pub async fn unblock(
    ledger: &dyn LedgerStore,
    push_queue: &dyn PushQueue,
    store: &StoreCode,
    item: &ItemRef,
    verdict: Option<PushVerdict>,
    now_ms: i64,
) -> Result<UnblockOutcome, BackendError> {
    for _ in 0..10 {
        let Some(mut row) = ledger.get(store, item).await? else {
            return Ok(UnblockOutcome::NotBlocked);
        };
        if row.blocked.is_none() {
            return Ok(UnblockOutcome::NotBlocked);
        }
        let rev = row.rev;
        if let Some(unresolved) = row.unresolved.take() {
            match verdict {
                None => {
                    return Ok(UnblockOutcome::NeedsVerdict {
                        marker: unresolved.marker,
                    })
                }
                Some(PushVerdict::Applied) => {
                    mark_pushed(&mut row, &unresolved.push_id, &unresolved.line, now_ms);
                }
                Some(PushVerdict::NotApplied) => {}
            }
        }
        row.blocked = None;
        if ledger.put(&row, rev).await? {
            push_queue
                .mark_dirty(
                    &[DirtyKey {
                        store: store.clone(),
                        item: item.clone(),
                    }],
                    0,
                )
                .await?;
            return Ok(UnblockOutcome::Unblocked);
        }
    }
    Err(BackendError::new(
        "ledger",
        format!("row {store} {item} kept changing"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issue(message: &str, path: serde_json::Value) -> UserIssue {
        UserIssue::from_value(&json!({ "message": message, "path": path }))
    }

    fn reply(ids: &[&str], errors: Vec<UserIssue>, warnings: Vec<UserIssue>) -> MutationReply {
        MutationReply {
            stock_change_ids: ids.iter().map(|s| s.to_string()).collect(),
            user_errors: errors,
            user_warnings: warnings,
            graphql_errors: vec![],
        }
    }

    #[test]
    fn a_warning_naming_a_line_means_that_line_was_not_applied() {
        let r = reply(
            &["5"],
            vec![],
            vec![issue(
                "Duplicate size skipped",
                json!(["input", "productSizes", 2]),
            )],
        );
        assert_eq!(
            read_reply(3, &r),
            Reading::Settled(MutationOutcome::Applied {
                change_id: Some("5".into()),
                skipped: vec![(2, "Duplicate size skipped".into())]
            })
        );
    }

    #[test]
    fn a_named_refusal_splits_off_the_line_and_an_unnamed_one_bisects() {
        let named = reply(
            &[],
            vec![issue(
                "Product size not found",
                json!(["input", "productSizes", "18"]),
            )],
            vec![],
        );
        assert_eq!(
            read_reply(20, &named),
            Reading::Settled(MutationOutcome::Refused(vec![(
                18,
                "Product size not found".into()
            )]))
        );
        let unnamed = reply(&[], vec![issue("Something failed", json!(null))], vec![]);
        assert!(matches!(
            read_reply(20, &unnamed),
            Reading::Settled(MutationOutcome::Bisect(_))
        ));
        // A one-line mutation's refusal is that line's, named or not.
        assert_eq!(
            read_reply(1, &unnamed),
            Reading::Settled(MutationOutcome::Refused(vec![(
                0,
                "Something failed".into()
            )]))
        );
    }

    #[test]
    fn an_answer_that_does_not_say_what_was_applied_goes_to_the_audit_trail() {
        assert!(matches!(
            read_reply(3, &reply(&[], vec![], vec![])),
            Reading::CheckTrail { .. }
        ));
        assert!(matches!(
            read_reply(
                3,
                &reply(
                    &["9"],
                    vec![],
                    vec![issue("Something skipped", json!(null))]
                )
            ),
            Reading::CheckTrail { .. }
        ));
        assert!(matches!(
            read_reply(
                3,
                &reply(&["9"], vec![issue("Refused", json!(null))], vec![])
            ),
            Reading::CheckTrail { .. }
        ));
    }

    #[test]
    fn lines_missing_from_the_found_change_were_skipped() {
        let line = |sku: &str| PushLine {
            item: ItemRef::Sku(sku.into()),
            kind: ChangeKind::Decrease,
            quantity: 1,
            epoch: 0,
            delta_through: -1,
            version_through: 1,
        };
        let change = FoundChange {
            id: "3".into(),
            created_at: None,
            lines: vec![crate::centra::ChangeLine {
                size_id: Some(1),
                sku: Some("A".into()),
                ean: None,
                quantity: 1,
            }],
        };
        let lines = [line("A"), line("B")];
        assert_eq!(
            absent_lines(ChangeKind::Decrease, &lines, &change)
                .iter()
                .map(|(i, _)| *i)
                .collect::<Vec<_>>(),
            [1]
        );
        assert!(absent_lines(ChangeKind::Set, &lines, &change).is_empty());
    }
}
