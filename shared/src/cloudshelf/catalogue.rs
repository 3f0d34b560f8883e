//! Cloudshelf catalogue reads and upserts for scheduled reconciliation: product variants (with SKU,
//! barcode and stock flags) paged through `products`, locations, `upsertProducts` and
//! `upsertProductVariants` (`schema/cloudshelf.graphql`).
//!
//! Cloudshelf has no root query for variants: they are read as `Product.productVariants`, a plain list, one
//! page of products at a time. Page sizes are derived from the query text so that each read stays within
//! the documented complexity limit of 500, counting every field once and the `edges` subtree once per
//! product asked for. How Cloudshelf weighs a plain nested list (`productVariants`, `stockLevels`) is
//! UNVERIFIED; this count assumes "once", as the simulator does. Real throttling is answered like any
//! other request (`CloudshelfError::GraphQl` naming the limit).

use serde::Serialize;
use serde_json::{json, Value};

use crate::cloudshelf::{
    CloudshelfClient, CloudshelfError, CloudshelfUserError, MAX_QUERY_COMPLEXITY,
};

/// Largest page asked for whatever the cost allows; Cloudshelf's own maximum page size is UNVERIFIED.
pub const MAX_PAGE_SIZE: u32 = 100;

// `sortBy: {createdAt: ASC}`: new products land after the cursor, so a scan misses nothing that existed
// when it started.
pub(crate) const VARIANTS_PAGE: &str = "query CatalogueVariants($first: Int!, $after: String) {
  products(first: $first, after: $after, sortBy: {createdAt: ASC}) {
    edges { node {
      id platformProvidedId
      productVariants { id platformProvidedId sku barcode isInStock availableToPurchase }
    } }
    pageInfo { hasNextPage endCursor }
  }
}";

pub(crate) const VARIANT_STOCK_PAGE: &str =
    "query CatalogueVariantStock($first: Int!, $after: String) {
  products(first: $first, after: $after, sortBy: {createdAt: ASC}) {
    edges { node {
      id platformProvidedId
      productVariants {
        id platformProvidedId sku barcode isInStock availableToPurchase
        stockLevels { isInStock location { id platformProvidedId } }
      }
    } }
    pageInfo { hasNextPage endCursor }
  }
}";

pub(crate) const LOCATIONS_PAGE: &str = "query Locations($first: Int!, $after: String) {
  locations(first: $first, after: $after, sortBy: {createdAt: ASC}) {
    edges { node { id platformProvidedId } }
    pageInfo { hasNextPage endCursor }
  }
}";

/// Cost of each read outside `edges`: the root field, pageInfo, hasNextPage, endCursor.
const PAGE_FIXED_COST: u32 = 4;
/// One product edge of [`VARIANTS_PAGE`]: edges, node, id, platformProvidedId, productVariants and its six
/// scalars.
const VARIANTS_EDGE_COST: u32 = 11;
/// [`VARIANTS_EDGE_COST`] plus stockLevels, isInStock, location, id, platformProvidedId.
const VARIANT_STOCK_EDGE_COST: u32 = 16;
/// edges, node, id, platformProvidedId.
const LOCATIONS_EDGE_COST: u32 = 4;

const fn max_page(edge_cost: u32) -> u32 {
    let by_cost = (MAX_QUERY_COMPLEXITY - PAGE_FIXED_COST) / edge_cost;
    if by_cost < MAX_PAGE_SIZE {
        by_cost
    } else {
        MAX_PAGE_SIZE
    }
}

/// Largest `first` of [`CloudshelfClient::variants_page`] (products per page).
pub const MAX_VARIANTS_PAGE_SIZE: u32 = max_page(VARIANTS_EDGE_COST);
/// Largest `first` of [`CloudshelfClient::variant_stock_page`].
pub const MAX_VARIANT_STOCK_PAGE_SIZE: u32 = max_page(VARIANT_STOCK_EDGE_COST);
/// Largest `first` of [`CloudshelfClient::locations_page`].
pub const MAX_LOCATIONS_PAGE_SIZE: u32 = max_page(LOCATIONS_EDGE_COST);
const _: () = assert!(MAX_VARIANT_STOCK_PAGE_SIZE >= 1);

pub(crate) const UPSERT_PRODUCTS: &str = "mutation UpsertProducts($input: [ProductInput!]!) {
  upsertProducts(input: $input) { userErrors { code message } }
}";

pub(crate) const UPSERT_PRODUCT_VARIANTS: &str =
    "mutation UpsertProductVariants($inputs: [UpsertVariantsInput!]!) {
  upsertProductVariants(inputs: $inputs) { userErrors { code message } }
}";

/// Products per `upsertProducts` call and variants per `upsertProductVariants` call. UNVERIFIED: Cloudshelf
/// documents no limit; its SFCC connector sends about 150 variants per request.
pub const PRODUCTS_CHUNK: usize = 150;
pub const VARIANTS_CHUNK: usize = 150;

/// `isInStock` of a variant at one location (`ProductVariant.stockLevels`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloudshelfStockFlag {
    /// Cloudshelf gid of the location.
    pub location_id: String,
    /// The external gid the location was ingested under, if any.
    pub location_platform_id: Option<String>,
    pub is_in_stock: bool,
}

/// One product variant as Cloudshelf has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloudshelfVariant {
    /// Cloudshelf gid.
    pub id: String,
    /// The external gid it was ingested under (ours: `gid://external/CentraProductSize/<SKU>`).
    pub platform_provided_id: Option<String>,
    /// Cloudshelf gid of its product.
    pub product_id: String,
    pub product_platform_provided_id: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// Variant-level `isInStock`.
    pub is_in_stock: bool,
    /// Sellable even when out of stock (pre-order / continue selling).
    pub available_to_purchase: bool,
    /// Per location; filled by [`CloudshelfClient::variant_stock_page`] only (empty otherwise).
    pub stock_levels: Vec<CloudshelfStockFlag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloudshelfLocation {
    pub id: String,
    pub platform_provided_id: Option<String>,
}

/// `ProductInput` (the fields this integration sets). `None`s are left out of the request, so that an
/// update does not clear what it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductInput {
    /// Cloudshelf gid or external gid: an unknown external gid creates the product.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// `ProductVariantInput` (the fields this integration sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductVariantInput {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_in_stock: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_to_purchase: Option<bool>,
}

/// `UpsertVariantsInput`: variants of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertVariantsInput {
    pub product_id: String,
    pub variants: Vec<ProductVariantInput>,
}

fn protocol(what: impl Into<String>) -> CloudshelfError {
    CloudshelfError::Protocol(what.into())
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn req_text(v: &Value, key: &str, what: &str) -> Result<String, CloudshelfError> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| protocol(format!("{what} without {key}")))
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool) == Some(true)
}

/// `edges[].node` and the next cursor of a paginated payload.
fn connection<'a>(
    data: &'a Value,
    root: &str,
) -> Result<(Vec<&'a Value>, Option<String>), CloudshelfError> {
    let conn = data
        .get(root)
        .filter(|c| c.is_object())
        .ok_or_else(|| protocol(format!("no {root} in data")))?;
    let nodes = match conn.get("edges") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(edges)) => edges
            .iter()
            .map(|e| {
                e.get("node")
                    .filter(|n| n.is_object())
                    .ok_or_else(|| protocol("edge without node"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(protocol("edges is not a list")),
    };
    let page = conn.get("pageInfo").cloned().unwrap_or(Value::Null);
    let next = if page.get("hasNextPage").and_then(Value::as_bool) == Some(true) {
        let cursor = opt_text(&page, "endCursor")
            .ok_or_else(|| protocol("hasNextPage without an endCursor"))?;
        if nodes.is_empty() {
            return Err(protocol("hasNextPage on an empty page"));
        }
        Some(cursor)
    } else {
        None
    };
    Ok((nodes, next))
}

fn parse_variants(
    data: &Value,
    with_stock: bool,
) -> Result<(Vec<CloudshelfVariant>, Option<String>), CloudshelfError> {
    let (nodes, next) = connection(data, "products")?;
    let mut out = Vec::new();
    for product in nodes {
        let product_id = req_text(product, "id", "product")?;
        let product_ppid = opt_text(product, "platformProvidedId");
        let variants = match product.get("productVariants") {
            Some(Value::Array(v)) => v,
            _ => {
                return Err(protocol(format!(
                    "product {product_id} without productVariants"
                )))
            }
        };
        for v in variants {
            let id = req_text(v, "id", "variant")?;
            let stock_levels = if with_stock {
                let levels = v
                    .get("stockLevels")
                    .and_then(Value::as_array)
                    .ok_or_else(|| protocol(format!("variant {id} without stockLevels")))?;
                let mut flags = levels
                    .iter()
                    .map(|l| {
                        let location = l
                            .get("location")
                            .filter(|x| x.is_object())
                            .ok_or_else(|| protocol("stock level without location"))?;
                        Ok(CloudshelfStockFlag {
                            location_id: req_text(location, "id", "location")?,
                            location_platform_id: opt_text(location, "platformProvidedId"),
                            is_in_stock: flag(l, "isInStock"),
                        })
                    })
                    .collect::<Result<Vec<_>, CloudshelfError>>()?;
                flags.sort();
                flags
            } else {
                Vec::new()
            };
            out.push(CloudshelfVariant {
                platform_provided_id: opt_text(v, "platformProvidedId"),
                product_id: product_id.clone(),
                product_platform_provided_id: product_ppid.clone(),
                sku: opt_text(v, "sku"),
                barcode: opt_text(v, "barcode"),
                is_in_stock: flag(v, "isInStock"),
                available_to_purchase: flag(v, "availableToPurchase"),
                stock_levels,
                id,
            });
        }
    }
    Ok((out, next))
}

fn user_errors(data: &Value, root: &str) -> Result<Vec<CloudshelfUserError>, CloudshelfError> {
    let payload = data
        .get(root)
        .filter(|p| p.is_object())
        .ok_or_else(|| protocol(format!("no {root} in data")))?;
    match payload.get("userErrors") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| protocol(format!("userErrors: {e}")))
        }
    }
}

/// Split the variants into calls of at most `chunk` variants; a product with more is split across
/// several `UpsertVariantsInput`s.
fn variant_chunks(inputs: &[UpsertVariantsInput], chunk: usize) -> Vec<Vec<UpsertVariantsInput>> {
    let chunk = chunk.max(1);
    let mut calls: Vec<Vec<UpsertVariantsInput>> = Vec::new();
    let mut current: Vec<UpsertVariantsInput> = Vec::new();
    let mut count = 0;
    for input in inputs {
        for part in input.variants.chunks(chunk) {
            if count + part.len() > chunk {
                calls.push(std::mem::take(&mut current));
                count = 0;
            }
            count += part.len();
            current.push(UpsertVariantsInput {
                product_id: input.product_id.clone(),
                variants: part.to_vec(),
            });
        }
    }
    if !current.is_empty() {
        calls.push(current);
    }
    calls
}

impl CloudshelfClient {
    /// One page of `first` products (clamped to 1–[`MAX_VARIANTS_PAGE_SIZE`]), flattened to their
    /// variants, after `after` (a cursor from the previous page; `None` for the first). Returns the
    /// variants and the cursor of the next page, `None` after the last.
    pub async fn variants_page(
        &self,
        after: Option<String>,
        first: u32,
    ) -> Result<(Vec<CloudshelfVariant>, Option<String>), CloudshelfError> {
        let first = first.clamp(1, MAX_VARIANTS_PAGE_SIZE);
        let data = self
            .post(VARIANTS_PAGE, json!({ "first": first, "after": after }))
            .await?;
        parse_variants(&data, false)
    }

    /// Like [`CloudshelfClient::variants_page`], with each variant's per-location `isInStock`
    /// (`stock_levels`); `first` is clamped to 1–[`MAX_VARIANT_STOCK_PAGE_SIZE`].
    pub async fn variant_stock_page(
        &self,
        after: Option<String>,
        first: u32,
    ) -> Result<(Vec<CloudshelfVariant>, Option<String>), CloudshelfError> {
        let first = first.clamp(1, MAX_VARIANT_STOCK_PAGE_SIZE);
        let data = self
            .post(
                VARIANT_STOCK_PAGE,
                json!({ "first": first, "after": after }),
            )
            .await?;
        parse_variants(&data, true)
    }

    /// Every variant, paging to the end (`with_stock`: with per-location flags).
    pub async fn all_variants(
        &self,
        with_stock: bool,
    ) -> Result<Vec<CloudshelfVariant>, CloudshelfError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (variants, next) = if with_stock {
                self.variant_stock_page(after.clone(), MAX_VARIANT_STOCK_PAGE_SIZE)
                    .await?
            } else {
                self.variants_page(after.clone(), MAX_VARIANTS_PAGE_SIZE)
                    .await?
            };
            out.extend(variants);
            match next {
                Some(cursor) if Some(&cursor) != after.as_ref() => after = Some(cursor),
                Some(_) => return Err(protocol("the next cursor repeats the previous one")),
                None => return Ok(out),
            }
        }
    }

    /// One page of locations (`first` clamped to 1–[`MAX_LOCATIONS_PAGE_SIZE`]) and the next cursor.
    pub async fn locations_page(
        &self,
        after: Option<String>,
        first: u32,
    ) -> Result<(Vec<CloudshelfLocation>, Option<String>), CloudshelfError> {
        let first = first.clamp(1, MAX_LOCATIONS_PAGE_SIZE);
        let data = self
            .post(LOCATIONS_PAGE, json!({ "first": first, "after": after }))
            .await?;
        let (nodes, next) = connection(&data, "locations")?;
        let locations = nodes
            .into_iter()
            .map(|n| {
                Ok(CloudshelfLocation {
                    id: req_text(n, "id", "location")?,
                    platform_provided_id: opt_text(n, "platformProvidedId"),
                })
            })
            .collect::<Result<Vec<_>, CloudshelfError>>()?;
        Ok((locations, next))
    }

    /// `upsertProducts` in chunks of [`PRODUCTS_CHUNK`]. Returns the `userErrors` of all chunks; the inputs
    /// they do not concern were applied. Upserts set absolute values, so repeating a call after a
    /// transient failure is safe.
    pub async fn upsert_products(
        &self,
        products: &[ProductInput],
    ) -> Result<Vec<CloudshelfUserError>, CloudshelfError> {
        let mut errors = Vec::new();
        for chunk in products.chunks(PRODUCTS_CHUNK) {
            let data = self
                .post(UPSERT_PRODUCTS, json!({ "input": chunk }))
                .await?;
            errors.extend(user_errors(&data, "upsertProducts")?);
        }
        Ok(errors)
    }

    /// `upsertProductVariants` with at most [`VARIANTS_CHUNK`] variants per call. The products must exist
    /// (upsert them first). Returns the `userErrors` of all calls, like
    /// [`CloudshelfClient::upsert_products`].
    pub async fn upsert_product_variants(
        &self,
        inputs: &[UpsertVariantsInput],
    ) -> Result<Vec<CloudshelfUserError>, CloudshelfError> {
        let mut errors = Vec::new();
        for call in variant_chunks(inputs, VARIANTS_CHUNK) {
            let data = self
                .post(UPSERT_PRODUCT_VARIANTS, json!({ "inputs": call }))
                .await?;
            errors.extend(user_errors(&data, "upsertProductVariants")?);
        }
        Ok(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str) -> u64 {
        let vars = json!({ "first": 1, "after": null });
        let op = simulators::graphql::prepare(query, None, vars.as_object().unwrap()).unwrap();
        simulators::cloudshelf::query_complexity(&op.fields, 10)
    }

    /// The page caps come from hand-counted costs; check them against the query text with the simulator's
    /// cost model (every field 1, `edges` × `first`).
    #[test]
    fn page_costs_match_the_constants_and_stay_within_the_limit() {
        for (query, edge, max) in [
            (VARIANTS_PAGE, VARIANTS_EDGE_COST, MAX_VARIANTS_PAGE_SIZE),
            (
                VARIANT_STOCK_PAGE,
                VARIANT_STOCK_EDGE_COST,
                MAX_VARIANT_STOCK_PAGE_SIZE,
            ),
            (LOCATIONS_PAGE, LOCATIONS_EDGE_COST, MAX_LOCATIONS_PAGE_SIZE),
        ] {
            assert_eq!(cost(query), u64::from(PAGE_FIXED_COST + edge), "{query}");
            assert!(PAGE_FIXED_COST + edge * max <= MAX_QUERY_COMPLEXITY);
            assert!(
                max == MAX_PAGE_SIZE || PAGE_FIXED_COST + edge * (max + 1) > MAX_QUERY_COMPLEXITY
            );
        }
    }

    #[test]
    fn inputs_serialise_with_schema_names_and_leave_out_nones() {
        let v = serde_json::to_value(UpsertVariantsInput {
            product_id: "gid://external/CentraProduct/1".into(),
            variants: vec![ProductVariantInput {
                id: "gid://external/CentraProductSize/A".into(),
                sku: Some("A".into()),
                barcode: None,
                display_name: Some("A".into()),
                is_in_stock: None,
                available_to_purchase: Some(false),
            }],
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"productId": "gid://external/CentraProduct/1", "variants": [
                {"id": "gid://external/CentraProductSize/A", "sku": "A", "displayName": "A",
                 "availableToPurchase": false}
            ]})
        );
    }

    #[test]
    fn variant_chunks_split_large_products_and_keep_order() {
        let input = |p: &str, n: usize| UpsertVariantsInput {
            product_id: p.into(),
            variants: (0..n)
                .map(|i| ProductVariantInput {
                    id: format!("{p}/{i}"),
                    sku: None,
                    barcode: None,
                    display_name: None,
                    is_in_stock: None,
                    available_to_purchase: None,
                })
                .collect(),
        };
        let calls = variant_chunks(&[input("a", 2), input("b", 5), input("c", 1)], 3);
        let shape: Vec<Vec<(String, usize)>> = calls
            .iter()
            .map(|c| {
                c.iter()
                    .map(|i| (i.product_id.clone(), i.variants.len()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![("a".to_string(), 2)],
                vec![("b".to_string(), 3)],
                vec![("b".to_string(), 2), ("c".to_string(), 1)],
            ]
        );
        assert!(variant_chunks(&[], 3).is_empty());
    }

    #[test]
    fn has_next_page_without_a_cursor_is_a_protocol_error() {
        let data = json!({"products": {"edges": [{"node": {"id": "p", "productVariants": []}}],
                                       "pageInfo": {"hasNextPage": true, "endCursor": null}}});
        assert!(matches!(
            parse_variants(&data, false),
            Err(CloudshelfError::Protocol(_))
        ));
    }
}
