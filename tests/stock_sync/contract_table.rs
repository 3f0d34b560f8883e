//! The refusals table of `docs/store-events-v1.md`, read from the document itself, so the contract and what the
//! product answers cannot drift apart.
//!
//! A row's request is one of (in backticks):
//! - `patch <json>`: the contract's example event with this JSON merge patch (RFC 7386) applied;
//! - `raw <text>`: this body as is (`{now}` stands for a valid `occurred_at`);
//! - `header <name>: <value>`: the example event with that header replaced (an empty value leaves it out);
//! - `padded <bytes>`: the example event followed by spaces up to this size;
//! - `signature wrong|stale`: the example signed with another secret, or 10 minutes ago;
//! - `reuse <json>`: the example accepted under an id, then this merge patch sent under the same id.

use blackbox::{at, sign, Answer, Size, World, SECRET};
use serde_json::Value;

const CONTRACT: &str = include_str!("../../docs/store-events-v1.md");

pub struct Row {
    pub number: String,
    pub request: String,
    pub status: u16,
    pub code: Option<String>,
    pub field: Option<String>,
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_string()
}

fn optional(cell: &str) -> Option<String> {
    let v = unquote(cell);
    (!v.is_empty() && v != "—" && v != "-").then_some(v)
}

/// The rows of the table under the heading "Refusals by example".
pub fn rows() -> Vec<Row> {
    let section = CONTRACT
        .split("## Refusals by example")
        .nth(1)
        .expect("docs/store-events-v1.md has a section \"Refusals by example\"");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            // A `|` inside backticks is escaped in the document as `\|`.
            let cells: Vec<String> = l
                .trim()
                .trim_matches('|')
                .replace("\\|", "\u{1}")
                .split('|')
                .map(|c| c.replace('\u{1}', "|"))
                .collect();
            assert_eq!(cells.len(), 5, "a refusals row has 5 cells: {l}");
            Row {
                number: unquote(&cells[0]),
                request: unquote(&cells[1]),
                status: unquote(&cells[2]).parse().expect("a status"),
                code: optional(&cells[3]),
                field: optional(&cells[4]),
            }
        })
        .collect()
}

/// The example event of the contract's "Body" section.
fn example() -> Value {
    let body = CONTRACT
        .split("## Body")
        .nth(1)
        .and_then(|s| s.split("```json").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the contract shows an example body");
    let mut v: Value = serde_json::from_str(body).expect("the example is JSON");
    v["occurred_at"] = Value::String(at(1, 0));
    v
}

/// The sizes the example names (Centra knows them).
pub fn example_sizes() -> Vec<Size> {
    vec![
        Size {
            sku: "Prod123Var123789S".into(),
            ean: "7350000000029".into(),
        },
        Size {
            sku: "Prod123Var123790M".into(),
            ean: "7350000000012".into(),
        },
    ]
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub async fn send(world: &World, row: &Row) -> Answer {
    let id = format!("table-{}", row.number);
    let (verb, rest) = row.request.split_once(' ').unwrap_or((&row.request, ""));
    match verb {
        "patch" => {
            let mut body = example();
            merge_patch(
                &mut body,
                &serde_json::from_str(rest).expect("patch is JSON"),
            );
            world.send(&id, &body).await
        }
        "raw" => {
            world
                .send_bytes(&id, rest.replace("{now}", &at(1, 0)).as_bytes(), &[])
                .await
        }
        "header" => {
            let (name, value) = rest.split_once(':').expect("header <name>: <value>");
            world
                .send_bytes(
                    &id,
                    example().to_string().as_bytes(),
                    &[(name.trim(), value.trim())],
                )
                .await
        }
        "padded" => {
            let size: usize = rest.parse().expect("padded <bytes>");
            let mut body = example().to_string().into_bytes();
            body.resize(size, b' ');
            world.send_bytes(&id, &body, &[]).await
        }
        "signature" => {
            let body = example().to_string();
            let (secret, ts) = match rest {
                "wrong" => (
                    "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGhlLXRhYmxl",
                    chrono::Utc::now().timestamp(),
                ),
                "stale" => (SECRET, chrono::Utc::now().timestamp() - 600),
                other => panic!("signature {other}?"),
            };
            let ts = ts.to_string();
            let signature = sign(secret, &id, ts.parse().unwrap(), body.as_bytes());
            world
                .send_bytes(
                    &id,
                    body.as_bytes(),
                    &[
                        ("webhook-timestamp", &ts),
                        ("webhook-signature", &signature),
                    ],
                )
                .await
        }
        "reuse" => {
            let first = world.send(&id, &example()).await;
            assert_eq!(
                first.status, 202,
                "row {}: the first use is accepted",
                row.number
            );
            let mut body = example();
            merge_patch(
                &mut body,
                &serde_json::from_str(rest).expect("patch is JSON"),
            );
            world.send(&id, &body).await
        }
        other => panic!("row {}: unknown request kind {other}", row.number),
    }
}
