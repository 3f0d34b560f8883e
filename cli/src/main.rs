//! `shelfsync`: run the integration locally, serve store events, validate mappings, sign sample events,
//! benchmark the stock flow, and check a live Centra's schema against ours.

mod bench;
mod bench_orders;
mod centra_check;
mod demo;
mod operator;
mod ops;
mod order_sims;
mod reconcile;
mod serve;
mod trace;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shelfsync",
    about = "Cloudshelf ⇄ Centra integration: local run and operator tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stock flow on embedded defaults with a Centra simulator and show what happened (default).
    Demo,
    /// Listen for signed store events on a local port; push to the Centra at CENTRA_API_URL
    /// (or to a simulator with --simulate-centra).
    Serve(serve::ServeArgs),
    /// Check a mappings file; exits non-zero naming the offending key.
    Validate {
        #[arg(
            long,
            env = "MAPPINGS_PATH",
            default_value = "config/mappings.example.toml"
        )]
        mappings: std::path::PathBuf,
    },
    /// Re-sign a sample API Gateway event (events/webhook-intake.json) with the current time.
    Sign {
        file: std::path::PathBuf,
        #[arg(long, env = "STORE_EVENTS_SECRET", default_value = demo::DEMO_SECRET)]
        secret: String,
    },
    /// List open exception records (a Centra-refused line, a parked kiosk order, an unreadable message) from
    /// the deployed stock table; `exceptions resolve <id> --note …` records that one was dealt with.
    Exceptions(operator::ExceptionsArgs),
    /// Dead-letter queues: `dlq list <stock|stock-push|orders|schedules|archive>`, `dlq redrive <queue>`.
    #[command(subcommand)]
    Dlq(operator::DlqCommand),
    /// Event archive: `archive backfill --from … --to …` fills a gap the archive gap queue names.
    #[command(subcommand)]
    Archive(operator::ArchiveCommand),
    /// Where a store event, an item or a kiosk order has got to: `trace event <webhook id>`,
    /// `trace item --store S --sku X [--since 2d]`, `trace order <cloudshelf id | centra number>`. Reads the
    /// deployed stack (the `exceptions` environment, plus CENTRA_API_URL for Centra's side) or `--serve URL`.
    Trace(trace::TraceArgs),
    /// Kiosk orders: `orders retry <cloudshelf order id>` re-opens an order parked in exception.
    #[command(subcommand)]
    Orders(operator::OrdersCommand),
    /// After fixing what Centra refused: clear the item's block and push what the store reported since.
    Unblock {
        #[arg(long)]
        store: String,
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        ean: Option<String>,
        /// For an item parked on a push whose outcome Centra's audit trail did not settle: Centra holds it.
        #[arg(long, conflicts_with = "not_applied")]
        applied: bool,
        /// …or Centra does not hold it (it goes out with the next push).
        #[arg(long)]
        not_applied: bool,
    },
    /// Run one reconciliation job now (stock-drift, availability, sku-audit, stalled-orders,
    /// finance-close) and write its report files.
    Reconcile(reconcile::ReconcileArgs),
    /// Benchmark: a burst of store events through intake, applier and pusher against the simulator.
    BenchSync(bench::BenchArgs),
    /// Benchmark: kiosk orders injected into the Centra simulator (Order API) and reported to Cloudshelf.
    BenchOrders(bench_orders::BenchOrdersArgs),
    /// Compare a live Centra's schema (introspection) with ours, confirm or refute each UNVERIFIED
    /// element, and name our documents it rejects. Exit 0: all valid; 1: a document is not; 2: no answer.
    CentraCheck(centra_check::CentraCheckArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => {
            // The demo prints its own report; logs only for RUST_LOG=… runs.
            shared::telemetry::logs::init_text_logs("off");
            demo::run().await
        }
        Command::Serve(args) => {
            shared::telemetry::logs::init_text_logs("info");
            serve::run(args).await
        }
        Command::Validate { mappings } => {
            let text = std::fs::read_to_string(&mappings)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", mappings.display()))?;
            match shared::config::mappings::Mappings::from_toml(&text) {
                Ok(m) => {
                    println!(
                        "{}: {} stores mapped, all valid",
                        mappings.display(),
                        m.stores().count()
                    );
                    for s in m.stores() {
                        println!(
                            "  {:<10} → Centra warehouse {:<6} Cloudshelf {}",
                            s.store, s.centra_warehouse_id, s.cloudshelf_location
                        );
                        match &s.orders {
                            Some(o) => println!(
                                "  {:<10}   kiosk orders → Order-API store {}, market {}, pricelist {} ({}), shipping {}",
                                "",
                                o.order_api,
                                o.market_id,
                                o.pricelist_id,
                                o.currency,
                                o.shipping
                                    .iter()
                                    .map(|(k, v)| format!("{k}→{v}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            None => println!("  {:<10}   kiosk orders: not taken", ""),
                        }
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{}: {e}", mappings.display());
                    std::process::exit(1);
                }
            }
        }
        Command::Sign { file, secret } => {
            let text = std::fs::read_to_string(&file)?;
            let mut event: serde_json::Value = serde_json::from_str(&text)?;
            let body = event["body"].as_str().unwrap_or_default().to_string();
            let id = event["headers"]["webhook-id"]
                .as_str()
                .unwrap_or("evt_sample_0001")
                .to_string();
            let ts = chrono::Utc::now().timestamp();
            event["headers"]["webhook-timestamp"] = serde_json::json!(ts.to_string());
            event["headers"]["webhook-signature"] = serde_json::json!(
                shared::intake::signature::sign(&secret, &id, ts, body.as_bytes())
            );
            std::fs::write(&file, serde_json::to_string_pretty(&event)? + "\n")?;
            println!("re-signed {} at {ts}", file.display());
            Ok(())
        }
        Command::Exceptions(args) => operator::exceptions(args).await,
        Command::Trace(args) => trace::run(args).await,
        Command::Dlq(command) => operator::dlq(command).await,
        Command::Orders(command) => operator::orders(command).await,
        Command::Archive(command) => operator::archive(command).await,
        Command::Unblock {
            store,
            sku,
            ean,
            applied,
            not_applied,
        } => {
            let verdict = match (applied, not_applied) {
                (true, _) => Some(shared::stock::push::PushVerdict::Applied),
                (_, true) => Some(shared::stock::push::PushVerdict::NotApplied),
                _ => None,
            };
            ops::unblock(store, sku, ean, verdict).await
        }
        Command::Reconcile(args) => {
            shared::telemetry::logs::init_text_logs("warn");
            reconcile::run(args).await
        }
        Command::BenchOrders(args) => {
            shared::telemetry::logs::init_text_logs("error");
            bench_orders::run(args).await
        }
        Command::CentraCheck(args) => centra_check::run(args).await,
        Command::BenchSync(args) => {
            shared::telemetry::logs::init_text_logs("error");
            bench::run(args).await
        }
    }
}
