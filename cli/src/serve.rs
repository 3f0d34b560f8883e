//! `shelfsync serve`: the intake on a local port, with the applier and pusher running in process.
//!
//! Every answer of the HTTP layer is the contract's JSON error too: a body over 256 KiB (413, not axum's 2 MiB
//! default), a body that cannot be read (400 `malformed_request`), an unknown path (404), another method (405
//! with `Allow`). Only a request hyper cannot parse at all (request line, headers) gets hyper's own bare answer
//! before any of this runs; docs/store-events-v1.md says exactly what.

use crate::demo::DEMO_SECRET;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use shared::config::{env_opt, load_mappings, mutation_budget_from_env};
use shared::intake::http_adapter;
use shared::local::{LocalOrderConfig, Pipeline, PipelineConfig};
use shared::orders::local::LocalOrderEndpoints;
use shared::store_events::MAX_BODY_BYTES;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig};
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

/// The body, or the contract's error for a body axum could not hand over (too large, or unreadable).
fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, axum::response::Response> {
    body.map_err(|rejection| {
        let response = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            http_adapter::payload_too_large()
        } else {
            tracing::info!(error = %rejection.body_text(), "request body could not be read");
            http_adapter::malformed_request()
        };
        response.map(axum::body::Body::from)
    })
}

async fn centra_webhooks(
    State(p): State<Arc<Pipeline>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let body = match body_or_error(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let response = match &p.orders {
        Some(stage) => {
            shared::intake::http_adapter::handle_centra(&stage.centra_webhooks, &headers, &body)
                .await
        }
        None => http_503("orders are not configured (set CLOUDSHELF_API_URL and friends)"),
    };
    response.map(axum::body::Body::from)
}

fn http_503(message: &str) -> axum::http::Response<String> {
    axum::http::Response::builder()
        .status(503)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({ "error": { "code": "orders_disabled", "message": message } })
                .to_string(),
        )
        .expect("static response")
}

async fn store_events(
    State(p): State<Arc<Pipeline>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let body = match body_or_error(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let response = http_adapter::handle(&p.intake, &headers, &body).await;
    response.map(axum::body::Body::from)
}

/// The routes of `serve`, with the contract's JSON errors for everything the HTTP layer refuses itself.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route(http_adapter::STORE_EVENTS_PATH, post(store_events))
        .route(http_adapter::CENTRA_WEBHOOKS_PATH, post(centra_webhooks))
        // After the routes: it applies to the routes already added. axum adds `Allow` to what it answers.
        .method_not_allowed_fallback(|| async {
            http_adapter::method_not_allowed().map(axum::body::Body::from)
        })
        .fallback(|| async { http_adapter::not_found().map(axum::body::Body::from) })
        // The contract's limit; a larger body is refused as it arrives (Content-Length or streamed).
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(pipeline)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut mappings = Arc::new(load_mappings(true).await?);
    let (per_10s, per_hour) = mutation_budget_from_env()?;
    let mut _sim = None;
    let mut _cloudshelf = None;
    let mut orders = None;
    let (centra_url, centra_token) = if args.simulate_centra {
        let sim = CentraSim::start(CentraSimConfig::default()).await;
        let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
        // Simulated Order-API plugins for the example mappings' Centra stores.
        let (order_mappings, secrets) = crate::order_sims::seed_centra_orders(&sim)?;
        mappings = Arc::new(order_mappings);
        orders = Some(LocalOrderConfig {
            endpoints: LocalOrderEndpoints {
                centra_graphql_url: sim.graphql_url(),
                centra_token: sim.token().to_string(),
                cloudshelf_url: cloudshelf.graphql_url(),
                cloudshelf_key: cloudshelf.api_key().to_string(),
                order_api_secrets: secrets,
                timeout: Duration::from_secs(10),
            },
            centra_webhook_secret: env_opt("CENTRA_WEBHOOK_SECRET")
                .unwrap_or_else(|| crate::demo::DEMO_CENTRA_WEBHOOK_SECRET.to_string()),
        });
        tracing::info!(url = %cloudshelf.graphql_url(), "Cloudshelf simulator started (kiosk baskets must be seeded to inject orders)");
        _cloudshelf = Some(cloudshelf);
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
        let url = shared::config::env_required("CENTRA_API_URL")?;
        let token = shared::config::resolve_secret("CENTRA_API_TOKEN").await?;
        if let Some(cloudshelf_url) = env_opt("CLOUDSHELF_API_URL") {
            orders = Some(LocalOrderConfig {
                endpoints: LocalOrderEndpoints {
                    centra_graphql_url: url.clone(),
                    centra_token: token.clone(),
                    cloudshelf_url,
                    cloudshelf_key: shared::config::resolve_secret("CLOUDSHELF_API_KEY").await?,
                    order_api_secrets: shared::orders::wiring::order_api_secrets(&mappings).await?,
                    timeout: Duration::from_secs(20),
                },
                centra_webhook_secret: shared::config::resolve_secret("CENTRA_WEBHOOK_SECRET")
                    .await?,
            });
        }
        (url, token)
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
    config.orders = orders;
    let pipeline = Arc::new(Pipeline::new(config, mappings)?);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Failed order steps are retried after 30 s (the orders queue's visibility timeout, shortened).
    pipeline.spawn_order_worker(30_000, stop_rx.clone());
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
    let app = router(pipeline);
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
