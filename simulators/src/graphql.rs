//! Just enough GraphQL request evaluation for hand-written simulators.
//!
//! Documents reach this module after validation against the served schema ([`crate::schema`]); here
//! [`prepare`] picks the operation, expands fragments, evaluates
//! `@skip`/`@include` and resolves arguments (inline literals and `$variables`) into
//! `serde_json::Value`s. Each root field is then handed, with its selection subtree, to a
//! resolver that validates what it uses. [`project`] shapes a resolver's full JSON payload
//! to the client's selection set (aliases, `__typename`, unknown-field errors).

use std::collections::HashMap;

use graphql_parser::query as q;
use serde_json::{json, Map, Value};

/// Text type used while walking the parsed document (borrows the query string).
type T<'a> = &'a str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

impl OperationKind {
    /// Root type name as used in GraphQL error messages.
    pub fn type_name(self) -> &'static str {
        match self {
            OperationKind::Query => "Query",
            OperationKind::Mutation => "Mutation",
            OperationKind::Subscription => "Subscription",
        }
    }
}

/// One-based position in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl From<graphql_parser::Pos> for Location {
    fn from(p: graphql_parser::Pos) -> Self {
        Location {
            line: p.line,
            column: p.column,
        }
    }
}

/// A field of a selection set with its arguments already evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedField {
    pub name: String,
    pub alias: Option<String>,
    pub args: Map<String, Value>,
    /// Sub-selection with fragments flattened into it.
    pub selection: Vec<SelectedField>,
    /// Type condition of the innermost fragment this field came from, if any.
    pub type_condition: Option<String>,
    pub location: Location,
}

impl SelectedField {
    /// The key this field gets in the response object (alias or name).
    pub fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    /// An argument value; an explicit `null` reads as absent.
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.get(name).filter(|v| !v.is_null())
    }
}

/// The operation chosen from a document, ready for resolvers.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: OperationKind,
    pub name: Option<String>,
    pub fields: Vec<SelectedField>,
}

/// A GraphQL error as it appears in a response's `errors[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlError {
    pub message: String,
    pub locations: Vec<Location>,
    pub path: Vec<Value>,
    pub category: String,
}

impl GraphqlError {
    pub fn new(message: impl Into<String>) -> Self {
        GraphqlError {
            message: message.into(),
            locations: Vec::new(),
            path: Vec::new(),
            category: "graphql".to_string(),
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.locations.push(location);
        self
    }

    pub fn with_path(mut self, path: Vec<Value>) -> Self {
        self.path = path;
        self
    }

    /// Something the served schema allows but the simulator does not model: said plainly, so that a test
    /// hitting it is not mistaken for a client bug.
    pub fn not_simulated(what: impl std::fmt::Display) -> Self {
        GraphqlError::new(format!(
            "The simulator does not implement {what} (it is in the schema)."
        ))
        .with_category("simulator")
    }

    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = category.into();
        self
    }

    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("message".into(), json!(self.message));
        if !self.locations.is_empty() {
            let locs: Vec<Value> = self
                .locations
                .iter()
                .map(|l| json!({"line": l.line, "column": l.column}))
                .collect();
            obj.insert("locations".into(), Value::Array(locs));
        }
        if !self.path.is_empty() {
            obj.insert("path".into(), Value::Array(self.path.clone()));
        }
        obj.insert("extensions".into(), json!({"category": self.category}));
        Value::Object(obj)
    }
}

/// Parse `query`, pick the operation (by `operation_name`, else the only one) and evaluate
/// its root selection set against `variables`.
pub fn prepare(
    query: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
) -> Result<Operation, GraphqlError> {
    let doc =
        q::parse_query::<T>(query).map_err(|e| GraphqlError::new(format!("Syntax Error: {e}")))?;

    let mut operations = Vec::new();
    let mut fragments = HashMap::new();
    for def in &doc.definitions {
        match def {
            q::Definition::Operation(op) => operations.push(op),
            q::Definition::Fragment(f) => {
                fragments.insert(f.name, f);
            }
        }
    }

    let op = match operation_name {
        Some(wanted) => operations
            .iter()
            .find(|op| op_parts(op).1 == Some(wanted))
            .ok_or_else(|| GraphqlError::new(format!("Unknown operation named \"{wanted}\".")))?,
        None if operations.len() == 1 => &operations[0],
        None if operations.is_empty() => {
            return Err(GraphqlError::new("Document contains no operations."))
        }
        None => {
            return Err(GraphqlError::new(
                "Must provide operation name if query contains multiple operations.",
            ))
        }
    };

    let (kind, name, var_defs, selection) = op_parts(op);
    let vars = coerce_variables(var_defs, variables)?;
    let ctx = Ctx {
        fragments: &fragments,
        vars: &vars,
    };
    let fields = ctx.selection(selection, None, 0)?;
    Ok(Operation {
        kind,
        name: name.map(str::to_string),
        fields,
    })
}

type OpParts<'d, 'a> = (
    OperationKind,
    Option<&'a str>,
    &'d [q::VariableDefinition<'a, T<'a>>],
    &'d q::SelectionSet<'a, T<'a>>,
);

fn op_parts<'d, 'a>(op: &'d q::OperationDefinition<'a, T<'a>>) -> OpParts<'d, 'a> {
    match op {
        q::OperationDefinition::SelectionSet(s) => (OperationKind::Query, None, &[], s),
        q::OperationDefinition::Query(o) => (
            OperationKind::Query,
            o.name,
            &o.variable_definitions,
            &o.selection_set,
        ),
        q::OperationDefinition::Mutation(o) => (
            OperationKind::Mutation,
            o.name,
            &o.variable_definitions,
            &o.selection_set,
        ),
        q::OperationDefinition::Subscription(o) => (
            OperationKind::Subscription,
            o.name,
            &o.variable_definitions,
            &o.selection_set,
        ),
    }
}

/// Apply defaults and non-null checks; no type checking beyond that (resolvers check shapes).
fn coerce_variables<'a>(
    defs: &[q::VariableDefinition<'a, T<'a>>],
    given: &Map<String, Value>,
) -> Result<HashMap<String, Value>, GraphqlError> {
    let mut out = HashMap::new();
    for def in defs {
        let non_null = matches!(def.var_type, q::Type::NonNullType(_));
        let value = match given.get(def.name) {
            Some(v) => v.clone(),
            None => match &def.default_value {
                Some(d) => const_value(d)?,
                None => Value::Null,
            },
        };
        if non_null && value.is_null() {
            let msg = if given.contains_key(def.name) {
                format!(
                    "Variable \"${}\" of non-null type \"{}\" must not be null.",
                    def.name, def.var_type
                )
            } else {
                format!(
                    "Variable \"${}\" of required type \"{}\" was not provided.",
                    def.name, def.var_type
                )
            };
            return Err(GraphqlError::new(msg).at(def.position.into()));
        }
        out.insert(def.name.to_string(), value);
    }
    Ok(out)
}

fn const_value<'a>(v: &q::Value<'a, T<'a>>) -> Result<Value, GraphqlError> {
    let empty = HashMap::new();
    to_json(v, &empty)
}

fn to_json<'a>(
    v: &q::Value<'a, T<'a>>,
    vars: &HashMap<String, Value>,
) -> Result<Value, GraphqlError> {
    Ok(match v {
        q::Value::Variable(name) => match vars.get(*name) {
            Some(v) => v.clone(),
            None => {
                return Err(GraphqlError::new(format!(
                    "Variable \"${name}\" is not defined."
                )))
            }
        },
        q::Value::Int(n) => json!(n.as_i64()),
        q::Value::Float(f) => json!(f),
        q::Value::String(s) => json!(s),
        q::Value::Boolean(b) => json!(b),
        q::Value::Null => Value::Null,
        q::Value::Enum(e) => json!(e),
        q::Value::List(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        q::Value::Object(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k.to_string(), to_json(v, vars)?);
            }
            Value::Object(m)
        }
    })
}

struct Ctx<'c, 'a> {
    fragments: &'c HashMap<&'a str, &'c q::FragmentDefinition<'a, T<'a>>>,
    vars: &'c HashMap<String, Value>,
}

/// Fragment spreads deeper than this are taken as a cycle.
const MAX_FRAGMENT_DEPTH: usize = 32;

impl<'a> Ctx<'_, 'a> {
    fn selection(
        &self,
        set: &q::SelectionSet<'a, T<'a>>,
        condition: Option<&str>,
        depth: usize,
    ) -> Result<Vec<SelectedField>, GraphqlError> {
        let mut out = Vec::new();
        for item in &set.items {
            match item {
                q::Selection::Field(f) => {
                    if !self.included(&f.directives)? {
                        continue;
                    }
                    let mut args = Map::new();
                    for (k, v) in &f.arguments {
                        args.insert(
                            k.to_string(),
                            to_json(v, self.vars).map_err(|e| e.at(f.position.into()))?,
                        );
                    }
                    out.push(SelectedField {
                        name: f.name.to_string(),
                        alias: f.alias.map(str::to_string),
                        args,
                        selection: self.selection(&f.selection_set, None, depth)?,
                        type_condition: condition.map(str::to_string),
                        location: f.position.into(),
                    });
                }
                q::Selection::InlineFragment(frag) => {
                    if !self.included(&frag.directives)? {
                        continue;
                    }
                    let cond = match &frag.type_condition {
                        Some(q::TypeCondition::On(t)) => Some(*t),
                        None => condition,
                    };
                    out.extend(self.selection(&frag.selection_set, cond, depth)?);
                }
                q::Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.directives)? {
                        continue;
                    }
                    if depth >= MAX_FRAGMENT_DEPTH {
                        return Err(GraphqlError::new(format!(
                            "Cannot spread fragment \"{}\" within itself.",
                            spread.fragment_name
                        ))
                        .at(spread.position.into()));
                    }
                    let frag = self.fragments.get(spread.fragment_name).ok_or_else(|| {
                        GraphqlError::new(format!("Unknown fragment \"{}\".", spread.fragment_name))
                            .at(spread.position.into())
                    })?;
                    let q::TypeCondition::On(t) = &frag.type_condition;
                    out.extend(self.selection(&frag.selection_set, Some(t), depth + 1)?);
                }
            }
        }
        Ok(out)
    }

    /// Evaluate `@skip(if:)` and `@include(if:)`.
    fn included(&self, directives: &[q::Directive<'a, T<'a>>]) -> Result<bool, GraphqlError> {
        for d in directives {
            let want_skip = match d.name {
                "skip" => true,
                "include" => false,
                _ => continue,
            };
            let cond = d
                .arguments
                .iter()
                .find(|(k, _)| *k == "if")
                .map(|(_, v)| to_json(v, self.vars))
                .transpose()?
                .and_then(|v| v.as_bool())
                .ok_or_else(|| {
                    GraphqlError::new(format!(
                        "Directive \"@{}\" argument \"if\" of type \"Boolean!\" is required.",
                        d.name
                    ))
                    .at(d.position.into())
                })?;
            if cond == want_skip {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Shape `value` (a resolver's full payload) to `selection`.
///
/// Objects may carry a `"__typename"` key: it names the type in "Cannot query field" errors
/// and answers `__typename` selections, and is otherwise left out of the output. `hook` is
/// asked first for every selected field (with the parent object) so that fields taking
/// arguments can be computed on demand; `None` means "read the key from the object".
/// An empty selection on an object returns the whole object.
pub fn project<F>(
    value: &Value,
    selection: &[SelectedField],
    hook: &mut F,
) -> Result<Value, GraphqlError>
where
    F: FnMut(&Map<String, Value>, &SelectedField) -> Option<Result<Value, GraphqlError>>,
{
    match value {
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| project(i, selection, hook))
                .collect::<Result<_, _>>()?,
        )),
        Value::Object(obj) => {
            let type_name = obj.get("__typename").and_then(Value::as_str);
            if selection.is_empty() {
                let mut all = obj.clone();
                all.remove("__typename");
                return Ok(Value::Object(all));
            }
            let mut out = Map::new();
            for field in selection {
                let key = field.response_key().to_string();
                if field.name == "__typename" {
                    out.insert(key, type_name.map_or(Value::Null, |t| json!(t)));
                    continue;
                }
                if let Some(computed) = hook(obj, field) {
                    let v = computed?;
                    out.insert(key, project(&v, &field.selection, hook)?);
                    continue;
                }
                match obj.get(&field.name) {
                    Some(v) => {
                        out.insert(key, project(v, &field.selection, hook)?);
                    }
                    // A field of another union/interface member: not selected on this object.
                    None if field
                        .type_condition
                        .as_deref()
                        .is_some_and(|c| Some(c) != type_name) => {}
                    // Documents are validated against the schema first, so a missing key is a field
                    // the schema has and the simulator does not answer.
                    None => {
                        return Err(GraphqlError::not_simulated(format_args!(
                            "the field \"{}\" of type \"{}\"",
                            field.name,
                            type_name.unwrap_or("Object")
                        ))
                        .at(field.location));
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Number of selected fields in a tree, for a rough query-complexity figure.
pub fn count_fields(fields: &[SelectedField], weight: &dyn Fn(&SelectedField) -> u64) -> u64 {
    fields
        .iter()
        .map(|f| weight(f) + count_fields(&f.selection, weight))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn resolves_literals_variables_aliases_and_fragments() {
        let query = r#"
            query Stock($wh: Int!, $page: Int = 2, $skipName: Boolean!) {
              wh: warehouses(where: { id: [$wh, 7] }) {
                id
                name @skip(if: $skipName)
                ...StockPart
                ... on Warehouse { extra: id }
              }
            }
            fragment StockPart on Warehouse { stock(limit: 200, page: $page) { physicalQuantity } }
        "#;
        let op = prepare(query, None, &vars(json!({"wh": 12, "skipName": true}))).unwrap();
        assert_eq!(op.kind, OperationKind::Query);
        assert_eq!(op.name.as_deref(), Some("Stock"));
        let root = &op.fields[0];
        assert_eq!(root.name, "warehouses");
        assert_eq!(root.response_key(), "wh");
        assert_eq!(root.args["where"], json!({"id": [12, 7]}));
        let names: Vec<&str> = root.selection.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "stock", "id"]);
        assert_eq!(root.selection[1].args["page"], json!(2));
        assert_eq!(
            root.selection[1].type_condition.as_deref(),
            Some("Warehouse")
        );
    }

    #[test]
    fn picks_operation_by_name_and_reports_problems() {
        let doc = "query A { a } mutation B { b }";
        let empty = Map::new();
        assert_eq!(
            prepare(doc, Some("B"), &empty).unwrap().kind,
            OperationKind::Mutation
        );
        assert!(prepare(doc, None, &empty).is_err());
        assert!(prepare(doc, Some("C"), &empty).is_err());
        assert!(prepare("query {", None, &empty).is_err());
        let err = prepare("query Q($x: Int!) { a(x: $x) }", None, &empty).unwrap_err();
        assert!(err.message.contains("$x"), "{}", err.message);
        assert!(prepare("{ a(x: $y) }", None, &empty).is_err());
    }

    #[test]
    fn project_applies_selection_and_rejects_unknown_fields() {
        let op = prepare("{ r { a renamed: b __typename } }", None, &Map::new()).unwrap();
        let value = json!({"__typename": "R", "a": 1, "b": [2], "c": 3});
        let out = project(&value, &op.fields[0].selection, &mut |_, _| None).unwrap();
        assert_eq!(out, json!({"a": 1, "renamed": [2], "__typename": "R"}));

        let op = prepare("{ r { nope } }", None, &Map::new()).unwrap();
        let err = project(&value, &op.fields[0].selection, &mut |_, _| None).unwrap_err();
        assert_eq!(
            err.message,
            "The simulator does not implement the field \"nope\" of type \"R\" (it is in the schema)."
        );
        assert_eq!(err.category, "simulator");
    }
}
