//! Kiosk orders and Centra webhooks on the AWS implementations, against moto (DynamoDB + SQS FIFO) and the
//! Centra and Cloudshelf simulators: intake → orders FIFO queue → order sync (as the FIFO trigger would call
//! it, including a redelivery of the same batch) → Centra Order API → Cloudshelf.

use shared::aws::provision::*;
use shared::aws::sqs::{delete_messages, receive_batch, ReceivedMessage};
use shared::aws::*;
use shared::batch::FifoItem;
use shared::centra::CentraClient;
use shared::centra_orders::CentraOrderApi;
use shared::centra_webhooks::{
    sign_centra, CentraSignatureVerifier, CentraWebhookIntake, CentraWebhookRequest,
};
use shared::cloudshelf::CloudshelfClient;
use shared::intake::{IntakeRequest, IntakeSettings, StoreEventIntake};
use shared::mappings::Mappings;
use shared::metrics::Metrics;
use shared::orders::outbox::OrderOutbox;
use shared::orders::sync::{OrderSync, OrderSyncSettings};
use shared::signature::{sign, WebhookVerifier};
use shared::time::system_clock;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CENTRA_SECRET: &str = "centra-endpoint-secret";
const ORDER_ID: &str = "gid://cloudshelf/Order/01JMOTO0001";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn order_body() -> String {
    serde_json::json!({
        "type": "order.placed", "occurred_at": chrono::Utc::now().to_rfc3339(), "store": "LDN-01",
        "cloudshelf_order_id": ORDER_ID,
        "customer": { "email": "ann@example.com" },
        "delivery_address": { "lines": ["1 High St"], "city": "London", "postcode": "W1 1AA", "country": "GB" },
        "shipping_method": "home-standard", "shipping_price": "5.00",
        "payment": { "provider": "adyen", "transaction_id": "psp-1", "amount": "103.00", "currency": "GBP", "status": "captured" },
        "lines": [{ "sku": "Prod123Var123789S", "quantity": 2, "unit_price": "49.00", "currency": "GBP" }]
    })
    .to_string()
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn items(batch: &[ReceivedMessage]) -> Vec<FifoItem<String>> {
    batch
        .iter()
        .map(|m| FifoItem {
            message_id: m.message_id.clone(),
            group_id: m.group_id.clone().unwrap_or_default(),
            payload: m.body.clone(),
        })
        .collect()
}

#[tokio::test]
async fn kiosk_order_and_centra_webhooks_through_moto_make_one_order_and_one_update() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)"
    );
    let sdk = sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let idem = unique("idem");
    let stock = unique("stock");
    create_idempotency_table(&dynamo, &idem).await.unwrap();
    create_stock_table(&dynamo, &stock).await.unwrap();
    let (orders_url, _dlq) = create_fifo_queue_with_dlq(&sqs, &unique("orders"), 5, 30)
        .await
        .unwrap();

    let centra = CentraSim::start(CentraSimConfig::default()).await;
    centra.add_order_plugin("uk", "uk-secret", 1);
    centra.add_market(3, 1);
    centra.add_pricelist(5, 1, "GBP");
    centra.add_shipping_option("home-delivery-uk", 1);
    centra.add_size("Prod123Var123789S", None, true);
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    cloudshelf.add_order(OrderSeed {
        id: ORDER_ID.into(),
        status: OrderStatus::DraftBasket,
        lines: vec![(
            "gid://external/CentraProductSize/Prod123Var123789S".into(),
            2,
            49.0,
            "GBP".into(),
        )],
        updated_at: chrono::Utc::now(),
        ..Default::default()
    });
    let mappings = Arc::new(
        Mappings::from_toml(&format!(
            "[order_api.uk]\nbase_url = \"{}\"\nsecret = \"S\"\ncentra_store_id = 1\n\
             [stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://external/CentraWarehouse/12\"\ncurrency = \"GBP\"\n\
             [stores.LDN-01.orders]\norder_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n\
             [stores.LDN-01.orders.shipping]\nhome-standard = \"home-delivery-uk\"\n",
            centra.order_api_base("uk")
        ))
        .unwrap(),
    );
    let metrics = Arc::new(Metrics::new());
    let idempotency = Arc::new(DynamoIdempotencyStore::new(dynamo.clone(), &idem));
    let orders_queue = Arc::new(SqsStockQueue::new(sqs.clone(), &orders_url));
    let intake = StoreEventIntake {
        verifier: WebhookVerifier::from_config(SECRET).unwrap(),
        mappings: mappings.clone(),
        idempotency: idempotency.clone(),
        // Stock lines are not part of this test; the orders queue stands in so nothing is lost if one came.
        queue: orders_queue.clone(),
        orders: Some(orders_queue.clone()),
        catalogue: Arc::new(shared::identity::ItemCatalogue::with_sizes(
            test_sizes(),
            shared::time::system_clock(),
        )),
        clock: system_clock(),
        metrics: metrics.clone(),
        settings: IntakeSettings::default(),
    };
    let centra_webhooks = CentraWebhookIntake {
        verifier: Some(CentraSignatureVerifier::from_config(CENTRA_SECRET).unwrap()),
        idempotency,
        orders: Some(orders_queue),
        clock: system_clock(),
        metrics: metrics.clone(),
        settings: IntakeSettings::default(),
    };
    let outbox = Arc::new(DynamoOrderOutbox::new(dynamo.clone(), &stock));
    let sync = OrderSync {
        daybook: None,
        mappings,
        order_api_secrets: HashMap::from([("uk".to_string(), "uk-secret".to_string())]),
        order_api: CentraOrderApi::new(Duration::from_secs(5)),
        centra: CentraClient::new(centra.graphql_url(), centra.token(), Duration::from_secs(5)),
        cloudshelf: CloudshelfClient::new(
            cloudshelf.graphql_url(),
            cloudshelf.api_key(),
            Duration::from_secs(5),
        ),
        outbox: outbox.clone(),
        exceptions: Arc::new(DynamoLedgerStore::new(dynamo, &stock, &idem)),
        clock: system_clock(),
        metrics,
        settings: OrderSyncSettings::default(),
        instance_id: "moto".into(),
    };

    // The kiosk sends the order three times at once (its retry storm): one message is queued.
    let body = order_body();
    let send = || async {
        let ts = chrono::Utc::now().timestamp();
        let signature = sign(SECRET, "evt-order-1", ts, body.as_bytes());
        let ts = ts.to_string();
        intake
            .handle(IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some("evt-order-1"),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some(&signature),
                body: body.as_bytes(),
            })
            .await
            .status
    };
    let statuses = futures::future::join_all([send(), send(), send()]).await;
    assert!(
        statuses.iter().all(|s| [200, 202, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&202), "{statuses:?}");

    let batch = receive_batch(&sqs, &orders_url, 10, 30).await.unwrap();
    assert_eq!(batch.len(), 1, "one orders message for three sends");
    assert_eq!(batch[0].group_id.as_deref(), Some(ORDER_ID));
    let failed = sync.process_batch(items(&batch)).await;
    assert!(failed.is_empty());
    // The trigger's delete is lost: SQS redelivers the same batch. No second Centra order.
    let failed = sync.process_batch(items(&batch)).await;
    assert!(failed.is_empty());
    delete_messages(&sqs, &orders_url, &[batch[0].receipt_handle.clone()])
        .await
        .unwrap();
    assert_eq!(centra.orders().len(), 1);
    let number = centra.orders()[0].number;
    assert_eq!(
        outbox
            .find_by_centra_order(number)
            .await
            .unwrap()
            .as_deref(),
        Some(ORDER_ID)
    );
    let cs = cloudshelf.order(ORDER_ID).unwrap();
    assert_eq!(cs.status, OrderStatus::Paid);
    assert_eq!(cs.third_party_id, Some(number.to_string()));
    let upserts = cloudshelf.upsert_count();

    // Centra cancels the order and its webhook fires three times: one queued event, one Cloudshelf update.
    centra.set_order_status(number, "CANCELLED");
    let payload = serde_json::json!({ "events": [
        { "type": "order", "action": "update", "date": "2026-11-28 16:00:00.000001", "id": number }
    ]})
    .to_string();
    let form = format!("payload={}", form_encode(&payload));
    for _ in 0..3 {
        let t = chrono::Utc::now().timestamp();
        let signature = sign_centra(CENTRA_SECRET, t, form.as_bytes());
        let answer = centra_webhooks
            .handle(CentraWebhookRequest {
                content_type: Some("application/x-www-form-urlencoded"),
                signature: Some(&signature),
                body: form.as_bytes(),
            })
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let batch = receive_batch(&sqs, &orders_url, 10, 30).await.unwrap();
    assert_eq!(batch.len(), 1, "three webhook calls, one queued event");
    assert!(sync.process_batch(items(&batch)).await.is_empty());
    delete_messages(&sqs, &orders_url, &[batch[0].receipt_handle.clone()])
        .await
        .unwrap();
    assert_eq!(
        cloudshelf.order(ORDER_ID).unwrap().status,
        OrderStatus::Voided
    );
    assert_eq!(cloudshelf.upsert_count(), upserts + 1);
}

/// Centra's sizes as far as these tests need them: the samples and `SKU-0`…`SKU-999`, `A`…`Z`.
fn test_sizes() -> Vec<shared::centra::SizeRecord> {
    let named = [
        "Prod123Var123789S",
        "Prod123Var123790M",
        "Tee01Black-M",
        "Tee01Black-L",
        "Jeans32Indigo-30",
    ]
    .into_iter()
    .map(str::to_string)
    .chain((0..1000).map(|i| format!("SKU-{i}")))
    .chain(('A'..='Z').map(|c| c.to_string()));
    named
        .enumerate()
        .map(|(i, sku)| shared::centra::SizeRecord {
            id: i as u64 + 1,
            ean: (sku == "Prod123Var123790M").then(|| "7350000000012".to_string()),
            sku: Some(sku),
        })
        .collect()
}
