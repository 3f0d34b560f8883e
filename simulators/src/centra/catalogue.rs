//! The simulated Centra catalogue: products → variants → sizes, read through
//! `products(where: {status}, sort, limit, page)` (`Query.products`, `Product` in
//! `schema/centra/integration-subset.graphql`).
//!
//! Sizes themselves stay in [`super::store::Store`] (so that stock, `productSizes` and the
//! stock mutations find them by SKU or EAN); this module only groups them under products and
//! variants and answers the catalogue query. A size added with [`CentraSim::add_size`] gets a
//! one-variant product of its own (numbered by its SKU), as every Centra size belongs to a product.
//!
//! UNVERIFIED (Centra's PIM guide, quoted in `schema/centra/integration-subset.graphql`, names the query and
//! `where:{status}`, not these details; `shelfsync centra-check` asks the customer's Centra for the names):
//! the filter type name `ProductFilter`, the `status` field on `Product` and `ProductVariant`
//! with values `ACTIVE`/`INACTIVE`, the sort enum values other than `updatedAt_DESC`, the
//! default order (id ascending here) and `sizeNumber`/`description` on `ProductSize`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::schema::{PageArgs, SizeRef};
use super::store::{paginate, Store};
use super::CentraSim;
use crate::graphql::{GraphqlError, SelectedField};

/// Product statuses the simulator knows.
pub const PRODUCT_STATUSES: [&str; 2] = ["ACTIVE", "INACTIVE"];

/// First product id handed out; variant ids start at [`FIRST_VARIANT_ID`]. Offsets keep the
/// three id sequences apart, so that a client mixing them up is caught by tests.
const FIRST_PRODUCT_ID: u64 = 1001;
const FIRST_VARIANT_ID: u64 = 5001;

/// Ids assigned by [`CentraSim::add_product`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCatalogueIds {
    pub product_id: u64,
    pub variant_id: u64,
    /// In the order the sizes were given.
    pub size_ids: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Product {
    id: u64,
    number: String,
    status: String,
    variants: Vec<u64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Tie-breaker for `updatedAt` sorting: bumped on every change.
    updated_seq: u64,
}

#[derive(Debug, Clone)]
struct Variant {
    id: u64,
    number: String,
    status: String,
    /// `(size id, sizeNumber)`.
    sizes: Vec<(u64, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct Catalogue {
    products: BTreeMap<u64, Product>,
    variants: BTreeMap<u64, Variant>,
    next_product: u64,
    next_variant: u64,
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ProductSort {
    #[default]
    IdAsc,
    IdDesc,
    UpdatedAtAsc,
    UpdatedAtDesc,
}

/// Arguments of `products`, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProductsArgs {
    pub statuses: Option<Vec<String>>,
    pub ids: Option<Vec<u64>>,
    pub sort: ProductSort,
    pub page: PageArgs,
}

impl Catalogue {
    pub(crate) fn touch(&mut self, product_id: u64, now: DateTime<Utc>) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(p) = self.products.get_mut(&product_id) {
            p.updated_at = now;
            p.updated_seq = seq;
        }
    }

    /// The product with this number, created (ACTIVE) if new.
    pub(crate) fn product_by_number(&mut self, number: &str, now: DateTime<Utc>) -> u64 {
        if let Some(p) = self.products.values().find(|p| p.number == number) {
            return p.id;
        }
        let id = FIRST_PRODUCT_ID + self.next_product;
        self.next_product += 1;
        self.products.insert(
            id,
            Product {
                id,
                number: number.to_string(),
                status: "ACTIVE".to_string(),
                variants: Vec::new(),
                created_at: now,
                updated_at: now,
                updated_seq: 0,
            },
        );
        id
    }

    /// The variant with this number under the product, created (ACTIVE) if new.
    pub(crate) fn add_variant_size(&mut self, variant_id: u64, size_id: u64, size_number: &str) {
        if let Some(v) = self.variants.get_mut(&variant_id) {
            v.sizes.push((size_id, size_number.to_string()));
        }
    }

    pub(crate) fn variant_by_number(&mut self, product_id: u64, number: &str) -> u64 {
        let existing = self.products[&product_id]
            .variants
            .iter()
            .copied()
            .find(|v| self.variants[v].number == number);
        if let Some(id) = existing {
            return id;
        }
        let id = FIRST_VARIANT_ID + self.next_variant;
        self.next_variant += 1;
        self.variants.insert(
            id,
            Variant {
                id,
                number: number.to_string(),
                status: "ACTIVE".to_string(),
                sizes: Vec::new(),
            },
        );
        if let Some(p) = self.products.get_mut(&product_id) {
            p.variants.push(id);
        }
        id
    }

    fn product_of_variant(&self, variant_id: u64) -> Option<u64> {
        self.products
            .values()
            .find(|p| p.variants.contains(&variant_id))
            .map(|p| p.id)
    }

    /// `products(...)`: every matching product with its variants and their sizes.
    pub fn products(&self, store: &Store, args: &ProductsArgs) -> Result<Value, GraphqlError> {
        let mut list: Vec<&Product> = self
            .products
            .values()
            .filter(|p| {
                args.statuses.as_ref().is_none_or(|s| s.contains(&p.status))
                    && args.ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
            })
            .collect();
        match args.sort {
            ProductSort::IdAsc => {}
            ProductSort::IdDesc => list.reverse(),
            ProductSort::UpdatedAtAsc => list.sort_by_key(|p| (p.updated_seq, p.id)),
            ProductSort::UpdatedAtDesc => {
                list.sort_by_key(|p| (p.updated_seq, p.id));
                list.reverse();
            }
        }
        let items = list
            .into_iter()
            .map(|p| self.product_json(store, p))
            .collect();
        paginate(items, &args.page).map(Value::Array)
    }

    fn product_json(&self, store: &Store, p: &Product) -> Value {
        let variants: Vec<Value> = p
            .variants
            .iter()
            .map(|v| self.variant_json(store, &self.variants[v]))
            .collect();
        json!({
            "__typename": "Product",
            "id": p.id,
            "productNumber": p.number,
            "status": p.status,
            "createdAt": p.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            "updatedAt": p.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            "variants": variants,
        })
    }

    fn variant_json(&self, store: &Store, v: &Variant) -> Value {
        let sizes: Vec<Value> = v
            .sizes
            .iter()
            .filter_map(|(id, number)| {
                let s = store.find_size(&SizeRef::Id(*id))?;
                Some(json!({
                    "__typename": "ProductSize",
                    "id": s.id,
                    "SKU": s.sku,
                    "EAN": s.ean,
                    "UPC": s.upc,
                    "isActive": s.active,
                    "sizeNumber": number,
                    "description": number,
                }))
            })
            .collect();
        json!({
            "__typename": "ProductVariant",
            "id": v.id,
            "variantNumber": v.number,
            "status": v.status,
            "productSizes": sizes,
        })
    }
}

impl CentraSim {
    /// Add sizes grouped under a product and a variant: `sizes` are
    /// `(sizeNumber, SKU, EAN, isActive)`. The product (by `product_number`) and the variant (by
    /// `variant_number` within it) are created ACTIVE when new and reused otherwise, so several
    /// calls can build a product with several variants. The sizes are ordinary simulator sizes
    /// (stock, `productSizes`, mutations). Panics on a duplicate SKU.
    pub fn add_product(
        &self,
        product_number: &str,
        variant_number: &str,
        sizes: &[(&str, &str, Option<&str>, bool)],
    ) -> SimCatalogueIds {
        let mut st = self.inner.lock();
        let st = &mut *st;
        let now = Utc::now();
        let product_id = st.catalogue.product_by_number(product_number, now);
        let variant_id = st.catalogue.variant_by_number(product_id, variant_number);
        let mut size_ids = Vec::new();
        for (size_number, sku, ean, active) in sizes {
            let id = st.store.add_size(sku, *ean, None, *active);
            st.catalogue.add_variant_size(variant_id, id, size_number);
            size_ids.push(id);
        }
        st.catalogue.touch(product_id, now);
        SimCatalogueIds {
            product_id,
            variant_id,
            size_ids,
        }
    }

    /// Operator action. Panics on an unknown product or a status outside [`PRODUCT_STATUSES`].
    pub fn set_product_status(&self, product_id: u64, status: &str) {
        assert!(
            PRODUCT_STATUSES.contains(&status),
            "unknown status {status}"
        );
        let mut st = self.inner.lock();
        let p = st
            .catalogue
            .products
            .get_mut(&product_id)
            .unwrap_or_else(|| panic!("simulated Centra has no product {product_id}"));
        p.status = status.to_string();
        st.catalogue.touch(product_id, Utc::now());
    }

    /// Operator action. Panics on an unknown variant or a status outside [`PRODUCT_STATUSES`].
    pub fn set_variant_status(&self, variant_id: u64, status: &str) {
        assert!(
            PRODUCT_STATUSES.contains(&status),
            "unknown status {status}"
        );
        let mut st = self.inner.lock();
        let v = st
            .catalogue
            .variants
            .get_mut(&variant_id)
            .unwrap_or_else(|| panic!("simulated Centra has no variant {variant_id}"));
        v.status = status.to_string();
        if let Some(product_id) = st.catalogue.product_of_variant(variant_id) {
            st.catalogue.touch(product_id, Utc::now());
        }
    }
}

/// Check `products(where:, sort:, limit:, page:)`.
pub(crate) fn plan_products(field: &SelectedField) -> Result<ProductsArgs, Vec<GraphqlError>> {
    let mut errors = Vec::new();
    let mut err = |m: String| errors.push(GraphqlError::new(m).at(field.location));
    for name in field.args.keys() {
        if !["where", "sort", "limit", "page"].contains(&name.as_str()) {
            err(format!(
                "Unknown argument \"{name}\" on field \"Query.products\"."
            ));
        }
    }
    let mut args = ProductsArgs::default();
    if let Some(w) = field.arg("where") {
        product_filter(w, &mut args, &mut err);
    }
    if let Some(v) = field.arg("sort") {
        match enum_list(v) {
            None => err(format!("sort: expected a list of ProductSort, got {v}")),
            Some(list) => {
                for s in list {
                    args.sort = match s.as_str() {
                        "id_ASC" => ProductSort::IdAsc,
                        "id_DESC" => ProductSort::IdDesc,
                        "updatedAt_ASC" => ProductSort::UpdatedAtAsc,
                        "updatedAt_DESC" => ProductSort::UpdatedAtDesc,
                        other => {
                            err(format!(
                                "Value \"{other}\" does not exist in \"ProductSort\" enum."
                            ));
                            continue;
                        }
                    };
                }
            }
        }
    }
    let int = |name: &str, err: &mut dyn FnMut(String)| -> Option<i64> {
        let v = field.arg(name)?;
        let n = v.as_i64().filter(|n| i32::try_from(*n).is_ok());
        if n.is_none() {
            err(format!(
                "{name}: Int cannot represent non-integer or out-of-range value: {v}"
            ));
        }
        n
    };
    args.page = PageArgs {
        limit: int("limit", &mut err),
        page: int("page", &mut err),
    };
    if errors.is_empty() {
        Ok(args)
    } else {
        Err(errors)
    }
}

/// `where: ProductFilter` (`status`, `id`); null fields are ignored.
fn product_filter(w: &Value, args: &mut ProductsArgs, err: &mut dyn FnMut(String)) {
    match w.as_object() {
        None => err(format!(
            "Expected type \"ProductFilter\" to be an object, got {w}."
        )),
        Some(o) => {
            for (key, value) in o.iter().filter(|(_, v)| !v.is_null()) {
                match key.as_str() {
                    "status" => match enum_list(value) {
                        Some(list) => {
                            for s in &list {
                                if !PRODUCT_STATUSES.contains(&s.as_str()) {
                                    err(format!(
                                        "Value \"{s}\" does not exist in \"ProductStatus\" enum."
                                    ));
                                }
                            }
                            args.statuses = Some(list);
                        }
                        None => err(format!(
                            "ProductFilter.status: expected a list of ProductStatus, got {value}"
                        )),
                    },
                    "id" => match id_list(value) {
                        Some(ids) => args.ids = Some(ids),
                        None => err(format!(
                            "ProductFilter.id: expected a list of Int ids, got {value}"
                        )),
                    },
                    other => err(format!(
                        "Field \"{other}\" is not defined by type \"ProductFilter\"."
                    )),
                }
            }
        }
    }
}

/// An enum list; GraphQL input coercion turns a single value into a list of one.
fn enum_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

fn id_list(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Array(items) => items.iter().map(Value::as_u64).collect(),
        single => single.as_u64().map(|n| vec![n]),
    }
}
