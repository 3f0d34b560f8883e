//! Availability to Cloudshelf: each store warehouse's Centra free-to-allocate pushed to the store's Cloudshelf
//! location with `upsertStockLevels` — only rows that changed since the last push — and Cloudshelf's
//! `isInStock` compared with what Centra implies (see [`crate::recon::compare::availability_diff`]).
//!
//! Unit of work: one store. What was last pushed per store is kept in the report store
//! (`state/availability/<store>.json`, one quantity per variant) rather than the checkpoint, whose DynamoDB
//! item could not hold 20,000 rows per store. It is written only after Cloudshelf took the push, so a crash in
//! between pushes the same levels again (absolute quantities: harmless).
//!
//! Cloudshelf's flags are read once per invocation for the stores of the run (only their locations are kept),
//! after the pushes of the previous store; a mismatch whose level this run pushes is expected to clear and is
//! reported as `corrected_by_push`, one Cloudshelf keeps after an earlier push is a finding.

use crate::centra::catalogue::CentraStockRow;
use crate::recon::compare::{availability_diff, cloudshelf_in_stock_map};
use crate::recon::report::{ReportRow, JSON};
use crate::recon::run::{read_cloudshelf_variants, with_retries, JobCheckpoint, Outcome, Pacer};
use crate::recon::Cursor;
use crate::recon::{Counters, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::telemetry::metrics::names;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

const JOB: JobKind = JobKind::Availability;

pub mod counter {
    pub const STORES: &str = "stores";
    pub const STORES_FAILED: &str = "stores_failed";
    pub const CENTRA_ROWS: &str = "centra_rows";
    pub const LEVELS_CHANGED: &str = "levels_changed";
    pub const LEVELS_PUSHED: &str = "levels_pushed";
    pub const PUSH_ERRORS: &str = "push_errors";
    /// Cloudshelf disagrees and this run's push does not change the level: a real finding.
    pub const IN_STOCK_MISMATCHES: &str = "in_stock_mismatches";
    /// Cloudshelf disagrees, and this run pushes the level that should fix it.
    pub const CORRECTED_BY_PUSH: &str = "corrected_by_push";
    /// Centra sizes with stock that Cloudshelf has no variant for (not pushed; see the SKU audit).
    pub const UNKNOWN_VARIANTS: &str = "unknown_variants";
}

/// One (location, variant) whose `isInStock` is not what Centra's stock implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityRow {
    pub store: String,
    pub location_id: String,
    pub product_variant_id: String,
    pub sku: String,
    pub centra_free_to_allocate: i64,
    pub expected_in_stock: bool,
    /// `None`: Cloudshelf has no stock level there.
    pub cloudshelf_in_stock: Option<bool>,
    pub corrected_by_push: bool,
}

impl ReportRow for AvailabilityRow {
    fn csv_header() -> &'static [&'static str] {
        &[
            "store",
            "location_id",
            "product_variant_id",
            "sku",
            "centra_free_to_allocate",
            "expected_in_stock",
            "cloudshelf_in_stock",
            "corrected_by_push",
        ]
    }

    fn csv_fields(&self) -> Vec<String> {
        vec![
            self.store.clone(),
            self.location_id.clone(),
            self.product_variant_id.clone(),
            self.sku.clone(),
            self.centra_free_to_allocate.to_string(),
            self.expected_in_stock.to_string(),
            self.cloudshelf_in_stock
                .map_or_else(|| "no level".to_string(), |b| b.to_string()),
            self.corrected_by_push.to_string(),
        ]
    }
}

/// What was last pushed for one store: variant id → quantity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushedLevels {
    pub location_id: String,
    pub levels: BTreeMap<String, i64>,
}

pub fn pushed_levels_key(store: &str) -> String {
    format!("state/availability/{store}.json")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AvailabilityState {
    store_counters: BTreeMap<String, Counters>,
    failed: BTreeMap<String, String>,
}

/// Runs (or resumes) the availability push.
pub async fn run_availability(ctx: &ReconContext, opts: &RunOptions) -> Result<JobRun, ReconError> {
    let cloudshelf = ctx.sources.cloudshelf()?;
    let mut run = JobCheckpoint::claim(ctx, JOB, opts).await?;
    let mut state: AvailabilityState = run.state();
    let mut pacer = Pacer::new(ctx.settings.page_interval);
    let mut cloudshelf_view: Option<CloudshelfView> = None;
    let mut slowest_store_ms = 0;

    while (run.cp.cursor.store_index as usize) < run.cp.stores.len() {
        if run.out_of_time(ctx, slowest_store_ms) {
            return Ok(run.job_run(ctx, None));
        }
        let started = ctx.clock.now_millis();
        let index = run.cp.cursor.store_index;
        let store = run.cp.stores[index as usize].clone();
        let mut counters = Counters::default();
        if let Some(mapping) = ctx.mappings.store(store.as_str()).cloned() {
            counters.add(counter::STORES, 1);
            if cloudshelf_view.is_none() {
                cloudshelf_view = Some(read_cloudshelf_view(ctx, &run).await?);
            }
            let view = cloudshelf_view.as_ref().expect("read above");
            match read_warehouse(
                ctx,
                &mut pacer,
                run.deadline_ms,
                mapping.centra_warehouse_id,
            )
            .await?
            {
                Err(reason) => {
                    counters.add(counter::STORES_FAILED, 1);
                    state.failed.insert(store.to_string(), reason);
                }
                Ok(rows) => {
                    counters.add(counter::CENTRA_ROWS, rows.len() as u64);
                    let key = pushed_levels_key(store.as_str());
                    let levels = StoreLevels {
                        location: mapping.cloudshelf_location.clone(),
                        previous: read_pushed_levels(ctx, &key).await?,
                        key,
                    };
                    let (updates, mismatches) =
                        levels_to_push(ctx, view, rows, &levels, &mut counters);
                    if !opts.dry_run && !updates.is_empty() {
                        let pushed = push_levels(
                            ctx,
                            cloudshelf,
                            run.deadline_ms,
                            &updates,
                            levels,
                            &mut counters,
                        )
                        .await?;
                        if let Err(reason) = pushed {
                            state.failed.insert(store.to_string(), reason);
                        }
                    }
                    let pushed_now = !opts.dry_run && counters.get(counter::PUSH_ERRORS) == 0;
                    let rows = mismatch_rows(mismatches, view, pushed_now, &store, &mut counters);
                    run.write_part(ctx, index, store.as_str(), &counters, rows)
                        .await?;
                }
            }
        }
        finish_store(ctx, &mut run, &mut state, index, &store, &counters).await?;
        slowest_store_ms = slowest_store_ms.max(ctx.clock.now_millis() - started);
    }

    publish_availability(ctx, run, opts, &state).await
}

/// One store's Cloudshelf location, and what was last pushed there (kept under `key`).
struct StoreLevels {
    location: String,
    key: String,
    previous: PushedLevels,
}

/// What was last pushed for a store (none yet: nothing).
async fn read_pushed_levels(ctx: &ReconContext, key: &str) -> Result<PushedLevels, ReconError> {
    Ok(match ctx.reports.get(key).await? {
        Some(body) => serde_json::from_slice(&body).unwrap_or_default(),
        None => PushedLevels::default(),
    })
}

/// The levels that changed since the last push (for variants Cloudshelf has), and the `isInStock` flags
/// that disagree with Centra.
fn levels_to_push(
    ctx: &ReconContext,
    view: &CloudshelfView,
    rows: Vec<CentraStockRow>,
    levels: &StoreLevels,
    counters: &mut Counters,
) -> (
    Vec<crate::cloudshelf::StockLevelUpdate>,
    Vec<crate::recon::compare::InStockMismatch>,
) {
    let location = &levels.location;
    let previous = &levels.previous;
    // A moved location makes every level new there.
    let last_pushed: HashMap<(String, String), i64> = if &previous.location_id == location {
        previous
            .levels
            .iter()
            .map(|(v, q)| ((location.clone(), v.clone()), *q))
            .collect()
    } else {
        HashMap::new()
    };
    let (mut updates, mismatches) = availability_diff(
        rows.into_iter().map(|r| (location.clone(), r)),
        &view.in_stock,
        &last_pushed,
        ctx.settings.cloudshelf_safety_stock,
    );
    // A size Cloudshelf lacks would fail the whole call with a userError that names no
    // input; the SKU audit reports it, the push leaves it out.
    let before = updates.len();
    updates.retain(|u| view.variants.contains(&u.product_variant_id));
    counters.add(counter::UNKNOWN_VARIANTS, (before - updates.len()) as u64);
    counters.add(counter::LEVELS_CHANGED, updates.len() as u64);
    (updates, mismatches)
}

/// Pushes the changed levels and, once Cloudshelf took them, records them as the store's last push; the
/// inner error is Cloudshelf's userErrors, for the report.
async fn push_levels(
    ctx: &ReconContext,
    cloudshelf: &crate::cloudshelf::CloudshelfClient,
    deadline_ms: i64,
    updates: &[crate::cloudshelf::StockLevelUpdate],
    levels: StoreLevels,
    counters: &mut Counters,
) -> Result<Result<(), String>, ReconError> {
    let errors = with_retries(ctx, deadline_ms, "Cloudshelf upsertStockLevels", || {
        cloudshelf.upsert_stock_levels(updates)
    })
    .await?;
    if !errors.is_empty() {
        // userErrors name no input, so nothing of this push is recorded: all of it is
        // sent again next run (absolute levels).
        counters.add(counter::PUSH_ERRORS, errors.len() as u64);
        return Ok(Err(errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ")));
    }
    counters.add(counter::LEVELS_PUSHED, updates.len() as u64);
    let StoreLevels {
        location,
        key,
        previous,
    } = levels;
    let mut levels: BTreeMap<String, i64> = if previous.location_id == location {
        previous.levels
    } else {
        BTreeMap::new()
    };
    // Zeros are kept: a level Cloudshelf holds at 0 must not look new next run.
    for u in updates {
        levels.insert(u.product_variant_id.clone(), u.quantity);
    }
    let pushed = PushedLevels {
        location_id: location,
        levels,
    };
    let body = serde_json::to_vec(&pushed)
        .map_err(|e| crate::core::errors::BackendError::new("reports", e.to_string()))?;
    ctx.reports.put(&key, JSON, body).await?;
    Ok(Ok(()))
}

/// The report rows for the mismatched flags of variants Cloudshelf has, counted.
fn mismatch_rows(
    mismatches: Vec<crate::recon::compare::InStockMismatch>,
    view: &CloudshelfView,
    pushed_now: bool,
    store: &crate::core::ids::StoreCode,
    counters: &mut Counters,
) -> Vec<AvailabilityRow> {
    mismatches
        .into_iter()
        .filter(|m| view.variants.contains(&m.product_variant_id))
        .filter(|m| {
            // A level this run pushed is expected to fix the flag: counted, not listed.
            let fixed = m.corrected_by_push && pushed_now;
            counters.add(
                if fixed {
                    counter::CORRECTED_BY_PUSH
                } else {
                    counter::IN_STOCK_MISMATCHES
                },
                1,
            );
            !fixed
        })
        .map(|m| AvailabilityRow {
            store: store.to_string(),
            location_id: m.location_id,
            product_variant_id: m.product_variant_id,
            sku: m.sku,
            centra_free_to_allocate: m.free_to_allocate,
            expected_in_stock: m.expected_in_stock,
            cloudshelf_in_stock: m.cloudshelf_in_stock,
            corrected_by_push: m.corrected_by_push,
        })
        .collect()
}

/// Counts one store's work into the metrics and the run, and saves the run past it.
async fn finish_store(
    ctx: &ReconContext,
    run: &mut JobCheckpoint,
    state: &mut AvailabilityState,
    index: u32,
    store: &crate::core::ids::StoreCode,
    counters: &Counters,
) -> Result<(), ReconError> {
    ctx.metrics.count(
        names::AVAILABILITY_ROWS_PUSHED,
        counters.get(counter::LEVELS_PUSHED),
    );
    ctx.metrics.count(
        names::IN_STOCK_MISMATCHES,
        counters.get(counter::IN_STOCK_MISMATCHES),
    );
    run.cp.counters.merge(counters);
    state
        .store_counters
        .entry(store.to_string())
        .or_default()
        .merge(counters);
    run.cp.cursor = Cursor {
        store_index: index + 1,
        page: 1,
    };
    run.set_state(state);
    run.save(ctx).await?;
    Ok(())
}

/// Collects the stores' rows and publishes the report.
async fn publish_availability(
    ctx: &ReconContext,
    mut run: JobCheckpoint,
    opts: &RunOptions,
    state: &AvailabilityState,
) -> Result<JobRun, ReconError> {
    let (rows, truncated) = run.collect_rows::<AvailabilityRow>(ctx).await?;
    let counters = run.cp.counters.clone();
    let mut notes = vec![format!(
        "Pushed Centra freeToAllocate (floored at 0) as Cloudshelf stock levels; in stock means quantity > 0 and ≥ safety stock {}.",
        ctx.settings.cloudshelf_safety_stock
    )];
    if opts.dry_run {
        notes.push("Dry run: nothing was pushed.".into());
    }
    for (store, reason) in &state.failed {
        notes.push(format!("{store}: {reason}"));
    }
    let keys = run
        .publish(
            ctx,
            Outcome {
                findings: counters.get(counter::IN_STOCK_MISMATCHES),
                exceptions: counters.get(counter::STORES_FAILED)
                    + counters.get(counter::PUSH_ERRORS),
                rows,
                truncated,
                notes,
                details: serde_json::json!({ "stores": state.store_counters }),
            },
        )
        .await?;
    Ok(run.job_run(ctx, Some(keys)))
}

/// What Cloudshelf holds: `isInStock` per (location, variant), only for the locations of this run's stores,
/// and every id a variant can be named by.
struct CloudshelfView {
    in_stock: HashMap<(String, String), bool>,
    variants: HashSet<String>,
}

async fn read_cloudshelf_view(
    ctx: &ReconContext,
    run: &JobCheckpoint,
) -> Result<CloudshelfView, ReconError> {
    let locations: HashSet<&str> = run
        .cp
        .stores
        .iter()
        .filter_map(|s| ctx.mappings.store(s.as_str()))
        .map(|m| m.cloudshelf_location.as_str())
        .collect();
    let mut variants = read_cloudshelf_variants(ctx, run.deadline_ms, true).await?;
    for v in &mut variants {
        v.stock_levels.retain(|l| {
            locations.contains(l.location_id.as_str())
                || l.location_platform_id
                    .as_deref()
                    .is_some_and(|p| locations.contains(p))
        });
    }
    Ok(CloudshelfView {
        in_stock: cloudshelf_in_stock_map(&variants),
        variants: variants
            .iter()
            .flat_map(|v| std::iter::once(v.id.clone()).chain(v.platform_provided_id.clone()))
            .collect(),
    })
}

/// A warehouse's rows, paced and retried per page; `Err(reason)` when Centra refuses the warehouse.
async fn read_warehouse(
    ctx: &ReconContext,
    pacer: &mut Pacer,
    deadline_ms: i64,
    warehouse_id: u64,
) -> Result<Result<Vec<CentraStockRow>, String>, ReconError> {
    use crate::centra::CentraError;
    let limit = ctx.settings.page_limit;
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for page in 1.. {
        pacer.wait().await;
        let read = with_retries(ctx, deadline_ms, "Centra warehouse stock page", || {
            ctx.centra_stock.stock_page(warehouse_id, page, limit)
        })
        .await;
        let read = match read {
            Ok(read) => read,
            Err(CentraError::GraphQl(m) | CentraError::Rejected(m) | CentraError::Protocol(m)) => {
                return Ok(Err(m))
            }
            Err(e) => return Err(e.into()),
        };
        let n = read.len();
        rows.extend(read.into_iter().filter(|r| seen.insert(r.size_id)));
        if n < limit as usize {
            break;
        }
    }
    Ok(Ok(rows))
}
