//! `shelfsync serve`: the intake on a local port, with the applier and pusher running in process.

use crate::demo::DEMO_SECRET;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use shared::config::{env_opt, load_mappings, mutation_budget_from_env};
use shared::local::{Pipeline, PipelineConfig};
use simulators::centra::{CentraSim, CentraSimConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Start a Centra simulator (seeded with the sample SKUs) instead of using CENTRA_API_URL.
    #[arg(long)]
    simulate_centra: bool,
}

async fn store_events(
    State(p): State<Arc<Pipeline>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let response = shared::intake::http_adapter::handle(&p.intake, &headers, &body).await;
    response.map(axum::body::Body::from)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mappings = Arc::new(load_mappings(true).await?);
    let (per_10s, per_hour) = mutation_budget_from_env()?;
    let mut _sim = None;
    let (centra_url, centra_token) = if args.simulate_centra {
        let sim = CentraSim::start(CentraSimConfig::default()).await;
        for store in mappings.stores() {
            sim.add_warehouse(store.centra_warehouse_id, store.store.as_str());
        }
        for sku in [
            "Prod123Var123789S",
            "Prod123Var123790M",
            "Tee01Black-M",
            "Tee01Black-L",
            "Jeans32Indigo-30",
        ] {
            sim.add_size(sku, None, true);
        }
        let out = (sim.graphql_url(), sim.token().to_string());
        tracing::info!(url = %out.0, "Centra simulator started");
        _sim = Some(sim);
        out
    } else {
        (
            shared::config::env_required("CENTRA_API_URL")?,
            shared::config::resolve_secret("CENTRA_API_TOKEN").await?,
        )
    };
    let secret = match env_opt("STORE_EVENTS_SECRET") {
        Some(s) => s,
        None if args.simulate_centra => DEMO_SECRET.to_string(),
        None => anyhow::bail!("STORE_EVENTS_SECRET is required"),
    };
    let mut config = PipelineConfig::new(centra_url, centra_token, secret);
    config.mutations_per_10s = per_10s;
    config.mutations_per_hour = per_hour;
    config.push_window = Duration::from_millis(500);
    let pipeline = Arc::new(Pipeline::new(config, mappings)?);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    pipeline.spawn_apply_workers(4, stop_rx.clone());
    pipeline.spawn_push_worker(stop_rx, report_tx);
    tokio::spawn(async move {
        while let Some(r) = report_rx.recv().await {
            tracing::info!(
                mutations = r.mutations_applied,
                lines = r.lines_applied,
                rejected = r.lines_rejected,
                "push round"
            );
        }
    });
    let app = Router::new()
        .route("/v1/store-events", post(store_events))
        .with_state(pipeline);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    tracing::info!(
        "listening on http://{}/v1/store-events",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
