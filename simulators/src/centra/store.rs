//! The simulated Centra data (warehouses, sizes, stock, stock-change audit trail) and the
//! resolvers that read and write it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::schema::{
    nested_page_args, ChangeStockInput, ConnectionArgs, PageArgs, ProductSizeFilter, SetStockInput,
    SizeLine, SizeRef, SortDir,
};
use crate::graphql::{GraphqlError, SelectedField};

/// Stock of one size in one warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockLevel {
    pub physical: i64,
    pub allocated: i64,
    pub free_to_allocate: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChangeKind {
    /// `changeStock`: lines are signed deltas applied to `warehouse_id`.
    Change,
    /// `setStock`: lines are the absolute physical quantities set in `warehouse_id`.
    Set,
}

/// One entry of the stock-change audit trail (Centra's `StockChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChangeRecord {
    pub id: u64,
    pub description: String,
    /// "YYYY-MM-DD HH:MM:SS", UTC.
    pub created_at: String,
    pub warehouse_id: u64,
    /// Transfers only: the warehouse that received what `warehouse_id` gave up.
    pub into_warehouse_id: Option<u64>,
    pub kind: StockChangeKind,
    /// `(SKU, quantity)`; see [`StockChangeKind`] for the meaning of the quantity.
    pub lines: Vec<(String, i64)>,
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
    changes: Vec<StockChangeRecord>,
}

/// What a mutation resolver produced.
pub(crate) struct MutationOutcome {
    pub payload: Value,
    pub applied: bool,
}

struct Issues {
    errors: Vec<Value>,
    warnings: Vec<Value>,
}

impl Issues {
    fn new() -> Self {
        Issues {
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&mut self, message: String, path: Value) {
        self.errors
            .push(json!({"__typename": "UserError", "message": message, "path": path}));
    }

    fn warning(&mut self, message: String, path: Value) {
        self.warnings
            .push(json!({"__typename": "UserWarning", "message": message, "path": path}));
    }
}

impl Store {
    pub fn add_warehouse(&mut self, id: u64, name: &str) {
        self.warehouses.insert(id, name.to_string());
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
        let l = self
            .stock
            .get(&(warehouse_id, size.id))
            .copied()
            .unwrap_or_default();
        Some(StockLevel {
            physical: l.physical,
            allocated: l.allocated,
            free_to_allocate: l.physical - l.allocated,
        })
    }

    pub fn stock_changes(&self) -> Vec<StockChangeRecord> {
        self.changes.clone()
    }

    pub(crate) fn find_size(&self, r: &SizeRef) -> Option<&Size> {
        let eq = |field: &Option<String>, v: &str| field.as_deref() == Some(v);
        self.sizes.values().find(|s| match r {
            SizeRef::Id(id) => s.id == *id,
            SizeRef::Sku(v) => s.sku == *v,
            SizeRef::Ean(v) => eq(&s.ean, v),
            SizeRef::Upc(v) => eq(&s.upc, v),
            SizeRef::Any(v) => s.sku == *v || eq(&s.ean, v) || eq(&s.upc, v),
        })
    }

    fn level(&self, warehouse_id: u64, size_id: u64) -> Level {
        self.stock
            .get(&(warehouse_id, size_id))
            .copied()
            .unwrap_or_default()
    }

    fn record(
        &mut self,
        description: &str,
        now: DateTime<Utc>,
        warehouse_id: u64,
        into_warehouse_id: Option<u64>,
        kind: StockChangeKind,
        lines: Vec<(String, i64)>,
    ) -> u64 {
        let id = self.changes.last().map_or(1, |c| c.id + 1);
        self.changes.push(StockChangeRecord {
            id,
            description: description.to_string(),
            created_at: now.format("%Y-%m-%d %H:%M:%S").to_string(),
            warehouse_id,
            into_warehouse_id,
            kind,
            lines,
        });
        id
    }

    /// Resolve the size of every line, reporting unknown ones; `qty_ok` validates quantities.
    fn resolve_lines(
        &self,
        lines: &[SizeLine],
        qty_field: &str,
        qty_ok: impl Fn(i64) -> Option<&'static str>,
        issues: &mut Issues,
    ) -> Vec<Option<(u64, String)>> {
        if lines.is_empty() {
            issues.error(
                "At least one product size is required".to_string(),
                json!(["input", "productSizes"]),
            );
        }
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                if let Some(problem) = qty_ok(line.quantity) {
                    issues.error(
                        problem.to_string(),
                        json!(["input", "productSizes", i, qty_field]),
                    );
                }
                match self.find_size(&line.size) {
                    Some(s) => Some((s.id, s.sku.clone())),
                    None => {
                        issues.error(
                            format!("Product size not found: {}", line.size),
                            json!(["input", "productSizes", i, "productSize"]),
                        );
                        None
                    }
                }
            })
            .collect()
    }

    fn check_warehouse(&self, id: u64, field: &str, issues: &mut Issues) {
        if !self.warehouses.contains_key(&id) {
            issues.error(
                format!("Warehouse {id} not found"),
                json!(["input", field, "id"]),
            );
        }
    }

    fn common_checks(&self, description: &str, has_product_variants: bool, issues: &mut Issues) {
        if description.trim().is_empty() {
            issues.error(
                "Description must not be empty".to_string(),
                json!(["input", "description"]),
            );
        }
        if has_product_variants {
            issues.error(
                "productVariants is not supported by this simulator; use productSizes".to_string(),
                json!(["input", "productVariants"]),
            );
        }
    }

    /// `changeStock`: all lines or none.
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
                json!(["input"]),
            ),
            (Some(a), Some(b)) if a == b => issues.error(
                format!("Cannot transfer stock from warehouse {a} into itself"),
                json!(["input", "intoWarehouse", "id"]),
            ),
            _ => {}
        }
        if let Some(w) = input.out_from {
            self.check_warehouse(w, "outFromWarehouse", &mut issues);
        }
        if let Some(w) = input.into {
            self.check_warehouse(w, "intoWarehouse", &mut issues);
        }
        let sizes = self.resolve_lines(
            &input.product_sizes,
            "deliveredQuantity",
            |q| (q <= 0).then_some("Quantity must be positive"),
            &mut issues,
        );

        // Removals are checked per size over all its lines, against free-to-allocate.
        if let Some(out) = input.out_from.filter(|w| self.warehouses.contains_key(w)) {
            let mut removing: HashMap<u64, (i64, usize)> = HashMap::new();
            for (i, (line, size)) in input.product_sizes.iter().zip(&sizes).enumerate() {
                if let (Some((id, _)), true) = (size, line.quantity > 0) {
                    let e = removing.entry(*id).or_default();
                    e.0 += line.quantity;
                    e.1 = i;
                }
            }
            let mut removing: Vec<_> = removing.into_iter().collect();
            removing.sort_by_key(|(_, (_, i))| *i);
            for (size_id, (qty, last_line)) in removing {
                let l = self.level(out, size_id);
                let fta = l.physical - l.allocated;
                if qty > fta {
                    issues.error(
                        format!(
                            "Cannot remove {qty} of SKU \"{}\": only {} free to allocate in warehouse {out}",
                            self.sizes[&size_id].sku,
                            fta.max(0)
                        ),
                        json!(["input", "productSizes", last_line, "deliveredQuantity"]),
                    );
                }
            }
        }

        if !issues.errors.is_empty() {
            return MutationOutcome {
                payload: change_payload(Value::Null, issues),
                applied: false,
            };
        }

        let mut lines = Vec::new();
        for (line, size) in input.product_sizes.iter().zip(sizes) {
            let (size_id, sku) = size.expect("checked above");
            if let Some(out) = input.out_from {
                self.stock.entry((out, size_id)).or_default().physical -= line.quantity;
            }
            if let Some(into) = input.into {
                self.stock.entry((into, size_id)).or_default().physical += line.quantity;
            }
            let signed = if input.out_from.is_some() {
                -line.quantity
            } else {
                line.quantity
            };
            lines.push((sku, signed));
        }
        let (warehouse, into) = match (input.out_from, input.into) {
            (Some(out), into) => (out, into),
            (None, Some(into)) => (into, None),
            (None, None) => unreachable!("checked above"),
        };
        let id = self.record(
            &input.description,
            now,
            warehouse,
            into,
            StockChangeKind::Change,
            lines,
        );
        MutationOutcome {
            payload: change_payload(json!({"__typename": "StockChange", "id": id}), issues),
            applied: true,
        }
    }

    /// `setStock` with `stockQuantityType: PHYSICAL`: all lines or none.
    pub fn set_stock(&mut self, input: &SetStockInput, now: DateTime<Utc>) -> MutationOutcome {
        let mut issues = Issues::new();
        self.common_checks(&input.description, input.has_product_variants, &mut issues);
        match input.stock_quantity_type.as_str() {
            "PHYSICAL" => {}
            other => issues.error(
                // FREE_TO_ALLOCATE: name UNVERIFIED per reference; not simulated either way.
                format!("stockQuantityType {other} is not supported; use PHYSICAL"),
                json!(["input", "stockQuantityType"]),
            ),
        }
        self.check_warehouse(input.warehouse, "warehouse", &mut issues);
        let sizes = self.resolve_lines(
            &input.product_sizes,
            "quantity",
            |q| (q < 0).then_some("Quantity must not be negative"),
            &mut issues,
        );
        if !issues.errors.is_empty() {
            return MutationOutcome {
                payload: set_payload(Value::Null, issues),
                applied: false,
            };
        }

        let wh = input.warehouse;
        let mut seen = Vec::new();
        let mut lines = Vec::new();
        for (i, (line, size)) in input.product_sizes.iter().zip(sizes).enumerate() {
            let (size_id, sku) = size.expect("checked above");
            if seen.contains(&size_id) {
                issues.warning(
                    format!("Duplicate product size skipped: SKU \"{sku}\""),
                    json!(["input", "productSizes", i, "productSize"]),
                );
                continue;
            }
            seen.push(size_id);
            let level = self.stock.entry((wh, size_id)).or_default();
            // Centra's Order API clamps physical stock to what is allocated; assumed alike here.
            let qty = if line.quantity < level.allocated {
                issues.warning(
                    format!(
                        "Physical quantity of SKU \"{sku}\" raised from {} to the allocated {}",
                        line.quantity, level.allocated
                    ),
                    json!(["input", "productSizes", i, "quantity"]),
                );
                level.allocated
            } else {
                line.quantity
            };
            level.physical = qty;
            lines.push((sku, qty));
        }
        let id = self.record(
            &input.description,
            now,
            wh,
            None,
            StockChangeKind::Set,
            lines,
        );
        MutationOutcome {
            payload: set_payload(json!([{"__typename": "StockChange", "id": id}]), issues),
            applied: true,
        }
    }

    pub fn stock_change_connection(&self, args: &ConnectionArgs) -> Result<Value, GraphqlError> {
        if args.uses_backward_paging {
            return Err(GraphqlError::new(
                "last/before paging is not supported by this simulator; use first/after",
            ));
        }
        let first = args.first.unwrap_or(DEFAULT_LIMIT);
        if !(0..=MAX_LIMIT).contains(&first) {
            return Err(GraphqlError::new(format!(
                "Argument \"first\" must be between 0 and {MAX_LIMIT}, got {first}"
            )));
        }
        let mut all: Vec<&StockChangeRecord> = self
            .changes
            .iter()
            .filter(|c| args.ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
            .collect();
        if args.sort == SortDir::Desc {
            all.reverse();
        }
        // Cursors carry the id, so pages stay stable while new changes arrive.
        let start = match &args.after {
            None => 0,
            Some(cursor) => {
                let after_id = decode_cursor(cursor)
                    .ok_or_else(|| GraphqlError::new(format!("Invalid cursor \"{cursor}\"")))?;
                all.iter()
                    .position(|c| match args.sort {
                        SortDir::Desc => c.id < after_id,
                        SortDir::Asc => c.id > after_id,
                    })
                    .unwrap_or(all.len())
            }
        };
        let page: Vec<&StockChangeRecord> = all
            .iter()
            .skip(start)
            .take(first as usize)
            .copied()
            .collect();
        let edges: Vec<Value> = page
            .iter()
            .map(|c| {
                json!({
                    "__typename": "StockChangeEdge",
                    "cursor": encode_cursor(c.id),
                    "node": {
                        "__typename": "StockChange",
                        "id": c.id,
                        "description": c.description,
                        "createdAt": c.created_at,
                    }
                })
            })
            .collect();
        Ok(json!({
            "__typename": "StockChangeConnection",
            "totalCount": all.len(),
            "pageInfo": {
                "__typename": "PageInfo",
                "hasNextPage": start + page.len() < all.len(),
                "hasPreviousPage": start > 0,
                "startCursor": page.first().map(|c| encode_cursor(c.id)),
                "endCursor": page.last().map(|c| encode_cursor(c.id)),
            },
            "edges": edges,
        }))
    }

    /// Warehouses without their `stock` (computed per selection by [`Store::nested`]).
    pub fn warehouses(&self, ids: Option<&[u64]>, page: &PageArgs) -> Result<Value, GraphqlError> {
        let list: Vec<Value> = self
            .warehouses
            .iter()
            .filter(|(id, _)| ids.is_none_or(|ids| ids.contains(id)))
            .map(|(id, name)| self.warehouse_json(*id, name))
            .collect();
        Ok(Value::Array(paginate(list, page)?))
    }

    fn warehouse_json(&self, id: u64, name: &str) -> Value {
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

    /// Fields that take arguments below the root: `Warehouse.stock` and `ProductSize.stock`.
    pub fn nested(
        &self,
        parent: &Map<String, Value>,
        field: &SelectedField,
    ) -> Option<Result<Value, GraphqlError>> {
        let type_name = parent.get("__typename")?.as_str()?;
        if field.name != "stock" || !matches!(type_name, "Warehouse" | "ProductSize") {
            return None;
        }
        let id = parent.get("id")?.as_u64()?;
        Some(nested_page_args(field, type_name).and_then(|page| {
            // Stable order: by size id within a warehouse, by warehouse id for a size.
            let rows: Vec<Value> = self
                .stock
                .iter()
                .filter(|((wh, size), _)| {
                    if type_name == "Warehouse" {
                        *wh == id
                    } else {
                        *size == id
                    }
                })
                .map(|((wh, size), level)| self.stock_json(*wh, *size, *level))
                .collect();
            let mut rows = rows;
            if type_name == "Warehouse" {
                rows.sort_by_key(|r| r["productSize"]["id"].as_u64());
            }
            paginate(rows, &page).map(Value::Array)
        }))
    }

    fn stock_json(&self, warehouse_id: u64, size_id: u64, l: Level) -> Value {
        let fta = l.physical - l.allocated;
        json!({
            "__typename": "Stock",
            // Both sub-objects: UNVERIFIED per reference.
            "productSize": size_json(&self.sizes[&size_id]),
            "warehouse": self.warehouse_json(warehouse_id, &self.warehouses[&warehouse_id]),
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

fn change_payload(stock_change: Value, issues: Issues) -> Value {
    json!({
        "__typename": "StockChangePayload",
        "stockChange": stock_change,
        "userErrors": issues.errors,
        "userWarnings": issues.warnings,
    })
}

fn set_payload(stock_changes: Value, issues: Issues) -> Value {
    json!({
        "__typename": "StockSetPayload",
        "stockChanges": stock_changes,
        "userErrors": issues.errors,
        "userWarnings": issues.warnings,
    })
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
