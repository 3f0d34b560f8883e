//! The Order-API client and the GraphQL order reads against the loopback Centra simulator (and, for answers
//! the simulator never gives, a one-shot canned HTTP server).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use shared::centra::orders::{
    CentraOrderApi, CreateOrderAddress, CreateOrderPayment, CreateOrderProduct, CreateOrderRequest,
    OrderApiError, OrderApiTarget, PaymentRecord,
};
use shared::centra::{CentraClient, CentraError};
use shared::core::money::Amount;
use simulators::centra::{CentraSim, CentraSimConfig, Fault, FaultTarget, RetryAfterStyle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STORE: u64 = 1;
const OTHER_STORE: u64 = 2;
const PLUGIN: &str = "kiosk-uk";
const SECRET: &str = "order-api-secret";
const PAYMENT_PLUGIN: u64 = 36;
const S: &str = "Prod1Var1S";
const M: &str = "Prod1Var1M";
const INACTIVE: &str = "Prod2Var1OS";
const FAR: &str = "Prod3Var1L";

async fn sim() -> CentraSim {
    sim_with(RetryAfterStyle::HttpDate).await
}

async fn sim_with(style: RetryAfterStyle) -> CentraSim {
    let sim = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        retry_after_style: style,
        ..CentraSimConfig::default()
    })
    .await;
    sim.add_order_plugin(PLUGIN, SECRET, STORE);
    sim.add_order_plugin("kiosk-se", "se-secret", OTHER_STORE);
    sim.add_market(3, STORE);
    sim.add_pricelist(5, STORE, "GBP");
    sim.add_market(4, OTHER_STORE);
    sim.add_pricelist(6, OTHER_STORE, "SEK");
    sim.add_shipping_option("home-delivery-uk", STORE);
    sim.add_shipping_option("home-delivery-se", OTHER_STORE);
    sim.set_payment_plugin(PAYMENT_PLUGIN);
    sim.add_size(S, Some("7350000000012"), true);
    sim.add_size(M, Some("7350000000029"), true);
    sim.add_size(INACTIVE, None, false);
    sim.add_size(FAR, None, true);
    sim
}

fn target(sim: &CentraSim) -> OrderApiTarget {
    OrderApiTarget {
        base_url: sim.order_api_base(PLUGIN),
        secret: SECRET.into(),
    }
}

fn api() -> CentraOrderApi {
    CentraOrderApi::new(Duration::from_secs(5))
}

fn graphql(sim: &CentraSim) -> CentraClient {
    CentraClient::new(sim.graphql_url(), sim.token(), Duration::from_secs(5))
}

fn tag(id: &str) -> String {
    format!("[cloudshelf-order:{id}]")
}

/// 2 × S at 49.00 plus 5.00 shipping, captured at the kiosk, tagged with `id`.
fn request(id: &str) -> CreateOrderRequest {
    CreateOrderRequest {
        market_id: 3,
        pricelist_id: 5,
        shipping_list: "home-delivery-uk".into(),
        shipping_value: Some(5.0),
        address: CreateOrderAddress {
            email: "a@b.com".into(),
            first_name: Some("A".into()),
            last_name: Some("B".into()),
            cell: None,
            address: "1 High St".into(),
            coaddress: None,
            city: "London".into(),
            zipcode: "W1 1AA".into(),
            state: None,
            country: "GB".into(),
        },
        products: vec![CreateOrderProduct {
            sku: Some(S.into()),
            ean: None,
            qty: 2,
            unit_price: Some(49.0),
        }],
        payment: Some(CreateOrderPayment {
            id: PAYMENT_PLUGIN,
            capture: Some(PaymentRecord {
                status: 1,
                transaction: "psp_123".into(),
                method: "card".into(),
                amount: 103.0,
            }),
            auth: None,
        }),
        internal_comment: Some(format!("Cloudshelf kiosk order {}", tag(id))),
        extra_attributes: BTreeMap::new(),
        send_email: None,
        customer_register: None,
    }
}

#[tokio::test]
async fn create_returns_every_number_of_a_split_order() {
    let sim = sim().await;
    sim.set_split_sku(FAR);
    let mut req = request("CS-1");
    req.products.push(CreateOrderProduct {
        sku: None,
        ean: Some("7350000000029".into()),
        qty: 1,
        unit_price: Some(10.0),
    });
    req.products.push(CreateOrderProduct {
        sku: Some(FAR.into()),
        ean: None,
        qty: 1,
        unit_price: Some(20.0),
    });
    let numbers = api().create_order(&target(&sim), &req).await.unwrap();
    assert_eq!(numbers, vec![1000, 1001]);

    let first = sim.order(1000).unwrap();
    assert_eq!(first.grand_total, 49.0 * 2.0 + 10.0 + 5.0);
    assert_eq!(first.shipping_uri.as_deref(), Some("home-delivery-uk"));
    assert_eq!(first.lines[1].sku, M, "the EAN line resolved to its size");
    assert!(
        first.customer.is_guest,
        "customerRegister omitted = guest customer"
    );
    assert_eq!(first.payment_history[0].entry_type, "CAPTURE");
    assert_eq!(sim.order(1001).unwrap().lines[0].sku, FAR);

    let mut req = request("CS-2");
    req.customer_register = Some(true);
    let numbers = api().create_order(&target(&sim), &req).await.unwrap();
    assert!(!sim.order(numbers[0]).unwrap().customer.is_guest);
}

fn rejected(result: Result<Vec<u64>, OrderApiError>) -> (i64, bool, String, String) {
    match result {
        Err(OrderApiError::Rejected {
            code,
            permanent,
            reason,
            centra_message,
        }) => (code, permanent, reason, centra_message),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn each_refusal_code_maps_to_a_rejection_with_its_permanence() {
    let sim = sim().await;
    sim.set_order_stock(M, 0);
    sim.block_customer_registration("blocked@b.com");
    let with = |f: &dyn Fn(&mut CreateOrderRequest)| {
        let mut r = request("CS-bad");
        f(&mut r);
        r
    };
    let cases: Vec<(CreateOrderRequest, i64, bool, &str)> = vec![
        (
            with(&|r| r.products[0].sku = Some(INACTIVE.into())),
            -1,
            true,
            "not sellable",
        ),
        (
            with(&|r| r.products[0].sku = Some(M.into())),
            -2,
            true,
            "stock",
        ),
        (with(&|r| r.products.clear()), -3, true, "no products"),
        (
            with(&|r| r.shipping_list = "home-delivery-se".into()),
            -4,
            true,
            "missing or invalid",
        ),
        (
            with(&|r| r.address.country = String::new()),
            -4,
            true,
            "missing or invalid",
        ),
        (
            with(&|r| {
                r.customer_register = Some(true);
                r.address.email = "blocked@b.com".into();
            }),
            -6,
            true,
            "customer",
        ),
        (
            with(&|r| r.payment.as_mut().unwrap().id = 99),
            -7,
            false,
            "general",
        ),
    ];
    for (req, want_code, want_permanent, meaning) in cases {
        let result = api().create_order(&target(&sim), &req).await;
        assert_eq!(
            result.as_ref().err().map(OrderApiError::is_permanent),
            Some(want_permanent),
            "{result:?}"
        );
        let (code, permanent, reason, centra_message) = rejected(result);
        assert_eq!((code, permanent), (want_code, want_permanent));
        assert!(!centra_message.is_empty());
        assert!(
            reason.contains(meaning) && reason.contains(&centra_message),
            "reason {reason:?} should explain {meaning:?} and quote Centra"
        );
    }
    assert!(sim.orders().is_empty());
}

/// A one-request HTTP server that answers `status` with `body`; its base URL.
async fn canned(status: &'static str, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // Read the whole request first, so closing the socket never resets it under the client.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = socket.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.ok();
    });
    format!("http://{addr}/order-api/canned")
}

async fn create_against(
    status: &'static str,
    body: &'static str,
) -> Result<Vec<u64>, OrderApiError> {
    let base_url = canned(status, body).await;
    api()
        .create_order(
            &OrderApiTarget {
                base_url,
                secret: "x".into(),
            },
            &request("CS-canned"),
        )
        .await
}

#[tokio::test]
async fn answers_the_simulator_never_gives_are_classified() {
    // -5 (the client sends no orderNumber, so only a canned answer produces it), on HTTP 200.
    let (code, permanent, reason, msg) = rejected(
        create_against(
            "200 OK",
            r#"{"status":"no","code":-5,"msg":"Order number exists"}"#,
        )
        .await,
    );
    assert_eq!((code, permanent), (-5, true));
    assert!(reason.contains("already exists"), "{reason}");
    assert_eq!(msg, "Order number exists");

    let (code, permanent, ..) = rejected(
        create_against(
            "400 Bad Request",
            r#"{"status":"no","code":"-42","msg":"?"}"#,
        )
        .await,
    );
    assert_eq!(
        (code, permanent),
        (-42, true),
        "unknown codes need an operator"
    );

    let ok = create_against("200 OK", r#"{"status":"ok","orders":["1234",1235]}"#).await;
    assert_eq!(ok.unwrap(), vec![1234, 1235]);

    for (status, body) in [
        ("200 OK", "<html>proxy page</html>"),
        ("200 OK", r#"{"status":"ok","orders":[]}"#),
        ("502 Bad Gateway", "upstream"),
    ] {
        let e = create_against(status, body).await.unwrap_err();
        assert!(
            matches!(e, OrderApiError::Uncertain { .. }) && e.may_have_created(),
            "{status} {body}: {e:?}"
        );
    }

    let e = create_against("404 Not Found", "no such plugin")
        .await
        .unwrap_err();
    assert!(
        matches!(e, OrderApiError::Refused { status: 404, .. }) && e.is_permanent(),
        "{e:?}"
    );
}

#[tokio::test]
async fn rate_limit_reports_retry_after_in_seconds_and_as_http_date() {
    for style in [RetryAfterStyle::Seconds, RetryAfterStyle::HttpDate] {
        let sim = sim_with(style).await;
        sim.inject_on(
            FaultTarget::OrderApi,
            Fault::RateLimited {
                retry_after: Duration::from_millis(2500),
            },
        );
        let before = Utc::now().timestamp_millis();
        let e = api()
            .create_order(&target(&sim), &request("CS-1"))
            .await
            .unwrap_err();
        let after = Utc::now().timestamp_millis();
        let OrderApiError::RateLimited {
            retry_at_ms: Some(at),
        } = e
        else {
            panic!("{style:?}: expected RateLimited with a time, got {e:?}");
        };
        // Seconds: ceil(2.5 s) = 3 s after the client's clock; HTTP-date: now + 2.5 s rounded up to a whole
        // second, so up to 3.5 s later.
        assert!(
            at >= before + 2500 && at <= after + 3500,
            "{style:?}: retry at {at}, request at {before}..{after}"
        );
        assert!(!e.is_permanent());
        assert!(sim.orders().is_empty());
    }
}

#[tokio::test]
async fn a_hung_create_is_uncertain_within_the_timeout() {
    let sim = sim().await;
    sim.inject_on(FaultTarget::OrderApi, Fault::Hang(Duration::from_secs(2)));
    let api = CentraOrderApi::new(Duration::from_millis(300));
    let started = Instant::now();
    let e = api
        .create_order(&target(&sim), &request("CS-1"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, OrderApiError::Uncertain { .. }), "{e:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "gave up after {took:?}"
    );
    sim.wait_idle().await;
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn server_error_is_uncertain_and_bad_secret_or_dead_host_are_not() {
    let sim = sim().await;
    sim.inject_on(FaultTarget::OrderApi, Fault::ServerError(503));
    let e = api()
        .create_order(&target(&sim), &request("CS-1"))
        .await
        .unwrap_err();
    assert!(e.may_have_created() && !e.is_permanent(), "{e:?}");

    let bad = OrderApiTarget {
        base_url: sim.order_api_base(PLUGIN),
        secret: "wrong".into(),
    };
    let e = api()
        .create_order(&bad, &request("CS-1"))
        .await
        .unwrap_err();
    assert_eq!(e, OrderApiError::Unauthorized(401));
    assert!(e.is_permanent());
    assert!(
        !format!("{bad:?}").contains("wrong"),
        "Debug hides the secret"
    );

    // A port nothing listens on: certainly not created.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/order-api/x", listener.local_addr().unwrap());
    drop(listener);
    let e = api()
        .create_order(
            &OrderApiTarget {
                base_url: dead,
                secret: "x".into(),
            },
            &request("CS-1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OrderApiError::NotSent(_)), "{e:?}");
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn lost_response_is_uncertain_and_the_tag_lookup_finds_exactly_that_order() {
    let sim = sim().await;
    let from = Utc::now() - chrono::Duration::minutes(5);
    // Decoys: another order, the same tag in another case (Centra's search may match it), and the same tag in
    // another store.
    api()
        .create_order(&target(&sim), &request("CS-other"))
        .await
        .unwrap();
    let mut decoy = request("CS-1");
    decoy.internal_comment = Some(tag("CS-1").to_uppercase());
    api().create_order(&target(&sim), &decoy).await.unwrap();
    let mut se = request("CS-1");
    se.market_id = 4;
    se.pricelist_id = 6;
    se.shipping_list = "home-delivery-se".into();
    let se_target = OrderApiTarget {
        base_url: sim.order_api_base("kiosk-se"),
        secret: "se-secret".into(),
    };
    api().create_order(&se_target, &se).await.unwrap();

    sim.inject_on(FaultTarget::OrderApi, Fault::LoseResponseAfterApply);
    let e = api()
        .create_order(&target(&sim), &request("CS-1"))
        .await
        .unwrap_err();
    assert!(e.may_have_created(), "{e:?}");
    sim.wait_idle().await;

    let found = graphql(&sim)
        .find_orders_by_tag(STORE, &tag("CS-1"), from)
        .await
        .unwrap();
    let numbers: Vec<u64> = found.iter().map(|o| o.number).collect();
    assert_eq!(numbers, vec![1003], "exactly the lost order");
    let o = &found[0];
    assert_eq!(o.store_id, STORE);
    assert_eq!(o.status, "PENDING");
    assert_eq!(o.grand_total, Amount::from_thousandths(103_000));
    assert_eq!(o.currency, "GBP");

    // Nothing before the window, nothing for another tag.
    let later = Utc::now() + chrono::Duration::minutes(5);
    let c = graphql(&sim);
    assert!(c
        .find_orders_by_tag(STORE, &tag("CS-1"), later)
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .find_orders_by_tag(STORE, &tag("CS-9"), from)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn tag_lookup_pages_past_one_page_of_matches() {
    let sim = sim().await;
    let from = Utc::now() - chrono::Duration::minutes(1);
    // A retried order with many Centra orders is absurd; this only checks that every page is read.
    for _ in 0..53 {
        api()
            .create_order(&target(&sim), &request("CS-many"))
            .await
            .unwrap();
    }
    let found = graphql(&sim)
        .find_orders_by_tag(STORE, &tag("CS-many"), from)
        .await
        .unwrap();
    assert_eq!(found.len(), 53);
    let before = sim.request_count();
    graphql(&sim)
        .find_orders_by_tag(STORE, &tag("CS-many"), from)
        .await
        .unwrap();
    assert_eq!(sim.request_count() - before, 2, "limit 50: two pages");
}

#[tokio::test]
async fn order_state_follows_captures_refunds_and_shipments() {
    let sim = sim().await;
    let mut req = request("CS-1");
    // A failed capture at the kiosk is recorded but captures nothing.
    req.payment
        .as_mut()
        .unwrap()
        .capture
        .as_mut()
        .unwrap()
        .status = 0;
    let n = api().create_order(&target(&sim), &req).await.unwrap()[0];
    let c = graphql(&sim);

    let s = c.order(n).await.unwrap().expect("order exists");
    assert_eq!(s.number, n);
    assert_eq!(s.captured, Amount::ZERO);
    assert_eq!(s.refunded, Amount::ZERO);
    assert!(!s.shipped);
    assert_eq!(
        s.internal_comment.as_deref(),
        Some("Cloudshelf kiosk order [cloudshelf-order:CS-1]")
    );

    let shipment = sim.add_shipment(n);
    sim.capture(n, 103.0);
    sim.set_order_status(n, "SHIPPED");
    let s = c.order(n).await.unwrap().unwrap();
    assert!(s.shipped);
    assert_eq!(s.captured, Amount::from_thousandths(103_000));
    assert_eq!(s.status, "SHIPPED");

    let ret = sim.refund(n, 49.0);
    sim.refund(n, 5.5);
    let s = c.order(n).await.unwrap().unwrap();
    assert_eq!(s.refunded, Amount::from_thousandths(54_500));
    assert_eq!(s.captured, Amount::from_thousandths(103_000));

    assert_eq!(
        c.order_number_for_shipment(shipment).await.unwrap(),
        Some(n)
    );
    assert_eq!(c.order_number_for_return(ret).await.unwrap(), Some(n));
    assert_eq!(c.order_number_for_shipment(999).await.unwrap(), None);
    assert_eq!(c.order_number_for_return(999).await.unwrap(), None);
    assert_eq!(c.order(4242).await.unwrap(), None);

    // Read faults surface as the usual Centra errors.
    sim.inject_on(FaultTarget::Queries, Fault::ServerError(503));
    let e = c.order(n).await.unwrap_err();
    assert!(matches!(e, CentraError::Uncertain { .. }), "{e:?}");
}
