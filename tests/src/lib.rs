//! Black-box harness: the real `shelfsync serve` and the Centra simulator (`centra-sim`) run as separate
//! processes and are driven only over HTTP — signed store events in, Centra's stock (through the simulator's
//! control API) and the operator endpoints out, the way a store system and an operator see them.
//!
//! Nothing here links the product's crate: the events are signed by this file's own Standard Webhooks code, so a
//! signing bug in the product cannot hide behind the same bug here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use simulators::control::{ConfigPatch, RequestLogEntry, RequestLogKind, SimControl, SpawnedSim};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TOKEN: &str = "blackbox-centra-token";

/// A binary of this workspace, built by `cargo test` beside the test executable (built here if missing).
fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory")
        .to_path_buf();
    let path = profile_dir.join(name);
    if !path.exists() {
        BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "shelfsync", "-p", "simulators", "--bins"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            if let Some(target) = profile_dir.parent() {
                cmd.arg("--target-dir").arg(target);
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "building the binaries failed");
        });
    }
    assert!(
        path.exists(),
        "{package} binary {name} not found at {}",
        path.display()
    );
    path
}

/// Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = B64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("whsec_ secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone)]
pub struct Store {
    pub code: String,
    pub warehouse: u64,
}

#[derive(Debug, Clone)]
pub struct Size {
    pub sku: String,
    pub ean: String,
}

impl Size {
    /// Size `i` of a test catalogue: `BB-<i>` with a 13-digit EAN.
    pub fn numbered(i: usize) -> Size {
        Size {
            sku: format!("BB-{i:03}"),
            ean: format!("735{:010}", 100 + i),
        }
    }
}

pub struct WorldConfig {
    pub stores: Vec<Store>,
    pub sizes: Vec<Size>,
    /// Physical stock of every size in every store's warehouse at the start.
    pub initial: i64,
    /// How long a push owns its rows (short, so that a lost answer settles within a test).
    pub lease_seconds: u64,
    pub centra_timeout_seconds: u64,
    pub sim: ConfigPatch,
}

impl WorldConfig {
    pub fn new(sizes: usize) -> Self {
        WorldConfig {
            stores: [("LDN-01", 12), ("MAN-01", 13), ("EDI-01", 14)]
                .into_iter()
                .map(|(code, warehouse)| Store {
                    code: code.into(),
                    warehouse,
                })
                .collect(),
            sizes: (0..sizes).map(Size::numbered).collect(),
            initial: 50,
            lease_seconds: 6,
            centra_timeout_seconds: 2,
            sim: ConfigPatch::default(),
        }
    }
}

/// What an HTTP answer of the intake was.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }
    pub fn field(&self) -> Option<&str> {
        self.body.pointer("/error/field").and_then(Value::as_str)
    }
}

/// `shelfsync serve` and `centra-sim`, started for one test and stopped with it.
pub struct World {
    pub sim: SpawnedSim,
    pub centra: SimControl,
    serve: Child,
    pub url: String,
    pub stores: Vec<Store>,
    pub sizes: Vec<Size>,
    /// Warehouses outside the mappings (another integration's), also checked at the end.
    pub other_warehouses: Vec<u64>,
    http: reqwest::Client,
    dir: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mappings_toml(stores: &[Store]) -> String {
    stores
        .iter()
        .map(|s| {
            format!(
                "[stores.{code}]\ncentra_warehouse_id = {wh}\ncloudshelf_location = \"gid://external/CentraWarehouse/{wh}\"\ncurrency = \"GBP\"\n\n",
                code = s.code,
                wh = s.warehouse
            )
        })
        .collect()
}

impl World {
    pub async fn start(config: WorldConfig) -> World {
        let sim = SpawnedSim::spawn(
            binary("simulators", "centra-sim")
                .to_str()
                .expect("utf-8 path"),
            &["--port", "0", "--token", TOKEN],
        )
        .expect("centra-sim starts");
        let centra = sim.control();
        centra.configure(&config.sim).await.expect("sim config");
        for store in &config.stores {
            centra
                .add_warehouse(store.warehouse, &store.code)
                .await
                .expect("warehouse");
        }
        for size in &config.sizes {
            centra
                .add_size(&simulators::control::SizeSpec {
                    sku: size.sku.clone(),
                    ean: Some(size.ean.clone()),
                    upc: None,
                    active: true,
                })
                .await
                .expect("size");
            for store in &config.stores {
                centra
                    .set_stock(&simulators::control::StockSpec {
                        warehouse: store.warehouse,
                        sku: size.sku.clone(),
                        physical: config.initial,
                        allocated: None,
                    })
                    .await
                    .expect("stock");
            }
        }

        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "blackbox-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mappings = dir.join("mappings.toml");
        std::fs::write(&mappings, mappings_toml(&config.stores)).expect("mappings file");

        let mut serve = Command::new(binary("shelfsync", "shelfsync"))
            .args(["serve", "--port", "0", "--exit-with-stdin"])
            .env("CENTRA_API_URL", sim.graphql_url())
            .env("CENTRA_API_TOKEN", TOKEN)
            .env("STORE_EVENTS_SECRET", SECRET)
            .env("MAPPINGS_PATH", &mappings)
            .env("PUSH_LEASE_SECONDS", config.lease_seconds.to_string())
            .env(
                "CENTRA_TIMEOUT_SECONDS",
                config.centra_timeout_seconds.to_string(),
            )
            .env("RUST_LOG", "error")
            .env_remove("CLOUDSHELF_API_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shelfsync serve starts");
        let stdout = serve.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("serve prints its address");
        let listening: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("serve's first line is not its address ({e}): {line:?}"));
        let url = listening["url"].as_str().expect("url").to_string();
        World {
            sim,
            centra,
            serve,
            url,
            stores: config.stores,
            sizes: config.sizes,
            other_warehouses: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // One connection per request: serve closes a connection after refusing a body it did not read
                // (413, 415, …), and a pooled connection reused in that instant fails with no answer — a race
                // HTTP/1.1 leaves to the client, seen under load in CI. The tests check answers, not reuse.
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            dir,
        }
    }

    /// Runs the real `shelfsync` binary with an operator's arguments (e.g. `trace event <id> --serve <url>`).
    pub async fn shelfsync(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(binary("shelfsync", "shelfsync"))
                .args(&args)
                .env("RUST_LOG", "error")
                .output()
                .expect("shelfsync runs")
        })
        .await
        .expect("shelfsync finished")
    }

    pub fn warehouse(&self, store: &str) -> u64 {
        self.stores
            .iter()
            .find(|s| s.code == store)
            .expect("a store of the world")
            .warehouse
    }

    /// POSTs `body` as a store event, signed now.
    pub async fn send(&self, id: &str, body: &Value) -> Answer {
        self.send_bytes(id, body.to_string().as_bytes(), &[]).await
    }

    /// POSTs raw bytes signed now, with extra headers (which replace the defaults of the same name).
    pub async fn send_bytes(&self, id: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        let ts = chrono::Utc::now().timestamp();
        let signature = sign(SECRET, id, ts, body);
        let mut request = self
            .http
            .post(format!("{}/v1/store-events", self.url))
            .body(body.to_vec());
        let defaults = [
            ("content-type", "application/json".to_string()),
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ];
        for (name, value) in &defaults {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                request = request.header(*name, value);
            }
        }
        for (name, value) in headers {
            if !value.is_empty() {
                request = request.header(*name, *value);
            }
        }
        let response = request.send().await.expect("intake answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.expect("answer body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry_after,
        }
    }

    /// Sends until the intake gives a final answer (a 503 is retried after its `Retry-After`, as a sender must).
    pub async fn deliver(&self, id: &str, body: &Value) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.send(id, body).await;
            if answer.status != 503 || Instant::now() > deadline {
                return answer;
            }
            let wait = answer
                .retry_after
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1u64);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    }

    async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("serve answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Waits until serve says nothing is queued or waiting for Centra, and the simulator has no request in
    /// flight — polled, with a deadline.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut settled_in_a_row = 0;
        while settled_in_a_row < 2 {
            assert!(
                Instant::now() < deadline,
                "the flow did not settle within 90 s: {}",
                self.get_json("/ops/status").await
            );
            if self.get_json("/ops/status").await["settled"] == json!(true) {
                self.centra.wait_idle().await.expect("sim idle");
                settled_in_a_row += 1;
            } else {
                settled_in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The operator's view of exceptions.
    pub async fn exceptions(&self) -> Vec<Value> {
        self.get_json("/ops/exceptions")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Physical stock of every warehouse × size in Centra.
    pub async fn centra_stock(&self) -> BTreeMap<(u64, String), i64> {
        self.centra
            .stock()
            .await
            .expect("sim stock")
            .into_iter()
            .map(|r| ((r.warehouse, r.sku), r.physical))
            .collect()
    }

    /// Centra's stock must equal `expected` for every warehouse × size it has (not only the ones touched).
    pub async fn assert_centra_stock(&self, expected: &BTreeMap<(u64, String), i64>) {
        let actual = self.centra_stock().await;
        let wrong: Vec<String> = actual
            .iter()
            .filter(|(k, v)| expected.get(*k) != Some(*v))
            .map(|((wh, sku), v)| {
                format!(
                    "warehouse {wh} {sku}: Centra {v}, expected {:?}",
                    expected.get(&(*wh, sku.clone()))
                )
            })
            .chain(
                expected
                    .keys()
                    .filter(|k| !actual.contains_key(*k))
                    .map(|(wh, sku)| format!("warehouse {wh} {sku}: missing in Centra")),
            )
            .collect();
        assert!(
            wrong.is_empty(),
            "Centra's stock is wrong:\n{}",
            wrong.join("\n")
        );
    }

    /// The simulator's request log.
    pub async fn requests(&self) -> Vec<RequestLogEntry> {
        self.centra.requests().await.expect("request log")
    }

    /// No mutation went out again before the `Retry-After` of a 429 it was given, and no pushed mutation was
    /// applied twice.
    pub async fn assert_centra_rules_kept(&self) {
        let log = self.requests().await;
        for (i, limited) in log.iter().enumerate() {
            let (Some(retry_at), RequestLogKind::Mutation) = (limited.retry_at_ms, &limited.kind)
            else {
                continue;
            };
            for later in &log[i + 1..] {
                let resend = later
                    .descriptions
                    .iter()
                    .any(|d| limited.descriptions.contains(d));
                assert!(
                    !resend || later.received_at_ms >= retry_at,
                    "{:?} was sent again {} ms before its Retry-After",
                    limited.descriptions,
                    retry_at - later.received_at_ms
                );
            }
        }
        let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in log.iter().filter(|e| e.applied) {
            for d in &entry.descriptions {
                *applied.entry(d.as_str()).or_default() += 1;
            }
        }
        let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "mutations applied more than once: {twice:?}"
        );
    }

    /// The expected stock before any event: the initial level everywhere.
    pub fn initial_stock(&self, initial: i64) -> BTreeMap<(u64, String), i64> {
        self.stores
            .iter()
            .flat_map(|s| {
                self.sizes
                    .iter()
                    .map(move |z| ((s.warehouse, z.sku.clone()), initial))
            })
            .collect()
    }
}

/// An RFC 3339 instant `minutes_ago` before now (plus `ms` to order events within a minute).
pub fn at(minutes_ago: i64, ms: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)
        + chrono::Duration::milliseconds(ms))
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
