//! `shelfsync bench-sync`: a burst of store events through the real intake, applier and pusher (embedded
//! queues and stores) against the Centra simulator with Growth-tier rate limits.

use shared::config::mappings::Mappings;
use shared::wiring::local::{Pipeline, PipelineConfig};
use simulators::centra::{CentraSim, CentraSimConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    #[arg(long, default_value_t = 500)]
    skus: usize,
    /// Added to every simulated Centra request.
    #[arg(long, default_value_t = 0)]
    centra_latency_ms: u64,
    /// Concurrent apply workers (the FIFO trigger's concurrency).
    #[arg(long, default_value_t = 8)]
    apply_workers: usize,
    /// Push queue batching window.
    #[arg(long, default_value_t = 1000)]
    push_window_ms: u64,
    /// Queue every event first, then measure only the ledger apply rate (no push).
    #[arg(long)]
    apply_only: bool,
    /// Percent of lines that name their size by EAN instead of SKU.
    #[arg(long, default_value_t = 25)]
    ean_share: u64,
    /// Items Centra does not know (lower-case SKUs, zero-padded EANs) sent alongside by a second sender that
    /// retries every 503 as a real one would.
    #[arg(long, default_value_t = 0)]
    unknown_items: usize,
}

/// The EAN the benchmark gives size `i` (13 digits).
fn ean_of(i: usize) -> String {
    format!("735{i:010}")
}

const SECRET: &str = crate::demo::DEMO_SECRET;
const INITIAL: i64 = 1_000;

/// Small deterministic generator: the same workload every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn name_line(line: &mut serde_json::Value, sku: &str, index: usize, by_ean: bool) {
    if by_ean {
        line["ean"] = serde_json::json!(ean_of(index));
    } else {
        line["sku"] = serde_json::json!(sku);
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mappings = Arc::new(Mappings::embedded_default());
    let stores: Vec<(String, u64)> = mappings
        .stores()
        .map(|s| (s.store.to_string(), s.centra_warehouse_id))
        .collect();
    let currency = |store: &str| mappings.store(store).expect("mapped").currency.clone();
    let sim = CentraSim::start(CentraSimConfig::default()).await;
    sim.set_latency(Duration::from_millis(args.centra_latency_ms));
    let skus: Vec<String> = (0..args.skus).map(|i| format!("BENCH-{i:05}")).collect();
    for (store, wh) in &stores {
        sim.add_warehouse(*wh, store);
    }
    for (i, sku) in skus.iter().enumerate() {
        sim.add_size(sku, Some(&ean_of(i)), true);
        for (_, wh) in &stores {
            sim.set_physical(*wh, sku, INITIAL);
        }
    }
    let mut config = PipelineConfig::new(sim.graphql_url(), sim.token(), SECRET);
    config.push_window = Duration::from_millis(args.push_window_ms);
    let pipeline = Arc::new(Pipeline::new(config, mappings.clone())?);

    // Workload: 90 % sales, 8 % returns, 2 % counts; one line each; times increase with the send order.
    let mut rng = Lcg(42);
    let start_ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut expected: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let mut bodies = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let store = (rng.next() % stores.len() as u64) as usize;
        let sku = (rng.next() % skus.len() as u64) as usize;
        let roll = rng.next() % 100;
        let qty = (rng.next() % 2 + 1) as i64;
        let by_ean = rng.next() % 100 < args.ean_share;
        let at = chrono::DateTime::from_timestamp_millis(start_ms + i as i64)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = expected.entry((store, sku)).or_insert(INITIAL);
        let body = if roll < 2 {
            let counted = 900 + (rng.next() % 100) as i64;
            *level = counted;
            let mut line = serde_json::json!({ "quantity": counted });
            name_line(&mut line, &skus[sku], sku, by_ean);
            serde_json::json!({ "type": "stock.count", "occurred_at": at, "store": stores[store].0,
                "lines": [line] })
        } else {
            let kind = if roll < 10 {
                "stock.return"
            } else {
                "stock.sale"
            };
            *level += if kind == "stock.sale" { -qty } else { qty };
            let mut line = serde_json::json!({ "quantity": qty, "unit_price": "10.00", "currency": currency(&stores[store].0) });
            name_line(&mut line, &skus[sku], sku, by_ean);
            serde_json::json!({ "type": kind, "occurred_at": at, "store": stores[store].0,
                "lines": [line] })
        };
        bodies.push((format!("bench-{i}"), body.to_string()));
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    if !args.apply_only {
        workers = pipeline.spawn_apply_workers(args.apply_workers, stop_rx.clone());
        workers.push(pipeline.spawn_push_worker(stop_rx.clone(), report_tx));
    }

    let started = Instant::now();
    let sender = {
        let p = pipeline.clone();
        tokio::spawn(async move {
            for (id, body) in bodies {
                let r = p.send_signed(SECRET, &id, body.as_bytes()).await;
                assert_eq!(r.status, 202, "{}", r.body);
            }
        })
    };
    let poison = (args.unknown_items > 0).then(|| {
        let p = pipeline.clone();
        let store = stores[0].0.clone();
        let currency = currency(&store);
        let items = args.unknown_items;
        tokio::spawn(async move { send_unknown_items(&p, &store, &currency, items).await })
    });
    sender.await?;
    let intake_done = started.elapsed();
    if args.apply_only {
        let apply_started = Instant::now();
        let workers = pipeline.spawn_apply_workers(args.apply_workers, stop_rx);
        while pipeline
            .metrics
            .total(shared::telemetry::metrics::names::MOVEMENTS_APPLIED)
            < args.events as f64
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = apply_started.elapsed();
        let _ = stop_tx.send(true);
        for w in workers {
            let _ = w.await;
        }
        println!("events                     {}", args.events);
        println!(
            "intake accepted all in     {:.2} s ({:.0} events/s, one sender)",
            intake_done.as_secs_f64(),
            args.events as f64 / intake_done.as_secs_f64()
        );
        println!(
            "ledger applied all in      {:.3} s ({:.0} events/s, {} apply workers, batches of 10)",
            took.as_secs_f64(),
            args.events as f64 / took.as_secs_f64(),
            args.apply_workers
        );
        return Ok(());
    }
    let applied_target = args.events as f64;
    let mut applied_at = None;
    let mut centra_final_at = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while centra_final_at.is_none() && Instant::now() < deadline {
        if applied_at.is_none()
            && pipeline
                .metrics
                .total(shared::telemetry::metrics::names::MOVEMENTS_APPLIED)
                >= applied_target
        {
            applied_at = Some(started.elapsed());
        }
        let all_match = expected.iter().all(|((store, sku), qty)| {
            sim.stock(stores[*store].1, &skus[*sku]).map(|s| s.physical) == Some(*qty)
        });
        if all_match && applied_at.is_some() {
            centra_final_at = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The unknown items' sender goes on at the lookup pace after the known items have settled.
    let poison = match poison {
        Some(task) => Some((task.await?, started.elapsed())),
        None => None,
    };
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    let mut lags = Vec::new();
    while let Ok(r) = report_rx.try_recv() {
        lags.extend(r.since_accepted_ms);
    }
    lags.sort_unstable();
    let applied_at = applied_at.ok_or_else(|| anyhow::anyhow!("not every event was applied"))?;
    let final_at = centra_final_at
        .ok_or_else(|| anyhow::anyhow!("Centra never reached the expected stock"))?;
    println!("events                     {}", args.events);
    println!("(store, SKU) pairs touched {}", expected.len());
    println!(
        "intake accepted all in     {:.2} s ({:.0} events/s, one sender)",
        intake_done.as_secs_f64(),
        args.events as f64 / intake_done.as_secs_f64()
    );
    println!(
        "ledger applied all in      {:.2} s ({:.0} events/s)",
        applied_at.as_secs_f64(),
        args.events as f64 / applied_at.as_secs_f64()
    );
    println!("Centra final stock after   {:.2} s", final_at.as_secs_f64());
    println!("Centra mutations           {}", sim.mutation_count());
    println!("Centra requests (all)      {}", sim.request_count());
    if let Some((p, done)) = poison {
        println!(
            "unknown items              {} events: {} refused (400) by {:.1} s, {} retries after 503; 0 reached Centra's mutations",
            args.unknown_items,
            p.refused,
            done.as_secs_f64(),
            p.retries
        );
    }
    println!("Centra 429 answers         {}", sim.rate_limited_count());
    println!(
        "lag accepted→Centra        p50 {} ms, p95 {} ms, max {} ms over {} movements",
        percentile(&lags, 0.5),
        percentile(&lags, 0.95),
        lags.last().copied().unwrap_or(0),
        lags.len()
    );
    sim.shutdown().await;
    Ok(())
}

struct PoisonReport {
    refused: usize,
    retries: usize,
}

/// Events naming items Centra does not know, half by lower-case SKU and half by zero-padded EAN; each is sent
/// until intake gives a final answer, honouring `Retry-After` like a real sender.
async fn send_unknown_items(
    p: &Pipeline,
    store: &str,
    currency: &str,
    items: usize,
) -> PoisonReport {
    let mut report = PoisonReport {
        refused: 0,
        retries: 0,
    };
    let mut pending: Vec<(String, String)> = (0..items)
        .map(|i| {
            let line = if i % 2 == 0 {
                serde_json::json!({ "sku": format!("bench-{i:05}"), "quantity": 1, "unit_price": "10.00", "currency": currency })
            } else {
                serde_json::json!({ "ean": format!("0{}", ean_of(i)), "quantity": 1, "unit_price": "10.00", "currency": currency })
            };
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let body = serde_json::json!({ "type": "stock.sale", "occurred_at": at, "store": store, "lines": [line] });
            (format!("unknown-{i}"), body.to_string())
        })
        .collect();
    while !pending.is_empty() {
        let mut again = Vec::new();
        let mut wait = 0u32;
        for (id, body) in pending {
            let r = p.send_signed(SECRET, &id, body.as_bytes()).await;
            match r.status {
                400 => {
                    assert_eq!(r.body["error"]["code"], "unknown_item", "{}", r.body);
                    report.refused += 1
                }
                503 => {
                    wait = wait.max(r.retry_after.unwrap_or(1));
                    again.push((id, body));
                }
                other => panic!("unknown item answered {other}: {}", r.body),
            }
        }
        report.retries += again.len();
        pending = again;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(u64::from(wait))).await;
        }
    }
    report
}
