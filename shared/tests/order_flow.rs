//! Kiosk order injection and the order lifecycle, end to end against the Centra simulator (Order API +
//! GraphQL) and the Cloudshelf simulator, with the in-process outbox. Time moves by a manual clock, never by
//! sleeping.

use chrono::Utc;
use shared::adapters::memory::MemoryLedgerStore;
use shared::centra::orders::CentraOrderApi;
use shared::centra::CentraClient;
use shared::cloudshelf::{CloudshelfClient, CloudshelfOrderStatus};
use shared::config::mappings::Mappings;
use shared::core::clock::ManualClock;
use shared::core::errors::BackendError;
use shared::core::ids::{ItemRef, StoreCode};
use shared::core::money::Amount;
use shared::events::orders::*;
use shared::finance::Daybook;
use shared::orders::outbox::{MemoryOrderOutbox, OrderOutbox, OutboxRecord, OutboxState};
use shared::orders::sync::{order_tag, OrderOutcome, OrderSync, OrderSyncSettings};
use shared::stock::ports::ExceptionLog;
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig, Fault, FaultTarget};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const UK_STORE_ID: u64 = 1;
const SKU_A: &str = "Prod123Var123789S";
const SKU_B: &str = "Tee01Black-M";
const EAN_B: &str = "7350000000012";

struct Env {
    centra: CentraSim,
    cloudshelf: CloudshelfSim,
    outbox: Arc<dyn OrderOutbox>,
    exceptions: Arc<MemoryLedgerStore>,
    clock: ManualClock,
    metrics: Arc<Metrics>,
    sync: OrderSync,
    daybook: Arc<shared::adapters::memory::MemoryDaybook>,
}

fn mappings_toml(order_api_base: &str, register_customers: bool) -> String {
    format!(
        r#"
[order_api.uk]
base_url = "{order_api_base}"
secret = "ORDER_SECRET_UK"
centra_store_id = {UK_STORE_ID}

[stores.LDN-01]
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
[stores.LDN-01.orders]
order_api = "uk"
market_id = 3
pricelist_id = 5
currency = "GBP"
payment_plugin_id = 36
register_customers = {register_customers}
[stores.LDN-01.orders.shipping]
home-standard = "home-delivery-uk"

[stores.EDI-01]
centra_warehouse_id = 14
cloudshelf_location = "gid://external/CentraWarehouse/14"
currency = "GBP"
"#
    )
}

async fn env_with(outbox: Arc<dyn OrderOutbox>, register_customers: bool) -> Env {
    let centra = CentraSim::start(CentraSimConfig::default()).await;
    centra.add_order_plugin("uk", "uk-secret", UK_STORE_ID);
    centra.add_market(3, UK_STORE_ID);
    centra.add_pricelist(5, UK_STORE_ID, "GBP");
    centra.add_shipping_option("home-delivery-uk", UK_STORE_ID);
    centra.set_payment_plugin(36);
    centra.add_size(SKU_A, None, true);
    centra.add_size(SKU_B, Some(EAN_B), true);
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let mappings = Mappings::from_toml(&mappings_toml(
        &centra.order_api_base("uk"),
        register_customers,
    ))
    .unwrap();
    let clock = ManualClock::at(Utc::now().timestamp_millis());
    let exceptions = Arc::new(MemoryLedgerStore::new());
    let metrics = Arc::new(Metrics::new());
    let timeout = Duration::from_millis(800);
    let daybook = Arc::new(shared::adapters::memory::MemoryDaybook::new());
    let sync = OrderSync {
        daybook: Some(daybook.clone()),
        mappings: Arc::new(mappings),
        order_api_secrets: HashMap::from([("uk".to_string(), "uk-secret".to_string())]),
        order_api: CentraOrderApi::new(timeout),
        centra: CentraClient::new(centra.graphql_url(), centra.token(), timeout),
        cloudshelf: CloudshelfClient::new(cloudshelf.graphql_url(), cloudshelf.api_key(), timeout),
        outbox: outbox.clone(),
        exceptions: exceptions.clone(),
        clock: Arc::new(clock.clone()),
        metrics: metrics.clone(),
        settings: OrderSyncSettings {
            lease_ms: 5_000,
            ..OrderSyncSettings::default()
        },
        instance_id: "test".into(),
    };
    Env {
        centra,
        cloudshelf,
        outbox,
        exceptions,
        clock,
        metrics,
        sync,
        daybook,
    }
}

async fn env() -> Env {
    env_with(Arc::new(MemoryOrderOutbox::new()), false).await
}

pub(crate) fn line(item: ItemRef, qty: u32, price: &str) -> KioskOrderLine {
    KioskOrderLine {
        sku: match &item {
            ItemRef::Sku(s) => Some(s.clone()),
            _ => None,
        },
        ean: match &item {
            ItemRef::Ean(e) => Some(e.clone()),
            _ => None,
        },
        item,
        quantity: qty,
        unit_price: Amount::parse(price).unwrap(),
        currency: "GBP".into(),
    }
}

pub(crate) fn kiosk_order(id: &str, store: &str, lines: Vec<KioskOrderLine>) -> KioskOrder {
    let shipping = Amount::parse("5.00").unwrap();
    let mut order = KioskOrder {
        event_id: format!("evt-{id}"),
        cloudshelf_order_id: format!("gid://cloudshelf/Order/{id}"),
        store: StoreCode::parse(store).unwrap(),
        occurred_at: Utc::now(),
        device: Some("gid://cloudshelf/Device/kiosk-1".into()),
        sales_assistant: None,
        customer: Customer {
            email: "ann@example.com".into(),
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            phone: None,
        },
        delivery_address: DeliveryAddress {
            lines: vec!["1 High St".into(), "Flat 2".into()],
            city: "London".into(),
            postcode: "W1 1AA".into(),
            region: None,
            country: "GB".into(),
        },
        shipping_method: "home-standard".into(),
        shipping_price: shipping,
        payment: KioskPayment {
            provider: "adyen".into(),
            transaction_id: format!("psp-{id}"),
            amount: Amount::ZERO,
            currency: "GBP".into(),
            status: PaymentStatus::Captured,
        },
        lines,
        received_at_ms: 0,
    };
    order.payment.amount = order.lines_total().unwrap().checked_add(shipping).unwrap();
    order
}

/// Seeds Cloudshelf with the order the kiosk event describes (variant ids as our external gids).
fn seed_cloudshelf(env: &Env, order: &KioskOrder) {
    env.cloudshelf.add_order(OrderSeed {
        id: order.cloudshelf_order_id.clone(),
        status: OrderStatus::Placed,
        lines: order
            .lines
            .iter()
            .map(|l| {
                let variant = match &l.item {
                    ItemRef::Sku(s) => format!("gid://external/CentraProductSize/{s}"),
                    ItemRef::Ean(e) => format!("gid://cloudshelf/ProductVariant/{e}"),
                };
                (
                    variant,
                    i64::from(l.quantity),
                    l.unit_price.to_f64(),
                    l.currency.clone(),
                )
            })
            .collect(),
        updated_at: Utc::now(),
        ..Default::default()
    });
}

fn standard_order(id: &str) -> KioskOrder {
    kiosk_order(
        id,
        "LDN-01",
        vec![
            line(ItemRef::Sku(SKU_A.into()), 2, "49.00"),
            line(ItemRef::Ean(EAN_B.into()), 1, "15.50"),
        ],
    )
}

fn cloudshelf_status(env: &Env, order: &KioskOrder) -> (OrderStatus, Option<String>) {
    let o = env.cloudshelf.order(&order.cloudshelf_order_id).unwrap();
    (o.status, o.third_party_id)
}

async fn outbox_state(env: &Env, order: &KioskOrder) -> OutboxRecord {
    env.outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap()
}

// ------------------------------------------------------------------ injection

#[tokio::test]
async fn kiosk_order_becomes_one_centra_order_with_the_mapped_terms_and_cloudshelf_is_told() {
    let env = env().await;
    let order = standard_order("01JA");
    seed_cloudshelf(&env, &order);

    let outcome = env.sync.place(&order).await.unwrap();
    let OrderOutcome::Reported {
        centra_orders,
        adopted,
    } = outcome
    else {
        panic!("expected Reported, got {outcome:?}");
    };
    assert!(!adopted);
    assert_eq!(centra_orders.len(), 1);
    let created = env.centra.order(centra_orders[0]).unwrap();
    assert_eq!(
        (created.store_id, created.market_id, created.pricelist_id),
        (UK_STORE_ID, 3, 5)
    );
    assert_eq!(created.shipping_uri.as_deref(), Some("home-delivery-uk"));
    assert_eq!(created.currency, "GBP");
    assert!(
        created.customer.is_guest,
        "kiosk orders use a guest customer by default"
    );
    assert_eq!(created.customer.email, "ann@example.com");
    let lines: Vec<(String, i64, f64)> = created
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.qty, l.unit_price))
        .collect();
    assert_eq!(
        lines,
        vec![(SKU_A.to_string(), 2, 49.0), (SKU_B.to_string(), 1, 15.5)],
        "lines by SKU and by EAN at the kiosk prices"
    );
    assert_eq!(created.grand_total, 2.0 * 49.0 + 15.5 + 5.0);
    assert!(created
        .internal_comment
        .as_deref()
        .unwrap()
        .contains(&order_tag(&order.cloudshelf_order_id)));
    assert_eq!(created.shipping_address.country.as_deref(), Some("GB"));
    assert!(
        created
            .payment_history
            .iter()
            .any(|p| p.entry_type == "CAPTURE"),
        "the kiosk capture is recorded"
    );

    let (status, third_party) = cloudshelf_status(&env, &order);
    assert_eq!(status, OrderStatus::Paid);
    assert_eq!(third_party, Some(centra_orders[0].to_string()));
    assert_eq!(
        outbox_state(&env, &order).await.state,
        OutboxState::Reported
    );

    // Redelivery: nothing more happens anywhere.
    let creates = env.centra.order_create_count();
    let upserts = env.cloudshelf.upsert_count();
    assert_eq!(
        env.sync.place(&order).await.unwrap(),
        OrderOutcome::AlreadyDone(OutboxState::Reported)
    );
    assert_eq!(env.centra.order_create_count(), creates);
    assert_eq!(env.cloudshelf.upsert_count(), upserts);
}

#[tokio::test]
async fn authorised_payment_reports_placed_and_registered_customers_when_configured() {
    let env = env_with(Arc::new(MemoryOrderOutbox::new()), true).await;
    let mut order = standard_order("01JB");
    order.payment.status = PaymentStatus::Authorized;
    seed_cloudshelf(&env, &order);
    let OrderOutcome::Reported { centra_orders, .. } = env.sync.place(&order).await.unwrap() else {
        panic!("not reported");
    };
    let created = env.centra.order(centra_orders[0]).unwrap();
    assert!(!created.customer.is_guest);
    assert!(created
        .payment_history
        .iter()
        .any(|p| p.entry_type == "AUTH"));
    assert_eq!(cloudshelf_status(&env, &order).0, OrderStatus::Placed);
}

#[tokio::test]
async fn duplicate_storm_creates_one_centra_order() {
    let env = env().await;
    let order = standard_order("01JC");
    seed_cloudshelf(&env, &order);
    // The same order delivered 3× at once (a webhook retry storm, SQS redelivery).
    let results = futures::future::join_all((0..3).map(|_| env.sync.place(&order))).await;
    let reported = results
        .iter()
        .filter(|r| matches!(r, Ok(OrderOutcome::Reported { .. })))
        .count();
    assert!(reported >= 1, "{results:?}");
    // Whatever was told to retry converges without another create.
    for _ in 0..3 {
        let _ = env.sync.place(&order).await;
    }
    assert_eq!(env.centra.order_create_count(), 1);
    assert_eq!(env.centra.orders().len(), 1);
    assert_eq!(
        outbox_state(&env, &order).await.state,
        OutboxState::Reported
    );
}

#[tokio::test]
async fn lost_create_response_is_adopted_not_repeated() {
    let env = env().await;
    let order = standard_order("01JD");
    seed_cloudshelf(&env, &order);
    env.centra
        .inject_on(FaultTarget::OrderApi, Fault::LoseResponseAfterApply);

    let first = env.sync.place(&order).await;
    assert!(first.is_err(), "an unknown outcome is retried: {first:?}");
    assert_eq!(env.centra.orders().len(), 1, "Centra did create it");
    assert_eq!(
        outbox_state(&env, &order).await.state,
        OutboxState::Injecting
    );

    // Redelivered while the lease still runs: must not call Centra.
    let calls = env.centra.order_api_request_count();
    assert!(env.sync.place(&order).await.is_err());
    assert_eq!(env.centra.order_api_request_count(), calls);

    env.clock.advance_millis(6_000);
    let outcome = env.sync.place(&order).await.unwrap();
    let OrderOutcome::Reported {
        centra_orders,
        adopted,
    } = outcome
    else {
        panic!("expected Reported, got {outcome:?}");
    };
    assert!(adopted);
    assert_eq!(env.centra.orders().len(), 1, "no second order");
    assert_eq!(centra_orders, vec![env.centra.orders()[0].number]);
    assert_eq!(
        cloudshelf_status(&env, &order).1,
        Some(centra_orders[0].to_string())
    );
}

/// An outbox that "crashes" (fails) the first write that records Centra order numbers.
struct CrashAfterCreate {
    inner: MemoryOrderOutbox,
    crashed: AtomicBool,
}

#[async_trait::async_trait]
impl OrderOutbox for CrashAfterCreate {
    async fn get(&self, id: &str) -> Result<Option<OutboxRecord>, BackendError> {
        self.inner.get(id).await
    }
    async fn put(&self, r: &OutboxRecord, rev: Option<u64>) -> Result<bool, BackendError> {
        if r.state == OutboxState::Injected && !self.crashed.swap(true, Ordering::SeqCst) {
            return Err(BackendError::new(
                "test",
                "process died after the Centra create",
            ));
        }
        self.inner.put(r, rev).await
    }
    async fn find_by_centra_order(&self, n: u64) -> Result<Option<String>, BackendError> {
        self.inner.find_by_centra_order(n).await
    }
    async fn list(&self) -> Result<Vec<OutboxRecord>, BackendError> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn crash_between_create_and_outbox_update_adopts_the_order() {
    let outbox = Arc::new(CrashAfterCreate {
        inner: MemoryOrderOutbox::new(),
        crashed: AtomicBool::new(false),
    });
    let env = env_with(outbox.clone(), false).await;
    let order = standard_order("01JE");
    seed_cloudshelf(&env, &order);
    assert!(env.sync.place(&order).await.is_err());
    assert!(outbox.crashed.load(Ordering::SeqCst));
    assert_eq!(env.centra.orders().len(), 1);

    env.clock.advance_millis(6_000);
    let outcome = env.sync.place(&order).await.unwrap();
    assert!(
        matches!(outcome, OrderOutcome::Reported { adopted: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(env.centra.order_create_count(), 1);
    assert_eq!(env.centra.orders().len(), 1);
}

#[tokio::test]
async fn server_error_then_success_makes_one_order() {
    let env = env().await;
    let order = standard_order("01JF");
    seed_cloudshelf(&env, &order);
    env.centra
        .inject_on(FaultTarget::OrderApi, Fault::ServerError(500));
    assert!(env.sync.place(&order).await.is_err());
    env.clock.advance_millis(6_000);
    assert!(matches!(
        env.sync.place(&order).await.unwrap(),
        OrderOutcome::Reported { .. }
    ));
    assert_eq!(env.centra.orders().len(), 1);
}

async fn only_exception(env: &Env) -> shared::stock::ports::ExceptionRecord {
    let list = env.exceptions.list(None).await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list.into_iter().next().unwrap()
}

#[tokio::test]
async fn unmapped_shipping_method_is_an_exception_naming_the_key_without_calling_centra() {
    let env = env().await;
    let mut order = standard_order("01JG");
    order.shipping_method = "home-express".into();
    seed_cloudshelf(&env, &order);
    let outcome = env.sync.place(&order).await.unwrap();
    assert!(
        matches!(&outcome, OrderOutcome::Exception { kind, .. } if kind == "unmapped_shipping_method"),
        "{outcome:?}"
    );
    assert_eq!(env.centra.order_api_request_count(), 0);
    let e = only_exception(&env).await;
    assert_eq!(
        e.mapping_key.as_deref(),
        Some("stores.LDN-01.orders.shipping.home-express")
    );
    assert_eq!(e.item.as_deref(), Some(order.cloudshelf_order_id.as_str()));
    assert_eq!(e.store, "LDN-01");
    assert_eq!(
        outbox_state(&env, &order).await.state,
        OutboxState::Exception
    );
    assert_eq!(env.metrics.total("OrderExceptions"), 1.0);
    // A redelivery does not retry or add a second record.
    assert_eq!(
        env.sync.place(&order).await.unwrap(),
        OrderOutcome::AlreadyDone(OutboxState::Exception)
    );
    assert_eq!(env.exceptions.list(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn store_without_order_mapping_is_an_exception_naming_the_key() {
    let env = env().await;
    let order = kiosk_order(
        "01JH",
        "EDI-01",
        vec![line(ItemRef::Sku(SKU_A.into()), 1, "49.00")],
    );
    seed_cloudshelf(&env, &order);
    let outcome = env.sync.place(&order).await.unwrap();
    assert!(matches!(&outcome, OrderOutcome::Exception { kind, .. } if kind == "unmapped_store"));
    assert_eq!(
        only_exception(&env).await.mapping_key.as_deref(),
        Some("stores.EDI-01.orders")
    );
    assert_eq!(env.centra.order_api_request_count(), 0);
}

#[tokio::test]
async fn lines_differing_from_cloudshelf_are_an_exception_not_an_order() {
    let env = env().await;
    let order = standard_order("01JI");
    let mut tampered = order.clone();
    tampered.lines[0].unit_price = Amount::parse("39.00").unwrap();
    seed_cloudshelf(&env, &tampered);
    let outcome = env.sync.place(&order).await.unwrap();
    assert!(
        matches!(&outcome, OrderOutcome::Exception { kind, .. } if kind == "cloudshelf_mismatch")
    );
    let e = only_exception(&env).await;
    assert!(e.message.contains("lines[0]"), "{}", e.message);
    assert_eq!(env.centra.order_api_request_count(), 0);

    // A different SKU in Cloudshelf (same quantity and price) is caught through the external gid.
    let env2 = self::env().await;
    let order = standard_order("01JJ");
    let mut other_sku = order.clone();
    other_sku.lines[0].item = ItemRef::Sku("Other-SKU".into());
    seed_cloudshelf(&env2, &other_sku);
    assert!(matches!(
        env2.sync.place(&order).await.unwrap(),
        OrderOutcome::Exception { .. }
    ));

    // Unknown in Cloudshelf.
    let env3 = self::env().await;
    let order = standard_order("01JK");
    let outcome = env3.sync.place(&order).await.unwrap();
    assert!(
        matches!(&outcome, OrderOutcome::Exception { kind, .. } if kind == "cloudshelf_order_not_found")
    );
}

#[tokio::test]
async fn split_orders_are_all_reported() {
    let env = env().await;
    env.centra.set_split_sku(SKU_B);
    let order = standard_order("01JL");
    seed_cloudshelf(&env, &order);
    let OrderOutcome::Reported { centra_orders, .. } = env.sync.place(&order).await.unwrap() else {
        panic!("not reported");
    };
    assert_eq!(centra_orders.len(), 2);
    let expected = format!("{},{}", centra_orders[0], centra_orders[1]);
    assert_eq!(cloudshelf_status(&env, &order).1, Some(expected));
    for n in &centra_orders {
        assert_eq!(
            env.outbox
                .find_by_centra_order(*n)
                .await
                .unwrap()
                .as_deref(),
            Some(order.cloudshelf_order_id.as_str())
        );
    }
}

#[tokio::test]
async fn centra_stock_refusal_is_permanent_with_centras_message() {
    let env = env().await;
    env.centra.set_order_stock(SKU_A, 1);
    let order = standard_order("01JM");
    seed_cloudshelf(&env, &order);
    let outcome = env.sync.place(&order).await.unwrap();
    assert!(
        matches!(&outcome, OrderOutcome::Exception { kind, .. } if kind == "centra_rejected_order")
    );
    let e = only_exception(&env).await;
    assert!(e.centra_message.is_some());
    assert_eq!(e.attempts, Some(1));
    assert_eq!(env.centra.orders().len(), 0);
    assert_eq!(
        cloudshelf_status(&env, &order).0,
        OrderStatus::Placed,
        "Cloudshelf untouched"
    );
}

#[tokio::test]
async fn rate_limited_create_is_retried_without_a_duplicate() {
    let env = env().await;
    let order = standard_order("01JN");
    seed_cloudshelf(&env, &order);
    env.centra.inject_on(
        FaultTarget::OrderApi,
        Fault::RateLimited {
            retry_after: Duration::from_secs(1),
        },
    );
    assert!(env.sync.place(&order).await.is_err());
    assert_eq!(
        outbox_state(&env, &order).await.state,
        OutboxState::Received,
        "lease released"
    );
    assert!(matches!(
        env.sync.place(&order).await.unwrap(),
        OrderOutcome::Reported { .. }
    ));
    assert_eq!(env.centra.orders().len(), 1);
}

// ------------------------------------------------------------------ lifecycle

fn centra_event(kind: &str, id: u64, date: &str) -> CentraWebhookEvent {
    CentraWebhookEvent {
        kind: kind.into(),
        action: "update".into(),
        id: id.to_string(),
        date: date.into(),
    }
}

async fn injected(env: &Env, id: &str) -> (KioskOrder, u64) {
    let order = standard_order(id);
    seed_cloudshelf(env, &order);
    let OrderOutcome::Reported { centra_orders, .. } = env.sync.place(&order).await.unwrap() else {
        panic!("not reported");
    };
    (order, centra_orders[0])
}

#[tokio::test]
async fn repeated_webhooks_update_cloudshelf_once_and_out_of_order_events_converge() {
    let env = env().await;
    let (order, number) = injected(&env, "01JO").await;
    let upserts_after_injection = env.cloudshelf.upsert_count();

    // Centra retries the same event 3 times: Cloudshelf already shows PAID, so no update at all.
    for _ in 0..3 {
        let outcome = env
            .sync
            .on_centra_event(&centra_event("order", number, "2026-11-28 10:00:00.000001"))
            .await
            .unwrap();
        assert!(matches!(outcome, OrderOutcome::Ignored(_)), "{outcome:?}");
    }
    assert_eq!(env.cloudshelf.upsert_count(), upserts_after_injection);

    // A partial refund, then a full one; the webhooks arrive newest first and then repeated.
    let grand_total = env.centra.order(number).unwrap().grand_total;
    let first_return = env.centra.refund(number, 15.5);
    let second_return = env.centra.refund(number, grand_total - 15.5);
    let late = env
        .sync
        .on_centra_event(&centra_event(
            "return",
            second_return,
            "2026-11-28 12:00:00",
        ))
        .await
        .unwrap();
    assert_eq!(
        late,
        OrderOutcome::StatusSet(CloudshelfOrderStatus::Refunded)
    );
    let early = env
        .sync
        .on_centra_event(&centra_event("return", first_return, "2026-11-28 11:00:00"))
        .await
        .unwrap();
    assert!(
        matches!(early, OrderOutcome::Ignored(_)),
        "stale event changes nothing: {early:?}"
    );
    assert_eq!(cloudshelf_status(&env, &order).0, OrderStatus::Refunded);
    assert_eq!(env.cloudshelf.upsert_count(), upserts_after_injection + 1);
}

#[tokio::test]
async fn partial_refund_and_cancellation_map_to_cloudshelf_statuses() {
    let env = env().await;
    let (order, number) = injected(&env, "01JP").await;
    let ret = env.centra.refund(number, 10.0);
    assert_eq!(
        env.sync
            .on_centra_event(&centra_event("return", ret, "d1"))
            .await
            .unwrap(),
        OrderOutcome::StatusSet(CloudshelfOrderStatus::PartiallyRefunded)
    );
    assert_eq!(
        cloudshelf_status(&env, &order).0,
        OrderStatus::PartiallyRefunded
    );

    let (order2, number2) = injected(&env, "01JQ").await;
    env.centra.set_order_status(number2, "CANCELLED");
    assert_eq!(
        env.sync
            .on_centra_event(&centra_event("order", number2, "d2"))
            .await
            .unwrap(),
        OrderOutcome::StatusSet(CloudshelfOrderStatus::Voided)
    );
    assert_eq!(cloudshelf_status(&env, &order2).0, OrderStatus::Voided);
}

#[tokio::test]
async fn orders_not_from_a_kiosk_are_ignored_without_calling_centra() {
    let env = env().await;
    let requests = env.centra.request_count();
    let outcome = env
        .sync
        .on_centra_event(&centra_event("order", 987_654, "d"))
        .await
        .unwrap();
    assert!(matches!(outcome, OrderOutcome::Ignored(_)));
    assert_eq!(
        env.centra.request_count(),
        requests,
        "no Centra call for foreign orders"
    );
    assert_eq!(env.metrics.total("LifecycleIgnoredOrders"), 1.0);
    let outcome = env
        .sync
        .on_centra_event(&CentraWebhookEvent {
            kind: "customer".into(),
            action: "update".into(),
            id: "5".into(),
            date: "d".into(),
        })
        .await
        .unwrap();
    assert!(matches!(outcome, OrderOutcome::Ignored(_)));
}

#[tokio::test]
async fn queue_messages_route_to_injection_and_lifecycle_and_bad_bodies_become_exceptions() {
    let env = env().await;
    let order = standard_order("01JR");
    seed_cloudshelf(&env, &order);
    let body = serde_json::to_string(&OrderQueueMessage::Placed(Box::new(order.clone()))).unwrap();
    let items = vec![
        shared::stock::batch::FifoItem {
            message_id: "m1".into(),
            group_id: order.cloudshelf_order_id.clone(),
            payload: body.clone(),
        },
        shared::stock::batch::FifoItem {
            message_id: "m2".into(),
            group_id: order.cloudshelf_order_id.clone(),
            payload: body,
        },
        shared::stock::batch::FifoItem {
            message_id: "m3".into(),
            group_id: "other".into(),
            payload: "{not json".into(),
        },
    ];
    let failed = env.sync.process_batch(items).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(env.centra.orders().len(), 1);
    let e = only_exception(&env).await;
    assert_eq!(e.kind, "unreadable_order_message");
}

/// The daybook record of an order on its business day (the test mappings keep stores on UTC).
async fn daybook_record(env: &Env, order: &KioskOrder) -> Option<shared::finance::DaybookRecord> {
    env.daybook
        .day(&order.store, order.occurred_at.date_naive())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.record_id == format!("order:{}", order.cloudshelf_order_id))
}

#[tokio::test]
async fn the_daybook_has_kiosk_orders_accepted_and_posted_once_centra_created_them() {
    let env = env().await;
    let order = standard_order("01JFIN1");
    seed_cloudshelf(&env, &order);
    env.sync.place(&order).await.unwrap();
    env.sync.place(&order).await.unwrap();
    let record = daybook_record(&env, &order).await.expect("recorded");
    assert_eq!(record.accepted.len(), 1);
    let a = &record.accepted[0];
    assert_eq!(a.kind, shared::finance::FinanceKind::KioskOrder);
    assert_eq!(a.units, 3);
    // 2 × 49.00 + 15.50 plus the order's shipping.
    let shipping = order.shipping_price.to_string();
    let expected = shared::core::money::Money::parse("113.50").unwrap()
        + shared::core::money::Money::parse(&shipping).unwrap();
    assert_eq!(a.gross, expected);
    assert!(
        record
            .posted_ref
            .as_deref()
            .unwrap()
            .starts_with("centra order "),
        "{record:?}"
    );

    // Refused before Centra: accepted, never posted — the close will list it.
    let mut refused = standard_order("01JFIN2");
    refused.shipping_method = "home-express".into();
    seed_cloudshelf(&env, &refused);
    env.sync.place(&refused).await.unwrap();
    let record = daybook_record(&env, &refused).await.expect("recorded");
    assert_eq!(record.posted_at_ms, None);
    let day = env
        .daybook
        .day(&refused.store, refused.occurred_at.date_naive())
        .await
        .unwrap();
    let close =
        shared::finance::close_store_day(&refused.store, refused.occurred_at.date_naive(), &day, 0);
    assert!(!close.validated);
    assert_eq!(close.differences.len(), 1);
    assert_eq!(
        close.differences[0].record_id,
        format!("order:{}", refused.cloudshelf_order_id)
    );
}

// ------------------------------------------------------------------ trace

fn trace_sources(env: &Env) -> shared::ops::trace::TraceSources {
    shared::ops::trace::TraceSources {
        idempotency: Arc::new(shared::adapters::memory::MemoryIdempotencyStore::new()),
        ledger: env.exceptions.clone(),
        markers: env.exceptions.clone(),
        push_log: env.exceptions.clone(),
        exceptions: env.exceptions.clone(),
        outbox: Some(env.outbox.clone()),
        centra: None,
        mappings: env.sync.mappings.clone(),
        clock: Arc::new(env.clock.clone()),
    }
}

#[tokio::test]
async fn trace_order_follows_a_kiosk_order_by_either_id_and_its_webhooks() {
    use shared::core::clock::Clock;
    let env = env().await;
    let started = env.clock.now_millis();
    let (order, number) = injected(&env, "01TR").await;
    env.clock.advance_millis(60_000);
    let refund = env.centra.refund(number, 15.5);
    env.sync
        .on_centra_event(&centra_event("return", refund, "2026-11-28 11:00:00"))
        .await
        .unwrap();
    env.clock.advance_millis(1_000);
    // The same state again: noted, nothing changed.
    env.sync
        .on_centra_event(&centra_event("order", number, "2026-11-28 11:00:01"))
        .await
        .unwrap();

    let sources = trace_sources(&env);
    let by_id = sources
        .trace_order(&order.cloudshelf_order_id)
        .await
        .unwrap();
    let by_number = sources.trace_order(&number.to_string()).await.unwrap();
    assert_eq!(
        by_number.cloudshelf_order_id.as_deref(),
        Some(order.cloudshelf_order_id.as_str())
    );
    assert_eq!(by_number.history, by_id.history);
    let summary = by_id.order.as_ref().expect("order");
    assert_eq!(summary.centra_orders, [number]);
    assert_eq!(summary.state, OutboxState::Reported);
    assert_eq!(
        summary.reported_status.as_deref(),
        Some("PARTIALLY_REFUNDED")
    );
    assert_eq!(
        cloudshelf_status(&env, &order).0,
        OrderStatus::PartiallyRefunded,
        "what the trace says Cloudshelf was told is what Cloudshelf shows"
    );
    let states: Vec<OutboxState> = by_id.history.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            OutboxState::Received,
            OutboxState::Injecting,
            OutboxState::Injected,
            OutboxState::Reported
        ]
    );
    assert!(by_id.history.iter().all(|s| s.at_ms == started));
    let lifecycle: Vec<(&str, &str, i64)> = by_id
        .lifecycle
        .iter()
        .map(|l| {
            (
                l.note.event.as_str(),
                l.note.outcome.as_str(),
                l.note.handled_at_ms,
            )
        })
        .collect();
    let refund_event = format!("return.update {refund}");
    let order_event = format!("order.update {number}");
    assert_eq!(
        lifecycle,
        [
            (
                refund_event.as_str(),
                "Cloudshelf status set to PARTIALLY_REFUNDED",
                started + 60_000
            ),
            (
                order_event.as_str(),
                "Cloudshelf already shows PARTIALLY_REFUNDED",
                started + 61_000
            ),
        ]
    );
    assert!(by_id.exceptions.is_empty());
    assert!(
        by_id.notes[0].contains("done: Cloudshelf was told"),
        "{:?}",
        by_id.notes
    );

    let unknown = sources
        .trace_order("gid://cloudshelf/Order/nope")
        .await
        .unwrap();
    assert!(unknown.order.is_none());
    assert!(unknown.notes[0].contains("no kiosk order"));
}

#[tokio::test]
async fn trace_order_shows_an_order_parked_in_exception_and_how_to_retry_it() {
    let env = env().await;
    let mut order = standard_order("01TX");
    order.shipping_method = "home-express".into();
    seed_cloudshelf(&env, &order);
    env.sync.place(&order).await.unwrap();
    let t = trace_sources(&env)
        .trace_order(&order.cloudshelf_order_id)
        .await
        .unwrap();
    let summary = t.order.as_ref().expect("order");
    assert_eq!(summary.state, OutboxState::Exception);
    assert!(summary.centra_orders.is_empty());
    assert_eq!(
        t.history.last().map(|s| s.state),
        Some(OutboxState::Exception)
    );
    assert_eq!(t.exceptions.len(), 1);
    assert_eq!(t.exceptions[0].kind, "unmapped_shipping_method");
    assert!(
        t.notes[0].contains(&format!(
            "shelfsync orders retry {}",
            order.cloudshelf_order_id
        )),
        "{:?}",
        t.notes
    );
}
