//! The stock path against Centra's answers as Centra writes them: one size under two names, warnings that
//! skip lines, `userErrors` with a null or string path, `errors` beside `data`, lost answers on a busy audit
//! trail, Retry-After, and unknown items. Each of these once ended with Centra's stock wrong.

use crate::common;

use common::*;
use shared::core::ids::{ItemRef, StoreCode};
use shared::stock::ports::{ExceptionLog, LedgerStore};
use shared::stock::push::{PushVerdict, UnblockOutcome};
use simulators::centra::{
    CentraBehaviour, CentraSimConfig, Fault, FaultTarget, PathStyle, RefusalKind, RetryAfterStyle,
    SizeRefusal,
};
use std::time::Duration;

const MIN: i64 = 60_000;

/// A harness whose sizes carry EANs: `A-1`… with `7350000000<n>` (13 digits).
async fn harness_with_eans(
    skus: &[&str],
    stock: i64,
    tweak: impl FnOnce(&mut shared::wiring::local::PipelineConfig),
) -> Harness {
    let h = Harness::with(&[], 0, CentraSimConfig::default(), tweak).await;
    for (i, sku) in skus.iter().enumerate() {
        h.sim.add_size(sku, Some(&ean(i)), true);
        for store in h.mappings.stores() {
            h.sim.set_physical(store.centra_warehouse_id, sku, stock);
        }
    }
    h
}

fn ean(i: usize) -> String {
    format!("735{:010}", 500 + i)
}

fn event(kind: &str, store: &str, at_ms: i64, lines: &[serde_json::Value]) -> String {
    let mut e = serde_json::json!({ "type": kind, "occurred_at": iso(at_ms), "store": store, "lines": lines });
    if kind == "stock.adjustment" {
        e["reason"] = serde_json::json!("found");
    }
    e.to_string()
}

fn by_sku(sku: &str, quantity: i64) -> serde_json::Value {
    serde_json::json!({ "sku": sku, "quantity": quantity, "unit_price": "10.00", "currency": "GBP" })
}

fn by_ean(ean: &str, quantity: i64) -> serde_json::Value {
    serde_json::json!({ "ean": ean, "quantity": quantity, "unit_price": "10.00", "currency": "GBP" })
}

async fn row(h: &Harness, store: &str, item: ItemRef) -> Option<shared::stock::ledger::LedgerRow> {
    LedgerStore::get(
        h.pipeline.ledger.as_ref(),
        &StoreCode::parse(store).unwrap(),
        &item,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn one_size_named_by_sku_and_by_ean_is_one_row_and_one_line() {
    let h = harness_with_eans(&["A-1", "A-2"], 10, |_| {}).await;
    let t = h.now_ms() - 10 * MIN;
    // In one push window: a sale by SKU and one by EAN of the same size.
    assert_eq!(
        h.send("s1", &event("stock.sale", "LDN-01", t, &[by_sku("A-1", 1)]))
            .await
            .status,
        202
    );
    assert_eq!(
        h.send(
            "s2",
            &event("stock.sale", "LDN-01", t + 1, &[by_ean(&ean(0), 2)])
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "A-1"), 7, "both sales, once each");
    assert!(
        row(&h, "LDN-01", ItemRef::Ean(ean(0))).await.is_none(),
        "no second row under the EAN"
    );
    for change in h.sim.stock_changes() {
        assert_eq!(change.lines.len(), 1, "one line per size: {change:?}");
    }
    // A count by SKU, then a sale by EAN from before it (stale) and one after it (on top).
    let c = serde_json::json!({ "sku": "A-2", "quantity": 20 });
    assert_eq!(
        h.send("c", &event("stock.count", "LDN-01", t + 10, &[c]))
            .await
            .status,
        202
    );
    assert_eq!(
        h.send(
            "old",
            &event("stock.sale", "LDN-01", t + 5, &[by_ean(&ean(1), 4)])
        )
        .await
        .status,
        202
    );
    assert_eq!(
        h.send(
            "new",
            &event("stock.sale", "LDN-01", t + 20, &[by_ean(&ean(1), 3)])
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "A-2"), 17);
    assert_eq!(
        row(&h, "LDN-01", ItemRef::Sku("A-2".into()))
            .await
            .unwrap()
            .stale_ignored,
        1
    );
}

async fn three_line_sale(h: &Harness) {
    let lines = [by_sku("B-1", 1), by_sku("B-2", 1), by_sku("B-3", 1)];
    assert_eq!(
        h.send(
            "sale",
            &event("stock.sale", "MAN-01", h.now_ms() - MIN, &lines)
        )
        .await
        .status,
        202
    );
    h.settle().await;
}

async fn exception_kinds(h: &Harness) -> Vec<(String, Option<String>)> {
    h.pipeline
        .ledger
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.item))
        .collect()
}

#[tokio::test]
async fn a_line_centra_skips_with_a_warning_is_parked_not_counted_as_pushed() {
    let h = harness_with_eans(&["B-1", "B-2", "B-3"], 10, |_| {}).await;
    h.sim.refuse_size(
        "B-2",
        Some(SizeRefusal {
            kind: RefusalKind::Warning,
            message: "Product size B-2 skipped: not stocked in this warehouse".into(),
        }),
    );
    three_line_sale(&h).await;
    assert_eq!(
        ["B-1", "B-2", "B-3"].map(|s| h.centra("MAN-01", s)),
        [9, 10, 9]
    );
    assert_eq!(
        exception_kinds(&h).await,
        [(
            "centra_skipped_line".to_string(),
            Some("sku:B-2".to_string())
        )]
    );
    let skipped = row(&h, "MAN-01", ItemRef::Sku("B-2".into())).await.unwrap();
    assert!(
        skipped.has_unpushed() && skipped.blocked.is_some(),
        "the movement is kept, parked"
    );
    assert_eq!(
        h.calls_to("changeStock"),
        1,
        "the others were applied by that one mutation"
    );
}

#[tokio::test]
async fn a_refusal_with_a_null_path_is_a_refusal_and_is_narrowed_down() {
    let h = harness_with_eans(&["B-1", "B-2", "B-3"], 10, |_| {}).await;
    h.sim.set_behaviour(CentraBehaviour {
        path_style: PathStyle::Null,
        ..Default::default()
    });
    h.sim.refuse_size(
        "B-2",
        Some(SizeRefusal {
            kind: RefusalKind::Error,
            message: "Product size is inactive".into(),
        }),
    );
    three_line_sale(&h).await;
    assert_eq!(
        ["B-1", "B-2", "B-3"].map(|s| h.centra("MAN-01", s)),
        [9, 10, 9]
    );
    assert_eq!(
        exception_kinds(&h).await,
        [(
            "centra_rejected_line".to_string(),
            Some("sku:B-2".to_string())
        )]
    );
    // Halving a refusal nobody named costs a few mutations, not Centra's budget.
    assert!(
        h.calls_to("changeStock") <= 5,
        "{}",
        h.calls_to("changeStock")
    );
}

#[tokio::test]
async fn a_path_index_sent_as_a_string_still_names_the_line() {
    let skus: Vec<String> = (0..20).map(|i| format!("S-{i:02}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let h = harness_with_eans(&refs, 10, |_| {}).await;
    h.sim.set_behaviour(CentraBehaviour {
        path_style: PathStyle::Strings,
        ..Default::default()
    });
    h.sim.refuse_size(
        "S-18",
        Some(SizeRefusal {
            kind: RefusalKind::Error,
            message: "Product size is inactive".into(),
        }),
    );
    let lines: Vec<serde_json::Value> = skus.iter().map(|s| by_sku(s, 1)).collect();
    assert_eq!(
        h.send(
            "sale",
            &event("stock.sale", "LDN-01", h.now_ms() - MIN, &lines)
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(
        h.calls_to("changeStock"),
        2,
        "the refusal, then the others at once: no bisection"
    );
    assert_eq!(h.centra("LDN-01", "S-18"), 10);
    assert_eq!(h.centra("LDN-01", "S-17"), 9);
}

#[tokio::test]
async fn errors_beside_an_applied_payload_are_not_resent() {
    let h = harness_with_eans(&["E-1"], 10, |_| {}).await;
    h.sim.inject(Fault::ErrorsBesideData {
        message: "Field \"deliveredQuantity\" is deprecated".into(),
    });
    assert_eq!(
        h.send(
            "s",
            &event(
                "stock.sale",
                "LDN-01",
                h.now_ms() - MIN,
                &[by_sku("E-1", 3)]
            )
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "E-1"), 7);
    assert_eq!(h.calls_to("changeStock"), 1);
}

#[tokio::test]
async fn lost_answers_are_found_by_comment_among_600_other_changes() {
    let h = harness_with_eans(&["L-1"], 10, |c| {
        c.centra_timeout = Duration::from_millis(400)
    })
    .await;
    let wh = warehouse(&h.mappings, "LDN-01");
    h.sim.add_unrelated_stock_changes(wh, 600);
    // A gateway timeout after Centra applied it: found at once.
    h.sim.inject(Fault::ApplyThenStatus(504));
    assert_eq!(
        h.send(
            "a",
            &event(
                "stock.sale",
                "LDN-01",
                h.now_ms() - 2 * MIN,
                &[by_sku("L-1", 1)]
            )
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "L-1"), 9);
    // A call that outlives the client's timeout and lands later: not in the trail yet, so not resent; found
    // once the lease has ended.
    h.sim.inject(Fault::Hang(Duration::from_millis(1_200)));
    assert_eq!(
        h.send(
            "b",
            &event(
                "stock.sale",
                "LDN-01",
                h.now_ms() - MIN,
                &[by_sku("L-1", 2)]
            )
        )
        .await
        .status,
        202
    );
    h.apply_all().await;
    h.pipeline.push_round().await;
    h.sim.wait_idle().await;
    assert_eq!(h.centra("LDN-01", "L-1"), 7, "the hung call landed");
    h.clock
        .advance_millis(shared::stock::push::PushSettings::default().lease_ms + 2_000);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "L-1"), 7, "and was not sent again");
    assert_eq!(h.calls_to("changeStock"), 2);
    let row = row(&h, "LDN-01", ItemRef::Sku("L-1".into())).await.unwrap();
    assert!(!row.has_unpushed() && row.lease.is_none());
}

#[tokio::test]
async fn an_outcome_the_trail_cannot_settle_is_parked_never_resent() {
    let h = harness_with_eans(&["U-1"], 10, |c| {
        c.centra_timeout = Duration::from_millis(300)
    })
    .await;
    assert_eq!(
        h.send(
            "s",
            &event(
                "stock.sale",
                "LDN-01",
                h.now_ms() - MIN,
                &[by_sku("U-1", 2)]
            )
        )
        .await
        .status,
        202
    );
    h.apply_all().await;
    h.sim.inject(Fault::Hang(Duration::from_millis(800)));
    // The audit trail answers, but in a way that settles nothing (errors beside the data), every time.
    for _ in 0..40 {
        h.sim.inject_on(
            FaultTarget::Queries,
            Fault::ErrorsBesideData {
                message: "Internal error in stockChangeConnection".into(),
            },
        );
    }
    h.pipeline.push_round().await;
    h.sim.wait_idle().await;
    let lease_ms = shared::stock::push::PushSettings::default().lease_ms;
    // Each time the extended lease ends, the trail is asked again (the row stays leased meanwhile).
    for _ in 0..shared::stock::push::PushSettings::default().max_unresolved_checks + 1 {
        h.clock.advance_millis(lease_ms + 1_000);
        h.pipeline.push_round().await;
    }
    h.settle().await;
    assert_eq!(h.calls_to("changeStock"), 1, "never resent on a guess");
    assert_eq!(h.centra("LDN-01", "U-1"), 8);
    assert_eq!(
        exception_kinds(&h).await,
        [("unresolved_push".to_string(), Some("sku:U-1".to_string()))]
    );
    let (store, item) = (
        StoreCode::parse("LDN-01").unwrap(),
        ItemRef::Sku("U-1".into()),
    );
    let parked = row(&h, "LDN-01", item.clone()).await.unwrap();
    assert!(parked.blocked.is_some() && parked.unresolved.is_some() && parked.lease.is_none());
    // The operator must say what Centra's stock changes show; here the change is there.
    let unblock = |verdict| {
        let (h, store, item) = (&h, store.clone(), item.clone());
        async move {
            shared::stock::push::unblock(
                h.pipeline.ledger.as_ref(),
                h.pipeline.push_queue.as_ref(),
                &store,
                &item,
                verdict,
                h.now_ms(),
            )
            .await
            .unwrap()
        }
    };
    assert!(matches!(
        unblock(None).await,
        UnblockOutcome::NeedsVerdict { .. }
    ));
    assert_eq!(
        unblock(Some(PushVerdict::Applied)).await,
        UnblockOutcome::Unblocked
    );
    h.sim.clear_faults();
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "U-1"), 8);
    assert_eq!(h.calls_to("changeStock"), 1);
    assert!(!row(&h, "LDN-01", ItemRef::Sku("U-1".into()))
        .await
        .unwrap()
        .has_unpushed());
}

#[tokio::test]
async fn a_429_is_not_followed_by_a_resend_before_its_retry_after() {
    let h = harness_with_eans(&["R-1"], 10, |_| {}).await;
    h.sim.set_retry_after_style(RetryAfterStyle::Seconds);
    // A slow answer: a Retry-After counted from when the request left would end too early.
    h.sim.set_latency(Duration::from_millis(700));
    h.sim.inject(Fault::RateLimited {
        retry_after: Duration::from_millis(1_000),
    });
    assert_eq!(
        h.send(
            "s",
            &event(
                "stock.sale",
                "LDN-01",
                h.now_ms() - MIN,
                &[by_sku("R-1", 1)]
            )
        )
        .await
        .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "R-1"), 9);
    let log = h.sim.requests();
    let limited = log
        .iter()
        .find(|r| r.retry_at_ms.is_some())
        .expect("a 429 was answered");
    let resend = log
        .iter()
        .find(|r| r.applied && r.descriptions == limited.descriptions)
        .expect("the mutation went out again");
    assert!(
        resend.received_at_ms >= limited.retry_at_ms.unwrap(),
        "resent {} ms before its Retry-After",
        limited.retry_at_ms.unwrap() - resend.received_at_ms
    );
}

#[tokio::test]
async fn unknown_items_cost_centra_nothing_while_known_items_flow() {
    let h = harness_with_eans(&["K-1", "K-2"], 100, |_| {}).await;
    let t = h.now_ms() - MIN;
    let mut refused = 0;
    let mut retry = 0;
    for i in 0..200 {
        let line = if i % 2 == 0 {
            by_sku(&format!("k-{i}"), 1)
        } else {
            by_ean(&format!("0{}", ean(i)), 1)
        };
        match h
            .send(&format!("u{i}"), &event("stock.sale", "LDN-01", t, &[line]))
            .await
            .status
        {
            400 => refused += 1,
            503 => retry += 1,
            other => panic!("unknown item answered {other}"),
        }
        if i % 20 == 0 {
            let known = event(
                "stock.sale",
                "LDN-01",
                t + i as i64,
                &[by_sku("K-1", 1), by_ean(&ean(1), 1)],
            );
            assert_eq!(h.send(&format!("k{i}"), &known).await.status, 202);
        }
    }
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "K-1"), 90);
    assert_eq!(h.centra("LDN-01", "K-2"), 90);
    assert_eq!(refused + retry, 200);
    assert!(
        refused >= 1 && retry >= 1,
        "{refused} refused, {retry} told to retry"
    );
    // No mutation for an unknown item, and few lookups: the catalogue read plus the paced lookups.
    let lookups = h.calls_to("productSizes");
    assert!(lookups <= 10, "{lookups} lookups");
    assert!(
        h.calls_to("changeStock") <= 10,
        "{}",
        h.calls_to("changeStock")
    );
}
