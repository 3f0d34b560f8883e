//! Operator actions against moto (DynamoDB + SQS; `scripts/test.sh` sets `AWS_ENDPOINT_URL`) and the Centra and
//! Cloudshelf simulators: DLQ redrive (per-group order, dedup ids, an interrupted run), `orders retry` (adoption
//! of an order Centra already holds, refusal, concurrent retries, dry run) and exception resolution.
//! Time moves by a manual clock; nothing waits on a sleep.

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use chrono::Utc;
use shared::adapters::aws::provision::{
    create_fifo_queue_with_dlq, create_idempotency_table, create_stock_table,
};
use shared::adapters::aws::{sdk_config, DynamoLedgerStore, DynamoOrderOutbox, SqsFifoQueue};
use shared::adapters::memory::ledger::MemoryLedgerStore;
use shared::adapters::memory::push_queue::MemoryPushQueue;
use shared::centra::orders::CentraOrderApi;
use shared::centra::CentraClient;
use shared::cloudshelf::CloudshelfClient;
use shared::config::mappings::Mappings;
use shared::core::clock::ManualClock;
use shared::core::ids::{EventPosition, ItemRef, Movement, StoreCode};
use shared::events::orders::*;
use shared::events::store_events::{StockEventType, StockLineMessage};
use shared::ops::dlq::{self, DlqName, RedriveStamp};
use shared::ops::exceptions::{ExceptionBook, ResolveError, ResolveOutcome};
use shared::ops::order_retry::{retry_order, RetryError, RetryOutcome, RetryRequest};
use shared::orders::outbox::{OrderOutbox, OutboxState};
use shared::orders::sync::{OrderOutcome, OrderSync, OrderSyncSettings};
use shared::stock::apply::{ApplyOutcome, StockApplier};
use shared::stock::ports::{ExceptionLog, ExceptionRecord, LedgerStore};
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig, Fault, FaultTarget};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

struct Aws {
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
}

async fn aws() -> Aws {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)"
    );
    let config = sdk_config().await;
    Aws {
        dynamo: aws_sdk_dynamodb::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------- DLQ redrive

/// Sends one message straight to a FIFO queue (as SQS's redrive policy would have parked it in a DLQ).
async fn park(sqs: &aws_sdk_sqs::Client, url: &str, group: &str, dedup: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(dedup)
        .message_attributes(
            "origin",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(format!("parked-{dedup}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// Everything on a queue, received and deleted in delivery order, with group, dedup id and attributes.
async fn drain_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<(String, String, String, HashMap<String, String>)> {
    let mut out = Vec::new();
    loop {
        let page = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = page.messages();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let system = |n: MessageSystemAttributeName| {
                m.attributes()
                    .and_then(|a| a.get(&n))
                    .cloned()
                    .unwrap_or_default()
            };
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                m.body().unwrap_or_default().to_string(),
                system(MessageSystemAttributeName::MessageGroupId),
                system(MessageSystemAttributeName::MessageDeduplicationId),
                attributes,
            ));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Q::ApproximateNumberOfMessages)
        .attribute_names(Q::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    (
        attributes[&Q::ApproximateNumberOfMessages].parse().unwrap(),
        attributes[&Q::ApproximateNumberOfMessagesNotVisible]
            .parse()
            .unwrap(),
    )
}

fn stamp(by: &str) -> RedriveStamp {
    RedriveStamp {
        by: by.into(),
        at_ms: 1_796_000_000_000,
        from: DlqName::Stock,
    }
}

#[tokio::test]
async fn redrive_keeps_each_groups_order_dedup_ids_and_attributes_and_stamps_who() {
    let aws = aws().await;
    let (source, dlq_url) = create_fifo_queue_with_dlq(&aws.sqs, &unique("stock"), 5, 30)
        .await
        .unwrap();
    // Three groups interleaved, 25 messages: more than two receive batches.
    let groups = ["SKU-A", "SKU-B", "ean:735"];
    let mut parked = Vec::new();
    for i in 0..25 {
        let group = groups[i % 3];
        let dedup = format!("d{i}");
        park(&aws.sqs, &dlq_url, group, &dedup, &format!("{group}/{i}")).await;
        parked.push((group, dedup, format!("{group}/{i}")));
    }

    // Dry run: moves nothing and leaves every message visible. A FIFO queue hands out nothing more of a group
    // while some of it is held, so a look without moving sees the front of each group, in order.
    let look = dlq::redrive(
        &aws.sqs,
        &dlq_url,
        &source,
        true,
        1000,
        &stamp("alice"),
        true,
    )
    .await
    .unwrap();
    assert!(
        (1..=10).contains(&look.messages.len()),
        "{}",
        look.messages.len()
    );
    for group in groups {
        let seen: Vec<&str> = look
            .messages
            .iter()
            .filter(|m| m.group_id.as_deref() == Some(group))
            .map(|m| m.body.as_str())
            .collect();
        let front: Vec<&str> = parked
            .iter()
            .filter(|(g, _, _)| *g == group)
            .map(|(_, _, b)| b.as_str())
            .take(seen.len())
            .collect();
        assert_eq!(
            seen, front,
            "group {group}: the look is not the group's front"
        );
    }
    assert_eq!(queue_depth(&aws.sqs, &dlq_url).await, (25, 0));
    assert_eq!(queue_depth(&aws.sqs, &source).await, (0, 0));

    // --max: only that many move.
    let first = dlq::redrive(&aws.sqs, &dlq_url, &source, true, 7, &stamp("alice"), false)
        .await
        .unwrap();
    assert_eq!(first.messages.len(), 7);
    let rest = dlq::redrive(
        &aws.sqs,
        &dlq_url,
        &source,
        true,
        1000,
        &stamp("alice"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(rest.messages.len(), 18);
    assert_eq!(queue_depth(&aws.sqs, &dlq_url).await, (0, 0));

    let arrived = drain_all(&aws.sqs, &source).await;
    assert_eq!(arrived.len(), 25, "nothing lost, nothing doubled");
    let mut per_group: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (body, group, dedup, attributes) in &arrived {
        let expected_group = body.split_once('/').unwrap().0;
        assert_eq!(group, expected_group, "{body} changed group");
        assert_eq!(attributes["redriven_by"], "alice");
        assert_eq!(attributes["redriven_at"], "2026-11-30T00:53:20Z");
        assert_eq!(attributes["redriven_from"], "stock");
        assert_eq!(
            attributes["origin"],
            format!("parked-{dedup}"),
            "own attributes kept"
        );
        per_group
            .entry(groups.iter().find(|g| **g == group.as_str()).unwrap())
            .or_default()
            .push((body.clone(), dedup.clone()));
    }
    for group in groups {
        let expected: Vec<(String, String)> = parked
            .iter()
            .filter(|(g, _, _)| *g == group)
            .map(|(_, d, b)| (b.clone(), d.clone()))
            .collect();
        assert_eq!(
            per_group[group], expected,
            "group {group}: order or dedup ids changed"
        );
    }
}

fn sale(event: &str, sku: &str, line: u32) -> StockLineMessage {
    let now = Utc::now().timestamp_millis();
    StockLineMessage {
        event_id: event.into(),
        line,
        event_type: StockEventType::Sale,
        store: StoreCode::parse("LDN-01").unwrap(),
        item: ItemRef::Sku(sku.into()),
        movement: Movement::Delta(-1),
        position: EventPosition {
            occurred_at_ms: now,
            sequence: None,
        },
        received_at_ms: now,
        reference: None,
        values: Vec::new(),
        business_date: None,
    }
}

#[tokio::test]
async fn redrive_interrupted_between_send_and_delete_then_rerun_loses_nothing_and_the_duplicate_is_absorbed(
) {
    let aws = aws().await;
    let (source, dlq_url) = create_fifo_queue_with_dlq(&aws.sqs, &unique("stock"), 5, 30)
        .await
        .unwrap();
    let movements = [
        sale("evt-1", "SKU-A", 0),
        sale("evt-2", "SKU-B", 0),
        sale("evt-3", "SKU-A", 0),
    ];
    for (i, m) in movements.iter().enumerate() {
        let body = serde_json::to_string(m).unwrap();
        park(
            &aws.sqs,
            &dlq_url,
            &m.item.group_id(),
            &format!("mv{i}"),
            &body,
        )
        .await;
    }

    // First run dies after the send: the messages are on the source queue and still (hidden) in the DLQ.
    let batch = dlq::receive(&aws.sqs, &dlq_url, 10, 120).await.unwrap();
    assert_eq!(batch.len(), 3);
    assert!(matches!(
        dlq::decode(DlqName::Stock, &batch[0].body),
        dlq::Decoded::StockMovement(_)
    ));
    dlq::send_to_source(&aws.sqs, &source, true, &batch, &stamp("alice"))
        .await
        .unwrap();
    // The hold runs out (made visible at once instead of waiting for it).
    dlq::release(&aws.sqs, &dlq_url, &batch).await.unwrap();
    assert_eq!(queue_depth(&aws.sqs, &dlq_url).await, (3, 0));

    // The rerun moves them again: same dedup ids, so SQS keeps one copy of each within its 5-minute window.
    let rerun = dlq::redrive(
        &aws.sqs,
        &dlq_url,
        &source,
        true,
        1000,
        &stamp("bob"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(rerun.messages.len(), 3);
    assert_eq!(queue_depth(&aws.sqs, &dlq_url).await, (0, 0));
    let arrived = drain_all(&aws.sqs, &source).await;
    let mut bodies: Vec<String> = arrived.iter().map(|(b, ..)| b.clone()).collect();
    bodies.sort();
    let mut expected: Vec<String> = movements
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect();
    expected.sort();
    assert_eq!(
        bodies, expected,
        "each movement exactly once on the source queue"
    );

    // Past the dedup window the second copy would reach the applier: its applied-movement marker (event id +
    // line, never the SQS message id) makes it a no-op. Applying every body twice changes the ledger once.
    let stock_table = unique("stock");
    let idempotency_table = unique("idem");
    create_stock_table(&aws.dynamo, &stock_table).await.unwrap();
    create_idempotency_table(&aws.dynamo, &idempotency_table)
        .await
        .unwrap();
    let ledger = Arc::new(DynamoLedgerStore::new(
        aws.dynamo.clone(),
        &stock_table,
        &idempotency_table,
    ));
    let applier = StockApplier {
        ledger: ledger.clone(),
        push_queue: Arc::new(MemoryPushQueue::new()),
        exceptions: ledger.clone(),
        metrics: Arc::new(Metrics::new()),
        clock: shared::core::clock::system_clock(),
        finance: Default::default(),
    };
    for (body, ..) in arrived.iter().chain(arrived.iter()) {
        let m: StockLineMessage = serde_json::from_str(body).unwrap();
        applier.apply(&m).await.unwrap();
    }
    let store = StoreCode::parse("LDN-01").unwrap();
    let a = ledger
        .get(&store, &ItemRef::Sku("SKU-A".into()))
        .await
        .unwrap()
        .unwrap();
    let b = ledger
        .get(&store, &ItemRef::Sku("SKU-B".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.version, b.version), (2, 1), "each movement applied once");
    let again = applier.apply(&movements[0]).await.unwrap();
    assert_eq!(again.0, ApplyOutcome::Duplicate);
}

// ---------------------------------------------------------------- orders retry

const UK_STORE_ID: u64 = 1;
const SKU_A: &str = "Prod123Var123789S";

fn mappings(order_api_base: &str, shipping_mapped: bool) -> Mappings {
    let shipping = if shipping_mapped {
        "home-standard = \"home-delivery-uk\""
    } else {
        "click-collect = \"home-delivery-uk\""
    };
    Mappings::from_toml(&format!(
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
[stores.LDN-01.orders.shipping]
{shipping}
"#
    ))
    .unwrap()
}

struct OrdersEnv {
    centra: CentraSim,
    cloudshelf: CloudshelfSim,
    outbox: Arc<DynamoOrderOutbox>,
    queue: SqsFifoQueue,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    clock: ManualClock,
    /// The mapping lacks the kiosk's shipping method: orders park in `exception`.
    broken: OrderSync,
    /// The mapping fixed.
    fixed: OrderSync,
}

fn sync(env: &OrdersEnvParts, shipping_mapped: bool) -> OrderSync {
    let timeout = Duration::from_millis(800);
    OrderSync {
        daybook: None,
        mappings: Arc::new(mappings(&env.centra.order_api_base("uk"), shipping_mapped)),
        order_api_secrets: HashMap::from([("uk".to_string(), "uk-secret".to_string())]),
        order_api: CentraOrderApi::new(timeout),
        centra: CentraClient::new(env.centra.graphql_url(), env.centra.token(), timeout),
        cloudshelf: CloudshelfClient::new(
            env.cloudshelf.graphql_url(),
            env.cloudshelf.api_key(),
            timeout,
        ),
        outbox: env.outbox.clone(),
        exceptions: Arc::new(MemoryLedgerStore::new()),
        clock: Arc::new(env.clock.clone()),
        metrics: Arc::new(Metrics::new()),
        settings: OrderSyncSettings {
            lease_ms: 5_000,
            ..OrderSyncSettings::default()
        },
        instance_id: "test".into(),
    }
}

struct OrdersEnvParts {
    centra: CentraSim,
    cloudshelf: CloudshelfSim,
    outbox: Arc<DynamoOrderOutbox>,
    clock: ManualClock,
}

async fn orders_env() -> OrdersEnv {
    let aws = aws().await;
    let centra = CentraSim::start(CentraSimConfig::default()).await;
    centra.add_order_plugin("uk", "uk-secret", UK_STORE_ID);
    centra.add_market(3, UK_STORE_ID);
    centra.add_pricelist(5, UK_STORE_ID, "GBP");
    centra.add_shipping_option("home-delivery-uk", UK_STORE_ID);
    centra.add_size(SKU_A, None, true);
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let table = unique("stock");
    create_stock_table(&aws.dynamo, &table).await.unwrap();
    let (queue_url, _dlq) = create_fifo_queue_with_dlq(&aws.sqs, &unique("orders"), 5, 30)
        .await
        .unwrap();
    let parts = OrdersEnvParts {
        centra,
        cloudshelf,
        outbox: Arc::new(DynamoOrderOutbox::new(aws.dynamo.clone(), table)),
        clock: ManualClock::at(Utc::now().timestamp_millis()),
    };
    let broken = sync(&parts, false);
    let fixed = sync(&parts, true);
    OrdersEnv {
        queue: SqsFifoQueue::new(aws.sqs.clone(), &queue_url),
        queue_url,
        sqs: aws.sqs,
        broken,
        fixed,
        centra: parts.centra,
        cloudshelf: parts.cloudshelf,
        outbox: parts.outbox,
        clock: parts.clock,
    }
}

fn order(id: &str) -> KioskOrder {
    crate::order_flow::kiosk_order(
        id,
        "LDN-01",
        vec![crate::order_flow::line(
            ItemRef::Sku(SKU_A.into()),
            2,
            "49.00",
        )],
    )
}

fn seed_cloudshelf(env: &OrdersEnv, order: &KioskOrder) {
    env.cloudshelf.add_order(OrderSeed {
        id: order.cloudshelf_order_id.clone(),
        status: OrderStatus::Placed,
        lines: vec![(
            format!("gid://external/CentraProductSize/{SKU_A}"),
            2,
            49.0,
            "GBP".into(),
        )],
        updated_at: Utc::now(),
        ..Default::default()
    });
}

fn request(order: &KioskOrder, by: &str, dry_run: bool) -> RetryRequest {
    RetryRequest {
        cloudshelf_order_id: order.cloudshelf_order_id.clone(),
        by: by.into(),
        dry_run,
        lookup_margin_ms: OrderSyncSettings::default().lookup_margin_ms,
    }
}

async fn retry(env: &OrdersEnv, req: &RetryRequest) -> Result<RetryOutcome, RetryError> {
    retry_order(
        env.outbox.as_ref(),
        &env.fixed.centra,
        &env.queue,
        &env.clock,
        req,
    )
    .await
}

/// Every message on the orders queue, handed to order-sync (as the FIFO trigger would), then deleted.
async fn deliver(env: &OrdersEnv) -> Vec<(dlq::DlqMessage, OrderOutcome)> {
    let messages = dlq::receive(&env.sqs, &env.queue_url, 10, 30)
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for m in messages {
        let outcome = env.fixed.handle_message(&m.body).await.unwrap();
        dlq::delete(&env.sqs, &env.queue_url, std::slice::from_ref(&m))
            .await
            .unwrap();
        outcomes.push((m, outcome));
    }
    outcomes
}

#[tokio::test]
async fn orders_retry_adopts_the_order_centra_already_holds_and_never_places_a_second() {
    let env = orders_env().await;
    let order = order("01JRETRY1");
    seed_cloudshelf(&env, &order);
    // Attempt 1 creates the order in Centra but its answer is lost…
    env.centra
        .inject_on(FaultTarget::OrderApi, Fault::LoseResponseAfterApply);
    assert!(env.fixed.place(&order).await.is_err());
    assert_eq!(env.centra.orders().len(), 1);
    let number = env.centra.orders()[0].number;
    // …and by the next delivery the shipping mapping was broken by a deploy: the order parks in exception.
    env.clock.advance_millis(6_000);
    let parked = env.broken.place(&order).await.unwrap();
    assert!(
        matches!(&parked, OrderOutcome::Exception { kind, .. } if kind == "unmapped_shipping_method"),
        "{parked:?}"
    );
    let before = env
        .outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.state, OutboxState::Exception);
    assert_eq!(before.parked_order.as_deref(), Some(&order));

    // Dry run: says it would adopt, writes and queues nothing.
    let dry = retry(&env, &request(&order, "alice", true)).await.unwrap();
    assert_eq!(
        dry,
        RetryOutcome::WouldReopen {
            to: OutboxState::Injecting,
            found_in_centra: vec![number],
            would_queue: true
        }
    );
    assert_eq!(
        env.outbox
            .get(&order.cloudshelf_order_id)
            .await
            .unwrap()
            .unwrap(),
        before
    );
    assert_eq!(queue_depth(&env.sqs, &env.queue_url).await, (0, 0));

    let outcome = retry(&env, &request(&order, "alice", false)).await.unwrap();
    assert_eq!(
        outcome,
        RetryOutcome::Reopened {
            to: OutboxState::Injecting,
            found_in_centra: vec![number],
            queued: true,
            rev: before.rev + 1
        }
    );
    let reopened = env
        .outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reopened.state, OutboxState::Injecting);
    assert_eq!(reopened.centra_orders, vec![number]);
    let action = reopened.operator_actions.last().unwrap();
    assert_eq!(
        (action.action.as_str(), action.by.as_str()),
        ("retry", "alice")
    );
    assert_eq!(action.at_ms, env.clock_now());
    assert!(
        action.note.as_deref().unwrap().contains("adopted"),
        "{action:?}"
    );
    // The lifecycle recognises the Centra order as ours at once.
    assert_eq!(
        env.outbox
            .find_by_centra_order(number)
            .await
            .unwrap()
            .as_deref(),
        Some(order.cloudshelf_order_id.as_str())
    );

    let delivered = deliver(&env).await;
    assert_eq!(delivered.len(), 1, "one queued message");
    let (message, outcome) = &delivered[0];
    assert_eq!(
        message.group_id.as_deref(),
        Some(order.cloudshelf_order_id.as_str())
    );
    assert_ne!(
        message.dedup_id,
        Some(shared::intake::store_events::order_message(&order).dedup_id),
        "its own dedup id: the original's may still be inside SQS's window"
    );
    assert_eq!(
        outcome,
        &OrderOutcome::Reported {
            centra_orders: vec![number],
            adopted: true
        }
    );
    assert_eq!(env.centra.orders().len(), 1, "exactly one Centra order");
    assert_eq!(env.centra.order_create_count(), 1);
    let cs = env.cloudshelf.order(&order.cloudshelf_order_id).unwrap();
    assert_eq!(cs.third_party_id, Some(number.to_string()));
    let done = env
        .outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, OutboxState::Reported);
    assert_eq!(
        done.parked_order, None,
        "customer data dropped once Centra has it"
    );
    assert_eq!(
        done.operator_actions, reopened.operator_actions,
        "the trail stays"
    );

    // Not in exception any more: refused, saying why.
    let refused = retry(&env, &request(&order, "bob", false))
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "{} is in state `reported`, not `exception`; only a parked order can be retried: Centra order(s) \
             {number} exist and Cloudshelf has been told; nothing to retry",
            order.cloudshelf_order_id
        )
    );
    let unknown = retry(&env, &request(&self::order("01JNONE"), "bob", false))
        .await
        .unwrap_err();
    assert!(matches!(unknown, RetryError::NotFound(_)), "{unknown}");
    assert_eq!(queue_depth(&env.sqs, &env.queue_url).await, (0, 0));
}

impl OrdersEnv {
    fn clock_now(&self) -> i64 {
        use shared::core::clock::Clock;
        self.clock.now_millis()
    }
}

#[tokio::test]
async fn concurrent_orders_retries_reopen_once_and_the_order_is_placed_once() {
    let env = orders_env().await;
    let order = order("01JRETRY2");
    seed_cloudshelf(&env, &order);
    assert!(matches!(
        env.broken.place(&order).await.unwrap(),
        OrderOutcome::Exception { .. }
    ));
    assert_eq!(env.centra.order_api_request_count(), 0);

    let (alice, bob) = (
        request(&order, "alice", false),
        request(&order, "bob", false),
    );
    let (a, b) = tokio::join!(retry(&env, &alice), retry(&env, &bob));
    let outcomes = [a.unwrap(), b.unwrap()];
    let reopened: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, RetryOutcome::Reopened { .. }))
        .collect();
    assert_eq!(reopened.len(), 1, "{outcomes:?}");
    assert!(matches!(
        reopened[0],
        RetryOutcome::Reopened {
            to: OutboxState::Received,
            queued: true,
            ..
        }
    ));
    let record = env
        .outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.operator_actions.len(), 1, "re-opened once");
    let winner = record.operator_actions[0].by.clone();
    for o in &outcomes {
        if let RetryOutcome::AlreadyReopened { by, .. } = o {
            assert_eq!(by, &winner);
        }
    }

    // A later rerun (the first run's send may have been lost) re-queues under the same dedup id: one message.
    let rerun = retry(&env, &request(&order, "carol", false)).await.unwrap();
    assert!(
        matches!(&rerun, RetryOutcome::AlreadyReopened { by, requeued: true, .. } if by == &winner),
        "{rerun:?}"
    );
    let delivered = deliver(&env).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(matches!(
        delivered[0].1,
        OrderOutcome::Reported { adopted: false, .. }
    ));
    assert_eq!(env.centra.orders().len(), 1);
}

// ---------------------------------------------------------------- exceptions

fn exception(id: &str, store: &str, kind: &str, at: i64) -> ExceptionRecord {
    ExceptionRecord {
        id: id.into(),
        store: store.into(),
        item: Some("sku:A".into()),
        kind: kind.into(),
        message: format!("{kind} happened"),
        created_at_ms: at,
        ..Default::default()
    }
}

#[tokio::test]
async fn exceptions_filter_by_kind_and_resolve_once_with_who_and_when() {
    let aws = aws().await;
    let table = unique("stock");
    create_stock_table(&aws.dynamo, &table).await.unwrap();
    let ledger = DynamoLedgerStore::new(aws.dynamo.clone(), &table, "unused");
    for e in [
        exception("x1", "LDN-01", "centra_rejected_line", 1_000),
        exception("x2", "LDN-01", "unmapped_shipping_method", 2_000),
        exception("x3", "MAN-01", "centra_rejected_line", 3_000),
    ] {
        ledger.record(&e).await.unwrap();
    }
    let book = ExceptionBook::new(aws.dynamo.clone(), &table);
    let ids = |entries: &[shared::ops::exceptions::ExceptionEntry]| {
        entries
            .iter()
            .map(|e| e.record.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&book.list(None, Some("centra_rejected_line")).await.unwrap()),
        ["x1", "x3"]
    );
    assert_eq!(
        ids(&book
            .list(Some("LDN-01"), Some("centra_rejected_line"))
            .await
            .unwrap()),
        ["x1"]
    );
    assert_eq!(
        ids(&book.list(None, None).await.unwrap()),
        ["x1", "x2", "x3"]
    );

    // Dry run changes nothing.
    let dry = book
        .resolve("x1", None, "size reactivated", "alice", 5_000, true)
        .await
        .unwrap();
    assert!(matches!(dry, ResolveOutcome::WouldResolve(_)));
    assert!(book
        .list(None, None)
        .await
        .unwrap()
        .iter()
        .all(|e| e.resolution.is_none()));

    let done = book
        .resolve("x1", None, "size reactivated", "alice", 5_000, false)
        .await
        .unwrap();
    let ResolveOutcome::Resolved(entry) = done else {
        panic!("{done:?}")
    };
    assert_eq!(entry.resolution.as_ref().unwrap().by, "alice");
    let twice = book
        .resolve("x1", None, "again", "bob", 6_000, false)
        .await
        .unwrap();
    let ResolveOutcome::AlreadyResolved(entry) = twice else {
        panic!("{twice:?}")
    };
    let r = entry.resolution.unwrap();
    assert_eq!(
        (r.by.as_str(), r.at_ms, r.note.as_str()),
        ("alice", 5_000, "size reactivated")
    );
    let listed = book.list(Some("LDN-01"), None).await.unwrap();
    assert_eq!(listed[0].resolution.as_ref().unwrap().by, "alice");
    assert!(listed[1].resolution.is_none());
    // The JSON the CLI prints carries the record and its resolution.
    let json = serde_json::to_value(&listed[0]).unwrap();
    assert_eq!(json["kind"], "centra_rejected_line");
    assert_eq!(json["resolution"]["by"], "alice");

    // The integration records the same exception again: it is open again.
    ledger
        .record(&exception("x1", "LDN-01", "centra_rejected_line", 1_000))
        .await
        .unwrap();
    assert!(book.list(Some("LDN-01"), None).await.unwrap()[0]
        .resolution
        .is_none());

    assert!(matches!(
        book.resolve("nope", None, "n", "alice", 1, false).await,
        Err(ResolveError::NotFound(_))
    ));
    assert!(matches!(
        book.resolve("x2", None, "  ", "alice", 1, false).await,
        Err(ResolveError::EmptyNote)
    ));
}

#[tokio::test]
async fn order_sync_adopts_the_order_a_retry_recorded_even_when_its_own_search_misses_it() {
    let env = orders_env().await;
    let order = order("01JMISSED");
    seed_cloudshelf(&env, &order);
    env.centra
        .inject_on(FaultTarget::OrderApi, Fault::LoseResponseAfterApply);
    assert!(env.fixed.place(&order).await.is_err());
    let number = env.centra.orders()[0].number;
    env.clock.advance_millis(6_000);
    env.broken.place(&order).await.unwrap();
    let outcome = retry(&env, &request(&order, "alice", false)).await.unwrap();
    assert!(
        matches!(&outcome, RetryOutcome::Reopened { found_in_centra, .. } if found_in_centra == &vec![number]),
        "{outcome:?}"
    );
    // Order-sync's own tag search starts at the first attempt (less a margin): moved a day on, it cannot see
    // the order the retry found — as when Centra's search lags behind its writes.
    let mut record = env
        .outbox
        .get(&order.cloudshelf_order_id)
        .await
        .unwrap()
        .unwrap();
    let expected = record.rev;
    record.first_attempt_at_ms = Some(env.clock_now() + 86_400_000);
    assert!(env.outbox.put(&record, Some(expected)).await.unwrap());

    let delivered = deliver(&env).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].1,
        OrderOutcome::Reported {
            centra_orders: vec![number],
            adopted: true
        }
    );
    assert_eq!(env.centra.orders().len(), 1, "no second Centra order");
    assert_eq!(env.centra.order_create_count(), 1);
}
