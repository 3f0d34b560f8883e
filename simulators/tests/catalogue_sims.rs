//! Black-box tests, over HTTP, of the catalogue reads and writes of both simulators: Centra's
//! `products` (sizes grouped under products and variants) and warehouse stock, Cloudshelf's
//! `products`, `locations`, `upsertProducts` and `upsertProductVariants`.

use reqwest::StatusCode;
use serde_json::{json, Value};
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, VariantSeed};

const WH: u64 = 12;

async fn post(
    url: &str,
    auth: (&str, String),
    query: &str,
    variables: Value,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header(auth.0, auth.1)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

// ---------------------------------------------------------------------------------------------
// Centra

async fn centra() -> CentraSim {
    let sim = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..CentraSimConfig::default()
    })
    .await;
    sim.add_warehouse(WH, "Store Stockholm");
    sim
}

async fn centra_gql(sim: &CentraSim, query: &str, variables: Value) -> Value {
    let (status, body) = post(
        &sim.graphql_url(),
        ("Authorization", format!("Bearer {}", sim.token())),
        query,
        variables,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

const CENTRA_PRODUCTS: &str = r#"
query Catalogue($status: [ProductStatus!], $limit: Int, $page: Int) {
  products(where: { status: $status }, limit: $limit, page: $page) {
    id productNumber status
    variants { id variantNumber status productSizes { id SKU EAN sizeNumber isActive } }
  }
}"#;

#[tokio::test]
async fn centra_products_group_sizes_under_variants_and_filter_by_status() {
    let sim = centra().await;
    let p1 = sim.add_product(
        "Prod1",
        "Var1",
        &[
            ("S", "Prod1Var1S", Some("7350000000012"), true),
            ("M", "Prod1Var1M", None, false),
        ],
    );
    let p1v2 = sim.add_product("Prod1", "Var2", &[("S", "Prod1Var2S", None, true)]);
    let p2 = sim.add_product("Prod2", "Var1", &[("OS", "Prod2Var1OS", None, true)]);
    assert_eq!(p1v2.product_id, p1.product_id);
    assert_ne!(p1v2.variant_id, p1.variant_id);
    sim.set_product_status(p2.product_id, "INACTIVE");
    sim.set_variant_status(p1v2.variant_id, "INACTIVE");

    let body = centra_gql(&sim, CENTRA_PRODUCTS, json!({"status": ["ACTIVE"]})).await;
    assert_eq!(
        body["data"]["products"],
        json!([{
            "id": p1.product_id,
            "productNumber": "Prod1",
            "status": "ACTIVE",
            "variants": [
                {"id": p1.variant_id, "variantNumber": "Var1", "status": "ACTIVE", "productSizes": [
                    {"id": p1.size_ids[0], "SKU": "Prod1Var1S", "EAN": "7350000000012", "sizeNumber": "S", "isActive": true},
                    {"id": p1.size_ids[1], "SKU": "Prod1Var1M", "EAN": null, "sizeNumber": "M", "isActive": false},
                ]},
                {"id": p1v2.variant_id, "variantNumber": "Var2", "status": "INACTIVE", "productSizes": [
                    {"id": p1v2.size_ids[0], "SKU": "Prod1Var2S", "EAN": null, "sizeNumber": "S", "isActive": true},
                ]},
            ],
        }]),
        "{body}"
    );

    let body = centra_gql(
        &sim,
        CENTRA_PRODUCTS,
        json!({"status": ["ACTIVE", "INACTIVE"]}),
    )
    .await;
    let ids: Vec<u64> = body["data"]["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [p1.product_id, p2.product_id]);
    let body = centra_gql(&sim, CENTRA_PRODUCTS, json!({"status": "INACTIVE"})).await;
    assert_eq!(body["data"]["products"][0]["productNumber"], "Prod2");
    assert_eq!(body["data"]["products"].as_array().unwrap().len(), 1);

    // The sizes are ordinary sizes: stock can be seeded and read per size.
    sim.set_physical(WH, "Prod1Var1S", 4);
    let body = centra_gql(
        &sim,
        r#"{ products(where: {status: [ACTIVE]}) { variants { productSizes { SKU stock { physicalQuantity freeToAllocateQuantity } } } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["products"][0]["variants"][0]["productSizes"][0],
        json!({"SKU": "Prod1Var1S", "stock": [{"physicalQuantity": 4, "freeToAllocateQuantity": 4}]})
    );
}

#[tokio::test]
async fn a_size_added_alone_is_a_product_of_its_own() {
    let sim = centra().await;
    let id = sim.add_size("Loose1", Some("7350000000029"), true);
    let body = centra_gql(&sim, CENTRA_PRODUCTS, json!({"status": ["ACTIVE"]})).await;
    let products = body["data"]["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{body}");
    assert_eq!(products[0]["productNumber"], "Loose1");
    assert_eq!(
        products[0]["variants"][0]["productSizes"],
        json!([{"id": id, "SKU": "Loose1", "EAN": "7350000000029", "sizeNumber": "-", "isActive": true}])
    );
}

#[tokio::test]
async fn centra_products_page_with_limit_and_page_and_sort() {
    let sim = centra().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let sku = format!("P{i}V1S");
        ids.push(
            sim.add_product(&format!("P{i}"), "V1", &[("S", &sku, None, true)])
                .product_id,
        );
    }
    let page = |n: i64| json!({"limit": 2, "page": n});
    let mut seen = Vec::new();
    for n in 1..=3 {
        let body = centra_gql(&sim, CENTRA_PRODUCTS, page(n)).await;
        let got = body["data"]["products"].as_array().unwrap().clone();
        assert_eq!(got.len(), if n < 3 { 2 } else { 1 }, "page {n}");
        seen.extend(got.iter().map(|p| p["id"].as_u64().unwrap()));
    }
    assert_eq!(seen, ids);
    let body = centra_gql(&sim, CENTRA_PRODUCTS, page(4)).await;
    assert_eq!(body["data"]["products"], json!([]));

    // A change moves a product to the front of updatedAt_DESC.
    sim.set_product_status(ids[1], "INACTIVE");
    let body = centra_gql(
        &sim,
        "{ products(sort: [updatedAt_DESC], limit: 1) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["products"], json!([{"id": ids[1]}]));
    // ProductSort has only updatedAt_DESC in the published schema: other values are refused.
    let body = centra_gql(
        &sim,
        "{ products(sort: [id_DESC], limit: 1) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body,
        json!({"errors": [{
            "message": "Value \"id_DESC\" does not exist in \"ProductSort\" enum.",
            "locations": [{"line": 1, "column": 19}],
            "extensions": {"category": "graphql"},
        }]})
    );
}

#[tokio::test]
async fn centra_products_reject_bad_arguments_as_graphql_errors() {
    let sim = centra().await;
    sim.add_product("P1", "V1", &[("S", "P1V1S", None, true)]);
    for (query, needle) in [
        ("{ products(limit: 201) { id } }", "limit"),
        ("{ products(page: 0) { id } }", "page"),
        ("{ products(where: {status: [DELETED]}) { id } }", "DELETED"),
        ("{ products(where: {name: \"x\"}) { id } }", "name"),
        ("{ products(sort: [name_ASC]) { id } }", "name_ASC"),
        ("{ products(first: 2) { id } }", "first"),
        ("{ products { id nope } }", "nope"),
    ] {
        let body = centra_gql(&sim, query, json!({})).await;
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{query}: {body}");
        assert!(
            body["data"].is_null() || body["data"]["products"].is_null(),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn centra_warehouse_stock_of_catalogue_sizes_has_physical_and_free_to_allocate() {
    let sim = centra().await;
    let ids = sim.add_product(
        "P1",
        "V1",
        &[("S", "P1V1S", Some("1"), true), ("M", "P1V1M", None, true)],
    );
    sim.set_physical(WH, "P1V1S", 7);
    sim.set_allocated(WH, "P1V1S", 2);
    sim.set_physical(WH, "P1V1M", 1);
    let body = centra_gql(
        &sim,
        r#"query($wh: Int!, $page: Int!) { warehouses(where: {id: [$wh]}) {
             id stock(limit: 1, page: $page) { productSize { id SKU EAN } physicalQuantity freeToAllocateQuantity } } }"#,
        json!({"wh": WH, "page": 1}),
    )
    .await;
    assert_eq!(
        body["data"]["warehouses"][0]["stock"],
        json!([{"productSize": {"id": ids.size_ids[0], "SKU": "P1V1S", "EAN": "1"},
                "physicalQuantity": 7, "freeToAllocateQuantity": 5}])
    );
}

// ---------------------------------------------------------------------------------------------
// Cloudshelf

async fn cloudshelf() -> CloudshelfSim {
    CloudshelfSim::start(CloudshelfSimConfig::default()).await
}

async fn cs_gql(sim: &CloudshelfSim, query: &str, variables: Value) -> Value {
    let (status, body) = post(
        &sim.graphql_url(),
        ("Authorization", format!("Token {}", sim.api_key())),
        query,
        variables,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

const UPSERT_PRODUCTS: &str = r#"
mutation($input: [ProductInput!]!) {
  upsertProducts(input: $input) { products { id platformProvidedId displayName handle } userErrors { code message } }
}"#;

const UPSERT_VARIANTS: &str = r#"
mutation($inputs: [UpsertVariantsInput!]!) {
  upsertProductVariants(inputs: $inputs) {
    productVariants { id platformProvidedId sku barcode isInStock availableToPurchase product { platformProvidedId } }
    userErrors { code message }
  }
}"#;

const PRODUCTS: &str = r#"
query($first: Int, $after: String, $text: String) {
  products(first: $first, after: $after, textSearch: $text, sortBy: {createdAt: ASC}) {
    edges { cursor node { id platformProvidedId displayName
      productVariants { id platformProvidedId sku barcode isInStock availableToPurchase } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"#;

const PRODUCT_1: &str = "gid://external/CentraProduct/1001";
const SIZE_S: &str = "gid://external/CentraProductSize/P1V1S";
const SIZE_M: &str = "gid://external/CentraProductSize/P1V1M";

#[tokio::test]
async fn cloudshelf_upserts_create_then_update_by_external_gid() {
    let sim = cloudshelf().await;
    let body = cs_gql(
        &sim,
        UPSERT_PRODUCTS,
        json!({"input": [{"id": PRODUCT_1, "displayName": "Linen Shirt"}]}),
    )
    .await;
    assert_eq!(body["data"]["upsertProducts"]["userErrors"], json!([]));
    let product = &body["data"]["upsertProducts"]["products"][0];
    assert_eq!(product["platformProvidedId"], PRODUCT_1);
    assert_eq!(product["handle"], "linen-shirt");
    let product_gid = product["id"].as_str().unwrap().to_string();
    assert!(product_gid.starts_with("gid://cloudshelf/Product/"));

    let body = cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": [{"productId": PRODUCT_1, "variants": [
            {"id": SIZE_S, "sku": "P1V1S", "barcode": "7350000000012", "isInStock": true},
            {"id": SIZE_M, "sku": "P1V1M", "availableToPurchase": true},
        ]}]}),
    )
    .await;
    let payload = &body["data"]["upsertProductVariants"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    assert_eq!(
        payload["productVariants"][0]["product"]["platformProvidedId"],
        PRODUCT_1
    );
    assert_eq!(payload["productVariants"][0]["isInStock"], true);
    assert_eq!(payload["productVariants"][1]["availableToPurchase"], true);
    assert_eq!(payload["productVariants"][1]["isInStock"], false);

    // Update by the same external gids: renamed, barcode changed, nothing new created.
    let body = cs_gql(
        &sim,
        UPSERT_PRODUCTS,
        json!({"input": [{"id": PRODUCT_1, "displayName": "Linen Shirt Blue"}]}),
    )
    .await;
    assert_eq!(
        body["data"]["upsertProducts"]["products"][0]["id"],
        product_gid.as_str()
    );
    cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": {"productId": product_gid, "variants": {"id": SIZE_M, "barcode": "7350000000029"}}}),
    )
    .await;
    let products = sim.products();
    assert_eq!(products.len(), 1);
    assert_eq!(products[0].display_name, "Linen Shirt Blue");
    assert_eq!(products[0].variant_ids.len(), 2);
    let m = sim
        .product_variant(SIZE_M)
        .expect("variant by external gid");
    assert_eq!(m.sku.as_deref(), Some("P1V1M"));
    assert_eq!(m.barcode.as_deref(), Some("7350000000029"));
    assert!(m.available_to_purchase);
    assert_eq!(sim.catalogue_upsert_counts(), (2, 3));

    // Visible through the paginated read.
    let body = cs_gql(&sim, PRODUCTS, json!({"first": 5})).await;
    let node = &body["data"]["products"]["edges"][0]["node"];
    assert_eq!(node["displayName"], "Linen Shirt Blue");
    assert_eq!(
        node["productVariants"],
        json!([
            {"id": sim.product_variant(SIZE_S).unwrap().id, "platformProvidedId": SIZE_S, "sku": "P1V1S",
             "barcode": "7350000000012", "isInStock": true, "availableToPurchase": false},
            {"id": m.id, "platformProvidedId": SIZE_M, "sku": "P1V1M",
             "barcode": "7350000000029", "isInStock": false, "availableToPurchase": true},
        ])
    );
}

#[tokio::test]
async fn cloudshelf_upsert_refusals_are_user_errors_and_the_rest_applies() {
    let sim = cloudshelf().await;
    let body = cs_gql(
        &sim,
        UPSERT_PRODUCTS,
        json!({"input": [
            {"id": "gid://external/CentraProduct/1"},
            {"id": "gid://cloudshelf/Product/NOPE", "displayName": "x"},
            {"id": "gid://external/CentraProduct/2", "displayName": "Two"},
        ]}),
    )
    .await;
    let payload = &body["data"]["upsertProducts"];
    let codes: Vec<&str> = payload["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ENTITY_CREATION_MISSING_FIELD", "ENTITY_NOT_FOUND"]);
    assert_eq!(payload["products"].as_array().unwrap().len(), 1);

    let body = cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": [
            {"productId": "gid://external/CentraProduct/1", "variants": [{"id": SIZE_S, "sku": "P1V1S"}]},
            {"productId": "gid://external/CentraProduct/2", "variants": [{"id": SIZE_M, "sku": "P1V1M"}]},
        ]}),
    )
    .await;
    let payload = &body["data"]["upsertProductVariants"];
    assert_eq!(payload["userErrors"][0]["code"], "ENTITY_NOT_FOUND");
    assert_eq!(payload["productVariants"][0]["sku"], "P1V1M");
    assert!(sim.product_variant(SIZE_S).is_none());

    // A product gid where a variant gid belongs.
    let body = cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": [{"productId": "gid://external/CentraProduct/2",
                           "variants": [{"id": "gid://external/CentraProduct/2"}]}]}),
    )
    .await;
    assert_eq!(
        body["data"]["upsertProductVariants"]["userErrors"][0]["code"],
        "ENTITY_INVALID_FIELD"
    );

    // Malformed input is refused whole, before anything runs.
    let body = cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": [{"productId": "gid://external/CentraProduct/2", "variants": [{"colour": "red"}]}]}),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = cs_gql(
        &sim,
        "mutation { upsertProductVariants(input: []) { userErrors { code } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(
        body["errors"][1]["message"],
        json!("Unknown argument \"input\" on field \"Mutation.upsertProductVariants\".")
    );
    assert_eq!(sim.catalogue_upsert_counts(), (1, 1));
}

#[tokio::test]
async fn cloudshelf_products_page_by_cursor_and_search() {
    let sim = cloudshelf().await;
    for i in 0..7 {
        let p = sim.add_product(
            Some(&format!("gid://external/CentraProduct/{i}")),
            &format!("Item {i}"),
        );
        sim.add_product_variant(
            &p,
            VariantSeed {
                platform_provided_id: Some(format!("gid://external/CentraProductSize/SKU{i}")),
                sku: Some(format!("SKU{i}")),
                barcode: Some(format!("73500000000{i}")),
            },
        );
    }
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let body = cs_gql(&sim, PRODUCTS, json!({"first": 3, "after": after})).await;
        let conn = &body["data"]["products"];
        assert_eq!(conn["totalCount"], 7);
        for e in conn["edges"].as_array().unwrap() {
            seen.push(
                e["node"]["productVariants"][0]["sku"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("SKU{i}")).collect::<Vec<_>>());

    let body = cs_gql(&sim, PRODUCTS, json!({"text": "sku4"})).await;
    assert_eq!(body["data"]["products"]["totalCount"], 1);
    assert_eq!(
        body["data"]["products"]["edges"][0]["node"]["displayName"],
        "Item 4"
    );
    let body = cs_gql(&sim, PRODUCTS, json!({"after": "zz"})).await;
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cursor"));
}

#[tokio::test]
async fn cloudshelf_variant_in_stock_follows_its_stock_levels() {
    let sim = cloudshelf().await;
    let loc = sim.add_location(Some("gid://external/CentraWarehouse/12"));
    let p = sim.add_product(Some(PRODUCT_1), "Shirt");
    let v = sim.add_product_variant(
        &p,
        VariantSeed {
            platform_provided_id: Some(SIZE_S.into()),
            sku: Some("P1V1S".into()),
            barcode: None,
        },
    );
    assert!(!sim.product_variant(&v).unwrap().is_in_stock);
    sim.set_variant_flags(SIZE_S, true, false);
    assert!(sim.product_variant(&v).unwrap().is_in_stock);

    let stock = |qty: i64| json!({"input": [{"locationId": "gid://external/CentraWarehouse/12", "productVariantId": SIZE_S, "quantity": qty}]});
    let upsert = "mutation($input: [StockLevelInput!]!) { upsertStockLevels(input: $input) { userErrors { code } } }";
    let query = r#"{ products { edges { node { productVariants {
        isInStock stockLevels { isInStock location { id platformProvidedId } } } } } } }"#;
    // Once it has stock levels, they decide.
    cs_gql(&sim, upsert, stock(0)).await;
    let body = cs_gql(&sim, query, json!({})).await;
    let variant = &body["data"]["products"]["edges"][0]["node"]["productVariants"][0];
    assert_eq!(
        *variant,
        json!({"isInStock": false, "stockLevels": [{"isInStock": false,
               "location": {"id": loc, "platformProvidedId": "gid://external/CentraWarehouse/12"}}]})
    );
    cs_gql(&sim, upsert, stock(3)).await;
    let body = cs_gql(&sim, query, json!({})).await;
    assert_eq!(
        body["data"]["products"]["edges"][0]["node"]["productVariants"][0]["isInStock"],
        true
    );
}

#[tokio::test]
async fn cloudshelf_variants_created_by_upsert_take_stock_levels() {
    let sim = cloudshelf().await;
    sim.add_location(Some("gid://external/CentraWarehouse/12"));
    cs_gql(
        &sim,
        UPSERT_PRODUCTS,
        json!({"input": [{"id": PRODUCT_1, "displayName": "Shirt"}]}),
    )
    .await;
    cs_gql(
        &sim,
        UPSERT_VARIANTS,
        json!({"inputs": [{"productId": PRODUCT_1, "variants": [{"id": SIZE_S, "sku": "P1V1S"}]}]}),
    )
    .await;
    let body = cs_gql(
        &sim,
        "mutation($input: [StockLevelInput!]!) { upsertStockLevels(input: $input) { userErrors { code } } }",
        json!({"input": [{"locationId": "gid://external/CentraWarehouse/12", "productVariantId": SIZE_S, "quantity": 2}]}),
    )
    .await;
    assert_eq!(body["data"]["upsertStockLevels"]["userErrors"], json!([]));
    let level = sim
        .stock_level("gid://external/CentraWarehouse/12", SIZE_S)
        .expect("level");
    assert_eq!(level.quantity, 2);
    assert!(sim.product_variant(SIZE_S).unwrap().is_in_stock);
}

#[tokio::test]
async fn cloudshelf_locations_page_by_cursor() {
    let sim = cloudshelf().await;
    let ids: Vec<String> = (0..5)
        .map(|i| sim.add_location(Some(&format!("gid://external/CentraWarehouse/{i}"))))
        .collect();
    let query = r#"query($after: String) { locations(first: 2, after: $after) {
        edges { node { id platformProvidedId } } pageInfo { hasNextPage endCursor } totalCount } }"#;
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let body = cs_gql(&sim, query, json!({"after": after})).await;
        let conn = &body["data"]["locations"];
        assert_eq!(conn["totalCount"], 5, "{body}");
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, ids);
    let body = cs_gql(
        &sim,
        "{ locations(fulfillsOnlineOrders: true) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn cloudshelf_catalogue_reads_obey_the_complexity_limit() {
    let sim = cloudshelf().await;
    // Per edge: edges, node, id, productVariants, id, sku, barcode, isInStock = 8; 62 × 8 + 1 = 497.
    let q = |first: u64| {
        format!(
            "{{ products(first: {first}) {{ edges {{ node {{ id productVariants {{ id sku barcode isInStock }} }} }} }} }}"
        )
    };
    let body = cs_gql(&sim, &q(62), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = cs_gql(&sim, &q(63), json!({})).await;
    assert_eq!(error_code(&body), "QUERY_COMPLEXITY", "{body}");
    assert!(body.get("data").is_none());
    // Without `first`, the default page size (10) is what counts.
    let body = cs_gql(&sim, "{ products { edges { node { id } } } }", json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Unknown fields of the new types are refused like any other.
    let body = cs_gql(&sim, "{ products { edges { node { price } } } }", json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
}
