//! Centra's awkward answers, as the simulator models them: each mode, its default, and the request log
//! that says what happened.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::centra::{
    CentraBehaviour, CentraSim, CentraSimConfig, DuplicateSizes, Fault, PathStyle, RateTier,
    RefusalKind, RequestLogKind, RetryAfterStyle, SizeRefusal, UnknownSizes,
};

const WH: u64 = 12;

const CHANGE_STOCK: &str = "mutation ChangeStock($input: StockChangeInput!) {
  changeStock(input: $input) { stockChange { id } userErrors { message path } userWarnings { message path } }
}";
const SET_STOCK: &str = "mutation SetStock($input: StockSetInput!) {
  setStock(input: $input) { stockChanges { id } userErrors { message path } userWarnings { message path } }
}";

async fn sim_with(config: CentraSimConfig) -> CentraSim {
    let sim = CentraSim::start(config).await;
    sim.add_warehouse(WH, "Store Stockholm");
    sim.add_size("S", Some("7350000000012"), true);
    sim.add_size("M", Some("7350000000029"), true);
    sim.add_size("L", None, true);
    for sku in ["S", "M", "L"] {
        sim.set_physical(WH, sku, 10);
    }
    sim
}

async fn sim() -> CentraSim {
    sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn gql(sim: &CentraSim, query: &str, variables: Value) -> Reply {
    let resp = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

fn sale(description: &str, lines: Value) -> Value {
    json!({"input": {"outFromWarehouse": {"id": WH}, "description": description, "productSizes": lines}})
}

fn count(lines: Value) -> Value {
    json!({"input": {"warehouse": {"id": WH}, "description": "count", "stockQuantityType": "PHYSICAL", "productSizes": lines}})
}

fn physical(sim: &CentraSim, sku: &str) -> i64 {
    sim.stock(WH, sku).unwrap().physical
}

#[tokio::test]
async fn a_size_named_twice_applies_the_first_line_and_skips_the_rest_by_default() {
    let sim = sim().await;
    // S by SKU, then by EAN, then by SKU again; M once.
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "twice",
            json!([
                {"productSize": {"SKU": "S"}, "deliveredQuantity": 2},
                {"productSize": {"EAN": "7350000000012"}, "deliveredQuantity": 3},
                {"productSize": {"SKU": "M"}, "deliveredQuantity": 1},
                {"productSize": {"any": "S"}, "deliveredQuantity": 4},
            ]),
        ),
    )
    .await;
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["userErrors"], json!([]), "{}", r.body);
    assert_eq!(payload["stockChange"]["id"], json!(1));
    let warnings = payload["userWarnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0]["path"], json!(["input", "productSizes", 1]));
    assert_eq!(warnings[1]["path"], json!(["input", "productSizes", 3]));
    assert!(warnings[0]["message"].as_str().unwrap().contains("skipped"));
    assert_eq!((physical(&sim, "S"), physical(&sim, "M")), (8, 9));

    // setStock alike: the first quantity wins.
    let r = gql(
        &sim,
        SET_STOCK,
        count(json!([
            {"productSize": {"SKU": "L"}, "quantity": 5},
            {"productSize": {"SKU": "L"}, "quantity": 7},
        ])),
    )
    .await;
    assert_eq!(
        r.body["data"]["setStock"]["userWarnings"][0]["path"],
        json!(["input", "productSizes", 1])
    );
    assert_eq!(physical(&sim, "L"), 5);
    assert_eq!(sim.stock_changes()[1].lines.len(), 1);
}

#[tokio::test]
async fn a_size_named_twice_can_be_summed_instead() {
    let sim = sim().await;
    sim.set_behaviour(CentraBehaviour {
        duplicate_sizes: DuplicateSizes::Sum,
        ..CentraBehaviour::default()
    });
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "twice",
            json!([
                {"productSize": {"SKU": "S"}, "deliveredQuantity": 2},
                {"productSize": {"EAN": "7350000000012"}, "deliveredQuantity": 3},
            ]),
        ),
    )
    .await;
    assert_eq!(r.body["data"]["changeStock"]["userWarnings"], json!([]));
    assert_eq!(physical(&sim, "S"), 5);
    let change = &sim.stock_changes()[0];
    assert_eq!(change.lines.len(), 1);
    assert_eq!(change.lines[0].delivered_quantity, 5);
}

#[tokio::test]
async fn an_unknown_size_refuses_the_mutation_or_is_skipped() {
    let sim = sim().await;
    let lines = json!([
        {"productSize": {"SKU": "S"}, "deliveredQuantity": 1},
        {"productSize": {"SKU": "NOPE"}, "deliveredQuantity": 1},
    ]);
    let r = gql(&sim, CHANGE_STOCK, sale("typo", lines.clone())).await;
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["stockChange"], Value::Null);
    assert_eq!(
        payload["userErrors"],
        json!([{"message": "Product size not found: SKU \"NOPE\"", "path": ["input", "productSizes", 1, "productSize"]}])
    );
    assert_eq!(physical(&sim, "S"), 10);

    sim.set_behaviour(CentraBehaviour {
        unknown_sizes: UnknownSizes::SkipLine,
        ..CentraBehaviour::default()
    });
    let r = gql(&sim, CHANGE_STOCK, sale("typo", lines)).await;
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["stockChange"]["id"], json!(1));
    assert_eq!(
        payload["userWarnings"][0]["path"],
        json!(["input", "productSizes", 1, "productSize"])
    );
    assert_eq!(physical(&sim, "S"), 9);
}

#[tokio::test]
async fn a_refused_size_is_an_error_or_a_skipping_warning() {
    let sim = sim().await;
    sim.refuse_size(
        "M",
        Some(SizeRefusal {
            kind: RefusalKind::Error,
            message: "Product size is a bundle".into(),
        }),
    );
    let lines = json!([
        {"productSize": {"SKU": "S"}, "deliveredQuantity": 1},
        {"productSize": {"EAN": "7350000000029"}, "deliveredQuantity": 1},
    ]);
    let r = gql(&sim, CHANGE_STOCK, sale("refused", lines.clone())).await;
    assert_eq!(
        r.body["data"]["changeStock"]["userErrors"],
        json!([{"message": "Product size is a bundle", "path": ["input", "productSizes", 1, "productSize"]}])
    );
    assert!(sim.stock_changes().is_empty());

    sim.refuse_size(
        "M",
        Some(SizeRefusal {
            kind: RefusalKind::Warning,
            message: "Product size is locked; skipped".into(),
        }),
    );
    let r = gql(&sim, CHANGE_STOCK, sale("refused", lines.clone())).await;
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(
        payload["userWarnings"],
        json!([{"message": "Product size is locked; skipped", "path": ["input", "productSizes", 1, "productSize"]}])
    );
    assert_eq!((physical(&sim, "S"), physical(&sim, "M")), (9, 10));

    sim.refuse_size("M", None);
    let r = gql(&sim, CHANGE_STOCK, sale("refused", lines)).await;
    assert_eq!(r.body["data"]["changeStock"]["userWarnings"], json!([]));
    assert_eq!(physical(&sim, "M"), 9);
}

#[tokio::test]
async fn paths_can_carry_string_indexes_or_be_null() {
    let sim = sim().await;
    let lines = json!([
        {"productSize": {"SKU": "S"}, "deliveredQuantity": 1},
        {"productSize": {"SKU": "NOPE"}, "deliveredQuantity": 1},
    ]);
    sim.set_behaviour(CentraBehaviour {
        path_style: PathStyle::Strings,
        ..CentraBehaviour::default()
    });
    let r = gql(&sim, CHANGE_STOCK, sale("x", lines.clone())).await;
    assert_eq!(
        r.body["data"]["changeStock"]["userErrors"][0]["path"],
        json!(["input", "productSizes", "1", "productSize"])
    );
    sim.set_behaviour(CentraBehaviour {
        path_style: PathStyle::Null,
        ..CentraBehaviour::default()
    });
    let r = gql(&sim, CHANGE_STOCK, sale("x", lines)).await;
    assert_eq!(
        r.body["data"]["changeStock"]["userErrors"],
        json!([{"message": "Product size not found: SKU \"NOPE\"", "path": null}])
    );
}

#[tokio::test]
async fn errors_beside_data_come_with_an_applied_mutation() {
    let sim = sim().await;
    sim.inject(Fault::ErrorsBesideData {
        message: "Internal server error".into(),
    });
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "both",
            json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["data"]["changeStock"]["stockChange"],
        json!({"id": 1})
    );
    assert_eq!(
        r.body["errors"],
        json!([{"message": "Internal server error", "path": ["changeStock"], "extensions": {"category": "internal"}}])
    );
    assert_eq!(physical(&sim, "S"), 9);
}

#[tokio::test]
async fn apply_then_status_applies_and_answers_a_gateway_error() {
    let sim = sim().await;
    sim.inject(Fault::ApplyThenStatus(504));
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "Cloudshelf push 7",
            json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        r.body.is_string(),
        "a non-JSON body, as a gateway sends: {}",
        r.body
    );
    assert_eq!(physical(&sim, "S"), 9);
    let log = sim.requests();
    let entry = log.last().unwrap();
    assert_eq!(entry.kind, RequestLogKind::Mutation);
    assert_eq!(entry.operation_name.as_deref(), Some("ChangeStock"));
    assert_eq!(entry.root_fields, ["changeStock"]);
    assert_eq!(entry.descriptions, ["Cloudshelf push 7"]);
    assert_eq!((entry.status, entry.applied), (504, true));
    assert!(!entry.response_lost);
}

#[tokio::test]
async fn lost_answers_are_logged_as_applied() {
    let sim = sim().await;
    sim.inject(Fault::LoseResponseAfterApply);
    let before = chrono::Utc::now().timestamp_millis();
    let sent = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": CHANGE_STOCK, "variables": sale("lost", json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]))}))
        .send()
        .await;
    if let Ok(resp) = sent {
        assert!(resp.bytes().await.is_err(), "the body must not arrive");
    }
    sim.wait_idle().await;
    let entry = sim.requests().pop().unwrap();
    assert!(entry.applied && entry.response_lost, "{entry:?}");
    assert_eq!(entry.status, 200);
    assert!(entry.received_at_ms >= before);
}

/// One refill per 3 minutes, so the wait for the 21st mutation is known: 180 s.
fn burst_config(style: RetryAfterStyle) -> CentraSimConfig {
    CentraSimConfig {
        tier: RateTier::Growth,
        retry_after_style: style,
        short_window: Duration::from_secs(3600),
        ..CentraSimConfig::default()
    }
}

async fn twenty_first_mutation(sim: &CentraSim) -> Reply {
    sim.set_physical(WH, "S", 100);
    let mut last = None;
    for i in 0..21 {
        let r = gql(
            sim,
            CHANGE_STOCK,
            sale(
                &format!("burst {i}"),
                json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]),
            ),
        )
        .await;
        last = Some(r);
    }
    let last = last.unwrap();
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS);
    last
}

#[tokio::test]
async fn retry_after_forms_state_an_instant_never_before_the_real_one() {
    for style in [
        RetryAfterStyle::HttpDate,
        RetryAfterStyle::Seconds,
        RetryAfterStyle::UnixTimestamp,
    ] {
        let sim = sim_with(burst_config(style)).await;
        let r = twenty_first_mutation(&sim).await;
        let header = r.headers["retry-after"].to_str().unwrap().to_string();
        let entry = sim.requests().pop().unwrap();
        assert_eq!(entry.status, 429);
        assert!(!entry.applied);
        let retry_at = entry.retry_at_ms.expect("a 429 logs its retry instant");
        // The real instant: one token refills 180 s after the 20th mutation.
        let real = entry.received_at_ms + 180_000;
        assert!(
            retry_at >= real - 1_000 && retry_at <= real + 2_000,
            "{style:?}: {retry_at} vs {real}"
        );
        let stated = match style {
            RetryAfterStyle::HttpDate => chrono::DateTime::parse_from_rfc2822(&header)
                .expect("HTTP-date")
                .timestamp_millis(),
            RetryAfterStyle::UnixTimestamp => {
                let secs: i64 = header.parse().expect("Unix seconds");
                assert!(secs > 1_000_000_000, "{header}");
                secs * 1000
            }
            RetryAfterStyle::Seconds => {
                let secs: i64 = header.parse().expect("delta seconds");
                assert!((180..=181).contains(&secs), "{header}");
                retry_at
            }
        };
        assert_eq!(stated, retry_at, "{style:?}: header {header}");
        if style != RetryAfterStyle::Seconds {
            assert_eq!(retry_at % 1000, 0, "whole seconds, rounded up");
        }
    }
}

#[tokio::test]
async fn an_injected_rate_limit_logs_the_stated_instant_rounded_up() {
    let sim = sim().await;
    sim.inject(Fault::RateLimited {
        retry_after: Duration::from_millis(1500),
    });
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "x",
            json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let entry = sim.requests().pop().unwrap();
    let date = chrono::DateTime::parse_from_rfc2822(r.headers["retry-after"].to_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(entry.retry_at_ms, Some(date));
    assert!(date >= entry.received_at_ms + 1500);
    assert!(date <= entry.received_at_ms + 1500 + 1000 + 500);
}

#[tokio::test]
async fn a_busy_audit_trail_buries_our_change_but_the_comment_filter_finds_it() {
    let sim = sim().await;
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "Cloudshelf push evt-42",
            json!([{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    let ours = r.body["data"]["changeStock"]["stockChange"]["id"].clone();
    let others = sim.add_unrelated_stock_changes(WH, 600);
    assert_eq!(others.len(), 600);
    assert_eq!(
        physical(&sim, "S"),
        9,
        "someone else's changes move nothing"
    );

    let newest = gql(
        &sim,
        "{ stockChangeConnection(last: 100) { totalCount edges { node { id comment } } } }",
        json!({}),
    )
    .await;
    let conn = &newest.body["data"]["stockChangeConnection"];
    assert_eq!(conn["totalCount"], json!(601));
    assert!(conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["node"]["id"] != ours));

    let found = gql(
        &sim,
        "query($c: String!) { stockChangeConnection(where: { comment: { equals: $c } }, last: 1) { edges { node { id } } } }",
        json!({"c": "Cloudshelf push evt-42"}),
    )
    .await;
    assert_eq!(
        found.body["data"]["stockChangeConnection"]["edges"],
        json!([{"node": {"id": ours}}])
    );
}
