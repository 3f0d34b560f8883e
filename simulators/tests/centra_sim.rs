//! Black-box tests of the Centra simulator over HTTP, as the integration's client talks to it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::centra::{
    CentraBehaviour, CentraSim, CentraSimConfig, DuplicateSizes, Fault, FaultTarget, RateTier,
    RetryAfterStyle, StockChangeKind, StockChangeRecord, StockLevel,
};

const WH: u64 = 12;
const OTHER_WH: u64 = 14;

const CHANGE_STOCK: &str = r#"
mutation change($input: StockChangeInput!) {
  changeStock(input: $input) {
    stockChange { id }
    userErrors { message path }
    userWarnings { message path }
  }
}"#;

const SET_STOCK: &str = r#"
mutation set($input: StockSetInput!) {
  setStock(input: $input) {
    stockChanges { id }
    userErrors { message path }
    userWarnings { message path }
  }
}"#;

/// Rate limits off so that only the tests about them see them.
async fn sim() -> CentraSim {
    sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await
}

async fn sim_with(config: CentraSimConfig) -> CentraSim {
    let sim = CentraSim::start(config).await;
    sim.add_warehouse(WH, "Store Stockholm");
    sim.add_warehouse(OTHER_WH, "Store Oslo");
    sim.add_size("Prod1Var1S", Some("7350000000012"), true);
    sim.add_size("Prod1Var1M", Some("7350000000029"), true);
    sim.add_size("Prod2Var1OS", None, false);
    sim.set_physical(WH, "Prod1Var1S", 10);
    sim.set_physical(WH, "Prod1Var1M", 5);
    sim.set_allocated(WH, "Prod1Var1M", 3);
    sim
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(sim: &CentraSim, token: Option<&str>, body: Value) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client.post(sim.graphql_url()).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request reaches the simulator");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

async fn gql(sim: &CentraSim, query: &str, variables: Value) -> Reply {
    post(
        sim,
        Some(sim.token()),
        json!({"query": query, "variables": variables}),
    )
    .await
}

fn sale(warehouse: u64, description: &str, lines: Value) -> Value {
    json!({"input": {"outFromWarehouse": {"id": warehouse}, "description": description, "productSizes": lines}})
}

/// `(SKU, deliveredQuantity)` of each line.
fn lines(change: &StockChangeRecord) -> Vec<(String, i64)> {
    change
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.delivered_quantity))
        .collect()
}

fn level(physical: i64, allocated: i64) -> Option<StockLevel> {
    Some(StockLevel {
        physical,
        allocated,
        free_to_allocate: physical - allocated,
    })
}

#[tokio::test]
async fn change_stock_by_sku_and_ean_moves_stock_and_records_the_change() {
    let sim = sim().await;

    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "Cloudshelf sale #CS-1042",
            json!([
                {"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 2},
                {"productSize": {"EAN": "7350000000029"}, "deliveredQuantity": 1},
            ]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["userErrors"], json!([]), "{}", r.body);
    assert_eq!(payload["stockChange"]["id"], json!(1));
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(8, 0));
    assert_eq!(sim.stock(WH, "Prod1Var1M"), level(4, 3));

    // Receipt by EAN via `any`, into the other warehouse.
    let r = gql(
        &sim,
        CHANGE_STOCK,
        json!({"input": {
            "intoWarehouse": {"id": OTHER_WH},
            "description": "Cloudshelf receipt R-7",
            "productSizes": [{"productSize": {"any": "7350000000012"}, "deliveredQuantity": 4}],
        }}),
    )
    .await;
    assert_eq!(
        r.body["data"]["changeStock"]["stockChange"]["id"],
        json!(2),
        "{}",
        r.body
    );
    assert_eq!(sim.stock(OTHER_WH, "Prod1Var1S"), level(4, 0));

    let changes = sim.stock_changes();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].comment, "Cloudshelf sale #CS-1042");
    assert_eq!(changes[0].warehouse_id, WH);
    assert_eq!(changes[0].out_from_warehouse_id, Some(WH));
    assert_eq!(changes[0].into_warehouse_id, None);
    assert_eq!(changes[0].kind, StockChangeKind::Change);
    assert_eq!(
        lines(&changes[0]),
        [("Prod1Var1S".to_string(), 2), ("Prod1Var1M".to_string(), 1)]
    );
    assert_eq!(lines(&changes[1]), [("Prod1Var1S".to_string(), 4)]);
    assert_eq!(changes[1].warehouse_id, OTHER_WH);
    assert_eq!(changes[1].into_warehouse_id, Some(OTHER_WH));
    let age = chrono::Utc::now() - changes[0].created_at;
    assert!(age >= chrono::Duration::zero() && age < chrono::Duration::seconds(60));
    assert_eq!(sim.mutation_count(), 2);
}

#[tokio::test]
async fn transfer_moves_stock_between_warehouses() {
    let sim = sim().await;
    let r = gql(
        &sim,
        CHANGE_STOCK,
        json!({"input": {
            "outFromWarehouse": {"id": WH},
            "intoWarehouse": {"id": OTHER_WH},
            "description": "move",
            "productSizes": [{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 3}],
        }}),
    )
    .await;
    assert_eq!(
        r.body["data"]["changeStock"]["userErrors"],
        json!([]),
        "{}",
        r.body
    );
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(7, 0));
    assert_eq!(sim.stock(OTHER_WH, "Prod1Var1S"), level(3, 0));
    assert_eq!(sim.stock_changes()[0].into_warehouse_id, Some(OTHER_WH));
}

#[tokio::test]
async fn unknown_sku_among_several_lines_is_reported_by_index_and_nothing_applies() {
    let sim = sim().await;
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "sale with a typo",
            json!([
                {"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1},
                {"productSize": {"SKU": "Prod1Var1M"}, "deliveredQuantity": 1},
                {"productSize": {"SKU": "NOPE"}, "deliveredQuantity": 1},
                {"productSize": {"EAN": "7350000000012"}, "deliveredQuantity": 0},
            ]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let payload = &r.body["data"]["changeStock"];
    assert_eq!(payload["stockChange"], Value::Null);
    let errors = payload["userErrors"].as_array().expect("userErrors list");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0]["path"],
        json!(["input", "productSizes", 2, "productSize"])
    );
    assert_eq!(
        errors[0]["message"],
        json!("Product size not found: SKU \"NOPE\"")
    );
    assert_eq!(
        errors[1]["path"],
        json!(["input", "productSizes", 3, "deliveredQuantity"])
    );
    assert_eq!(errors[1]["message"], json!("Quantity must be positive"));

    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(10, 0));
    assert_eq!(sim.stock(WH, "Prod1Var1M"), level(5, 3));
    assert!(sim.stock_changes().is_empty());
    assert_eq!(sim.mutation_count(), 0);
}

#[tokio::test]
async fn unknown_warehouse_is_a_user_error() {
    let sim = sim().await;
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            99,
            "x",
            json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
        ),
    )
    .await;
    let errors = &r.body["data"]["changeStock"]["userErrors"];
    assert_eq!(
        errors[0]["message"],
        json!("Warehouse 99 not found"),
        "{}",
        r.body
    );
    assert_eq!(
        errors[0]["path"],
        json!(["input", "outFromWarehouse", "id"])
    );
}

#[tokio::test]
async fn removal_beyond_free_to_allocate_is_refused() {
    let sim = sim().await;
    sim.set_behaviour(CentraBehaviour {
        duplicate_sizes: DuplicateSizes::Sum,
        ..CentraBehaviour::default()
    });
    // Prod1Var1M: physical 5, allocated 3 → 2 free to allocate. Two lines (by SKU and by EAN) of 2
    // and 1 add up to 3, reported on the first line, which carries the sum.
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "too many",
            json!([
                {"productSize": {"SKU": "Prod1Var1M"}, "deliveredQuantity": 2},
                {"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1},
                {"productSize": {"EAN": "7350000000029"}, "deliveredQuantity": 1},
            ]),
        ),
    )
    .await;
    let errors = &r.body["data"]["changeStock"]["userErrors"];
    assert_eq!(
        errors,
        &json!([{
            "message": "Cannot remove 3 of SKU \"Prod1Var1M\": only 2 free to allocate in warehouse 12",
            "path": ["input", "productSizes", 0, "deliveredQuantity"],
        }])
    );
    assert_eq!(sim.stock(WH, "Prod1Var1M"), level(5, 3));
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(10, 0));

    // Exactly the free amount is fine.
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "ok",
            json!([{"productSize": {"SKU": "Prod1Var1M"}, "deliveredQuantity": 2}]),
        ),
    )
    .await;
    assert_eq!(r.body["data"]["changeStock"]["userErrors"], json!([]));
    assert_eq!(sim.stock(WH, "Prod1Var1M"), level(3, 3));
}

#[tokio::test]
async fn set_stock_physical_sets_absolute_levels_and_refuses_negative_quantities() {
    let sim = sim().await;
    let r = gql(
        &sim,
        SET_STOCK,
        json!({"input": {
            "warehouse": {"id": WH},
            "description": "Cloudshelf reconciliation 2025-01-31",
            "stockQuantityType": "PHYSICAL",
            "productSizes": [
                {"productSize": {"SKU": "Prod1Var1S"}, "quantity": 7},
                {"productSize": {"SKU": "Prod2Var1OS"}, "quantity": 0},
            ],
        }}),
    )
    .await;
    let payload = &r.body["data"]["setStock"];
    assert_eq!(payload["userErrors"], json!([]), "{}", r.body);
    assert_eq!(payload["stockChanges"], json!([{"id": 1}]));
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(7, 0));
    let change = &sim.stock_changes()[0];
    assert_eq!(change.kind, StockChangeKind::Set);
    // deliveredQuantity of a set is new − old: 10 → 7, and 0 → 0.
    assert_eq!(
        lines(change),
        [
            ("Prod1Var1S".to_string(), -3),
            ("Prod2Var1OS".to_string(), 0)
        ]
    );

    let r = gql(
        &sim,
        SET_STOCK,
        json!({"input": {
            "warehouse": {"id": WH},
            "description": "bad count",
            "stockQuantityType": "PHYSICAL",
            "productSizes": [
                {"productSize": {"SKU": "Prod1Var1S"}, "quantity": 3},
                {"productSize": {"SKU": "Prod1Var1M"}, "quantity": -1},
            ],
        }}),
    )
    .await;
    let payload = &r.body["data"]["setStock"];
    assert_eq!(payload["stockChanges"], Value::Null);
    assert_eq!(
        payload["userErrors"][0]["path"],
        json!(["input", "productSizes", 1, "quantity"])
    );
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(7, 0), "nothing applied");
    assert_eq!(sim.stock_changes().len(), 1);

    let r = gql(
        &sim,
        SET_STOCK,
        json!({"input": {
            "warehouse": {"id": WH},
            "description": "fta",
            "stockQuantityType": "FREE_TO_ALLOCATE",
            "productSizes": [{"productSize": {"SKU": "Prod1Var1S"}, "quantity": 3}],
        }}),
    )
    .await;
    // The FTA value's name is not published, so the served schema has only PHYSICAL.
    assert_eq!(
        r.body,
        json!({"errors": [{
            "message": "Variable \"$input\" got invalid value \"FREE_TO_ALLOCATE\" at \"input.stockQuantityType\"; \
                        Value \"FREE_TO_ALLOCATE\" does not exist in \"StockQuantityType\" enum.",
            "locations": [{"line": 2, "column": 14}],
            "extensions": {"category": "graphql"},
        }]})
    );
    assert_eq!(sim.mutation_count(), 1);
}

#[tokio::test]
async fn schema_mistakes_come_back_as_graphql_errors() {
    let sim = sim().await;

    // Wrong quantity field name for changeStock.
    let r = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            WH,
            "x",
            json!([{"productSize": {"SKU": "Prod1Var1S"}, "quantity": 1}]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let messages: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors list")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        ["Variable \"$input\" got invalid value {\"productSize\":{\"SKU\":\"Prod1Var1S\"},\"quantity\":1} \
          at \"input.productSizes[0]\"; Field \"quantity\" is not defined by type \"StockChangeProductSizeInput\"."]
    );
    assert_eq!(
        r.body["errors"][0]["locations"],
        json!([{"line": 2, "column": 17}])
    );
    assert!(r.body.get("data").is_none());

    let r = gql(&sim, "mutation { pushStock(x: 1) { id } }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["errors"][0]["message"],
        json!("Cannot query field \"pushStock\" on type \"Mutation\".")
    );
    assert_eq!(
        r.body["errors"][0]["locations"],
        json!([{"line": 1, "column": 12}])
    );
    assert_eq!(
        r.body["errors"][0]["extensions"]["category"],
        json!("graphql")
    );

    let r = gql(&sim, "mutation { changeStock(input: {", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Syntax Error"));

    let r = gql(&sim, "{ warehouses { id colour } }", json!({})).await;
    assert_eq!(
        r.body["errors"][0]["message"],
        json!("Cannot query field \"colour\" on type \"Warehouse\".")
    );
    assert_eq!(sim.mutation_count(), 0);
}

#[tokio::test]
async fn requests_without_the_right_token_get_401() {
    let sim = sim().await;
    let body = json!({"query": "{ rateLimits { type } }"});
    let expected = json!({"errors": [{"message": "Unauthorized", "extensions": {"category": "authentication"}}]});

    let r = post(&sim, None, body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, expected);

    let r = post(&sim, Some("not-the-token"), body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, expected);

    let r = post(&sim, Some(sim.token()), body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn stock_change_connection_pages_newest_first() {
    let sim = sim().await;
    for i in 1..=5 {
        let r = gql(
            &sim,
            CHANGE_STOCK,
            sale(
                WH,
                &format!("push {i}"),
                json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
            ),
        )
        .await;
        assert_eq!(r.body["data"]["changeStock"]["userErrors"], json!([]));
    }
    let query = r#"
      query scan($after: String) {
        stockChangeConnection(first: 2, after: $after, sort: [id_DESC]) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { id comment createdAt } }
        }
      }"#;
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = gql(&sim, query, json!({"after": after})).await;
        let conn = &r.body["data"]["stockChangeConnection"];
        assert_eq!(conn["totalCount"], json!(5), "{}", r.body);
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], json!(pages > 0));
        for edge in conn["edges"].as_array().unwrap() {
            seen.push(edge["node"]["comment"].as_str().unwrap().to_string());
            assert!(edge["node"]["createdAt"].is_string());
        }
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["push 5", "push 4", "push 3", "push 2", "push 1"]);

    // Oldest first on request.
    let r = gql(
        &sim,
        "{ stockChangeConnection(first: 1, sort: id_ASC) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["stockChangeConnection"]["edges"],
        json!([{"node": {"id": 1}}])
    );
}

#[tokio::test]
async fn warehouse_stock_and_product_sizes_can_be_read_in_pages() {
    let sim = sim().await;
    let query = r#"
      query storeStock($wh: Int!, $page: Int!) {
        warehouses(where: { id: [$wh] }) {
          id name
          stock(limit: 1, page: $page) { productSize { id SKU EAN } physicalQuantity freeToAllocateQuantity allocatedQuantity }
        }
      }"#;
    let r = gql(&sim, query, json!({"wh": WH, "page": 2})).await;
    assert_eq!(
        r.body["data"]["warehouses"],
        json!([{
            "id": WH,
            "name": "Store Stockholm",
            "stock": [{
                "productSize": {"id": sim.size_id("Prod1Var1M").unwrap(), "SKU": "Prod1Var1M", "EAN": "7350000000029"},
                "physicalQuantity": 5,
                "freeToAllocateQuantity": 2,
                "allocatedQuantity": 3,
            }],
        }]),
        "{}",
        r.body
    );
    let r = gql(&sim, query, json!({"wh": WH, "page": 3})).await;
    assert_eq!(r.body["data"]["warehouses"][0]["stock"], json!([]));

    let r = gql(
        &sim,
        "{ warehouses { stock(limit: 500) { physicalQuantity } } }",
        json!({}),
    )
    .await;
    assert_eq!(r.body["data"]["warehouses"], Value::Null);
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("limit"));

    let r = gql(
        &sim,
        r#"{ byEan: productSizes(where: { EAN: { equals: "7350000000012" } }) { id SKU EAN isActive }
             inactive: productSizes(where: { isActive: false }, limit: 10, page: 1) { SKU } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"],
        json!({
            "byEan": [{"id": sim.size_id("Prod1Var1S").unwrap(), "SKU": "Prod1Var1S", "EAN": "7350000000012", "isActive": true}],
            "inactive": [{"SKU": "Prod2Var1OS"}],
        })
    );
}

fn growth_burst_config(style: RetryAfterStyle) -> CentraSimConfig {
    CentraSimConfig {
        rate_limits_enabled: true,
        tier: RateTier::Growth,
        retry_after_style: style,
        // One refill per 3 minutes: nothing refills during the burst, however slow the machine.
        short_window: Duration::from_secs(3600),
        ..CentraSimConfig::default()
    }
}

fn one_line_sale(i: usize) -> Value {
    sale(
        WH,
        &format!("burst {i}"),
        json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
    )
}

#[tokio::test]
async fn growth_tier_applies_twenty_mutations_then_answers_429() {
    let sim = sim_with(growth_burst_config(RetryAfterStyle::HttpDate)).await;
    sim.set_physical(WH, "Prod1Var1S", 100);
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..21 {
        let input = sale(
            WH,
            &format!("burst {i}"),
            json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
        );
        let r = gql(&sim, CHANGE_STOCK, input).await;
        statuses.push(r.status);
        last = Some(r);
    }
    let applied = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(applied, 20, "{statuses:?}");
    let last = last.unwrap();
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        last.body,
        json!({"errors": [{"message": "Too many requests"}]})
    );
    let retry_after = last.headers["retry-after"].to_str().unwrap();
    let at =
        chrono::DateTime::parse_from_rfc2822(retry_after).expect("Retry-After is an HTTP-date");
    assert!(at > chrono::Utc::now(), "{retry_after} is in the future");

    assert_eq!(sim.mutation_count(), 20);
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(80, 0));
    assert_eq!(sim.stock_changes().len(), 20);
    assert_eq!(sim.rate_limited_count(), 1);

    // Queries still pass: the request bucket has 60 - 21 tokens left.
    let r = gql(
        &sim,
        "{ rateLimits { type intervalSeconds quota usedQuota remainingQuota } }",
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = r.body["data"]["rateLimits"].as_array().unwrap().clone();
    let row = |t: &str, i: &str| {
        rows.iter()
            .find(|r| r["type"] == json!(t) && r["intervalSeconds"] == json!(i))
            .cloned()
            .unwrap_or_else(|| panic!("no {t}/{i} row in {rows:?}"))
    };
    assert_eq!(
        row("MUTATION_COUNT", "TEN_SECONDS"),
        json!({"type": "MUTATION_COUNT", "intervalSeconds": "TEN_SECONDS", "quota": 20, "usedQuota": 20, "remainingQuota": 0})
    );
    // 20 mutations + this query; the refused request took nothing.
    assert_eq!(row("REQUEST_COUNT", "TEN_SECONDS")["usedQuota"], json!(21));
    assert_eq!(row("MUTATION_COUNT", "ONE_HOUR")["quota"], json!(1800));
    assert!(rows.iter().any(|r| r["type"] == json!("QUERY_COMPLEXITY")));

    // Once the buckets refill, mutations go through again.
    sim.reset_rate_limits();
    let r = gql(&sim, CHANGE_STOCK, one_line_sale(99)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn several_mutation_fields_in_one_request_each_count() {
    let sim = sim_with(growth_burst_config(RetryAfterStyle::Seconds)).await;
    let fields: String = (0..21)
        .map(|i| {
            format!(
                r#"m{i}: changeStock(input: {{ intoWarehouse: {{ id: {WH} }}, description: "batch {i}",
                   productSizes: [{{ productSize: {{ SKU: "Prod1Var1S" }}, deliveredQuantity: 1 }}] }}) {{ stockChange {{ id }} }}"#
            )
        })
        .collect();
    let r = gql(&sim, &format!("mutation {{ {fields} }}"), json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let secs: u64 = r.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("delta seconds");
    assert!(secs >= 1);
    assert_eq!(sim.mutation_count(), 0);

    let two = r#"mutation {
      a: changeStock(input: { intoWarehouse: { id: 12 }, description: "a", productSizes: [{ productSize: { SKU: "Prod1Var1S" }, deliveredQuantity: 1 }] }) { stockChange { id } }
      b: changeStock(input: { intoWarehouse: { id: 12 }, description: "b", productSizes: [{ productSize: { SKU: "Prod1Var1S" }, deliveredQuantity: 1 }] }) { stockChange { id } }
    }"#;
    let r = gql(&sim, two, json!({})).await;
    assert_eq!(
        r.body["data"],
        json!({"a": {"stockChange": {"id": 1}}, "b": {"stockChange": {"id": 2}}})
    );
    let used = sim
        .rate_limits()
        .into_iter()
        .find(|s| s.limit_type == simulators::centra::LimitType::MutationCount)
        .unwrap()
        .used_quota;
    assert_eq!(used, 2);
}

#[tokio::test]
async fn injected_server_error_applies_nothing_and_spares_queries() {
    let sim = sim().await;
    sim.inject(Fault::ServerError(502));
    // A query passes untouched while the fault waits for a mutation.
    let r = gql(&sim, "{ rateLimits { type } }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.pending_faults(), 1);

    let input = sale(
        WH,
        "after 502",
        json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
    );
    let r = gql(&sim, CHANGE_STOCK, input.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(10, 0));
    assert!(sim.stock_changes().is_empty());

    let r = gql(&sim, CHANGE_STOCK, input).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(9, 0));

    // Aimed at queries on request.
    sim.inject_on(FaultTarget::Queries, Fault::ServerError(503));
    let r = gql(&sim, "{ rateLimits { type } }", json!({})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn injected_rate_limit_burst_is_consumed_in_order() {
    let sim = sim().await;
    for _ in 0..3 {
        sim.inject(Fault::RateLimited {
            retry_after: Duration::from_millis(1500),
        });
    }
    sim.inject(Fault::ServerError(503));
    let input = sale(
        WH,
        "retry me",
        json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = gql(&sim, CHANGE_STOCK, input.clone()).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            let date = r.headers["retry-after"].to_str().unwrap();
            chrono::DateTime::parse_from_rfc2822(date).expect("HTTP-date");
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, [429, 429, 429, 503, 200]);
    assert_eq!(sim.rate_limited_count(), 3);
    assert_eq!(sim.mutation_count(), 1);
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(9, 0));
}

#[tokio::test]
async fn injected_hang_times_the_client_out_but_the_mutation_still_lands() {
    let sim = sim().await;
    sim.inject(Fault::Hang(Duration::from_millis(600)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let input = sale(
        WH,
        "slow",
        json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 1}]),
    );
    let err = client
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": CHANGE_STOCK, "variables": input}))
        .send()
        .await
        .expect_err("client times out");
    assert!(err.is_timeout(), "{err}");
    assert!(
        sim.stock_changes().is_empty(),
        "not yet applied while hanging"
    );

    sim.wait_idle().await;
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(9, 0));
    assert_eq!(sim.stock_changes()[0].comment, "slow");
}

#[tokio::test]
async fn lost_response_after_apply_hides_a_success_the_audit_trail_shows() {
    let sim = sim().await;
    sim.inject(Fault::LoseResponseAfterApply);
    let input = sale(
        WH,
        "Cloudshelf push 42",
        json!([{"productSize": {"SKU": "Prod1Var1S"}, "deliveredQuantity": 2}]),
    );
    let result = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": CHANGE_STOCK, "variables": input}))
        .send()
        .await;
    let client_saw_error = match result {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(client_saw_error, "the client must not see the result");

    sim.wait_idle().await;
    assert_eq!(sim.stock(WH, "Prod1Var1S"), level(8, 0));
    assert_eq!(sim.mutation_count(), 1);
    let r = gql(
        &sim,
        "{ stockChangeConnection(first: 10) { edges { node { id comment } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["stockChangeConnection"]["edges"],
        json!([{"node": {"id": 1, "comment": "Cloudshelf push 42"}}])
    );
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let sim = sim().await;
    sim.set_latency(Duration::from_millis(150));
    let started = std::time::Instant::now();
    let r = gql(&sim, "{ rateLimits { type } }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = sim().await;
    let url = sim.graphql_url();
    sim.shutdown().await;
    let result = reqwest::Client::new()
        .post(url)
        .json(&json!({"query": "{ rateLimits { type } }"}))
        .send()
        .await;
    assert!(result.is_err());
}
