//! `shelfsync serve`: the intake on a local port, with the applier and pusher running in process.
//!
//! Every answer of the HTTP layer is the contract's JSON error too: a body over 256 KiB (413, not axum's 2 MiB
//! default), a body that cannot be read (400 `malformed_request`), an unknown path (404), another method (405
//! with `Allow`). Only a request hyper cannot parse at all (request line, headers) gets hyper's own bare answer
//! before any of this runs; docs/store-events-v1.md says exactly what.

use crate::demo::DEMO_SECRET;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use shared::adapters::aws::settings::load_mappings;
use shared::config::env::{env_opt, mutation_budget_from_env};
use shared::events::store_events::MAX_BODY_BYTES;
use shared::intake::http as http_adapter;
use shared::wiring::local::{LocalOrderConfig, Pipeline, PipelineConfig};
use shared::wiring::local_orders::LocalOrderEndpoints;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// 0 picks a free port; the first line on stdout says which (`{"url": "http://127.0.0.1:…"}`).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Start a Centra simulator (seeded with the sample SKUs) instead of using CENTRA_API_URL.
    #[arg(long)]
    simulate_centra: bool,
    /// Stop when stdin closes (a test harness that dies leaves no server behind).
    #[arg(long)]
    exit_with_stdin: bool,
}

/// The headers and body, or the contract's error for a body that cannot be handed over: 413 when it is
/// announced (Content-Length) or turns out (streamed) larger than the contract's limit, 400 when its framing
/// is broken or the connection ends early.
async fn read_request(request: Request) -> Result<(HeaderMap, Bytes), axum::response::Response> {
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Refused before reading a byte of it; `DefaultBodyLimit` alone would read 256 KiB first.
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(http_adapter::payload_too_large().map(Body::from));
    }
    let headers = request.headers().clone();
    match Bytes::from_request(request, &()).await {
        Ok(body) => Ok((headers, body)),
        Err(rejection) => Err(body_rejection(rejection).map(Body::from)),
    }
}

fn body_rejection(rejection: BytesRejection) -> axum::http::Response<String> {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        http_adapter::payload_too_large()
    } else {
        tracing::info!(error = %rejection.body_text(), "request body could not be read");
        http_adapter::malformed_request()
    }
}

async fn centra_webhooks(
    State(p): State<Arc<Pipeline>>,
    request: Request,
) -> axum::response::Response {
    let (headers, body) = match read_request(request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let response = match &p.orders {
        Some(stage) => {
            shared::intake::http::handle_centra(&stage.centra_webhooks, &headers, &body).await
        }
        None => http_503("orders are not configured (set CLOUDSHELF_API_URL and friends)"),
    };
    response.map(Body::from)
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
    request: Request,
) -> axum::response::Response {
    let (headers, body) = match read_request(request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let response = http_adapter::handle(&p.intake, &headers, &body).await;
    response.map(axum::body::Body::from)
}

/// `GET /ops/status`: whether everything accepted has reached Centra (or is parked), for an operator or a
/// black-box test waiting for the flow to settle.
async fn ops_status(State(p): State<Arc<Pipeline>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "settled": p.is_settled(),
        "stock_queue": p.stock_queue.len(),
        "push_queue": p.push_queue.len(),
    }))
}

/// `GET /ops/exceptions`: what an operator must look at (`shelfsync exceptions` of the deployed stack).
async fn ops_exceptions(State(p): State<Arc<Pipeline>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    use shared::stock::ports::ExceptionLog;
    match p.ledger.list(None).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => http_adapter::to_http(shared::intake::contract::IntakeResponse::error(
            503,
            "unavailable",
            None,
            e.to_string(),
        ))
        .map(Body::from),
    }
}

/// A JSON error of the contract's shape for the local operator endpoints.
fn ops_error(status: u16, code: &str, message: impl Into<String>) -> axum::response::Response {
    http_adapter::to_http(shared::intake::contract::IntakeResponse::error(
        status,
        code,
        None,
        message.into(),
    ))
    .map(Body::from)
}

/// The embedded queue behind a DLQ name: serve keeps dead letters for the stock and orders FIFO queues only.
/// The error is the refusal (status, code, message).
fn local_dlq(
    p: &Pipeline,
    name: &str,
) -> Result<
    (
        shared::ops::dlq::DlqName,
        Arc<shared::adapters::memory::MemoryFifoQueue>,
    ),
    (u16, &'static str, String),
> {
    use shared::ops::dlq::DlqName;
    let queue = DlqName::parse(name).map_err(|e| (400, "unknown_queue", e))?;
    match queue {
        DlqName::Stock => Ok((queue, p.stock_queue.clone())),
        DlqName::Orders => match &p.orders {
            Some(o) => Ok((queue, o.queue.clone())),
            None => Err((
                404,
                "orders_disabled",
                "serve runs without kiosk orders".into(),
            )),
        },
        other => Err((
            404,
            "not_kept_locally",
            format!(
                "serve keeps no {} DLQ (only stock and orders)",
                other.as_str()
            ),
        )),
    }
}

#[derive(serde::Deserialize)]
struct ActionQuery {
    #[serde(default)]
    dry_run: bool,
    by: Option<String>,
    max: Option<usize>,
}

/// `GET /ops/dlq/{stock|orders}`: the dead letters, decoded, with our records about each.
async fn ops_dlq_list(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use shared::ops::dlq;
    let (queue, fifo) = match local_dlq(&p, &name) {
        Ok(q) => q,
        Err((status, code, message)) => return ops_error(status, code, message),
    };
    let no_orders = shared::orders::outbox::MemoryOrderOutbox::new();
    let outbox: &dyn shared::orders::outbox::OrderOutbox = match &p.orders {
        Some(o) => o.outbox.as_ref(),
        None => &no_orders,
    };
    let mut messages = Vec::new();
    for letter in fifo.dead_letters() {
        let decoded = dlq::decode(queue, &letter.body);
        let recorded = match dlq::recorded_errors(&decoded, p.ledger.as_ref(), outbox).await {
            Ok(r) => r,
            Err(e) => return ops_error(503, "unavailable", e.to_string()),
        };
        messages.push(serde_json::json!({
            "message": letter, "decoded": decoded, "summary": dlq::describe(&decoded), "recorded": recorded
        }));
    }
    axum::Json(serde_json::json!({
        "queue": queue.as_str(), "count": messages.len(), "messages": messages
    }))
    .into_response()
}

/// `POST /ops/dlq/{stock|orders}/redrive?max=&dry_run=`: dead letters back to their groups, in order.
async fn ops_dlq_redrive(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<ActionQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (queue, fifo) = match local_dlq(&p, &name) {
        Ok(q) => q,
        Err((status, code, message)) => return ops_error(status, code, message),
    };
    let max = q.max.unwrap_or(1000);
    let moved = if q.dry_run {
        fifo.dead_letters().into_iter().take(max).collect()
    } else {
        fifo.redrive(max)
    };
    axum::Json(serde_json::json!({
        "queue": queue.as_str(), "dry_run": q.dry_run,
        "by": shared::ops::operator_name(q.by), "messages": moved
    }))
    .into_response()
}

/// `POST /ops/orders/retry/{cloudshelf order id}?dry_run=&by=`: the same retry as against the stack.
async fn ops_orders_retry(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<ActionQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(orders) = &p.orders else {
        return ops_error(404, "orders_disabled", "serve runs without kiosk orders");
    };
    let request = shared::ops::order_retry::RetryRequest {
        cloudshelf_order_id: id.clone(),
        by: shared::ops::operator_name(q.by),
        dry_run: q.dry_run,
        lookup_margin_ms: shared::orders::sync::OrderSyncSettings::default().lookup_margin_ms,
    };
    match shared::ops::order_retry::retry_order(
        orders.outbox.as_ref(),
        &p.pusher.centra,
        orders.queue.as_ref(),
        p.clock.as_ref(),
        &request,
    )
    .await
    {
        Ok(outcome) => axum::Json(serde_json::json!({
            "message": crate::operator::describe_retry(&id, &request.by, &outcome)
        }))
        .into_response(),
        Err(e) => ops_error(409, "not_retried", e.to_string()),
    }
}

fn trace_answer(trace: anyhow::Result<shared::ops::trace::Trace>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match trace {
        Ok(trace) => axum::Json(trace).into_response(),
        Err(e) => http_adapter::to_http(shared::intake::contract::IntakeResponse::error(
            400,
            "trace_failed",
            None,
            e.to_string(),
        ))
        .map(Body::from),
    }
}

/// `GET /ops/trace/event/{webhook id}`: `shelfsync trace event` of this process.
async fn ops_trace_event(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Path(webhook_id): axum::extract::Path<String>,
) -> axum::response::Response {
    let what = crate::trace::TraceCommand::Event { webhook_id };
    trace_answer(crate::trace::build(&p.trace_sources(), &what).await)
}

#[derive(serde::Deserialize)]
struct ItemQuery {
    store: String,
    sku: Option<String>,
    ean: Option<String>,
    since: Option<String>,
}

/// `GET /ops/trace/item?store=&sku=|ean=[&since=2d]`.
async fn ops_trace_item(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Query(q): axum::extract::Query<ItemQuery>,
) -> axum::response::Response {
    let what = crate::trace::TraceCommand::Item {
        store: q.store,
        sku: q.sku,
        ean: q.ean,
        since: q.since,
    };
    trace_answer(crate::trace::build(&p.trace_sources(), &what).await)
}

/// `GET /ops/trace/order/{cloudshelf order id | centra order number}` (the id percent-encoded, or as is: the
/// route takes the rest of the path, slashes included).
async fn ops_trace_order(
    State(p): State<Arc<Pipeline>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    let what = crate::trace::TraceCommand::Order { id };
    trace_answer(crate::trace::build(&p.trace_sources(), &what).await)
}

/// The routes of `serve`, with the contract's JSON errors for everything the HTTP layer refuses itself.
/// `/ops/*` is the local operator's view (serve listens on loopback only).
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route(http_adapter::STORE_EVENTS_PATH, post(store_events))
        .route(http_adapter::CENTRA_WEBHOOKS_PATH, post(centra_webhooks))
        .route("/ops/status", axum::routing::get(ops_status))
        .route("/ops/exceptions", axum::routing::get(ops_exceptions))
        .route("/ops/trace/event/{id}", axum::routing::get(ops_trace_event))
        .route("/ops/trace/item", axum::routing::get(ops_trace_item))
        .route(
            "/ops/trace/order/{*id}",
            axum::routing::get(ops_trace_order),
        )
        .route("/ops/dlq/{queue}", axum::routing::get(ops_dlq_list))
        .route("/ops/dlq/{queue}/redrive", post(ops_dlq_redrive))
        .route("/ops/orders/retry/{*id}", post(ops_orders_retry))
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
        let url = shared::config::env::env_required("CENTRA_API_URL")?;
        let token = shared::adapters::aws::settings::resolve_secret("CENTRA_API_TOKEN").await?;
        if let Some(cloudshelf_url) = env_opt("CLOUDSHELF_API_URL") {
            orders = Some(LocalOrderConfig {
                endpoints: LocalOrderEndpoints {
                    centra_graphql_url: url.clone(),
                    centra_token: token.clone(),
                    cloudshelf_url,
                    cloudshelf_key: shared::adapters::aws::settings::resolve_secret(
                        "CLOUDSHELF_API_KEY",
                    )
                    .await?,
                    order_api_secrets: shared::wiring::orders::order_api_secrets(&mappings).await?,
                    timeout: Duration::from_secs(20),
                },
                centra_webhook_secret: shared::adapters::aws::settings::resolve_secret(
                    "CENTRA_WEBHOOK_SECRET",
                )
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
    // The same settings, and the same rule between them, as the stock-push function.
    let lease_seconds: i64 = shared::config::env::env_parse("PUSH_LEASE_SECONDS", 150)?;
    let timeout_seconds: u64 = shared::config::env::env_parse("CENTRA_TIMEOUT_SECONDS", 10)?;
    anyhow::ensure!(
        lease_seconds > timeout_seconds as i64,
        "PUSH_LEASE_SECONDS must exceed CENTRA_TIMEOUT_SECONDS"
    );
    config.push.lease_ms = lease_seconds * 1000;
    config.centra_timeout = Duration::from_secs(timeout_seconds);
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
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}/v1/store-events");
    // The one line on stdout (logs go to stderr): where to send events.
    println!("{}", serde_json::json!({ "url": format!("http://{addr}") }));
    let stdin_closed = async move {
        if !args.exit_with_stdin {
            return std::future::pending().await;
        }
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
        })
        .await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = stdin_closed => {}
            }
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The HTTP layer over real TCP: what a sender sees for every refusal that never reaches the intake.
    use super::*;
    use shared::config::mappings::Mappings;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start() -> SocketAddr {
        // Intake never calls Centra: any URL will do.
        let config = PipelineConfig::new("http://127.0.0.1:9/graphql", "token", DEMO_SECRET);
        let pipeline =
            Arc::new(Pipeline::new(config, Arc::new(Mappings::embedded_default())).unwrap());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(pipeline)).await });
        addr
    }

    /// Sends raw bytes (then closes the sending half when `half_close`) and reads one response: its head, and
    /// the body its Content-Length announces (the server may keep the connection open to drain a request body).
    async fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        if half_close {
            stream.shutdown().await.unwrap();
        }
        let read = async {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let text = String::from_utf8_lossy(&out).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .expect("a content-length");
                    if body.len() >= length {
                        return text;
                    }
                }
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return text,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the server answers")
    }

    /// Status line, lower-cased headers, body.
    fn parse(response: &str) -> (String, String, String) {
        let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
        let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        (
            status.to_string(),
            headers.to_ascii_lowercase(),
            body.to_string(),
        )
    }

    fn error_code(body: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert!(v["error"]["message"].is_string(), "{body}");
        v["error"]["code"]
            .as_str()
            .expect("an error code")
            .to_string()
    }

    #[tokio::test]
    async fn http_layer_refusals_are_the_contracts_json_errors() {
        let addr = start().await;
        let cases: Vec<(&str, String, bool, &str, &str)> = vec![
            (
                "a body over 256 KiB (below axum's 2 MiB default)",
                format!(
                    "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    300 * 1024
                ),
                false,
                "HTTP/1.1 413",
                "payload_too_large",
            ),
            (
                "a streamed (chunked) body over 256 KiB",
                format!(
                    "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                    300 * 1024,
                    "x".repeat(300 * 1024)
                ),
                false,
                "HTTP/1.1 413",
                "payload_too_large",
            ),
            (
                "a chunked body with a broken chunk size",
                "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                    .to_string(),
                false,
                "HTTP/1.1 400",
                "malformed_request",
            ),
            (
                "a body shorter than its Content-Length (connection closed)",
                "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{\"a\":"
                    .to_string(),
                true,
                "HTTP/1.1 400",
                "malformed_request",
            ),
            (
                "an unknown path",
                "GET /v2/store-events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
                false,
                "HTTP/1.1 404",
                "not_found",
            ),
            (
                "another method",
                "PUT /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
                false,
                "HTTP/1.1 405",
                "method_not_allowed",
            ),
            (
                "no content type",
                "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                    .to_string(),
                false,
                "HTTP/1.1 415",
                "unsupported_media_type",
            ),
            (
                "unsigned",
                "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                    .to_string(),
                false,
                "HTTP/1.1 401",
                "missing_signature_header",
            ),
        ];
        for (what, request, half_close, status, code) in cases {
            let (line, headers, body) =
                parse(&exchange(addr, request.as_bytes(), half_close).await);
            assert!(line.starts_with(status), "{what}: {line}");
            assert!(
                headers.contains("content-type: application/json"),
                "{what}: {headers}"
            );
            assert_eq!(error_code(&body), code, "{what}");
            if code == "method_not_allowed" {
                assert!(headers.contains("allow: post"), "{what}: {headers}");
            }
        }
    }

    /// What hyper answers itself, before any handler runs, when it cannot parse a request: a bare status line
    /// with an empty body, then it closes the connection. docs/store-events-v1.md documents exactly this.
    #[tokio::test]
    async fn hyper_answers_unparsable_requests_with_a_bare_status() {
        let addr = start().await;
        let huge_header = format!(
            "POST /v1/store-events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(512 * 1024)
        );
        let many_headers = format!(
            "POST /v1/store-events HTTP/1.1\r\nHost: x\r\n{}\r\n",
            (0..150)
                .map(|i| format!("X-{i}: 1\r\n"))
                .collect::<String>()
        );
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "a malformed request line",
                b"GARBAGE\r\n\r\n".to_vec(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "a request line without a version",
                b"POST /v1/store-events\r\n\r\n".to_vec(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "a header without a colon",
                b"POST /v1/store-events HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "a NUL in a header value",
                b"POST /v1/store-events HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
                "HTTP/1.1 400 Bad Request",
            ),
            (
                "headers over hyper's buffer (~400 KiB)",
                huge_header.into_bytes(),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
            (
                "more than 100 headers",
                many_headers.into_bytes(),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
        ];
        for (what, request, status) in cases {
            let response = exchange(addr, &request, false).await;
            let (line, headers, body) = parse(&response);
            assert_eq!(line, status, "{what}: {response:?}");
            assert!(headers.contains("content-length: 0"), "{what}: {headers}");
            assert!(body.is_empty(), "{what}: {body}");
        }
    }

    /// The local operator endpoints over real TCP: dead letters listed decoded, a dry run that moves nothing, a
    /// redrive that puts them back in their groups, and refusals naming what serve does not keep.
    #[tokio::test]
    async fn dead_letters_are_listed_and_redriven_over_http() {
        let mut config = PipelineConfig::new("http://127.0.0.1:9/graphql", "token", DEMO_SECRET);
        config.known_sizes = Some(vec![shared::centra::SizeRecord {
            id: 1,
            sku: Some("Tee01Black-M".into()),
            ean: None,
        }]);
        let pipeline =
            Arc::new(Pipeline::new(config, Arc::new(Mappings::embedded_default())).unwrap());
        let occurred = chrono::Utc::now() - chrono::Duration::minutes(1);
        let body = serde_json::json!({
            "type": "stock.sale", "store": "LDN-01",
            "occurred_at": occurred.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "lines": [{"sku": "Tee01Black-M", "quantity": 1, "unit_price": "10.00", "currency": "GBP"}]
        })
        .to_string();
        let answer = pipeline
            .send_signed(DEMO_SECRET, "evt_dead_1", body.as_bytes())
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        // Received and never deleted until past the receive limit: the message dies.
        let now = pipeline.clock.now_millis();
        for _ in 0..6 {
            pipeline.stock_queue.receive(10, 0, now);
        }
        assert_eq!(pipeline.stock_queue.dead_letters().len(), 1);

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(pipeline.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str| {
            let request = http.request(method, format!("{base}{path}"));
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().await.unwrap())
            }
        };

        let (status, listed) = call(reqwest::Method::GET, "/ops/dlq/stock").await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["count"], 1);
        let message = &listed["messages"][0];
        assert_eq!(message["message"]["group_id"], "Tee01Black-M");
        assert_eq!(message["decoded"]["type"], "stock_movement");
        assert!(
            message["summary"].as_str().unwrap().contains("evt_dead_1"),
            "{message}"
        );

        let (status, dry) = call(
            reqwest::Method::POST,
            "/ops/dlq/stock/redrive?dry_run=true&by=alice",
        )
        .await;
        assert_eq!(
            (status, dry["messages"].as_array().unwrap().len()),
            (200, 1)
        );
        assert_eq!(
            pipeline.stock_queue.dead_letters().len(),
            1,
            "a dry run moves nothing"
        );
        let (status, moved) = call(reqwest::Method::POST, "/ops/dlq/stock/redrive?by=alice").await;
        assert_eq!((status, moved["by"].as_str()), (200, Some("alice")));
        assert!(pipeline.stock_queue.dead_letters().is_empty());
        let back = pipeline.stock_queue.receive(10, 1_000, now);
        assert_eq!(
            (back.len(), back[0].group_id.as_str(), back[0].receive_count),
            (1, "Tee01Black-M", 1)
        );

        let (status, refused) = call(reqwest::Method::GET, "/ops/dlq/stock-push").await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (404, Some("not_kept_locally"))
        );
        let (status, refused) = call(reqwest::Method::GET, "/ops/dlq/nope").await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (400, Some("unknown_queue"))
        );
        let (status, refused) = call(
            reqwest::Method::POST,
            "/ops/orders/retry/gid://cloudshelf/Order/1",
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (404, Some("orders_disabled"))
        );
    }
}
