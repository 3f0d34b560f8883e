//! The DynamoDB finance daybook against a moto server (`scripts/test.sh -p shared --test integration daybook_moto::` starts
//! moto and sets `AWS_ENDPOINT_URL`). Every test uses its own table.

use shared::adapters::aws::provision::create_stock_table;
use shared::adapters::aws::{sdk_config, DynamoDaybook};
use shared::adapters::memory::MemoryDaybook;
use shared::core::ids::StoreCode;
use shared::core::money::Money;
use shared::finance::{close_store_day, Accepted, Daybook, DifferenceKind, FinanceKind};

async fn book() -> (DynamoDaybook, aws_sdk_dynamodb::Client, String) {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = format!("stock-{}", uuid::Uuid::new_v4().simple());
    create_stock_table(&dynamo, &table).await.unwrap();
    (DynamoDaybook::new(dynamo.clone(), &table), dynamo, table)
}

fn store(code: &str) -> StoreCode {
    StoreCode::parse(code).unwrap()
}

fn day(d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn accepted(kind: FinanceKind, units: i64, gross: &str, currency: &str, at: i64) -> Accepted {
    Accepted {
        kind,
        units,
        gross: Money::parse(gross).unwrap(),
        currency: currency.into(),
        accepted_at_ms: at,
    }
}

/// Sales, a return and a kiosk order in two currencies; one sale never posted.
async fn record_day(book: &dyn Daybook, ldn: &StoreCode) {
    let d = day(28);
    let records = [
        (
            "evt1#sku:TEE-M",
            accepted(FinanceKind::Sale, 2, "98.00", "GBP", 1_000),
        ),
        (
            "evt2#sku:CAP-1",
            accepted(FinanceKind::Sale, 1, "12.50", "GBP", 2_000),
        ),
        (
            "evt3#sku:TEE-M",
            accepted(FinanceKind::Return, 1, "49.00", "GBP", 3_000),
        ),
        (
            "evt4#sku:TEE-L",
            accepted(FinanceKind::Sale, 1, "60.00", "EUR", 4_000),
        ),
        (
            "order:gid://cloudshelf/Order/7",
            accepted(FinanceKind::KioskOrder, 3, "155.95", "GBP", 5_000),
        ),
    ];
    for (id, a) in &records {
        book.record_accepted(ldn, d, id, std::slice::from_ref(a))
            .await
            .unwrap();
    }
    book.record_posted(
        ldn,
        d,
        &[
            "evt1#sku:TEE-M".into(),
            "evt2#sku:CAP-1".into(),
            "evt3#sku:TEE-M".into(),
        ],
        10_000,
        "push-1",
    )
    .await
    .unwrap();
    book.record_posted(
        ldn,
        d,
        &["order:gid://cloudshelf/Order/7".into()],
        11_000,
        "centra order 1001",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn dynamo_and_memory_daybooks_close_the_same_day_identically() {
    let (dynamo, _, _) = book().await;
    let memory = MemoryDaybook::new();
    let ldn = store("LDN-01");
    record_day(&dynamo, &ldn).await;
    record_day(&memory, &ldn).await;
    let now = 4_000 + 90 * 60_000;
    let from_dynamo = close_store_day(
        &ldn,
        day(28),
        &dynamo.day(&ldn, day(28)).await.unwrap(),
        now,
    );
    let from_memory = close_store_day(
        &ldn,
        day(28),
        &memory.day(&ldn, day(28)).await.unwrap(),
        now,
    );
    assert_eq!(from_dynamo, from_memory);

    assert!(!from_dynamo.validated);
    assert_eq!(
        from_dynamo.differences.len(),
        1,
        "{:?}",
        from_dynamo.differences
    );
    let unposted = &from_dynamo.differences[0];
    assert_eq!(unposted.kind, DifferenceKind::AcceptedNotPosted);
    assert_eq!(unposted.record_id, "evt4#sku:TEE-L");
    assert_eq!(unposted.minutes, Some(90));
    let totals = |kind, currency: &str| {
        from_dynamo
            .totals
            .iter()
            .find(|t| t.kind == kind && t.currency == currency)
            .unwrap_or_else(|| panic!("no {kind:?} {currency} in {:?}", from_dynamo.totals))
            .clone()
    };
    let gbp_sales = totals(FinanceKind::Sale, "GBP");
    assert_eq!(
        (
            gbp_sales.accepted.count,
            gbp_sales.accepted.units,
            gbp_sales.accepted.gross.to_string()
        ),
        (2, 3, "110.50".to_string())
    );
    assert_eq!(gbp_sales.accepted, gbp_sales.posted);
    let eur_sales = totals(FinanceKind::Sale, "EUR");
    assert_eq!((eur_sales.accepted.count, eur_sales.posted.count), (1, 0));
    let kiosk = totals(FinanceKind::KioskOrder, "GBP");
    assert_eq!(kiosk.posted.gross.to_string(), "155.95");
    assert_eq!(totals(FinanceKind::Return, "GBP").posted.units, 1);
}

#[tokio::test]
async fn accepting_again_keeps_the_posting_and_posting_first_is_kept_for_the_close() {
    let (book, _, _) = book().await;
    let ldn = store("LDN-01");
    let sale = [accepted(FinanceKind::Sale, 2, "98.00", "GBP", 1_000)];
    // The pusher can record before the applier's daybook write lands (a redelivered message).
    book.record_posted(&ldn, day(28), &["e1#sku:A".into()], 5_000, "push-1")
        .await
        .unwrap();
    let close = close_store_day(&ldn, day(28), &book.day(&ldn, day(28)).await.unwrap(), 0);
    assert_eq!(close.differences[0].kind, DifferenceKind::PostedNotAccepted);
    assert_eq!(close.differences[0].posted_ref.as_deref(), Some("push-1"));

    for _ in 0..3 {
        book.record_accepted(&ldn, day(28), "e1#sku:A", &sale)
            .await
            .unwrap();
    }
    book.record_posted(&ldn, day(28), &["e1#sku:A".into()], 9_000, "push-2")
        .await
        .unwrap();
    let records = book.day(&ldn, day(28)).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].accepted, sale);
    assert_eq!(
        (records[0].posted_at_ms, records[0].posted_ref.as_deref()),
        (Some(5_000), Some("push-1"))
    );
    let close = close_store_day(&ldn, day(28), &records, 0);
    assert!(close.validated, "{:?}", close.differences);
    assert_eq!(
        close.totals[0].accepted.count, 1,
        "re-accepting counts once"
    );
}

#[tokio::test]
async fn a_pushed_row_of_two_hundred_sales_is_posted_by_one_call_and_days_stay_apart() {
    let (book, _, _) = book().await;
    let ldn = store("LDN-01");
    let man = store("MAN-01");
    let sale = [accepted(FinanceKind::Sale, 1, "10.00", "GBP", 1_000)];
    let ids: Vec<String> = (0..200).map(|i| format!("evt{i:04}#sku:TEE-M")).collect();
    for id in &ids {
        book.record_accepted(&ldn, day(28), id, &sale)
            .await
            .unwrap();
    }
    book.record_accepted(&ldn, day(29), "late#sku:TEE-M", &sale)
        .await
        .unwrap();
    book.record_accepted(&man, day(28), "man#sku:TEE-M", &sale)
        .await
        .unwrap();

    book.record_posted(&ldn, day(28), &ids, 7_000, "push-9")
        .await
        .unwrap();

    let records = book.day(&ldn, day(28)).await.unwrap();
    assert_eq!(records.len(), 200);
    assert!(records
        .iter()
        .all(|r| r.posted_ref.as_deref() == Some("push-9")));
    let close = close_store_day(&ldn, day(28), &records, 0);
    assert!(close.validated);
    assert_eq!(close.totals[0].posted.gross.to_string(), "2000.00");
    assert_eq!(book.day(&ldn, day(29)).await.unwrap().len(), 1);
    assert_eq!(book.day(&man, day(28)).await.unwrap().len(), 1);
}
