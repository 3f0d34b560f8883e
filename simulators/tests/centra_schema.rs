//! The Centra simulator serves the published schema: what is outside it is refused before anything runs,
//! introspection answers from it, and the audit trail reads use its names (`comment`, `lines`, filters,
//! Relay paging).

use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::centra::{CentraSim, CentraSimConfig, LimitType, RequestLogKind};

const WH: u64 = 12;
const OTHER_WH: u64 = 14;

const CHANGE_STOCK: &str = "mutation change($input: StockChangeInput!) {
  changeStock(input: $input) { stockChange { id } userErrors { message path } userWarnings { message path } }
}";

async fn sim_with(config: CentraSimConfig) -> CentraSim {
    let sim = CentraSim::start(config).await;
    sim.add_warehouse(WH, "Store Stockholm");
    sim.add_warehouse(OTHER_WH, "Store Oslo");
    sim.add_size("Prod1Var1S", Some("7350000000012"), true);
    sim.add_size("Prod1Var1M", Some("7350000000029"), true);
    sim.set_physical(WH, "Prod1Var1S", 10);
    sim.set_physical(WH, "Prod1Var1M", 5);
    sim
}

async fn sim() -> CentraSim {
    sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await
}

async fn gql(sim: &CentraSim, query: &str, variables: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn sale(warehouse: u64, description: &str, lines: Value) -> Value {
    json!({"input": {"outFromWarehouse": {"id": warehouse}, "description": description, "productSizes": lines}})
}

fn one(sku: &str, qty: i64) -> Value {
    json!([{"productSize": {"SKU": sku}, "deliveredQuantity": qty}])
}

fn used_requests(sim: &CentraSim) -> u64 {
    sim.rate_limits()
        .into_iter()
        .find(|s| s.limit_type == LimitType::RequestCount)
        .unwrap()
        .used_quota
}

#[tokio::test]
async fn a_field_outside_the_schema_is_refused_whole_before_faults_and_rate_limits() {
    let sim = sim_with(CentraSimConfig::default()).await;
    sim.inject_on(
        simulators::centra::FaultTarget::Queries,
        simulators::centra::Fault::ServerError(503),
    );
    let query = "query StockChanges {\n  stockChangeConnection(last: 10) {\n    edges { node { id description createdAt } }\n  }\n}";
    let (status, body) = gql(&sim, query, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"errors": [{
            "message": "Cannot query field \"description\" on type \"StockChange\".",
            "locations": [{"line": 3, "column": 23}],
            "extensions": {"category": "graphql"},
        }]})
    );
    assert_eq!(used_requests(&sim), 0, "no rate-limit token used");
    assert_eq!(sim.pending_faults(), 1, "no fault used");
    let log = sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, RequestLogKind::Unknown);
    assert_eq!((log[0].status, log[0].applied), (200, false));

    // The same document with the schema's name passes (and now meets the fault).
    let (status, _) = gql(&sim, &query.replace("description", "comment"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_bad_variable_is_refused_and_nothing_applies() {
    let sim = sim().await;
    // A string quantity and an unknown input field, one at a time.
    let bad_type = json!({"input": {"outFromWarehouse": {"id": WH}, "description": "x",
        "productSizes": [{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": "2"}]}});
    let (_, body) = gql(&sim, CHANGE_STOCK, bad_type).await;
    assert_eq!(
        body["errors"][0]["message"],
        json!("Variable \"$input\" got invalid value \"2\" at \"input.productSizes[0].deliveredQuantity\"; Int cannot represent non-integer value: \"2\"")
    );
    assert!(body.get("data").is_none());
    let unknown = json!({"input": {"outFromWarehouse": {"id": WH}, "description": "x", "comment": "y",
        "productSizes": [{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 2}]}});
    let (_, body) = gql(&sim, CHANGE_STOCK, unknown).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("Field \"comment\" is not defined by type \"StockChangeInput\"."),
        "{body}"
    );
    let (_, body) = gql(&sim, CHANGE_STOCK, json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        json!("Variable \"$input\" of required type \"StockChangeInput!\" was not provided.")
    );
    assert!(sim.stock_changes().is_empty());
    assert_eq!(sim.stock(WH, "Prod1Var1S").unwrap().physical, 10);
}

#[tokio::test]
async fn introspection_answers_from_the_served_schema() {
    let sim = sim().await;
    let (_, body) = gql(
        &sim,
        r#"{ __schema { queryType { name } mutationType { name } }
             __type(name: "StockChange") { fields { name } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"],
        json!("Query")
    );
    assert_eq!(
        body["data"]["__schema"]["mutationType"]["name"],
        json!("Mutation")
    );
    let fields: Vec<&str> = body["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["id", "createdAt", "comment", "type", "lines", "warehouse"]
    );

    // Mixed with a concrete field, both parts answer.
    let (_, body) = gql(
        &sim,
        "{ rateLimits(where: { type: [MUTATION_COUNT], intervalSeconds: [TEN_SECONDS] }) { quota } t: __type(name: \"PageInfo\") { name } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"],
        json!({"rateLimits": [{"quota": 20}], "t": {"name": "PageInfo"}})
    );

    // Another SDL, another answer (and other documents refused).
    let other = simulators::schema::CENTRA_SDL
        .replace("  totalCount: Int! # UNVERIFIED: name (stripped)\n", "");
    let sim = sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        schema_sdl: Some(other),
        ..CentraSimConfig::default()
    })
    .await;
    let (_, body) = gql(
        &sim,
        "{ __type(name: \"StockChangeConnection\") { fields { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["__type"]["fields"],
        json!([{"name": "edges"}, {"name": "pageInfo"}])
    );
    let (_, body) = gql(&sim, "{ stockChangeConnection { totalCount } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        json!("Cannot query field \"totalCount\" on type \"StockChangeConnection\".")
    );
}

/// Three pushes and two changes by others; returns the ids of the pushes.
async fn audit_trail(sim: &CentraSim) -> Vec<u64> {
    let mut ids = Vec::new();
    for (wh, text) in [
        (WH, "Cloudshelf push evt-1"),
        (OTHER_WH, "Cloudshelf push evt-2"),
        (WH, "Cloudshelf push evt-3"),
    ] {
        let input = if wh == WH {
            sale(wh, text, one("Prod1Var1S", 1))
        } else {
            json!({"input": {"intoWarehouse": {"id": wh}, "description": text, "productSizes": one("Prod1Var1M", 4)}})
        };
        let (_, body) = gql(sim, CHANGE_STOCK, input).await;
        ids.push(
            body["data"]["changeStock"]["stockChange"]["id"]
                .as_u64()
                .unwrap(),
        );
    }
    sim.add_unrelated_stock_changes(WH, 2);
    ids
}

#[tokio::test]
async fn stock_change_connection_filters_by_comment_warehouse_id_and_date() {
    let sim = sim().await;
    let ids = audit_trail(&sim).await;
    let query = "query($where: StockChangeFilter) {
      stockChangeConnection(where: $where, last: 10) { totalCount edges { node { id comment } } }
    }";
    let ids_of = |body: &Value| -> Vec<u64> {
        body["data"]["stockChangeConnection"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_u64().unwrap())
            .collect()
    };
    let (_, body) = gql(
        &sim,
        query,
        json!({"where": {"comment": {"equals": "Cloudshelf push evt-2"}}}),
    )
    .await;
    assert_eq!(ids_of(&body), [ids[1]], "{body}");
    assert_eq!(
        body["data"]["stockChangeConnection"]["edges"][0]["node"]["comment"],
        json!("Cloudshelf push evt-2")
    );
    let (_, body) = gql(
        &sim,
        query,
        json!({"where": {"comment": {"contains": "Cloudshelf push"}}}),
    )
    .await;
    assert_eq!(ids_of(&body), ids);
    assert_eq!(
        body["data"]["stockChangeConnection"]["totalCount"],
        json!(3)
    );
    let (_, body) = gql(&sim, query, json!({"where": {"warehouseId": [OTHER_WH]}})).await;
    assert_eq!(ids_of(&body), [ids[1]]);
    let (_, body) = gql(&sim, query, json!({"where": {"id": [ids[2], 999]}})).await;
    assert_eq!(ids_of(&body), [ids[2]]);
    let (_, body) = gql(
        &sim,
        query,
        json!({"where": {"createdAt": {"from": "2000-01-01T00:00:00+00:00", "to": "2000-12-31 00:00:00"}}}),
    )
    .await;
    assert_eq!(ids_of(&body), Vec::<u64>::new());
    let (_, body) = gql(
        &sim,
        query,
        json!({"where": {"createdAt": {"from": "2000-01-01T00:00:00+00:00"}}}),
    )
    .await;
    assert_eq!(
        body["data"]["stockChangeConnection"]["totalCount"],
        json!(5)
    );
}

#[tokio::test]
async fn stock_change_connection_pages_backwards_with_last_and_before() {
    let sim = sim().await;
    audit_trail(&sim).await;
    let query = "query($before: String) {
      stockChangeConnection(last: 2, before: $before) {
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id } }
      }
    }";
    let mut before = Value::Null;
    let mut seen = Vec::new();
    loop {
        let (_, body) = gql(&sim, query, json!({"before": before})).await;
        let conn = &body["data"]["stockChangeConnection"];
        let page: Vec<u64> = conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_u64().unwrap())
            .collect();
        seen.splice(0..0, page);
        if conn["pageInfo"]["hasPreviousPage"] != json!(true) {
            break;
        }
        before = conn["pageInfo"]["startCursor"].clone();
    }
    // Oldest first by default; `last` takes the newest of the window.
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    let (_, body) = gql(
        &sim,
        "{ stockChangeConnection(first: 2, sort: [id_DESC]) { pageInfo { hasNextPage hasPreviousPage } edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["stockChangeConnection"],
        json!({"pageInfo": {"hasNextPage": true, "hasPreviousPage": false},
               "edges": [{"node": {"id": 5}}, {"node": {"id": 4}}]})
    );
}

#[tokio::test]
async fn lines_say_what_changed_per_size() {
    let sim = sim().await;
    let (_, body) = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "sale",
            json!([{"productSize": {"EAN": "7350000000012"}, "deliveredQuantity": 2},
                   {"productSize": {"SKU": "Prod1Var1M"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    assert_eq!(body["data"]["changeStock"]["userErrors"], json!([]));
    let (_, body) = gql(
        &sim,
        "mutation { setStock(input: { warehouse: { id: 12 }, description: \"count\", stockQuantityType: PHYSICAL,
            productSizes: [{ productSize: { SKU: \"Prod1Var1S\" }, quantity: 8 }, { productSize: { SKU: \"Prod1Var1M\" }, quantity: 4 }] })
          { stockChanges { id } userErrors { message } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["setStock"]["userErrors"], json!([]), "{body}");
    let size_s = sim.size_id("Prod1Var1S").unwrap();
    let size_m = sim.size_id("Prod1Var1M").unwrap();
    let (_, body) = gql(
        &sim,
        r#"{ stockChangeConnection(first: 10) { edges { node {
             id comment createdAt(format: "Y-m-d") iso: createdAt
             lines(limit: 10, page: 1) { id deliveredQuantity productSize { id SKU EAN } warehouse { id } }
           } } } }"#,
        json!({}),
    )
    .await;
    let edges = &body["data"]["stockChangeConnection"]["edges"];
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(edges[0]["node"]["createdAt"], json!(today), "{body}");
    assert_eq!(
        edges[0]["node"]["lines"],
        json!([
            {"id": 1, "deliveredQuantity": 2, "productSize": {"id": size_s, "SKU": "Prod1Var1S", "EAN": "7350000000012"}, "warehouse": {"id": WH}},
            {"id": 2, "deliveredQuantity": 1, "productSize": {"id": size_m, "SKU": "Prod1Var1M", "EAN": "7350000000029"}, "warehouse": {"id": WH}},
        ])
    );
    // setStock: new − old (8 − 8 = 0 is a line too; 4 − 4 likewise after the sale took M to 4).
    assert_eq!(
        edges[1]["node"]["lines"],
        json!([
            {"id": 3, "deliveredQuantity": 0, "productSize": {"id": size_s, "SKU": "Prod1Var1S", "EAN": "7350000000012"}, "warehouse": {"id": WH}},
            {"id": 4, "deliveredQuantity": 0, "productSize": {"id": size_m, "SKU": "Prod1Var1M", "EAN": "7350000000029"}, "warehouse": {"id": WH}},
        ])
    );
    let created_at = edges[1]["node"]["iso"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "default format is ISO-8601: {created_at}"
    );
}

#[tokio::test]
async fn warehouse_stock_changes_page_newest_first() {
    let sim = sim().await;
    let ids = audit_trail(&sim).await;
    let (_, body) = gql(
        &sim,
        r#"{ warehouses(where: { name: { contains: "Stockholm" } }) {
             id
             recent: stockChanges(limit: 2) { id }
             ours: stockChanges(where: { comment: { contains: "Cloudshelf" } }, sort: [id_ASC]) { id comment }
           } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["warehouses"],
        json!([{
            "id": WH,
            "recent": [{"id": 5}, {"id": 4}],
            "ours": [
                {"id": ids[0], "comment": "Cloudshelf push evt-1"},
                {"id": ids[2], "comment": "Cloudshelf push evt-3"},
            ],
        }]),
        "{body}"
    );
}

#[tokio::test]
async fn a_schema_field_the_simulator_does_not_model_is_said_plainly() {
    let sim = sim().await;
    let (_, body) = gql(&sim, "{ warehouses { id status } }", json!({})).await;
    assert_eq!(body["data"]["warehouses"], Value::Null);
    assert_eq!(
        body["errors"][0]["message"],
        json!("The simulator does not implement the field \"status\" of type \"Warehouse\" (it is in the schema).")
    );
    assert_eq!(
        body["errors"][0]["extensions"]["category"],
        json!("simulator")
    );
    let (_, body) = gql(
        &sim,
        "{ stockChangeConnection(where: { search: \"x\" }) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(body.get("data").is_none());
    assert_eq!(
        body["errors"][0]["extensions"]["category"],
        json!("simulator")
    );
}
