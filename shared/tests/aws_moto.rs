//! The AWS implementations of the ports against a moto server. `scripts/test.sh` starts moto and sets
//! `AWS_ENDPOINT_URL`; every test creates its own uniquely named tables and queues, so they run in parallel.

use shared::adapters::aws::provision::{
    create_fifo_queue_with_dlq, create_idempotency_table, create_standard_queue_with_dlq,
    create_stock_table,
};
use shared::adapters::aws::secrets::{secrets_manager_value, ssm_parameter};
use shared::adapters::aws::sqs::{
    change_visibility, delete_messages, receive_batch, ReceivedMessage,
};
use shared::adapters::aws::{
    sdk_config, DynamoIdempotencyStore, DynamoLedgerStore, DynamoMutationBudget, SqsFifoQueue,
    SqsPushQueue,
};
use shared::core::ids::{ItemRef, StoreCode};
use shared::stock::ledger::{
    ChangeKind, LedgerRow, MutationStatus, PendingMovement, PushLine, PushMutation, PushRecord,
};
use shared::stock::ports::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

struct Aws {
    config: aws_config::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
}

async fn aws() -> Aws {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
    }
    let config = sdk_config().await;
    Aws {
        dynamo: aws_sdk_dynamodb::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        config,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn store(code: &str) -> StoreCode {
    StoreCode::parse(code).unwrap()
}

// ---------------------------------------------------------------- idempotency

fn in_progress(
    key: &str,
    owner: &str,
    lease_until_ms: i64,
    expires_at_s: i64,
) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_string(),
        status: IdempotencyStatus::InProgress,
        body_hash: format!("hash-of-{owner}"),
        owner: owner.to_string(),
        lease_until_ms,
        expires_at_s,
        accepted: None,
    }
}

fn existing(outcome: AcquireOutcome) -> IdempotencyRecord {
    match outcome {
        AcquireOutcome::Existing(record) => record,
        AcquireOutcome::Acquired => panic!("expected the existing record, got Acquired"),
    }
}

#[tokio::test]
async fn idempotency_acquire_complete_release_and_fencing() {
    let aws = aws().await;
    let table = unique("idem");
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    // Creating again is allowed (the local run provisions a long-lived endpoint repeatedly).
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    let ids = DynamoIdempotencyStore::new(aws.dynamo.clone(), &table);
    let now = 1_800_000_000_000_i64;
    let now_s = now / 1000;

    let key = "intake#evt-1";
    let first = in_progress(key, "owner-a", now + 30_000, now_s + 3_600);
    assert_eq!(
        ids.acquire(&first, now).await.unwrap(),
        AcquireOutcome::Acquired
    );

    let held = existing(
        ids.acquire(
            &in_progress(key, "owner-b", now + 30_000, now_s + 3_600),
            now + 1,
        )
        .await
        .unwrap(),
    );
    assert_eq!(held, first, "the holder's record comes back whole");

    assert!(
        !ids.complete(key, "owner-b", now_s + 7_200).await.unwrap(),
        "a non-owner cannot complete"
    );
    assert!(ids.complete(key, "owner-a", now_s + 7_200).await.unwrap());
    let done = ids.get(key).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.expires_at_s, done.owner.as_str()),
        (IdempotencyStatus::Completed, now_s + 7_200, "owner-a")
    );

    // A completed record is not taken over when its (old) lease has ended.
    let after = existing(
        ids.acquire(
            &in_progress(key, "owner-c", now + 120_000, now_s + 3_600),
            now + 60_000,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        (after.status, after.body_hash.as_str()),
        (IdempotencyStatus::Completed, "hash-of-owner-a")
    );
    assert!(
        !ids.release(key, "owner-c").await.unwrap(),
        "a non-owner cannot release"
    );
    assert!(
        !ids.release(key, "owner-a").await.unwrap(),
        "a completed record is not released"
    );
    assert!(ids.get(key).await.unwrap().is_some());
    assert_eq!(ids.get("intake#never-seen").await.unwrap(), None);
}

#[tokio::test]
async fn idempotency_abandoned_lease_is_taken_over_and_the_old_owner_is_fenced() {
    let aws = aws().await;
    let table = unique("idem");
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    let ids = DynamoIdempotencyStore::new(aws.dynamo.clone(), &table);
    let now = 1_800_000_000_000_i64;
    let now_s = now / 1000;

    let key = "intake#evt-lease";
    let lease_end = now + 1_000;
    assert_eq!(
        ids.acquire(&in_progress(key, "slow", lease_end, now_s + 3_600), now)
            .await
            .unwrap(),
        AcquireOutcome::Acquired
    );
    let retry = in_progress(key, "retry", now + 61_000, now_s + 3_600);
    // The lease ends strictly after `lease_until_ms`.
    assert_eq!(
        existing(ids.acquire(&retry, lease_end).await.unwrap()).owner,
        "slow"
    );
    assert_eq!(
        ids.acquire(&retry, lease_end + 1).await.unwrap(),
        AcquireOutcome::Acquired
    );

    assert!(
        !ids.complete(key, "slow", now_s + 7_200).await.unwrap(),
        "the old owner lost the record"
    );
    assert!(!ids.release(key, "slow").await.unwrap());
    let current = ids.get(key).await.unwrap().unwrap();
    assert_eq!(
        (current.owner.as_str(), current.status),
        ("retry", IdempotencyStatus::InProgress)
    );

    assert!(ids.release(key, "retry").await.unwrap());
    assert_eq!(ids.get(key).await.unwrap(), None);
    assert_eq!(
        ids.acquire(
            &in_progress(key, "third", now + 90_000, now_s + 3_600),
            now + 2_000
        )
        .await
        .unwrap(),
        AcquireOutcome::Acquired
    );
}

#[tokio::test]
async fn idempotency_expired_record_is_acquirable_again() {
    let aws = aws().await;
    let table = unique("idem");
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    let ids = DynamoIdempotencyStore::new(aws.dynamo.clone(), &table);
    let now = 1_800_000_000_000_i64;
    let now_s = now / 1000;

    let key = "intake#evt-expiring";
    assert_eq!(
        ids.acquire(&in_progress(key, "first", now + 1_000, now_s + 10), now)
            .await
            .unwrap(),
        AcquireOutcome::Acquired
    );
    assert!(ids.complete(key, "first", now_s + 10).await.unwrap());
    let later = in_progress(key, "later", now + 100_000, now_s + 3_600);
    // Valid through its expiry second (seconds, not milliseconds, are compared)...
    assert_eq!(
        existing(
            ids.acquire(&later, (now_s + 10) * 1000 + 999)
                .await
                .unwrap()
        )
        .status,
        IdempotencyStatus::Completed
    );
    // ...and free after it, although the item is still stored (TTL deletion lags; moto never deletes).
    assert_eq!(
        ids.acquire(&later, (now_s + 11) * 1000).await.unwrap(),
        AcquireOutcome::Acquired
    );
    assert_eq!(ids.get(key).await.unwrap().unwrap(), later);
}

// ---------------------------------------------------------------- ledger, push log, exceptions

fn row_with_delta(store_code: &StoreCode, sku: &str, delta: i64) -> LedgerRow {
    let mut row = LedgerRow::new(store_code.clone(), ItemRef::Sku(sku.to_string()));
    row.version = 1;
    row.delta_applied = delta;
    row.updated_at_ms = now_ms();
    row
}

async fn raw_row(
    aws: &Aws,
    table: &str,
    store_code: &StoreCode,
    item: &ItemRef,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    aws.dynamo
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ledger#{store_code}")),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(item.key()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("stored row")
}

#[tokio::test]
async fn ledger_apply_duplicate_conflict_and_put() {
    let aws = aws().await;
    let (stock_table, idem_table) = (unique("stock"), unique("idem"));
    create_stock_table(&aws.dynamo, &stock_table).await.unwrap();
    create_idempotency_table(&aws.dynamo, &idem_table)
        .await
        .unwrap();
    let ledger = DynamoLedgerStore::new(aws.dynamo.clone(), &stock_table, &idem_table);
    let ldn = store("LDN-01");
    let item = ItemRef::Sku("SKU-1".into());
    let marker_expiry = now_ms() / 1000 + 3_600;

    assert_eq!(LedgerStore::get(&ledger, &ldn, &item).await.unwrap(), None);
    let new_row = row_with_delta(&ldn, "SKU-1", -2);
    assert_eq!(
        ledger
            .apply("mv-1", marker_expiry, &new_row, None)
            .await
            .unwrap(),
        ApplyWrite::Written
    );
    let stored = LedgerStore::get(&ledger, &ldn, &item)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rev, 1);
    assert_eq!(
        stored,
        LedgerRow {
            rev: 1,
            ..new_row.clone()
        }
    );

    // The same movement again, even with the right rev: nothing written.
    assert_eq!(
        ledger
            .apply("mv-1", marker_expiry, &stored, Some(1))
            .await
            .unwrap(),
        ApplyWrite::Duplicate
    );
    // Duplicate wins when the rev is stale too.
    assert_eq!(
        ledger
            .apply("mv-1", marker_expiry, &stored, Some(0))
            .await
            .unwrap(),
        ApplyWrite::Duplicate
    );
    // Another movement on a stale read: a conflict, and its marker is not kept.
    assert_eq!(
        ledger
            .apply("mv-2", marker_expiry, &new_row, None)
            .await
            .unwrap(),
        ApplyWrite::Conflict
    );
    assert_eq!(
        ledger
            .apply("mv-2", marker_expiry, &stored, Some(7))
            .await
            .unwrap(),
        ApplyWrite::Conflict
    );
    let mut next = stored.clone();
    next.delta_applied -= 1;
    next.version += 1;
    assert_eq!(
        ledger
            .apply("mv-2", marker_expiry, &next, Some(1))
            .await
            .unwrap(),
        ApplyWrite::Written
    );
    let stored = LedgerStore::get(&ledger, &ldn, &item)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.rev, stored.delta_applied), (2, -3));

    // The `rev` attribute the conditions test and the rev inside `data` agree; operators see `unpushed`.
    let raw = raw_row(&aws, &stock_table, &ldn, &item).await;
    assert_eq!(raw["rev"].as_n().unwrap(), "2");
    let data: LedgerRow = serde_json::from_str(raw["data"].as_s().unwrap()).unwrap();
    assert_eq!(data.rev, 2);
    assert_eq!(raw["unpushed"].as_bool().unwrap(), &true);

    // put: conditional on the rev read.
    let mut pushed = stored.clone();
    pushed.delta_pushed = pushed.delta_applied;
    assert!(LedgerStore::put(&ledger, &pushed, 2).await.unwrap());
    assert!(
        !LedgerStore::put(&ledger, &pushed, 2).await.unwrap(),
        "rev 2 is gone"
    );
    assert!(!LedgerStore::put(&ledger, &pushed, 9).await.unwrap());
    let stored = LedgerStore::get(&ledger, &ldn, &item)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.rev, stored.delta_pushed), (3, -3));
    assert_eq!(
        raw_row(&aws, &stock_table, &ldn, &item).await["unpushed"]
            .as_bool()
            .unwrap(),
        &false
    );
    assert!(
        !LedgerStore::put(&ledger, &row_with_delta(&ldn, "SKU-NEW", 1), 0)
            .await
            .unwrap(),
        "put never creates a row"
    );

    // An expired marker no longer counts (it is still stored: TTL deletion lags).
    let expired = now_ms() / 1000 - 5;
    assert_eq!(
        ledger
            .apply("mv-old", expired, &stored, Some(3))
            .await
            .unwrap(),
        ApplyWrite::Written
    );
    let stored = LedgerStore::get(&ledger, &ldn, &item)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ledger
            .apply("mv-old", marker_expiry, &stored, Some(4))
            .await
            .unwrap(),
        ApplyWrite::Written
    );
}

fn bulky_row(store_code: &StoreCode, n: usize) -> LedgerRow {
    let mut row = row_with_delta(store_code, &format!("SKU-{n:03}"), -(n as i64));
    // Rows near the real maximum (200 pending movements) so a partition spans several 1 MB pages.
    row.pending = (0..200)
        .map(|v| PendingMovement {
            version: v,
            event_id: format!("{:0>200}", format!("evt-{n}-{v}")),
            occurred_at_ms: 1_700_000_000_000 + v as i64,
            received_at_ms: 1_700_000_000_000 + v as i64,
            daybook_date: None,
            accepted_as: None,
        })
        .collect();
    row
}

#[tokio::test]
async fn ledger_list_store_follows_pages_and_keeps_stores_apart() {
    let aws = aws().await;
    let (stock_table, idem_table) = (unique("stock"), unique("idem"));
    create_stock_table(&aws.dynamo, &stock_table).await.unwrap();
    create_idempotency_table(&aws.dynamo, &idem_table)
        .await
        .unwrap();
    let ledger = DynamoLedgerStore::new(aws.dynamo.clone(), &stock_table, &idem_table);
    let (ldn, sto) = (store("LDN-01"), store("STO-02"));
    let expiry = now_ms() / 1000 + 3_600;

    let rows: Vec<LedgerRow> = (0..30).map(|n| bulky_row(&ldn, n)).collect();
    let writes = rows.iter().enumerate().map(|(n, row)| {
        let ledger = &ledger;
        async move { ledger.apply(&format!("mv-{n}"), expiry, row, None).await }
    });
    for outcome in futures::future::join_all(writes).await {
        assert_eq!(outcome.unwrap(), ApplyWrite::Written);
    }
    assert_eq!(
        ledger
            .apply("mv-sto", expiry, &row_with_delta(&sto, "SKU-000", 5), None)
            .await
            .unwrap(),
        ApplyWrite::Written
    );

    // The partition really is larger than one page.
    let first_page = aws
        .dynamo
        .query()
        .table_name(&stock_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("ledger#LDN-01".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(
        first_page.last_evaluated_key.is_some(),
        "expected more than one page"
    );

    let listed = ledger.list_store(&ldn).await.unwrap();
    assert_eq!(listed.len(), 30);
    let by_item: BTreeMap<_, _> = listed.iter().map(|r| (r.item.key(), r)).collect();
    for row in &rows {
        let got = by_item[&row.item.key()];
        assert_eq!(
            got,
            &LedgerRow {
                rev: 1,
                ..row.clone()
            }
        );
    }
    let other = ledger.list_store(&sto).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].delta_applied, 5);
    assert!(ledger.list_store(&store("EMPTY")).await.unwrap().is_empty());

    // The scan behind "all exceptions" has to page past these rows too.
    let exception = ExceptionRecord {
        id: "ex-late".into(),
        store: "LDN-01".into(),
        item: None,
        kind: "unreadable_message".into(),
        message: "body is not JSON".into(),
        event_ids: vec![],
        centra_message: None,
        created_at_ms: 1_700_000_000_000,
        ..Default::default()
    };
    ledger.record(&exception).await.unwrap();
    assert_eq!(ledger.list(None).await.unwrap(), vec![exception]);
}

#[tokio::test]
async fn push_log_and_exception_log_round_trip() {
    let aws = aws().await;
    let (stock_table, idem_table) = (unique("stock"), unique("idem"));
    create_stock_table(&aws.dynamo, &stock_table).await.unwrap();
    create_idempotency_table(&aws.dynamo, &idem_table)
        .await
        .unwrap();
    let ledger = DynamoLedgerStore::new(aws.dynamo.clone(), &stock_table, &idem_table);

    let mut record = PushRecord {
        push_id: "push-1".into(),
        store: store("LDN-01"),
        warehouse_id: 7,
        created_at_ms: 1_700_000_000_000,
        expires_at_s: 1_700_086_400,
        mutations: vec![PushMutation {
            index: 0,
            kind: ChangeKind::Decrease,
            lines: vec![PushLine {
                item: ItemRef::Sku("SKU-1".into()),
                kind: ChangeKind::Decrease,
                quantity: 3,
                epoch: 0,
                delta_through: -3,
                version_through: 2,
            }],
            status: MutationStatus::Pending,
            change_id: Some("42".into()),
            skipped: vec![],
        }],
    };
    assert_eq!(PushLog::get(&ledger, "push-1").await.unwrap(), None);
    PushLog::put(&ledger, &record).await.unwrap();
    assert_eq!(
        PushLog::get(&ledger, "push-1").await.unwrap().as_ref(),
        Some(&record)
    );
    record.mutations[0].status = MutationStatus::Applied;
    PushLog::put(&ledger, &record).await.unwrap();
    assert_eq!(PushLog::get(&ledger, "push-1").await.unwrap(), Some(record));

    let exception = |id: &str, store_code: &str, at: i64| ExceptionRecord {
        id: id.into(),
        store: store_code.into(),
        item: Some("sku:SKU-1".into()),
        kind: "centra_rejected_line".into(),
        message: format!("refused {id}"),
        event_ids: vec![format!("evt-{id}")],
        centra_message: Some("Product size not found".into()),
        created_at_ms: at,
        ..Default::default()
    };
    // Recorded out of order; listed oldest first (the sort key is the zero-padded time).
    let recorded = [
        exception("b", "LDN-01", 1_700_000_000_200),
        exception("a", "LDN-01", 1_700_000_000_100),
        exception("c", "STO-02", 1_700_000_000_150),
        exception("d", "LDN-01", 999),
    ];
    for e in &recorded {
        ledger.record(e).await.unwrap();
    }
    let ids = |list: Vec<ExceptionRecord>| list.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ledger.list(Some("LDN-01")).await.unwrap()),
        ["d", "a", "b"]
    );
    assert_eq!(
        ledger.list(Some("STO-02")).await.unwrap(),
        vec![recorded[2].clone()]
    );
    assert!(ledger.list(Some("NONE")).await.unwrap().is_empty());
    assert_eq!(ids(ledger.list(None).await.unwrap()), ["d", "a", "c", "b"]);
}

// ---------------------------------------------------------------- mutation budget

#[tokio::test]
async fn budget_bucket_blocks_and_instances_share_one_count() {
    let aws = aws().await;
    let table = unique("idem");
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    let scope = unique("centra");
    let instance_a = DynamoMutationBudget::new(aws.dynamo.clone(), &table, &scope, 3, 100);
    let instance_b = DynamoMutationBudget::new(aws.dynamo.clone(), &table, &scope, 3, 100);
    let window = 1_800_000_000_000_i64; // a multiple of 10 s
    let t = window + 1_000;

    assert_eq!(
        instance_a.try_acquire(t).await.unwrap(),
        BudgetDecision::Granted
    );
    assert_eq!(
        instance_b.try_acquire(t + 1).await.unwrap(),
        BudgetDecision::Granted
    );
    assert_eq!(
        instance_a.try_acquire(t + 2).await.unwrap(),
        BudgetDecision::Granted
    );
    // The bucket (3 tokens, refilled over 10 s) is empty for both instances.
    let BudgetDecision::WaitUntil(at) = instance_b.try_acquire(t + 3).await.unwrap() else {
        panic!("a fourth token within the same instant must wait");
    };
    assert!(
        at > t + 3_000 && at <= t + 3_600,
        "one token per ~3.5 s, got {}",
        at - t
    );
    assert!(matches!(
        instance_a.try_acquire(at - 100).await.unwrap(),
        BudgetDecision::WaitUntil(_)
    ));
    assert_eq!(
        instance_a.try_acquire(at).await.unwrap(),
        BudgetDecision::Granted
    );
    // Another scope (Centra environment) has its own count.
    let other = DynamoMutationBudget::new(aws.dynamo.clone(), &table, unique("centra"), 3, 100);
    assert_eq!(
        other.try_acquire(t + 4).await.unwrap(),
        BudgetDecision::Granted
    );

    // A 429 blocks every instance; a shorter block does not shorten it.
    let until = window + 25_000;
    instance_a.block_until(until).await.unwrap();
    instance_b.block_until(window + 21_000).await.unwrap();
    assert_eq!(
        instance_b.try_acquire(window + 20_000).await.unwrap(),
        BudgetDecision::WaitUntil(until)
    );
    assert_eq!(
        instance_a.try_acquire(window + 24_999).await.unwrap(),
        BudgetDecision::WaitUntil(until)
    );
    assert_eq!(
        instance_a.try_acquire(until).await.unwrap(),
        BudgetDecision::Granted
    );
    assert_eq!(
        other.try_acquire(window + 20_000).await.unwrap(),
        BudgetDecision::Granted
    );
}

#[tokio::test]
async fn budget_hour_quota_waits_for_the_hour() {
    let aws = aws().await;
    let table = unique("idem");
    create_idempotency_table(&aws.dynamo, &table).await.unwrap();
    let budget = DynamoMutationBudget::new(aws.dynamo.clone(), &table, unique("centra"), 10, 2);
    let hour = 1_800_000_000_000_i64 - 1_800_000_000_000_i64.rem_euclid(3_600_000);

    assert_eq!(
        budget.try_acquire(hour + 5_000).await.unwrap(),
        BudgetDecision::Granted
    );
    assert_eq!(
        budget.try_acquire(hour + 65_000).await.unwrap(),
        BudgetDecision::Granted
    );
    assert_eq!(
        budget.try_acquire(hour + 125_000).await.unwrap(),
        BudgetDecision::WaitUntil(hour + 3_600_000)
    );
    assert_eq!(
        budget.try_acquire(hour + 3_600_000).await.unwrap(),
        BudgetDecision::Granted
    );
}

// ---------------------------------------------------------------- SQS

fn fifo(group: &str, dedup: &str, body: &str) -> FifoMessage {
    FifoMessage {
        group_id: group.into(),
        dedup_id: dedup.into(),
        body: body.into(),
    }
}

/// Receives and deletes until nothing more comes (each empty receive waits 1 s).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    for _ in 0..50 {
        let batch = receive_batch(sqs, url, 10, 30).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        let handles: Vec<String> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
        delete_messages(sqs, url, &handles).await.unwrap();
        all.extend(batch);
    }
    panic!("queue did not drain");
}

#[tokio::test]
async fn fifo_stock_queue_keeps_group_order_and_dedupes() {
    let aws = aws().await;
    let (url, _dlq) = create_fifo_queue_with_dlq(&aws.sqs, &unique("stock"), 5, 30)
        .await
        .unwrap();
    let queue = SqsFifoQueue::new(aws.sqs.clone(), &url);

    let messages: Vec<FifoMessage> = (0..25)
        .map(|i| {
            fifo(
                &format!("SKU-{}", i % 3),
                &format!("evt-{i}"),
                &format!("{}:{i}", i % 3),
            )
        })
        .collect();
    queue.send_all(&messages).await.unwrap();
    // A resend of the same dedup ids (a retried intake) adds nothing.
    queue.send_all(&messages[..12]).await.unwrap();

    let received = drain(&aws.sqs, &url).await;
    assert_eq!(received.len(), 25);
    let mut per_group: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for m in &received {
        let (group, seq) = m.body.split_once(':').unwrap();
        assert_eq!(m.group_id.as_deref(), Some(format!("SKU-{group}").as_str()));
        per_group
            .entry(group.to_string())
            .or_default()
            .push(seq.parse().unwrap());
    }
    assert_eq!(per_group.len(), 3);
    for (group, seqs) in per_group {
        let expected: Vec<u32> = (0..25).filter(|i| (i % 3).to_string() == group).collect();
        assert_eq!(seqs, expected, "group {group} out of order");
    }

    // Same dedup id, different body: delivered once (the first).
    queue
        .send_all(&[fifo("SKU-X", "same-id", "first")])
        .await
        .unwrap();
    queue
        .send_all(&[fifo("SKU-X", "same-id", "second")])
        .await
        .unwrap();
    let once = drain(&aws.sqs, &url).await;
    assert_eq!(
        once.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["first"]
    );
}

#[tokio::test]
async fn fifo_in_flight_message_blocks_only_its_group() {
    let aws = aws().await;
    let (url, _dlq) = create_fifo_queue_with_dlq(&aws.sqs, &unique("stock"), 5, 30)
        .await
        .unwrap();
    let queue = SqsFifoQueue::new(aws.sqs.clone(), &url);
    queue
        .send_all(&[
            fifo("A", "a1", "a1"),
            fifo("B", "b1", "b1"),
            fifo("A", "a2", "a2"),
            fifo("B", "b2", "b2"),
        ])
        .await
        .unwrap();

    let first = receive_batch(&aws.sqs, &url, 1, 30).await.unwrap();
    assert_eq!(first.len(), 1);
    let held = first[0].clone();
    assert_eq!(held.receive_count, 1);
    let (held_group, other_group) = match held.body.as_str() {
        "a1" => ("A", "B"),
        "b1" => ("B", "A"),
        other => panic!("first message of a group expected, got {other}"),
    };

    // The held message's group is blocked; the other flows.
    let flowing = drain(&aws.sqs, &url).await;
    let bodies: Vec<&str> = flowing.iter().map(|m| m.body.as_str()).collect();
    let lower = other_group.to_lowercase();
    assert_eq!(bodies, [format!("{lower}1"), format!("{lower}2")]);
    assert!(flowing
        .iter()
        .all(|m| m.group_id.as_deref() == Some(other_group)));

    // Made visible again (a failed record): it comes back first, then its successor.
    change_visibility(&aws.sqs, &url, &held.receipt_handle, 0)
        .await
        .unwrap();
    let again = drain(&aws.sqs, &url).await;
    let lower = held_group.to_lowercase();
    assert_eq!(
        again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        [format!("{lower}1"), format!("{lower}2")]
    );
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].message_id, held.message_id);
}

#[tokio::test]
async fn fifo_message_moves_to_the_dlq_after_max_receives() {
    let aws = aws().await;
    let (url, dlq_url) = create_fifo_queue_with_dlq(&aws.sqs, &unique("stock"), 2, 30)
        .await
        .unwrap();
    assert!(url.ends_with(".fifo") && dlq_url.ends_with("-dlq.fifo"));
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    assert_eq!(attributes[&Q::FifoQueue], "true");
    assert_eq!(attributes[&Q::ContentBasedDeduplication], "false");
    assert_eq!(attributes[&Q::VisibilityTimeout], "30");
    assert!(attributes[&Q::RedrivePolicy].contains("-dlq.fifo"));

    SqsFifoQueue::new(aws.sqs.clone(), &url)
        .send_all(&[fifo("P", "poison", "poison")])
        .await
        .unwrap();
    let mut receives = 0;
    for _ in 0..5 {
        let batch = receive_batch(&aws.sqs, &url, 10, 30).await.unwrap();
        let Some(message) = batch.first() else { break };
        receives += 1;
        assert_eq!(message.receive_count, receives);
        change_visibility(&aws.sqs, &url, &message.receipt_handle, 0)
            .await
            .unwrap();
    }
    assert_eq!(
        receives, 2,
        "received maxReceiveCount times, then dead-lettered"
    );
    let dead = drain(&aws.sqs, &dlq_url).await;
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["poison"]
    );
    assert_eq!(dead[0].group_id.as_deref(), Some("P"));
}

fn dirty(store_code: &str, sku: &str) -> DirtyKey {
    DirtyKey {
        store: store(store_code),
        item: ItemRef::Sku(sku.into()),
    }
}

#[tokio::test]
async fn push_queue_sends_each_key_once_per_call_and_honours_delay() {
    let aws = aws().await;
    let (url, dlq_url) = create_standard_queue_with_dlq(&aws.sqs, &unique("push"), 5, 30)
        .await
        .unwrap();
    assert!(dlq_url.ends_with("-dlq"));
    let queue = SqsPushQueue::new(aws.sqs.clone(), &url);

    // 14 distinct keys (two batches) with repeats.
    let distinct: Vec<DirtyKey> = (0..14)
        .map(|n| {
            dirty(
                if n % 2 == 0 { "LDN-01" } else { "STO-02" },
                &format!("SKU-{n}"),
            )
        })
        .collect();
    let mut keys = distinct.clone();
    keys.extend(distinct.iter().step_by(3).cloned());
    keys.push(distinct[0].clone());
    queue.mark_dirty(&keys, 0).await.unwrap();

    let received = drain(&aws.sqs, &url).await;
    let mut counts: BTreeMap<DirtyKey, usize> = BTreeMap::new();
    for m in &received {
        *counts
            .entry(serde_json::from_str(&m.body).unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        distinct.iter().cloned().collect()
    );
    assert!(
        counts.values().all(|&c| c == 1),
        "each key once: {counts:?}"
    );

    queue
        .mark_dirty(&[dirty("LDN-01", "SKU-LATE")], 3)
        .await
        .unwrap();
    assert!(
        receive_batch(&aws.sqs, &url, 10, 30)
            .await
            .unwrap()
            .is_empty(),
        "delayed, not visible yet"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let late = drain(&aws.sqs, &url).await;
    assert_eq!(late.len(), 1);
    assert_eq!(
        serde_json::from_str::<DirtyKey>(&late[0].body).unwrap(),
        dirty("LDN-01", "SKU-LATE")
    );
    queue.mark_dirty(&[], 0).await.unwrap();
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn secrets_come_from_secrets_manager_and_ssm() {
    let aws = aws().await;
    let secret_name = unique("centra-token");
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.config);
    let ssm = aws_sdk_ssm::Client::new(&aws.config);
    let created = secrets
        .create_secret()
        .name(&secret_name)
        .secret_string("s3cr3t-value")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap();
    assert_eq!(
        secrets_manager_value(&secrets, arn).await.unwrap(),
        "s3cr3t-value"
    );
    let missing = secrets_manager_value(
        &secrets,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:nope",
    )
    .await
    .unwrap_err();
    assert_eq!(missing.backend, "secretsmanager");
    assert!(
        missing.message.contains("ResourceNotFoundException"),
        "{missing}"
    );

    let parameter = format!("/{}/webhook-secret", unique("cs"));
    ssm.put_parameter()
        .name(&parameter)
        .value("whsec_parameter")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ssm_parameter(&ssm, &parameter).await.unwrap(),
        "whsec_parameter"
    );
    assert!(ssm_parameter(&ssm, "/does/not/exist")
        .await
        .unwrap_err()
        .message
        .contains("ParameterNotFound"));
}
