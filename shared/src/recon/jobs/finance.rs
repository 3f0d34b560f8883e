//! Finance daily close: per store and business day, once the store's local closing time has passed, the
//! sales, returns and kiosk orders accepted from the store against those posted to Centra (count, units, gross per
//! currency), from the daybook ([`crate::finance`]). A day is *validated* when the two agree; otherwise its
//! differing records are listed and the day is checked again on every later run until it validates.
//!
//! Stores with `finance_posting = "daily"` are flushed here: their held movements are handed to the pusher at
//! the first close that finds them unposted, and the day validates on a later run once Centra holds them.
//!
//! Runs hourly; a store is closed when its close has passed in its own time zone. Carried from run to run:
//! the last validated day per store and the days still open (at most [`MAX_OPEN_DAYS`] back).

use crate::config::mappings::FinancePosting;
use crate::finance::{close_store_day, explain_unposted, flush_store, DayClose, DifferenceKind};
use crate::recon::report::ReportRow;
use crate::recon::run::{JobCheckpoint, Outcome};
use crate::recon::{Counters, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::telemetry::metrics::names;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const JOB: JobKind = JobKind::FinanceClose;
/// Unvalidated days older than this are no longer re-checked (they stay in their reports).
pub const MAX_OPEN_DAYS: i64 = 14;

pub mod counter {
    pub const STORE_DAYS: &str = "store_days";
    pub const VALIDATED: &str = "validated";
    pub const UNVALIDATED: &str = "unvalidated";
    pub const ACCEPTED_NOT_POSTED: &str = "accepted_not_posted";
    pub const POSTED_NOT_ACCEPTED: &str = "posted_not_accepted";
    /// Rows of daily-posting stores handed to the pusher.
    pub const ROWS_FLUSHED: &str = "rows_flushed";
}

/// A line of `finance_close.csv`: the totals of one (store, day, kind, currency), or one differing record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinanceRow {
    pub store: String,
    pub business_date: NaiveDate,
    /// `sale`, `return` or `kiosk_order`.
    pub kind: String,
    pub currency: String,
    /// Empty on a totals line; the record (`<event id>#<item>`) on a difference line.
    pub record: String,
    pub accepted_count: u64,
    pub accepted_units: i64,
    pub accepted_gross: String,
    pub posted_count: u64,
    pub posted_units: i64,
    pub posted_gross: String,
    /// Totals: `validated` / `not_validated` / `posting` (a daily store just flushed). Records:
    /// `accepted_not_posted` / `posted_not_accepted`.
    pub status: String,
    /// Why a record is not posted, when known (blocked item, held for daily posting, order exception, …).
    pub reason: String,
}

impl ReportRow for FinanceRow {
    fn csv_header() -> &'static [&'static str] {
        &[
            "store",
            "business_date",
            "kind",
            "currency",
            "record",
            "accepted_count",
            "accepted_units",
            "accepted_gross",
            "posted_count",
            "posted_units",
            "posted_gross",
            "status",
            "reason",
        ]
    }

    fn csv_fields(&self) -> Vec<String> {
        vec![
            self.store.clone(),
            self.business_date.to_string(),
            self.kind.clone(),
            self.currency.clone(),
            self.record.clone(),
            self.accepted_count.to_string(),
            self.accepted_units.to_string(),
            self.accepted_gross.clone(),
            self.posted_count.to_string(),
            self.posted_units.to_string(),
            self.posted_gross.clone(),
            self.status.clone(),
            self.reason.clone(),
        ]
    }
}

/// Carried from run to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinanceState {
    /// The latest validated business day per store.
    pub closed: BTreeMap<String, NaiveDate>,
    /// Closed days that did not validate yet, per store.
    pub open: BTreeMap<String, BTreeSet<NaiveDate>>,
}

/// Runs the daily close of every store (or `opts.store`) whose close has passed. `opts.since` re-closes every
/// business day from that instant's date on.
pub async fn run_finance_close(
    ctx: &ReconContext,
    opts: &RunOptions,
) -> Result<JobRun, ReconError> {
    let daybook = ctx
        .sources
        .daybook
        .clone()
        .ok_or(ReconError::NotConfigured("finance daybook"))?;
    let mut run = JobCheckpoint::claim(ctx, JOB, opts).await?;
    let mut state = carry_state(ctx, &mut run).await?;
    let now = ctx.clock.now_millis();
    let mut out = CloseOutput::default();

    for store in run.cp.stores.clone() {
        let Some(mapping) = ctx.mappings.store(store.as_str()).cloned() else {
            continue;
        };
        let last = mapping.last_closed_date(now);
        let days = StoreDays {
            store: &store,
            mapping: &mapping,
            last,
            oldest: last - chrono::Duration::days(MAX_OPEN_DAYS),
        };
        for date in days_to_close(&days, &state, opts) {
            let records = daybook.day(&store, date).await?;
            let mut close = close_store_day(&store, date, &records, now);
            explain_unposted(
                &mut close,
                &mapping,
                ctx.ledger.as_ref(),
                ctx.sources.order_outbox.as_deref(),
                now,
            )
            .await?;
            out.counters.add(counter::STORE_DAYS, 1);
            let status = count_differences(ctx, opts, &days, date, &close, &mut out).await?;
            carry_day(&mut state, &days, date, close.validated, &mut out.counters);
            out.rows.extend(day_rows(&store, date, &close, status));
            out.closes.push(close);
        }
    }

    publish_close(ctx, run, &state, out).await
}

/// The state the last run carried (or a new one), saved at once when there was one.
async fn carry_state(
    ctx: &ReconContext,
    run: &mut JobCheckpoint,
) -> Result<FinanceState, ReconError> {
    let state: FinanceState = match &run.previous_state {
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_default(),
        None => run.state(),
    };
    if run.previous_state.is_some() {
        // Saved now so that a run failing halfway still carries what earlier runs closed.
        run.set_state(&state);
        run.save(ctx).await?;
    }
    Ok(state)
}

/// What the close of every store's days adds up to.
#[derive(Default)]
struct CloseOutput {
    counters: Counters,
    rows: Vec<FinanceRow>,
    closes: Vec<DayClose>,
    notes: Vec<String>,
}

/// One store's days to close: up to its last closed business day, none older than `oldest`.
struct StoreDays<'a> {
    store: &'a crate::core::ids::StoreCode,
    mapping: &'a crate::config::mappings::StoreMapping,
    last: NaiveDate,
    oldest: NaiveDate,
}

/// The store's days still open, then every day after the last one closed (or from `opts.since`) up to the
/// last closed business day.
fn days_to_close(days: &StoreDays, state: &FinanceState, opts: &RunOptions) -> BTreeSet<NaiveDate> {
    let StoreDays {
        store,
        mapping,
        last,
        oldest,
    } = *days;
    let mut dates: BTreeSet<NaiveDate> = BTreeSet::new();
    let first = match opts.since {
        Some(since) => mapping.business_date(since.timestamp_millis()),
        None => {
            let open = state.open.get(store.as_str()).cloned().unwrap_or_default();
            dates.extend(open.into_iter().filter(|d| *d >= oldest));
            state
                .closed
                .get(store.as_str())
                .and_then(|c| c.succ_opt())
                .unwrap_or(last)
                .max(oldest)
        }
    };
    let mut d = first;
    while d <= last {
        dates.insert(d);
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
    }
    dates
}

/// Counts the day's differences and, for a store posting daily with movements not posted, hands its held
/// rows to the pusher; the day's status.
async fn count_differences(
    ctx: &ReconContext,
    opts: &RunOptions,
    days: &StoreDays<'_>,
    date: NaiveDate,
    close: &DayClose,
    out: &mut CloseOutput,
) -> Result<&'static str, ReconError> {
    let store = days.store;
    let mut status = if close.validated {
        "validated"
    } else {
        "not_validated"
    };
    let unposted = close
        .differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::AcceptedNotPosted)
        .count() as u64;
    out.counters.add(counter::ACCEPTED_NOT_POSTED, unposted);
    out.counters.add(
        counter::POSTED_NOT_ACCEPTED,
        close.differences.len() as u64 - unposted,
    );
    if unposted > 0 && days.mapping.finance_posting == FinancePosting::Daily && !opts.dry_run {
        let flushed = flush_store(ctx.ledger.as_ref(), ctx_push_queue(ctx)?, store).await?;
        out.counters.add(counter::ROWS_FLUSHED, flushed as u64);
        out.notes.push(format!(
            "{store} posts daily: {flushed} ledger rows handed to the pusher for {date}; the day validates on a later run"
        ));
        status = "posting";
    }
    Ok(status)
}

/// Carries the day to the next run: the latest validated day, or one more day still open.
fn carry_day(
    state: &mut FinanceState,
    days: &StoreDays,
    date: NaiveDate,
    validated: bool,
    counters: &mut Counters,
) {
    let open = state.open.entry(days.store.to_string()).or_default();
    if validated {
        counters.add(counter::VALIDATED, 1);
        open.remove(&date);
        let closed = state.closed.entry(days.store.to_string()).or_insert(date);
        *closed = (*closed).max(date);
    } else {
        counters.add(counter::UNVALIDATED, 1);
        open.insert(date);
    }
    open.retain(|d| *d >= days.oldest);
}

/// The report lines of one closed day: its totals, then its differing records.
fn day_rows(
    store: &crate::core::ids::StoreCode,
    date: NaiveDate,
    close: &DayClose,
    status: &str,
) -> Vec<FinanceRow> {
    let mut rows = Vec::new();
    for t in &close.totals {
        rows.push(FinanceRow {
            store: store.to_string(),
            business_date: date,
            kind: t.kind.as_str().into(),
            currency: t.currency.clone(),
            record: String::new(),
            accepted_count: t.accepted.count,
            accepted_units: t.accepted.units,
            accepted_gross: t.accepted.gross.to_string(),
            posted_count: t.posted.count,
            posted_units: t.posted.units,
            posted_gross: t.posted.gross.to_string(),
            status: status.into(),
            reason: String::new(),
        });
    }
    for d in &close.differences {
        let first = d.accepted.first();
        rows.push(FinanceRow {
            store: store.to_string(),
            business_date: date,
            kind: first.map(|a| a.kind.as_str()).unwrap_or("").into(),
            currency: first.map(|a| a.currency.clone()).unwrap_or_default(),
            record: d.record_id.clone(),
            accepted_count: d.accepted.len() as u64,
            accepted_units: d.accepted.iter().map(|a| a.units).sum(),
            accepted_gross: first.map(|a| a.gross.to_string()).unwrap_or_default(),
            posted_count: 0,
            posted_units: 0,
            posted_gross: String::new(),
            status: match d.kind {
                DifferenceKind::AcceptedNotPosted => "accepted_not_posted",
                DifferenceKind::PostedNotAccepted => "posted_not_accepted",
            }
            .into(),
            reason: d.reason.clone().unwrap_or_default(),
        });
    }
    rows
}

/// Counts the unvalidated days, carries the state and publishes the report.
async fn publish_close(
    ctx: &ReconContext,
    mut run: JobCheckpoint,
    state: &FinanceState,
    out: CloseOutput,
) -> Result<JobRun, ReconError> {
    let CloseOutput {
        counters,
        rows,
        closes,
        mut notes,
    } = out;
    let unvalidated = counters.get(counter::UNVALIDATED);
    ctx.metrics.count(names::UNVALIDATED_TOTALS, unvalidated);
    run.set_state(state);
    run.cp.counters = counters;
    notes.insert(
        0,
        "Sales, returns and kiosk orders accepted from the stores vs posted to Centra, per store business day (the store's time zone, closed at its closing time).".into(),
    );
    let keys = run
        .publish(
            ctx,
            Outcome {
                findings: unvalidated,
                exceptions: unvalidated,
                rows,
                truncated: false,
                notes,
                details: serde_json::json!({ "closes": closes }),
            },
        )
        .await?;
    Ok(run.job_run(ctx, Some(keys)))
}

fn ctx_push_queue(ctx: &ReconContext) -> Result<&dyn crate::stock::ports::PushQueue, ReconError> {
    ctx.sources
        .push_queue
        .as_deref()
        .ok_or(ReconError::NotConfigured(
            "stock push queue (STOCK_PUSH_QUEUE_URL)",
        ))
}
