//! The slice of Centra's Integration API schema the simulator executes: root fields, their arguments and
//! input objects, turned into typed calls. Requests reach this module after validation against the served
//! SDL ([`crate::schema`]), so what is refused here is schema-valid but not modelled by the simulator
//! (category `simulator`), plus a few value checks Centra makes itself.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::graphql::{GraphqlError, Location, OperationKind, SelectedField};

/// How a `ProductSizeInput` names a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SizeRef {
    Id(u64),
    Sku(String),
    Ean(String),
    Upc(String),
    Any(String),
}

impl std::fmt::Display for SizeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeRef::Id(id) => write!(f, "id {id}"),
            SizeRef::Sku(s) => write!(f, "SKU \"{s}\""),
            SizeRef::Ean(s) => write!(f, "EAN \"{s}\""),
            SizeRef::Upc(s) => write!(f, "UPC \"{s}\""),
            SizeRef::Any(s) => write!(f, "\"{s}\""),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SizeLine {
    pub size: SizeRef,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct ChangeStockInput {
    pub out_from: Option<u64>,
    pub into: Option<u64>,
    pub description: String,
    pub product_sizes: Vec<SizeLine>,
    pub has_product_variants: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SetStockInput {
    pub warehouse: u64,
    pub description: String,
    pub stock_quantity_type: String,
    pub product_sizes: Vec<SizeLine>,
    pub has_product_variants: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortDir {
    Asc,
    Desc,
}

/// `StockChangeFilter` as far as it is simulated.
#[derive(Debug, Clone, Default)]
pub(crate) struct StockChangeFilter {
    pub ids: Option<Vec<u64>>,
    pub comment: Option<StringMatch>,
    pub warehouse_ids: Option<Vec<u64>>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// Arguments of `stockChangeConnection`.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionArgs {
    pub first: Option<i64>,
    pub after: Option<String>,
    pub last: Option<i64>,
    pub before: Option<String>,
    pub sort: SortDir,
    pub filter: StockChangeFilter,
}

/// Arguments of `Warehouse.stockChanges(where:, sort:, limit:, page:)`.
#[derive(Debug, Clone)]
pub(crate) struct StockChangesArgs {
    pub filter: StockChangeFilter,
    pub sort: SortDir,
    pub page: PageArgs,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PageArgs {
    pub limit: Option<i64>,
    pub page: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StringMatch {
    pub equals: Option<String>,
    pub contains: Option<String>,
}

impl StringMatch {
    pub fn matches(&self, v: Option<&str>) -> bool {
        let Some(v) = v else {
            return self.equals.is_none() && self.contains.is_none();
        };
        self.equals.as_deref().is_none_or(|e| e == v)
            && self.contains.as_deref().is_none_or(|c| v.contains(c))
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ProductSizeFilter {
    pub ids: Option<Vec<u64>>,
    pub sku: Option<StringMatch>,
    pub ean: Option<StringMatch>,
    pub upc: Option<StringMatch>,
    pub is_active: Option<bool>,
}

/// `OrderFilter` of `orders(where:)`. `createdAt: DateRange {from, to}` field names and the meaning of
/// `search` are UNVERIFIED (no public page defines them: `DateRange`, `OrderFilter` in
/// `schema/centra/integration-subset.graphql`).
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderFilter {
    pub numbers: Option<Vec<u64>>,
    pub store_ids: Option<Vec<u64>>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub search: Option<String>,
}

/// A root field, checked and ready to run.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    ChangeStock(ChangeStockInput),
    SetStock(SetStockInput),
    StockChangeConnection(ConnectionArgs),
    Warehouses {
        ids: Option<Vec<u64>>,
        name: Option<StringMatch>,
        page: PageArgs,
    },
    ProductSizes {
        filter: ProductSizeFilter,
        page: PageArgs,
    },
    /// The catalogue read (`products`), see [`super::catalogue`].
    Products(super::catalogue::ProductsArgs),
    /// `rateLimits(where: {type, intervalSeconds})`: the wanted names, `None` for all.
    RateLimits {
        types: Option<Vec<String>>,
        intervals: Option<Vec<String>>,
    },
    Orders {
        filter: OrderFilter,
        page: PageArgs,
    },
    Shipments {
        ids: Option<Vec<u64>>,
        page: PageArgs,
    },
    Returns {
        ids: Option<Vec<u64>>,
        page: PageArgs,
    },
}

impl Call {
    pub fn is_mutation(&self) -> bool {
        matches!(self, Call::ChangeStock(_) | Call::SetStock(_))
    }
}

/// Check one root field against the schema slice.
pub(crate) fn plan(kind: OperationKind, field: &SelectedField) -> Result<Call, Vec<GraphqlError>> {
    let mut c = Check::new(field.location);
    let call = match (kind, field.name.as_str()) {
        (OperationKind::Mutation, "changeStock") => {
            c.args(field, "Mutation", &[("input", Some("StockChangeInput!"))]);
            field
                .arg("input")
                .and_then(|v| change_stock_input(&mut c, v))
                .map(Call::ChangeStock)
        }
        (OperationKind::Mutation, "setStock") => {
            c.args(field, "Mutation", &[("input", Some("StockSetInput!"))]);
            field
                .arg("input")
                .and_then(|v| set_stock_input(&mut c, v))
                .map(Call::SetStock)
        }
        (OperationKind::Query, "stockChangeConnection") => {
            plan_stock_change_connection(&mut c, field)
        }
        (OperationKind::Query, "warehouses") => plan_warehouses(&mut c, field),
        (OperationKind::Query, "productSizes") => plan_product_sizes(&mut c, field),
        (OperationKind::Query, "products") => {
            return super::catalogue::plan_products(field).map(Call::Products)
        }
        (OperationKind::Query, "rateLimits") => plan_rate_limits(&mut c, field),
        (OperationKind::Query, "orders") => plan_orders(&mut c, field),
        // `where: {id: [Int!]}` of shipments and returns: filter shape UNVERIFIED.
        (OperationKind::Query, name @ ("shipments" | "returns")) => {
            plan_shipments_or_returns(&mut c, field, name)
        }
        _ => {
            c.unsupported(format_args!(
                "the root field \"{}.{}\"",
                kind.type_name(),
                field.name
            ));
            None
        }
    };
    match call {
        Some(call) if c.errors.is_empty() => Ok(call),
        _ => Err(c.errors),
    }
}

/// `Query.stockChangeConnection`: cursor paging, sort and filter.
fn plan_stock_change_connection(c: &mut Check, field: &SelectedField) -> Option<Call> {
    c.args(
        field,
        "Query",
        &[
            ("first", None),
            ("after", None),
            ("last", None),
            ("before", None),
            ("sort", None),
            ("where", None),
        ],
    );
    Some(Call::StockChangeConnection(connection_args(c, field)))
}

/// `Query.warehouses(where:, sort:, limit:, page:)`.
fn plan_warehouses(c: &mut Check, field: &SelectedField) -> Option<Call> {
    c.args(
        field,
        "Query",
        &[
            ("where", None),
            ("sort", None),
            ("limit", None),
            ("page", None),
        ],
    );
    let filter = field
        .arg("where")
        .and_then(|w| c.object(w, "WarehouseFilter", &[("id", false), ("name", false)]));
    let ids = filter
        .and_then(|w| present(w, "id"))
        .map(|v| c.id_list(v, "WarehouseFilter.id"));
    let name = filter
        .and_then(|w| present(w, "name"))
        .and_then(|v| string_match(c, v));
    // WarehouseSort has only id_ASC, the simulator's order anyway.
    let page = page_args(c, field);
    Some(Call::Warehouses { ids, name, page })
}

/// `Query.productSizes(where:, limit:, page:)`.
fn plan_product_sizes(c: &mut Check, field: &SelectedField) -> Option<Call> {
    c.args(
        field,
        "Query",
        &[("where", None), ("limit", None), ("page", None)],
    );
    let filter = field
        .arg("where")
        .map(|w| product_size_filter(c, w))
        .unwrap_or_default();
    let page = page_args(c, field);
    Some(Call::ProductSizes { filter, page })
}

/// `Query.rateLimits(where:)`.
fn plan_rate_limits(c: &mut Check, field: &SelectedField) -> Option<Call> {
    c.args(field, "Query", &[("where", None)]);
    let filter = field.arg("where").and_then(|w| {
        c.object(
            w,
            "RateLimitFilter",
            &[("type", false), ("intervalSeconds", false)],
        )
    });
    let names = |key: &str| {
        filter.and_then(|f| present(f, key)).map(|v| match v {
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            single => single.as_str().map(str::to_string).into_iter().collect(),
        })
    };
    Some(Call::RateLimits {
        types: names("type"),
        intervals: names("intervalSeconds"),
    })
}

/// `Query.orders(where:, limit:, page:)`.
fn plan_orders(c: &mut Check, field: &SelectedField) -> Option<Call> {
    c.args(
        field,
        "Query",
        &[("where", None), ("limit", None), ("page", None)],
    );
    let filter = field
        .arg("where")
        .map(|w| order_filter(c, w))
        .unwrap_or_default();
    let page = page_args(c, field);
    Some(Call::Orders { filter, page })
}

/// `Query.shipments` / `Query.returns` (`name`), `where: {id: [Int!]}`.
fn plan_shipments_or_returns(c: &mut Check, field: &SelectedField, name: &str) -> Option<Call> {
    c.args(
        field,
        "Query",
        &[("where", None), ("limit", None), ("page", None)],
    );
    let type_name = if name == "shipments" {
        "ShipmentFilter"
    } else {
        "ReturnFilter"
    };
    let ids = field
        .arg("where")
        .and_then(|w| c.object(w, type_name, &[("id", false)]))
        .and_then(|w| present(w, "id"))
        .map(|v| c.id_list(v, &format!("{type_name}.id")));
    let page = page_args(c, field);
    Some(if name == "shipments" {
        Call::Shipments { ids, page }
    } else {
        Call::Returns { ids, page }
    })
}

fn change_stock_input(c: &mut Check, v: &Value) -> Option<ChangeStockInput> {
    let o = c.object(
        v,
        "StockChangeInput",
        &[
            ("outFromWarehouse", false),
            ("intoWarehouse", false),
            ("description", true),
            ("productSizes", false),
            ("productVariants", false),
        ],
    )?;
    let out_from = present(o, "outFromWarehouse").and_then(|w| warehouse_input(c, w));
    let into = present(o, "intoWarehouse").and_then(|w| warehouse_input(c, w));
    let description =
        present(o, "description").and_then(|d| c.string(d, "StockChangeInput.description"));
    let product_sizes = match present(o, "productSizes") {
        // Quantity field name UNVERIFIED (`StockChangeProductSizeInput` in the Centra schema file).
        Some(list) => size_lines(c, list, "StockChangeProductSizeInput", "deliveredQuantity"),
        None => Vec::new(),
    };
    if !c.errors.is_empty() {
        return None;
    }
    Some(ChangeStockInput {
        out_from,
        into,
        description: description?,
        product_sizes,
        has_product_variants: present(o, "productVariants").is_some(),
    })
}

fn set_stock_input(c: &mut Check, v: &Value) -> Option<SetStockInput> {
    let o = c.object(
        v,
        "StockSetInput",
        &[
            ("warehouse", true),
            ("description", true),
            ("stockQuantityType", true),
            ("productSizes", false),
            ("productVariants", false),
        ],
    )?;
    let warehouse = present(o, "warehouse").and_then(|w| warehouse_input(c, w));
    let description =
        present(o, "description").and_then(|d| c.string(d, "StockSetInput.description"));
    let stock_quantity_type =
        present(o, "stockQuantityType").and_then(|t| c.enum_value(t, "StockQuantityType"));
    let product_sizes = match present(o, "productSizes") {
        Some(list) => size_lines(c, list, "StockSetProductSizeInput", "quantity"),
        None => Vec::new(),
    };
    if !c.errors.is_empty() {
        return None;
    }
    Some(SetStockInput {
        warehouse: warehouse?,
        description: description?,
        stock_quantity_type: stock_quantity_type?,
        product_sizes,
        has_product_variants: present(o, "productVariants").is_some(),
    })
}

fn warehouse_input(c: &mut Check, v: &Value) -> Option<u64> {
    let o = c.object(v, "WarehouseInput", &[("id", true)])?;
    present(o, "id").and_then(|id| c.id(id, "WarehouseInput.id"))
}

/// `productSizes: [{ productSize: ProductSizeInput!, <qty_field>: Int!, unitCost }]`.
fn size_lines(c: &mut Check, list: &Value, type_name: &str, qty_field: &str) -> Vec<SizeLine> {
    let Some(items) = c.list(list, type_name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        // unitCost's own type is not modelled; any value is accepted.
        let Some(o) = c.object(
            item,
            type_name,
            &[
                ("productSize", true),
                (qty_field, true),
                ("unitCost", false),
            ],
        ) else {
            continue;
        };
        let size = present(o, "productSize").and_then(|p| size_ref(c, p));
        let quantity =
            present(o, qty_field).and_then(|q| c.int(q, &format!("{type_name}.{qty_field}")));
        if let (Some(size), Some(quantity)) = (size, quantity) {
            out.push(SizeLine { size, quantity });
        }
    }
    out
}

fn size_ref(c: &mut Check, v: &Value) -> Option<SizeRef> {
    let o = c.object(
        v,
        "ProductSizeInput",
        &[
            ("id", false),
            ("SKU", false),
            ("EAN", false),
            ("UPC", false),
            ("any", false),
        ],
    )?;
    let given: Vec<(&String, &Value)> = o.iter().filter(|(_, v)| !v.is_null()).collect();
    if given.len() != 1 {
        c.err("OneOf Input Object \"ProductSizeInput\" must specify exactly one key.");
        return None;
    }
    let (key, value) = given[0];
    let what = format!("ProductSizeInput.{key}");
    match key.as_str() {
        "id" => c.id(value, &what).map(SizeRef::Id),
        "SKU" => c.string(value, &what).map(SizeRef::Sku),
        "EAN" => c.string(value, &what).map(SizeRef::Ean),
        "UPC" => c.string(value, &what).map(SizeRef::Upc),
        _ => c.string(value, &what).map(SizeRef::Any),
    }
}

fn connection_args(c: &mut Check, field: &SelectedField) -> ConnectionArgs {
    let int = |c: &mut Check, name: &str| field.arg(name).and_then(|v| c.int(v, name));
    let string = |c: &mut Check, name: &str| field.arg(name).and_then(|v| c.string(v, name));
    ConnectionArgs {
        first: int(c, "first"),
        after: string(c, "after"),
        last: int(c, "last"),
        before: string(c, "before"),
        // Without `sort`, oldest first (UNVERIFIED): the only public example asks for `last: 10` to get
        // the newest, which reads as an ascending default.
        sort: field
            .arg("sort")
            .map_or(SortDir::Asc, |v| stock_change_sort(c, v)),
        filter: field
            .arg("where")
            .map(|w| stock_change_filter(c, w))
            .unwrap_or_default(),
    }
}

fn stock_change_sort(c: &mut Check, v: &Value) -> SortDir {
    let values: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut sort = SortDir::Desc;
    for v in values {
        match c.enum_value(v, "StockChangeSort").as_deref() {
            Some("id_ASC") => sort = SortDir::Asc,
            Some(_) | None => sort = SortDir::Desc,
        }
    }
    sort
}

/// `StockChangeFilter`: `id`, `comment`, `warehouseId` and `createdAt` are simulated.
pub(crate) fn stock_change_filter(c: &mut Check, v: &Value) -> StockChangeFilter {
    let Some(o) = c.object(
        v,
        "StockChangeFilter",
        &[
            ("id", false),
            ("comment", false),
            ("warehouseId", false),
            ("createdAt", false),
        ],
    ) else {
        return StockChangeFilter::default();
    };
    let (created_from, created_to) = present(o, "createdAt")
        .map(|r| date_range(c, r))
        .unwrap_or_default();
    StockChangeFilter {
        ids: present(o, "id").map(|v| c.id_list(v, "StockChangeFilter.id")),
        comment: present(o, "comment").and_then(|v| string_match(c, v)),
        warehouse_ids: present(o, "warehouseId")
            .map(|v| c.id_list(v, "StockChangeFilter.warehouseId")),
        created_from,
        created_to,
    }
}

/// `DateRange { from, to }`: ISO-8601 or Centra's "YYYY-MM-DD HH:MM:SS".
fn date_range(c: &mut Check, v: &Value) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let Some(range) = c.object(v, "DateRange", &[("from", false), ("to", false)]) else {
        return (None, None);
    };
    let date = |c: &mut Check, key: &str| {
        let raw = c.string(present(range, key)?, &format!("DateRange.{key}"))?;
        let parsed = super::orders::parse_date(&raw);
        if parsed.is_none() {
            c.err(format!(
                "DateRange.{key}: \"{raw}\" is not an ISO-8601 date-time"
            ));
        }
        parsed
    };
    (date(c, "from"), date(c, "to"))
}

fn string_match(c: &mut Check, v: &Value) -> Option<StringMatch> {
    let m = c.object(v, "StringMatch", &[("equals", false), ("contains", false)])?;
    Some(StringMatch {
        equals: present(m, "equals").and_then(|s| c.string(s, "StringMatch.equals")),
        contains: present(m, "contains").and_then(|s| c.string(s, "StringMatch.contains")),
    })
}

fn page_args(c: &mut Check, field: &SelectedField) -> PageArgs {
    PageArgs {
        limit: field.arg("limit").and_then(|v| c.int(v, "limit")),
        page: field.arg("page").and_then(|v| c.int(v, "page")),
    }
}

/// Check the arguments of a nested list field taking `limit`/`page` (`Warehouse.stock`,
/// `ProductSize.stock`, `StockChange.lines`); its `where`/`sort` are not simulated.
pub(crate) fn nested_page_args(
    field: &SelectedField,
    parent_type: &str,
) -> Result<PageArgs, GraphqlError> {
    let mut c = Check::new(field.location);
    c.args(field, parent_type, &[("limit", None), ("page", None)]);
    let page = page_args(&mut c, field);
    c.into_result(page)
}

/// `Warehouse.stockChanges(where:, sort: [id_DESC], limit: 20, page: 1)`.
pub(crate) fn stock_changes_args(field: &SelectedField) -> Result<StockChangesArgs, GraphqlError> {
    let mut c = Check::new(field.location);
    c.args(
        field,
        "Warehouse",
        &[
            ("where", None),
            ("sort", None),
            ("limit", None),
            ("page", None),
        ],
    );
    let args = StockChangesArgs {
        filter: field
            .arg("where")
            .map(|w| stock_change_filter(&mut c, w))
            .unwrap_or_default(),
        sort: field
            .arg("sort")
            .map_or(SortDir::Desc, |v| stock_change_sort(&mut c, v)),
        page: page_args(&mut c, field),
    };
    c.into_result(args)
}

fn product_size_filter(c: &mut Check, v: &Value) -> ProductSizeFilter {
    let Some(o) = c.object(
        v,
        "ProductSizeFilter",
        &[
            ("id", false),
            ("SKU", false),
            ("EAN", false),
            ("UPC", false),
            ("isActive", false),
        ],
    ) else {
        return ProductSizeFilter::default();
    };
    let by = |c: &mut Check, key: &str| present(o, key).and_then(|v| string_match(c, v));
    ProductSizeFilter {
        sku: by(c, "SKU"),
        ean: by(c, "EAN"),
        upc: by(c, "UPC"),
        ids: present(o, "id").map(|v| c.id_list(v, "ProductSizeFilter.id")),
        is_active: present(o, "isActive").and_then(|v| {
            let b = v.as_bool();
            if b.is_none() {
                c.err(format!("Boolean cannot represent a non boolean value: {v}"));
            }
            b
        }),
    }
}

fn order_filter(c: &mut Check, v: &Value) -> OrderFilter {
    let Some(o) = c.object(
        v,
        "OrderFilter",
        &[
            ("number", false),
            ("storeId", false),
            ("createdAt", false),
            ("search", false),
        ],
    ) else {
        return OrderFilter::default();
    };
    let mut filter = OrderFilter {
        numbers: present(o, "number").map(|v| c.id_list(v, "OrderFilter.number")),
        store_ids: present(o, "storeId").map(|v| c.id_list(v, "OrderFilter.storeId")),
        search: present(o, "search").and_then(|v| c.string(v, "OrderFilter.search")),
        ..OrderFilter::default()
    };
    if let Some(range) = present(o, "createdAt") {
        (filter.created_from, filter.created_to) = date_range(c, range);
    }
    filter
}

fn present<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// Collects errors, all located at the field being planned.
pub(crate) struct Check {
    errors: Vec<GraphqlError>,
    location: Location,
}

impl Check {
    fn new(location: Location) -> Self {
        Check {
            errors: Vec::new(),
            location,
        }
    }

    fn err(&mut self, message: impl Into<String>) {
        self.errors
            .push(GraphqlError::new(message).at(self.location));
    }

    fn unsupported(&mut self, what: impl std::fmt::Display) {
        self.errors
            .push(GraphqlError::not_simulated(what).at(self.location));
    }

    fn into_result<T>(self, value: T) -> Result<T, GraphqlError> {
        match self.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    /// `allowed` is `(name, type if required)`.
    fn args(&mut self, field: &SelectedField, parent: &str, allowed: &[(&str, Option<&str>)]) {
        for name in field.args.keys() {
            if !allowed.iter().any(|(a, _)| a == name) && field.arg(name).is_some() {
                self.unsupported(format_args!(
                    "the argument \"{name}\" of \"{parent}.{}\"",
                    field.name
                ));
            }
        }
        for (name, required) in allowed {
            if let (Some(ty), None) = (required, field.arg(name)) {
                self.err(format!(
                    "Field \"{}\" argument \"{name}\" of type \"{ty}\" is required but not provided.",
                    field.name
                ));
            }
        }
    }

    /// `fields` is `(name, required)`.
    fn object<'v>(
        &mut self,
        v: &'v Value,
        type_name: &str,
        fields: &[(&str, bool)],
    ) -> Option<&'v Map<String, Value>> {
        let Some(o) = v.as_object() else {
            self.err(format!(
                "Expected type \"{type_name}\" to be an object, got {v}."
            ));
            return None;
        };
        let before = self.errors.len();
        for (key, value) in o {
            if !fields.iter().any(|(f, _)| f == key) && !value.is_null() {
                self.unsupported(format_args!("the input field \"{type_name}.{key}\""));
            }
        }
        for (name, required) in fields {
            if *required && present(o, name).is_none() {
                self.err(format!(
                    "Field \"{type_name}.{name}\" of required type was not provided."
                ));
            }
        }
        (self.errors.len() == before).then_some(o)
    }

    fn int(&mut self, v: &Value, what: &str) -> Option<i64> {
        let n = v.as_i64().filter(|n| i32::try_from(*n).is_ok());
        if n.is_none() {
            self.err(format!(
                "{what}: Int cannot represent non-integer or out-of-range value: {v}"
            ));
        }
        n
    }

    fn id(&mut self, v: &Value, what: &str) -> Option<u64> {
        let n = v.as_u64().filter(|n| u32::try_from(*n).is_ok());
        if n.is_none() {
            self.err(format!("{what}: expected a non-negative Int id, got {v}"));
        }
        n
    }

    fn string(&mut self, v: &Value, what: &str) -> Option<String> {
        let s = v.as_str().map(str::to_string);
        if s.is_none() {
            self.err(format!(
                "{what}: String cannot represent a non string value: {v}"
            ));
        }
        s
    }

    fn enum_value(&mut self, v: &Value, enum_name: &str) -> Option<String> {
        let s = v.as_str().map(str::to_string);
        if s.is_none() {
            self.err(format!(
                "Enum \"{enum_name}\" cannot represent non-enum value: {v}"
            ));
        }
        s
    }

    fn list<'v>(&mut self, v: &'v Value, item_type: &str) -> Option<Vec<&'v Value>> {
        match v {
            Value::Array(items) => Some(items.iter().collect()),
            Value::Null => None,
            // GraphQL input coercion turns a single value into a one-item list.
            single if single.is_object() => Some(vec![single]),
            other => {
                self.err(format!("Expected a list of \"{item_type}\", got {other}."));
                None
            }
        }
    }

    fn id_list(&mut self, v: &Value, what: &str) -> Vec<u64> {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        items.into_iter().filter_map(|i| self.id(i, what)).collect()
    }
}
