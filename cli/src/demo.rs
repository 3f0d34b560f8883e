//! `shelfsync demo`: the main job on embedded defaults. Starts a Centra simulator, sends signed store
//! events through the real intake, lets the applier and pusher run, and shows what happened.

use shared::config::mappings::Mappings;
use shared::core::ids::ItemRef;
use shared::intake::centra_webhooks::{sign_centra, CentraWebhookRequest};
use shared::intake::signature::sign;
use shared::intake::store_events::IntakeRequest;
use shared::stock::ports::ExceptionLog;
use shared::wiring::local::{LocalOrderConfig, Pipeline, PipelineConfig};
use shared::wiring::local_orders::LocalOrderEndpoints;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, OrderSeed, OrderStatus};
use std::sync::Arc;
use std::time::Duration;

pub const DEMO_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The local Centra webhook plugin's endpoint secret.
pub const DEMO_CENTRA_WEBHOOK_SECRET: &str = "centra-demo-endpoint-secret";

/// `application/x-www-form-urlencoded` value encoding (unreserved characters kept).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn kiosk_order_body(
    occurred_at: &str,
    order_id: &str,
    store: &str,
    shipping_method: &str,
) -> String {
    serde_json::json!({
        "type": "order.placed", "occurred_at": occurred_at, "store": store,
        "cloudshelf_order_id": order_id, "device": "gid://cloudshelf/Device/kiosk-1",
        "customer": { "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee" },
        "delivery_address": { "lines": ["1 High St", "Flat 2"], "city": "London", "postcode": "W1 1AA", "country": "GB" },
        "shipping_method": shipping_method, "shipping_price": "5.00",
        "payment": { "provider": "adyen", "transaction_id": format!("psp-{order_id}"), "amount": "128.00",
                     "currency": "GBP", "status": "captured" },
        "lines": [
            { "sku": "Prod123Var123789S", "quantity": 2, "unit_price": "49.00", "currency": "GBP" },
            { "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "GBP" }
        ]
    })
    .to_string()
}

/// The basket Cloudshelf holds for a kiosk order (what order sync checks the event against).
fn seed_kiosk_basket(cloudshelf: &CloudshelfSim, order_id: &str) {
    cloudshelf.add_order(OrderSeed {
        id: order_id.to_string(),
        status: OrderStatus::DraftBasket,
        lines: vec![
            (
                "gid://external/CentraProductSize/Prod123Var123789S".into(),
                2,
                49.0,
                "GBP".into(),
            ),
            (
                "gid://external/CentraProductSize/Tee01Black-M".into(),
                1,
                25.0,
                "GBP".into(),
            ),
        ],
        updated_at: chrono::Utc::now(),
        ..Default::default()
    });
}

struct Step {
    label: &'static str,
    id: String,
    body: String,
    /// Sign with the right secret (false: a forged request).
    signed: bool,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A sample size Centra knows but refuses in stock mutations (made inactive there, say).
const REFUSED_SKU: &str = "Scarf02Grey-OS";

/// The sample catalogue: six sizes, 20 units of each in every mapped store's warehouse.
pub fn seed_simulator(sim: &CentraSim, mappings: &Mappings) {
    let catalogue = [
        ("Prod123Var123789S", Some("7350000000029")),
        ("Prod123Var123790M", Some("7350000000012")),
        ("Tee01Black-M", None),
        ("Tee01Black-L", None),
        ("Jeans32Indigo-30", None),
        (REFUSED_SKU, None),
    ];
    for store in mappings.stores() {
        sim.add_warehouse(
            store.centra_warehouse_id,
            store.name.as_deref().unwrap_or(store.store.as_str()),
        );
    }
    for (sku, ean) in catalogue {
        sim.add_size(sku, ean, true);
        for store in mappings.stores() {
            sim.set_physical(store.centra_warehouse_id, sku, 20);
        }
    }
}

pub async fn run() -> anyhow::Result<()> {
    let sim = CentraSim::start(CentraSimConfig::default()).await;
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    // The embedded example mappings, with the Order-API plugin URLs pointing at the simulator.
    let (order_mappings, order_api_secrets) = crate::order_sims::seed_centra_orders(&sim)?;
    let mappings = Arc::new(order_mappings);
    seed_simulator(&sim, &mappings);
    sim.refuse_size(
        REFUSED_SKU,
        Some(simulators::centra::SizeRefusal {
            kind: simulators::centra::RefusalKind::Error,
            message: format!("Product size {REFUSED_SKU} is inactive"),
        }),
    );

    let mut config = PipelineConfig::new(sim.graphql_url(), sim.token(), DEMO_SECRET);
    config.orders = Some(LocalOrderConfig {
        endpoints: LocalOrderEndpoints {
            centra_graphql_url: sim.graphql_url(),
            centra_token: sim.token().to_string(),
            cloudshelf_url: cloudshelf.graphql_url(),
            cloudshelf_key: cloudshelf.api_key().to_string(),
            order_api_secrets,
            timeout: Duration::from_secs(5),
        },
        centra_webhook_secret: DEMO_CENTRA_WEBHOOK_SECRET.to_string(),
    });
    let pipeline = Arc::new(Pipeline::new(config, mappings.clone())?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = pipeline.spawn_apply_workers(2, stop_rx.clone());
    workers.extend(pipeline.spawn_order_worker(1_000, stop_rx.clone()));
    workers.push(pipeline.spawn_push_worker(stop_rx, report_tx));

    let kiosk_order_ok = "gid://cloudshelf/Order/01JDEMOKIOSK0001";
    let kiosk_order_unmapped = "gid://cloudshelf/Order/01JDEMOKIOSK0002";
    seed_kiosk_basket(&cloudshelf, kiosk_order_ok);
    seed_kiosk_basket(&cloudshelf, kiosk_order_unmapped);

    let now = chrono::Utc::now().timestamp_millis();
    let minute = 60_000;
    let sale = serde_json::json!({
        "type": "stock.sale", "occurred_at": iso(now - 30 * minute), "store": "LDN-01", "sequence": 18342,
        "reference": "till-7/receipt-99812",
        "lines": [
            { "sku": "Prod123Var123789S", "quantity": 2, "unit_price": "49.00", "currency": "GBP" },
            { "ean": "7350000000012", "quantity": 1, "unit_price": "15.00", "currency": "GBP" }
        ]
    })
    .to_string();
    let mut altered = serde_json::from_str::<serde_json::Value>(&sale)?;
    altered["lines"][0]["quantity"] = serde_json::json!(3);
    let steps = vec![
        Step { label: "sale at LDN-01 (contract example)", id: "evt_demo_sale_1".into(), body: sale.clone(), signed: true },
        Step { label: "same sale again (sender retry)", id: "evt_demo_sale_1".into(), body: sale, signed: true },
        Step { label: "same id, different body", id: "evt_demo_sale_1".into(), body: altered.to_string(), signed: true },
        Step {
            label: "return at LDN-01",
            id: "evt_demo_return_1".into(),
            body: serde_json::json!({ "type": "stock.return", "occurred_at": iso(now - 25 * minute), "store": "LDN-01",
                "lines": [{ "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "GBP" }] }).to_string(),
            signed: true,
        },
        Step {
            label: "stock count at MAN-01",
            id: "evt_demo_count_1".into(),
            body: serde_json::json!({ "type": "stock.count", "occurred_at": iso(now - 20 * minute), "store": "MAN-01",
                "lines": [{ "sku": "Tee01Black-L", "quantity": 7 }] }).to_string(),
            signed: true,
        },
        Step {
            label: "sale at MAN-01 after the count",
            id: "evt_demo_sale_2".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - 15 * minute), "store": "MAN-01",
                "lines": [{ "sku": "Tee01Black-L", "quantity": 1, "unit_price": "25.00", "currency": "GBP" }] }).to_string(),
            signed: true,
        },
        Step {
            label: "older count arriving late (stale)",
            id: "evt_demo_count_0".into(),
            body: serde_json::json!({ "type": "stock.count", "occurred_at": iso(now - 50 * minute), "store": "MAN-01",
                "lines": [{ "sku": "Tee01Black-L", "quantity": 30 }] }).to_string(),
            signed: true,
        },
        Step {
            label: "damage write-off at STO-01",
            id: "evt_demo_adj_1".into(),
            body: serde_json::json!({ "type": "stock.adjustment", "occurred_at": iso(now - 10 * minute), "store": "STO-01",
                "reason": "damaged", "lines": [{ "sku": "Jeans32Indigo-30", "quantity": -1 }] }).to_string(),
            signed: true,
        },
        Step {
            label: "sale naming a SKU Centra does not know",
            id: "evt_demo_sale_3".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - 6 * minute), "store": "EDI-01",
                "lines": [
                    { "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "GBP" },
                    { "sku": "NOPE-404", "quantity": 1, "unit_price": "10.00", "currency": "GBP" }
                ] }).to_string(),
            signed: true,
        },
        Step {
            label: "sale at EDI-01 of a size Centra then refuses",
            id: "evt_demo_sale_4".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - 5 * minute), "store": "EDI-01",
                "lines": [
                    { "sku": REFUSED_SKU, "quantity": 1, "unit_price": "10.00", "currency": "GBP" },
                    { "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "GBP" }
                ] }).to_string(),
            signed: true,
        },
        Step {
            label: "kiosk order at LDN-01 for home delivery",
            id: "evt_demo_order_1".into(),
            body: kiosk_order_body(&iso(now - 2 * minute), kiosk_order_ok, "LDN-01", "home-standard"),
            signed: true,
        },
        Step {
            label: "same kiosk order again (kiosk retry)",
            id: "evt_demo_order_1".into(),
            body: kiosk_order_body(&iso(now - 2 * minute), kiosk_order_ok, "LDN-01", "home-standard"),
            signed: true,
        },
        Step {
            label: "kiosk order at MAN-01, express (not mapped there)",
            id: "evt_demo_order_2".into(),
            body: kiosk_order_body(&iso(now - minute), kiosk_order_unmapped, "MAN-01", "home-express"),
            signed: true,
        },
        Step {
            label: "invalid quantity",
            id: "evt_demo_bad_1".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - minute), "store": "LDN-01",
                "lines": [{ "sku": "Tee01Black-M", "quantity": 0, "unit_price": "25.00", "currency": "GBP" }] }).to_string(),
            signed: true,
        },
        Step {
            label: "unknown store",
            id: "evt_demo_bad_2".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - minute), "store": "PAR-09",
                "lines": [{ "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "EUR" }] }).to_string(),
            signed: true,
        },
        Step {
            label: "forged signature",
            id: "evt_demo_forged".into(),
            body: serde_json::json!({ "type": "stock.sale", "occurred_at": iso(now - minute), "store": "LDN-01",
                "lines": [{ "sku": "Tee01Black-M", "quantity": 5, "unit_price": "25.00", "currency": "GBP" }] }).to_string(),
            signed: false,
        },
    ];

    let touched: Vec<(&str, &str)> = vec![
        ("LDN-01", "Prod123Var123789S"),
        ("LDN-01", "Prod123Var123790M"),
        ("LDN-01", "Tee01Black-M"),
        ("MAN-01", "Tee01Black-L"),
        ("STO-01", "Jeans32Indigo-30"),
        ("EDI-01", "Tee01Black-M"),
        ("EDI-01", REFUSED_SKU),
    ];
    let centra_stock = |store: &str, sku: &str| {
        let wh = mappings.store(store).expect("mapped").centra_warehouse_id;
        sim.stock(wh, sku).map(|s| s.physical).unwrap_or(0)
    };
    let before: Vec<i64> = touched.iter().map(|(s, k)| centra_stock(s, k)).collect();

    println!("Store events → intake (POST /v1/store-events)\n");
    println!("  {:<50} {:>6}  answer", "event", "status");
    for step in &steps {
        let ts = chrono::Utc::now().timestamp();
        let signature = if step.signed {
            sign(DEMO_SECRET, &step.id, ts, step.body.as_bytes())
        } else {
            sign(
                "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGhlLWRlbW8=",
                &step.id,
                ts,
                step.body.as_bytes(),
            )
        };
        let ts_text = ts.to_string();
        let response = pipeline
            .intake
            .handle(IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some(&step.id),
                webhook_timestamp: Some(&ts_text),
                webhook_signature: Some(&signature),
                body: step.body.as_bytes(),
            })
            .await;
        println!(
            "  {:<50} {:>6}  {}",
            step.label, response.status, response.body
        );
    }

    // Wait until the flow has settled (queues empty, every row pushed or blocked).
    let started = std::time::Instant::now();
    while !pipeline.is_settled() {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the flow did not settle within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();

    // Centra side: the customer returns one T-shirt; Centra refunds it and calls its webhook (three times, as
    // a plugin with retries may).
    let centra_orders = sim.orders();
    let mut webhook_answers = Vec::new();
    if let Some(first) = centra_orders.first() {
        let return_id = sim.refund(first.number, 25.0);
        let payload = serde_json::json!({ "events": [
            { "type": "return", "action": "insert", "date": "2026-11-28 16:40:58.628033", "id": return_id },
            { "type": "customer", "action": "update", "date": "2026-11-28 16:40:58.700000", "id": 77 }
        ]})
        .to_string();
        let body = format!("payload={}", form_encode(&payload));
        let stage = pipeline.orders.as_ref().expect("orders enabled");
        for _ in 0..3 {
            let t = chrono::Utc::now().timestamp();
            let signature = sign_centra(DEMO_CENTRA_WEBHOOK_SECRET, t, body.as_bytes());
            let answer = stage
                .centra_webhooks
                .handle(CentraWebhookRequest {
                    content_type: Some("application/x-www-form-urlencoded"),
                    signature: Some(&signature),
                    body: body.as_bytes(),
                })
                .await;
            webhook_answers.push(answer);
        }
        let started = std::time::Instant::now();
        while !pipeline.is_settled() {
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("the order lifecycle did not settle within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    let mut lags = Vec::new();
    while let Ok(r) = report_rx.try_recv() {
        lags.extend(r.since_accepted_ms);
    }

    println!("\nCentra stock (physical) per store warehouse and SKU\n");
    println!(
        "  {:<8} {:<20} {:>7} {:>7}  ledger",
        "store", "SKU", "before", "after"
    );
    for ((store, sku), before) in touched.iter().zip(before) {
        let item = ItemRef::Sku(sku.to_string());
        let row = pipeline
            .ledger
            .all_rows()
            .into_iter()
            .find(|r| r.store.as_str() == *store && r.item == item);
        let ledger = match &row {
            Some(r) => format!(
                "movements {}, stale ignored {}, {}",
                r.version,
                r.stale_ignored,
                if r.blocked.is_some() {
                    "parked (see the exception below)"
                } else if r.has_unpushed() {
                    "waiting for Centra"
                } else {
                    "in Centra"
                }
            ),
            None => "EAN-keyed row (see below)".into(),
        };
        println!(
            "  {:<8} {:<20} {:>7} {:>7}  {}",
            store,
            sku,
            before,
            centra_stock(store, sku),
            ledger
        );
    }

    println!("\nKiosk orders → Centra (Order API) → Cloudshelf\n");
    for o in &centra_orders {
        println!(
            "  Centra order {}  store {} market {} pricelist {} shipping {}  {} customer  total {:.2} {}",
            o.number,
            o.store_id,
            o.market_id,
            o.pricelist_id,
            o.shipping_uri.as_deref().unwrap_or("-"),
            if o.customer.is_guest { "guest" } else { "registered" },
            o.grand_total,
            o.currency
        );
        let lines: Vec<String> = o
            .lines
            .iter()
            .map(|l| format!("{} × {} at {:.2}", l.qty, l.sku, l.unit_price))
            .collect();
        println!("      lines: {}", lines.join(", "));
        println!(
            "      tag: {}",
            o.internal_comment.as_deref().unwrap_or("-")
        );
    }
    for id in [kiosk_order_ok, kiosk_order_unmapped] {
        if let Some(o) = cloudshelf.order(id) {
            println!(
                "  Cloudshelf {id}: status {}, thirdPartyId {}",
                o.status.as_str(),
                o.third_party_id.as_deref().unwrap_or("-")
            );
        }
    }
    for answer in &webhook_answers {
        println!(
            "  Centra webhook (return refunded)  {}  {}",
            answer.status, answer.body
        );
    }
    println!(
        "  Cloudshelf order updates: {} (injection + one lifecycle change; the repeated webhooks changed nothing)",
        cloudshelf.upsert_count()
    );

    let exceptions = pipeline.ledger.list(None).await?;
    println!("\nExceptions for operators ({})\n", exceptions.len());
    for e in &exceptions {
        println!(
            "  [{}] store {} item {} events {:?}\n      {}",
            e.kind,
            e.store,
            e.item.as_deref().unwrap_or("-"),
            e.event_ids,
            e.message,
        );
        if let Some(key) = &e.mapping_key {
            println!("      mapping key to add: {key}");
        }
        if let Some(c) = &e.centra_message {
            println!("      Centra said: {c}");
        }
    }

    println!("\nCounters\n");
    for (name, value) in pipeline.metrics.counts() {
        println!("  {name:<28} {value}");
    }
    println!(
        "  {:<28} {}",
        "Centra mutations applied",
        sim.mutation_count()
    );
    println!("  {:<28} {}", "Centra requests", sim.request_count());
    lags.sort_unstable();
    if let Some(max) = lags.last() {
        println!(
            "  {:<28} {} movements, max {} ms from acceptance to Centra",
            "sync lag",
            lags.len(),
            max
        );
    }
    // What an operator's `shelfsync trace event evt_demo_sale_1` would show for the first sale.
    let what = crate::trace::TraceCommand::Event {
        webhook_id: "evt_demo_sale_1".into(),
    };
    let trace = crate::trace::build(&pipeline.trace_sources(), &what).await?;
    println!("\nshelfsync trace event evt_demo_sale_1\n");
    print!("{}", crate::trace::render(&trace));
    println!("\nSettled in {} ms.", elapsed.as_millis());
    sim.shutdown().await;
    cloudshelf.shutdown().await;
    Ok(())
}
