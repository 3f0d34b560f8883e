//! SKU audit (nightly): Centra's sizes against Cloudshelf's variants (see [`crate::recon::compare::sku_audit`] for
//! what is compared). With `apply_fixes` (and not a dry run) the sizes Cloudshelf lacks are created there
//! under our external gids, products first.
//!
//! One unit: both catalogues are read whole (20,000 sizes are a few MB) and compared; an invocation that runs
//! out of time saves nothing and the next one starts the reads again.

use crate::recon::compare::{
    sku_audit, upserts_for_missing, CatalogueUpserts, SkuAuditReport, SkuFinding, System,
};
use crate::recon::report::ReportRow;
use crate::recon::run::{
    read_centra_sizes, read_cloudshelf_variants, JobCheckpoint, Outcome, Pacer,
};
use crate::recon::{Counters, JobKind, JobRun, ReconContext, ReconError, RunOptions};
use crate::telemetry::metrics::names;
use serde::{Deserialize, Serialize};

const JOB: JobKind = JobKind::SkuAudit;

pub mod counter {
    pub const CENTRA_SIZES: &str = "centra_sizes";
    pub const CLOUDSHELF_VARIANTS: &str = "cloudshelf_variants";
    pub const MATCHED: &str = "matched";
    pub const FINDINGS: &str = "findings";
    pub const MISSING_IN_CLOUDSHELF: &str = "missing_in_cloudshelf";
    pub const MISSING_IN_CENTRA: &str = "missing_in_centra";
    pub const PRODUCTS_CREATED: &str = "products_created";
    pub const VARIANTS_CREATED: &str = "variants_created";
    pub const FIX_ERRORS: &str = "fix_errors";
}

/// One finding, flattened for the CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuAuditRow {
    pub kind: String,
    pub sku: String,
    pub centra_size_id: Option<u64>,
    pub centra_ean: Option<String>,
    pub cloudshelf_variant_id: Option<String>,
    pub cloudshelf_barcode: Option<String>,
    /// What an operator needs to know beyond the columns.
    pub detail: String,
    /// `reported`, `created_in_cloudshelf`, `would_create` (dry run with fixes asked), `fix_failed`.
    pub action: String,
}

impl ReportRow for SkuAuditRow {
    fn csv_header() -> &'static [&'static str] {
        &[
            "kind",
            "sku",
            "centra_size_id",
            "centra_ean",
            "cloudshelf_variant_id",
            "cloudshelf_barcode",
            "detail",
            "action",
        ]
    }

    fn csv_fields(&self) -> Vec<String> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.kind.clone(),
            self.sku.clone(),
            self.centra_size_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            text(&self.centra_ean),
            text(&self.cloudshelf_variant_id),
            text(&self.cloudshelf_barcode),
            self.detail.clone(),
            self.action.clone(),
        ]
    }
}

fn row_of(finding: &SkuFinding) -> SkuAuditRow {
    let mut row = SkuAuditRow {
        kind: finding.kind().to_string(),
        sku: String::new(),
        centra_size_id: None,
        centra_ean: None,
        cloudshelf_variant_id: None,
        cloudshelf_barcode: None,
        detail: String::new(),
        action: "reported".into(),
    };
    match finding {
        SkuFinding::MissingInCloudshelf { .. }
        | SkuFinding::MissingInCentra { .. }
        | SkuFinding::NoSkuInCloudshelf { .. }
        | SkuFinding::ExternalIdMismatch { .. } => describe_unmatched(finding, &mut row),
        SkuFinding::InactiveButSellable { .. }
        | SkuFinding::EanConflict { .. }
        | SkuFinding::DuplicateEan { .. }
        | SkuFinding::DuplicateSku { .. } => describe_conflict(finding, &mut row),
    }
    row
}

fn system_name(s: &System) -> &'static str {
    match s {
        System::Centra => "Centra",
        System::Cloudshelf => "Cloudshelf",
    }
}

/// A finding where one side has no match for the other.
fn describe_unmatched(finding: &SkuFinding, row: &mut SkuAuditRow) {
    match finding {
        SkuFinding::MissingInCloudshelf { size } => {
            row.sku = size.sku.clone();
            row.centra_size_id = Some(size.size_id);
            row.centra_ean = size.ean.clone();
            row.detail = format!(
                "active in Centra (product {} {}), no Cloudshelf variant: kiosks cannot show or sell it",
                size.product_number, size.size_number
            );
        }
        SkuFinding::MissingInCentra { sku, variant_id } => {
            row.sku = sku.clone();
            row.cloudshelf_variant_id = Some(variant_id.clone());
            row.detail =
                "Cloudshelf variant with a SKU Centra does not know: a kiosk order for it fails"
                    .into();
        }
        SkuFinding::NoSkuInCloudshelf { variant_id } => {
            row.cloudshelf_variant_id = Some(variant_id.clone());
            row.detail = "Cloudshelf variant without SKU or Centra id: it cannot be matched".into();
        }
        SkuFinding::ExternalIdMismatch {
            variant_id,
            sku,
            external_sku,
        } => {
            row.sku = sku.clone();
            row.cloudshelf_variant_id = Some(variant_id.clone());
            row.detail =
                format!("external id names SKU {external_sku}: stock pushes go to another item");
        }
        _ => unreachable!("described by describe_conflict"),
    }
}

/// A finding where both sides have the item but disagree, or one side repeats it.
fn describe_conflict(finding: &SkuFinding, row: &mut SkuAuditRow) {
    match finding {
        SkuFinding::InactiveButSellable {
            sku,
            size_id,
            variant_id,
        } => {
            row.sku = sku.clone();
            row.centra_size_id = Some(*size_id);
            row.cloudshelf_variant_id = Some(variant_id.clone());
            row.detail =
                "inactive in Centra but sellable in Cloudshelf: Centra would refuse the order"
                    .into();
        }
        SkuFinding::EanConflict {
            sku,
            centra_ean,
            cloudshelf_barcode,
            variant_id,
        } => {
            row.sku = sku.clone();
            row.centra_ean = centra_ean.clone();
            row.cloudshelf_barcode = cloudshelf_barcode.clone();
            row.cloudshelf_variant_id = Some(variant_id.clone());
            row.detail =
                "EAN differs from the Cloudshelf barcode: scans and EAN-keyed events disagree"
                    .into();
        }
        SkuFinding::DuplicateEan {
            system: s,
            ean,
            skus,
        } => {
            row.centra_ean = Some(ean.clone());
            row.sku = skus.join(" ");
            row.detail = format!("{} has this EAN on {} SKUs", system_name(s), skus.len());
        }
        SkuFinding::DuplicateSku {
            system: s,
            sku,
            ids,
        } => {
            row.sku = sku.clone();
            row.detail = format!(
                "{} has this SKU {} times: {}",
                system_name(s),
                ids.len(),
                ids.join(", ")
            );
        }
        _ => unreachable!("described by describe_unmatched"),
    }
}

/// The whole Centra catalogue was just read: keep it as the snapshot intake resolves item names with. A failed
/// write only leaves intake on the previous snapshot (and its lookups).
async fn save_catalogue_snapshot(
    ctx: &ReconContext,
    sizes: &[crate::centra::catalogue::CentraSize],
) {
    use crate::stock::identity::{CatalogueSnapshot, SNAPSHOT_KEY};
    let snapshot = CatalogueSnapshot {
        taken_at_ms: ctx.clock.now_millis(),
        sizes: sizes.iter().map(crate::centra::SizeRecord::from).collect(),
    };
    let body = serde_json::to_vec(&snapshot).expect("snapshot serialises");
    if let Err(e) = ctx
        .reports
        .put(SNAPSHOT_KEY, "application/json", body)
        .await
    {
        tracing::warn!(error = %e, "catalogue snapshot not saved");
    }
}

/// Runs the SKU audit (catalogue-wide: `opts.store` is ignored).
pub async fn run_sku_audit(ctx: &ReconContext, opts: &RunOptions) -> Result<JobRun, ReconError> {
    let opts = RunOptions {
        store: None,
        ..opts.clone()
    };
    let mut run = JobCheckpoint::claim(ctx, JOB, &opts).await?;
    let mut pacer = Pacer::new(ctx.settings.page_interval);
    let sizes = read_centra_sizes(ctx, run.deadline_ms, &mut pacer).await?;
    save_catalogue_snapshot(ctx, &sizes).await;
    let variants = read_cloudshelf_variants(ctx, run.deadline_ms, true).await?;
    let audit = sku_audit(sizes, variants);

    let mut counters = audit_counters(&audit);
    let mut rows: Vec<SkuAuditRow> = audit.findings.iter().map(row_of).collect();
    let mut notes = vec![
        "Matched by SKU; EANs compared without leading zeros. Missing in Cloudshelf counts active Centra sizes only."
            .to_string(),
    ];

    let upserts = upserts_for_missing(&audit);
    if opts.apply_fixes && !upserts.is_empty() {
        let action = if opts.dry_run {
            "would_create".to_string()
        } else {
            create_missing(ctx, &upserts, &mut counters, &mut notes).await?
        };
        for row in rows
            .iter_mut()
            .filter(|r| r.kind == "missing_in_cloudshelf")
        {
            row.action = action.clone();
        }
    }

    let missing =
        counters.get(counter::MISSING_IN_CLOUDSHELF) + counters.get(counter::MISSING_IN_CENTRA);
    ctx.metrics.count(names::MISSING_SKUS, missing);
    ctx.metrics
        .count(names::CATALOGUE_FINDINGS, audit.findings.len() as u64);
    run.cp.counters = counters.clone();
    let details = serde_json::json!({ "counts": audit.counts() });
    let keys = run
        .publish(
            ctx,
            Outcome {
                findings: audit.findings.len() as u64,
                exceptions: missing + counters.get(counter::FIX_ERRORS),
                rows,
                truncated: false,
                notes,
                details,
            },
        )
        .await?;
    Ok(run.job_run(ctx, Some(keys)))
}

/// The audit's totals and its count per kind of finding.
fn audit_counters(audit: &SkuAuditReport) -> Counters {
    let mut counters = Counters::default();
    counters.add(counter::CENTRA_SIZES, audit.centra_sizes as u64);
    counters.add(
        counter::CLOUDSHELF_VARIANTS,
        audit.cloudshelf_variants as u64,
    );
    counters.add(counter::MATCHED, audit.matched as u64);
    counters.add(counter::FINDINGS, audit.findings.len() as u64);
    for (kind, n) in audit.counts() {
        counters.add(kind, n as u64);
    }
    counters
}

/// Creates in Cloudshelf what it lacks (products, then their variants); the action recorded on
/// the missing rows. A refusal is counted and noted.
async fn create_missing(
    ctx: &ReconContext,
    upserts: &CatalogueUpserts,
    counters: &mut Counters,
    notes: &mut Vec<String>,
) -> Result<String, ReconError> {
    let cloudshelf = ctx.sources.cloudshelf()?;
    let mut errors = cloudshelf.upsert_products(&upserts.products).await?;
    if errors.is_empty() {
        errors = cloudshelf
            .upsert_product_variants(&upserts.variants)
            .await?;
    }
    let action = if errors.is_empty() {
        counters.add(counter::PRODUCTS_CREATED, upserts.products.len() as u64);
        counters.add(
            counter::VARIANTS_CREATED,
            upserts
                .variants
                .iter()
                .map(|v| v.variants.len() as u64)
                .sum(),
        );
        "created_in_cloudshelf".to_string()
    } else {
        counters.add(counter::FIX_ERRORS, errors.len() as u64);
        notes.push(format!(
            "Cloudshelf refused part of the fix: {}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        "fix_failed".to_string()
    };
    Ok(action)
}
