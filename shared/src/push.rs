//! Stage 2 of stock sync: push what the ledger holds but Centra has not received, coalesced per store
//! warehouse (one mutation carries many sizes), paced by one mutation budget shared by every instance.
//!
//! Exactly-once towards Centra:
//! 1. each row is leased to one push (`push_id`) with a conditional write, so one key is pushed by one
//!    worker at a time;
//! 2. a push record listing every mutation is written *before* the first call; each mutation's
//!    `description` carries `push <id>/<index>`;
//! 3. after the call the rows record what Centra holds and the lease is released.
//!
//! A crash or a lost response leaves the lease and a `Pending` mutation behind. Whoever next finds the
//! expired lease looks the mutation up in Centra's stock-change audit trail: found means applied (record
//! it), absent means not applied (release; the units are still pending and go out with the next push). The
//! lease outlives the HTTP timeout and the function timeout, so an abandoned request is over by then.

use crate::centra::{CentraClient, CentraError, Direction, UserError};
use crate::domain::{ItemRef, StoreCode};
use crate::ledger::*;
use crate::mappings::Mappings;
use crate::metrics::{names, Metrics};
use crate::ports::*;
use crate::time::SharedClock;
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PushSettings {
    /// How long a push owns its rows. Must exceed the Centra HTTP timeout and the function timeout.
    pub lease_ms: i64,
    pub max_lines_per_mutation: usize,
    pub record_ttl_s: i64,
    /// Pages of 100 stock changes scanned when resolving an uncertain mutation.
    pub audit_pages: usize,
    /// Attempts for a request that did not reach Centra (connection refused).
    pub max_send_attempts: u32,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            lease_ms: 150_000,
            max_lines_per_mutation: 200,
            record_ttl_s: 15 * 24 * 3600,
            audit_pages: 5,
            max_send_attempts: 3,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushReport {
    /// Keys whose push failed for now: their queue messages should be redelivered.
    pub failed_keys: Vec<DirtyKey>,
    pub mutations_applied: u32,
    pub lines_applied: usize,
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
}

pub struct StockPusher {
    pub ledger: Arc<dyn LedgerStore>,
    pub push_log: Arc<dyn PushLog>,
    pub exceptions: Arc<dyn ExceptionLog>,
    pub budget: Arc<dyn MutationBudget>,
    pub push_queue: Arc<dyn PushQueue>,
    pub centra: CentraClient,
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
    /// Another push holds the row until this time.
    Busy(i64),
}

enum MutationOutcome {
    Applied,
    /// Definitely not applied; the units stay pending.
    NotApplied(String),
    /// Centra refused these lines (indices into the mutation); the others were not applied either.
    Refused(Vec<(usize, String)>),
    /// Centra refused the mutation without saying which line; nothing was applied.
    Bisect(String),
    /// Unknown whether applied and not found in the audit trail yet: resolved after the lease ends.
    Unresolved,
}

fn delay_seconds(until_ms: i64, now_ms: i64) -> u32 {
    ((until_ms - now_ms).max(0) / 1000 + 1).min(900) as u32
}

impl StockPusher {
    /// Pushes the given keys; `deadline_ms` is when this invocation must have returned.
    pub async fn push_keys(&self, keys: Vec<DirtyKey>, deadline_ms: i64) -> PushReport {
        let mut by_store: BTreeMap<StoreCode, BTreeSet<ItemRef>> = BTreeMap::new();
        for k in keys {
            by_store.entry(k.store).or_default().insert(k.item);
        }
        let mut report = PushReport::default();
        let runs = by_store
            .into_iter()
            .map(|(store, items)| self.push_store(store, items.into_iter().collect(), deadline_ms));
        for r in join_all(runs).await {
            report.merge(r);
        }
        for lag in &report.lags_ms {
            self.metrics.observe_ms(names::SYNC_LAG, *lag);
        }
        report
    }

    async fn push_store(
        &self,
        store: StoreCode,
        items: Vec<ItemRef>,
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
        let warehouse_id = mapping.centra_warehouse_id;
        let push_id = uuid::Uuid::new_v4().simple().to_string();
        let mut lines = Vec::new();
        let mut busy = Vec::new();
        for item in items {
            match self.lease(&store, &item, &push_id).await {
                Ok(LeaseResult::Leased(line)) => lines.push(line),
                Ok(LeaseResult::NothingToPush) | Ok(LeaseResult::Blocked) => {}
                Ok(LeaseResult::Busy(until)) => busy.push((item, until)),
                Err(e) => {
                    tracing::warn!(%store, %item, error = %e, "could not lease ledger row");
                    report.failed_keys.push(DirtyKey {
                        store: store.clone(),
                        item,
                    });
                }
            }
        }
        // A holder that crashed re-queues nothing: look again once its lease has ended.
        let now = self.clock.now_millis();
        for (item, until) in busy {
            let key = DirtyKey {
                store: store.clone(),
                item,
            };
            if self
                .push_queue
                .mark_dirty(std::slice::from_ref(&key), delay_seconds(until, now))
                .await
                .is_err()
            {
                report.failed_keys.push(key);
            }
        }
        if lines.is_empty() {
            return report;
        }

        let mut record = PushRecord {
            push_id: push_id.clone(),
            store: store.clone(),
            warehouse_id,
            created_at_ms: now,
            expires_at_s: now.div_euclid(1000) + self.settings.record_ttl_s,
            mutations: Vec::new(),
        };
        for kind in [ChangeKind::Decrease, ChangeKind::Increase, ChangeKind::Set] {
            let of_kind: Vec<PushLine> = lines.iter().filter(|l| l.kind == kind).cloned().collect();
            for chunk in of_kind.chunks(self.settings.max_lines_per_mutation.max(1)) {
                record.mutations.push(PushMutation {
                    index: record.mutations.len() as u32,
                    kind,
                    lines: chunk.to_vec(),
                    status: MutationStatus::Pending,
                });
            }
        }
        if let Err(e) = self.push_log.put(&record).await {
            tracing::error!(%store, error = %e, "could not write push record; nothing sent");
            for line in &lines {
                let _ = self.finish_row(&store, &line.item, &push_id, None).await;
                report.failed_keys.push(DirtyKey {
                    store: store.clone(),
                    item: line.item.clone(),
                });
            }
            return report;
        }

        let mut next = 0;
        while next < record.mutations.len() {
            let index = next;
            next += 1;
            if record.mutations[index].status != MutationStatus::Pending {
                continue;
            }
            let outcome = self.execute(&record, index, deadline_ms).await;
            let mutation = record.mutations[index].clone();
            match outcome {
                MutationOutcome::Applied => {
                    record.mutations[index].status = MutationStatus::Applied;
                    self.save_record(&record).await;
                    report.mutations_applied += 1;
                    for line in &mutation.lines {
                        match self
                            .finish_row(&store, &line.item, &push_id, Some(line))
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
                            // Centra holds it; once the lease ends, the redelivered key's recovery
                            // finds the Applied record (or the audit trail) and records it.
                            Err(e) => {
                                tracing::warn!(%store, item = %line.item, error = %e, "could not record applied push");
                                report.failed_keys.push(DirtyKey {
                                    store: store.clone(),
                                    item: line.item.clone(),
                                });
                            }
                        }
                    }
                }
                MutationOutcome::NotApplied(reason) => {
                    record.mutations[index].status = MutationStatus::NotApplied;
                    self.save_record(&record).await;
                    tracing::warn!(%store, push_id, index, %reason, "mutation not applied; keys will be retried");
                    for line in &mutation.lines {
                        let _ = self.finish_row(&store, &line.item, &push_id, None).await;
                        report.failed_keys.push(DirtyKey {
                            store: store.clone(),
                            item: line.item.clone(),
                        });
                    }
                }
                MutationOutcome::Refused(bad) => {
                    record.mutations[index].status = MutationStatus::Split;
                    let bad_set: BTreeSet<usize> = bad.iter().map(|(i, _)| *i).collect();
                    for (i, message) in &bad {
                        let line = &mutation.lines[*i];
                        self.reject_line(&store, line, &push_id, message).await;
                        report.lines_rejected += 1;
                    }
                    let good: Vec<PushLine> = mutation
                        .lines
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !bad_set.contains(i))
                        .map(|(_, l)| l.clone())
                        .collect();
                    // Centra refuses a mutation whole; resend the lines it had no objection to.
                    if !good.is_empty() {
                        record.mutations.push(PushMutation {
                            index: record.mutations.len() as u32,
                            kind: mutation.kind,
                            lines: good,
                            status: MutationStatus::Pending,
                        });
                    }
                    self.save_record(&record).await;
                }
                MutationOutcome::Bisect(message) => {
                    record.mutations[index].status = MutationStatus::Split;
                    tracing::warn!(%store, push_id, index, %message, "Centra refused a mutation without naming the line; splitting");
                    let half = mutation.lines.len().div_ceil(2);
                    for part in mutation.lines.chunks(half.max(1)) {
                        record.mutations.push(PushMutation {
                            index: record.mutations.len() as u32,
                            kind: mutation.kind,
                            lines: part.to_vec(),
                            status: MutationStatus::Pending,
                        });
                    }
                    self.save_record(&record).await;
                }
                MutationOutcome::Unresolved => {
                    // Leave lease and record as they are; look again after the lease ends.
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
            }
        }
        report
    }

    /// Splits a refused mutation's errors into line indices; unattributable errors bisect the mutation.
    fn attribute_errors(
        lines: &[PushLine],
        errors: &[UserError],
    ) -> Result<Vec<(usize, String)>, ()> {
        let mut bad: BTreeMap<usize, String> = BTreeMap::new();
        for e in errors {
            match e.line_index().filter(|i| *i < lines.len()) {
                Some(i) => {
                    bad.entry(i).or_insert_with(|| e.message.clone());
                }
                None if lines.len() == 1 => {
                    bad.entry(0).or_insert_with(|| e.message.clone());
                }
                None => return Err(()),
            }
        }
        Ok(bad.into_iter().collect())
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
        loop {
            if let Err(reason) = self.wait_for_budget(deadline_ms).await {
                return MutationOutcome::NotApplied(reason);
            }
            attempts += 1;
            let started = std::time::Instant::now();
            let result = match mutation.kind {
                ChangeKind::Decrease => {
                    self.centra
                        .change_stock(record.warehouse_id, Direction::Out, &description, &payload)
                        .await
                }
                ChangeKind::Increase => {
                    self.centra
                        .change_stock(record.warehouse_id, Direction::In, &description, &payload)
                        .await
                }
                ChangeKind::Set => {
                    self.centra
                        .set_stock(record.warehouse_id, &description, &payload)
                        .await
                }
            };
            self.metrics.observe_ms(
                names::CENTRA_MUTATION_LATENCY,
                started.elapsed().as_millis() as i64,
            );
            match result {
                Ok(r) if r.user_errors.is_empty() => {
                    self.metrics.count(names::CENTRA_MUTATIONS, 1);
                    for w in &r.user_warnings {
                        tracing::info!(store = %record.store, warning = %w.message, "Centra warning");
                    }
                    return MutationOutcome::Applied;
                }
                Ok(r) => {
                    return match Self::attribute_errors(&mutation.lines, &r.user_errors) {
                        Ok(bad) if !bad.is_empty() => MutationOutcome::Refused(bad),
                        // Not attributable to a line: halve it until the refused line stands alone.
                        _ => MutationOutcome::Bisect(
                            r.user_errors
                                .iter()
                                .map(|e| e.message.as_str())
                                .collect::<Vec<_>>()
                                .join("; "),
                        ),
                    };
                }
                Err(CentraError::RateLimited { retry_at_ms }) => {
                    self.metrics.count(names::CENTRA_RATE_LIMITED, 1);
                    let until = retry_at_ms.unwrap_or_else(|| self.clock.now_millis() + 10_000);
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
                Err(CentraError::Uncertain { detail, settled }) => {
                    self.metrics.count(names::CENTRA_UNCERTAIN, 1);
                    tracing::warn!(store = %record.store, push_id = %record.push_id, index, %detail, settled, "uncertain Centra outcome; checking audit trail");
                    let marker = PushRecord::marker(&record.push_id, mutation.index);
                    match self
                        .centra
                        .find_stock_change(&marker, self.settings.audit_pages)
                        .await
                    {
                        Ok(Some(_)) => {
                            self.metrics.count(names::CENTRA_MUTATIONS, 1);
                            return MutationOutcome::Applied;
                        }
                        // Centra finished with it and did not apply it: a transient failure, retry with backoff.
                        Ok(None) if settled && attempts < self.settings.max_send_attempts => {
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

    async fn wait_for_budget(&self, deadline_ms: i64) -> Result<(), String> {
        loop {
            let now = self.clock.now_millis();
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
                if !self.recover(store, item, &lease.push_id).await? {
                    return Ok(LeaseResult::Busy(now + 5_000));
                }
                continue;
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
            });
            if self.ledger.put(&row, rev).await? {
                return Ok(LeaseResult::Leased(line));
            }
        }
        Ok(LeaseResult::Busy(self.clock.now_millis() + 1_000))
    }

    /// Resolves an abandoned lease. Returns false when it cannot be resolved now (Centra unreachable).
    async fn recover(
        &self,
        store: &StoreCode,
        item: &ItemRef,
        push_id: &str,
    ) -> Result<bool, BackendError> {
        let Some(mut record) = self.push_log.get(push_id).await? else {
            // No record: the push died before writing it, so nothing was sent.
            self.finish_row(store, item, push_id, None).await?;
            return Ok(true);
        };
        let Some(mutation) = record.mutation_for(item).cloned() else {
            self.finish_row(store, item, push_id, None).await?;
            return Ok(true);
        };
        let line = mutation
            .lines
            .iter()
            .find(|l| &l.item == item)
            .cloned()
            .expect("mutation_for matched");
        let applied = match mutation.status {
            MutationStatus::Applied => true,
            MutationStatus::NotApplied | MutationStatus::Split => false,
            MutationStatus::Pending => {
                match self
                    .centra
                    .find_stock_change(
                        &PushRecord::marker(push_id, mutation.index),
                        self.settings.audit_pages,
                    )
                    .await
                {
                    Ok(found) => {
                        let status = if found.is_some() {
                            MutationStatus::Applied
                        } else {
                            MutationStatus::NotApplied
                        };
                        if let Some(m) = record
                            .mutations
                            .iter_mut()
                            .find(|m| m.index == mutation.index)
                        {
                            m.status = status;
                        }
                        self.push_log.put(&record).await?;
                        tracing::info!(%store, %item, push_id, index = mutation.index, applied = found.is_some(), "resolved abandoned push against the audit trail");
                        found.is_some()
                    }
                    Err(e) => {
                        tracing::warn!(%store, %item, push_id, error = %e, "cannot resolve abandoned push yet");
                        return Ok(false);
                    }
                }
            }
        };
        let covered = self
            .finish_row(store, item, push_id, applied.then_some(&line))
            .await?;
        let now = self.clock.now_millis();
        for m in covered {
            self.metrics
                .observe_ms(names::SYNC_LAG, now - m.occurred_at_ms);
        }
        Ok(true)
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
                Some(l) => mark_pushed(&mut row, l, now),
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

    async fn reject_line(&self, store: &StoreCode, line: &PushLine, push_id: &str, message: &str) {
        let mut event_ids = Vec::new();
        for _ in 0..20 {
            let Ok(Some(mut row)) = self.ledger.get(store, &line.item).await else {
                break;
            };
            if row.lease.as_ref().map(|l| l.push_id.as_str()) != Some(push_id) {
                break;
            }
            let rev = row.rev;
            event_ids = row.pending.iter().map(|p| p.event_id.clone()).collect();
            row.blocked = Some(format!("Centra refused {}: {message}", line.item));
            release_lease(&mut row, push_id);
            if matches!(self.ledger.put(&row, rev).await, Ok(true)) {
                break;
            }
        }
        self.record_exception(
            store,
            Some(&line.item),
            "centra_rejected_line",
            format!(
                "Centra refused {:?} of {} for {} at store {store}; later movements of this item wait until an operator clears it",
                line.kind, line.quantity, line.item
            ),
            event_ids,
            Some(message.to_string()),
        )
        .await;
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

    async fn save_record(&self, record: &PushRecord) {
        if let Err(e) = self.push_log.put(record).await {
            // The audit trail still resolves the mutation later; only a shortcut is lost.
            tracing::warn!(push_id = %record.push_id, error = %e, "could not update push record");
        }
    }
}

/// Operator action after fixing what Centra refused (e.g. the SKU now exists): clears the row's block and
/// queues it, so everything the store reported since goes out with the next push. Returns false when the
/// row is not blocked.
pub async fn unblock(
    ledger: &dyn LedgerStore,
    push_queue: &dyn PushQueue,
    store: &StoreCode,
    item: &ItemRef,
) -> Result<bool, BackendError> {
    for _ in 0..10 {
        let Some(mut row) = ledger.get(store, item).await? else {
            return Ok(false);
        };
        if row.blocked.is_none() {
            return Ok(false);
        }
        let rev = row.rev;
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
            return Ok(true);
        }
    }
    Err(BackendError::new(
        "ledger",
        format!("row {store} {item} kept changing"),
    ))
}
