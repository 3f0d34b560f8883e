//! `shelfsync centra-check`: compare a live Centra's schema with the one the integration was written
//! against (`schema/centra/integration-subset.graphql`, embedded), confirm or refute each `UNVERIFIED`
//! element, and say which of our Centra documents the live schema rejects.
//!
//! Exit code: 0 when every document validates, 1 when one does not, 2 when Centra could not be reached,
//! refused the token or did not answer introspection.

use std::collections::BTreeSet;
use std::time::Duration;

use apollo_compiler::schema::ExtendedType;
use apollo_compiler::Schema;
use serde::Serialize;
use serde_json::{json, Value};
use simulators::schema::{centra_schema, unverified_elements, ServedSchema, CENTRA_SDL};

#[derive(clap::Args)]
pub struct CentraCheckArgs {
    /// Centra Integration API endpoint, e.g. https://<client>.centra.com/graphql.
    #[arg(long, env = "CENTRA_API_URL")]
    url: String,
    /// Integration API token (sent as `Authorization: Bearer <token>`).
    #[arg(long, env = "CENTRA_API_TOKEN", hide_env_values = true)]
    token: String,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// List every element of our schema, not only those that differ.
    #[arg(long)]
    verbose: bool,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

/// The standard introspection query (graphql-js `getIntrospectionQuery()` of the 2018 spec: no
/// `specifiedByURL`, `isRepeatable` or deprecated arguments, which older servers reject).
pub const INTROSPECTION_QUERY: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}"#;

/// How one element of our schema compares with the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Live has it, with the same type (nullability and list-ness included).
    Same,
    /// Live has it with another type.
    TypeDiffers,
    /// Live has a type of that name, but of another kind (e.g. an enum where we have a scalar).
    KindDiffers,
    /// Live does not have it.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Element {
    /// `Type`, `Type.field`, `Type.field(arg:)`, `Input.field` or `Enum.VALUE`.
    pub coordinate: String,
    /// `type`, `field`, `argument`, `input field`, `enum value`.
    pub kind: &'static str,
    /// The type in our file (the kind, for a type).
    pub ours: String,
    /// The type live, when it has the element.
    pub live: Option<String>,
    pub status: Status,
    pub unverified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentCheck {
    pub name: String,
    pub valid: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub elements: Vec<Element>,
    /// Live fields, input fields and enum values of our types that our file does not have (a renamed
    /// element shows up as missing here and present there).
    pub live_only: Vec<String>,
    pub documents: Vec<DocumentCheck>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.documents.iter().all(|d| d.valid) {
            0
        } else {
            1
        }
    }
}

pub async fn run(args: CentraCheckArgs) -> ! {
    let code = match introspect(&args.url, &args.token, args.timeout_secs).await {
        Err(e) => {
            if args.json {
                println!("{}", json!({"url": args.url, "error": e}));
            } else {
                eprintln!("centra-check: {e}");
            }
            2
        }
        Ok(introspection) => match live_schema(&introspection) {
            Err(e) => {
                eprintln!("centra-check: the introspection answer is not a usable schema: {e}");
                2
            }
            Ok(live) => {
                let report = compare(&args.url, &live);
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("report as JSON")
                    );
                } else {
                    print!("{}", render(&report, args.verbose));
                }
                report.exit_code()
            }
        },
    };
    std::process::exit(code)
}

/// The `data.__schema` of an introspection query, or why there is none.
pub async fn introspect(url: &str, token: &str, timeout_secs: u64) -> Result<Value, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({"query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery"}))
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{url}: answer lost: {e}"))?;
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(format!("{url} refused the token (HTTP {status})"));
    }
    if !status.is_success() {
        let head: String = body.chars().take(200).collect();
        return Err(format!("{url} answered HTTP {status}: {head}"));
    }
    let doc: Value = serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON ({e})"))?;
    if let Some(errors) = doc.get("errors").and_then(Value::as_array) {
        if !errors.is_empty() {
            let messages: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect();
            return Err(format!(
                "{url} refused introspection: {}",
                messages.join("; ")
            ));
        }
    }
    doc.pointer("/data/__schema")
        .cloned()
        .ok_or_else(|| format!("{url}: no data.__schema in the answer"))
}

/// Build a schema from an introspection result (rendered to SDL, then parsed).
pub fn live_schema(introspection: &Value) -> Result<ServedSchema, String> {
    ServedSchema::parse_lenient(
        &introspection_to_sdl(introspection)?,
        "live-introspection.graphql",
    )
}

fn type_ref(t: &Value) -> Result<String, String> {
    match t.get("kind").and_then(Value::as_str) {
        Some("NON_NULL") => Ok(format!("{}!", type_ref(&t["ofType"])?)),
        Some("LIST") => Ok(format!("[{}]", type_ref(&t["ofType"])?)),
        Some(_) => t
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("type reference without a name: {t}")),
        None => Err(format!("type reference without a kind: {t}")),
    }
}

fn input_values(list: &Value) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for v in list.as_array().into_iter().flatten() {
        let name = v["name"].as_str().ok_or("input value without a name")?;
        let mut s = format!("{name}: {}", type_ref(&v["type"])?);
        if let Some(default) = v.get("defaultValue").and_then(Value::as_str) {
            s.push_str(&format!(" = {default}"));
        }
        out.push(s);
    }
    Ok(out)
}

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];
const BUILT_IN_DIRECTIVES: [&str; 5] = ["skip", "include", "deprecated", "specifiedBy", "oneOf"];

/// Render an introspection `__schema` as SDL (descriptions and deprecations left out: validation does
/// not need them).
pub fn introspection_to_sdl(schema: &Value) -> Result<String, String> {
    let mut sdl = String::new();
    let root = |key: &str| schema[key]["name"].as_str().map(str::to_string);
    sdl.push_str("schema {\n");
    for (op, key) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        if let Some(name) = root(key) {
            sdl.push_str(&format!("  {op}: {name}\n"));
        }
    }
    sdl.push_str("}\n");
    let types = schema["types"]
        .as_array()
        .ok_or("introspection without types")?;
    for t in types {
        let name = t["name"].as_str().ok_or("type without a name")?;
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        let implements = |t: &Value| -> Result<String, String> {
            let names: Vec<String> = t["interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .map(type_ref)
                .collect::<Result<_, _>>()?;
            Ok(if names.is_empty() {
                String::new()
            } else {
                format!(" implements {}", names.join(" & "))
            })
        };
        match t["kind"].as_str() {
            Some("SCALAR") => sdl.push_str(&format!("scalar {name}\n")),
            Some(kind @ ("OBJECT" | "INTERFACE")) => {
                let keyword = if kind == "OBJECT" {
                    "type"
                } else {
                    "interface"
                };
                sdl.push_str(&format!("{keyword} {name}{} {{\n", implements(t)?));
                for f in t["fields"].as_array().into_iter().flatten() {
                    let fname = f["name"].as_str().ok_or("field without a name")?;
                    let args = input_values(&f["args"])?;
                    let args = if args.is_empty() {
                        String::new()
                    } else {
                        format!("({})", args.join(", "))
                    };
                    sdl.push_str(&format!("  {fname}{args}: {}\n", type_ref(&f["type"])?));
                }
                sdl.push_str("}\n");
            }
            Some("UNION") => {
                let members: Vec<String> = t["possibleTypes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(type_ref)
                    .collect::<Result<_, _>>()?;
                sdl.push_str(&format!("union {name} = {}\n", members.join(" | ")));
            }
            Some("ENUM") => {
                sdl.push_str(&format!("enum {name} {{\n"));
                for v in t["enumValues"].as_array().into_iter().flatten() {
                    sdl.push_str(&format!("  {}\n", v["name"].as_str().unwrap_or_default()));
                }
                sdl.push_str("}\n");
            }
            Some("INPUT_OBJECT") => {
                sdl.push_str(&format!("input {name} {{\n"));
                for f in input_values(&t["inputFields"])? {
                    sdl.push_str(&format!("  {f}\n"));
                }
                sdl.push_str("}\n");
            }
            other => return Err(format!("type {name} of unknown kind {other:?}")),
        }
    }
    for d in schema["directives"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or_default();
        if BUILT_IN_DIRECTIVES.contains(&name) {
            continue;
        }
        let args = input_values(&d["args"])?;
        let args = if args.is_empty() {
            String::new()
        } else {
            format!("({})", args.join(", "))
        };
        let locations: Vec<&str> = d["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        sdl.push_str(&format!(
            "directive @{name}{args} on {}\n",
            locations.join(" | ")
        ));
    }
    Ok(sdl)
}

fn kind_name(t: &ExtendedType) -> &'static str {
    match t {
        ExtendedType::Scalar(_) => "scalar",
        ExtendedType::Object(_) => "object",
        ExtendedType::Interface(_) => "interface",
        ExtendedType::Union(_) => "union",
        ExtendedType::Enum(_) => "enum",
        ExtendedType::InputObject(_) => "input object",
    }
}

/// Compare our schema with the live one, and validate our Centra documents against the live one.
pub fn compare(url: &str, live: &ServedSchema) -> Report {
    let ours = centra_schema();
    let marked = unverified_elements(CENTRA_SDL);
    let (elements, live_only) = compare_schemas(ours.schema(), live.schema(), &marked);
    let documents = shared::graphql_documents::all()
        .into_iter()
        .filter(|d| d.api == shared::graphql_documents::Api::Centra)
        .map(|d| {
            let errors = match simulators::schema::validate_document(live, &d.text) {
                Ok(()) => Vec::new(),
                Err(e) => e.iter().map(|e| e.to_string()).collect(),
            };
            DocumentCheck {
                name: d.name.to_string(),
                valid: errors.is_empty(),
                errors,
            }
        })
        .collect();
    Report {
        url: url.to_string(),
        elements,
        live_only,
        documents,
    }
}

/// Every element of `ours` against `live`; also what live has beside ours in the same types.
pub fn compare_schemas(
    ours: &Schema,
    live: &Schema,
    unverified: &BTreeSet<String>,
) -> (Vec<Element>, Vec<String>) {
    let mut out = Vec::new();
    let mut live_only = Vec::new();
    let push = |out: &mut Vec<Element>,
                coordinate: String,
                kind: &'static str,
                ours: String,
                live: Option<String>| {
        let status = match &live {
            None => Status::Missing,
            Some(l) if *l == ours => Status::Same,
            Some(_) => Status::TypeDiffers,
        };
        let unverified = unverified.contains(&coordinate);
        out.push(Element {
            coordinate,
            kind,
            ours,
            live,
            status,
            unverified,
        });
    };
    for (name, ty) in &ours.types {
        if ty.is_built_in() {
            continue;
        }
        let Some(live_ty) = live.types.get(name) else {
            push(
                &mut out,
                name.to_string(),
                "type",
                kind_name(ty).into(),
                None,
            );
            continue;
        };
        if kind_name(ty) != kind_name(live_ty) {
            let unverified_type = unverified.contains(name.as_str());
            out_kind_differs(&mut out, name.as_str(), ty, live_ty, unverified_type);
            continue;
        }
        push(
            &mut out,
            name.to_string(),
            "type",
            kind_name(ty).into(),
            Some(kind_name(live_ty).into()),
        );
        match (ty, live_ty) {
            (ExtendedType::Object(_), _) | (ExtendedType::Interface(_), _) => {
                let fields = |t: &ExtendedType| match t {
                    ExtendedType::Object(o) => o.fields.clone(),
                    ExtendedType::Interface(i) => i.fields.clone(),
                    _ => Default::default(),
                };
                let (ours_fields, live_fields) = (fields(ty), fields(live_ty));
                for (fname, f) in &ours_fields {
                    let coordinate = format!("{name}.{fname}");
                    let lf = live_fields.get(fname);
                    push(
                        &mut out,
                        coordinate.clone(),
                        "field",
                        f.ty.to_string(),
                        lf.map(|l| l.ty.to_string()),
                    );
                    for a in &f.arguments {
                        let la = lf.and_then(|l| l.arguments.iter().find(|x| x.name == a.name));
                        push(
                            &mut out,
                            format!("{coordinate}({}:)", a.name),
                            "argument",
                            a.ty.to_string(),
                            la.map(|l| l.ty.to_string()),
                        );
                    }
                }
                live_only.extend(
                    live_fields
                        .keys()
                        .filter(|k| !ours_fields.contains_key(*k))
                        .map(|k| format!("{name}.{k}")),
                );
            }
            (ExtendedType::InputObject(o), ExtendedType::InputObject(l)) => {
                for (fname, f) in &o.fields {
                    push(
                        &mut out,
                        format!("{name}.{fname}"),
                        "input field",
                        f.ty.to_string(),
                        l.fields.get(fname).map(|l| l.ty.to_string()),
                    );
                }
                live_only.extend(
                    l.fields
                        .keys()
                        .filter(|k| !o.fields.contains_key(*k))
                        .map(|k| format!("{name}.{k}")),
                );
            }
            (ExtendedType::Enum(o), ExtendedType::Enum(l)) => {
                for v in o.values.keys() {
                    push(
                        &mut out,
                        format!("{name}.{v}"),
                        "enum value",
                        "value".into(),
                        l.values.contains_key(v).then(|| "value".to_string()),
                    );
                }
                live_only.extend(
                    l.values
                        .keys()
                        .filter(|k| !o.values.contains_key(*k))
                        .map(|k| format!("{name}.{k}")),
                );
            }
            (ExtendedType::Union(o), ExtendedType::Union(l)) => {
                for m in &o.members {
                    push(
                        &mut out,
                        format!("{name}|{}", m.name),
                        "union member",
                        "member".into(),
                        l.members.contains(&m.name).then(|| "member".to_string()),
                    );
                }
            }
            _ => {}
        }
    }
    (out, live_only)
}

/// A type whose kind differs (e.g. our `scalar StockChangeType` placeholder against a live enum):
/// what live has is the news, so its values or fields are named.
fn out_kind_differs(
    out: &mut Vec<Element>,
    name: &str,
    ours: &ExtendedType,
    live: &ExtendedType,
    unverified: bool,
) {
    let detail = match live {
        ExtendedType::Enum(e) => format!(
            "enum {{ {} }}",
            e.values
                .keys()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => kind_name(other).to_string(),
    };
    out.push(Element {
        coordinate: name.to_string(),
        kind: "type",
        ours: kind_name(ours).into(),
        live: Some(detail),
        status: Status::KindDiffers,
        unverified,
    });
}

fn describe(e: &Element) -> String {
    match e.status {
        Status::Same => format!("{} ({})", e.coordinate, e.ours),
        Status::Missing => format!("{}: live has no such {}", e.coordinate, e.kind),
        Status::TypeDiffers => format!(
            "{}: ours {}, live {}",
            e.coordinate,
            e.ours,
            e.live.as_deref().unwrap_or("?")
        ),
        Status::KindDiffers => format!(
            "{}: ours a {}, live {}",
            e.coordinate,
            e.ours,
            e.live.as_deref().unwrap_or("?")
        ),
    }
}

/// The human-readable report.
pub fn render(report: &Report, verbose: bool) -> String {
    let mut s = String::new();
    let same = report
        .elements
        .iter()
        .filter(|e| e.status == Status::Same)
        .count();
    s.push_str(&format!(
        "Centra schema check against {}\n\n== Our schema (schema/centra/integration-subset.graphql) ==\n{} of {} elements (types, fields, arguments, input fields, enum values) match the live schema.\n",
        report.url,
        same,
        report.elements.len()
    ));
    for e in &report.elements {
        if e.status != Status::Same {
            s.push_str(&format!("  DIFFERS  {}\n", describe(e)));
        } else if verbose {
            s.push_str(&format!("  same     {}\n", describe(e)));
        }
    }
    if !report.live_only.is_empty() {
        s.push_str(&format!(
            "Live also has, in our types: {}\n",
            report.live_only.join(", ")
        ));
    }
    let unverified: Vec<&Element> = report.elements.iter().filter(|e| e.unverified).collect();
    let confirmed = unverified
        .iter()
        .filter(|e| e.status == Status::Same)
        .count();
    s.push_str(&format!(
        "\n== UNVERIFIED elements ==\n{confirmed} of {} confirmed.\n",
        unverified.len()
    ));
    for e in &unverified {
        let verdict = if e.status == Status::Same {
            "confirmed"
        } else {
            "DIFFERS  "
        };
        s.push_str(&format!("  {verdict} {}\n", describe(e)));
    }
    s.push_str("\n== Our Centra documents against the live schema ==\n");
    for d in &report.documents {
        if d.valid {
            s.push_str(&format!("  valid    {}\n", d.name));
        } else {
            s.push_str(&format!("  INVALID  {}: {}\n", d.name, d.errors.join("; ")));
        }
    }
    let invalid = report.documents.iter().filter(|d| !d.valid).count();
    s.push_str(&format!(
        "\n{}\n",
        if invalid == 0 {
            "Every document validates against the live schema.".to_string()
        } else {
            format!("{invalid} document(s) do not validate against the live schema.")
        }
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(sdl: &str) -> ServedSchema {
        ServedSchema::parse(sdl, "t.graphql").unwrap()
    }

    #[test]
    fn introspection_renders_back_to_an_equivalent_schema() {
        // Introspect our own schema through the simulator's executor, render, compare: no difference.
        let ours = centra_schema();
        let checked = ours
            .check_request(INTROSPECTION_QUERY, None, &serde_json::Map::new())
            .unwrap();
        let data = ours.introspect(&checked, &serde_json::Map::new()).unwrap();
        let live = live_schema(&data["__schema"]).unwrap();
        let (elements, live_only) = compare_schemas(ours.schema(), live.schema(), &BTreeSet::new());
        let differing: Vec<String> = elements
            .iter()
            .filter(|e| e.status != Status::Same)
            .map(describe)
            .collect();
        assert!(differing.is_empty(), "{differing:?}");
        assert!(live_only.is_empty(), "{live_only:?}");
        assert!(elements.len() > 500, "{}", elements.len());
    }

    #[test]
    fn differences_are_named() {
        let ours = served(
            "type Query { a(x: Int, y: String): [String!]! b: Int }\nenum E { A B }\ninput I { q: Int! }\nscalar S\n",
        );
        let live = served(
            "type Query { a(x: Int!): [String!] c: Int }\nenum E { A }\ninput I { quantity: Int! }\nenum S { ONE TWO }\n",
        );
        let marked: BTreeSet<String> = ["Query.b".to_string()].into();
        let (elements, live_only) = compare_schemas(ours.schema(), live.schema(), &marked);
        let status_of = |c: &str| {
            elements
                .iter()
                .find(|e| e.coordinate == c)
                .unwrap_or_else(|| panic!("{c} not compared"))
                .status
        };
        assert_eq!(status_of("Query.a"), Status::TypeDiffers);
        assert_eq!(status_of("Query.a(x:)"), Status::TypeDiffers);
        assert_eq!(status_of("Query.a(y:)"), Status::Missing);
        assert_eq!(status_of("Query.b"), Status::Missing);
        assert_eq!(status_of("E.A"), Status::Same);
        assert_eq!(status_of("E.B"), Status::Missing);
        assert_eq!(status_of("I.q"), Status::Missing);
        assert_eq!(status_of("S"), Status::KindDiffers);
        assert!(
            elements
                .iter()
                .find(|e| e.coordinate == "Query.b")
                .unwrap()
                .unverified
        );
        assert_eq!(live_only, ["Query.c", "I.quantity"]);
    }
}
