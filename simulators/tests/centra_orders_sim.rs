//! Black-box tests of the simulated Centra Order API (`POST /order-api/<plugin>/order`) and of the order
//! reads on the same server's GraphQL endpoint, over raw HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::centra::{CentraSim, CentraSimConfig, Fault, FaultTarget, RetryAfterStyle};

const STORE: u64 = 1;
const OTHER_STORE: u64 = 2;
const PLUGIN: &str = "kiosk-uk";
const SECRET: &str = "order-api-secret";
const MARKET: u64 = 3;
const PRICELIST: u64 = 5;
const OTHER_MARKET: u64 = 4;
const OTHER_PRICELIST: u64 = 6;
const PAYMENT_PLUGIN: u64 = 36;

const S: &str = "Prod1Var1S";
const M: &str = "Prod1Var1M";
const M_EAN: &str = "7350000000029";
const INACTIVE: &str = "Prod2Var1OS";
const FAR: &str = "Prod3Var1L";

async fn sim() -> CentraSim {
    sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await
}

async fn sim_with(config: CentraSimConfig) -> CentraSim {
    let sim = CentraSim::start(config).await;
    sim.add_order_plugin(PLUGIN, SECRET, STORE);
    sim.add_order_plugin("kiosk-se", "other-secret", OTHER_STORE);
    sim.add_market(MARKET, STORE);
    sim.add_market(OTHER_MARKET, OTHER_STORE);
    sim.add_pricelist(PRICELIST, STORE, "GBP");
    sim.add_pricelist(OTHER_PRICELIST, OTHER_STORE, "SEK");
    sim.add_shipping_option("home-delivery-uk", STORE);
    sim.add_shipping_option("home-delivery-se", OTHER_STORE);
    sim.set_payment_plugin(PAYMENT_PLUGIN);
    sim.add_size(S, Some("7350000000012"), true);
    sim.add_size(M, Some(M_EAN), true);
    sim.add_size(INACTIVE, None, false);
    sim.add_size(FAR, Some("7350000000036"), true);
    sim
}

/// A kiosk order (docs/orders.md §2): 2 × S at 49.00 plus 5.00 shipping, captured at the kiosk.
fn order_body(tag: &str) -> Value {
    json!({
        "marketId": MARKET, "pricelistId": PRICELIST, "shippingList": "home-delivery-uk",
        "shippingValue": 5.0, "sendEmail": true,
        "address": {"email": "a@b.com", "firstName": "A", "lastName": "B", "address": "1 High St",
                    "zipcode": "W1 1AA", "city": "London", "country": "GB"},
        "products": [{"sku": S, "qty": 2, "unitPrice": 49.0}],
        "payment": {"id": PAYMENT_PLUGIN,
                    "capture": {"status": 1, "transaction": "psp_123", "method": "card", "amount": 103.0}},
        "internalComment": format!("Cloudshelf kiosk order {tag}"),
        "extraAttributes": {"cloudshelf_order": tag},
    })
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn read(resp: reqwest::Response) -> Reply {
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

async fn create_as(sim: &CentraSim, plugin: &str, secret: Option<&str>, body: Value) -> Reply {
    let mut req = reqwest::Client::new()
        .post(format!("{}/order", sim.order_api_base(plugin)))
        .json(&body);
    if let Some(s) = secret {
        req = req.header("API-Authorization", s);
    }
    read(req.send().await.expect("request reaches the simulator")).await
}

async fn create(sim: &CentraSim, body: Value) -> Reply {
    create_as(sim, PLUGIN, Some(SECRET), body).await
}

async fn gql(sim: &CentraSim, query: &str, variables: Value) -> Reply {
    let resp = reqwest::Client::new()
        .post(sim.graphql_url())
        .bearer_auth(sim.token())
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request reaches the simulator");
    read(resp).await
}

#[tokio::test]
async fn create_stores_the_order_as_sent() {
    let sim = sim().await;
    let r = create(&sim, order_body("CS-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"status": "ok", "orders": [1000]}));
    assert_eq!(sim.order_create_count(), 1);

    let o = sim.order(1000).expect("stored");
    assert_eq!(
        (o.store_id, o.market_id, o.pricelist_id),
        (STORE, MARKET, PRICELIST)
    );
    assert_eq!(o.plugin, PLUGIN);
    assert_eq!(o.currency, "GBP");
    assert_eq!(o.status, "PENDING");
    assert_eq!(o.grand_total, 103.0);
    assert_eq!(o.shipping_uri.as_deref(), Some("home-delivery-uk"));
    assert_eq!(
        o.internal_comment.as_deref(),
        Some("Cloudshelf kiosk order CS-1")
    );
    assert_eq!(o.extra_attributes["cloudshelf_order"], "CS-1");
    assert_eq!(o.lines.len(), 1);
    assert_eq!((o.lines[0].sku.as_str(), o.lines[0].qty), (S, 2));
    assert_eq!(o.billing_address.country.as_deref(), Some("GB"));
    assert_eq!(o.shipping_address, o.billing_address);
    assert_eq!(o.payment_history.len(), 1);
    let p = &o.payment_history[0];
    assert_eq!(
        (p.entry_type.as_str(), p.status.as_str(), p.value),
        ("CAPTURE", "SUCCESS", 103.0)
    );
    assert_eq!(p.transaction.as_deref(), Some("psp_123"));
    assert!(o.customer.is_guest);
    assert!(
        (chrono::Utc::now() - o.created_at).num_seconds().abs() < 60,
        "createdAt is now"
    );

    // The next order takes the next number; an authorisation records AUTH.
    let mut body = order_body("CS-2");
    body["payment"] = json!({"id": PAYMENT_PLUGIN,
        "auth": {"status": 1, "transaction": "psp_9", "method": "card", "amount": 103.0}});
    let r = create(&sim, body).await;
    assert_eq!(r.body["orders"], json!([1001]), "{}", r.body);
    assert_eq!(
        sim.order(1001).unwrap().payment_history[0].entry_type,
        "AUTH"
    );
}

#[tokio::test]
async fn split_skus_go_into_a_second_order() {
    let sim = sim().await;
    sim.set_split_sku(FAR);
    let mut body = order_body("CS-split");
    body["products"] = json!([
        {"sku": S, "qty": 1, "unitPrice": 49.0},
        {"sku": FAR, "qty": 2, "unitPrice": 20.0},
        {"ean": M_EAN, "qty": 1, "unitPrice": 10.0},
    ]);
    let r = create(&sim, body).await;
    assert_eq!(
        r.body,
        json!({"status": "ok", "orders": [1000, 1001]}),
        "{}",
        r.body
    );
    assert_eq!(sim.order_create_count(), 1, "one create, two orders");

    let first = sim.order(1000).unwrap();
    let second = sim.order(1001).unwrap();
    let skus = |o: &simulators::centra::SimOrder| {
        o.lines.iter().map(|l| l.sku.clone()).collect::<Vec<_>>()
    };
    assert_eq!(skus(&first), [S, M]);
    assert_eq!(skus(&second), [FAR]);
    // Shipping and the payment record stay on the first order.
    assert_eq!(first.grand_total, 49.0 + 10.0 + 5.0);
    assert_eq!(second.grand_total, 40.0);
    assert_eq!(first.payment_history.len(), 1);
    assert!(second.payment_history.is_empty());
    assert_eq!(first.internal_comment, second.internal_comment);

    // Only split SKUs: nothing to split from.
    let mut body = order_body("CS-far");
    body["products"] = json!([{"sku": FAR, "qty": 1, "unitPrice": 20.0}]);
    let r = create(&sim, body).await;
    assert_eq!(r.body["orders"], json!([1002]));
}

#[tokio::test]
async fn each_error_code_is_reported_and_creates_nothing() {
    let sim = sim().await;
    sim.block_customer_registration("blocked@b.com");
    sim.set_order_stock(M, 1);
    // An existing number for -5.
    let mut taken = order_body("CS-taken");
    taken["orderNumber"] = json!(5000);
    assert_eq!(create(&sim, taken).await.body["orders"], json!([5000]));

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = order_body("CS-bad");
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Value, i64, &str)> = vec![
        (
            "inactive size",
            with(&|b| b["products"][0]["sku"] = json!(INACTIVE)),
            -1,
            "not active",
        ),
        (
            "unknown SKU",
            with(&|b| b["products"][0]["sku"] = json!("nope")),
            -1,
            "not found",
        ),
        (
            "market of another store",
            with(&|b| b["marketId"] = json!(OTHER_MARKET)),
            -1,
            "Market 4",
        ),
        (
            "pricelist of another store",
            with(&|b| b["pricelistId"] = json!(OTHER_PRICELIST)),
            -1,
            "Pricelist 6",
        ),
        (
            "short of stock",
            with(&|b| b["products"] = json!([{"sku": M, "qty": 2, "unitPrice": 1.0}])),
            -2,
            "Not enough stock",
        ),
        (
            "no products",
            with(&|b| b["products"] = json!([])),
            -3,
            "No products",
        ),
        (
            "products absent",
            with(&|b| {
                b.as_object_mut().unwrap().remove("products");
            }),
            -3,
            "No products",
        ),
        (
            "no e-mail",
            with(&|b| {
                b["address"].as_object_mut().unwrap().remove("email");
            }),
            -4,
            "email",
        ),
        (
            "no country",
            with(&|b| {
                b["address"].as_object_mut().unwrap().remove("country");
            }),
            -4,
            "country",
        ),
        (
            "unknown shipping option",
            with(&|b| b["shippingList"] = json!("home-delivery-se")),
            -4,
            "shippingList",
        ),
        (
            "order number taken",
            with(&|b| b["orderNumber"] = json!(5000)),
            -5,
            "5000",
        ),
        (
            "registration refused",
            with(&|b| {
                b["customerRegister"] = json!(true);
                b["address"]["email"] = json!("blocked@b.com");
            }),
            -6,
            "blocked@b.com",
        ),
        (
            "other payment plugin",
            with(&|b| b["payment"]["id"] = json!(99)),
            -7,
            "Payment plugin 99",
        ),
    ];
    for (what, body, code, needle) in cases {
        let r = create(&sim, body).await;
        // HTTP 400 is the simulator's (UNVERIFIED) choice; the body shape is Centra's.
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
        assert_eq!(r.body["status"], json!("no"), "{what}");
        assert_eq!(r.body["code"], json!(code), "{what}: {}", r.body);
        let msg = r.body["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    }

    let r = read(
        reqwest::Client::new()
            .post(format!("{}/order", sim.order_api_base(PLUGIN)))
            .header("API-Authorization", SECRET)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["code"], json!(-7), "{}", r.body);

    assert_eq!(sim.orders().len(), 1, "only the seeded order exists");
    assert_eq!(sim.order_create_count(), 1);
    assert_eq!(
        sim.order_stock(M),
        Some(1),
        "a refused order allocates nothing"
    );
    assert!(
        sim.customers().iter().all(|c| c.email != "blocked@b.com"),
        "no customer for a refused registration"
    );
}

#[tokio::test]
async fn wrong_or_missing_secret_is_401_and_unknown_plugin_404() {
    let sim = sim().await;
    for secret in [None, Some("wrong"), Some("other-secret")] {
        let r = create_as(&sim, PLUGIN, secret, order_body("CS-1")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{secret:?}");
        assert_eq!(r.body["status"], json!("no"));
        assert!(r.body["msg"].is_string());
    }
    let r = create_as(&sim, "nope", Some(SECRET), order_body("CS-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(sim.orders().is_empty());
    assert_eq!(sim.order_api_request_count(), 4);
    // A plugin only sees its own store's markets.
    let r = create_as(&sim, "kiosk-se", Some("other-secret"), order_body("CS-1")).await;
    assert_eq!(r.body["code"], json!(-1), "{}", r.body);
}

#[tokio::test]
async fn guests_are_created_per_order_and_registered_customers_reused() {
    let sim = sim().await;
    let mut numbers = Vec::new();
    for register in [None, Some(false), Some(true), Some(true)] {
        let mut body = order_body("CS-c");
        if let Some(r) = register {
            body["customerRegister"] = json!(r);
        }
        let r = create(&sim, body).await;
        numbers.push(r.body["orders"][0].as_u64().expect("created"));
    }
    let customers: Vec<_> = numbers
        .iter()
        .map(|n| sim.order(*n).unwrap().customer)
        .collect();
    assert!(customers[0].is_guest && customers[1].is_guest);
    assert_ne!(customers[0].id, customers[1].id, "one guest per order");
    assert!(!customers[2].is_guest);
    assert_eq!(
        customers[2], customers[3],
        "the registered customer is reused"
    );
    assert_eq!(customers[2].email, "a@b.com");
    assert_eq!(sim.customers().len(), 3);

    // customerId attaches to that customer; an unknown one is -6.
    let mut body = order_body("CS-c");
    body["customerId"] = json!(customers[2].id);
    let r = create(&sim, body).await;
    let n = r.body["orders"][0].as_u64().unwrap();
    assert_eq!(sim.order(n).unwrap().customer, customers[2]);
    let mut body = order_body("CS-c");
    body["customerId"] = json!(777);
    assert_eq!(create(&sim, body).await.body["code"], json!(-6));
}

#[tokio::test]
async fn order_stock_is_allocated_unless_skipped_or_forced() {
    let sim = sim().await;
    sim.set_order_stock(S, 3);
    assert_eq!(sim.order_stock(M), None, "unlimited until set");

    let r = create(&sim, order_body("CS-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(sim.order_stock(S), Some(1));

    let r = create(&sim, order_body("CS-2")).await;
    assert_eq!(r.body["code"], json!(-2), "{}", r.body);
    assert_eq!(sim.order_stock(S), Some(1));

    let mut body = order_body("CS-3");
    body["adjustStock"] = json!(false);
    assert_eq!(create(&sim, body).await.status, StatusCode::OK);
    assert_eq!(
        sim.order_stock(S),
        Some(1),
        "adjustStock false allocates nothing"
    );

    let mut body = order_body("CS-4");
    body["forceCreate"] = json!(true);
    assert_eq!(create(&sim, body).await.status, StatusCode::OK);
    assert_eq!(
        sim.order_stock(S),
        Some(0),
        "forced: the rest is back-ordered"
    );

    // Lines of the same SKU add up.
    sim.set_order_stock(M, 2);
    let mut body = order_body("CS-5");
    body["products"] = json!([
        {"sku": M, "qty": 1, "unitPrice": 1.0},
        {"ean": M_EAN, "qty": 2, "unitPrice": 1.0},
    ]);
    assert_eq!(create(&sim, body).await.body["code"], json!(-2));
    assert_eq!(sim.orders().len(), 3);
}

#[tokio::test]
async fn lost_response_creates_the_order_but_the_client_sees_no_success() {
    let sim = sim().await;
    sim.inject_on(FaultTarget::OrderApi, Fault::LoseResponseAfterApply);
    let result = reqwest::Client::new()
        .post(format!("{}/order", sim.order_api_base(PLUGIN)))
        .header("API-Authorization", SECRET)
        .json(&order_body("CS-lost"))
        .send()
        .await;
    let client_saw_success = match result {
        Err(_) => false,
        Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
    };
    assert!(!client_saw_success, "the client must not see the result");
    sim.wait_idle().await;
    assert_eq!(sim.order_create_count(), 1);
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].internal_comment.as_deref(),
        Some("Cloudshelf kiosk order CS-lost")
    );
}

#[tokio::test]
async fn server_error_and_hang_create_nothing_and_spare_graphql() {
    let sim = sim().await;
    sim.inject_on(FaultTarget::OrderApi, Fault::ServerError(503));
    // GraphQL requests do not take an Order-API fault.
    let r = gql(&sim, "{ rateLimits { type } }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.pending_faults(), 1);
    // Nor does an Order-API request take a GraphQL one.
    sim.inject(Fault::ServerError(500));
    let r = create(&sim, order_body("CS-1")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(sim.orders().is_empty());
    assert_eq!(sim.pending_faults(), 1);
    sim.clear_faults();

    sim.inject_on(
        FaultTarget::OrderApi,
        Fault::Hang(Duration::from_millis(600)),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let err = client
        .post(format!("{}/order", sim.order_api_base(PLUGIN)))
        .header("API-Authorization", SECRET)
        .json(&order_body("CS-2"))
        .send()
        .await
        .expect_err("client times out");
    assert!(err.is_timeout(), "{err}");
    sim.wait_idle().await;
    assert!(sim.orders().is_empty(), "a hung create never lands");
    assert_eq!(sim.order_create_count(), 0);

    // AnyRequest faults reach the Order API too.
    sim.inject_on(FaultTarget::AnyRequest, Fault::ServerError(502));
    assert_eq!(
        create(&sim, order_body("CS-3")).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        create(&sim, order_body("CS-3")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn injected_rate_limit_and_latency_apply_to_the_order_api() {
    let sim = sim_with(CentraSimConfig {
        rate_limits_enabled: false,
        retry_after_style: RetryAfterStyle::Seconds,
        ..CentraSimConfig::default()
    })
    .await;
    sim.inject_on(
        FaultTarget::OrderApi,
        Fault::RateLimited {
            retry_after: Duration::from_millis(2500),
        },
    );
    let r = create(&sim, order_body("CS-1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "3");
    assert_eq!(r.body["status"], json!("no"));
    assert!(sim.orders().is_empty());
    assert_eq!(sim.rate_limited_count(), 1);

    sim.set_latency(Duration::from_millis(150));
    let started = std::time::Instant::now();
    assert_eq!(
        create(&sim, order_body("CS-1")).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
}

const ORDER_FIELDS: &str = "id number status createdAt updatedAt internalComment store { id } market { id } \
    pricelist { id } grandTotal { value currency { code } } shippingPriceGroup { shippingOption { uri } } \
    lines { productSize { SKU EAN } quantity unitPrice { value } } \
    shipments { id number isShipped isCaptured capturedValue { value } } \
    paymentHistory { id entryType status value { value } }";

#[tokio::test]
async fn graphql_orders_by_number_show_what_was_created() {
    let sim = sim().await;
    sim.set_split_sku(FAR);
    let mut body = order_body("CS-1");
    body["products"] = json!([
        {"sku": S, "qty": 2, "unitPrice": 49.0},
        {"sku": FAR, "qty": 1, "unitPrice": 20.0},
    ]);
    create(&sim, body).await;
    create(&sim, order_body("CS-2")).await;

    let q = format!("query($n: [Int!]) {{ orders(where: {{number: $n}}) {{ {ORDER_FIELDS} }} }}");
    let r = gql(&sim, &q, json!({"n": [1000]})).await;
    assert_eq!(r.status, StatusCode::OK);
    let orders = r.body["data"]["orders"].as_array().expect("list").clone();
    assert_eq!(orders.len(), 1, "{}", r.body);
    let o = &orders[0];
    assert_eq!(o["number"], json!(1000));
    assert_eq!(o["status"], json!("PENDING"));
    assert_eq!(o["store"], json!({"id": STORE}));
    assert_eq!(o["market"], json!({"id": MARKET}));
    assert_eq!(o["pricelist"], json!({"id": PRICELIST}));
    assert_eq!(
        o["grandTotal"],
        json!({"value": 103.0, "currency": {"code": "GBP"}})
    );
    assert_eq!(
        o["shippingPriceGroup"],
        json!({"shippingOption": {"uri": "home-delivery-uk"}})
    );
    assert_eq!(
        o["lines"],
        json!([{"productSize": {"SKU": S, "EAN": "7350000000012"}, "quantity": 2, "unitPrice": {"value": 49.0}}])
    );
    assert_eq!(o["shipments"], json!([]));
    assert_eq!(o["paymentHistory"][0]["entryType"], json!("CAPTURE"));
    assert_eq!(o["paymentHistory"][0]["status"], json!("SUCCESS"));
    assert_eq!(o["paymentHistory"][0]["value"], json!({"value": 103.0}));
    let created = chrono::DateTime::parse_from_rfc3339(o["createdAt"].as_str().unwrap());
    assert!(created.is_ok(), "ISO-8601 createdAt: {}", o["createdAt"]);

    // Several numbers; the split-off order is there too.
    let r = gql(
        &sim,
        "{ orders(where: {number: [1001, 1002, 9]}) { number grandTotal { value } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["orders"],
        json!([{"number": 1001, "grandTotal": {"value": 20.0}}, {"number": 1002, "grandTotal": {"value": 103.0}}])
    );

    // Operator status changes show.
    sim.set_order_status(1000, "CONFIRMED");
    let r = gql(
        &sim,
        "{ orders(where: {number: 1000}) { status } }",
        json!({}),
    )
    .await;
    assert_eq!(r.body["data"]["orders"], json!([{"status": "CONFIRMED"}]));

    // Unknown fields and filter keys are GraphQL errors.
    let r = gql(&sim, "{ orders { nope } }", json!({})).await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    let r = gql(
        &sim,
        "{ orders(where: {email: \"x\"}) { number } }",
        json!({}),
    )
    .await;
    assert!(r.body["errors"].is_array(), "{}", r.body);
    assert!(r.body.get("data").is_none());
}

#[tokio::test]
async fn graphql_tag_search_filters_store_dates_and_pages() {
    let sim = sim().await;
    for tag in ["[cs:A]", "[cs:B]", "[CS:A] other case"] {
        create(&sim, order_body(tag)).await;
    }
    let mut se = order_body("[cs:A]");
    se["marketId"] = json!(OTHER_MARKET);
    se["pricelistId"] = json!(OTHER_PRICELIST);
    se["shippingList"] = json!("home-delivery-se");
    let r = create_as(&sim, "kiosk-se", Some("other-secret"), se).await;
    assert_eq!(r.body["orders"], json!([1003]), "{}", r.body);

    let q = "query($w: OrderFilter, $l: Int, $p: Int) { orders(where: $w, limit: $l, page: $p) { number internalComment } }";
    let numbers = |r: &Reply| -> Vec<u64> {
        r.body["data"]["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|o| o["number"].as_u64().unwrap())
            .collect()
    };
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    // search is loose (case-insensitive): clients must re-check the tag themselves.
    let r = gql(
        &sim,
        q,
        json!({"w": {"storeId": [STORE], "search": "[cs:a]", "createdAt": {"from": hour_ago}}}),
    )
    .await;
    assert_eq!(numbers(&r), [1000, 1002]);
    let r = gql(&sim, q, json!({"w": {"search": "[cs:A]"}})).await;
    assert_eq!(numbers(&r), [1000, 1002, 1003], "all stores");
    let r = gql(
        &sim,
        q,
        json!({"w": {"storeId": [OTHER_STORE], "search": "cs:A"}}),
    )
    .await;
    assert_eq!(numbers(&r), [1003]);
    let r = gql(
        &sim,
        q,
        json!({"w": {"search": "[cs:", "createdAt": {"from": in_an_hour}}}),
    )
    .await;
    assert!(numbers(&r).is_empty());
    let r = gql(&sim, q, json!({"w": {"createdAt": {"to": hour_ago}}})).await;
    assert!(numbers(&r).is_empty());
    // Centra's "YYYY-MM-DD HH:MM:SS" form is accepted as well.
    let r = gql(
        &sim,
        q,
        json!({"w": {"createdAt": {"from": "2000-01-01 00:00:00"}}}),
    )
    .await;
    assert_eq!(numbers(&r).len(), 4);

    // limit/page: 1-based pages, limit 1–200.
    let r = gql(&sim, q, json!({"l": 3, "p": 2})).await;
    assert_eq!(numbers(&r), [1003]);
    for bad in [0, 201] {
        let r = gql(&sim, q, json!({"l": bad})).await;
        let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("limit"), "limit {bad}: {}", r.body);
    }
    let r = gql(&sim, q, json!({"w": {"createdAt": {"from": "yesterday"}}})).await;
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("DateRange.from"));
}

#[tokio::test]
async fn shipments_and_returns_name_their_order() {
    let sim = sim().await;
    create(&sim, order_body("CS-1")).await;
    create(&sim, order_body("CS-2")).await;
    let shipment = sim.add_shipment(1001);
    sim.capture(1001, 103.0);
    let ret = sim.refund(1001, 49.0);
    assert_eq!(sim.order(1001).unwrap().returns[0].id, ret);

    let r = gql(
        &sim,
        "query($id: [Int!]) { shipments(where: {id: $id}) { id order { number } } }",
        json!({"id": [shipment]}),
    )
    .await;
    assert_eq!(
        r.body["data"]["shipments"],
        json!([{"id": shipment, "order": {"number": 1001}}])
    );
    let r = gql(
        &sim,
        "query($id: [Int!]) { returns(where: {id: $id}) { id order { number status } } }",
        json!({"id": [ret]}),
    )
    .await;
    assert_eq!(
        r.body["data"]["returns"],
        json!([{"id": ret, "order": {"number": 1001, "status": "PENDING"}}])
    );
    let r = gql(
        &sim,
        "{ shipments(where: {id: [999]}) { id } returns(where: {id: [999]}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(r.body["data"], json!({"shipments": [], "returns": []}));

    let r = gql(
        &sim,
        "{ orders(where: {number: [1001]}) { shipments { id number isShipped isCaptured capturedValue { value } order { number } } paymentHistory { entryType status value { value } } } }",
        json!({}),
    )
    .await;
    let o = &r.body["data"]["orders"][0];
    assert_eq!(
        o["shipments"],
        json!([{"id": shipment, "number": "1001-1", "isShipped": true, "isCaptured": true,
                 "capturedValue": {"value": 103.0}, "order": {"number": 1001}}])
    );
    let entries: Vec<(String, f64)> = o["paymentHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entryType"].as_str().unwrap().to_string(),
                e["value"]["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("CAPTURE".to_string(), 103.0),
            ("CAPTURE".to_string(), 103.0),
            ("REFUND".to_string(), 49.0)
        ]
    );
    // The other order is untouched.
    assert!(sim.order(1000).unwrap().shipments.is_empty());
}

#[tokio::test]
async fn order_queries_take_query_faults_and_count_against_rate_limits() {
    let sim = sim_with(CentraSimConfig {
        short_window: Duration::from_secs(600),
        ..CentraSimConfig::default()
    })
    .await;
    sim.inject_on(FaultTarget::Queries, Fault::ServerError(503));
    let q = "{ orders(limit: 1) { number } }";
    assert_eq!(
        gql(&sim, q, json!({})).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Growth tier: 60 requests per 10 s window (stretched here so nothing refills).
    let quota = simulators::centra::RateTier::Growth.quotas().requests_10s;
    for i in 0..quota {
        let r = gql(&sim, q, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.body);
    }
    let r = gql(&sim, q, json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sim.request_count(), quota + 2);
    // The Order API has its own (undocumented) limits; the GraphQL buckets do not stop it.
    assert_eq!(
        create(&sim, order_body("CS-1")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
#[should_panic(expected = "unknown order status")]
async fn operator_status_must_be_a_centra_status() {
    let sim = sim().await;
    create(&sim, order_body("CS-1")).await;
    sim.set_order_status(1000, "DONE");
}
