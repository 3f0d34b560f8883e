//! The Cloudshelf simulator's catalogue (a child module of [`crate::cloudshelf`], so it shares that
//! module's stores and helpers): `products(first, after, sortBy, textSearch)` with their
//! `productVariants`, `locations(first, after, sortBy)`, `upsertProducts(input)` and
//! `upsertProductVariants(inputs)`, as in the schema (`schema/cloudshelf.graphql`).
//!
//! Variants live in the same store as the ones seeded with [`CloudshelfSim::add_variant`], so a
//! variant created by `upsertProductVariants` under an external gid takes `upsertStockLevels` at
//! once. Query limits (complexity, depth) apply as to every request.
//!
//! Choices the public material does not pin down (all UNVERIFIED):
//! - creating a product without `displayName` is an `ENTITY_CREATION_MISSING_FIELD` userError
//!   (`Product.displayName` is non-null); an omitted `handle` is derived from the display name as
//!   the schema describes;
//! - `UpsertVariantsInput.productId` must name an existing product (`ENTITY_NOT_FOUND` otherwise),
//!   although the schema's generic text says an unknown external gid creates a record;
//! - a variant created without `isInStock` / `availableToPurchase` starts with both `false`;
//! - `ProductVariant.isInStock` is "in stock at any location" once the variant has stock levels,
//!   and the flag last upserted otherwise;
//! - `textSearch` is a case-insensitive substring match on the product's display name and handle
//!   and its variants' SKU, barcode and display name;
//! - a field sent as `null` in an update leaves the stored value unchanged;
//! - nested objects are shallow: `ProductVariant.product` carries no `productVariants`, and the
//!   `productVariant` of a `StockLevel` only `id`, `platformProvidedId`, `sku` and `barcode`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{
    arg_error, check_arg_names, decode_cursor, encode_cursor, global_id, is_external, opt_string,
    sort_by, timestamp, user_error, CloudshelfSim, SortField, StockStore, Variant, VariantSeed,
};
use crate::graphql::{GraphqlError, OperationKind, SelectedField};

/// A product as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSnapshot {
    pub id: String,
    pub platform_provided_id: Option<String>,
    pub display_name: String,
    pub handle: String,
    /// Cloudshelf gids, in the order the variants were added.
    pub variant_ids: Vec<String>,
}

/// A catalogue variant as the simulator holds it; `is_in_stock` as `ProductVariant.isInStock`
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueVariantSnapshot {
    pub id: String,
    pub platform_provided_id: Option<String>,
    /// Cloudshelf gid of its product; `None` for a variant seeded with `add_variant` alone.
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub display_name: Option<String>,
    pub is_in_stock: bool,
    pub available_to_purchase: bool,
}

#[derive(Debug, Clone)]
struct Product {
    id: String,
    platform_provided_id: Option<String>,
    display_name: String,
    handle: String,
    variant_ids: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// What a catalogue variant has beyond the stock store's [`Variant`].
#[derive(Debug, Clone)]
struct VariantExtra {
    product_id: String,
    display_name: Option<String>,
    is_in_stock: bool,
    available_to_purchase: bool,
}

#[derive(Debug, Default)]
pub(super) struct Catalogue {
    /// By Cloudshelf gid.
    products: BTreeMap<String, Product>,
    /// By variant gid.
    extras: HashMap<String, VariantExtra>,
    product_upserts: u64,
    variant_upserts: u64,
}

/// Arguments of `products` and `locations`.
pub(super) struct ListArgs {
    first: Option<u64>,
    after: Option<String>,
    sort: SortField,
    descending: bool,
    text: Option<String>,
}

pub(super) struct ProductIn {
    id: Option<String>,
    display_name: Option<String>,
    handle: Option<String>,
}

pub(super) struct VariantIn {
    id: Option<String>,
    sku: Option<String>,
    barcode: Option<String>,
    display_name: Option<String>,
    is_in_stock: Option<bool>,
    available_to_purchase: Option<bool>,
}

pub(super) struct VariantsIn {
    product_id: String,
    variants: Vec<VariantIn>,
}

/// A checked catalogue root field.
pub(super) enum CatalogueCall {
    Products(ListArgs),
    Locations(ListArgs),
    UpsertProducts(Vec<ProductIn>),
    UpsertProductVariants(Vec<VariantsIn>),
}

// ---------------------------------------------------------------------------------------------
// Schema slice

/// Whether this module answers the root field.
pub(super) fn handles(kind: OperationKind, name: &str) -> bool {
    matches!(
        (kind, name),
        (OperationKind::Query, "products" | "locations")
            | (
                OperationKind::Mutation,
                "upsertProducts" | "upsertProductVariants"
            )
    )
}

/// Fields of the object types this module adds (see `object_fields` of the parent).
pub(super) fn object_fields(
    type_name: &str,
) -> Option<&'static [(&'static str, Option<&'static str>)]> {
    Some(match type_name {
        "Product" => &[
            ("id", None),
            ("platformProvidedId", None),
            ("displayName", None),
            ("handle", None),
            ("createdAt", None),
            ("updatedAt", None),
            ("productVariants", Some("ProductVariant")),
        ],
        "ProductPaginatedPayload" => &[
            ("edges", Some("ProductEdge")),
            ("pageInfo", Some("ProductPageInfo")),
            ("totalCount", None),
        ],
        "ProductEdge" => &[("cursor", None), ("node", Some("Product"))],
        "LocationPaginatedPayload" => &[
            ("edges", Some("LocationEdge")),
            ("pageInfo", Some("LocationPageInfo")),
            ("totalCount", None),
        ],
        "LocationEdge" => &[("cursor", None), ("node", Some("Location"))],
        "ProductPageInfo" | "LocationPageInfo" => &[
            ("hasNextPage", None),
            ("hasPreviousPage", None),
            ("startCursor", None),
            ("endCursor", None),
        ],
        "ProductUpsertPayload" => &[
            ("products", Some("Product")),
            ("userErrors", Some("UserError")),
        ],
        "ProductVariantUpsertPayload" => &[
            ("productVariants", Some("ProductVariant")),
            ("userErrors", Some("UserError")),
        ],
        _ => return None,
    })
}

const PRODUCT_INPUT_FIELDS: [&str; 9] = [
    "description",
    "displayName",
    "handle",
    "id",
    "metadata",
    "productType",
    "remoteUpdatedAt",
    "tags",
    "vendor",
];

const VARIANT_INPUT_FIELDS: [&str; 13] = [
    "attributes",
    "availableToPurchase",
    "barcode",
    "currentPrice",
    "displayName",
    "id",
    "inventoryPolicy",
    "isInStock",
    "metadata",
    "metaimages",
    "originalPrice",
    "position",
    "sku",
];

pub(super) fn plan(
    kind: OperationKind,
    field: &SelectedField,
) -> Result<CatalogueCall, GraphqlError> {
    match (kind, field.name.as_str()) {
        (OperationKind::Query, "products") => plan_products(field),
        (OperationKind::Query, "locations") => plan_locations(field),
        (OperationKind::Mutation, "upsertProducts") => {
            check_arg_names(field, "Mutation", &["input"])?;
            let items = required_list(field, "input", "[ProductInput!]!")?;
            let inputs = items
                .iter()
                .enumerate()
                .map(|(i, v)| product_input(v, &format!("input[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| arg_error(field, m))?;
            Ok(CatalogueCall::UpsertProducts(inputs))
        }
        (OperationKind::Mutation, "upsertProductVariants") => {
            check_arg_names(field, "Mutation", &["inputs"])?;
            let items = required_list(field, "inputs", "[UpsertVariantsInput!]!")?;
            let inputs = items
                .iter()
                .enumerate()
                .map(|(i, v)| variants_input(v, &format!("inputs[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| arg_error(field, m))?;
            Ok(CatalogueCall::UpsertProductVariants(inputs))
        }
        (kind, name) => Err(GraphqlError::not_simulated(format_args!(
            "the root field \"{}.{name}\"",
            kind.type_name()
        ))
        .at(field.location)),
    }
}

/// `Query.products(first:, after:, sortBy:, textSearch:)`.
fn plan_products(field: &SelectedField) -> Result<CatalogueCall, GraphqlError> {
    check_arg_names(
        field,
        "Query",
        &[
            "first",
            "after",
            "last",
            "before",
            "sortBy",
            "textSearch",
            "productGroupIds",
        ],
    )?;
    if field.arg("productGroupIds").is_some() {
        return Err(arg_error(
            field,
            "The simulator does not implement \"productGroupIds\".".into(),
        ));
    }
    let mut args = list_args(field)?;
    args.text = match field.arg("textSearch") {
        None => None,
        Some(Value::String(s)) => Some(s.to_lowercase()),
        Some(v) => {
            return Err(arg_error(
                field,
                format!("textSearch: Expected value of type \"String\", found {v}."),
            ))
        }
    };
    Ok(CatalogueCall::Products(args))
}

/// `Query.locations(first:, after:, sortBy:)`.
fn plan_locations(field: &SelectedField) -> Result<CatalogueCall, GraphqlError> {
    check_arg_names(
        field,
        "Query",
        &[
            "first",
            "after",
            "last",
            "before",
            "sortBy",
            "textSearch",
            "fulfillsOnlineOrders",
        ],
    )?;
    if field.arg("textSearch").is_some() || field.arg("fulfillsOnlineOrders").is_some() {
        return Err(arg_error(
            field,
            "The simulator does not implement \"textSearch\"/\"fulfillsOnlineOrders\" on locations."
                .into(),
        ));
    }
    let args = list_args(field)?;
    if args.sort == SortField::UpdatedAt {
        return Err(arg_error(
            field,
            "The simulator keeps no updatedAt for locations; sort by id or createdAt.".into(),
        ));
    }
    Ok(CatalogueCall::Locations(args))
}

fn list_args(field: &SelectedField) -> Result<ListArgs, GraphqlError> {
    let paging = paging_args(field)?;
    Ok(ListArgs {
        first: paging.first,
        after: paging.after,
        sort: paging.sort,
        descending: paging.descending,
        text: None,
    })
}

/// `first`, `after` and `sortBy` of a connection field (`orders`, `products`, `locations`); forward paging only.
pub(super) struct PagingArgs {
    pub(super) first: Option<u64>,
    pub(super) after: Option<String>,
    pub(super) sort: SortField,
    pub(super) descending: bool,
}

pub(super) fn paging_args(field: &SelectedField) -> Result<PagingArgs, GraphqlError> {
    if field.arg("last").is_some() || field.arg("before").is_some() {
        // Backward paging is real API surface the integration does not use.
        return Err(arg_error(
            field,
            "The simulator does not implement \"last\"/\"before\".".into(),
        ));
    }
    let first = match field.arg("first") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            arg_error(
                field,
                format!("first: Expected a non-negative value of type \"Int\", found {v}."),
            )
        })?),
    };
    let after = match field.arg("after") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(arg_error(
                field,
                format!("after: Expected value of type \"String\", found {v}."),
            ))
        }
    };
    // UNVERIFIED: the default order when `sortBy` is absent; createdAt ASC chosen.
    let (sort, descending) = match field.arg("sortBy") {
        None => (SortField::CreatedAt, false),
        Some(Value::Object(o)) => sort_by(o).map_err(|m| arg_error(field, m))?,
        Some(v) => {
            return Err(arg_error(
                field,
                format!("sortBy: Expected value of type \"SortOptionsInput\", found {v}."),
            ))
        }
    };
    Ok(PagingArgs {
        first,
        after,
        sort,
        descending,
    })
}

fn required_list(field: &SelectedField, name: &str, ty: &str) -> Result<Vec<Value>, GraphqlError> {
    let v = field.arg(name).ok_or_else(|| {
        arg_error(
            field,
            format!("Argument \"{name}\" of required type \"{ty}\" was not provided."),
        )
    })?;
    // GraphQL input coercion: a single object stands for a list of one.
    Ok(match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    })
}

fn object<'v>(
    v: &'v Value,
    what: &str,
    type_name: &str,
    allowed: &[&str],
) -> Result<&'v Map<String, Value>, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: Expected value of type \"{type_name}!\", found {v}."))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "{what}: the simulator does not implement the input field \"{type_name}.{k}\" (it is in the schema)."
        ));
    }
    Ok(obj)
}

fn opt_gid(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => global_id(v, &format!("{what}.{key}")).map(Some),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!(
            "{what}.{key}: Expected value of type \"Boolean\", found {v}."
        )),
    }
}

fn product_input(v: &Value, what: &str) -> Result<ProductIn, String> {
    let obj = object(v, what, "ProductInput", &PRODUCT_INPUT_FIELDS)?;
    Ok(ProductIn {
        id: opt_gid(obj, "id", what)?,
        display_name: opt_string(obj, "displayName", what)?,
        handle: opt_string(obj, "handle", what)?,
    })
}

fn variants_input(v: &Value, what: &str) -> Result<VariantsIn, String> {
    let obj = object(v, what, "UpsertVariantsInput", &["productId", "variants"])?;
    let product_id = opt_gid(obj, "productId", what)?.ok_or_else(|| {
        format!("{what}: Field \"productId\" of required type \"GlobalId!\" was not provided.")
    })?;
    let variants = match obj.get("variants") {
        None | Some(Value::Null) => {
            return Err(format!(
                "{what}: Field \"variants\" of required type \"[ProductVariantInput!]!\" was not provided."
            ))
        }
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
    };
    let variants = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let what = format!("{what}.variants[{i}]");
            let obj = object(v, &what, "ProductVariantInput", &VARIANT_INPUT_FIELDS)?;
            Ok(VariantIn {
                id: opt_gid(obj, "id", &what)?,
                sku: opt_string(obj, "sku", &what)?,
                barcode: opt_string(obj, "barcode", &what)?,
                display_name: opt_string(obj, "displayName", &what)?,
                is_in_stock: opt_bool(obj, "isInStock", &what)?,
                available_to_purchase: opt_bool(obj, "availableToPurchase", &what)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(VariantsIn {
        product_id,
        variants,
    })
}

// ---------------------------------------------------------------------------------------------
// Execution

/// The handle Cloudshelf derives from a display name: lower case, non-alphanumerics removed,
/// spaces as hyphens.
fn handle_of(display_name: &str) -> String {
    display_name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

pub(super) fn execute(
    stock: &mut StockStore,
    call: CatalogueCall,
    now: DateTime<Utc>,
    default_page_size: u64,
) -> Result<Value, GraphqlError> {
    match call {
        CatalogueCall::Products(args) => products_page(stock, &args, default_page_size),
        CatalogueCall::Locations(args) => locations_page(stock, &args, default_page_size),
        CatalogueCall::UpsertProducts(inputs) => {
            let mut products = Vec::new();
            let mut user_errors = Vec::new();
            // Each input stands alone (UNVERIFIED, as for the other upserts).
            for input in inputs {
                match upsert_product(stock, input, now) {
                    Ok(id) => {
                        stock.catalogue.product_upserts += 1;
                        products.push(product_json(stock, &stock.catalogue.products[&id]));
                    }
                    Err(e) => user_errors.push(e),
                }
            }
            Ok(json!({
                "__typename": "ProductUpsertPayload",
                "products": products,
                "userErrors": user_errors,
            }))
        }
        CatalogueCall::UpsertProductVariants(inputs) => {
            let mut variants = Vec::new();
            let mut user_errors = Vec::new();
            for input in inputs {
                let Some(product_id) = resolve_product(stock, &input.product_id) else {
                    user_errors.push(user_error(
                        "ENTITY_NOT_FOUND",
                        &format!("Product with id {} not found", input.product_id),
                    ));
                    continue;
                };
                for v in input.variants {
                    match upsert_variant(stock, &product_id, v, now) {
                        Ok(id) => {
                            stock.catalogue.variant_upserts += 1;
                            variants.push(variant_json(stock, &id));
                        }
                        Err(e) => user_errors.push(e),
                    }
                }
            }
            Ok(json!({
                "__typename": "ProductVariantUpsertPayload",
                "productVariants": variants,
                "userErrors": user_errors,
            }))
        }
    }
}

fn resolve_product(stock: &StockStore, id: &str) -> Option<String> {
    let id = stock.aliases.get(id).map_or(id, String::as_str);
    stock
        .catalogue
        .products
        .contains_key(id)
        .then(|| id.to_string())
}

/// Whether an external gid is already taken by an entity that is not of the wanted kind.
fn alias_taken(stock: &StockStore, id: &str) -> bool {
    is_external(id) && stock.aliases.contains_key(id)
}

fn new_product(
    stock: &mut StockStore,
    platform_provided_id: Option<&str>,
    display_name: &str,
    handle: Option<String>,
    now: DateTime<Utc>,
) -> String {
    let handle = handle.unwrap_or_else(|| handle_of(display_name));
    let display_name = display_name.to_string();
    let ppid = platform_provided_id.map(str::to_string);
    stock.add("Product", platform_provided_id, |st, id| {
        st.catalogue.products.insert(
            id.clone(),
            Product {
                id,
                platform_provided_id: ppid,
                display_name,
                handle,
                variant_ids: Vec::new(),
                created_at: now,
                updated_at: now,
            },
        );
    })
}

fn upsert_product(
    stock: &mut StockStore,
    input: ProductIn,
    now: DateTime<Utc>,
) -> Result<String, Value> {
    let existing = match &input.id {
        Some(id) => match resolve_product(stock, id) {
            Some(found) => Some(found),
            None if alias_taken(stock, id) => {
                return Err(user_error(
                    "ENTITY_INVALID_FIELD",
                    &format!("{id} already names an entity that is not a product"),
                ))
            }
            None if is_external(id) => None,
            None => {
                return Err(user_error(
                    "ENTITY_NOT_FOUND",
                    &format!("Product with id {id} not found"),
                ))
            }
        },
        None => None,
    };
    match existing {
        Some(id) => {
            let p = stock
                .catalogue
                .products
                .get_mut(&id)
                .expect("product just resolved");
            if let Some(name) = input.display_name {
                p.display_name = name;
            }
            if let Some(handle) = input.handle {
                p.handle = handle;
            }
            p.updated_at = now.max(p.updated_at + chrono::Duration::milliseconds(1));
            Ok(id)
        }
        None => {
            let Some(name) = input.display_name else {
                return Err(user_error(
                    "ENTITY_CREATION_MISSING_FIELD",
                    "displayName is required to create a product",
                ));
            };
            Ok(new_product(
                stock,
                input.id.as_deref(),
                &name,
                input.handle,
                now,
            ))
        }
    }
}

fn link_variant(stock: &mut StockStore, product_id: &str, variant_id: &str, now: DateTime<Utc>) {
    for p in stock.catalogue.products.values_mut() {
        if p.id != product_id {
            p.variant_ids.retain(|v| v != variant_id);
        }
    }
    if let Some(p) = stock.catalogue.products.get_mut(product_id) {
        if !p.variant_ids.iter().any(|v| v == variant_id) {
            p.variant_ids.push(variant_id.to_string());
        }
        p.updated_at = now.max(p.updated_at + chrono::Duration::milliseconds(1));
    }
}

fn upsert_variant(
    stock: &mut StockStore,
    product_id: &str,
    input: VariantIn,
    now: DateTime<Utc>,
) -> Result<String, Value> {
    let existing = match &input.id {
        Some(id) => match stock.resolve_variant(id) {
            Some(found) => Some(found),
            None if alias_taken(stock, id) => {
                return Err(user_error(
                    "ENTITY_INVALID_FIELD",
                    &format!("{id} already names an entity that is not a product variant"),
                ))
            }
            None if is_external(id) => None,
            None => {
                return Err(user_error(
                    "ENTITY_NOT_FOUND",
                    &format!("Product variant with id {id} not found"),
                ))
            }
        },
        None => None,
    };
    let id = match existing {
        Some(id) => {
            let v = stock.variants.get_mut(&id).expect("variant just resolved");
            if input.sku.is_some() {
                v.sku = input.sku;
            }
            if input.barcode.is_some() {
                v.barcode = input.barcode;
            }
            id
        }
        None => {
            let ppid = input.id.clone();
            let variant = Variant {
                platform_provided_id: ppid.clone(),
                sku: input.sku,
                barcode: input.barcode,
            };
            stock.add("ProductVariant", ppid.as_deref(), |st, id| {
                st.variants.insert(id, variant);
            })
        }
    };
    let extra = stock
        .catalogue
        .extras
        .entry(id.clone())
        .or_insert_with(|| VariantExtra {
            product_id: product_id.to_string(),
            display_name: None,
            is_in_stock: false,
            available_to_purchase: false,
        });
    extra.product_id = product_id.to_string();
    if input.display_name.is_some() {
        extra.display_name = input.display_name;
    }
    if let Some(b) = input.is_in_stock {
        extra.is_in_stock = b;
    }
    if let Some(b) = input.available_to_purchase {
        extra.available_to_purchase = b;
    }
    link_variant(stock, product_id, &id, now);
    Ok(id)
}

/// `isInStock` of a variant: any location in stock once it has stock levels, the upserted flag
/// otherwise.
fn variant_in_stock(stock: &StockStore, variant_id: &str) -> bool {
    let mut levels = stock
        .levels
        .values()
        .filter(|l| l.product_variant_id == variant_id)
        .peekable();
    if levels.peek().is_some() {
        return levels.any(|l| l.is_in_stock);
    }
    stock
        .catalogue
        .extras
        .get(variant_id)
        .is_some_and(|e| e.is_in_stock)
}

fn product_ref_json(p: &Product) -> Value {
    json!({
        "__typename": "Product",
        "id": p.id,
        "platformProvidedId": p.platform_provided_id,
        "displayName": p.display_name,
        "handle": p.handle,
        "createdAt": timestamp(p.created_at),
        "updatedAt": timestamp(p.updated_at),
    })
}

fn product_json(stock: &StockStore, p: &Product) -> Value {
    let mut v = product_ref_json(p);
    v["productVariants"] = Value::Array(
        p.variant_ids
            .iter()
            .map(|id| variant_json(stock, id))
            .collect(),
    );
    v
}

fn variant_json(stock: &StockStore, id: &str) -> Value {
    let base = stock.variants.get(id);
    let extra = stock.catalogue.extras.get(id);
    let product = extra
        .and_then(|e| stock.catalogue.products.get(&e.product_id))
        .map_or(Value::Null, product_ref_json);
    let levels: Vec<Value> = stock
        .levels
        .values()
        .filter(|l| l.product_variant_id == id)
        .map(|l| stock.level_json(l))
        .collect();
    json!({
        "__typename": "ProductVariant",
        "id": id,
        "platformProvidedId": base.and_then(|v| v.platform_provided_id.clone()),
        "sku": base.and_then(|v| v.sku.clone()),
        "barcode": base.and_then(|v| v.barcode.clone()),
        "displayName": extra.and_then(|e| e.display_name.clone()),
        "isInStock": variant_in_stock(stock, id),
        "availableToPurchase": extra.is_some_and(|e| e.available_to_purchase),
        "product": product,
        "stockLevels": levels,
    })
}

fn matches_text(stock: &StockStore, p: &Product, text: &str) -> bool {
    let hit = |s: Option<&str>| s.is_some_and(|s| s.to_lowercase().contains(text));
    hit(Some(&p.display_name))
        || hit(Some(&p.handle))
        || p.variant_ids.iter().any(|id| {
            let base = stock.variants.get(id);
            hit(base.and_then(|v| v.sku.as_deref()))
                || hit(base.and_then(|v| v.barcode.as_deref()))
                || hit(stock
                    .catalogue
                    .extras
                    .get(id)
                    .and_then(|e| e.display_name.as_deref()))
        })
}

/// Keyset paging over `(sort key, id)` like `orders`; `items` are `(key, id, node)`.
fn page(
    mut items: Vec<((i64, String), Value)>,
    args: &ListArgs,
    default_page_size: u64,
    type_name: &str,
) -> Result<Value, GraphqlError> {
    items.sort_by(|a, b| {
        let ord = a.0.cmp(&b.0);
        if args.descending {
            ord.reverse()
        } else {
            ord
        }
    });
    let start = match &args.after {
        None => 0,
        Some(cursor) => {
            let (field, key) = decode_cursor(cursor)
                .ok_or_else(|| GraphqlError::new(format!("Invalid cursor \"{cursor}\"")))?;
            if field != args.sort {
                return Err(GraphqlError::new(format!(
                    "Cursor \"{cursor}\" belongs to another sort order"
                )));
            }
            items
                .iter()
                .position(|(k, _)| if args.descending { *k < key } else { *k > key })
                .unwrap_or(items.len())
        }
    };
    let first = args.first.unwrap_or(default_page_size);
    let end = start.saturating_add(first as usize).min(items.len());
    let window = &items[start..end];
    let cursor = |k: &(i64, String)| encode_cursor(args.sort, (k.0, &k.1));
    let edges: Vec<Value> = window
        .iter()
        .map(|(k, node)| json!({"__typename": format!("{type_name}Edge"), "cursor": cursor(k), "node": node}))
        .collect();
    Ok(json!({
        "__typename": format!("{type_name}PaginatedPayload"),
        "edges": edges,
        "pageInfo": {
            "__typename": format!("{type_name}PageInfo"),
            "hasNextPage": end < items.len(),
            "hasPreviousPage": start > 0,
            "startCursor": window.first().map(|(k, _)| cursor(k)),
            "endCursor": window.last().map(|(k, _)| cursor(k)),
        },
        "totalCount": items.len(),
    }))
}

fn products_page(
    stock: &StockStore,
    args: &ListArgs,
    default_page_size: u64,
) -> Result<Value, GraphqlError> {
    let items = stock
        .catalogue
        .products
        .values()
        .filter(|p| {
            args.text
                .as_deref()
                .is_none_or(|t| matches_text(stock, p, t))
        })
        .map(|p| {
            let ms = match args.sort {
                SortField::CreatedAt => p.created_at.timestamp_millis(),
                SortField::UpdatedAt => p.updated_at.timestamp_millis(),
                SortField::Id => 0,
            };
            ((ms, p.id.clone()), product_json(stock, p))
        })
        .collect();
    page(items, args, default_page_size, "Product")
}

/// Locations carry no timestamps in the simulator; their gids grow with creation, so `id` and
/// `createdAt` order them alike.
fn locations_page(
    stock: &StockStore,
    args: &ListArgs,
    default_page_size: u64,
) -> Result<Value, GraphqlError> {
    let items = stock
        .locations
        .iter()
        .map(|(id, ppid)| {
            let node = json!({"__typename": "Location", "id": id, "platformProvidedId": ppid});
            ((0, id.clone()), node)
        })
        .collect();
    page(items, args, default_page_size, "Location")
}

// ---------------------------------------------------------------------------------------------
// Test setup and inspection

impl CloudshelfSim {
    /// Seed a product; returns its Cloudshelf gid. `platform_provided_id` is the external gid it
    /// was ingested under. Panics on a duplicate external gid.
    pub fn add_product(&self, platform_provided_id: Option<&str>, display_name: &str) -> String {
        let mut st = self.inner.lock();
        new_product(
            &mut st.store.stock,
            platform_provided_id,
            display_name,
            None,
            chrono::Utc::now(),
        )
    }

    /// Seed a variant of a product (named by Cloudshelf gid or external gid); returns its
    /// Cloudshelf gid. It starts neither in stock nor available to purchase. Panics on an unknown
    /// product or a duplicate external gid.
    pub fn add_product_variant(&self, product: &str, seed: VariantSeed) -> String {
        let mut st = self.inner.lock();
        let stock = &mut st.store.stock;
        let product_id = resolve_product(stock, product)
            .unwrap_or_else(|| panic!("simulated Cloudshelf has no product {product}"));
        if let Some(ppid) = &seed.platform_provided_id {
            assert!(!stock.aliases.contains_key(ppid), "{ppid} seeded twice");
        }
        let input = VariantIn {
            id: seed.platform_provided_id,
            sku: seed.sku,
            barcode: seed.barcode,
            display_name: None,
            is_in_stock: None,
            available_to_purchase: None,
        };
        upsert_variant(stock, &product_id, input, chrono::Utc::now())
            .unwrap_or_else(|e| panic!("seeding a variant failed: {e}"))
    }

    /// Set the variant-level flags (as `ProductVariantInput.isInStock` / `availableToPurchase`
    /// would). Panics on an unknown catalogue variant.
    pub fn set_variant_flags(&self, variant: &str, is_in_stock: bool, available_to_purchase: bool) {
        let mut st = self.inner.lock();
        let stock = &mut st.store.stock;
        let id = stock
            .resolve_variant(variant)
            .unwrap_or_else(|| panic!("simulated Cloudshelf has no variant {variant}"));
        let extra = stock
            .catalogue
            .extras
            .get_mut(&id)
            .unwrap_or_else(|| panic!("variant {variant} belongs to no product"));
        extra.is_in_stock = is_in_stock;
        extra.available_to_purchase = available_to_purchase;
    }

    /// Every product, by Cloudshelf gid.
    pub fn products(&self) -> Vec<ProductSnapshot> {
        let st = self.inner.lock();
        st.store
            .stock
            .catalogue
            .products
            .values()
            .map(|p| ProductSnapshot {
                id: p.id.clone(),
                platform_provided_id: p.platform_provided_id.clone(),
                display_name: p.display_name.clone(),
                handle: p.handle.clone(),
                variant_ids: p.variant_ids.clone(),
            })
            .collect()
    }

    /// A product by Cloudshelf or external gid.
    pub fn product(&self, id: &str) -> Option<ProductSnapshot> {
        let found = {
            let st = self.inner.lock();
            resolve_product(&st.store.stock, id)
        }?;
        self.products().into_iter().find(|p| p.id == found)
    }

    /// A variant by Cloudshelf or external gid.
    pub fn product_variant(&self, id: &str) -> Option<CatalogueVariantSnapshot> {
        let st = self.inner.lock();
        let stock = &st.store.stock;
        let id = stock.resolve_variant(id)?;
        let base = &stock.variants[&id];
        let extra = stock.catalogue.extras.get(&id);
        Some(CatalogueVariantSnapshot {
            platform_provided_id: base.platform_provided_id.clone(),
            product_id: extra.map(|e| e.product_id.clone()),
            sku: base.sku.clone(),
            barcode: base.barcode.clone(),
            display_name: extra.and_then(|e| e.display_name.clone()),
            is_in_stock: variant_in_stock(stock, &id),
            available_to_purchase: extra.is_some_and(|e| e.available_to_purchase),
            id,
        })
    }

    /// `ProductInput`s and `ProductVariantInput`s applied so far (rejected ones not counted).
    pub fn catalogue_upsert_counts(&self) -> (u64, u64) {
        let st = self.inner.lock();
        let c = &st.store.stock.catalogue;
        (c.product_upserts, c.variant_upserts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_follow_the_schema_description() {
        assert_eq!(handle_of("Linen Shirt – Blue!"), "linen-shirt-blue");
        assert_eq!(handle_of("  A  b "), "a-b");
    }
}
