//! End-to-end invariants of stock sync: store event → intake → FIFO → ledger → coalesced push → Centra
//! simulator over real HTTP. Each test would fail if its invariant broke.

use crate::common;

use async_trait::async_trait;
use common::*;
use shared::core::errors::BackendError;
use shared::core::ids::{ItemRef, StoreCode};
use shared::stock::ledger::{LedgerRow, PushRecord};
use shared::stock::ports::*;
use shared::stock::push::{PushSettings, StockPusher};
use shared::telemetry::metrics::names;
use simulators::centra::{CentraSimConfig, Fault, RefusalKind, RetryAfterStyle, SizeRefusal};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;

#[tokio::test]
async fn contract_sale_reaches_centra_once() {
    let h = Harness::new(&["Prod123Var123789S", "Tee01Black-M"], 20).await;
    let at = h.now_ms() - MIN;
    let r = h
        .send(
            "evt_1",
            &sale(
                "LDN-01",
                at,
                &[("Prod123Var123789S", 2), ("Tee01Black-M", 1)],
            ),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "Prod123Var123789S"), 18);
    assert_eq!(h.centra("LDN-01", "Tee01Black-M"), 19);
    assert_eq!(h.sim.mutation_count(), 1, "both sizes in one changeStock");
    assert_eq!(
        h.centra("MAN-01", "Tee01Black-M"),
        20,
        "other stores untouched"
    );
}

#[tokio::test]
async fn duplicate_storm_changes_centra_exactly_once() {
    let skus = ["A-1", "A-2", "A-3", "A-4", "A-5"];
    let h = Harness::new(&skus, 100).await;
    let base = h.now_ms() - 10 * MIN;
    let mut events = Vec::new();
    let mut expected: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for i in 0..20 {
        let store = if i % 2 == 0 { "LDN-01" } else { "MAN-01" };
        let sku = skus[i % skus.len()];
        let qty = (i % 3 + 1) as i64;
        let kind = if i % 4 == 3 {
            "stock.return"
        } else {
            "stock.sale"
        };
        *expected.entry((store, sku)).or_insert(100) +=
            if kind == "stock.sale" { -qty } else { qty };
        events.push((
            format!("evt_{i}"),
            movement(kind, store, base + i as i64 * 1000, &[(sku, qty)]),
        ));
    }
    // Every event delivered three times at once.
    let sends = events
        .iter()
        .flat_map(|(id, body)| (0..3).map(move |_| (id.clone(), body.clone())))
        .map(|(id, body)| {
            let h = &h;
            async move { h.send(&id, &body).await.status }
        });
    let statuses = futures::future::join_all(sends).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        20,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{statuses:?}"
    );
    h.settle().await;
    for ((store, sku), qty) in expected {
        assert_eq!(h.centra(store, sku), qty, "{store} {sku}");
    }
    assert_eq!(h.pipeline.metrics.total(names::EVENTS_DUPLICATE), 40.0);
}

#[tokio::test]
async fn redelivered_batch_applies_once() {
    let h = Harness::new(&["R-1", "R-2"], 50).await;
    let at = h.now_ms() - MIN;
    for i in 0..6 {
        let sku = if i % 2 == 0 { "R-1" } else { "R-2" };
        assert_eq!(
            h.send(&format!("e{i}"), &sale("LDN-01", at + i, &[(sku, 1)]))
                .await
                .status,
            202
        );
    }
    // A worker processes a batch and dies before deleting it: SQS redelivers the same messages.
    let received = h.pipeline.stock_queue.receive(10, 30_000, h.now_ms());
    let items = shared::wiring::local::fifo_items(&received);
    assert!(h.pipeline.applier.process_batch(items).await.is_empty());
    for m in &received {
        h.pipeline.stock_queue.release(m.receipt);
    }
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "R-1"), 47);
    assert_eq!(h.centra("LDN-01", "R-2"), 47);
    assert_eq!(
        h.pipeline.metrics.total(names::MOVEMENTS_DUPLICATE),
        received.len() as f64
    );
}

#[tokio::test]
async fn stale_count_is_ignored_and_later_sales_apply_on_top_of_the_count() {
    let h = Harness::new(&["C-1"], 20).await;
    let t = h.now_ms() - 30 * MIN;
    assert_eq!(
        h.send(
            "count",
            &movement("stock.count", "MAN-01", t, &[("C-1", 7)])
        )
        .await
        .status,
        202
    );
    assert_eq!(
        h.send("sale", &sale("MAN-01", t + 5 * MIN, &[("C-1", 1)]))
            .await
            .status,
        202
    );
    assert_eq!(
        h.send(
            "old-count",
            &movement("stock.count", "MAN-01", t - 10 * MIN, &[("C-1", 30)])
        )
        .await
        .status,
        202
    );
    assert_eq!(
        h.send("old-sale", &sale("MAN-01", t - MIN, &[("C-1", 4)]))
            .await
            .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("MAN-01", "C-1"), 6);
    assert_eq!(h.pipeline.metrics.total(names::MOVEMENTS_STALE), 2.0);
    assert_eq!(
        h.sim.mutation_count(),
        1,
        "count and sale coalesce into one setStock"
    );
}

#[tokio::test]
async fn many_events_coalesce_into_few_mutations() {
    let skus: Vec<String> = (0..40).map(|i| format!("K-{i}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let h = Harness::new(&refs, 1000).await;
    let at = h.now_ms() - MIN;
    let stores = ["LDN-01", "MAN-01", "EDI-01"];
    for i in 0..600usize {
        let kind = if i % 10 == 0 {
            "stock.return"
        } else {
            "stock.sale"
        };
        let body = movement(kind, stores[i % 3], at + i as i64, &[(refs[i % 40], 1)]);
        assert_eq!(h.send(&format!("m{i}"), &body).await.status, 202);
    }
    h.settle().await;
    assert!(
        h.sim.mutation_count() <= 6,
        "600 events → {} mutations",
        h.sim.mutation_count()
    );
    let total: i64 = stores
        .iter()
        .flat_map(|s| refs.iter().map(move |k| (s, k)))
        .map(|(s, k)| h.centra(s, k))
        .sum();
    assert_eq!(total, 3 * 40 * 1000 - 540 + 60);
}

#[tokio::test]
async fn a_size_centra_refuses_among_many_does_not_lose_the_others() {
    let h = Harness::new(&["G-1", "G-2", "G-3", "G-4", "G-5"], 10).await;
    let at = h.now_ms() - MIN;
    // A name Centra does not know never reaches the queue, let alone Centra's budget.
    let unknown = h
        .send(
            "unknown",
            &sale("EDI-01", at, &[("G-1", 1), ("NOPE-404", 1)]),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error"]["field"], "lines[1].sku");
    // A size Centra knows but refuses (here: not sold from this warehouse) is parked with Centra's words.
    h.sim.refuse_size(
        "G-3",
        Some(SizeRefusal {
            kind: RefusalKind::Error,
            message: "Product size G-3 is not available in warehouse 14".into(),
        }),
    );
    let body = sale(
        "EDI-01",
        at,
        &[("G-1", 1), ("G-2", 1), ("G-3", 1), ("G-4", 2), ("G-5", 1)],
    );
    assert_eq!(h.send("mixed", &body).await.status, 202);
    h.settle().await;
    assert_eq!(
        ["G-1", "G-2", "G-3", "G-4", "G-5"].map(|s| h.centra("EDI-01", s)),
        [9, 9, 10, 8, 9]
    );
    let exceptions = h.pipeline.ledger.list(Some("EDI-01")).await.unwrap();
    assert_eq!(exceptions.len(), 1);
    let e = &exceptions[0];
    assert_eq!(e.kind, "centra_rejected_line");
    assert_eq!(e.item.as_deref(), Some("sku:G-3"));
    assert_eq!(e.event_ids, vec!["mixed".to_string()]);
    assert!(
        e.centra_message.as_deref().unwrap_or("").contains("G-3"),
        "{e:?}"
    );
    assert_eq!(h.pipeline.metrics.total(names::STOCK_EXCEPTIONS), 1.0);
    // The refused line was split off at once: the refusal and one resend, no bisection.
    assert_eq!(h.sim.mutation_count(), 1);
    assert_eq!(h.calls_to("changeStock"), 2);
    // The refused item is parked, not retried on every push; a later sale of it waits with it.
    let (store, item) = (
        StoreCode::parse("EDI-01").unwrap(),
        ItemRef::Sku("G-3".into()),
    );
    let row = LedgerStore::get(h.pipeline.ledger.as_ref(), &store, &item)
        .await
        .unwrap()
        .unwrap();
    assert!(row.blocked.is_some());
    assert_eq!(
        h.send("later", &sale("EDI-01", at + 1, &[("G-3", 2)]))
            .await
            .status,
        202
    );
    h.settle().await;
    assert_eq!(h.calls_to("changeStock"), 2);
    // Centra is fixed; the operator clears the block and both sales go out together.
    h.sim.refuse_size("G-3", None);
    assert_eq!(
        shared::stock::push::unblock(
            h.pipeline.ledger.as_ref(),
            h.pipeline.push_queue.as_ref(),
            &store,
            &item,
            None,
            h.now_ms(),
        )
        .await
        .unwrap(),
        shared::stock::push::UnblockOutcome::Unblocked
    );
    h.settle().await;
    assert_eq!(h.centra("EDI-01", "G-3"), 7);
}

#[tokio::test]
async fn lost_centra_response_does_not_change_centra_twice() {
    let h = Harness::new(&["L-1"], 10).await;
    h.sim.inject(Fault::LoseResponseAfterApply);
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("L-1", 3)]))
            .await
            .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "L-1"), 7);
    assert_eq!(h.sim.stock_changes().len(), 1);
    assert_eq!(h.pipeline.metrics.total(names::CENTRA_UNCERTAIN), 1.0);
    // More sales later still flow.
    assert_eq!(
        h.send("e2", &sale("LDN-01", h.now_ms() - MIN, &[("L-1", 1)]))
            .await
            .status,
        202
    );
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "L-1"), 6);
}

#[tokio::test]
async fn timed_out_call_that_lands_late_is_found_after_the_lease() {
    let h = Harness::with(&["T-1"], 10, CentraSimConfig::default(), |c| {
        c.centra_timeout = Duration::from_millis(300);
    })
    .await;
    h.sim.inject(Fault::Hang(Duration::from_millis(900)));
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("T-1", 2)]))
            .await
            .status,
        202
    );
    h.apply_all().await;
    h.pipeline.push_round().await;
    // Not found in the audit trail yet: the lease stays, nothing is re-sent.
    assert!(!h.pipeline.is_settled());
    h.sim.wait_idle().await; // the slow request lands now
    assert_eq!(h.centra("LDN-01", "T-1"), 8);
    h.pipeline.push_round().await;
    assert_eq!(
        h.sim.stock_changes().len(),
        1,
        "no resend while the lease holds"
    );
    h.clock
        .advance_millis(PushSettings::default().lease_ms + 2_000);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "T-1"), 8);
    assert_eq!(h.sim.stock_changes().len(), 1);
}

#[tokio::test]
async fn rate_limit_burst_is_honoured_and_nothing_is_lost() {
    let config = CentraSimConfig {
        retry_after_style: RetryAfterStyle::Seconds,
        ..Default::default()
    };
    let h = Harness::with(&["Q-1"], 10, config, |_| {}).await;
    h.sim.inject(Fault::RateLimited {
        retry_after: Duration::from_secs(1),
    });
    h.sim.inject(Fault::RateLimited {
        retry_after: Duration::from_secs(1),
    });
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("Q-1", 4)]))
            .await
            .status,
        202
    );
    let started = std::time::Instant::now();
    h.settle().await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "Retry-After was not honoured"
    );
    assert_eq!(h.centra("LDN-01", "Q-1"), 6);
    assert_eq!(h.sim.rate_limited_count(), 2);
    assert_eq!(h.pipeline.metrics.total(names::CENTRA_RATE_LIMITED), 2.0);
}

/// Wraps the ledger: fails writes that release `item`'s lease after a push, to simulate a crash between
/// the Centra call and the bookkeeping.
struct CrashAfterCentra {
    inner: Arc<dyn LedgerStore>,
    armed: AtomicBool,
}

#[async_trait]
impl LedgerStore for CrashAfterCentra {
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError> {
        self.inner.get(store, item).await
    }
    async fn apply(
        &self,
        id: &str,
        exp: i64,
        row: &LedgerRow,
        rev: Option<u64>,
    ) -> Result<ApplyWrite, BackendError> {
        self.inner.apply(id, exp, row, rev).await
    }
    async fn put(&self, row: &LedgerRow, expected_rev: u64) -> Result<bool, BackendError> {
        if self.armed.load(Ordering::SeqCst) && row.lease.is_none() {
            return Err(BackendError::new("test", "process died"));
        }
        self.inner.put(row, expected_rev).await
    }
    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError> {
        self.inner.list_store(store).await
    }
}

/// Push log that keeps only the first write of each record (the PREPARED one), as if the process died
/// before recording the outcome.
struct FirstWriteOnly {
    inner: Arc<dyn PushLog>,
    writes: AtomicUsize,
}

#[async_trait]
impl PushLog for FirstWriteOnly {
    async fn put(&self, record: &PushRecord) -> Result<(), BackendError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(BackendError::new("test", "process died"));
        }
        self.inner.put(record).await
    }
    async fn get(&self, push_id: &str) -> Result<Option<PushRecord>, BackendError> {
        self.inner.get(push_id).await
    }
}

#[tokio::test]
async fn crash_after_the_centra_call_is_resolved_from_the_audit_trail() {
    let h = Harness::new(&["X-1"], 10).await;
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("X-1", 3)]))
            .await
            .status,
        202
    );
    h.apply_all().await;
    let p = &h.pipeline;
    let crashing = StockPusher {
        ledger: Arc::new(CrashAfterCentra {
            inner: p.ledger.clone(),
            armed: AtomicBool::new(true),
        }),
        push_log: Arc::new(FirstWriteOnly {
            inner: p.ledger.clone(),
            writes: AtomicUsize::new(0),
        }),
        exceptions: p.ledger.clone(),
        budget: p.pusher.budget.clone(),
        push_queue: p.push_queue.clone(),
        centra: p.pusher.centra.clone(),
        catalogue: p.pusher.catalogue.clone(),
        mappings: h.mappings.clone(),
        metrics: p.metrics.clone(),
        clock: p.clock.clone(),
        settings: PushSettings::default(),
        finance: p.pusher.finance.clone(),
    };
    let keys = p.push_queue.drain_ready(h.now_ms());
    let report = crashing.push_keys(keys.clone(), h.now_ms() + 30_000).await;
    assert_eq!(
        report.failed_keys, keys,
        "bookkeeping failed: key must come back"
    );
    assert_eq!(h.centra("LDN-01", "X-1"), 7, "Centra applied the change");
    // SQS redelivers the key; a healthy worker sees the lease and waits.
    p.push_queue.mark_dirty(&keys, 0).await.unwrap();
    p.push_round().await;
    assert_eq!(h.sim.stock_changes().len(), 1);
    // After the lease ends it resolves the push from Centra's audit trail instead of re-sending.
    h.clock
        .advance_millis(PushSettings::default().lease_ms + 2_000);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "X-1"), 7);
    assert_eq!(h.sim.stock_changes().len(), 1);
    let row = LedgerStore::get(
        p.ledger.as_ref(),
        &StoreCode::parse("LDN-01").unwrap(),
        &ItemRef::Sku("X-1".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!row.has_unpushed() && row.lease.is_none());
}

#[tokio::test]
async fn crash_before_the_centra_call_sends_once_later() {
    let h = Harness::new(&["Y-1"], 10).await;
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("Y-1", 2)]))
            .await
            .status,
        202
    );
    h.apply_all().await;
    // Simulate a worker that leased the row, wrote its record, and died before calling Centra.
    let store = StoreCode::parse("LDN-01").unwrap();
    let item = ItemRef::Sku("Y-1".into());
    let mut row = LedgerStore::get(h.pipeline.ledger.as_ref(), &store, &item)
        .await
        .unwrap()
        .unwrap();
    let rev = row.rev;
    let line = shared::stock::ledger::pending_change(&row).unwrap();
    row.lease = Some(shared::stock::ledger::Lease {
        push_id: "dead".into(),
        until_ms: h.now_ms() + 1_000,
        checks: 0,
    });
    assert!(LedgerStore::put(h.pipeline.ledger.as_ref(), &row, rev)
        .await
        .unwrap());
    PushLog::put(
        h.pipeline.ledger.as_ref(),
        &PushRecord {
            push_id: "dead".into(),
            store: store.clone(),
            warehouse_id: warehouse(&h.mappings, "LDN-01"),
            created_at_ms: h.now_ms(),
            expires_at_s: 0,
            mutations: vec![shared::stock::ledger::PushMutation {
                index: 0,
                kind: line.kind,
                lines: vec![line],
                status: shared::stock::ledger::MutationStatus::Pending,
                change_id: None,
                skipped: vec![],
            }],
        },
    )
    .await
    .unwrap();
    h.clock.advance_millis(5_000);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "Y-1"), 8);
    assert_eq!(h.sim.stock_changes().len(), 1);
}

/// Fails every ledger write for one item.
struct BrokenItem {
    inner: Arc<dyn LedgerStore>,
    item: ItemRef,
    broken: AtomicBool,
}

#[async_trait]
impl LedgerStore for BrokenItem {
    async fn get(
        &self,
        store: &StoreCode,
        item: &ItemRef,
    ) -> Result<Option<LedgerRow>, BackendError> {
        self.inner.get(store, item).await
    }
    async fn apply(
        &self,
        id: &str,
        exp: i64,
        row: &LedgerRow,
        rev: Option<u64>,
    ) -> Result<ApplyWrite, BackendError> {
        if self.broken.load(Ordering::SeqCst) && row.item == self.item {
            return Err(BackendError::new("test", "throttled"));
        }
        self.inner.apply(id, exp, row, rev).await
    }
    async fn put(&self, row: &LedgerRow, expected_rev: u64) -> Result<bool, BackendError> {
        self.inner.put(row, expected_rev).await
    }
    async fn list_store(&self, store: &StoreCode) -> Result<Vec<LedgerRow>, BackendError> {
        self.inner.list_store(store).await
    }
}

#[tokio::test]
async fn other_skus_flow_while_one_group_fails() {
    let h = Harness::new(&["F-1", "F-2", "F-3"], 10).await;
    let at = h.now_ms() - MIN;
    for (i, sku) in ["F-1", "F-2", "F-1", "F-3", "F-1"].iter().enumerate() {
        assert_eq!(
            h.send(
                &format!("e{i}"),
                &sale("LDN-01", at + i as i64, &[(sku, 1)])
            )
            .await
            .status,
            202
        );
    }
    let p = &h.pipeline;
    let broken = Arc::new(BrokenItem {
        inner: p.ledger.clone(),
        item: ItemRef::Sku("F-1".into()),
        broken: AtomicBool::new(true),
    });
    let applier = shared::stock::apply::StockApplier {
        ledger: broken.clone(),
        push_queue: p.push_queue.clone(),
        exceptions: p.ledger.clone(),
        metrics: p.metrics.clone(),
        clock: p.clock.clone(),
        finance: p.applier.finance.clone(),
    };
    let received = p.stock_queue.receive(10, 30_000, h.now_ms());
    assert_eq!(received.len(), 5);
    let items = shared::wiring::local::fifo_items(&received);
    let failed = applier.process_batch(items).await;
    let f1: Vec<String> = received
        .iter()
        .filter(|m| m.group_id == "F-1")
        .map(|m| m.message_id.clone())
        .collect();
    assert_eq!(
        failed, f1,
        "only the broken group fails (its later messages skipped)"
    );
    for m in &received {
        if failed.contains(&m.message_id) {
            p.stock_queue.release(m.receipt);
        } else {
            p.stock_queue.delete(m.receipt);
        }
    }
    p.push_round().await;
    assert_eq!(
        (h.centra("LDN-01", "F-2"), h.centra("LDN-01", "F-3")),
        (9, 9)
    );
    assert_eq!(h.centra("LDN-01", "F-1"), 10);
    broken.broken.store(false, Ordering::SeqCst);
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "F-1"), 7);
}

#[tokio::test]
async fn shared_budget_caps_concurrent_pushers() {
    let skus = ["B-1"];
    let h = Harness::with(&skus, 10, CentraSimConfig::default(), |c| {
        c.mutations_per_10s = 3;
    })
    .await;
    let at = h.now_ms() - MIN;
    for (i, store) in ["LDN-01", "MAN-01", "EDI-01", "STO-01", "CPH-01"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            h.send(&format!("e{i}"), &sale(store, at, &[("B-1", 1)]))
                .await
                .status,
            202
        );
    }
    h.apply_all().await;
    let p = &h.pipeline;
    let keys = p.push_queue.drain_ready(h.now_ms());
    assert_eq!(keys.len(), 5);
    let (a, b) = keys.split_at(2);
    // Two instances, one budget, a deadline too short to wait for the next window.
    let deadline = h.now_ms() + 200;
    let (ra, rb) = tokio::join!(
        p.pusher.push_keys(a.to_vec(), deadline),
        p.pusher.push_keys(b.to_vec(), deadline)
    );
    assert_eq!(h.sim.mutation_count(), 3, "never more than the budget");
    assert_eq!(
        ra.failed_keys.len() + rb.failed_keys.len(),
        2,
        "the rest comes back for retry"
    );
}

#[tokio::test]
async fn server_error_is_retried_once_the_audit_trail_shows_nothing() {
    let h = Harness::new(&["S-1"], 10).await;
    h.sim.inject(Fault::ServerError(503));
    h.sim.inject(Fault::ServerError(500));
    assert_eq!(
        h.send("e", &sale("LDN-01", h.now_ms() - MIN, &[("S-1", 2)]))
            .await
            .status,
        202
    );
    h.apply_all().await;
    let report = h.pipeline.push_round().await;
    assert!(report.failed_keys.is_empty(), "{report:?}");
    assert_eq!(
        report.mutations_applied, 1,
        "retried within the same push, no lease wait"
    );
    assert_eq!(h.centra("LDN-01", "S-1"), 8);
    assert_eq!(h.sim.stock_changes().len(), 1);
    assert_eq!(h.pipeline.metrics.total(names::CENTRA_UNCERTAIN), 2.0);
}

/// Deterministic pseudo-random numbers for the shuffled-delivery test.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn any_batching_and_redelivery_converges_to_the_same_centra_stock() {
    let skus = ["Z-0", "Z-1", "Z-2", "Z-3", "Z-4", "Z-5"];
    for seed in [1u64, 7, 42] {
        let h = Harness::new(&skus, 500).await;
        let mut rng = Lcg(seed);
        let base = h.now_ms() - 30 * MIN;
        let mut expected: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for i in 0..150i64 {
            let store = ["LDN-01", "MAN-01"][rng.below(2) as usize];
            let sku = skus[rng.below(skus.len() as u64) as usize];
            let level = expected.entry((store, sku)).or_insert(500);
            let body = match rng.below(10) {
                0 => {
                    let q = 400 + rng.below(50) as i64;
                    *level = q;
                    movement("stock.count", store, base + i * 1000, &[(sku, q)])
                }
                1 | 2 => {
                    *level += 1;
                    movement("stock.return", store, base + i * 1000, &[(sku, 1)])
                }
                _ => {
                    *level -= 2;
                    sale(store, base + i * 1000, &[(sku, 2)])
                }
            };
            assert_eq!(h.send(&format!("s{seed}-{i}"), &body).await.status, 202);
        }
        // Random batch sizes; a third of the batches "crash" before deletion and come back; pushes interleave.
        let p = &h.pipeline;
        for _ in 0..10_000 {
            let batch = p
                .stock_queue
                .receive(1 + rng.below(10) as usize, 30_000, h.now_ms());
            if batch.is_empty() {
                break;
            }
            let failed = p
                .applier
                .process_batch(shared::wiring::local::fifo_items(&batch))
                .await;
            let crash = rng.below(3) == 0;
            for m in &batch {
                if crash || failed.contains(&m.message_id) {
                    p.stock_queue.release(m.receipt);
                } else {
                    p.stock_queue.delete(m.receipt);
                }
            }
            if rng.below(4) == 0 {
                p.push_round().await;
            }
        }
        h.settle().await;
        for ((store, sku), qty) in &expected {
            assert_eq!(h.centra(store, sku), *qty, "seed {seed}: {store} {sku}");
        }
    }
}

#[tokio::test]
async fn lines_split_off_a_refusal_are_not_sent_while_the_record_cannot_name_them() {
    let h = Harness::new(&["V-1", "V-2", "V-3"], 10).await;
    h.sim.refuse_size(
        "V-2",
        Some(SizeRefusal {
            kind: RefusalKind::Error,
            message: "Product size V-2 is inactive".into(),
        }),
    );
    let body = sale(
        "LDN-01",
        h.now_ms() - MIN,
        &[("V-1", 1), ("V-2", 1), ("V-3", 1)],
    );
    assert_eq!(h.send("e", &body).await.status, 202);
    h.apply_all().await;
    let p = &h.pipeline;
    // The record is written once, before the first call; every later write of it fails, and so does the
    // bookkeeping after any Centra call: a worker dying at the worst moments.
    let dying = StockPusher {
        ledger: Arc::new(CrashAfterCentra {
            inner: p.ledger.clone(),
            armed: AtomicBool::new(true),
        }),
        push_log: Arc::new(FirstWriteOnly {
            inner: p.ledger.clone(),
            writes: AtomicUsize::new(0),
        }),
        exceptions: p.ledger.clone(),
        budget: p.pusher.budget.clone(),
        push_queue: p.push_queue.clone(),
        centra: p.pusher.centra.clone(),
        catalogue: p.pusher.catalogue.clone(),
        mappings: h.mappings.clone(),
        metrics: p.metrics.clone(),
        clock: p.clock.clone(),
        settings: PushSettings::default(),
        finance: p.pusher.finance.clone(),
    };
    let keys = p.push_queue.drain_ready(h.now_ms());
    let report = dying.push_keys(keys, h.now_ms() + 30_000).await;
    // SQS redelivers the keys whose push failed.
    p.push_queue
        .mark_dirty(&report.failed_keys, 0)
        .await
        .unwrap();
    assert_eq!(
        h.calls_to("changeStock"),
        1,
        "the lines split off the refusal were not sent: the record could not name them"
    );
    // After the lease a healthy worker settles the record's only mutation (refused: not in the trail) and
    // pushes again; V-1 and V-3 reach Centra once.
    h.clock
        .advance_millis(PushSettings::default().lease_ms + 2_000);
    h.settle().await;
    assert_eq!(
        ["V-1", "V-2", "V-3"].map(|s| h.centra("LDN-01", s)),
        [9, 10, 9]
    );
}

#[tokio::test]
async fn a_legacy_row_named_by_ean_is_merged_into_its_sku_row_and_pushed_once() {
    use shared::events::store_events::{StockEventType, StockLineMessage};
    let h = Harness::with(&[], 0, CentraSimConfig::default(), |_| {}).await;
    let wh = warehouse(&h.mappings, "LDN-01");
    h.sim.add_size("M-1", Some("7350000000777"), true);
    h.sim.set_physical(wh, "M-1", 10);
    let store = StoreCode::parse("LDN-01").unwrap();
    let (ean, sku) = (
        ItemRef::Ean("7350000000777".into()),
        ItemRef::Sku("M-1".into()),
    );
    // Movements queued before this version: one by SKU, two by EAN (their own ledger row then).
    let legacy = |id: &str, item: &ItemRef, qty: i64, at: i64| StockLineMessage {
        event_id: id.into(),
        line: 0,
        event_type: StockEventType::Sale,
        store: store.clone(),
        item: item.clone(),
        movement: shared::core::ids::Movement::Delta(-qty),
        position: shared::core::ids::EventPosition {
            occurred_at_ms: at,
            sequence: None,
        },
        received_at_ms: at,
        reference: None,
        values: vec![],
        business_date: None,
    };
    let t = h.now_ms() - 10 * MIN;
    for msg in [
        legacy("old-1", &sku, 1, t),
        legacy("old-2", &ean, 2, t + 1),
        legacy("old-3", &ean, 3, t + 2),
    ] {
        h.pipeline.applier.apply(&msg).await.unwrap();
    }
    h.pipeline
        .push_queue
        .mark_dirty(
            &[
                DirtyKey {
                    store: store.clone(),
                    item: ean.clone(),
                },
                DirtyKey {
                    store: store.clone(),
                    item: sku.clone(),
                },
            ],
            0,
        )
        .await
        .unwrap();
    // The catalogue knows the size once anything asked for it.
    h.pipeline.catalogue.preload().await;
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "M-1"), 4, "all three sales, once each");
    for change in h.sim.stock_changes() {
        assert_eq!(
            change.lines.len(),
            1,
            "never the same size twice: {change:?}"
        );
    }
    let legacy_row = LedgerStore::get(h.pipeline.ledger.as_ref(), &store, &ean)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(legacy_row.retired_into, Some(sku.clone()));
    // A movement still queued under the EAN lands on the SKU row.
    h.pipeline
        .applier
        .apply(&legacy("old-4", &ean, 1, t + 3))
        .await
        .unwrap();
    h.pipeline
        .push_queue
        .mark_dirty(
            &[DirtyKey {
                store: store.clone(),
                item: sku.clone(),
            }],
            0,
        )
        .await
        .unwrap();
    h.settle().await;
    assert_eq!(h.centra("LDN-01", "M-1"), 3);
}
