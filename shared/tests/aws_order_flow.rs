//! Kiosk orders and Centra webhooks on the AWS implementations, against moto (DynamoDB + SQS FIFO) and the
//! Centra and Cloudshelf simulators: intake → orders FIFO queue → order sync (as the FIFO trigger would call
//! it, including a redelivery of the same batch) → Centra Order API → Cloudshelf.

use crate::deployed;

use deployed::{post_centra_webhook, post_store_event, Stack, StackParameters};
use shared::adapters::aws::sqs::{delete_messages, receive_batch, ReceivedMessage};
use shared::adapters::aws::*;
use shared::orders::outbox::OrderOutbox;
use shared::stock::batch::FifoItem;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus};

const ORDER_ID: &str = "gid://cloudshelf/Order/01JMOTO0001";

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
    let mappings = format!(
        "[order_api.uk]\nbase_url = \"{}\"\nsecret = \"S\"\ncentra_store_id = 1\n\
         [stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://external/CentraWarehouse/12\"\ncurrency = \"GBP\"\n\
         [stores.LDN-01.orders]\norder_api = \"uk\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n\
         [stores.LDN-01.orders.shipping]\nhome-standard = \"home-delivery-uk\"\n",
        centra.order_api_base("uk")
    );
    // The Order-API plugin's secret reaches order-sync only through the bundle secret the template names.
    let stack = Stack::create(
        StackParameters::new(&centra.graphql_url(), centra.token(), &mappings)
            .secret("OrderApiSecretsArn", r#"{"S":"uk-secret"}"#)
            .value("CloudshelfApiUrl", cloudshelf.graphql_url())
            .secret("CloudshelfApiKeySecretArn", cloudshelf.api_key()),
    )
    .await;
    // The SKU audit has run: intake resolves the order's lines from the snapshot.
    stack.put_catalogue_snapshot(test_sizes()).await;
    let sqs = stack.admin.sqs();
    let orders_url = stack.resources["OrdersQueue"].reference.clone();
    let intake = stack.webhook_intake().await;
    let sync = stack.order_sync().await;
    // The test's own view of the outbox (not order-sync's: its reads would count as the role's).
    let outbox = DynamoOrderOutbox::new(
        stack.admin.dynamodb(),
        &stack.resources["StockTable"].reference,
    );

    // The kiosk sends the order three times at once (its retry storm): one message is queued.
    let body = order_body();
    let send = || async { post_store_event(&intake, "evt-order-1", &body).await.0 };
    let statuses = futures::future::join_all([send(), send(), send()]).await;
    stack.assert_no_denials();
    assert!(
        statuses.iter().all(|s| [200, 202, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&202), "{statuses:?}");

    let batch = receive_batch(&sqs, &orders_url, 10, 30).await.unwrap();
    assert_eq!(batch.len(), 1, "one orders message for three sends");
    assert_eq!(batch[0].group_id.as_deref(), Some(ORDER_ID));
    let failed = sync.process_batch(items(&batch)).await;
    stack.assert_no_denials();
    assert!(failed.is_empty());
    // The trigger's delete is lost: SQS redelivers the same batch. No second Centra order.
    let failed = sync.process_batch(items(&batch)).await;
    stack.assert_no_denials();
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
    for _ in 0..3 {
        let (status, answer) = post_centra_webhook(&intake, &payload).await;
        stack.assert_no_denials();
        assert_eq!(status, 200, "{answer}");
    }
    let batch = receive_batch(&sqs, &orders_url, 10, 30).await.unwrap();
    assert_eq!(batch.len(), 1, "three webhook calls, one queued event");
    let failed = sync.process_batch(items(&batch)).await;
    stack.assert_no_denials();
    assert!(failed.is_empty());
    delete_messages(&sqs, &orders_url, &[batch[0].receipt_handle.clone()])
        .await
        .unwrap();
    assert_eq!(
        cloudshelf.order(ORDER_ID).unwrap().status,
        OrderStatus::Voided
    );
    assert_eq!(cloudshelf.upsert_count(), upserts + 1);
    stack.assert_deployable();
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
