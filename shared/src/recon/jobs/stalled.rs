//! Stalled orders and unposted store movements: what the event-driven paths accepted but did not finish.
//!
//! - Cloudshelf orders placed or paid with no Centra order after a while, read by `updatedAt` since a
//!   watermark (Cloudshelf's `orders` has no status filter). The watermark and the orders still open at the
//!   last run are carried from run to run, so an order that stops changing is still checked until it has a
//!   Centra order.
//! - Order outbox records stuck in a state, or parked as exceptions.
//! - Centra orders created from a kiosk still PENDING (re-read from Centra for recent orders only).
//! - Store movements accepted into the ledger but not in Centra after a while (pending, or blocked after
//!   Centra refused the item).
//! - Gaps of the event archive: stream batches the archiver gave up on (the events were processed; the
//!   archive lacks them until `shelfsync archive backfill`).
//!
//! One unit: everything is read and compared in one go (the outbox and ledger are small next to the stock
//! sweep); a failed invocation leaves the carried state as it was.

use crate::cloudshelf::{CloudshelfOrder, CloudshelfOrderStatus};
use crate::orders::outbox::OutboxState;
use crate::orders::stalled::{find_stalled_orders, StalledOrder};
use crate::recon::report::ReportRow;
use crate::recon::run::{with_retries, JobCheckpoint, Outcome};
use crate::recon::{Counters, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::telemetry::metrics::names;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const JOB: JobKind = JobKind::StalledOrders;

/// How far back the first run reads Cloudshelf orders.
const FIRST_RUN_LOOKBACK_MS: i64 = 48 * 3_600_000;
/// Re-read so much before the watermark: an order saved in the same instant as the last one read.
const WATERMARK_OVERLAP_MS: i64 = 5 * 60_000;
/// Kiosk orders older than this are not re-read from Centra for the PENDING check.
const CENTRA_RECHECK_WINDOW_MS: i64 = 14 * 24 * 3_600_000;

pub mod counter {
    pub const CLOUDSHELF_ORDERS_READ: &str = "cloudshelf_orders_read";
    pub const OUTBOX_RECORDS: &str = "outbox_records";
    pub const CENTRA_ORDERS_CHECKED: &str = "centra_orders_checked";
    pub const LEDGER_ROWS: &str = "ledger_rows";
    pub const CLOUDSHELF_WITHOUT_CENTRA: &str = "cloudshelf_without_centra_order";
    pub const OUTBOX_STUCK: &str = "outbox_stuck";
    pub const OUTBOX_EXCEPTIONS: &str = "outbox_exceptions";
    pub const CENTRA_PENDING: &str = "centra_pending";
    pub const MOVEMENTS_NOT_IN_CENTRA: &str = "movements_not_in_centra";
    pub const ITEMS_BLOCKED: &str = "items_blocked";
    pub const ARCHIVE_GAPS: &str = "archive_gaps";
}

/// Gap-queue messages read per run: the count says how many wait; the rows show the first of them.
const ARCHIVE_GAPS_SHOWN: usize = 10;

/// One stalled record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StalledRow {
    pub kind: String,
    pub store: String,
    /// Cloudshelf order id, or the ledger item (`sku:<SKU>`).
    pub reference: String,
    pub centra_order: Option<u64>,
    pub state: String,
    pub minutes: i64,
    pub detail: String,
}

impl ReportRow for StalledRow {
    fn csv_header() -> &'static [&'static str] {
        &[
            "kind",
            "store",
            "reference",
            "centra_order",
            "state",
            "minutes",
            "detail",
        ]
    }

    fn csv_fields(&self) -> Vec<String> {
        vec![
            self.kind.clone(),
            self.store.clone(),
            self.reference.clone(),
            self.centra_order.map(|n| n.to_string()).unwrap_or_default(),
            self.state.clone(),
            self.minutes.to_string(),
            self.detail.clone(),
        ]
    }
}

/// Carried from run to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StalledState {
    /// Latest Cloudshelf `updatedAt` read (epoch ms).
    pub watermark_ms: Option<i64>,
    /// Placed/paid Cloudshelf orders without a Centra order at the last run: id → (status, updatedAt ms).
    pub open: BTreeMap<String, (String, i64)>,
}

/// Runs the stalled-order check.
pub async fn run_stalled_orders(
    ctx: &ReconContext,
    opts: &RunOptions,
) -> Result<JobRun, ReconError> {
    let cloudshelf = ctx.sources.cloudshelf()?;
    let outbox = ctx
        .sources
        .order_outbox
        .clone()
        .ok_or(ReconError::NotConfigured("order outbox"))?;
    let mut run = JobCheckpoint::claim(ctx, JOB, opts).await?;
    let carried = carry_state(ctx, &mut run).await?;
    let now = ctx.clock.now_millis();
    let thresholds = ctx.settings.stalled;
    let in_scope = |store: &str| run.cp.stores.iter().any(|s| s.as_str() == store);
    let mut counters = Counters::default();

    let since = read_since(opts, &carried, now);
    let orders = read_cloudshelf_orders(
        ctx,
        cloudshelf,
        run.deadline_ms,
        since,
        &carried,
        &mut counters,
    )
    .await?;

    let (records, by_order) = read_outbox(outbox.as_ref(), &in_scope, &mut counters).await?;

    let centra_states = read_centra_states(
        ctx,
        run.deadline_ms,
        &records,
        now,
        &thresholds,
        &mut counters,
    )
    .await?;

    let mut rows = Vec::new();
    for finding in find_stalled_orders(&orders, &records, &centra_states, now, &thresholds) {
        if let Some(row) = stalled_order_row(finding, &by_order, opts, &in_scope, &mut counters) {
            rows.push(row);
        }
    }
    rows.extend(outbox_exception_rows(&records, now, &mut counters));
    rows.extend(
        unposted_movement_rows(ctx, &run.cp.stores, now, &thresholds, &mut counters).await?,
    );
    rows.extend(archive_gap_rows(ctx, now, &mut counters).await?);

    let (stalled_orders, unposted) = count_stalled(ctx, &counters);
    let archive_gaps = counters.get(counter::ARCHIVE_GAPS);
    let next = next_state(&orders, &records, carried.watermark_ms);
    run.set_state(&next);
    run.cp.counters = counters;
    let notes = vec![format!(
        "Cloudshelf orders read from {} (watermark); thresholds: no Centra order {} min, outbox {} min, Centra PENDING {} h.",
        since.format("%Y-%m-%d %H:%M UTC"),
        thresholds.cloudshelf_without_centra_ms / 60_000,
        thresholds.outbox_stuck_ms / 60_000,
        thresholds.centra_pending_ms / 3_600_000
    )];
    let keys = run
        .publish(
            ctx,
            Outcome {
                findings: stalled_orders + unposted + archive_gaps,
                exceptions: stalled_orders + unposted + archive_gaps,
                rows,
                truncated: false,
                notes,
                details: serde_json::json!({ "watermark_ms": next.watermark_ms, "open_orders": next.open.len() }),
            },
        )
        .await?;
    Ok(run.job_run(ctx, Some(keys)))
}

/// The state the last run carried (or a new one), saved at once when there was one.
async fn carry_state(
    ctx: &ReconContext,
    run: &mut JobCheckpoint,
) -> Result<StalledState, ReconError> {
    let carried: StalledState = match &run.previous_state {
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_default(),
        None => run.state(),
    };
    if run.previous_state.is_some() {
        // Saved now so that a run failing halfway still carries the watermark to the next one.
        run.set_state(&carried);
        run.save(ctx).await?;
    }
    Ok(carried)
}

/// Where this run reads Cloudshelf orders from: the asked start, else a little before the watermark, else
/// the first run's lookback.
fn read_since(opts: &RunOptions, carried: &StalledState, now: i64) -> DateTime<Utc> {
    let since_ms = opts.since.map(|t| t.timestamp_millis()).unwrap_or_else(|| {
        carried
            .watermark_ms
            .map_or(now - FIRST_RUN_LOOKBACK_MS, |w| w - WATERMARK_OVERLAP_MS)
    });
    DateTime::<Utc>::from_timestamp_millis(since_ms).unwrap_or_default()
}

/// Cloudshelf orders changed since the watermark, plus those still open last time.
async fn read_cloudshelf_orders(
    ctx: &ReconContext,
    cloudshelf: &crate::cloudshelf::CloudshelfClient,
    deadline_ms: i64,
    since: DateTime<Utc>,
    carried: &StalledState,
    counters: &mut Counters,
) -> Result<Vec<CloudshelfOrder>, ReconError> {
    let changed = with_retries(ctx, deadline_ms, "Cloudshelf orders", || {
        cloudshelf.orders_updated_since(since, crate::cloudshelf::MAX_ORDERS_PAGE_SIZE)
    })
    .await?;
    counters.add(counter::CLOUDSHELF_ORDERS_READ, changed.len() as u64);
    let mut orders: BTreeMap<String, CloudshelfOrder> =
        changed.into_iter().map(|o| (o.id.clone(), o)).collect();
    for (id, (status, updated_ms)) in &carried.open {
        if orders.contains_key(id) {
            continue;
        }
        let Some(status) = CloudshelfOrderStatus::parse(status) else {
            continue;
        };
        orders.insert(
            id.clone(),
            CloudshelfOrder {
                id: id.clone(),
                status,
                third_party_id: None,
                updated_at: DateTime::<Utc>::from_timestamp_millis(*updated_ms).unwrap_or_default(),
                lines: Vec::new(),
            },
        );
    }
    Ok(orders.into_values().collect())
}

/// The outbox records of the stores in scope, and the store of every record's Cloudshelf order (in scope or
/// not).
async fn read_outbox(
    outbox: &dyn crate::orders::outbox::OrderOutbox,
    in_scope: &impl Fn(&str) -> bool,
    counters: &mut Counters,
) -> Result<
    (
        Vec<crate::orders::outbox::OutboxRecord>,
        HashMap<String, String>,
    ),
    ReconError,
> {
    let mut records = outbox.list().await?;
    let by_order: HashMap<String, String> = records
        .iter()
        .map(|r| (r.cloudshelf_order_id.clone(), r.store.to_string()))
        .collect();
    records.retain(|r| in_scope(r.store.as_str()));
    counters.add(counter::OUTBOX_RECORDS, records.len() as u64);
    Ok((records, by_order))
}

/// Centra's view of recent kiosk orders old enough to be stuck PENDING.
async fn read_centra_states(
    ctx: &ReconContext,
    deadline_ms: i64,
    records: &[crate::orders::outbox::OutboxRecord],
    now: i64,
    thresholds: &crate::orders::stalled::StalledThresholds,
    counters: &mut Counters,
) -> Result<HashMap<u64, crate::centra::order_reads::CentraOrderState>, ReconError> {
    let mut centra_states = HashMap::new();
    let centra = ctx.sources.centra.as_deref();
    for record in records {
        let age = now - record.created_at_ms;
        if age < thresholds.centra_pending_ms || age > CENTRA_RECHECK_WINDOW_MS {
            continue;
        }
        let Some(centra) = centra else { break };
        for number in &record.centra_orders {
            let state =
                with_retries(ctx, deadline_ms, "Centra order", || centra.order(*number)).await?;
            counters.add(counter::CENTRA_ORDERS_CHECKED, 1);
            if let Some(state) = state {
                centra_states.insert(*number, state);
            }
        }
    }
    Ok(centra_states)
}

/// The report row for one stalled order, counted; none for a Cloudshelf order of a store out of the asked
/// scope.
fn stalled_order_row(
    finding: StalledOrder,
    by_order: &HashMap<String, String>,
    opts: &RunOptions,
    in_scope: &impl Fn(&str) -> bool,
    counters: &mut Counters,
) -> Option<StalledRow> {
    Some(match finding {
        StalledOrder::CloudshelfWithoutCentraOrder {
            cloudshelf_order_id,
            status,
            minutes,
            outbox_state,
        } => {
            let store = by_order
                .get(&cloudshelf_order_id)
                .cloned()
                .unwrap_or_default();
            if opts.store.is_some() && !in_scope(&store) {
                return None;
            }
            counters.add(counter::CLOUDSHELF_WITHOUT_CENTRA, 1);
            StalledRow {
                kind: "cloudshelf_without_centra_order".into(),
                store,
                detail: match &outbox_state {
                    None => "the order never reached the integration (webhook lost): re-send it from Cloudshelf or check the intake".into(),
                    Some(s) => format!("the integration holds it in state {s}"),
                },
                reference: cloudshelf_order_id,
                centra_order: None,
                state: status,
                minutes,
            }
        }
        StalledOrder::OutboxStuck {
            cloudshelf_order_id,
            store,
            state,
            minutes,
            attempts,
        } => {
            counters.add(counter::OUTBOX_STUCK, 1);
            StalledRow {
                kind: "outbox_stuck".into(),
                store,
                reference: cloudshelf_order_id,
                centra_order: None,
                state,
                minutes,
                detail: format!("{attempts} Centra attempts so far"),
            }
        }
        StalledOrder::CentraPending {
            cloudshelf_order_id,
            centra_order,
            minutes,
        } => {
            counters.add(counter::CENTRA_PENDING, 1);
            StalledRow {
                kind: "centra_pending".into(),
                store: by_order
                    .get(&cloudshelf_order_id)
                    .cloned()
                    .unwrap_or_default(),
                reference: cloudshelf_order_id,
                centra_order: Some(centra_order),
                state: "PENDING".into(),
                minutes,
                detail: "Centra has not confirmed the order: check payment and fraud review".into(),
            }
        }
    })
}

/// One row per outbox record parked as an exception, counted.
fn outbox_exception_rows(
    records: &[crate::orders::outbox::OutboxRecord],
    now: i64,
    counters: &mut Counters,
) -> Vec<StalledRow> {
    let mut rows = Vec::new();
    for record in records.iter().filter(|r| r.state == OutboxState::Exception) {
        counters.add(counter::OUTBOX_EXCEPTIONS, 1);
        rows.push(StalledRow {
            kind: "outbox_exception".into(),
            store: record.store.to_string(),
            reference: record.cloudshelf_order_id.clone(),
            centra_order: record.centra_orders.first().copied(),
            state: record.state.as_str().into(),
            minutes: (now - record.updated_at_ms) / 60_000,
            detail: record.exception.clone().unwrap_or_default(),
        });
    }
    rows
}

/// Store movements the ledger holds that Centra does not, past the threshold.
async fn unposted_movement_rows(
    ctx: &ReconContext,
    stores: &[crate::core::ids::StoreCode],
    now: i64,
    thresholds: &crate::orders::stalled::StalledThresholds,
    counters: &mut Counters,
) -> Result<Vec<StalledRow>, ReconError> {
    let mut rows = Vec::new();
    for store in stores {
        // A store that posts daily holds its movements until its close on purpose; the finance close
        // reports what it did not post.
        let holds = ctx
            .mappings
            .store(store.as_str())
            .is_some_and(|m| m.finance_posting == crate::config::mappings::FinancePosting::Daily);
        let ledger_rows = ctx.ledger.list_store(store).await?;
        counters.add(counter::LEDGER_ROWS, ledger_rows.len() as u64);
        for row in ledger_rows {
            if let Some(reason) = &row.blocked {
                counters.add(counter::ITEMS_BLOCKED, 1);
                rows.push(StalledRow {
                    kind: "item_blocked".into(),
                    store: store.to_string(),
                    reference: row.item.key(),
                    centra_order: None,
                    state: "blocked".into(),
                    minutes: (now - row.updated_at_ms) / 60_000,
                    detail: format!(
                        "Centra refused the item ({reason}); {} movements wait. Fix, then `shelfsync unblock`",
                        row.pending.len()
                    ),
                });
                continue;
            }
            let oldest = row.pending.iter().map(|p| p.received_at_ms).min();
            let Some(oldest) = oldest.filter(|_| row.has_unpushed() && !holds) else {
                continue;
            };
            if now - oldest < thresholds.outbox_stuck_ms {
                continue;
            }
            counters.add(counter::MOVEMENTS_NOT_IN_CENTRA, row.pending.len() as u64);
            rows.push(StalledRow {
                kind: "movements_not_in_centra".into(),
                store: store.to_string(),
                reference: row.item.key(),
                centra_order: None,
                state: if row.lease_active(now) {
                    "pushing"
                } else {
                    "waiting"
                }
                .into(),
                minutes: (now - oldest) / 60_000,
                detail: format!(
                    "{} movement(s) accepted, oldest event {}",
                    row.pending.len(),
                    row.pending
                        .first()
                        .map(|p| p.event_id.as_str())
                        .unwrap_or("")
                ),
            });
        }
    }
    Ok(rows)
}

/// The archive's gaps waiting in its gap queue (left there for the operator), one row each for the first
/// [`ARCHIVE_GAPS_SHOWN`].
async fn archive_gap_rows(
    ctx: &ReconContext,
    now: i64,
    counters: &mut Counters,
) -> Result<Vec<StalledRow>, ReconError> {
    let Some(source) = &ctx.sources.archive_gaps else {
        return Ok(Vec::new());
    };
    let (waiting, gaps) = source.peek(ARCHIVE_GAPS_SHOWN).await?;
    counters.add(counter::ARCHIVE_GAPS, waiting);
    Ok(gaps
        .into_iter()
        .map(|gap| match gap {
            Ok(g) => {
                let last_ms = DateTime::parse_from_rfc3339(&g.last_record_at)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(now);
                StalledRow {
                    kind: "archive_gap".into(),
                    store: "*".into(),
                    reference: format!("{} – {}", g.first_record_at, g.last_record_at),
                    centra_order: None,
                    state: g.condition.clone().unwrap_or_else(|| "not archived".into()),
                    minutes: (now - last_ms).max(0) / 60_000,
                    detail: format!(
                        "{} stream record(s) processed but not archived; fill with: {}",
                        g.records,
                        g.backfill_command()
                    ),
                }
            }
            Err(reason) => StalledRow {
                kind: "archive_gap".into(),
                store: "*".into(),
                reference: "unreadable gap record".into(),
                centra_order: None,
                state: "unreadable".into(),
                minutes: 0,
                detail: format!("see `shelfsync dlq list archive`: {reason}"),
            },
        })
        .collect())
}

/// Publishes the two metrics and returns (stalled orders, unposted store movements).
fn count_stalled(ctx: &ReconContext, counters: &Counters) -> (u64, u64) {
    let stalled_orders = counters.get(counter::CLOUDSHELF_WITHOUT_CENTRA)
        + counters.get(counter::OUTBOX_STUCK)
        + counters.get(counter::CENTRA_PENDING)
        + counters.get(counter::OUTBOX_EXCEPTIONS);
    let unposted =
        counters.get(counter::MOVEMENTS_NOT_IN_CENTRA) + counters.get(counter::ITEMS_BLOCKED);
    ctx.metrics.count(names::STALLED_ORDERS, stalled_orders);
    ctx.metrics.count(names::UNPOSTED_STORE_MOVEMENTS, unposted);
    (stalled_orders, unposted)
}

/// What the next run carries: the latest `updatedAt` read, and the placed or paid orders still without a
/// Centra order.
fn next_state(
    orders: &[CloudshelfOrder],
    records: &[crate::orders::outbox::OutboxRecord],
    watermark_ms: Option<i64>,
) -> StalledState {
    StalledState {
        watermark_ms: orders
            .iter()
            .map(|o| o.updated_at.timestamp_millis())
            .chain(watermark_ms)
            .max(),
        open: orders
            .iter()
            .filter(|o| {
                matches!(
                    o.status,
                    CloudshelfOrderStatus::Placed | CloudshelfOrderStatus::Paid
                ) && !records
                    .iter()
                    .any(|r| r.cloudshelf_order_id == o.id && !r.centra_orders.is_empty())
            })
            .map(|o| {
                (
                    o.id.clone(),
                    (
                        o.status.as_str().to_string(),
                        o.updated_at.timestamp_millis(),
                    ),
                )
            })
            .collect(),
    }
}
