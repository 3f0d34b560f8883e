//! A pass-through between a function and `cargo lambda watch` that gives each invocation a real deadline.
//!
//! The emulator hands every invocation `Lambda-Runtime-Deadline-Ms: 600000`, a duration where Lambda sends an
//! instant (epoch milliseconds): to a function that reads it, the invocation ended in 1970. Lambda's deadline is
//! the invocation's start plus the function's configured timeout, so that is what this proxy puts there (the
//! timeout from `template.yaml`); everything else passes unchanged.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;

struct Upstream {
    base: String,
    timeout_ms: u64,
    http: reqwest::Client,
}

const DEADLINE: &str = "lambda-runtime-deadline-ms";

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut outgoing = up
        .http
        .request(parts.method.clone(), format!("{}{path}", up.base))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .expect("response");
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name == DEADLINE {
            let deadline = chrono::Utc::now().timestamp_millis() as u64 + up.timeout_ms;
            response = response.header(DEADLINE, HeaderValue::from(deadline));
        } else if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).expect("response")
}

/// Starts the proxy for one function on its own thread and runtime (the test's own thread blocks while it
/// waits for processes); returns its address.
pub fn start(upstream: String, timeout_ms: u64) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("proxy runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("proxy port");
            tx.send(listener.local_addr().expect("proxy address"))
                .expect("address sent");
            let state = Arc::new(Upstream {
                base: upstream,
                timeout_ms,
                http: reqwest::Client::new(),
            });
            let app = axum::Router::new().fallback(forward).with_state(state);
            axum::serve(listener, app).await.expect("proxy serves");
        });
    });
    rx.recv().expect("proxy address")
}
