//! The Cloudshelf client against the loopback Cloudshelf simulator.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use shared::cloudshelf::{
    CloudshelfClient, CloudshelfError, CloudshelfOrderStatus, StockLevelUpdate,
    MAX_ORDERS_PAGE_SIZE, STOCK_LEVELS_CHUNK,
};
use shared::core::money::Amount;
use simulators::cloudshelf::{
    CloudshelfFault, CloudshelfSim, CloudshelfSimConfig, FaultTarget, OrderSeed, OrderStatus,
    VariantSeed,
};

const ORDER_1: &str = "gid://cloudshelf/Order/01JAAAAAAAAAAAAAAAAAAAAAA1";

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

fn client(sim: &CloudshelfSim) -> CloudshelfClient {
    CloudshelfClient::new(sim.graphql_url(), sim.api_key(), Duration::from_secs(5))
}

#[tokio::test]
async fn order_read_maps_lines_and_prices() {
    let sim = sim().await;
    let order = client(&sim).order(ORDER_1).await.unwrap().expect("known");
    assert_eq!(order.id, ORDER_1);
    assert_eq!(order.status, CloudshelfOrderStatus::DraftBasket);
    assert_eq!(order.third_party_id, None);
    assert_eq!(order.updated_at, at(0));
    assert_eq!(order.lines.len(), 2);
    let l = &order.lines[0];
    assert_eq!(l.product_variant_id, "gid://external/CentraSize/Prod1Var1S");
    assert_eq!(l.quantity, 2);
    assert_eq!(l.price, Amount::parse("49.50").unwrap());
    assert_eq!(l.currency, "EUR");
    assert!(!l.product_variant_name.is_empty());
    // A float that is not exact in binary still lands on the right thousandth.
    assert_eq!(order.lines[1].price, Amount::parse("19.99").unwrap());

    assert_eq!(
        client(&sim)
            .order("gid://cloudshelf/Order/01JNOPE")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn set_order_status_is_visible_through_order() {
    let sim = sim().await;
    let c = client(&sim);
    c.set_order_status(ORDER_1, CloudshelfOrderStatus::Paid, Some("centra-1001"))
        .await
        .unwrap();
    let order = c.order(ORDER_1).await.unwrap().unwrap();
    assert_eq!(order.status, CloudshelfOrderStatus::Paid);
    assert_eq!(order.third_party_id.as_deref(), Some("centra-1001"));
    assert!(order.updated_at > at(0));

    // Without a new third-party id the stored one stays.
    c.set_order_status(ORDER_1, CloudshelfOrderStatus::Refunded, None)
        .await
        .unwrap();
    let snap = sim.order(ORDER_1).unwrap();
    assert_eq!(snap.status, OrderStatus::Refunded);
    assert_eq!(snap.third_party_id.as_deref(), Some("centra-1001"));
    assert_eq!(sim.upsert_count(), 2);
    let second = &sim.upserts()[1].input;
    assert!(second.get("newThirdPartyId").is_none(), "{second}");
}

#[tokio::test]
async fn unknown_order_is_a_permanent_entity_not_found() {
    let sim = sim().await;
    let err = client(&sim)
        .set_order_status(
            "gid://cloudshelf/Order/01JMISSINGMISSINGMISSING00",
            CloudshelfOrderStatus::Paid,
            None,
        )
        .await
        .unwrap_err();
    assert!(err.has_user_error("ENTITY_NOT_FOUND"), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(sim.upsert_count(), 0);
}

#[tokio::test]
async fn server_error_is_transient() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::ServerError);
    let err = client(&sim).order(ORDER_1).await.unwrap_err();
    assert!(matches!(err, CloudshelfError::Transient(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn hang_is_transient_within_the_timeout() {
    let sim = sim().await;
    sim.inject_on(
        FaultTarget::Mutations,
        CloudshelfFault::Hang(Duration::from_millis(800)),
    );
    let c = CloudshelfClient::new(sim.graphql_url(), sim.api_key(), Duration::from_millis(150));
    let started = Instant::now();
    let err = c
        .set_order_status(ORDER_1, CloudshelfOrderStatus::Paid, None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, CloudshelfError::Transient(_)), "{err:?}");
    // The server still applies it: why a transient upsert failure must be retried, not assumed lost.
    sim.wait_idle().await;
    assert_eq!(sim.order(ORDER_1).unwrap().status, OrderStatus::Paid);
}

#[tokio::test]
async fn lost_response_is_transient_and_a_retry_is_harmless() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::LoseResponseAfterApply);
    let c = client(&sim);
    let err = c
        .set_order_status(ORDER_1, CloudshelfOrderStatus::Paid, Some("centra-1001"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    c.set_order_status(ORDER_1, CloudshelfOrderStatus::Paid, Some("centra-1001"))
        .await
        .unwrap();
    let snap = sim.order(ORDER_1).unwrap();
    assert_eq!(snap.status, OrderStatus::Paid);
    assert_eq!(snap.third_party_id.as_deref(), Some("centra-1001"));
    assert_eq!(sim.upsert_count(), 2);
}

#[tokio::test]
async fn http_429_is_rate_limited_without_a_retry_time() {
    let sim = sim().await;
    sim.inject(CloudshelfFault::RateLimited);
    let err = client(&sim)
        .set_order_status(ORDER_1, CloudshelfOrderStatus::Paid, None)
        .await
        .unwrap_err();
    assert_eq!(err, CloudshelfError::RateLimited { retry_at_ms: None });
    assert!(err.is_transient());
    assert_eq!(sim.upsert_count(), 0);
}

#[tokio::test]
async fn wrong_key_is_unauthorized() {
    let sim = sim().await;
    let c = CloudshelfClient::new(sim.graphql_url(), "wrong-key", Duration::from_secs(5));
    let err = c.order(ORDER_1).await.unwrap_err();
    assert_eq!(err, CloudshelfError::Unauthorized(401));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn refused_connection_is_not_sent() {
    // Port 1: nothing listens there and unprivileged tests cannot bind it, so no other test's
    // simulator can take it.
    let err = CloudshelfClient::new("http://127.0.0.1:1/graphql", "k", Duration::from_secs(2))
        .order(ORDER_1)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudshelfError::NotSent(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn complexity_limit_is_a_graphql_error() {
    // A lower limit than the client's page-size cap assumes, to see how the failure surfaces.
    let sim = CloudshelfSim::start(CloudshelfSimConfig {
        max_complexity: 50,
        ..CloudshelfSimConfig::default()
    })
    .await;
    let err = CloudshelfClient::new(sim.graphql_url(), sim.api_key(), Duration::from_secs(5))
        .orders_updated_since(at(0), 10)
        .await
        .unwrap_err();
    match &err {
        CloudshelfError::GraphQl(m) => assert!(m.contains("QUERY_COMPLEXITY"), "{m}"),
        other => panic!("expected GraphQl, got {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn orders_updated_since_stops_at_the_watermark_across_pages() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    // 20 orders one minute apart; the watermark sits on order 8, so 8..=19 (12 orders) are due.
    for n in 0..20 {
        sim.add_order(OrderSeed {
            id: order_id(n),
            updated_at: at(n as i64 * 60),
            ..OrderSeed::default()
        });
    }
    let c = client(&sim);
    let before = sim.request_count();
    let orders = c.orders_updated_since(at(8 * 60), 5).await.unwrap();
    let ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
    let expected: Vec<String> = (8..20).map(order_id).collect();
    assert_eq!(ids, expected, "oldest first, watermark inclusive");
    // Pages of 5: 19..15, 14..10, 9..5 (passes the watermark at 7) → 3 requests, no fourth page.
    assert_eq!(sim.request_count() - before, 3);

    // Nothing new: one request, empty answer.
    let before = sim.request_count();
    assert!(c
        .orders_updated_since(at(10_000), 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(sim.request_count() - before, 1);

    // Everything, with a page size beyond the complexity budget: capped, not rejected.
    let before = sim.request_count();
    let all = c.orders_updated_since(at(0), 1000).await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(
        sim.request_count() - before,
        20_u64.div_ceil(u64::from(MAX_ORDERS_PAGE_SIZE))
    );

    // An upsert moves an order past the watermark.
    c.set_order_status(&order_id(2), CloudshelfOrderStatus::Paid, None)
        .await
        .unwrap();
    let changed = c.orders_updated_since(at(10_000), 5).await;
    // Seeds are in 2025; the upsert stamps "now", later than any seed.
    let changed = changed.unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].id, order_id(2));
    assert_eq!(changed[0].status, CloudshelfOrderStatus::Paid);
}

#[tokio::test]
async fn upsert_stock_levels_chunks_and_returns_user_errors() {
    let sim = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let store = "gid://external/CentraWarehouse/12";
    sim.add_location(Some(store));
    let n = STOCK_LEVELS_CHUNK + 5;
    let mut levels = Vec::new();
    for i in 0..n {
        let variant = format!("gid://external/CentraSize/{i}");
        sim.add_variant(VariantSeed {
            platform_provided_id: Some(variant.clone()),
            ..VariantSeed::default()
        });
        levels.push(StockLevelUpdate {
            location_id: store.into(),
            product_variant_id: variant,
            quantity: i as i64,
        });
    }
    levels.push(StockLevelUpdate {
        location_id: store.into(),
        product_variant_id: "gid://external/CentraSize/unknown".into(),
        quantity: 1,
    });
    let c = client(&sim);
    let before = sim.request_count();
    let errors = c.upsert_stock_levels(&levels).await.unwrap();
    assert_eq!(sim.request_count() - before, 2, "two chunks");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, "ENTITY_NOT_FOUND");
    assert_eq!(sim.stock_upsert_count(), n as u64);
    assert_eq!(
        sim.stock_level(store, "gid://external/CentraSize/1004")
            .unwrap()
            .quantity,
        1004
    );

    // Nothing to send: no request.
    let before = sim.request_count();
    assert!(c.upsert_stock_levels(&[]).await.unwrap().is_empty());
    assert_eq!(sim.request_count(), before);

    sim.inject(CloudshelfFault::ServerError);
    let err = c.upsert_stock_levels(&levels[..1]).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
