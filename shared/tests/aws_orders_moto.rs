//! The DynamoDB order outbox against a moto server (`scripts/test.sh` sets `AWS_ENDPOINT_URL`).

use shared::adapters::aws::provision::create_stock_table;
use shared::adapters::aws::{sdk_config, DynamoOrderOutbox};
use shared::core::ids::StoreCode;
use shared::orders::outbox::{OrderOutbox, OutboxRecord, OutboxState};

async fn outbox() -> DynamoOrderOutbox {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)"
    );
    let config = sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("stock-{}", uuid::Uuid::new_v4().simple());
    create_stock_table(&dynamo, &table).await.unwrap();
    DynamoOrderOutbox::new(dynamo, table)
}

#[tokio::test]
async fn outbox_writes_are_fenced_by_revision_and_index_centra_numbers() {
    let outbox = outbox().await;
    let store = StoreCode::parse("LDN-01").unwrap();
    let id = "gid://cloudshelf/Order/01JDEMO";
    let fresh = OutboxRecord::received(id, &store, "evt-1", 1_000);
    assert!(outbox.put(&fresh, None).await.unwrap());
    // A second "create" (a concurrent delivery of the same order) loses.
    assert!(!outbox.put(&fresh, None).await.unwrap());

    let read = outbox.get(id).await.unwrap().unwrap();
    assert_eq!(read.rev, 1);
    assert_eq!(read.state, OutboxState::Received);

    // Two attempts both read rev 1: only the first lease write wins.
    let mut a = read.clone();
    a.state = OutboxState::Injecting;
    a.owner = "attempt-a".into();
    let mut b = read.clone();
    b.state = OutboxState::Injecting;
    b.owner = "attempt-b".into();
    assert!(outbox.put(&a, Some(1)).await.unwrap());
    assert!(!outbox.put(&b, Some(1)).await.unwrap());
    let now = outbox.get(id).await.unwrap().unwrap();
    assert_eq!((now.rev, now.owner.as_str()), (2, "attempt-a"));

    let mut injected = now.clone();
    injected.state = OutboxState::Injected;
    injected.centra_orders = vec![1000, 1001];
    assert!(outbox.put(&injected, Some(2)).await.unwrap());
    assert_eq!(
        outbox.find_by_centra_order(1001).await.unwrap().as_deref(),
        Some(id)
    );
    assert_eq!(outbox.find_by_centra_order(1002).await.unwrap(), None);

    let all = outbox.list().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].centra_orders, vec![1000, 1001]);
    assert_eq!(all[0].rev, 3);
}
