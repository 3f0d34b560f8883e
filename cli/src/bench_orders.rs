//! `shelfsync bench-orders`: kiosk orders through order sync (Cloudshelf check, Centra Order API create,
//! Cloudshelf report) against the simulators with a fixed latency on every call.

use crate::order_sims::{seed_centra_orders, seed_cloudshelf_order};
use futures::StreamExt;
use shared::adapters::memory::MemoryLedgerStore;
use shared::core::clock::system_clock;
use shared::core::ids::{ItemRef, StoreCode};
use shared::core::money::Amount;
use shared::events::orders::{
    Customer, DeliveryAddress, KioskOrder, KioskOrderLine, KioskPayment, PaymentStatus,
};
use shared::orders::sync::OrderOutcome;
use shared::telemetry::metrics::Metrics;
use shared::wiring::local_orders::{local_order_sync, LocalOrderEndpoints};
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchOrdersArgs {
    #[arg(long, default_value_t = 500)]
    orders: usize,
    /// Added to every simulated Centra and Cloudshelf request.
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,
    /// Orders in flight at once (10 = one FIFO batch of ten order groups in one Lambda instance).
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
}

fn kiosk_order(n: usize) -> KioskOrder {
    let skus = ["Prod123Var123789S", "Tee01Black-M", "Jeans32Indigo-30"];
    let lines: Vec<KioskOrderLine> = (0..1 + n % 3)
        .map(|i| KioskOrderLine {
            item: ItemRef::Sku(skus[(n + i) % 3].into()),
            sku: Some(skus[(n + i) % 3].into()),
            ean: None,
            quantity: 1 + (i as u32),
            unit_price: Amount::parse("49.00").expect("price"),
            currency: "GBP".into(),
        })
        .collect();
    let shipping = Amount::parse("5.00").expect("price");
    let mut order = KioskOrder {
        event_id: format!("evt_bench_order_{n}"),
        cloudshelf_order_id: format!("gid://cloudshelf/Order/BENCH{n:06}"),
        store: StoreCode::parse(if n.is_multiple_of(2) {
            "LDN-01"
        } else {
            "MAN-01"
        })
        .expect("store"),
        occurred_at: chrono::Utc::now(),
        device: None,
        sales_assistant: None,
        customer: Customer {
            email: format!("shopper{n}@example.com"),
            first_name: None,
            last_name: None,
            phone: None,
        },
        delivery_address: DeliveryAddress {
            lines: vec!["1 High St".into()],
            city: "London".into(),
            postcode: "W1 1AA".into(),
            region: None,
            country: "GB".into(),
        },
        shipping_method: "home-standard".into(),
        shipping_price: shipping,
        payment: KioskPayment {
            provider: "adyen".into(),
            transaction_id: format!("psp_{n}"),
            amount: Amount::ZERO,
            currency: "GBP".into(),
            status: PaymentStatus::Captured,
        },
        lines,
        received_at_ms: 0,
    };
    order.payment.amount = order
        .lines_total()
        .and_then(|t| t.checked_add(shipping))
        .expect("total");
    order
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

pub async fn run(args: BenchOrdersArgs) -> anyhow::Result<()> {
    let centra = CentraSim::start(CentraSimConfig::default()).await;
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let (mappings, secrets) = seed_centra_orders(&centra)?;
    for sku in ["Prod123Var123789S", "Tee01Black-M", "Jeans32Indigo-30"] {
        centra.add_size(sku, None, true);
    }
    let orders: Vec<KioskOrder> = (0..args.orders).map(kiosk_order).collect();
    for order in &orders {
        seed_cloudshelf_order(&cloudshelf, order);
    }
    centra.set_latency(Duration::from_millis(args.latency_ms));
    cloudshelf.set_latency(Duration::from_millis(args.latency_ms));

    let (sync, _outbox) = local_order_sync(
        LocalOrderEndpoints {
            centra_graphql_url: centra.graphql_url(),
            centra_token: centra.token().to_string(),
            cloudshelf_url: cloudshelf.graphql_url(),
            cloudshelf_key: cloudshelf.api_key().to_string(),
            order_api_secrets: secrets,
            timeout: Duration::from_secs(10),
        },
        Arc::new(mappings),
        Arc::new(MemoryLedgerStore::new()),
        system_clock(),
        Arc::new(Metrics::new()),
        // As deployed: every order is recorded in the daybook.
        Some(Arc::new(shared::adapters::memory::MemoryDaybook::new())),
    );
    let sync = &sync;
    let started = Instant::now();
    let results: Vec<(u128, bool)> = futures::stream::iter(orders.iter())
        .map(|order| async move {
            let t = Instant::now();
            let ok = matches!(sync.place(order).await, Ok(OrderOutcome::Reported { .. }));
            (t.elapsed().as_millis(), ok)
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let reported = results.iter().filter(|(_, ok)| *ok).count();
    let mut latencies: Vec<u128> = results.iter().map(|(ms, _)| *ms).collect();
    latencies.sort_unstable();
    let paid = cloudshelf
        .orders()
        .iter()
        .filter(|o| o.status == OrderStatus::Paid && o.third_party_id.is_some())
        .count();

    println!("orders                     {}", args.orders);
    println!(
        "latency per simulated call {} ms (Centra and Cloudshelf)",
        args.latency_ms
    );
    println!("concurrency                {}", args.concurrency);
    println!("reported                   {reported}");
    println!("Centra orders created      {}", centra.orders().len());
    println!("Cloudshelf orders PAID     {paid}");
    println!("wall time                  {:.2} s", elapsed.as_secs_f64());
    println!(
        "orders injected per second {:.1}",
        reported as f64 / elapsed.as_secs_f64()
    );
    println!(
        "per order p50 / p95 / max  {} / {} / {} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(0)
    );
    anyhow::ensure!(
        centra.orders().len() == args.orders && reported == args.orders,
        "every order must become exactly one Centra order"
    );
    Ok(())
}
