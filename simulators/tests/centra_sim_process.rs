//! The `centra-sim` binary driven from outside, as a black-box test of another program would: its
//! readiness line, the control API through `SimControl`, GraphQL over the printed URL, and exit when its
//! stdin closes.

use serde_json::{json, Value};
use simulators::control::{
    ConfigPatch, FaultJson, FaultTarget, PathStyle, RefusalKind, RequestLogKind, RetryAfterStyle,
    SizeSpec, SpawnedSim, StockChangeKind, StockSpec,
};

const BIN: &str = env!("CARGO_BIN_EXE_centra-sim");
const TOKEN: &str = "process-token";
const WH: u64 = 7;

async fn gql(sim: &SpawnedSim, query: &str, variables: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(TOKEN)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const CHANGE_STOCK: &str = "mutation ChangeStock($input: StockChangeInput!) {
  changeStock(input: $input) { stockChange { id } userErrors { message path } userWarnings { message path } }
}";

fn sale(description: &str, lines: Value) -> Value {
    json!({"input": {"outFromWarehouse": {"id": WH}, "description": description, "productSizes": lines}})
}

fn spawn() -> SpawnedSim {
    SpawnedSim::spawn(BIN, &["--port", "0", "--token", TOKEN]).expect("centra-sim starts")
}

#[tokio::test]
async fn control_api_seeds_inspects_and_steers_a_simulator_in_another_process() {
    let sim = spawn();
    assert!(sim.graphql_url().ends_with("/graphql"));
    assert!(sim.listening.control_url.ends_with("/_sim"));
    let control = sim.control();

    control.add_warehouse(WH, "Store Gothenburg").await.unwrap();
    let s = control
        .add_size(&SizeSpec {
            sku: "S".into(),
            ean: Some("7350000000012".into()),
            upc: None,
            active: true,
        })
        .await
        .unwrap();
    let m = control
        .add_size(&SizeSpec {
            sku: "M".into(),
            ean: None,
            upc: None,
            active: true,
        })
        .await
        .unwrap();
    assert_ne!(s, m);
    assert!(control
        .add_size(&SizeSpec {
            sku: "S".into(),
            ean: None,
            upc: None,
            active: true
        })
        .await
        .is_err());
    control
        .set_stock(&StockSpec {
            warehouse: WH,
            sku: "S".into(),
            physical: 10,
            allocated: Some(2),
        })
        .await
        .unwrap();
    assert!(control
        .set_stock(&StockSpec {
            warehouse: 99,
            sku: "S".into(),
            physical: 1,
            allocated: None
        })
        .await
        .is_err());

    // Every warehouse × size, zeros included.
    let stock = control.stock().await.unwrap();
    assert_eq!(stock.len(), 2);
    let row = |sku: &str| stock.iter().find(|r| r.sku == sku).unwrap().clone();
    assert_eq!(
        (
            row("S").physical,
            row("S").allocated,
            row("S").free_to_allocate
        ),
        (10, 2, 8)
    );
    assert_eq!((row("M").physical, row("M").free_to_allocate), (0, 0));

    // A sale over GraphQL, seen through the control API.
    let (status, body) = gql(
        &sim,
        CHANGE_STOCK,
        sale(
            "Cloudshelf sale 1",
            json!([{"productSize": {"EAN": "7350000000012"}, "deliveredQuantity": 3}]),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["changeStock"]["userErrors"],
        json!([]),
        "{body}"
    );
    let changes = control.stock_changes().await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].comment, "Cloudshelf sale 1");
    assert_eq!(changes[0].kind, StockChangeKind::Change);
    assert_eq!(changes[0].lines[0].delivered_quantity, 3);
    assert_eq!(control.stock().await.unwrap()[0].physical, 7);

    // Modes: path style and a refused size.
    control
        .configure(&ConfigPatch {
            path_style: Some(PathStyle::Strings),
            ..ConfigPatch::default()
        })
        .await
        .unwrap();
    control
        .refuse_size("M", Some(RefusalKind::Error), "Size M is a bundle")
        .await
        .unwrap();
    let (_, body) = gql(
        &sim,
        CHANGE_STOCK,
        json!({"input": {"intoWarehouse": {"id": WH}, "description": "receipt",
            "productSizes": [{"productSize": {"SKU": "S"}, "deliveredQuantity": 1},
                             {"productSize": {"SKU": "M"}, "deliveredQuantity": 1}]}}),
    )
    .await;
    assert_eq!(
        body["data"]["changeStock"]["userErrors"],
        json!([{"message": "Size M is a bundle", "path": ["input", "productSizes", "1", "productSize"]}])
    );

    // A fault: the next query hangs; wait-idle returns once it has finished.
    control
        .inject(FaultTarget::Queries, FaultJson::Hang { ms: 300 })
        .await
        .unwrap();
    assert_eq!(control.counters().await.unwrap().pending_faults, 1);
    let slow = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(50))
        .build()
        .unwrap()
        .post(sim.graphql_url())
        .bearer_auth(TOKEN)
        .json(&json!({"query": "{ rateLimits { type } }"}))
        .send()
        .await;
    assert!(slow.is_err(), "the client gives up while the query hangs");
    control.wait_idle().await.unwrap();
    let counters = control.counters().await.unwrap();
    assert_eq!((counters.in_flight, counters.pending_faults), (0, 0));

    // Rate limits on, with Unix-timestamp Retry-After and a burst the tier cannot take.
    control
        .configure(&ConfigPatch {
            rate_limits_enabled: Some(true),
            short_window_ms: Some(3_600_000),
            retry_after_style: Some(RetryAfterStyle::UnixTimestamp),
            ..ConfigPatch::default()
        })
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..21 {
        let (status, _) = gql(
            &sim,
            CHANGE_STOCK,
            json!({"input": {"intoWarehouse": {"id": WH}, "description": format!("burst {i}"),
                "productSizes": [{"productSize": {"SKU": "S"}, "deliveredQuantity": 1}]}}),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1);

    // Someone else's changes, and the request log.
    let ids = control.add_unrelated_stock_changes(WH, 5).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(control.stock_changes().await.unwrap().len(), 1 + 20 + 5);
    let log = control.requests().await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.kind, RequestLogKind::Mutation);
    assert_eq!(last.status, 429);
    assert_eq!(last.descriptions, ["burst 20"]);
    assert!(last.retry_at_ms.unwrap() % 1000 == 0);
    let first = &log[0];
    assert_eq!(
        (first.status, first.applied, first.descriptions.clone()),
        (200, true, vec!["Cloudshelf sale 1".to_string()])
    );
    let counters = control.counters().await.unwrap();
    assert_eq!(counters.rate_limited, 1);
    assert_eq!(counters.mutations, 21);
}

#[tokio::test]
async fn the_binary_checks_the_token_and_exits_when_its_stdin_closes() {
    let sim = spawn();
    let resp = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth("wrong")
        .json(&json!({"query": "{ rateLimits { type } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let status = sim.close_stdin_and_wait().expect("wait for the process");
    assert!(status.success(), "{status}");
}
