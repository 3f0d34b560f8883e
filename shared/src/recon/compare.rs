//! Pure comparisons behind scheduled reconciliation (no I/O; deterministic, sorted output whatever the
//! input order):
//!
//! - [`sku_audit`]: Centra's sizes against Cloudshelf's variants, matched by SKU.
//! - [`upserts_for_missing`]: the `upsertProducts` / `upsertProductVariants` inputs that create what
//!   Cloudshelf lacks.
//! - [`availability_diff`]: the stock levels to push to Cloudshelf (only those changed since the last push)
//!   and where Cloudshelf's `isInStock` disagrees with Centra.
//!
//! # External ids
//!
//! Cloudshelf takes our own ids as `gid://external/<Namespace>/<id>` (upsert inputs' `id`: "a Cloudshelf gid, or
//! your own external gid", `schema/cloudshelf.graphql`). A Centra
//! size is a Cloudshelf variant `gid://external/CentraProductSize/<SKU>` and a Centra product a Cloudshelf
//! product `gid://external/CentraProduct/<product id>`:
//! - the variant is keyed by the full SKU, not the numeric size id, because every other path already names
//!   items by SKU: store events, the stock push (`StockLevelInput.productVariantId` is derived from the SKU
//!   with no lookup table) and order sync (which reads the SKU back out of the gid). A SKU edited in Centra
//!   therefore shows up here as "missing in Cloudshelf" plus "missing in Centra".
//! - the product is keyed by Centra's numeric product id, which, unlike `productNumber`, cannot be edited;
//!   Centra's variants (colours) are not a Cloudshelf level: each Centra size is one Cloudshelf variant of
//!   the Centra product.
//!
//! The SKU is put into the gid as it is (no escaping); whether Cloudshelf accepts every character a
//! Centra SKU may hold (`/`, spaces) is UNVERIFIED.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::centra::catalogue::{CentraSize, CentraStockRow};
use crate::cloudshelf::catalogue::{
    CloudshelfVariant, ProductInput, ProductVariantInput, UpsertVariantsInput,
};
use crate::cloudshelf::StockLevelUpdate;

/// Namespace of the external gid of a Centra product in Cloudshelf.
pub const CENTRA_PRODUCT_NAMESPACE: &str = "CentraProduct";
/// Namespace of the external gid of a Centra size (a Cloudshelf variant).
pub const CENTRA_SIZE_NAMESPACE: &str = "CentraProductSize";

const EXTERNAL_PREFIX: &str = "gid://external/";

/// `gid://external/CentraProduct/<id>`.
pub fn product_gid(product_id: u64) -> String {
    format!("{EXTERNAL_PREFIX}{CENTRA_PRODUCT_NAMESPACE}/{product_id}")
}

/// `gid://external/CentraProductSize/<SKU>`.
pub fn size_gid(sku: &str) -> String {
    format!("{EXTERNAL_PREFIX}{CENTRA_SIZE_NAMESPACE}/{sku}")
}

/// The SKU in one of our size gids; `None` for any other id.
pub fn sku_of_size_gid(gid: &str) -> Option<&str> {
    gid.strip_prefix(EXTERNAL_PREFIX)?
        .strip_prefix(CENTRA_SIZE_NAMESPACE)?
        .strip_prefix('/')
        .filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Centra,
    Cloudshelf,
}

/// One discrepancy found by [`sku_audit`]. Cloudshelf variants are named by their Cloudshelf gid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkuFinding {
    /// An active Centra size with no Cloudshelf variant of its SKU (inactive sizes need none).
    MissingInCloudshelf { size: CentraSize },
    /// A Cloudshelf variant whose SKU Centra does not know, in any status.
    MissingInCentra { sku: String, variant_id: String },
    /// A Cloudshelf variant with neither a SKU nor one of our size gids: it cannot be matched.
    NoSkuInCloudshelf { variant_id: String },
    /// The variant's `sku` differs from the SKU in its external gid: stock pushes (which use the gid of
    /// the SKU) and what the kiosk shows concern different items. The audit matches on `sku`.
    ExternalIdMismatch {
        variant_id: String,
        sku: String,
        external_sku: String,
    },
    /// Not sellable in Centra (size, variant or product inactive) but offered by Cloudshelf: in stock
    /// somewhere, or available to purchase. A kiosk order for it would be refused by Centra.
    InactiveButSellable {
        sku: String,
        size_id: u64,
        variant_id: String,
    },
    /// Same SKU, different EAN (Centra) and barcode (Cloudshelf); one side empty counts too.
    EanConflict {
        sku: String,
        centra_ean: Option<String>,
        cloudshelf_barcode: Option<String>,
        variant_id: String,
    },
    /// One EAN on several SKUs within one system: EAN-only store events cannot be resolved.
    DuplicateEan {
        system: System,
        ean: String,
        skus: Vec<String>,
    },
    /// One SKU on several sizes (Centra ids) or variants (Cloudshelf gids) within one system.
    DuplicateSku {
        system: System,
        sku: String,
        ids: Vec<String>,
    },
}

impl SkuFinding {
    /// A short stable name, e.g. for metrics dimensions.
    pub fn kind(&self) -> &'static str {
        match self {
            SkuFinding::MissingInCloudshelf { .. } => "missing_in_cloudshelf",
            SkuFinding::MissingInCentra { .. } => "missing_in_centra",
            SkuFinding::NoSkuInCloudshelf { .. } => "no_sku_in_cloudshelf",
            SkuFinding::ExternalIdMismatch { .. } => "external_id_mismatch",
            SkuFinding::InactiveButSellable { .. } => "inactive_but_sellable",
            SkuFinding::EanConflict { .. } => "ean_conflict",
            SkuFinding::DuplicateEan { .. } => "duplicate_ean",
            SkuFinding::DuplicateSku { .. } => "duplicate_sku",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkuAuditReport {
    pub centra_sizes: usize,
    pub cloudshelf_variants: usize,
    /// Centra SKUs with at least one Cloudshelf variant.
    pub matched: usize,
    /// Sorted (by kind, then content) and free of repeats.
    pub findings: Vec<SkuFinding>,
    /// External gids of the Cloudshelf products seen (so that [`upserts_for_missing`] does not rename
    /// products that exist).
    pub cloudshelf_products: BTreeSet<String>,
}

impl SkuAuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Findings per [`SkuFinding::kind`].
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.kind()).or_default() += 1;
        }
        counts
    }

    pub fn missing_in_cloudshelf(&self) -> impl Iterator<Item = &CentraSize> {
        self.findings.iter().filter_map(|f| match f {
            SkuFinding::MissingInCloudshelf { size } => Some(size),
            _ => None,
        })
    }
}

fn norm_sku(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// EAN / barcode as compared: trimmed, empty as none, and all-digit codes without leading zeros (a GTIN
/// keeps its meaning when zero-padded: UPC-A `036000291452` is EAN-13 `0036000291452`).
fn norm_ean(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let stripped = s.trim_start_matches('0');
        return Some(if stripped.is_empty() { "0" } else { stripped }.to_string());
    }
    Some(s.to_string())
}

/// Whether a Cloudshelf shopper can buy the variant somewhere.
fn sellable(v: &CloudshelfVariant) -> bool {
    v.is_in_stock || v.available_to_purchase || v.stock_levels.iter().any(|l| l.is_in_stock)
}

/// Compare Centra's sizes with Cloudshelf's variants by SKU. See [`SkuFinding`] for what is reported.
pub fn sku_audit(
    centra: impl IntoIterator<Item = CentraSize>,
    cloudshelf: impl IntoIterator<Item = CloudshelfVariant>,
) -> SkuAuditReport {
    let mut findings = BTreeSet::new();

    let mut sizes: Vec<CentraSize> = centra.into_iter().collect();
    sizes.sort_by(|a, b| (&a.sku, a.size_id).cmp(&(&b.sku, b.size_id)));
    let (by_sku, centra_eans) = index_centra(&sizes);

    let mut variants: Vec<CloudshelfVariant> = cloudshelf.into_iter().collect();
    variants.sort();
    let cs = index_cloudshelf(&variants, &mut findings);

    find_duplicates(&by_sku, &centra_eans, &cs, &mut findings);
    let matched = compare_matched(&by_sku, &cs.by_sku, &mut findings);
    find_missing_in_centra(&by_sku, &cs.by_sku, &mut findings);

    SkuAuditReport {
        centra_sizes: sizes.len(),
        cloudshelf_variants: variants.len(),
        matched,
        findings: findings.into_iter().collect(),
        cloudshelf_products: cs.products,
    }
}

/// EAN → the SKUs that carry it.
type EanIndex = BTreeMap<String, BTreeSet<String>>;

/// Centra's sizes by normalised SKU (sizes without one are left out), and their EANs.
fn index_centra(sizes: &[CentraSize]) -> (BTreeMap<String, Vec<CentraSize>>, EanIndex) {
    let mut by_sku: BTreeMap<String, Vec<CentraSize>> = BTreeMap::new();
    let mut centra_eans: EanIndex = BTreeMap::new();
    for s in sizes {
        let Some(sku) = norm_sku(&s.sku) else {
            continue;
        };
        if let Some(ean) = norm_ean(s.ean.as_deref()) {
            centra_eans.entry(ean).or_default().insert(sku.clone());
        }
        by_sku.entry(sku).or_default().push(s.clone());
    }

    (by_sku, centra_eans)
}

/// Cloudshelf's variants by SKU (their own, else the one their external id names), their
/// barcodes, and the products they belong to.
struct CloudshelfIndex<'v> {
    by_sku: BTreeMap<String, Vec<&'v CloudshelfVariant>>,
    eans: EanIndex,
    products: BTreeSet<String>,
}

/// Indexes the variants; a variant whose SKU and external id disagree, or that has neither,
/// is a finding.
fn index_cloudshelf<'v>(
    variants: &'v [CloudshelfVariant],
    findings: &mut BTreeSet<SkuFinding>,
) -> CloudshelfIndex<'v> {
    let mut cs_by_sku: BTreeMap<String, Vec<&CloudshelfVariant>> = BTreeMap::new();
    let mut cs_eans: EanIndex = BTreeMap::new();
    let mut cloudshelf_products = BTreeSet::new();
    for v in variants {
        if let Some(p) = &v.product_platform_provided_id {
            cloudshelf_products.insert(p.clone());
        }
        let sku = v.sku.as_deref().and_then(norm_sku);
        let external = v
            .platform_provided_id
            .as_deref()
            .and_then(sku_of_size_gid)
            .and_then(norm_sku);
        let key = match (sku, external) {
            (Some(sku), Some(ext)) if sku != ext => {
                findings.insert(SkuFinding::ExternalIdMismatch {
                    variant_id: v.id.clone(),
                    sku: sku.clone(),
                    external_sku: ext,
                });
                sku
            }
            (Some(sku), _) => sku,
            (None, Some(ext)) => ext,
            (None, None) => {
                findings.insert(SkuFinding::NoSkuInCloudshelf {
                    variant_id: v.id.clone(),
                });
                continue;
            }
        };
        if let Some(ean) = norm_ean(v.barcode.as_deref()) {
            cs_eans.entry(ean).or_default().insert(key.clone());
        }
        cs_by_sku.entry(key).or_default().push(v);
    }

    CloudshelfIndex {
        by_sku: cs_by_sku,
        eans: cs_eans,
        products: cloudshelf_products,
    }
}

/// SKUs used by more than one size or variant, and EANs shared by several SKUs, in either system.
fn find_duplicates(
    by_sku: &BTreeMap<String, Vec<CentraSize>>,
    centra_eans: &EanIndex,
    cs: &CloudshelfIndex<'_>,
    findings: &mut BTreeSet<SkuFinding>,
) {
    let cs_by_sku = &cs.by_sku;
    let cs_eans = &cs.eans;
    for (sku, group) in by_sku {
        if group.len() > 1 {
            findings.insert(SkuFinding::DuplicateSku {
                system: System::Centra,
                sku: sku.clone(),
                ids: group.iter().map(|s| s.size_id.to_string()).collect(),
            });
        }
    }
    for (sku, group) in cs_by_sku {
        if group.len() > 1 {
            findings.insert(SkuFinding::DuplicateSku {
                system: System::Cloudshelf,
                sku: sku.clone(),
                ids: group.iter().map(|v| v.id.clone()).collect(),
            });
        }
    }
    for (system, eans) in [(System::Centra, centra_eans), (System::Cloudshelf, cs_eans)] {
        for (ean, skus) in eans {
            if skus.len() > 1 {
                findings.insert(SkuFinding::DuplicateEan {
                    system,
                    ean: ean.clone(),
                    skus: skus.iter().cloned().collect(),
                });
            }
        }
    }
}

/// Compares each Centra SKU with its Cloudshelf variants (EAN, sellable while inactive), or
/// reports it missing in Cloudshelf; returns how many SKUs matched.
fn compare_matched(
    by_sku: &BTreeMap<String, Vec<CentraSize>>,
    cs_by_sku: &BTreeMap<String, Vec<&CloudshelfVariant>>,
    findings: &mut BTreeSet<SkuFinding>,
) -> usize {
    let mut matched = 0;
    for (sku, group) in by_sku {
        // With duplicates, the lowest size id stands for the SKU.
        let size = &group[0];
        let Some(cs) = cs_by_sku.get(sku) else {
            if size.active {
                findings.insert(SkuFinding::MissingInCloudshelf { size: size.clone() });
            }
            continue;
        };
        matched += 1;
        let centra_ean = norm_ean(size.ean.as_deref());
        for v in cs {
            let barcode = norm_ean(v.barcode.as_deref());
            if barcode != centra_ean {
                findings.insert(SkuFinding::EanConflict {
                    sku: sku.clone(),
                    centra_ean: size.ean.as_deref().map(str::trim).map(str::to_string),
                    cloudshelf_barcode: v.barcode.as_deref().map(str::trim).map(str::to_string),
                    variant_id: v.id.clone(),
                });
            }
            if !size.active && sellable(v) {
                findings.insert(SkuFinding::InactiveButSellable {
                    sku: sku.clone(),
                    size_id: size.size_id,
                    variant_id: v.id.clone(),
                });
            }
        }
    }
    matched
}

/// Cloudshelf variants whose SKU Centra does not have.
fn find_missing_in_centra(
    by_sku: &BTreeMap<String, Vec<CentraSize>>,
    cs_by_sku: &BTreeMap<String, Vec<&CloudshelfVariant>>,
    findings: &mut BTreeSet<SkuFinding>,
) {
    for (sku, cs) in cs_by_sku {
        if !by_sku.contains_key(sku) {
            for v in cs {
                findings.insert(SkuFinding::MissingInCentra {
                    sku: sku.clone(),
                    variant_id: v.id.clone(),
                });
            }
        }
    }
}

/// What creates, in Cloudshelf, the sizes Cloudshelf lacks. Send `products` first (the variants name
/// them), then `variants`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogueUpserts {
    pub products: Vec<ProductInput>,
    pub variants: Vec<UpsertVariantsInput>,
}

impl CatalogueUpserts {
    pub fn is_empty(&self) -> bool {
        self.products.is_empty() && self.variants.is_empty()
    }
}

/// `upsertProducts` / `upsertProductVariants` inputs for every [`SkuFinding::MissingInCloudshelf`], grouped
/// by Centra product, sorted by product id and SKU.
///
/// A product is only sent when no Cloudshelf variant showed it to exist (`cloudshelf_products` of the
/// report), so that an existing product keeps its name; a new one is named by its `productNumber`
/// (UNVERIFIED that Cloudshelf needs a `displayName` to create a product; the catalogue read takes no
/// names from Centra, so a product-information sync should rename it). Variants carry SKU and EAN
/// (as `barcode`) and no display name or stock flags: stock comes from the availability push.
pub fn upserts_for_missing(report: &SkuAuditReport) -> CatalogueUpserts {
    let mut by_product: BTreeMap<u64, Vec<&CentraSize>> = BTreeMap::new();
    for size in report.missing_in_cloudshelf() {
        by_product.entry(size.product_id).or_default().push(size);
    }
    let mut out = CatalogueUpserts::default();
    for (product_id, mut sizes) in by_product {
        sizes.sort_by(|a, b| a.sku.cmp(&b.sku));
        let gid = product_gid(product_id);
        if !report.cloudshelf_products.contains(&gid) {
            let number = sizes
                .iter()
                .map(|s| s.product_number.trim())
                .find(|n| !n.is_empty());
            out.products.push(ProductInput {
                id: gid.clone(),
                display_name: Some(match number {
                    Some(n) => n.to_string(),
                    None => format!("Centra product {product_id}"),
                }),
                handle: None,
            });
        }
        out.variants.push(UpsertVariantsInput {
            product_id: gid,
            variants: sizes
                .into_iter()
                .map(|s| ProductVariantInput {
                    id: size_gid(s.sku.trim()),
                    sku: Some(s.sku.trim().to_string()),
                    barcode: s
                        .ean
                        .as_deref()
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_string),
                    display_name: None,
                    is_in_stock: None,
                    available_to_purchase: None,
                })
                .collect(),
        });
    }
    out
}

/// A (location, variant) where Cloudshelf's `isInStock` is not what Centra's stock implies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InStockMismatch {
    pub location_id: String,
    pub product_variant_id: String,
    pub sku: String,
    /// Centra's free-to-allocate there (0 when Centra lists no row for a variant pushed before).
    pub free_to_allocate: i64,
    /// What Cloudshelf should show: the quantity to push is positive and not below the safety stock.
    pub expected_in_stock: bool,
    /// `None`: Cloudshelf has no stock level for it there.
    pub cloudshelf_in_stock: Option<bool>,
    /// The updates returned alongside change this level (so the mismatch should go away once they are
    /// pushed); `false` means the last push already said so and Cloudshelf still disagrees.
    pub corrected_by_push: bool,
}

/// `isInStock` per (location, variant) from [`CloudshelfVariant::stock_levels`], keyed by every id each
/// may be named by (Cloudshelf gid and external gid), so that the keys of [`availability_diff`] match
/// whichever the mappings use.
pub fn cloudshelf_in_stock_map(variants: &[CloudshelfVariant]) -> HashMap<(String, String), bool> {
    let mut map = HashMap::new();
    for v in variants {
        let variant_ids: Vec<&String> = std::iter::once(&v.id)
            .chain(v.platform_provided_id.as_ref())
            .collect();
        for level in &v.stock_levels {
            let location_ids =
                std::iter::once(&level.location_id).chain(level.location_platform_id.as_ref());
            for l in location_ids {
                for vid in &variant_ids {
                    map.insert((l.clone(), (*vid).clone()), level.is_in_stock);
                }
            }
        }
    }
    map
}

/// Stock levels to push to Cloudshelf and the in-stock disagreements, from Centra's stock rows.
///
/// - `centra_rows`: `(Cloudshelf location id, row)` of each store warehouse read, the location id as the
///   store mapping names it. The quantity pushed is the row's free-to-allocate, floored at 0 (UNVERIFIED
///   whether Cloudshelf takes negative quantities; an oversold item is simply out of stock). Rows of one
///   (location, SKU) are summed.
/// - The variant id is [`size_gid`] of the row's SKU.
/// - `cloudshelf_in_stock`: what Cloudshelf shows, keyed (location id, variant id), e.g. from
///   [`cloudshelf_in_stock_map`].
/// - `last_pushed`: the quantities of the previous push, same keys. Only levels that differ are returned.
///   A key pushed before whose location was read now but which has no row any more is set to 0.
/// - `safety_stock`: the organisation's `safetyStockNumber`; Cloudshelf shows in stock when the quantity
///   is positive and not below it (`safetyStockNumber`, `StockLevelInput.quantity` in `schema/cloudshelf.graphql`;
///   the exact comparison is UNVERIFIED).
///
/// Both lists are sorted by (location, variant).
pub fn availability_diff(
    centra_rows: impl IntoIterator<Item = (String, CentraStockRow)>,
    cloudshelf_in_stock: &HashMap<(String, String), bool>,
    last_pushed: &HashMap<(String, String), i64>,
    safety_stock: i64,
) -> (Vec<StockLevelUpdate>, Vec<InStockMismatch>) {
    // (location, variant) → (SKU, summed free-to-allocate)
    let mut current: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
    let mut locations = BTreeSet::new();
    for (location, row) in centra_rows {
        let sku = row.sku.trim().to_string();
        locations.insert(location.clone());
        let e = current
            .entry((location, size_gid(&sku)))
            .or_insert((sku, 0));
        e.1 += row.free_to_allocate;
    }
    for ((location, variant), qty) in last_pushed {
        if *qty != 0 && locations.contains(location) {
            current
                .entry((location.clone(), variant.clone()))
                .or_insert_with(|| (sku_of_size_gid(variant).unwrap_or(variant).to_string(), 0));
        }
    }

    let mut updates = Vec::new();
    let mut mismatches = Vec::new();
    for ((location, variant), (sku, fta)) in current {
        let quantity = fta.max(0);
        let key = (location, variant);
        let changed = last_pushed.get(&key) != Some(&quantity);
        let expected = quantity > 0 && quantity >= safety_stock;
        let shown = cloudshelf_in_stock.get(&key).copied();
        if shown.unwrap_or(false) != expected {
            mismatches.push(InStockMismatch {
                location_id: key.0.clone(),
                product_variant_id: key.1.clone(),
                sku,
                free_to_allocate: fta,
                expected_in_stock: expected,
                cloudshelf_in_stock: shown,
                corrected_by_push: changed,
            });
        }
        if changed {
            updates.push(StockLevelUpdate {
                location_id: key.0,
                product_variant_id: key.1,
                quantity,
            });
        }
    }
    (updates, mismatches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudshelf::catalogue::CloudshelfStockFlag;

    fn size(product: u64, size_id: u64, sku: &str, ean: Option<&str>, active: bool) -> CentraSize {
        CentraSize {
            product_id: product,
            variant_id: product * 10,
            size_id,
            sku: sku.into(),
            ean: ean.map(str::to_string),
            active,
            product_number: format!("P{product}"),
            variant_number: "V1".into(),
            size_number: sku.chars().last().unwrap().to_string(),
        }
    }

    fn variant(
        n: u32,
        product: u64,
        sku: Option<&str>,
        barcode: Option<&str>,
    ) -> CloudshelfVariant {
        CloudshelfVariant {
            id: format!("gid://cloudshelf/ProductVariant/{n:04}"),
            platform_provided_id: sku.map(size_gid),
            product_id: format!("gid://cloudshelf/Product/{product}"),
            product_platform_provided_id: Some(product_gid(product)),
            sku: sku.map(str::to_string),
            barcode: barcode.map(str::to_string),
            is_in_stock: false,
            available_to_purchase: false,
            stock_levels: Vec::new(),
        }
    }

    fn base() -> (Vec<CentraSize>, Vec<CloudshelfVariant>) {
        (
            vec![
                size(1, 100, "P1V1S", Some("7350000000012"), true),
                size(1, 101, "P1V1M", Some("7350000000029"), true),
                size(2, 200, "P2V1S", None, true),
                size(3, 300, "P3V1S", Some("7350000000036"), false),
            ],
            vec![
                variant(1, 1, Some("P1V1S"), Some("7350000000012")),
                // Zero-padded GTIN-14 of the same EAN: equal.
                variant(2, 1, Some("P1V1M"), Some("07350000000029")),
                variant(3, 2, Some("P2V1S"), Some("  ")),
                variant(4, 3, Some("P3V1S"), Some("7350000000036")),
            ],
        )
    }

    fn kinds(r: &SkuAuditReport) -> Vec<&'static str> {
        r.findings.iter().map(SkuFinding::kind).collect()
    }

    #[test]
    fn equal_catalogues_give_no_findings() {
        let (c, s) = base();
        let r = sku_audit(c, s);
        assert!(r.is_clean(), "{:?}", r.findings);
        assert_eq!(
            (r.centra_sizes, r.cloudshelf_variants, r.matched),
            (4, 4, 4)
        );
        assert!(upserts_for_missing(&r).is_empty());
        assert!(r.counts().is_empty());
        let none = sku_audit(Vec::new(), Vec::new());
        assert!(none.is_clean());
    }

    #[test]
    fn active_size_missing_in_cloudshelf_is_reported_inactive_one_is_not() {
        let (mut c, s) = base();
        c.push(size(4, 400, "P4V1S", Some("7350000000043"), true));
        c.push(size(4, 401, "P4V1M", None, false));
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![SkuFinding::MissingInCloudshelf {
                size: size(4, 400, "P4V1S", Some("7350000000043"), true)
            }]
        );
        assert_eq!(r.matched, 4);
    }

    #[test]
    fn variant_unknown_to_centra_is_missing_in_centra() {
        let (c, mut s) = base();
        s.push(variant(9, 9, Some("GONE1"), None));
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![SkuFinding::MissingInCentra {
                sku: "GONE1".into(),
                variant_id: "gid://cloudshelf/ProductVariant/0009".into()
            }]
        );
    }

    #[test]
    fn variant_without_sku_is_matched_by_its_gid_or_reported() {
        let (c, mut s) = base();
        // SKU only in the external gid: matched, no finding.
        s[0].sku = None;
        let mut anonymous = variant(8, 8, None, Some("1"));
        anonymous.platform_provided_id = Some("gid://external/ShopifyProductVariant/1".into());
        s.push(anonymous);
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![SkuFinding::NoSkuInCloudshelf {
                variant_id: "gid://cloudshelf/ProductVariant/0008".into()
            }]
        );
        assert_eq!(r.matched, 4);
    }

    #[test]
    fn sku_differing_from_the_external_gid_is_reported() {
        let (c, mut s) = base();
        s[0].platform_provided_id = Some(size_gid("P1V1X"));
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![SkuFinding::ExternalIdMismatch {
                variant_id: "gid://cloudshelf/ProductVariant/0001".into(),
                sku: "P1V1S".into(),
                external_sku: "P1V1X".into()
            }]
        );
    }

    #[test]
    fn inactive_size_sellable_in_cloudshelf_is_reported_in_each_way_it_can_be_sellable() {
        for how in 0..3 {
            let (c, mut s) = base();
            let v = &mut s[3]; // P3V1S, inactive in Centra
            match how {
                0 => v.is_in_stock = true,
                1 => v.available_to_purchase = true,
                _ => {
                    v.stock_levels = vec![CloudshelfStockFlag {
                        location_id: "gid://cloudshelf/Location/1".into(),
                        location_platform_id: None,
                        is_in_stock: true,
                    }]
                }
            }
            let r = sku_audit(c, s);
            assert_eq!(
                r.findings,
                vec![SkuFinding::InactiveButSellable {
                    sku: "P3V1S".into(),
                    size_id: 300,
                    variant_id: "gid://cloudshelf/ProductVariant/0004".into()
                }],
                "way {how}"
            );
        }
        // An active size in stock is fine.
        let (c, mut s) = base();
        s[0].is_in_stock = true;
        assert!(sku_audit(c, s).is_clean());
    }

    #[test]
    fn different_or_missing_barcode_is_an_ean_conflict() {
        let (c, mut s) = base();
        s[0].barcode = Some("7350000000999".into());
        s[1].barcode = None;
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![
                SkuFinding::EanConflict {
                    sku: "P1V1M".into(),
                    centra_ean: Some("7350000000029".into()),
                    cloudshelf_barcode: None,
                    variant_id: "gid://cloudshelf/ProductVariant/0002".into()
                },
                SkuFinding::EanConflict {
                    sku: "P1V1S".into(),
                    centra_ean: Some("7350000000012".into()),
                    cloudshelf_barcode: Some("7350000000999".into()),
                    variant_id: "gid://cloudshelf/ProductVariant/0001".into()
                },
            ]
        );
    }

    #[test]
    fn one_ean_on_several_skus_is_reported_per_system() {
        let (mut c, mut s) = base();
        c[2].ean = Some("7350000000012".into()); // P2V1S takes P1V1S's EAN in Centra…
        s[2].barcode = Some("7350000000012".into()); // …and in Cloudshelf: no EAN conflict
        let r = sku_audit(c, s);
        let dup = |system| SkuFinding::DuplicateEan {
            system,
            ean: "7350000000012".into(),
            skus: vec!["P1V1S".into(), "P2V1S".into()],
        };
        assert_eq!(
            r.findings,
            vec![dup(System::Centra), dup(System::Cloudshelf)]
        );
    }

    #[test]
    fn one_sku_on_several_entries_is_reported_per_system() {
        let (mut c, mut s) = base();
        let mut twin = c[0].clone();
        twin.size_id = 99;
        c.push(twin);
        s.push(variant(7, 1, Some("P1V1M"), Some("7350000000029")));
        let r = sku_audit(c, s);
        assert_eq!(
            r.findings,
            vec![
                SkuFinding::DuplicateSku {
                    system: System::Centra,
                    sku: "P1V1S".into(),
                    ids: vec!["99".into(), "100".into()]
                },
                SkuFinding::DuplicateSku {
                    system: System::Cloudshelf,
                    sku: "P1V1M".into(),
                    ids: vec![
                        "gid://cloudshelf/ProductVariant/0002".into(),
                        "gid://cloudshelf/ProductVariant/0007".into()
                    ]
                },
            ]
        );
        assert_eq!(kinds(&r), ["duplicate_sku", "duplicate_sku"]);
    }

    #[test]
    fn report_does_not_depend_on_input_order() {
        let (mut c, mut s) = base();
        c.push(size(4, 400, "P4V1S", None, true));
        s.push(variant(9, 9, Some("GONE1"), None));
        s[0].barcode = Some("1".into());
        let a = sku_audit(c.clone(), s.clone());
        c.reverse();
        s.reverse();
        let b = sku_audit(c, s);
        assert_eq!(a, b);
        assert_eq!(
            kinds(&a),
            ["missing_in_cloudshelf", "missing_in_centra", "ean_conflict"]
        );
    }

    #[test]
    fn missing_sizes_become_product_and_variant_upserts_with_external_gids() {
        let (mut c, s) = base();
        c.push(size(4, 401, "P4V1M", None, true));
        c.push(size(4, 400, "P4V1S", Some(" 7350000000043 "), true));
        c.push(size(1, 102, "P1V1L", Some("7350000000050"), true)); // product 1 exists in Cloudshelf
        let r = sku_audit(c, s);
        let u = upserts_for_missing(&r);
        assert_eq!(
            u.products,
            vec![ProductInput {
                id: "gid://external/CentraProduct/4".into(),
                display_name: Some("P4".into()),
                handle: None
            }]
        );
        let v = |sku: &str, ean: Option<&str>| ProductVariantInput {
            id: format!("gid://external/CentraProductSize/{sku}"),
            sku: Some(sku.into()),
            barcode: ean.map(str::to_string),
            display_name: None,
            is_in_stock: None,
            available_to_purchase: None,
        };
        assert_eq!(
            u.variants,
            vec![
                UpsertVariantsInput {
                    product_id: "gid://external/CentraProduct/1".into(),
                    variants: vec![v("P1V1L", Some("7350000000050"))]
                },
                UpsertVariantsInput {
                    product_id: "gid://external/CentraProduct/4".into(),
                    variants: vec![v("P4V1M", None), v("P4V1S", Some("7350000000043"))]
                },
            ]
        );
    }

    #[test]
    fn gids_round_trip() {
        assert_eq!(size_gid("A/B 1"), "gid://external/CentraProductSize/A/B 1");
        assert_eq!(sku_of_size_gid(&size_gid("A/B 1")), Some("A/B 1"));
        assert_eq!(sku_of_size_gid("gid://external/CentraProductSizeX/A"), None);
        assert_eq!(sku_of_size_gid("gid://external/CentraProductSize/"), None);
        assert_eq!(sku_of_size_gid("gid://external/CentraSize/A"), None);
        assert_eq!(product_gid(7), "gid://external/CentraProduct/7");
    }

    const LOC: &str = "gid://external/CentraWarehouse/12";
    const LOC2: &str = "gid://external/CentraWarehouse/14";

    fn row(sku: &str, fta: i64) -> CentraStockRow {
        CentraStockRow {
            size_id: 1,
            sku: sku.into(),
            ean: None,
            physical: fta.max(0) + 1,
            free_to_allocate: fta,
        }
    }

    fn key(loc: &str, sku: &str) -> (String, String) {
        (loc.to_string(), size_gid(sku))
    }

    #[test]
    fn availability_pushes_only_changed_levels_and_agrees_when_in_step() {
        let rows = vec![
            (LOC.to_string(), row("A", 5)),
            (LOC.to_string(), row("B", 0)),
            (LOC2.to_string(), row("A", 2)),
        ];
        let pushed: HashMap<_, _> = [(key(LOC, "A"), 5), (key(LOC, "B"), 0), (key(LOC2, "A"), 2)]
            .into_iter()
            .collect();
        let shown: HashMap<_, _> = [
            (key(LOC, "A"), true),
            (key(LOC, "B"), false),
            (key(LOC2, "A"), true),
        ]
        .into_iter()
        .collect();
        let (updates, mismatches) = availability_diff(rows.clone(), &shown, &pushed, 0);
        assert!(updates.is_empty(), "{updates:?}");
        assert!(mismatches.is_empty(), "{mismatches:?}");

        // A sold out at LOC and never pushed at LOC2's B.
        let mut rows = rows;
        rows[0].1.free_to_allocate = 0;
        rows.push((LOC2.to_string(), row("B", 3)));
        let (updates, mismatches) = availability_diff(rows, &shown, &pushed, 0);
        assert_eq!(
            updates,
            vec![
                StockLevelUpdate {
                    location_id: LOC.into(),
                    product_variant_id: size_gid("A"),
                    quantity: 0
                },
                StockLevelUpdate {
                    location_id: LOC2.into(),
                    product_variant_id: size_gid("B"),
                    quantity: 3
                },
            ]
        );
        assert_eq!(
            mismatches,
            vec![
                InStockMismatch {
                    location_id: LOC.into(),
                    product_variant_id: size_gid("A"),
                    sku: "A".into(),
                    free_to_allocate: 0,
                    expected_in_stock: false,
                    cloudshelf_in_stock: Some(true),
                    corrected_by_push: true,
                },
                InStockMismatch {
                    location_id: LOC2.into(),
                    product_variant_id: size_gid("B"),
                    sku: "B".into(),
                    free_to_allocate: 3,
                    expected_in_stock: true,
                    cloudshelf_in_stock: None,
                    corrected_by_push: true,
                },
            ]
        );
    }

    #[test]
    fn availability_floors_oversold_sums_duplicates_zeroes_vanished_and_uses_safety_stock() {
        let rows = vec![
            (LOC.to_string(), row("NEG", -2)),
            (LOC.to_string(), row("DUP", 1)),
            (LOC.to_string(), row("DUP", 2)),
            (LOC.to_string(), row("LOW", 2)),
        ];
        let pushed: HashMap<_, _> = [
            (key(LOC, "GONE"), 4),   // read location, no row now → 0
            (key(LOC2, "OTHER"), 4), // location not read → untouched
            (key(LOC, "LOW"), 2),
        ]
        .into_iter()
        .collect();
        // Cloudshelf still shows LOW in stock although 2 is below the safety stock of 3.
        let shown: HashMap<_, _> = [(key(LOC, "LOW"), true)].into_iter().collect();
        let (updates, mismatches) = availability_diff(rows.clone(), &shown, &pushed, 3);
        let got: Vec<(String, i64)> = updates
            .iter()
            .map(|u| (u.product_variant_id.clone(), u.quantity))
            .collect();
        assert_eq!(
            got,
            vec![
                (size_gid("DUP"), 3),
                (size_gid("GONE"), 0),
                (size_gid("NEG"), 0)
            ]
        );
        assert_eq!(
            mismatches,
            vec![
                InStockMismatch {
                    location_id: LOC.into(),
                    product_variant_id: size_gid("DUP"),
                    sku: "DUP".into(),
                    free_to_allocate: 3,
                    expected_in_stock: true,
                    cloudshelf_in_stock: None,
                    corrected_by_push: true,
                },
                InStockMismatch {
                    location_id: LOC.into(),
                    product_variant_id: size_gid("LOW"),
                    sku: "LOW".into(),
                    free_to_allocate: 2,
                    expected_in_stock: false,
                    cloudshelf_in_stock: Some(true),
                    corrected_by_push: false,
                },
            ]
        );
        // Same input in another order: same answer.
        let mut reversed = rows;
        reversed.reverse();
        assert_eq!(
            availability_diff(reversed, &shown, &pushed, 3),
            (updates, mismatches)
        );
    }

    #[test]
    fn in_stock_map_is_keyed_by_every_id_pair() {
        let mut v = variant(1, 1, Some("A"), None);
        v.stock_levels = vec![CloudshelfStockFlag {
            location_id: "gid://cloudshelf/Location/1".into(),
            location_platform_id: Some(LOC.into()),
            is_in_stock: true,
        }];
        let map = cloudshelf_in_stock_map(&[v]);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(&key(LOC, "A")), Some(&true));
        assert_eq!(
            map.get(&(
                "gid://cloudshelf/Location/1".to_string(),
                "gid://cloudshelf/ProductVariant/0001".to_string()
            )),
            Some(&true)
        );
    }
}
