//! The control API of a simulator run as a separate process (`centra-sim`), for black-box tests: JSON
//! over HTTP under `/_sim` on the simulator's own port. The types here are both the wire format and
//! what [`SimControl`] (a typed client) and [`SpawnedSim`] (start the binary, read its address) use.
//!
//! | method and path | body → answer |
//! |---|---|
//! | `POST /_sim/warehouses` | [`WarehouseSpec`] |
//! | `POST /_sim/sizes` | [`SizeSpec`] → [`SizeCreated`] |
//! | `POST /_sim/stock` | [`StockSpec`] |
//! | `GET /_sim/stock` | → `[`[`StockRow`]`]`, every warehouse × size, zeros included |
//! | `POST /_sim/stock-changes/unrelated` | [`UnrelatedChangesSpec`] → [`UnrelatedChangesAdded`] |
//! | `GET /_sim/stock-changes` | → `[`[`StockChangeRecord`]`]`, oldest first |
//! | `POST /_sim/faults` | [`FaultSpec`] (queued; one per matching request) |
//! | `DELETE /_sim/faults` | clears the queue |
//! | `POST /_sim/config` | [`ConfigPatch`] (only the fields given change) |
//! | `POST /_sim/refuse-size` | [`RefuseSizeSpec`] |
//! | `GET /_sim/requests` | → `[`[`RequestLogEntry`]`]`, oldest first |
//! | `GET /_sim/counters` | → [`Counters`] |
//! | `POST /_sim/wait-idle` | answers once no GraphQL or Order-API request is in flight |
//!
//! Errors are answered as HTTP 400 (or 404 for an unknown warehouse or size) with `{"error": "..."}`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use crate::centra::{
    CentraBehaviour, DuplicateSizes, FaultTarget, PathStyle, RateTier, RefusalKind,
    RequestLogEntry, RequestLogKind, RetryAfterStyle, StockChangeKind, StockChangeLineRecord,
    StockChangeRecord, UnknownSizes,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseSpec {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeSpec {
    pub sku: String,
    #[serde(default)]
    pub ean: Option<String>,
    #[serde(default)]
    pub upc: Option<String>,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeCreated {
    pub id: u64,
}

/// Seed stock (no audit record), like [`crate::centra::CentraSim::set_physical`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSpec {
    pub warehouse: u64,
    pub sku: String,
    pub physical: i64,
    #[serde(default)]
    pub allocated: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRow {
    pub warehouse: u64,
    pub size_id: u64,
    pub sku: String,
    pub physical: i64,
    pub allocated: i64,
    pub free_to_allocate: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrelatedChangesSpec {
    pub warehouse: u64,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrelatedChangesAdded {
    pub ids: Vec<u64>,
}

/// A fault as JSON: `{"kind": "server_error", "status": 502}`, `{"kind": "rate_limited",
/// "retry_after_ms": 1500}`, `{"kind": "hang", "ms": 600}`, `{"kind": "lose_response_after_apply"}`,
/// `{"kind": "apply_then_status", "status": 504}`, `{"kind": "errors_beside_data", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultJson {
    ServerError { status: u16 },
    RateLimited { retry_after_ms: u64 },
    Hang { ms: u64 },
    LoseResponseAfterApply,
    ApplyThenStatus { status: u16 },
    ErrorsBesideData { message: String },
}

impl From<FaultJson> for crate::centra::Fault {
    fn from(f: FaultJson) -> Self {
        use crate::centra::Fault;
        match f {
            FaultJson::ServerError { status } => Fault::ServerError(status),
            FaultJson::RateLimited { retry_after_ms } => Fault::RateLimited {
                retry_after: Duration::from_millis(retry_after_ms),
            },
            FaultJson::Hang { ms } => Fault::Hang(Duration::from_millis(ms)),
            FaultJson::LoseResponseAfterApply => Fault::LoseResponseAfterApply,
            FaultJson::ApplyThenStatus { status } => Fault::ApplyThenStatus(status),
            FaultJson::ErrorsBesideData { message } => Fault::ErrorsBesideData { message },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// `"mutations"`, `"queries"`, `"any"` or `"order_api"`.
    pub target: FaultTarget,
    pub fault: FaultJson,
}

/// `POST /_sim/config`: every field optional; the ones given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits_enabled: Option<bool>,
    /// `"growth"`, `"enhanced"`, `"high_volume"`, `"enterprise"`; the buckets start full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<RateTier>,
    /// Real length of Centra's "10 second" window; the buckets start full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_window_ms: Option<u64>,
    /// `"http_date"`, `"seconds"`, `"unix_timestamp"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_style: Option<RetryAfterStyle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `"skip_later"` or `"sum"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_sizes: Option<DuplicateSizes>,
    /// `"refuse_mutation"` or `"skip_line"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_sizes: Option<UnknownSizes>,
    /// `"numbers"`, `"strings"` or `"null"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<PathStyle>,
    /// `true`: refill every rate-limit bucket now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_rate_limits: Option<bool>,
}

/// `POST /_sim/refuse-size`: from now on Centra refuses this SKU in stock mutations; `"as": null`
/// lifts the refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefuseSizeSpec {
    pub sku: String,
    #[serde(rename = "as")]
    pub kind: Option<RefusalKind>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// HTTP requests that reached `/graphql`.
    pub requests: u64,
    /// Mutation root fields applied.
    pub mutations: u64,
    pub rate_limited: u64,
    pub order_api_requests: u64,
    pub order_creates: u64,
    pub pending_faults: usize,
    pub in_flight: usize,
}

/// The first line `centra-sim` prints once it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    pub graphql_url: String,
    pub control_url: String,
}

/// A control-API call that failed: transport, HTTP status or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError(pub String);

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "simulator control API: {}", self.0)
    }
}

impl std::error::Error for ControlError {}

/// Typed client of the control API of a simulator in another process.
#[derive(Debug, Clone)]
pub struct SimControl {
    http: reqwest::Client,
    base: String,
}

impl SimControl {
    /// `control_url` as printed by the binary, e.g. `http://127.0.0.1:PORT/_sim`.
    pub fn new(control_url: impl Into<String>) -> Self {
        SimControl {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("reqwest client"),
            base: control_url.into().trim_end_matches('/').to_string(),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ControlError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ControlError(format!("{path}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ControlError(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(ControlError(format!("{path}: HTTP {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| ControlError(format!("{path}: {e}: {text}")))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ControlError> {
        let body = serde_json::to_value(body).map_err(|e| ControlError(e.to_string()))?;
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ControlError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn add_warehouse(&self, id: u64, name: &str) -> Result<(), ControlError> {
        let spec = WarehouseSpec {
            id,
            name: name.to_string(),
        };
        self.post::<_, serde_json::Value>("/warehouses", &spec)
            .await
            .map(drop)
    }

    /// Returns the ProductSize id.
    pub async fn add_size(&self, spec: &SizeSpec) -> Result<u64, ControlError> {
        self.post::<_, SizeCreated>("/sizes", spec)
            .await
            .map(|c| c.id)
    }

    pub async fn set_stock(&self, spec: &StockSpec) -> Result<(), ControlError> {
        self.post::<_, serde_json::Value>("/stock", spec)
            .await
            .map(drop)
    }

    pub async fn stock(&self) -> Result<Vec<StockRow>, ControlError> {
        self.get("/stock").await
    }

    /// Someone else's changes in the warehouse's audit trail; returns their ids.
    pub async fn add_unrelated_stock_changes(
        &self,
        warehouse: u64,
        count: usize,
    ) -> Result<Vec<u64>, ControlError> {
        let spec = UnrelatedChangesSpec { warehouse, count };
        self.post::<_, UnrelatedChangesAdded>("/stock-changes/unrelated", &spec)
            .await
            .map(|a| a.ids)
    }

    pub async fn stock_changes(&self) -> Result<Vec<StockChangeRecord>, ControlError> {
        self.get("/stock-changes").await
    }

    pub async fn inject(&self, target: FaultTarget, fault: FaultJson) -> Result<(), ControlError> {
        self.post::<_, serde_json::Value>("/faults", &FaultSpec { target, fault })
            .await
            .map(drop)
    }

    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(reqwest::Method::DELETE, "/faults", None)
            .await
            .map(drop)
    }

    pub async fn configure(&self, patch: &ConfigPatch) -> Result<(), ControlError> {
        self.post::<_, serde_json::Value>("/config", patch)
            .await
            .map(drop)
    }

    /// `kind: None` lifts a refusal.
    pub async fn refuse_size(
        &self,
        sku: &str,
        kind: Option<RefusalKind>,
        message: &str,
    ) -> Result<(), ControlError> {
        let spec = RefuseSizeSpec {
            sku: sku.to_string(),
            kind,
            message: Some(message.to_string()),
        };
        self.post::<_, serde_json::Value>("/refuse-size", &spec)
            .await
            .map(drop)
    }

    pub async fn requests(&self) -> Result<Vec<RequestLogEntry>, ControlError> {
        self.get("/requests").await
    }

    pub async fn counters(&self) -> Result<Counters, ControlError> {
        self.get("/counters").await
    }

    /// Returns once no request is being processed (e.g. one under a `hang` fault).
    pub async fn wait_idle(&self) -> Result<(), ControlError> {
        self.post::<_, serde_json::Value>("/wait-idle", &serde_json::json!({}))
            .await
            .map(drop)
    }
}

/// A simulator binary started as a child process; killed when dropped. Its stdin is kept open: the
/// binary exits when it closes, so a test process that dies leaves no simulator behind.
#[derive(Debug)]
pub struct SpawnedSim {
    child: Child,
    pub listening: Listening,
}

impl SpawnedSim {
    /// Start `binary` with `args` and wait for its readiness line.
    pub fn spawn(binary: &str, args: &[&str]) -> std::io::Result<SpawnedSim> {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let listening: Listening = match serde_json::from_str(line.trim()) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::io::Error::other(format!(
                    "{binary} did not print its address ({e}): {line:?}"
                )));
            }
        };
        Ok(SpawnedSim { child, listening })
    }

    pub fn control(&self) -> SimControl {
        SimControl::new(&self.listening.control_url)
    }

    pub fn graphql_url(&self) -> &str {
        &self.listening.graphql_url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Close its stdin (as a dying test process would) and wait for it to exit.
    pub fn close_stdin_and_wait(mut self) -> std::io::Result<std::process::ExitStatus> {
        drop(self.child.stdin.take());
        self.child.wait()
    }
}

impl Drop for SpawnedSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
