//! Centra reads for scheduled reconciliation: the catalogue (product → variant → size, with SKU, EAN and
//! status) and one warehouse's stock, both in `limit`/`page` offset pages (`Query.products` and
//! `Warehouse.stock` in `schema/centra/integration-subset.graphql`).
//!
//! Offset pages are not a snapshot: a product changed during a scan can shift between pages. The `all_*`
//! helpers therefore de-duplicate by size id; something missed is found by the next scheduled run.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::centra::{CentraClient, CentraError};

/// Largest `limit` Centra takes on these lists ("Limit must be in range 1 - 200" on Centra's list fields,
/// `schema/centra/integration-subset.graphql`).
pub const MAX_PAGE_LIMIT: u32 = 200;

// UNVERIFIED (Centra's PIM guide, quoted at `Query.products` in `schema/centra/integration-subset.graphql`,
// shows `products(where:{status}, sort:[updatedAt_DESC], limit:, page:)` and the size fields, not these): the
// `status` field on `Product` and `ProductVariant`, the `INACTIVE` value, and the default order when `sort` is
// left out. `sort` is left out on purpose: `updatedAt_DESC`
// reorders the list while it is paged whenever a product changes; the default order (by id, presumably)
// does not.
pub(crate) const CATALOGUE_PAGE: &str = "query CatalogueSizes($limit: Int!, $page: Int!) {
  products(where: { status: [ACTIVE, INACTIVE] }, limit: $limit, page: $page) {
    id productNumber status
    variants {
      id variantNumber status
      productSizes { id SKU EAN sizeNumber isActive }
    }
  }
}";

// `warehouses(where: {id})` and the `productSize` sub-object of `Stock` are UNVERIFIED (marked so in
// `schema/centra/integration-subset.graphql`; `shelfsync centra-check` asks the customer's Centra);
// `freeToAllocateQuantity` adds no complexity (https://centra.dev/integration-api/api-reference/types/Stock),
// `physicalQuantity` is needed for count comparisons.
pub(crate) const WAREHOUSE_STOCK_PAGE: &str =
    "query WarehouseStock($wh: Int!, $limit: Int!, $page: Int!) {
  warehouses(where: { id: [$wh] }) {
    id
    stock(limit: $limit, page: $page) {
      productSize { id SKU EAN }
      physicalQuantity
      freeToAllocateQuantity
    }
  }
}";

/// One Centra size with its place in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CentraSize {
    pub product_id: u64,
    pub variant_id: u64,
    pub size_id: u64,
    /// `ProductSize.SKU`: the full SKU (product + variant + size SKU).
    pub sku: String,
    pub ean: Option<String>,
    /// Sellable as far as the catalogue goes: the size `isActive` and its variant and product `ACTIVE`.
    pub active: bool,
    pub product_number: String,
    pub variant_number: String,
    pub size_number: String,
}

/// One page of [`CentraClient::product_page`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CentraProductPage {
    pub sizes: Vec<CentraSize>,
    /// Products on the page; fewer than the `limit` asked for means it was the last page.
    pub products: usize,
}

/// One row of a warehouse's stock.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CentraStockRow {
    pub size_id: u64,
    pub sku: String,
    pub ean: Option<String>,
    pub physical: i64,
    /// Centra's sellable number (`physical − allocated`); can be negative when oversold.
    pub free_to_allocate: i64,
}

fn protocol(what: impl Into<String>) -> CentraError {
    CentraError::Protocol(what.into())
}

/// A Centra `Int` id (sent as a number; a numeric string is taken too).
fn id_of(v: &Value, what: &str) -> Result<u64, CentraError> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| protocol(format!("{what}: expected an id, got {v}")))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn list<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a [Value], CentraError> {
    match v.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) => Ok(&[]),
        Some(other) => Err(protocol(format!(
            "{what}.{key}: expected a list, got {other}"
        ))),
    }
}

fn is_active_status(v: &Value) -> bool {
    v.get("status").and_then(Value::as_str) == Some("ACTIVE")
}

fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE_LIMIT)
}

fn parse_products(data: &Value) -> Result<CentraProductPage, CentraError> {
    let products = match data.get("products") {
        Some(Value::Array(items)) => items,
        _ => return Err(protocol("no products list in data")),
    };
    let mut sizes = Vec::new();
    for p in products {
        let product_id = id_of(&p["id"], "product id")?;
        let product_active = is_active_status(p);
        let product_number = text(p, "productNumber").unwrap_or_default();
        for v in list(p, "variants", "product")? {
            let variant_id = id_of(&v["id"], "variant id")?;
            let variant_active = is_active_status(v);
            let variant_number = text(v, "variantNumber").unwrap_or_default();
            for s in list(v, "productSizes", "variant")? {
                let size_id = id_of(&s["id"], "size id")?;
                let sku =
                    text(s, "SKU").ok_or_else(|| protocol(format!("size {size_id} has no SKU")))?;
                sizes.push(CentraSize {
                    product_id,
                    variant_id,
                    size_id,
                    sku,
                    ean: text(s, "EAN"),
                    active: product_active
                        && variant_active
                        && s.get("isActive").and_then(Value::as_bool) == Some(true),
                    product_number: product_number.clone(),
                    variant_number: variant_number.clone(),
                    size_number: text(s, "sizeNumber").unwrap_or_default(),
                });
            }
        }
    }
    Ok(CentraProductPage {
        sizes,
        products: products.len(),
    })
}

fn parse_stock(data: &Value, warehouse_id: u64) -> Result<Vec<CentraStockRow>, CentraError> {
    let warehouses = match data.get("warehouses") {
        Some(Value::Array(items)) => items,
        _ => return Err(protocol("no warehouses list in data")),
    };
    let wh = warehouses
        .iter()
        .find(|w| id_of(&w["id"], "warehouse id").ok() == Some(warehouse_id))
        .ok_or_else(|| protocol(format!("Centra has no warehouse {warehouse_id}")))?;
    list(wh, "stock", "warehouse")?
        .iter()
        .map(|row| {
            let size = row
                .get("productSize")
                .filter(|s| s.is_object())
                .ok_or_else(|| protocol("stock row without productSize"))?;
            let size_id = id_of(&size["id"], "size id")?;
            let qty = |key: &str| {
                row.get(key)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| protocol(format!("stock row of size {size_id} without {key}")))
            };
            Ok(CentraStockRow {
                size_id,
                sku: text(size, "SKU")
                    .ok_or_else(|| protocol(format!("size {size_id} has no SKU")))?,
                ean: text(size, "EAN"),
                physical: qty("physicalQuantity")?,
                free_to_allocate: qty("freeToAllocateQuantity")?,
            })
        })
        .collect()
}

impl CentraClient {
    /// One page (1-based) of ACTIVE and INACTIVE products, flattened to their sizes. `limit` counts
    /// products (clamped to 1–[`MAX_PAGE_LIMIT`]); the page with fewer products than `limit` is the last.
    pub async fn product_page(
        &self,
        page: u32,
        limit: u32,
    ) -> Result<CentraProductPage, CentraError> {
        let data = self
            .post(
                CATALOGUE_PAGE,
                json!({ "limit": clamp_limit(limit), "page": page.max(1) }),
            )
            .await?;
        parse_products(&data)
    }

    /// The sizes of one page of products (see [`CentraClient::product_page`], which also says whether
    /// it was the last page: a product without sizes makes the size count useless for that).
    pub async fn product_sizes_page(
        &self,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraSize>, CentraError> {
        Ok(self.product_page(page, limit).await?.sizes)
    }

    /// Every size of every ACTIVE or INACTIVE product, paging to the end; each size once (by id), in
    /// the order read.
    pub async fn all_product_sizes(&self, limit: u32) -> Result<Vec<CentraSize>, CentraError> {
        let limit = clamp_limit(limit);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for page in 1.. {
            let p = self.product_page(page, limit).await?;
            out.extend(p.sizes.into_iter().filter(|s| seen.insert(s.size_id)));
            if p.products < limit as usize {
                break;
            }
        }
        Ok(out)
    }

    /// One page (1-based) of a warehouse's stock rows; `limit` is clamped to 1–[`MAX_PAGE_LIMIT`], and a
    /// page with fewer rows than that is the last. An unknown warehouse is a `Protocol` error.
    pub async fn warehouse_stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        let data = self
            .post(
                WAREHOUSE_STOCK_PAGE,
                json!({ "wh": warehouse_id, "limit": clamp_limit(limit), "page": page.max(1) }),
            )
            .await?;
        parse_stock(&data, warehouse_id)
    }

    /// Every stock row of a warehouse, paging to the end; each size once.
    pub async fn all_warehouse_stock(
        &self,
        warehouse_id: u64,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        let limit = clamp_limit(limit);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for page in 1.. {
            let rows = self.warehouse_stock_page(warehouse_id, page, limit).await?;
            let n = rows.len();
            out.extend(rows.into_iter().filter(|r| seen.insert(r.size_id)));
            if n < limit as usize {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_active_only_when_product_variant_and_size_are() {
        let data = json!({"products": [
            {"id": 1, "productNumber": "P1", "status": "ACTIVE", "variants": [
                {"id": 10, "variantNumber": "V1", "status": "ACTIVE", "productSizes": [
                    {"id": 100, "SKU": "P1V1S", "EAN": "735", "sizeNumber": "S", "isActive": true},
                    {"id": 101, "SKU": "P1V1M", "EAN": "", "sizeNumber": "M", "isActive": false},
                ]},
                {"id": 11, "variantNumber": "V2", "status": "INACTIVE", "productSizes": [
                    {"id": 102, "SKU": "P1V2S", "EAN": null, "sizeNumber": "S", "isActive": true},
                ]},
            ]},
            {"id": 2, "productNumber": "P2", "status": "INACTIVE", "variants": [
                {"id": 20, "variantNumber": "V1", "status": "ACTIVE", "productSizes": [
                    {"id": 200, "SKU": "P2V1S", "EAN": "736", "sizeNumber": "S", "isActive": true},
                ]},
            ]},
            {"id": 3, "productNumber": "P3", "status": "ACTIVE", "variants": []},
        ]});
        let page = parse_products(&data).unwrap();
        assert_eq!(page.products, 3);
        let active: Vec<(&str, bool, Option<&str>)> = page
            .sizes
            .iter()
            .map(|s| (s.sku.as_str(), s.active, s.ean.as_deref()))
            .collect();
        assert_eq!(
            active,
            [
                ("P1V1S", true, Some("735")),
                ("P1V1M", false, None),
                ("P1V2S", false, None),
                ("P2V1S", false, Some("736")),
            ]
        );
        assert_eq!(page.sizes[0].variant_id, 10);
        assert_eq!(page.sizes[3].product_id, 2);
    }

    #[test]
    fn size_without_sku_or_unknown_warehouse_is_a_protocol_error() {
        let data = json!({"products": [{"id": 1, "status": "ACTIVE", "variants": [
            {"id": 2, "status": "ACTIVE", "productSizes": [{"id": 3, "SKU": " "}]}]}]});
        assert!(matches!(
            parse_products(&data),
            Err(CentraError::Protocol(_))
        ));
        assert!(matches!(
            parse_stock(&json!({"warehouses": []}), 12),
            Err(CentraError::Protocol(m)) if m.contains("12")
        ));
    }
}
