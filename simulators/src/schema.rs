//! The published schemas the simulators serve (`schema/` at the repository root), and request validation
//! against them with apollo-compiler: documents (cached by text, since a benchmark sends the same few
//! thousands of times), the choice of operation, and variables (coerced against the operation's variable
//! types, with graphql-js style messages, which is what Centra's PHP server and Apollo Server print).
//!
//! Also: introspection answers, and the `# UNVERIFIED` marks of an SDL file and which of those elements
//! a document uses (the integration's declared assumptions about Centra).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use apollo_compiler::ast;
use apollo_compiler::executable::{ExecutableDocument, Operation, Selection, SelectionSet};
use apollo_compiler::schema::{ExtendedType, Implementers};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};
use serde_json::{Map, Value};

use crate::graphql::{Location, OperationKind};

/// `schema/centra/integration-subset.graphql`.
pub const CENTRA_SDL: &str = include_str!("../../schema/centra/integration-subset.graphql");
/// `schema/cloudshelf.graphql`.
pub const CLOUDSHELF_SDL: &str = include_str!("../../schema/cloudshelf.graphql");

/// Documents kept per schema; past this the cache starts over (clients send a handful of documents, so
/// only a runaway test fills it).
const CACHE_LIMIT: usize = 1024;

/// Which check a request failed (servers label them differently, e.g. Apollo's `extensions.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrorKind {
    /// The document does not parse.
    Syntax,
    /// The document does not validate against the schema, or names no usable operation.
    Validation,
    /// A variable is missing or does not fit its type.
    Variables,
}

/// A request-level validation problem: the answer carries `errors` and no `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub message: String,
    pub locations: Vec<Location>,
    pub kind: SchemaErrorKind,
}

impl SchemaError {
    fn new(kind: SchemaErrorKind, message: impl Into<String>) -> Self {
        SchemaError {
            message: message.into(),
            locations: Vec::new(),
            kind,
        }
    }
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for l in &self.locations {
            write!(f, " ({}:{})", l.line, l.column)?;
        }
        Ok(())
    }
}

type Validated = Result<Arc<Valid<ExecutableDocument>>, Vec<SchemaError>>;

/// A parsed, validated schema with its document cache.
pub struct ServedSchema {
    sdl: String,
    schema: Valid<Schema>,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    cache: RwLock<HashMap<String, Arc<Validated>>>,
}

impl std::fmt::Debug for ServedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedSchema").finish_non_exhaustive()
    }
}

/// A request whose document, operation and variables passed validation.
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    pub document: Arc<Valid<ExecutableDocument>>,
    pub operation_name: Option<String>,
    pub kind: OperationKind,
    /// Root field names as written (fragments included), `__typename` left out.
    pub root_fields: Vec<String>,
    /// Selects `__schema` or `__type` at the root.
    pub introspection: bool,
}

impl CheckedRequest {
    pub fn operation(&self) -> &Operation {
        self.document
            .operations
            .get(self.operation_name.as_deref())
            .expect("operation chosen when checked")
    }
}

impl ServedSchema {
    /// Parse and validate an SDL text (the simulators' own files, or an alternative a test serves).
    pub fn parse(sdl: &str, name: &str) -> Result<ServedSchema, String> {
        let built = build_schema(sdl, name).map_err(|e| e.errors.to_string())?;
        let schema = built.validate().map_err(|e| e.errors.to_string())?;
        Ok(ServedSchema {
            sdl: sdl.to_string(),
            implementers: schema.implementers_map(),
            schema,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// Like [`ServedSchema::parse`], but keeps a schema that breaks validation rules (a live server's
    /// introspection may), so that documents can still be checked against it.
    pub fn parse_lenient(sdl: &str, name: &str) -> Result<ServedSchema, String> {
        let built = match build_schema(sdl, name) {
            Ok(s) => s,
            Err(e) if e.partial.types.is_empty() => return Err(e.errors.to_string()),
            Err(e) => e.partial,
        };
        let schema = match built.validate() {
            Ok(s) => s,
            Err(e) => Valid::assume_valid(e.partial),
        };
        Ok(ServedSchema {
            sdl: sdl.to_string(),
            implementers: schema.implementers_map(),
            schema,
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub fn sdl(&self) -> &str {
        &self.sdl
    }

    pub fn schema(&self) -> &Valid<Schema> {
        &self.schema
    }

    /// Parse and validate a document, cached by its text.
    pub fn validate(&self, query: &str) -> Arc<Validated> {
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(query)
        {
            return hit.clone();
        }
        let result = Arc::new(
            ExecutableDocument::parse_and_validate(&self.schema, query, "request.graphql")
                .map(Arc::new)
                .map_err(|e| {
                    let names: Vec<Option<&str>> = e
                        .errors
                        .iter()
                        .map(|d| d.error.unstable_error_name())
                        .collect();
                    let syntax = names.iter().any(Option::is_none)
                        && e.errors
                            .iter()
                            .any(|d| d.error.to_string().starts_with("syntax error"));
                    let undefined_field = names.contains(&Some("UndefinedField"));
                    let errors: Vec<SchemaError> = e
                        .errors
                        .iter()
                        .zip(&names)
                        // What a spec server reports: the first syntax error alone (it does not
                        // validate what does not parse), and no "must have a selection" for a
                        // selection that only lost its unknown fields in apollo's partial document.
                        .filter(|(d, name)| {
                            if syntax {
                                d.error.to_string().starts_with("syntax error")
                            } else {
                                !(undefined_field && **name == Some("MissingSubselection"))
                            }
                        })
                        .map(|(d, _)| {
                            // graphql-js wording (what Centra's PHP server and Apollo Server print);
                            // pinned apollo-compiler version, as the API is marked unstable.
                            let json = d.unstable_to_json_compat();
                            let (kind, message) = match json.message.strip_prefix("syntax error: ")
                            {
                                Some(rest) => {
                                    (SchemaErrorKind::Syntax, format!("Syntax Error: {rest}"))
                                }
                                None => (SchemaErrorKind::Validation, json.message),
                            };
                            SchemaError {
                                kind,
                                message,
                                locations: json
                                    .locations
                                    .iter()
                                    .map(|l| Location {
                                        line: l.line,
                                        column: l.column,
                                    })
                                    .collect(),
                            }
                        })
                        .collect();
                    if syntax {
                        errors.into_iter().take(1).collect()
                    } else {
                        errors
                    }
                }),
        );
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(query.to_string(), result.clone());
        result
    }

    /// Document, operation choice and variables, in the order a GraphQL server checks them.
    pub fn check_request(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Map<String, Value>,
    ) -> Result<CheckedRequest, Vec<SchemaError>> {
        let document = match &*self.validate(query) {
            Ok(d) => d.clone(),
            Err(errors) => return Err(errors.clone()),
        };
        let operation = pick_operation(&document, operation_name)?;
        coerce_variables(&self.schema, &document, operation, variables)?;
        let kind = match operation.operation_type {
            ast::OperationType::Query => OperationKind::Query,
            ast::OperationType::Mutation => OperationKind::Mutation,
            ast::OperationType::Subscription => OperationKind::Subscription,
        };
        let mut root_fields = Vec::new();
        let mut introspection = false;
        for f in operation.root_fields(&document) {
            match f.name.as_str() {
                "__typename" => {}
                "__schema" | "__type" => introspection = true,
                name => root_fields.push(name.to_string()),
            }
        }
        Ok(CheckedRequest {
            operation_name: operation.name.as_ref().map(|n| n.to_string()),
            document,
            kind,
            root_fields,
            introspection,
        })
    }

    /// The `__schema`/`__type` part of a checked query, as a `data` object (other root fields are left
    /// for the simulator's resolvers).
    pub fn introspect(
        &self,
        request: &CheckedRequest,
        variables: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<SchemaError>> {
        let operation = request.operation();
        let one = |message: String| vec![SchemaError::new(SchemaErrorKind::Validation, message)];
        apollo_compiler::introspection::check_max_depth(&request.document, operation)
            .map_err(|e| one(e.message().to_string()))?;
        let values: apollo_compiler::response::JsonMap =
            serde_json::from_value(Value::Object(variables.clone()))
                .map_err(|e| one(e.to_string()))?;
        let coerced =
            apollo_compiler::request::coerce_variable_values(&self.schema, operation, &values)
                .map_err(|e| one(e.message().to_string()))?;
        let response = apollo_compiler::introspection::partial_execute(
            &self.schema,
            &self.implementers,
            &request.document,
            operation,
            &coerced,
        )
        .map_err(|e| one(e.message().to_string()))?;
        if let Some(e) = response.errors.first() {
            return Err(one(e.message.clone()));
        }
        let data = serde_json::to_value(response.data.unwrap_or_default())
            .map_err(|e| one(e.to_string()))?;
        Ok(match data {
            Value::Object(m) => m,
            _ => Map::new(),
        })
    }
}

/// Build a schema from SDL. Definitions of the built-in scalars are dropped: rendered introspection dumps
/// (the Cloudshelf file) carry them, with descriptions, and the spec says to omit them.
#[allow(clippy::result_large_err)]
fn build_schema(
    sdl: &str,
    name: &str,
) -> Result<Schema, apollo_compiler::validation::WithErrors<Schema>> {
    const BUILT_IN: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];
    let mut doc =
        ast::Document::parse(sdl, name).map_err(|e| apollo_compiler::validation::WithErrors {
            partial: Schema::new(),
            errors: e.errors,
        })?;
    doc.definitions.retain(|d| {
        !matches!(d, ast::Definition::ScalarTypeDefinition(s) if BUILT_IN.contains(&s.name.as_str()))
    });
    Schema::builder().add_ast(&doc).build()
}

/// The Centra Integration API subset (`schema/centra/integration-subset.graphql`), parsed once.
pub fn centra_schema() -> Arc<ServedSchema> {
    static S: OnceLock<Arc<ServedSchema>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            ServedSchema::parse(CENTRA_SDL, "schema/centra/integration-subset.graphql")
                .expect("schema/centra/integration-subset.graphql is a valid schema"),
        )
    })
    .clone()
}

/// The Cloudshelf schema (`schema/cloudshelf.graphql`), parsed once.
pub fn cloudshelf_schema() -> Arc<ServedSchema> {
    static S: OnceLock<Arc<ServedSchema>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            ServedSchema::parse(CLOUDSHELF_SDL, "schema/cloudshelf.graphql")
                .expect("schema/cloudshelf.graphql is a valid schema"),
        )
    })
    .clone()
}

/// Validate a document (every operation in it) against a schema.
pub fn validate_document(schema: &ServedSchema, text: &str) -> Result<(), Vec<SchemaError>> {
    match &*schema.validate(text) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

fn pick_operation<'d>(
    document: &'d Valid<ExecutableDocument>,
    name: Option<&str>,
) -> Result<&'d Operation, Vec<SchemaError>> {
    let ops = &document.operations;
    let message = match name {
        Some(wanted) => match ops.get(Some(wanted)) {
            Ok(op) => return Ok(op),
            Err(_) => format!("Unknown operation named \"{wanted}\"."),
        },
        None => match ops.get(None) {
            Ok(op) => return Ok(op),
            Err(_) if ops.iter().next().is_none() => "Document contains no operations.".into(),
            Err(_) => "Must provide operation name if query contains multiple operations.".into(),
        },
    };
    Err(vec![SchemaError::new(SchemaErrorKind::Validation, message)])
}

/// Check the request's variables against the operation's variable definitions (CoerceVariableValues):
/// unknown input fields, missing required ones, wrong scalar and enum values all fail the request.
fn coerce_variables(
    schema: &Valid<Schema>,
    document: &ExecutableDocument,
    operation: &Operation,
    given: &Map<String, Value>,
) -> Result<(), Vec<SchemaError>> {
    for def in &operation.variables {
        let name = def.name.as_str();
        let at = |message: String| {
            let mut e = SchemaError::new(SchemaErrorKind::Variables, message);
            if let Some(lc) = def
                .location()
                .and_then(|l| l.line_column(&document.sources))
            {
                e.locations.push(Location {
                    line: lc.line,
                    column: lc.column,
                });
            }
            vec![e]
        };
        match given.get(name) {
            None if def.default_value.is_none() && def.ty.is_non_null() => {
                return Err(at(format!(
                    "Variable \"${name}\" of required type \"{}\" was not provided.",
                    def.ty
                )))
            }
            None => {}
            Some(Value::Null) if def.ty.is_non_null() => {
                return Err(at(format!(
                    "Variable \"${name}\" of non-null type \"{}\" must not be null.",
                    def.ty
                )))
            }
            Some(v) => {
                let mut path = Vec::new();
                if let Err((path, bad, why)) = check_value(schema, &def.ty, v, &mut path) {
                    let at_path = if path.is_empty() {
                        String::new()
                    } else {
                        format!(" at \"{name}{path}\"")
                    };
                    return Err(at(format!(
                        "Variable \"${name}\" got invalid value {bad}{at_path}; {why}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `(path, offending value, reason)` of the first problem.
type ValueProblem = (String, String, String);

fn check_value(
    schema: &Schema,
    ty: &ast::Type,
    v: &Value,
    path: &mut Vec<String>,
) -> Result<(), ValueProblem> {
    let fail =
        |path: &Vec<String>, bad: &Value, why: String| Err((path.concat(), bad.to_string(), why));
    if v.is_null() {
        return if ty.is_non_null() {
            fail(
                path,
                v,
                format!("Expected non-nullable type \"{ty}\" not to be null."),
            )
        } else {
            Ok(())
        };
    }
    match ty {
        ast::Type::List(inner) | ast::Type::NonNullList(inner) => {
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(format!("[{i}]"));
                        check_value(schema, inner, item, path)?;
                        path.pop();
                    }
                    Ok(())
                }
                // Input coercion takes a single value as a list of one.
                single => check_value(schema, inner, single, path),
            }
        }
        ast::Type::Named(name) | ast::Type::NonNullNamed(name) => {
            let Some(def) = schema.types.get(name) else {
                return fail(path, v, format!("Unknown type \"{name}\"."));
            };
            match def {
                ExtendedType::Scalar(_) => check_scalar(name, v, path),
                ExtendedType::Enum(e) => match v.as_str() {
                    Some(s) if e.values.contains_key(s) => Ok(()),
                    Some(s) => fail(
                        path,
                        v,
                        format!("Value \"{s}\" does not exist in \"{name}\" enum."),
                    ),
                    None => fail(
                        path,
                        v,
                        format!("Enum \"{name}\" cannot represent non-string value: {v}."),
                    ),
                },
                ExtendedType::InputObject(input) => {
                    check_input_object(schema, name, input, v, path)
                }
                ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_) => {
                    fail(path, v, format!("Type \"{name}\" is not an input type."))
                }
            }
        }
    }
}

/// A value for a built-in scalar (custom scalars take anything here).
fn check_scalar(name: &str, v: &Value, path: &[String]) -> Result<(), ValueProblem> {
    let fail =
        |path: &[String], bad: &Value, why: String| Err((path.concat(), bad.to_string(), why));
    let ok = match name {
        "Int" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "Float" => v.is_number(),
        "String" => v.is_string(),
        "Boolean" => v.is_boolean(),
        "ID" => v.is_string() || v.is_i64() || v.is_u64(),
        // Custom scalars (DateTimeTz, Int64, GlobalId, ...) take what their server parses;
        // the simulators' resolvers check what they use.
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let why = match name {
        "Int" if v.is_number() => {
            format!("Int cannot represent non 32-bit signed integer value: {v}")
        }
        "Int" => format!("Int cannot represent non-integer value: {v}"),
        "Float" => format!("Float cannot represent non numeric value: {v}"),
        "String" => format!("String cannot represent a non string value: {v}"),
        "Boolean" => format!("Boolean cannot represent a non boolean value: {v}"),
        _ => format!("ID cannot represent value: {v}"),
    };
    fail(path, v, why)
}

/// A value for an input object: no unknown fields, every required field present, each field's
/// value checked in the schema's field order.
fn check_input_object(
    schema: &Schema,
    name: &str,
    input: &apollo_compiler::schema::InputObjectType,
    v: &Value,
    path: &mut Vec<String>,
) -> Result<(), ValueProblem> {
    let fail =
        |path: &Vec<String>, bad: &Value, why: String| Err((path.concat(), bad.to_string(), why));
    let Some(obj) = v.as_object() else {
        return fail(
            path,
            v,
            format!("Expected type \"{name}\" to be an object."),
        );
    };
    for key in obj.keys() {
        if !input.fields.contains_key(key.as_str()) {
            return fail(
                path,
                v,
                format!("Field \"{key}\" is not defined by type \"{name}\"."),
            );
        }
    }
    for (field_name, field) in &input.fields {
        match obj.get(field_name.as_str()) {
            None if field.ty.is_non_null() && field.default_value.is_none() => {
                return fail(
                    path,
                    v,
                    format!(
                        "Field \"{field_name}\" of required type \"{}\" was not provided.",
                        field.ty
                    ),
                )
            }
            None => {}
            Some(fv) => {
                path.push(format!(".{field_name}"));
                check_value(schema, &field.ty, fv, path)?;
                path.pop();
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UNVERIFIED marks and what documents use

/// Coordinates (`Type`, `Type.field`, `Type.field(arg:)`, `Input.field`, `Enum.VALUE`) of every element
/// whose line in `sdl` carries `# UNVERIFIED`. The mark belongs to the outermost element that ends on
/// that line: a field's closing line marks the field, an argument on its own line marks the argument.
pub fn unverified_elements(sdl: &str) -> BTreeSet<String> {
    unverified_lines(sdl).into_iter().map(|(_, c)| c).collect()
}

/// `(0-based line, coordinate)` of each UNVERIFIED element.
fn unverified_lines(sdl: &str) -> Vec<(usize, String)> {
    let Ok(doc) = ast::Document::parse(sdl, "schema.graphql") else {
        return Vec::new();
    };
    let lines: Vec<&str> = sdl.lines().collect();
    // Line (0-based) on which a node's text ends, trailing whitespace and comments aside.
    let end_line = |span: Option<apollo_compiler::parser::SourceSpan>| -> Option<usize> {
        let span = span?;
        let text = sdl.get(span.offset()..span.end_offset())?;
        let trimmed = text.trim_end();
        Some(sdl[..span.offset() + trimmed.len()].matches('\n').count())
    };
    let marked = |line: Option<usize>| {
        line.and_then(|l| lines.get(l))
            .is_some_and(|text| text.contains("# UNVERIFIED"))
    };
    let mut out = Vec::new();
    let mut fields = |type_name: &str, fields: &[apollo_compiler::Node<ast::FieldDefinition>]| {
        for f in fields {
            let line = end_line(f.location());
            if let (true, Some(l)) = (marked(line), line) {
                out.push((l, format!("{type_name}.{}", f.name)));
            }
            for a in &f.arguments {
                let arg_line = end_line(a.location());
                if let (true, true, Some(l)) = (arg_line != line, marked(arg_line), arg_line) {
                    out.push((l, format!("{type_name}.{}({}:)", f.name, a.name)));
                }
            }
        }
    };
    let mut type_marks = Vec::new();
    let mut inputs = Vec::new();
    for def in &doc.definitions {
        match def {
            ast::Definition::ObjectTypeDefinition(t) => fields(t.name.as_str(), &t.fields),
            ast::Definition::InterfaceTypeDefinition(t) => fields(t.name.as_str(), &t.fields),
            ast::Definition::InputObjectTypeDefinition(t) => {
                for f in &t.fields {
                    let line = end_line(f.location());
                    if let (true, Some(l)) = (marked(line), line) {
                        inputs.push((l, format!("{}.{}", t.name, f.name)));
                    }
                }
            }
            ast::Definition::EnumTypeDefinition(t) => {
                for v in &t.values {
                    let line = end_line(v.location());
                    if let (true, Some(l)) = (marked(line), line) {
                        inputs.push((l, format!("{}.{}", t.name, v.value)));
                    }
                }
            }
            ast::Definition::ScalarTypeDefinition(t) => {
                let line = end_line(t.location());
                if let (true, Some(l)) = (marked(line), line) {
                    type_marks.push((l, t.name.to_string()));
                }
            }
            _ => {}
        }
    }
    out.extend(type_marks);
    out.extend(inputs);
    out
}

/// Coordinates of the schema elements a valid document uses: selected fields (`Type.field`), arguments
/// passed (`Type.field(arg:)`), and input fields and enum values written literally in arguments. Input
/// fields sent through variables are not in the text, so they are not seen here.
pub fn used_elements(schema: &Schema, document: &ExecutableDocument) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let walk = |set: &SelectionSet, out: &mut BTreeSet<String>| {
        collect_selection(schema, set, out);
    };
    for op in document.operations.iter() {
        walk(&op.selection_set, &mut out);
    }
    for fragment in document.fragments.values() {
        walk(&fragment.selection_set, &mut out);
    }
    out
}

fn collect_selection(schema: &Schema, set: &SelectionSet, out: &mut BTreeSet<String>) {
    for s in &set.selections {
        match s {
            Selection::Field(f) => {
                if f.name.starts_with("__") {
                    continue;
                }
                out.insert(format!("{}.{}", set.ty, f.name));
                for arg in &f.arguments {
                    out.insert(format!("{}.{}({}:)", set.ty, f.name, arg.name));
                    if let Some(def) = f.definition.argument_by_name(&arg.name) {
                        collect_value(schema, &def.ty, &arg.value, out);
                    }
                }
                collect_selection(schema, &f.selection_set, out);
            }
            Selection::InlineFragment(i) => collect_selection(schema, &i.selection_set, out),
            // Fragment definitions are walked once by the caller.
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn collect_value(schema: &Schema, ty: &ast::Type, v: &ast::Value, out: &mut BTreeSet<String>) {
    match v {
        ast::Value::List(items) => {
            for item in items {
                collect_value(schema, ty.item_type(), item, out);
            }
        }
        ast::Value::Object(fields) => {
            if let Some(ExtendedType::InputObject(input)) = schema.types.get(ty.inner_named_type())
            {
                for (name, value) in fields {
                    out.insert(format!("{}.{name}", input.name));
                    if let Some(def) = input.fields.get(name) {
                        collect_value(schema, &def.ty, value, out);
                    }
                }
            }
        }
        ast::Value::Enum(value) => {
            out.insert(format!("{}.{value}", ty.inner_named_type()));
        }
        _ => {}
    }
}

/// The UNVERIFIED elements of `schema`'s SDL that a document uses.
pub fn unverified_used(
    schema: &ServedSchema,
    text: &str,
) -> Result<BTreeSet<String>, Vec<SchemaError>> {
    let doc = match &*schema.validate(text) {
        Ok(d) => d.clone(),
        Err(e) => return Err(e.clone()),
    };
    let marked = unverified_elements(schema.sdl());
    Ok(used_elements(schema.schema(), &doc)
        .into_iter()
        .filter(|c| marked.contains(c))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn both_schema_files_parse_and_validate() {
        assert!(centra_schema().schema().types.contains_key("StockChange"));
        assert!(cloudshelf_schema().schema().types.contains_key("Order"));
    }

    #[test]
    fn unknown_field_is_refused_with_the_graphql_js_message_and_location() {
        let s = centra_schema();
        let errors = validate_document(
            &s,
            "{\n  stockChangeConnection(last: 1) { edges { node { id description } } }\n}",
        )
        .unwrap_err();
        assert_eq!(
            errors[0].message,
            "Cannot query field \"description\" on type \"StockChange\"."
        );
        assert_eq!(
            errors[0].locations,
            vec![Location {
                line: 2,
                column: 54
            }]
        );
    }

    #[test]
    fn only_what_a_spec_server_reports() {
        let s = centra_schema();
        let e = validate_document(&s, "{ orders { nope } }").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].message,
            "Cannot query field \"nope\" on type \"Order\"."
        );
        let e = validate_document(&s, "mutation { changeStock(input: {").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].kind, SchemaErrorKind::Syntax);
        assert!(
            e[0].message.starts_with("Syntax Error: "),
            "{}",
            e[0].message
        );
        let e = validate_document(&s, "{ orders }").unwrap_err();
        assert!(
            e[0].message.contains("must have a selection of subfields"),
            "{e:?}"
        );
    }

    #[test]
    fn variables_are_checked_against_their_types() {
        let s = centra_schema();
        let q = "mutation M($input: StockChangeInput!) { changeStock(input: $input) { stockChange { id } } }";
        let ok = vars(
            json!({"input": {"description": "x", "intoWarehouse": {"id": 1},
            "productSizes": [{"productSize": {"SKU": "A"}, "deliveredQuantity": 1}]}}),
        );
        s.check_request(q, None, &ok).unwrap();

        let bad = vars(json!({"input": {"description": "x",
            "productSizes": [{"productSize": {"SKU": "A"}, "quantity": 1}]}}));
        let e = s.check_request(q, None, &bad).unwrap_err();
        assert_eq!(
            e[0].message,
            "Variable \"$input\" got invalid value {\"productSize\":{\"SKU\":\"A\"},\"quantity\":1} at \"input.productSizes[0]\"; Field \"quantity\" is not defined by type \"StockChangeProductSizeInput\"."
        );
        assert_eq!(
            e[0].locations,
            vec![Location {
                line: 1,
                column: 12
            }]
        );

        let e = s.check_request(q, None, &Map::new()).unwrap_err();
        assert_eq!(
            e[0].message,
            "Variable \"$input\" of required type \"StockChangeInput!\" was not provided."
        );
        let wrong = vars(json!({"input": {"description": 5}}));
        let e = s.check_request(q, None, &wrong).unwrap_err();
        assert!(
            e[0].message
                .contains("String cannot represent a non string value: 5"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn unverified_marks_go_to_the_outermost_element_ending_on_the_line() {
        let marked = unverified_elements(CENTRA_SDL);
        for expected in [
            "Query.warehouses",
            "Query.warehouses(limit:)",
            "Query.stockChangeConnection(before:)",
            "Query.stockChangeConnection(sort:)",
            "Query.stockChangeConnection",
            "StockChangeProductSizeInput.deliveredQuantity",
            "OrderStatus.ARCHIVED",
            "StockChangeType",
            "Query.stockChangeLines",
        ] {
            assert!(marked.contains(expected), "{expected} not in {marked:?}");
        }
        for not_marked in [
            "Query.stockChangeConnection(last:)",
            "Query.stockChangeConnection(where:)",
            "StockChange.comment",
            "Query.stockChangeLines(limit:)",
            "OrderStatus.SHIPPED",
        ] {
            assert!(!marked.contains(not_marked), "{not_marked} is marked");
        }
    }

    #[test]
    fn every_unverified_mark_belongs_to_exactly_one_element() {
        let attributed: Vec<usize> = unverified_lines(CENTRA_SDL)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        let unique: BTreeSet<usize> = attributed.iter().copied().collect();
        assert_eq!(unique.len(), attributed.len(), "a line marks two elements");
        let marked: BTreeSet<usize> = CENTRA_SDL
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains("# UNVERIFIED"))
            .map(|(i, _)| i)
            .collect();
        let unattributed: Vec<&str> = marked
            .difference(&unique)
            .map(|i| CENTRA_SDL.lines().nth(*i).unwrap_or_default())
            .collect();
        assert!(unattributed.is_empty(), "{unattributed:?}");
    }

    #[test]
    fn used_elements_cover_fields_arguments_and_literal_inputs() {
        let s = centra_schema();
        let used = unverified_used(
            &s,
            "query($w: Int!) { warehouses(where: { id: [$w] }, limit: 5) { id stock { productSize { SKU } } } }",
        )
        .unwrap();
        let used: Vec<&str> = used.iter().map(String::as_str).collect();
        assert_eq!(
            used,
            [
                "ProductSize.SKU",
                "Query.warehouses",
                "Query.warehouses(limit:)",
                "Stock.productSize",
                "Warehouse.stock",
                "WarehouseFilter.id",
            ]
        );
    }
}
