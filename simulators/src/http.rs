//! Request plumbing both GraphQL simulators share: in-flight counting (so tests can wait for a request whose
//! client gave up) and reading the GraphQL POST body.

use serde_json::{Map, Value};
use tokio::sync::watch;

/// Counts a request as in flight until dropped.
pub struct InFlight(watch::Sender<usize>);

impl InFlight {
    pub fn enter(counter: &watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Waits until no request is in flight.
pub async fn wait_idle(counter: &watch::Sender<usize>) {
    let mut rx = counter.subscribe();
    let _ = rx.wait_for(|n| *n == 0).await;
}

/// A GraphQL POST body: `query`, optional `operationName`, optional `variables` object.
pub struct GraphqlRequest {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
}

/// Reads the body, or says (for a 400 answer) what is wrong with it.
pub fn parse_graphql_request(body: &[u8]) -> Result<GraphqlRequest, String> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| "Request body must contain a \"query\" string".to_string())?
        .to_string();
    let operation_name = request
        .get("operationName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let variables = match request.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("\"variables\" must be an object".to_string()),
    };
    Ok(GraphqlRequest {
        query,
        operation_name,
        variables,
    })
}

/// Runs a request's work detached from the connection, counted in flight: a client hanging up (a timeout
/// under test) does not cancel work already under way, as on a real server.
pub async fn run_detached<F>(
    counter: &watch::Sender<usize>,
    label: &'static str,
    work: F,
) -> axum::response::Response
where
    F: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    use axum::response::IntoResponse;
    let guard = InFlight::enter(counter);
    let task = tokio::spawn(async move {
        let _guard = guard;
        work.await
    });
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "{label} simulator request task failed");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "simulator task failed",
            )
                .into_response()
        }
    }
}
