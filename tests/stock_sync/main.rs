//! Stock sync, black box: signed store events into the real `shelfsync serve`, Centra's stock read from the
//! simulator process at the end — for every warehouse × size, not only the ones touched — and Centra's rules
//! (Retry-After, each pushed mutation applied once) checked from the simulator's request log.

use blackbox::{at, Answer, Size, World, WorldConfig};
use serde_json::{json, Value};
use simulators::control::{ConfigPatch, FaultJson, FaultTarget, RateTier, RefusalKind};
use std::collections::BTreeMap;

mod contract_table;
mod operator;
mod trace;

fn line(size: &Size, by: usize, quantity: i64, priced: bool) -> Value {
    let mut l = match by % 3 {
        0 => json!({ "sku": size.sku }),
        1 => json!({ "ean": size.ean }),
        _ => json!({ "sku": size.sku, "ean": size.ean }),
    };
    l["quantity"] = json!(quantity);
    if priced {
        l["unit_price"] = json!("10.00");
        l["currency"] = json!("GBP");
    }
    l
}

fn event(kind: &str, store: &str, occurred_at: &str, lines: Vec<Value>) -> Value {
    let mut e = json!({ "type": kind, "occurred_at": occurred_at, "store": store, "lines": lines });
    if kind == "stock.adjustment" {
        e["reason"] = json!("found");
    }
    e
}

/// Small deterministic generator: the same workload every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_storm_naming_sizes_by_sku_and_by_ean_changes_centra_once() {
    let world = World::start(WorldConfig::new(6)).await;
    let mut expected = world.initial_stock(50);
    let mut rng = Lcg(7);
    let mut events = Vec::new();
    for i in 0..60 {
        let store = world.stores[rng.next(3) as usize].clone();
        let size = world.sizes[rng.next(6) as usize].clone();
        let other = world.sizes[rng.next(6) as usize].clone();
        let (kind, sign) = if rng.next(4) == 0 {
            ("stock.return", 1)
        } else {
            ("stock.sale", -1)
        };
        let q1 = rng.next(3) as i64 + 1;
        let q2 = rng.next(2) as i64 + 1;
        // Two lines, possibly the same size under two names: one movement of one size either way.
        let lines = vec![line(&size, i, q1, true), line(&other, i + 1, q2, true)];
        *expected
            .get_mut(&(store.warehouse, size.sku.clone()))
            .unwrap() += sign * q1;
        *expected
            .get_mut(&(store.warehouse, other.sku.clone()))
            .unwrap() += sign * q2;
        events.push((
            format!("storm-{i}"),
            event(kind, &store.code, &at(5, i as i64), lines),
        ));
    }
    // Every event three times at once, as retrying tills do.
    let world = std::sync::Arc::new(world);
    let mut tasks = Vec::new();
    for copy in 0..3 {
        let world = world.clone();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for (id, body) in events
                .iter()
                .skip(copy * 7 % 60)
                .chain(events.iter().take(copy * 7 % 60))
            {
                answers.push((id.clone(), world.deliver(id, body).await.status));
            }
            answers
        }));
    }
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        for (id, status) in task.await.unwrap() {
            assert!(status == 202 || status == 200, "{id}: {status}");
            if status == 202 {
                *accepted.entry(id).or_default() += 1;
            }
        }
    }
    assert_eq!(accepted.len(), 60, "every event accepted");
    assert!(
        accepted.values().all(|n| *n == 1),
        "each accepted exactly once: {accepted:?}"
    );
    world.settle().await;
    world.assert_centra_stock(&expected).await;
    world.assert_centra_rules_kept().await;
    // No Centra change names one size twice (Centra would skip the second line).
    for change in world.centra.stock_changes().await.unwrap() {
        let mut skus: Vec<&str> = change.lines.iter().map(|l| l.sku.as_str()).collect();
        let n = skus.len();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(
            skus.len(),
            n,
            "stock change {} names a size twice",
            change.id
        );
    }
    assert!(world.exceptions().await.is_empty());
}

#[tokio::test]
async fn a_stale_count_never_overwrites_a_newer_state_whatever_name_it_uses() {
    let world = World::start(WorldConfig::new(2)).await;
    let mut expected = world.initial_stock(50);
    let (a, b) = (world.sizes[0].clone(), world.sizes[1].clone());
    let wh = world.warehouse("LDN-01");
    let send = |id: &'static str, body: Value| {
        let world = &world;
        async move {
            let answer: Answer = world.deliver(id, &body).await;
            assert_eq!(answer.status, 202, "{id}: {}", answer.body);
        }
    };
    // Count by SKU 10 min ago, a sale by EAN after it, then a count by EAN from before it and a sale by SKU
    // older than the count: both late ones are stale.
    send(
        "count-new",
        event(
            "stock.count",
            "LDN-01",
            &at(10, 0),
            vec![line(&a, 0, 20, false)],
        ),
    )
    .await;
    send(
        "sale-after",
        event(
            "stock.sale",
            "LDN-01",
            &at(8, 0),
            vec![line(&a, 1, 3, true)],
        ),
    )
    .await;
    send(
        "count-old",
        event(
            "stock.count",
            "LDN-01",
            &at(30, 0),
            vec![line(&a, 1, 99, false)],
        ),
    )
    .await;
    send(
        "sale-old",
        event(
            "stock.sale",
            "LDN-01",
            &at(20, 0),
            vec![line(&a, 0, 5, true)],
        ),
    )
    .await;
    world.settle().await;
    expected.insert((wh, a.sku.clone()), 17);
    // The same the other way round, arriving in the wrong order: the sale was before the count.
    send(
        "b-sale",
        event(
            "stock.sale",
            "LDN-01",
            &at(6, 0),
            vec![line(&b, 1, 4, true)],
        ),
    )
    .await;
    send(
        "b-count",
        event(
            "stock.count",
            "LDN-01",
            &at(7, 0),
            vec![line(&b, 2, 30, false)],
        ),
    )
    .await;
    world.settle().await;
    expected.insert((wh, b.sku.clone()), 26);
    world.assert_centra_stock(&expected).await;
    world.assert_centra_rules_kept().await;
}

#[tokio::test]
async fn every_refusal_of_the_contracts_table_is_answered_as_written_and_changes_nothing() {
    let mut config = WorldConfig::new(0);
    config.sizes = contract_table::example_sizes();
    let world = World::start(config).await;
    let mut expected = world.initial_stock(50);
    let rows = contract_table::rows();
    assert!(
        rows.len() >= 20,
        "the table lists the refusals: {}",
        rows.len()
    );
    for row in &rows {
        let answer = contract_table::send(&world, row).await;
        assert_eq!(
            (answer.status, answer.code(), answer.field()),
            (row.status, row.code.as_deref(), row.field.as_deref()),
            "row {} ({}): {}",
            row.number,
            row.request,
            answer.body
        );
        if answer.status >= 400 {
            assert!(
                answer.code().is_some() && answer.body.pointer("/error/message").is_some(),
                "row {}: {}",
                row.number,
                answer.body
            );
        }
    }
    world.settle().await;
    // Only the example events that `reuse` rows had accepted first reached Centra: 2 + 1 units each.
    let reused = rows
        .iter()
        .filter(|r| r.request.starts_with("reuse"))
        .count() as i64;
    let wh = world.warehouse("LDN-01");
    *expected.get_mut(&(wh, "Prod123Var123789S".into())).unwrap() -= 2 * reused;
    *expected.get_mut(&(wh, "Prod123Var123790M".into())).unwrap() -= reused;
    world.assert_centra_stock(&expected).await;
    world.assert_centra_rules_kept().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_that_meets_an_empty_rate_limit_bucket_waits_for_retry_after() {
    let mut config = WorldConfig::new(20);
    config.sim = ConfigPatch {
        tier: Some(RateTier::Growth),
        retry_after_style: Some(simulators::control::RetryAfterStyle::Seconds),
        ..Default::default()
    };
    let world = World::start(config).await;
    let mut expected = world.initial_stock(50);
    // Another integration on the same Centra has just spent the mutation bucket.
    let other_integration = reqwest::Client::new();
    let mut spent = 0;
    for i in 0..40 {
        let r = other_integration
            .post(world.sim.graphql_url())
            .bearer_auth(blackbox::TOKEN)
            .json(&json!({
                "query": "mutation($input: StockChangeInput!) { changeStock(input: $input) { stockChange { id } userErrors { message } } }",
                "variables": { "input": {
                    "intoWarehouse": { "id": 12 }, "description": format!("erp receipt {i}"),
                    "productSizes": [{ "productSize": { "SKU": world.sizes[0].sku }, "deliveredQuantity": 1 }] } }
            }))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            break;
        }
        spent += 1;
    }
    assert!(spent > 0 && spent < 40, "the bucket ran dry after {spent}");
    let limited_before = world.centra.counters().await.unwrap().rate_limited;
    *expected.get_mut(&(12, world.sizes[0].sku.clone())).unwrap() += spent;

    let mut rng = Lcg(3);
    let world = std::sync::Arc::new(world);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = world.stores[rng.next(3) as usize].clone();
        let size = world.sizes[rng.next(20) as usize].clone();
        *expected
            .get_mut(&(store.warehouse, size.sku.clone()))
            .unwrap() -= 1;
        let body = event(
            "stock.sale",
            &store.code,
            &at(2, i),
            vec![line(&size, i as usize, 1, true)],
        );
        let world = world.clone();
        tasks.push(tokio::spawn(async move {
            world.deliver(&format!("burst-{i}"), &body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 202);
    }
    world.settle().await;
    world.assert_centra_stock(&expected).await;
    world.assert_centra_rules_kept().await;
    let counters = world.centra.counters().await.unwrap();
    assert!(
        counters.rate_limited > limited_before,
        "the pusher met the empty bucket"
    );
    assert!(
        counters.mutations - spent as u64 <= 20,
        "200 sales coalesced: {} mutations",
        counters.mutations
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_answers_are_settled_from_the_audit_trail_of_a_busy_centra() {
    let world = World::start(WorldConfig::new(4)).await;
    let mut expected = world.initial_stock(50);
    for store in &world.stores {
        world
            .centra
            .add_unrelated_stock_changes(store.warehouse, 600)
            .await
            .unwrap();
    }
    let faults = [
        FaultJson::ApplyThenStatus { status: 504 },
        FaultJson::LoseResponseAfterApply,
        // Longer than the client's timeout: the change lands after the client gave up.
        FaultJson::Hang { ms: 3_000 },
        FaultJson::ServerError { status: 503 },
    ];
    for (round, fault) in faults.into_iter().enumerate() {
        world
            .centra
            .inject(FaultTarget::Mutations, fault)
            .await
            .unwrap();
        for (i, size) in world.sizes.clone().iter().enumerate() {
            let id = format!("lost-{round}-{i}");
            let body = event(
                "stock.sale",
                "MAN-01",
                &at(1, (round * 10 + i) as i64),
                vec![line(size, i, 2, true)],
            );
            assert_eq!(world.deliver(&id, &body).await.status, 202);
            *expected.get_mut(&(13, size.sku.clone())).unwrap() -= 2;
        }
        world.settle().await;
        world.assert_centra_stock(&expected).await;
    }
    world.assert_centra_rules_kept().await;
    assert!(world.exceptions().await.is_empty());
}

async fn parked_while_the_rest_arrive(refusal: RefusalKind, exception_kind: &str) {
    let world = World::start(WorldConfig::new(5)).await;
    let mut expected = world.initial_stock(50);
    let refused = world.sizes[2].clone();
    world
        .centra
        .refuse_size(
            &refused.sku,
            Some(refusal),
            "Product size is not available in this warehouse",
        )
        .await
        .unwrap();
    let lines: Vec<Value> = world
        .sizes
        .iter()
        .enumerate()
        .map(|(i, s)| line(s, i, 1, true))
        .collect();
    assert_eq!(
        world
            .deliver("sale-1", &event("stock.sale", "EDI-01", &at(3, 0), lines))
            .await
            .status,
        202
    );
    world.settle().await;
    for s in world.sizes.iter().filter(|s| s.sku != refused.sku) {
        *expected.get_mut(&(14, s.sku.clone())).unwrap() -= 1;
    }
    world.assert_centra_stock(&expected).await;
    let exceptions = world.exceptions().await;
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert_eq!(exceptions[0]["kind"], json!(exception_kind));
    assert_eq!(exceptions[0]["item"], json!(format!("sku:{}", refused.sku)));
    assert_eq!(exceptions[0]["event_ids"], json!(["sale-1"]));
    // The refused line cost Centra at most one more mutation (the resend of the others).
    assert!(world.centra.counters().await.unwrap().mutations <= 2);
    // Later sales of the parked size wait; the others keep flowing.
    let more = vec![
        line(&refused, 0, 1, true),
        line(&world.sizes[0], 0, 1, true),
    ];
    assert_eq!(
        world
            .deliver("sale-2", &event("stock.sale", "EDI-01", &at(2, 0), more))
            .await
            .status,
        202
    );
    world.settle().await;
    *expected.get_mut(&(14, world.sizes[0].sku.clone())).unwrap() -= 1;
    world.assert_centra_stock(&expected).await;
    world.assert_centra_rules_kept().await;
}

#[tokio::test]
async fn a_size_centra_refuses_is_parked_and_the_rest_arrive() {
    parked_while_the_rest_arrive(RefusalKind::Error, "centra_rejected_line").await;
}

#[tokio::test]
async fn a_size_centra_skips_with_a_warning_is_parked_and_the_rest_arrive() {
    parked_while_the_rest_arrive(RefusalKind::Warning, "centra_skipped_line").await;
}
