//! The simulated Centra data (warehouses, sizes, stock, stock-change audit trail), the resolvers that
//! read and write it, and the ways Centra answers awkward stock mutations (duplicate and unknown sizes,
//! sizes it refuses, the shape of `path` in user errors), each switchable by tests.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::schema::{
    nested_page_args, stock_changes_args, ChangeStockInput, ConnectionArgs, PageArgs,
    ProductSizeFilter, SetStockInput, SizeLine, SizeRef, SortDir, StockChangeFilter, StringMatch,
};
use crate::graphql::{GraphqlError, SelectedField};

/// Stock of one size in one warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StockLevel {
    pub physical: i64,
    pub allocated: i64,
    pub free_to_allocate: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockChangeKind {
    /// `changeStock`: removed from `warehouse_id` (`outFromWarehouse`), or added to it (`intoWarehouse`
    /// only), or moved from it to `into_warehouse_id` (both).
    Change,
    /// `setStock`: absolute physical quantities set in `warehouse_id`.
    Set,
    /// Seeded by a test ([`super::CentraSim::add_unrelated_stock_changes`]): someone else's change, with
    /// no lines and no effect on stock.
    Unrelated,
}

/// One line of a stock change (Centra's `StockChangeLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChangeLineRecord {
    pub id: u64,
    pub size_id: u64,
    pub sku: String,
    /// `changeStock`: the quantity as sent (positive, whatever the direction). `setStock`: new − old
    /// physical quantity (0 included).
    pub delivered_quantity: i64,
}

/// One entry of the stock-change audit trail (Centra's `StockChange`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChangeRecord {
    pub id: u64,
    /// The mutation input's `description`, which Centra keeps as the change's `comment`.
    pub comment: String,
    pub created_at: DateTime<Utc>,
    /// The change's warehouse: `outFromWarehouse` if given, else `intoWarehouse`, or `setStock`'s.
    pub warehouse_id: u64,
    /// `changeStock` only: the input's `outFromWarehouse` and `intoWarehouse` (both for a transfer).
    pub out_from_warehouse_id: Option<u64>,
    pub into_warehouse_id: Option<u64>,
    pub kind: StockChangeKind,
    pub lines: Vec<StockChangeLineRecord>,
}

/// What to do with a size named twice in one mutation (by SKU twice, or by SKU and by EAN: any two
/// names of the same size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateSizes {
    /// Apply the first line; skip every later one with a `userWarnings` entry naming it.
    #[default]
    SkipLater,
    /// Add the quantities up into the first line.
    Sum,
}

/// What to do with a line whose size Centra does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSizes {
    /// Refuse the whole mutation with a `userErrors` entry naming the line; apply nothing.
    #[default]
    RefuseMutation,
    /// Skip the line with a `userWarnings` entry naming it; apply the rest.
    SkipLine,
}

/// How `path` of `userErrors`/`userWarnings` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathStyle {
    /// `["input", "productSizes", 18, "productSize"]`.
    #[default]
    Numbers,
    /// `["input", "productSizes", "18", "productSize"]` (the SDL types path as `[String!]`).
    Strings,
    /// `path: null`.
    Null,
}

/// How a refused size is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// A `userErrors` entry: the whole mutation is refused.
    Error,
    /// A `userWarnings` entry: the line is skipped, the rest applied.
    Warning,
}

/// A known size that Centra refuses on demand (e.g. a bundle, or a size locked by another process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeRefusal {
    pub kind: RefusalKind,
    pub message: String,
}

/// The switchable answers to awkward stock mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CentraBehaviour {
    pub duplicate_sizes: DuplicateSizes,
    pub unknown_sizes: UnknownSizes,
    pub path_style: PathStyle,
}

#[derive(Debug, Clone)]
pub(crate) struct Size {
    pub id: u64,
    pub sku: String,
    pub ean: Option<String>,
    pub upc: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Level {
    physical: i64,
    allocated: i64,
}

/// Default page size of `limit`/`page` lists and `first` of connections when the client
/// sends none (Centra's default is not documented; a small one surfaces missing paging).
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default)]
pub(crate) struct Store {
    warehouses: BTreeMap<u64, String>,
    sizes: BTreeMap<u64, Size>,
    next_size_id: u64,
    stock: BTreeMap<(u64, u64), Level>,
    /// Ascending by id.
    changes: Vec<StockChangeRecord>,
    next_line_id: u64,
    pub behaviour: CentraBehaviour,
    /// By SKU.
    pub refusals: HashMap<String, SizeRefusal>,
}

/// What a mutation resolver produced.
pub(crate) struct MutationOutcome {
    pub payload: Value,
    pub applied: bool,
}

/// User errors and warnings with their paths, rendered in the configured [`PathStyle`].
struct Issues {
    errors: Vec<(String, Vec<Value>)>,
    warnings: Vec<(String, Vec<Value>)>,
}

impl Issues {
    fn new() -> Self {
        Issues {
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&mut self, message: String, path: Vec<Value>) {
        self.errors.push((message, path));
    }

    fn warning(&mut self, message: String, path: Vec<Value>) {
        self.warnings.push((message, path));
    }

    fn render(list: Vec<(String, Vec<Value>)>, type_name: &str, style: PathStyle) -> Vec<Value> {
        list.into_iter()
            .map(|(message, path)| {
                let path = match style {
                    PathStyle::Numbers => Value::Array(path),
                    PathStyle::Strings => Value::Array(
                        path.into_iter()
                            .map(|p| match p {
                                Value::Number(n) => Value::String(n.to_string()),
                                other => other,
                            })
                            .collect(),
                    ),
                    PathStyle::Null => Value::Null,
                };
                json!({"__typename": type_name, "message": message, "path": path})
            })
            .collect()
    }
}

/// A line that survived resolution: the size it names and the quantity to apply.
struct Resolved {
    index: usize,
    size_id: u64,
    sku: String,
    quantity: i64,
}

/// `input.productSizes[i].<field>`, where an issue with one line points.
fn line_path(i: usize, field: &str) -> Vec<Value> {
    vec![
        json!("input"),
        json!("productSizes"),
        json!(i),
        json!(field),
    ]
}

impl Store {
    pub fn add_warehouse(&mut self, id: u64, name: &str) {
        self.warehouses.insert(id, name.to_string());
    }

    pub fn has_warehouse(&self, id: u64) -> bool {
        self.warehouses.contains_key(&id)
    }

    pub fn add_size(
        &mut self,
        sku: &str,
        ean: Option<&str>,
        upc: Option<&str>,
        active: bool,
    ) -> u64 {
        assert!(
            self.size_by_sku(sku).is_none(),
            "simulated Centra already has a size with SKU {sku:?}"
        );
        self.next_size_id += 1;
        let id = self.next_size_id;
        self.sizes.insert(
            id,
            Size {
                id,
                sku: sku.to_string(),
                ean: ean.map(str::to_string),
                upc: upc.map(str::to_string),
                active,
            },
        );
        id
    }

    pub fn size_by_sku(&self, sku: &str) -> Option<&Size> {
        self.sizes.values().find(|s| s.sku == sku)
    }

    fn seed_key(&self, warehouse_id: u64, sku: &str) -> (u64, u64) {
        assert!(
            self.warehouses.contains_key(&warehouse_id),
            "simulated Centra has no warehouse {warehouse_id}"
        );
        let size = self
            .size_by_sku(sku)
            .unwrap_or_else(|| panic!("simulated Centra has no size with SKU {sku:?}"));
        (warehouse_id, size.id)
    }

    pub fn set_physical(&mut self, warehouse_id: u64, sku: &str, qty: i64) {
        let key = self.seed_key(warehouse_id, sku);
        self.stock.entry(key).or_default().physical = qty;
    }

    pub fn set_allocated(&mut self, warehouse_id: u64, sku: &str, qty: i64) {
        let key = self.seed_key(warehouse_id, sku);
        self.stock.entry(key).or_default().allocated = qty;
    }

    pub fn stock(&self, warehouse_id: u64, sku: &str) -> Option<StockLevel> {
        if !self.warehouses.contains_key(&warehouse_id) {
            return None;
        }
        let size = self.size_by_sku(sku)?;
        Some(self.level(warehouse_id, size.id).into())
    }

    /// Every warehouse × size, zeros included: `(warehouse id, size id, SKU, level)`.
    pub fn stock_table(&self) -> Vec<(u64, u64, String, StockLevel)> {
        let mut out = Vec::with_capacity(self.warehouses.len() * self.sizes.len());
        for wh in self.warehouses.keys() {
            for size in self.sizes.values() {
                out.push((
                    *wh,
                    size.id,
                    size.sku.clone(),
                    self.level(*wh, size.id).into(),
                ));
            }
        }
        out
    }

    pub fn stock_changes(&self) -> Vec<StockChangeRecord> {
        self.changes.clone()
    }

    pub(crate) fn find_size(&self, r: &SizeRef) -> Option<&Size> {
        let eq = |field: &Option<String>, v: &str| field.as_deref() == Some(v);
        match r {
            SizeRef::Id(id) => self.sizes.get(id),
            _ => self.sizes.values().find(|s| match r {
                SizeRef::Sku(v) => s.sku == *v,
                SizeRef::Ean(v) => eq(&s.ean, v),
                SizeRef::Upc(v) => eq(&s.upc, v),
                SizeRef::Any(v) => s.sku == *v || eq(&s.ean, v) || eq(&s.upc, v),
                SizeRef::Id(_) => false,
            }),
        }
    }

    fn level(&self, warehouse_id: u64, size_id: u64) -> Level {
        self.stock
            .get(&(warehouse_id, size_id))
            .copied()
            .unwrap_or_default()
    }

    fn change_by_id(&self, id: u64) -> Option<&StockChangeRecord> {
        self.changes
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.changes[i])
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        comment: &str,
        now: DateTime<Utc>,
        warehouse_id: u64,
        out_from_warehouse_id: Option<u64>,
        into_warehouse_id: Option<u64>,
        kind: StockChangeKind,
        lines: Vec<(u64, String, i64)>,
    ) -> u64 {
        let id = self.changes.last().map_or(1, |c| c.id + 1);
        let lines = lines
            .into_iter()
            .map(|(size_id, sku, delivered_quantity)| {
                self.next_line_id += 1;
                StockChangeLineRecord {
                    id: self.next_line_id,
                    size_id,
                    sku,
                    delivered_quantity,
                }
            })
            .collect();
        self.changes.push(StockChangeRecord {
            id,
            comment: comment.to_string(),
            created_at: now,
            warehouse_id,
            out_from_warehouse_id,
            into_warehouse_id,
            kind,
            lines,
        });
        id
    }

    /// `count` changes by someone else in `warehouse_id` (a busy environment's audit trail): other
    /// comments, no lines, no effect on stock. Returns their ids.
    pub fn add_unrelated_stock_changes(
        &mut self,
        warehouse_id: u64,
        count: usize,
        now: DateTime<Utc>,
    ) -> Vec<u64> {
        (0..count)
            .map(|i| {
                let comment = format!("Stock adjustment by another integration #{}", i + 1);
                self.record(
                    &comment,
                    now,
                    warehouse_id,
                    None,
                    None,
                    StockChangeKind::Unrelated,
                    Vec::new(),
                )
            })
            .collect()
    }

    /// Resolve every line to a size, applying the configured answers to unknown, refused and
    /// duplicate sizes; `qty_ok` checks quantities.
    fn resolve_lines(
        &self,
        lines: &[SizeLine],
        qty_field: &str,
        qty_ok: impl Fn(i64) -> Option<&'static str>,
        issues: &mut Issues,
    ) -> Vec<Resolved> {
        if lines.is_empty() {
            issues.error(
                "At least one product size is required".to_string(),
                vec![json!("input"), json!("productSizes")],
            );
        }
        let mut out: Vec<Resolved> = Vec::with_capacity(lines.len());
        let mut first_line_of: HashMap<u64, Option<usize>> = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let bad_qty = qty_ok(line.quantity);
            if let Some(problem) = bad_qty {
                issues.error(problem.to_string(), line_path(i, qty_field));
            }
            let Some(size) = self.find_size(&line.size) else {
                match self.behaviour.unknown_sizes {
                    UnknownSizes::RefuseMutation => issues.error(
                        format!("Product size not found: {}", line.size),
                        line_path(i, "productSize"),
                    ),
                    UnknownSizes::SkipLine => issues.warning(
                        format!("Product size not found: {}; line skipped", line.size),
                        line_path(i, "productSize"),
                    ),
                }
                continue;
            };
            if let Some(first) = first_line_of.get(&size.id) {
                match (self.behaviour.duplicate_sizes, first) {
                    (DuplicateSizes::Sum, Some(k)) => out[*k].quantity += line.quantity,
                    (DuplicateSizes::Sum, None) => {}
                    (DuplicateSizes::SkipLater, _) => issues.warning(
                        format!(
                            "Product size SKU \"{}\" is named more than once; line {i} skipped",
                            size.sku
                        ),
                        vec![json!("input"), json!("productSizes"), json!(i)],
                    ),
                }
                continue;
            }
            if let Some(refusal) = self.refusals.get(&size.sku) {
                match refusal.kind {
                    RefusalKind::Error => {
                        issues.error(refusal.message.clone(), line_path(i, "productSize"))
                    }
                    RefusalKind::Warning => {
                        issues.warning(refusal.message.clone(), line_path(i, "productSize"))
                    }
                }
                first_line_of.insert(size.id, None);
                continue;
            }
            if bad_qty.is_some() {
                first_line_of.insert(size.id, None);
                continue;
            }
            first_line_of.insert(size.id, Some(out.len()));
            out.push(Resolved {
                index: i,
                size_id: size.id,
                sku: size.sku.clone(),
                quantity: line.quantity,
            });
        }
        out
    }

    fn check_warehouse(&self, id: u64, field: &str, issues: &mut Issues) {
        if !self.warehouses.contains_key(&id) {
            issues.error(
                format!("Warehouse {id} not found"),
                vec![json!("input"), json!(field), json!("id")],
            );
        }
    }

    fn common_checks(&self, description: &str, has_product_variants: bool, issues: &mut Issues) {
        if description.trim().is_empty() {
            issues.error(
                "Description must not be empty".to_string(),
                vec![json!("input"), json!("description")],
            );
        }
        if has_product_variants {
            issues.error(
                "productVariants is not supported by this simulator; use productSizes".to_string(),
                vec![json!("input"), json!("productVariants")],
            );
        }
    }

    fn payload(&self, type_name: &str, key: &str, value: Value, issues: Issues) -> Value {
        let style = self.behaviour.path_style;
        json!({
            "__typename": type_name,
            key: value,
            "userErrors": Issues::render(issues.errors, "UserError", style),
            "userWarnings": Issues::render(issues.warnings, "UserWarning", style),
        })
    }

    /// `changeStock`: every surviving line or none.
    pub fn change_stock(
        &mut self,
        input: &ChangeStockInput,
        now: DateTime<Utc>,
    ) -> MutationOutcome {
        let mut issues = Issues::new();
        self.common_checks(&input.description, input.has_product_variants, &mut issues);
        match (input.out_from, input.into) {
            (None, None) => issues.error(
                "Either outFromWarehouse or intoWarehouse is required".to_string(),
                vec![json!("input")],
            ),
            (Some(a), Some(b)) if a == b => issues.error(
                format!("Cannot transfer stock from warehouse {a} into itself"),
                vec![json!("input"), json!("intoWarehouse"), json!("id")],
            ),
            _ => {}
        }
        if let Some(w) = input.out_from {
            self.check_warehouse(w, "outFromWarehouse", &mut issues);
        }
        if let Some(w) = input.into {
            self.check_warehouse(w, "intoWarehouse", &mut issues);
        }
        let lines = self.resolve_lines(
            &input.product_sizes,
            "deliveredQuantity",
            |q| (q <= 0).then_some("Quantity must be positive"),
            &mut issues,
        );

        // Removals cannot exceed what is free to allocate (Centra refuses the line; operating-manual.md §7.3).
        self.check_removals(input.out_from, &lines, &mut issues);

        if !issues.errors.is_empty() || lines.is_empty() {
            return MutationOutcome {
                payload: self.payload("StockChangePayload", "stockChange", Value::Null, issues),
                applied: false,
            };
        }

        let mut recorded = Vec::with_capacity(lines.len());
        for line in lines {
            if let Some(out) = input.out_from {
                self.stock.entry((out, line.size_id)).or_default().physical -= line.quantity;
            }
            if let Some(into) = input.into {
                self.stock.entry((into, line.size_id)).or_default().physical += line.quantity;
            }
            recorded.push((line.size_id, line.sku, line.quantity));
        }
        let warehouse = input.out_from.or(input.into).expect("checked above");
        let id = self.record(
            &input.description,
            now,
            warehouse,
            input.out_from,
            input.into,
            StockChangeKind::Change,
            recorded,
        );
        let change = self.change_json(self.change_by_id(id).expect("just recorded"));
        MutationOutcome {
            payload: self.payload("StockChangePayload", "stockChange", change, issues),
            applied: true,
        }
    }

    /// Each line removed from `out_from` must be free to allocate there.
    fn check_removals(&self, out_from: Option<u64>, lines: &[Resolved], issues: &mut Issues) {
        if let Some(out) = out_from.filter(|w| self.warehouses.contains_key(w)) {
            for line in lines {
                let l = self.level(out, line.size_id);
                let fta = l.physical - l.allocated;
                if line.quantity > fta {
                    issues.error(
                    format!(
                        "Cannot remove {} of SKU \"{}\": only {} free to allocate in warehouse {out}",
                        line.quantity,
                        line.sku,
                        fta.max(0)
                    ),
                    vec![
                        json!("input"),
                        json!("productSizes"),
                        json!(line.index),
                        json!("deliveredQuantity"),
                    ],
                );
                }
            }
        }
    }

    /// `setStock` with `stockQuantityType: PHYSICAL`: every surviving line or none.
    pub fn set_stock(&mut self, input: &SetStockInput, now: DateTime<Utc>) -> MutationOutcome {
        let mut issues = Issues::new();
        self.common_checks(&input.description, input.has_product_variants, &mut issues);
        match input.stock_quantity_type.as_str() {
            "PHYSICAL" => {}
            other => issues.error(
                // The FTA value's name is UNVERIFIED (not in the SDL either); not simulated.
                format!("stockQuantityType {other} is not supported; use PHYSICAL"),
                vec![json!("input"), json!("stockQuantityType")],
            ),
        }
        self.check_warehouse(input.warehouse, "warehouse", &mut issues);
        let lines = self.resolve_lines(
            &input.product_sizes,
            "quantity",
            |q| (q < 0).then_some("Quantity must not be negative"),
            &mut issues,
        );
        if !issues.errors.is_empty() || lines.is_empty() {
            return MutationOutcome {
                payload: self.payload("StockSetPayload", "stockChanges", Value::Null, issues),
                applied: false,
            };
        }

        let wh = input.warehouse;
        let mut recorded = Vec::with_capacity(lines.len());
        for line in lines {
            let level = self.stock.entry((wh, line.size_id)).or_default();
            // Centra's Order API clamps physical stock to what is allocated; assumed alike here.
            let qty = if line.quantity < level.allocated {
                issues.warning(
                    format!(
                        "Physical quantity of SKU \"{}\" raised from {} to the allocated {}",
                        line.sku, line.quantity, level.allocated
                    ),
                    vec![
                        json!("input"),
                        json!("productSizes"),
                        json!(line.index),
                        json!("quantity"),
                    ],
                );
                level.allocated
            } else {
                line.quantity
            };
            let delta = qty - level.physical;
            level.physical = qty;
            recorded.push((line.size_id, line.sku, delta));
        }
        let id = self.record(
            &input.description,
            now,
            wh,
            None,
            None,
            StockChangeKind::Set,
            recorded,
        );
        let change = self.change_json(self.change_by_id(id).expect("just recorded"));
        MutationOutcome {
            payload: self.payload(
                "StockSetPayload",
                "stockChanges",
                Value::Array(vec![change]),
                issues,
            ),
            applied: true,
        }
    }

    /// `stockChangeConnection(where, first/after, last/before, sort)` as a Relay connection: edges in the
    /// sort order, `totalCount` over the filter, page info telling whether edges exist on either side.
    pub fn stock_change_connection(&self, args: &ConnectionArgs) -> Result<Value, GraphqlError> {
        for (name, n) in [("first", args.first), ("last", args.last)] {
            if let Some(n) = n.filter(|n| !(0..=MAX_LIMIT).contains(n)) {
                return Err(GraphqlError::new(format!(
                    "Argument \"{name}\" must be between 0 and {MAX_LIMIT}, got {n}"
                )));
            }
        }
        let mut all: Vec<&StockChangeRecord> = self
            .changes
            .iter()
            .filter(|c| matches_filter(&args.filter, c))
            .collect();
        if args.sort == SortDir::Desc {
            all.reverse();
        }
        // Cursors carry the id, so pages stay stable while new changes arrive.
        let after_pos = |id: u64, c: &StockChangeRecord| match args.sort {
            SortDir::Asc => c.id > id,
            SortDir::Desc => c.id < id,
        };
        let cursor_id = |cursor: &str| {
            decode_cursor(cursor)
                .ok_or_else(|| GraphqlError::new(format!("Invalid cursor \"{cursor}\"")))
        };
        let mut lo = 0;
        let mut hi = all.len();
        if let Some(after) = &args.after {
            let id = cursor_id(after)?;
            lo = all
                .iter()
                .position(|c| after_pos(id, c))
                .unwrap_or(all.len());
        }
        if let Some(before) = &args.before {
            let id = cursor_id(before)?;
            hi = all
                .iter()
                .position(|c| c.id == id || after_pos(id, c))
                .unwrap_or(all.len());
        }
        hi = hi.max(lo);
        if args.first.is_none() && args.last.is_none() {
            hi = hi.min(lo + DEFAULT_LIMIT as usize);
        }
        if let Some(first) = args.first {
            hi = hi.min(lo + first as usize);
        }
        if let Some(last) = args.last {
            lo = lo.max(hi.saturating_sub(last as usize));
        }
        let page = &all[lo..hi];
        let edges: Vec<Value> = page
            .iter()
            .map(|c| {
                json!({
                    "__typename": "StockChangeEdge",
                    "cursor": encode_cursor(c.id),
                    "node": self.change_json(c),
                })
            })
            .collect();
        Ok(json!({
            "__typename": "StockChangeConnection",
            "totalCount": all.len(),
            "pageInfo": {
                "__typename": "PageInfo",
                "hasNextPage": hi < all.len(),
                "hasPreviousPage": lo > 0,
                "startCursor": page.first().map(|c| encode_cursor(c.id)),
                "endCursor": page.last().map(|c| encode_cursor(c.id)),
            },
            "edges": edges,
        }))
    }

    /// A `StockChange`; `createdAt` and `lines` take arguments and are resolved by [`Store::nested`].
    fn change_json(&self, c: &StockChangeRecord) -> Value {
        json!({
            "__typename": "StockChange",
            "id": c.id,
            "comment": c.comment,
            "__createdAtMs": c.created_at.timestamp_millis(),
            "warehouse": self.warehouse_json(c.warehouse_id),
        })
    }

    /// Warehouses without their `stock` (computed per selection by [`Store::nested`]).
    pub fn warehouses(
        &self,
        ids: Option<&[u64]>,
        name: Option<&StringMatch>,
        page: &PageArgs,
    ) -> Result<Value, GraphqlError> {
        let list: Vec<Value> = self
            .warehouses
            .iter()
            .filter(|(id, n)| {
                ids.is_none_or(|ids| ids.contains(id)) && name.is_none_or(|m| m.matches(Some(n)))
            })
            .map(|(id, _)| self.warehouse_json(*id))
            .collect();
        Ok(Value::Array(paginate(list, page)?))
    }

    fn warehouse_json(&self, id: u64) -> Value {
        let name = self.warehouses.get(&id).map(String::as_str).unwrap_or("");
        json!({"__typename": "Warehouse", "id": id, "name": name})
    }

    pub fn product_sizes(
        &self,
        filter: &ProductSizeFilter,
        page: &PageArgs,
    ) -> Result<Value, GraphqlError> {
        let list: Vec<Value> = self
            .sizes
            .values()
            .filter(|s| {
                filter.ids.as_ref().is_none_or(|ids| ids.contains(&s.id))
                    && filter.sku.as_ref().is_none_or(|m| m.matches(Some(&s.sku)))
                    && filter
                        .ean
                        .as_ref()
                        .is_none_or(|m| m.matches(s.ean.as_deref()))
                    && filter
                        .upc
                        .as_ref()
                        .is_none_or(|m| m.matches(s.upc.as_deref()))
                    && filter.is_active.is_none_or(|a| a == s.active)
            })
            .map(size_json)
            .collect();
        Ok(Value::Array(paginate(list, page)?))
    }

    /// Fields that take arguments below the root: `Warehouse.stock`, `ProductSize.stock`,
    /// `Warehouse.stockChanges`, `StockChange.createdAt` and `StockChange.lines`.
    pub fn nested(
        &self,
        parent: &Map<String, Value>,
        field: &SelectedField,
    ) -> Option<Result<Value, GraphqlError>> {
        let type_name = parent.get("__typename")?.as_str()?;
        match (type_name, field.name.as_str()) {
            ("Warehouse" | "ProductSize", "stock") => {
                let id = parent.get("id")?.as_u64()?;
                Some(self.stock_rows(type_name, id, field))
            }
            ("Warehouse", "stockChanges") => {
                let id = parent.get("id")?.as_u64()?;
                Some(stock_changes_args(field).and_then(|args| {
                    let mut list: Vec<&StockChangeRecord> = self
                        .changes
                        .iter()
                        .filter(|c| {
                            (c.warehouse_id == id || c.into_warehouse_id == Some(id))
                                && matches_filter(&args.filter, c)
                        })
                        .collect();
                    if args.sort == SortDir::Desc {
                        list.reverse();
                    }
                    let rows = list.into_iter().map(|c| self.change_json(c)).collect();
                    paginate(rows, &args.page).map(Value::Array)
                }))
            }
            ("StockChange", "createdAt") => {
                let ms = parent.get("__createdAtMs")?.as_i64()?;
                let at = DateTime::<Utc>::from_timestamp_millis(ms)?;
                let format = field
                    .arg("format")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_DATE_FORMAT);
                Some(Ok(json!(php_date(at, format))))
            }
            ("StockChange", "lines") => {
                let id = parent.get("id")?.as_u64()?;
                let change = self.change_by_id(id)?;
                Some(nested_page_args(field, "StockChange").and_then(|page| {
                    let rows = change
                        .lines
                        .iter()
                        .map(|l| {
                            json!({
                                "__typename": "StockChangeLine",
                                "id": l.id,
                                "deliveredQuantity": l.delivered_quantity,
                                "productSize": self.sizes.get(&l.size_id).map(size_json),
                                "warehouse": self.warehouse_json(change.warehouse_id),
                                "stockChange": self.change_json(change),
                            })
                        })
                        .collect();
                    paginate(rows, &page).map(Value::Array)
                }))
            }
            _ => None,
        }
    }

    fn stock_rows(
        &self,
        type_name: &str,
        id: u64,
        field: &SelectedField,
    ) -> Result<Value, GraphqlError> {
        let page = nested_page_args(field, type_name)?;
        // Stable order: by size id within a warehouse, by warehouse id for a size.
        let mut rows: Vec<(u64, Value)> = self
            .stock
            .iter()
            .filter(|((wh, size), _)| {
                if type_name == "Warehouse" {
                    *wh == id
                } else {
                    *size == id
                }
            })
            .map(|((wh, size), level)| {
                let key = if type_name == "Warehouse" { *size } else { *wh };
                (key, self.stock_json(*wh, *size, *level))
            })
            .collect();
        rows.sort_by_key(|(k, _)| *k);
        paginate(rows.into_iter().map(|(_, v)| v).collect(), &page).map(Value::Array)
    }

    fn stock_json(&self, warehouse_id: u64, size_id: u64, l: Level) -> Value {
        let fta = l.physical - l.allocated;
        json!({
            "__typename": "Stock",
            // Both sub-objects: UNVERIFIED names in the SDL.
            "productSize": size_json(&self.sizes[&size_id]),
            "warehouse": self.warehouse_json(warehouse_id),
            "physicalQuantity": l.physical,
            "allocatedQuantity": l.allocated,
            "freeToAllocateQuantity": fta,
            "demandQuantity": 0,
            "unshippedQuantity": 0,
            "availableNowQuantity": fta,
            "availableQuantity": fta,
            "incomingQuantity": 0,
            "linkedIncomingQuantity": 0,
            "unlinkedIncomingQuantity": 0,
            "onDeliveryQuantity": 0,
        })
    }
}

impl From<Level> for StockLevel {
    fn from(l: Level) -> Self {
        StockLevel {
            physical: l.physical,
            allocated: l.allocated,
            free_to_allocate: l.physical - l.allocated,
        }
    }
}

fn matches_filter(f: &StockChangeFilter, c: &StockChangeRecord) -> bool {
    f.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
        && f.comment
            .as_ref()
            .is_none_or(|m| m.matches(Some(&c.comment)))
        && f.warehouse_ids.as_ref().is_none_or(|ids| {
            ids.contains(&c.warehouse_id) || c.into_warehouse_id.is_some_and(|i| ids.contains(&i))
        })
        && f.created_from.is_none_or(|from| c.created_at >= from)
        && f.created_to.is_none_or(|to| c.created_at <= to)
}

fn size_json(s: &Size) -> Value {
    json!({
        "__typename": "ProductSize",
        "id": s.id,
        "SKU": s.sku,
        "EAN": s.ean,
        "UPC": s.upc,
        "isActive": s.active,
    })
}

/// The SDL default of every `createdAt(format:)`: PHP's `Y-m-d\TH:i:sP`.
const DEFAULT_DATE_FORMAT: &str = "Y-m-d\\TH:i:sP";

/// A PHP `date()` format in UTC, for the tokens a client may plausibly ask for; other letters are
/// copied, and `\x` escapes a letter.
pub(crate) fn php_date(at: DateTime<Utc>, format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        let part = match ch {
            '\\' => chars.next().map(String::from).unwrap_or_default(),
            'Y' => at.format("%Y").to_string(),
            'y' => at.format("%y").to_string(),
            'm' => at.format("%m").to_string(),
            'n' => at.format("%-m").to_string(),
            'd' => at.format("%d").to_string(),
            'j' => at.format("%-d").to_string(),
            'H' => at.format("%H").to_string(),
            'G' => at.format("%-H").to_string(),
            'i' => at.format("%M").to_string(),
            's' => at.format("%S").to_string(),
            'v' => at.format("%3f").to_string(),
            'u' => at.format("%6f").to_string(),
            'P' => "+00:00".to_string(),
            'p' => "Z".to_string(),
            'O' => "+0000".to_string(),
            'T' => "UTC".to_string(),
            'U' => at.timestamp().to_string(),
            'c' => at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            other => other.to_string(),
        };
        out.push_str(&part);
    }
    out
}

fn encode_cursor(id: u64) -> String {
    format!("StockChange:{id}")
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    cursor.strip_prefix("StockChange:")?.parse().ok()
}

/// Offset paging: `limit` 1–200, `page` 1-based.
pub(crate) fn paginate(items: Vec<Value>, args: &PageArgs) -> Result<Vec<Value>, GraphqlError> {
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
    let page = args.page.unwrap_or(1);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(GraphqlError::new(format!(
            "Argument \"limit\" must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    if page < 1 {
        return Err(GraphqlError::new(format!(
            "Argument \"page\" must be at least 1, got {page}"
        )));
    }
    let skip = ((page - 1) * limit) as usize;
    Ok(items.into_iter().skip(skip).take(limit as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_dates_follow_the_format_letters() {
        let at = DateTime::parse_from_rfc3339("2025-01-31T09:05:07.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            php_date(at, DEFAULT_DATE_FORMAT),
            "2025-01-31T09:05:07+00:00"
        );
        assert_eq!(php_date(at, "Y-m-d H:i:s"), "2025-01-31 09:05:07");
        assert_eq!(php_date(at, "U"), "1738314307");
    }
}
