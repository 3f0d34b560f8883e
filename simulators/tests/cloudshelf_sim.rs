//! Black-box tests of the Cloudshelf simulator over HTTP, as the integration's client talks to it.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::cloudshelf::{
    CloudshelfFault, CloudshelfSim, CloudshelfSimConfig, FaultTarget, OrderSeed, OrderStatus,
    VariantSeed,
};

const ORDER_1: &str = "gid://cloudshelf/Order/01JAAAAAAAAAAAAAAAAAAAAAA1";

const ORDER_QUERY: &str = r#"
query Order($id: GlobalId!) {
  order(id: $id) {
    id status thirdPartyId createdAt updatedAt
    lines { id productVariantId productVariantName productId productName quantity price currencyCode }
  }
}"#;

const ORDERS_QUERY: &str = r#"
query Orders($first: Int, $after: String) {
  orders(first: $first, after: $after, sortBy: {updatedAt: DESC}) {
    edges { cursor node { id updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}"#;

const UPSERT: &str = r#"
mutation Upsert($input: [OrderInput!]!) {
  upsertOrders(input: $input) {
    orders { id status thirdPartyId }
    userErrors { code message }
  }
}"#;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + secs, 0).unwrap()
}

fn order_id(n: usize) -> String {
    format!("gid://cloudshelf/Order/01JBBBBBBBBBBBBBBBBBBBB{n:03}")
}

async fn sim() -> CloudshelfSim {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    sim.add_order(OrderSeed {
        id: ORDER_1.into(),
        status: OrderStatus::DraftBasket,
        lines: vec![
            (
                "gid://external/CentraSize/Prod1Var1S".into(),
                2,
                49.5,
                "EUR".into(),
            ),
            (
                "gid://external/CentraSize/Prod1Var1M".into(),
                1,
                19.99,
                "EUR".into(),
            ),
        ],
        updated_at: at(0),
        ..OrderSeed::default()
    });
    sim
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(sim: &CloudshelfSim, auth: Option<&str>, body: Value) -> Reply {
    let mut req = reqwest::Client::new().post(sim.graphql_url()).json(&body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
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

async fn gql(sim: &CloudshelfSim, query: &str, variables: Value) -> Reply {
    let auth = format!("Token {}", sim.api_key());
    post(
        sim,
        Some(&auth),
        json!({"query": query, "variables": variables}),
    )
    .await
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

#[tokio::test]
async fn auth_wants_the_token_scheme_and_the_right_key() {
    let sim = sim().await;
    let body = json!({"query": "{ order(id: \"gid://cloudshelf/Order/x\") { id } }"});

    for auth in [None, Some("Token wrong"), Some("Bearer cloudshelf-sim-key")] {
        let r = post(&sim, auth, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(error_code(&r.body), "UNAUTHENTICATED", "{}", r.body);
        assert!(r.body.get("data").is_none());
    }
    for auth in ["Token cloudshelf-sim-key", "token cloudshelf-sim-key"] {
        let r = post(&sim, Some(auth), body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{auth}");
        assert_eq!(r.body, json!({"data": {"order": null}}));
    }
    assert_eq!(sim.request_count(), 5);
}

#[tokio::test]
async fn order_reads_status_and_lines_and_unknown_ids_are_null() {
    let sim = sim().await;
    let r = gql(&sim, ORDER_QUERY, json!({"id": ORDER_1})).await;
    assert_eq!(r.status, StatusCode::OK);
    let order = &r.body["data"]["order"];
    assert_eq!(order["id"], json!(ORDER_1), "{}", r.body);
    assert_eq!(order["status"], json!("DRAFT_BASKET"));
    assert_eq!(order["thirdPartyId"], Value::Null);
    assert_eq!(order["updatedAt"], json!("2025-10-09T08:53:20.000Z"));
    let lines = order["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["productVariantId"],
        json!("gid://external/CentraSize/Prod1Var1S")
    );
    assert_eq!(lines[0]["quantity"], json!(2));
    assert_eq!(lines[0]["price"], json!(49.5));
    assert_eq!(lines[1]["price"], json!(19.99));
    assert_eq!(lines[1]["currencyCode"], json!("EUR"));
    assert!(lines[0]["id"].as_str().unwrap().starts_with("gid://"));

    let r = gql(
        &sim,
        ORDER_QUERY,
        json!({"id": "gid://cloudshelf/Order/01JNOPE"}),
    )
    .await;
    assert_eq!(r.body, json!({"data": {"order": null}}));

    // Only what was selected comes back, under aliases.
    let r = gql(
        &sim,
        "query($id: GlobalId!) { o: order(id: $id) { s: status __typename } }",
        json!({"id": ORDER_1}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"data": {"o": {"s": "DRAFT_BASKET", "__typename": "Order"}}})
    );
}

#[tokio::test]
async fn external_gids_address_the_same_order() {
    let sim = sim().await;
    let ext = "gid://external/CentraBasket/42";
    let id = sim.add_order(OrderSeed {
        id: ext.into(),
        updated_at: at(5),
        ..OrderSeed::default()
    });
    assert!(id.starts_with("gid://cloudshelf/Order/"), "{id}");
    let r = gql(&sim, ORDER_QUERY, json!({"id": ext})).await;
    assert_eq!(r.body["data"]["order"]["id"], json!(id), "{}", r.body);
    assert_eq!(sim.order(ext).unwrap().id, id);
    assert_eq!(sim.order(&id).unwrap().external_id.as_deref(), Some(ext));
}

#[tokio::test]
async fn schema_and_argument_mistakes_are_graphql_errors() {
    let sim = sim().await;
    let r = gql(&sim, "{ order(id: \"gid://x\") { id nope } }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["errors"][0]["message"],
        json!("Cannot query field \"nope\" on type \"Order\".")
    );
    assert_eq!(error_code(&r.body), "GRAPHQL_VALIDATION_FAILED");
    assert!(r.body.get("data").is_none());

    // In the published schema but not modelled: said so, and nothing runs.
    let r = gql(
        &sim,
        "{ order(id: \"gid://x\") { id session { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&r.body), "SIMULATOR_UNSUPPORTED", "{}", r.body);
    assert!(r.body.get("data").is_none());

    let r = gql(&sim, "{ order(id: \"gid://x\") { lines } }", json!({})).await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("must have a selection"));

    // A basket-transfer id that was not base64-decoded.
    let r = gql(&sim, ORDER_QUERY, json!({"id": "Z2lkOi8vY2xvdWRzaGVsZg=="})).await;
    assert_eq!(error_code(&r.body), "BAD_USER_INPUT", "{}", r.body);

    let r = gql(&sim, ORDER_QUERY, json!({})).await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("$id"));

    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ORDER_1, "status": "SHIPPED"}]}),
    )
    .await;
    assert_eq!(error_code(&r.body), "BAD_USER_INPUT", "{}", r.body);
    assert_eq!(sim.upserts().len(), 0);
}

#[tokio::test]
async fn orders_page_by_updated_at_desc_with_cursors() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    for n in 0..7 {
        sim.add_order(OrderSeed {
            id: order_id(n),
            updated_at: at(n as i64 * 60),
            ..OrderSeed::default()
        });
    }
    // A tie on updatedAt is broken by id.
    sim.add_order(OrderSeed {
        id: order_id(99),
        updated_at: at(3 * 60),
        ..OrderSeed::default()
    });

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = gql(&sim, ORDERS_QUERY, json!({"first": 3, "after": after})).await;
        let conn = &r.body["data"]["orders"];
        assert_eq!(conn["totalCount"], json!(8), "{}", r.body);
        let edges = conn["edges"].as_array().unwrap();
        assert!(edges.len() <= 3);
        for e in edges {
            seen.push(e["node"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], json!(pages > 0));
        assert_eq!(
            conn["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"]
        );
        assert_eq!(conn["pageInfo"]["startCursor"], edges[0]["cursor"]);
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = [6, 5, 4, 99, 3, 2, 1, 0]
        .into_iter()
        .map(order_id)
        .collect();
    assert_eq!(seen, expected);

    // ASC by createdAt, default first.
    let r = gql(
        &sim,
        "{ orders(sortBy: {createdAt: ASC}) { edges { node { id } } pageInfo { hasNextPage } } }",
        json!({}),
    )
    .await;
    let edges = r.body["data"]["orders"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["node"]["id"], json!(order_id(0)), "{}", r.body);
    assert_eq!(edges.len(), 8);

    let r = gql(
        &sim,
        ORDERS_QUERY,
        json!({"first": 3, "after": "not-a-cursor"}),
    )
    .await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid cursor"));
}

#[tokio::test]
async fn cursor_position_survives_an_update_during_paging() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    for n in 0..4 {
        sim.add_order(OrderSeed {
            id: order_id(n),
            updated_at: at(n as i64),
            ..OrderSeed::default()
        });
    }
    let r = gql(&sim, ORDERS_QUERY, json!({"first": 2})).await;
    let cursor = r.body["data"]["orders"]["pageInfo"]["endCursor"].clone();
    // Order 3 (already read) moves to the top; the rest must neither repeat nor be skipped.
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": order_id(3), "status": "PAID"}]}),
    )
    .await;
    assert_eq!(r.body["data"]["upsertOrders"]["userErrors"], json!([]));
    let r = gql(&sim, ORDERS_QUERY, json!({"first": 2, "after": cursor})).await;
    let ids: Vec<&str> = r.body["data"]["orders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [order_id(1), order_id(0)]);
}

#[tokio::test]
async fn upsert_orders_sets_status_and_third_party_id() {
    let sim = sim().await;
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ORDER_1, "status": "PAID", "newThirdPartyId": "centra-order-1001"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let payload = &r.body["data"]["upsertOrders"];
    assert_eq!(payload["userErrors"], json!([]), "{}", r.body);
    assert_eq!(
        payload["orders"],
        json!([{"id": ORDER_1, "status": "PAID", "thirdPartyId": "centra-order-1001"}])
    );

    let snap = sim.order(ORDER_1).unwrap();
    assert_eq!(snap.status, OrderStatus::Paid);
    assert_eq!(snap.third_party_id.as_deref(), Some("centra-order-1001"));
    assert!(snap.updated_at > at(0));
    assert_eq!(snap.lines.len(), 2, "lines untouched when not sent");

    // Any transition is accepted; a second id replaces the first and the history keeps both.
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ORDER_1, "status": "DRAFT_BASKET", "newThirdPartyId": "centra-order-1002"}]}),
    )
    .await;
    assert_eq!(r.body["data"]["upsertOrders"]["userErrors"], json!([]));
    let later = sim.order(ORDER_1).unwrap();
    assert_eq!(later.status, OrderStatus::DraftBasket);
    assert_eq!(
        later.third_party_id_history,
        ["centra-order-1001", "centra-order-1002"]
    );
    assert!(later.updated_at > snap.updated_at);

    let r = gql(&sim, ORDER_QUERY, json!({"id": ORDER_1})).await;
    assert_eq!(
        r.body["data"]["order"]["thirdPartyId"],
        json!("centra-order-1002")
    );
    assert_eq!(sim.upsert_count(), 2);
    assert_eq!(
        sim.upserts()[0].input["newThirdPartyId"],
        json!("centra-order-1001")
    );
}

#[tokio::test]
async fn upsert_of_an_unknown_cloudshelf_gid_is_entity_not_found() {
    let sim = sim().await;
    let missing = "gid://cloudshelf/Order/01JMISSINGMISSINGMISSING00";
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [
            {"id": missing, "status": "PAID"},
            {"id": ORDER_1, "status": "PLACED"},
        ]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let payload = &r.body["data"]["upsertOrders"];
    let errors = payload["userErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", r.body);
    assert_eq!(errors[0]["code"], json!("ENTITY_NOT_FOUND"));
    assert!(errors[0]["message"].as_str().unwrap().contains(missing));
    // The other input still applies.
    assert_eq!(payload["orders"][0]["id"], json!(ORDER_1));
    assert_eq!(sim.order(ORDER_1).unwrap().status, OrderStatus::Placed);
    assert!(sim.order(missing).is_none());
    assert_eq!(sim.upserts().len(), 2);
    assert_eq!(sim.upsert_count(), 1);
    assert_eq!(
        sim.upserts()[0].error_code.as_deref(),
        Some("ENTITY_NOT_FOUND")
    );
}

#[tokio::test]
async fn upsert_of_an_unknown_external_gid_creates_the_order() {
    let sim = sim().await;
    let ext = "gid://external/CentraOrder/1003";
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ext, "status": "PLACED", "lines": [
            {"productVariantID": "gid://external/CentraSize/S", "quantity": 3, "price": 10.0, "currencyCode": "SEK"}
        ]}]}),
    )
    .await;
    assert_eq!(
        r.body["data"]["upsertOrders"]["userErrors"],
        json!([]),
        "{}",
        r.body
    );
    let snap = sim.order(ext).expect("created");
    assert_eq!(snap.status, OrderStatus::Placed);
    assert_eq!(snap.lines[0].quantity, 3);
    assert_eq!(snap.lines[0].currency_code, "SEK");
    assert_eq!(
        r.body["data"]["upsertOrders"]["orders"][0]["id"],
        json!(snap.id)
    );
}

#[tokio::test]
async fn complexity_and_depth_limits_reject_before_running() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    // 2 fixed (orders, totalCount) + 50 × (edges node id status updatedAt lines quantity = 7) = 352.
    let q = "query($n: Int) { orders(first: $n) { totalCount edges { node { id status updatedAt lines { quantity } } } } }";
    let r = gql(&sim, q, json!({"n": 50})).await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    // 2 + 100 × 7 = 702.
    let r = gql(&sim, q, json!({"n": 100})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(error_code(&r.body), "QUERY_COMPLEXITY", "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["message"],
        json!("Query complexity of 702 exceeds the maximum of 500")
    );
    assert!(r.body.get("data").is_none());

    // A complexity failure is not a fault target: the queued fault stays for the next request.
    sim.inject(CloudshelfFault::ServerError);
    let r = gql(&sim, q, json!({"n": 100})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.pending_faults(), 1);
    sim.clear_faults();

    let sim = CloudshelfSim::start(CloudshelfSimConfig {
        max_depth: 3,
        ..CloudshelfSimConfig::default()
    })
    .await;
    let r = gql(
        &sim,
        "{ orders(first: 1) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&r.body), "QUERY_DEPTH", "{}", r.body);
    let r = gql(&sim, "{ orders(first: 1) { edges { cursor } } }", json!({})).await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
}

#[tokio::test]
async fn server_error_and_rate_limit_faults_apply_nothing() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::ServerError);
    sim.inject(CloudshelfFault::RateLimited);
    let input = json!({"input": [{"id": ORDER_1, "status": "PAID"}]});

    let r = gql(&sim, UPSERT, input.clone()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = gql(&sim, UPSERT, input.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(sim.rate_limited_count(), 1);
    assert_eq!(sim.upserts().len(), 0);
    assert_eq!(sim.order(ORDER_1).unwrap().status, OrderStatus::DraftBasket);

    let r = gql(&sim, UPSERT, input).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.upsert_count(), 1);
    assert_eq!(sim.pending_faults(), 0);
}

#[tokio::test]
async fn faults_can_target_queries_or_mutations_only() {
    let sim = sim().await;
    sim.inject_on(FaultTarget::Mutations, CloudshelfFault::ServerError);
    let r = gql(&sim, ORDER_QUERY, json!({"id": ORDER_1})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.pending_faults(), 1);
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ORDER_1, "status": "PAID"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);

    sim.inject_on(FaultTarget::Queries, CloudshelfFault::RateLimited);
    let r = gql(
        &sim,
        UPSERT,
        json!({"input": [{"id": ORDER_1, "status": "PAID"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = gql(&sim, ORDER_QUERY, json!({"id": ORDER_1})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn lost_response_still_applies_the_upsert() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::LoseResponseAfterApply);
    let auth = format!("Token {}", sim.api_key());
    let result = async {
        reqwest::Client::new()
            .post(sim.graphql_url())
            .header("Authorization", auth)
            .json(&json!({"query": UPSERT, "variables": {"input": [{"id": ORDER_1, "status": "PAID"}]}}))
            .send()
            .await?
            .text()
            .await
    }
    .await;
    assert!(result.is_err(), "the body must break: {result:?}");
    sim.wait_idle().await;
    assert_eq!(sim.order(ORDER_1).unwrap().status, OrderStatus::Paid);
    assert_eq!(sim.upsert_count(), 1);
}

#[tokio::test]
async fn hung_upsert_completes_after_the_client_gives_up() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::Hang(Duration::from_millis(400)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = client
        .post(sim.graphql_url())
        .header("Authorization", format!("Token {}", sim.api_key()))
        .json(&json!({"query": UPSERT, "variables": {"input": [{"id": ORDER_1, "status": "VOIDED"}]}}))
        .send()
        .await
        .expect_err("the client times out");
    assert!(err.is_timeout(), "{err}");
    sim.wait_idle().await;
    assert_eq!(sim.order(ORDER_1).unwrap().status, OrderStatus::Voided);
}

#[tokio::test]
async fn latency_delays_every_request() {
    let sim = sim().await;
    sim.set_latency(Duration::from_millis(150));
    let started = std::time::Instant::now();
    let r = gql(&sim, ORDER_QUERY, json!({"id": ORDER_1})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

const UPSERT_STOCK: &str = r#"
mutation Stock($input: [StockLevelInput!]!) {
  upsertStockLevels(input: $input) {
    stockLevels { id isInStock location { id platformProvidedId } productVariant { id sku barcode } }
    userErrors { code message }
  }
}"#;

#[tokio::test]
async fn upsert_stock_levels_stores_quantities_and_exposes_only_in_stock() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let store = sim.add_location(Some("gid://external/CentraWarehouse/12"));
    let variant = sim.add_variant(VariantSeed {
        platform_provided_id: Some("gid://external/CentraSize/Prod1Var1S".into()),
        sku: Some("Prod1Var1S".into()),
        barcode: Some("7350000000012".into()),
    });
    let other = sim.add_variant(VariantSeed::default());
    sim.set_safety_stock(2);

    let r = gql(
        &sim,
        UPSERT_STOCK,
        json!({"input": [
            // External ids for the first, Cloudshelf ids for the second.
            {"locationId": "gid://external/CentraWarehouse/12",
             "productVariantId": "gid://external/CentraSize/Prod1Var1S", "quantity": 5},
            {"locationId": store, "productVariantId": other, "quantity": 1},
            {"locationId": "gid://external/CentraWarehouse/99", "productVariantId": other, "quantity": 3},
        ]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let payload = &r.body["data"]["upsertStockLevels"];
    let levels = payload["stockLevels"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{}", r.body);
    assert_eq!(levels[0]["isInStock"], json!(true));
    assert_eq!(levels[0]["location"]["id"], json!(store));
    assert_eq!(levels[0]["productVariant"]["sku"], json!("Prod1Var1S"));
    assert_eq!(
        levels[0]["productVariant"]["barcode"],
        json!("7350000000012")
    );
    // Below the safety stock of 2.
    assert_eq!(levels[1]["isInStock"], json!(false));
    assert_eq!(payload["userErrors"][0]["code"], json!("ENTITY_NOT_FOUND"));
    assert!(payload["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("CentraWarehouse/99"));

    let level = sim
        .stock_level(&store, "gid://external/CentraSize/Prod1Var1S")
        .unwrap();
    assert_eq!(level.quantity, 5);
    assert_eq!(level.product_variant_id, variant);
    assert_eq!(sim.stock_level(&store, &other).unwrap().quantity, 1);
    assert_eq!(sim.stock_upserts().len(), 3);
    assert_eq!(sim.stock_upsert_count(), 2);

    // The quantity is not readable through the API.
    let r = gql(
        &sim,
        "mutation($i: [StockLevelInput!]!) { upsertStockLevels(input: $i) { stockLevels { quantity } } }",
        json!({"i": []}),
    )
    .await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("quantity"));

    // Missing required input field.
    let r = gql(
        &sim,
        UPSERT_STOCK,
        json!({"input": [{"locationId": store, "productVariantId": other}]}),
    )
    .await;
    assert_eq!(error_code(&r.body), "BAD_USER_INPUT", "{}", r.body);
    assert_eq!(sim.stock_upserts().len(), 3);
}
