//! The six functions invoked the way Lambda invokes them, offline: each function binary (the bootstraps `sam
//! build` produced when `LAMBDA_BOOTSTRAP_DIR` names its `.aws-sam/build`, otherwise the workspace's debug
//! builds) runs as its own process against the Lambda Runtime API that `cargo lambda watch --only-lambda-apis`
//! emulates, and `cargo lambda invoke --data-file events/<fn>.json` hands it the sample event. Behind them:
//! moto (DynamoDB, SQS, S3, SNS, Secrets Manager, SSM, provisioned as `template.yaml` describes) and the Centra
//! and Cloudshelf simulators as processes. Each function gets exactly the environment the template gives it
//! (read from `template.yaml`, `!Ref`s resolved to what was provisioned) plus what Lambda itself sets.
//!
//! What this does not cover, and `sam local` would where Docker exists: the provided.al2023 image itself
//! (glibc, the binary's architecture), the function's memory and timeout limits, and API Gateway's mapping of a
//! real HTTP request to the payload (the sample event stands in for it). See docs/deploy.md.

mod deadline;
mod moto;
mod template;

use moto::{Moto, ACCOUNT, REGION};
use serde_json::{json, Value};
use simulators::control::{SizeSpec, SpawnedSim, StockSpec};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "emulator-centra-token";
const CLOUDSHELF_KEY: &str = "emulator-cloudshelf-key";
/// The sample secret `events/webhook-intake.json` is signed with (events/README.md).
const STORE_EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ORDER_API_SECRET: &str = "emulator-order-api-secret";
const WAREHOUSE: u64 = 12;
/// The sample events' two sizes: one named by SKU, the other by EAN.
const SKU_S: &str = "Prod123Var123789S";
const SKU_M: &str = "Prod123Var123789M";
const EAN_M: &str = "7350000000012";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// `target/<profile>` of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds (or confirms up to date) the workspace binaries this test runs, in one cargo call so that `shared`
/// gets one feature set, the one the workspace build already compiled.
fn build_workspace_binaries(packages: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root()).arg("build").arg("--bins");
    for p in packages {
        cmd.args(["-p", p]);
    }
    let profile = profile_dir();
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building {packages:?} failed");
}

/// The function binaries: SAM's bootstraps (`$LAMBDA_BOOTSTRAP_DIR/<LogicalId>/bootstrap`) or debug builds.
fn function_binaries() -> (BTreeMap<&'static str, PathBuf>, String) {
    let mut out = BTreeMap::new();
    if let Some(dir) = std::env::var_os("LAMBDA_BOOTSTRAP_DIR") {
        let dir = PathBuf::from(dir);
        for f in FUNCTIONS {
            let path = dir.join(f.logical_id).join("bootstrap");
            assert!(
                path.is_file(),
                "LAMBDA_BOOTSTRAP_DIR has no {} (run `sam build` first)",
                path.display()
            );
            out.insert(f.binary, path);
        }
        return (out, format!("SAM bootstraps from {}", dir.display()));
    }
    for f in FUNCTIONS {
        out.insert(f.binary, profile_dir().join(f.binary));
    }
    (out, "workspace debug builds".into())
}

struct Function {
    logical_id: &'static str,
    binary: &'static str,
}

const FUNCTIONS: [Function; 6] = [
    Function {
        logical_id: "WebhookIntakeFunction",
        binary: "webhook-intake",
    },
    Function {
        logical_id: "StockApplyFunction",
        binary: "stock-apply",
    },
    Function {
        logical_id: "StockPushFunction",
        binary: "stock-push",
    },
    Function {
        logical_id: "OrderSyncFunction",
        binary: "order-sync",
    },
    Function {
        logical_id: "ReconcileFunction",
        binary: "reconcile",
    },
    Function {
        logical_id: "EventArchiveFunction",
        binary: "event-archive",
    },
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo-lambda".into());
    let ok = Command::new(&path)
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "cargo-lambda not found ({}): run scripts/test.sh, which installs it into .venv",
        path.display()
    );
    path
}

/// A child process killed when dropped; its output goes to a log file read back for failure messages.
struct Proc {
    child: Child,
    log: PathBuf,
    name: String,
}

impl Proc {
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!(
            "--- {} log ({}) ---\n{}",
            self.name,
            self.log.display(),
            &text[start..]
        )
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cloudshelf-sim` as a process: its first stdout line is `{"graphql_url": ...}`.
fn spawn_cloudshelf(binary: &Path) -> (Child, String) {
    let mut child = Command::new(binary)
        .args(["--port", "0", "--token", CLOUDSHELF_KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cloudshelf-sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("cloudshelf-sim prints its address");
    let url = serde_json::from_str::<Value>(line.trim())
        .ok()
        .and_then(|v| v["graphql_url"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("cloudshelf-sim's first line is not its address: {line:?}"));
    (child, url)
}

struct Emulator {
    watch: Proc,
    port: u16,
    cargo_lambda: PathBuf,
    dir: PathBuf,
}

impl Emulator {
    /// `cargo lambda watch --only-lambda-apis` on a free loopback port; ready once the port accepts.
    fn start(cargo_lambda: PathBuf, dir: &Path) -> Emulator {
        let port = free_port();
        let log = dir.join("cargo-lambda-watch.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(&cargo_lambda)
            .current_dir(repo_root())
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("cargo lambda watch starts");
        let mut watch = Proc {
            child,
            log,
            name: "cargo lambda watch".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                watch.exited().is_none(),
                "cargo lambda watch exited\n{}",
                watch.tail()
            );
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen within 60 s\n{}",
                watch.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Emulator {
            watch,
            port,
            cargo_lambda,
            dir: dir.to_path_buf(),
        }
    }

    /// Starts `binary` as function `name` with exactly `env` (plus what Lambda sets), polling this emulator
    /// through a proxy that gives each invocation the deadline `timeout_s` from now (see `deadline`).
    fn start_function(
        &self,
        name: &str,
        binary: &Path,
        env: &BTreeMap<String, String>,
        timeout_s: u64,
    ) -> Proc {
        let proxy = deadline::start(format!("http://127.0.0.1:{}", self.port), timeout_s * 1000);
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(env)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://{proxy}/.rt/{name}"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            // The role's credentials, as Lambda passes them.
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            // The one setting that is not Lambda's: every AWS call goes to moto.
            .env("AWS_ENDPOINT_URL", &Moto::from_env().endpoint)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts ({}): {e}", binary.display()));
        Proc {
            child,
            log,
            name: name.into(),
        }
    }

    /// `cargo lambda invoke NAME --data-file FILE`: the function's answer as JSON. Fails with the function's log
    /// if it exits (e.g. a configuration error at init) or does not answer within 120 s.
    fn invoke(&self, function: &mut Proc, data_file: &Path) -> Value {
        let mut child = Command::new(&self.cargo_lambda)
            .current_dir(repo_root())
            .args(["lambda", "invoke", &function.name, "--data-file"])
            .arg(data_file)
            .args([
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo lambda invoke starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("invoke status") {
                break status;
            }
            if let Some(exit) = function.exited() {
                let _ = child.kill();
                panic!(
                    "{} exited ({exit}) before answering\n{}",
                    function.name,
                    function.tail()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{} did not answer within 120 s\n{}\n{}",
                    function.name,
                    function.tail(),
                    self.watch.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .expect("invoke output");
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("invoke errors");
        assert!(
            status.success(),
            "cargo lambda invoke {} failed ({status}): {stdout}{stderr}\n{}",
            function.name,
            function.tail()
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "{}'s answer is not JSON ({e}): {stdout:?}\n{}",
                function.name,
                function.tail()
            )
        })
    }
}

/// What was provisioned, by the template's names: `!Ref <LogicalId or Parameter>` → value.
type Refs = BTreeMap<String, String>;

/// Creates in moto the tables, queues, bucket, topic, secrets and mappings parameter the template describes
/// (names made unique per run), and returns what each `!Ref` resolves to.
async fn provision(
    moto: &Moto,
    run: &str,
    centra_url: &str,
    cloudshelf_url: &str,
    order_api_base: &str,
) -> Refs {
    let mut refs = Refs::new();
    let idempotency = format!("idem-{run}");
    moto.create_table(&idempotency, &[("id", "HASH")], Some("expiration"))
        .await;
    refs.insert("IdempotencyTable".into(), idempotency);
    let stock = format!("stock-{run}");
    moto.create_table(&stock, &[("pk", "HASH"), ("sk", "RANGE")], None)
        .await;
    refs.insert("StockTable".into(), stock);

    // FIFO queues with explicit deduplication ids and their FIFO DLQs; the push queue standard.
    for (logical, dlq, fifo, visibility) in [
        ("StockQueue", "StockDLQ", true, "180"),
        ("OrdersQueue", "OrdersDLQ", true, "360"),
        ("StockPushQueue", "StockPushDLQ", false, "720"),
    ] {
        let suffix = if fifo { ".fifo" } else { "" };
        let dlq_name = format!("{dlq}-{run}{suffix}");
        let mut attributes = json!({});
        if fifo {
            attributes = json!({"FifoQueue": "true", "ContentBasedDeduplication": "false"});
        }
        let dlq_url = moto.create_queue(&dlq_name, attributes.clone()).await;
        refs.insert(dlq.into(), dlq_url);
        attributes["VisibilityTimeout"] = json!(visibility);
        attributes["RedrivePolicy"] = json!(
            json!({"deadLetterTargetArn": Moto::queue_arn(&dlq_name), "maxReceiveCount": 5})
                .to_string()
        );
        let url = moto
            .create_queue(&format!("{logical}-{run}{suffix}"), attributes)
            .await;
        refs.insert(logical.into(), url);
    }
    // The event archive's on-failure destination (reconcile peeks at it).
    let gaps = moto
        .create_queue(&format!("ArchiveGapQueue-{run}"), json!({}))
        .await;
    refs.insert("ArchiveGapQueue".into(), gaps);

    let bucket = format!("reports-{run}");
    let (status, body) = moto
        .s3(
            reqwest::Method::PUT,
            &bucket,
            format!("<CreateBucketConfiguration><LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>").into_bytes(),
        )
        .await;
    assert_eq!(
        status,
        200,
        "CreateBucket: {}",
        String::from_utf8_lossy(&body)
    );
    refs.insert("ReportsBucket".into(), bucket);

    let topic = format!("alerts-{run}");
    moto.sns(&[("Action", "CreateTopic"), ("Name", &topic)])
        .await;
    refs.insert(
        "AlertTopic".into(),
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"),
    );

    // Parameters: the secrets as Secrets Manager secrets, the mappings as an SSM parameter.
    for (parameter, value) in [
        ("CentraApiTokenSecretArn", TOKEN.to_string()),
        ("StoreEventsSecretArn", STORE_EVENTS_SECRET.to_string()),
        (
            "CentraWebhookSecretArn",
            "emulator-centra-webhook-secret".to_string(),
        ),
        (
            "OrderApiSecretsArn",
            json!({ "CENTRA_ORDER_API_SECRET_UK": ORDER_API_SECRET }).to_string(),
        ),
        ("CloudshelfApiKeySecretArn", CLOUDSHELF_KEY.to_string()),
    ] {
        let arn = moto
            .create_secret(&format!("{parameter}-{run}"), &value)
            .await;
        refs.insert(parameter.into(), arn);
    }
    let mappings_parameter = format!("/cloudshelf-centra-{run}/mappings");
    moto.ssm(
        "PutParameter",
        json!({ "Name": mappings_parameter, "Type": "String", "Value": mappings(order_api_base) }),
    )
    .await;
    refs.insert("MappingsParameterName".into(), mappings_parameter);
    refs.insert("CentraApiUrl".into(), centra_url.into());
    refs.insert("CloudshelfApiUrl".into(), cloudshelf_url.into());
    refs.insert("CentraRateTier".into(), "growth".into());
    refs
}

/// The store of the sample events, with kiosk orders through the simulator's Order API.
fn mappings(order_api_base: &str) -> String {
    format!(
        r#"[stores.LDN-01]
centra_warehouse_id = {WAREHOUSE}
cloudshelf_location = "gid://external/CentraWarehouse/{WAREHOUSE}"
currency = "GBP"

[stores.LDN-01.orders]
order_api = "uk"
market_id = 3
pricelist_id = 5
currency = "GBP"
payment_plugin_id = 36

[stores.LDN-01.orders.shipping]
home-standard = "home-delivery-uk"

[order_api.uk]
base_url = "{order_api_base}"
secret = "CENTRA_ORDER_API_SECRET_UK"
centra_store_id = 1
"#
    )
}

/// The intake sample with a current `occurred_at` (intake refuses events older than its window), re-signed
/// now by `shelfsync sign`, as a developer would before invoking it.
fn signed_intake_event(shelfsync: &Path, dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("events/webhook-intake.json")).expect("sample");
    let mut event: Value = serde_json::from_str(&text).expect("sample JSON");
    let mut body: Value =
        serde_json::from_str(event["body"].as_str().expect("body")).expect("body JSON");
    body["occurred_at"] = json!((chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let body = body.to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
    let path = dir.join("webhook-intake.json");
    std::fs::write(&path, event.to_string()).expect("event copy");
    let out = Command::new(shelfsync)
        .arg("sign")
        .arg(&path)
        .env("STORE_EVENTS_SECRET", STORE_EVENTS_SECRET)
        .output()
        .expect("shelfsync sign runs");
    assert!(
        out.status.success(),
        "shelfsync sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn item_text(item: &Value) -> String {
    item.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_answers_its_sample_event_under_the_lambda_runtime_emulator() {
    let moto = Moto::from_env();
    let cargo_lambda = cargo_lambda();
    build_workspace_binaries(&[
        "webhook-intake",
        "stock-apply",
        "stock-push",
        "order-sync",
        "reconcile",
        "event-archive",
        "shelfsync",
        "simulators",
    ]);
    let (binaries, source) = function_binaries();
    eprintln!("functions: {source}");

    let dir = std::env::temp_dir().join(format!("lambda-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );

    // Centra: the store's warehouse and the sample's two sizes (one named by SKU, one by EAN), 50 of each.
    let centra_sim = SpawnedSim::spawn(
        profile_dir()
            .join("centra-sim")
            .to_str()
            .expect("utf-8 path"),
        &["--port", "0", "--token", TOKEN],
    )
    .expect("centra-sim starts");
    let centra = centra_sim.control();
    centra
        .add_warehouse(WAREHOUSE, "LDN-01")
        .await
        .expect("warehouse");
    for (sku, ean) in [(SKU_S, "7350000000005"), (SKU_M, EAN_M)] {
        centra
            .add_size(&SizeSpec {
                sku: sku.into(),
                ean: Some(ean.into()),
                upc: None,
                active: true,
            })
            .await
            .expect("size");
        centra
            .set_stock(&StockSpec {
                warehouse: WAREHOUSE,
                sku: sku.into(),
                physical: 50,
                allocated: None,
            })
            .await
            .expect("stock");
    }
    let centra_url = centra_sim.graphql_url().to_string();
    let order_api_base = centra_url.replace("/graphql", "/order-api/uk");
    let (mut cloudshelf_child, cloudshelf_url) =
        spawn_cloudshelf(&profile_dir().join("cloudshelf-sim"));

    let refs = provision(&moto, &run, &centra_url, &cloudshelf_url, &order_api_base).await;
    let template = template::Template::read(&repo_root().join("template.yaml"));
    let emulator = Emulator::start(cargo_lambda, &dir);
    let env = |logical_id: &str| template.environment(logical_id, &refs);
    let events = repo_root().join("events");

    // Intake: the signed sample sale (one SKU line, one EAN line) → 202, one FIFO message per size, grouped by
    // the size's Centra SKU whatever name the store used.
    let mut intake = emulator.start_function(
        "webhook-intake",
        &binaries["webhook-intake"],
        &env("WebhookIntakeFunction"),
        template.timeout_seconds("WebhookIntakeFunction"),
    );
    let answer = emulator.invoke(
        &mut intake,
        &signed_intake_event(&profile_dir().join("shelfsync"), &dir),
    );
    eprintln!("webhook-intake answered: {answer}");
    assert_eq!(
        answer["statusCode"],
        json!(202),
        "intake's answer: {answer}\n{}",
        intake.tail()
    );
    let queued = moto.receive(&refs["StockQueue"]).await;
    let mut groups: Vec<&str> = queued
        .iter()
        .filter_map(|m| m["Attributes"]["MessageGroupId"].as_str())
        .collect();
    groups.sort_unstable();
    assert_eq!(
        groups,
        [SKU_M, SKU_S],
        "stock queue after intake: {queued:?}"
    );

    // Apply: the sample batch (sale by SKU and by EAN, then a later count) → no failed item; the ledger holds
    // the rows and the push queue the dirty keys.
    let mut apply = emulator.start_function(
        "stock-apply",
        &binaries["stock-apply"],
        &env("StockApplyFunction"),
        template.timeout_seconds("StockApplyFunction"),
    );
    let answer = emulator.invoke(&mut apply, &events.join("stock-apply.json"));
    eprintln!("stock-apply answered: {answer}");
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [] }),
        "{}",
        apply.tail()
    );
    let ledger = moto.scan(&refs["StockTable"]).await;
    let ledger_rows: Vec<String> = ledger
        .iter()
        .filter(|i| i["pk"]["S"].as_str() == Some("ledger#LDN-01"))
        .filter_map(|i| i["sk"]["S"].as_str().map(str::to_string))
        .collect();
    assert!(
        ledger_rows.iter().any(|sk| sk.contains(SKU_S))
            && ledger_rows.iter().any(|sk| sk.contains(EAN_M)),
        "ledger rows of LDN-01 after apply: {ledger_rows:?}"
    );
    assert!(
        !moto.receive(&refs["StockPushQueue"]).await.is_empty(),
        "no dirty key was queued"
    );

    // Push: the sample dirty keys → no failed item, and Centra now has the counted 7 of the SKU and one fewer
    // of the size the EAN names.
    let mut push = emulator.start_function(
        "stock-push",
        &binaries["stock-push"],
        &env("StockPushFunction"),
        template.timeout_seconds("StockPushFunction"),
    );
    let answer = emulator.invoke(&mut push, &events.join("stock-push.json"));
    eprintln!("stock-push answered: {answer}");
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [] }),
        "{}",
        push.tail()
    );
    centra.wait_idle().await.expect("sim idle");
    let stock: BTreeMap<String, i64> = centra
        .stock()
        .await
        .expect("Centra stock")
        .into_iter()
        .filter(|r| r.warehouse == WAREHOUSE)
        .map(|r| (r.sku, r.physical))
        .collect();
    assert_eq!(
        stock,
        BTreeMap::from([(SKU_M.to_string(), 49), (SKU_S.to_string(), 7)]),
        "Centra's stock after the push\n{}",
        push.tail()
    );

    // Order sync: a kiosk order Cloudshelf does not know becomes an exception (no Centra order), and a Centra
    // webhook about an order that is not a kiosk order is ignored; neither is a failed item.
    let mut orders = emulator.start_function(
        "order-sync",
        &binaries["order-sync"],
        &env("OrderSyncFunction"),
        template.timeout_seconds("OrderSyncFunction"),
    );
    let answer = emulator.invoke(&mut orders, &events.join("order-sync.json"));
    eprintln!("order-sync answered: {answer}");
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [] }),
        "{}",
        orders.tail()
    );
    let items = moto.scan(&refs["StockTable"]).await;
    assert!(
        items
            .iter()
            .any(|i| item_text(i).contains("cloudshelf_order_not_found")),
        "no cloudshelf_order_not_found exception after order-sync: {items:?}"
    );
    assert_eq!(centra.counters().await.expect("counters").order_creates, 0);

    // Reconcile: the 15-minute incremental stock-drift sweep → a finished run that compared the rows touched
    // above with Centra, found them in step, and wrote its reports to the bucket.
    let mut reconcile = emulator.start_function(
        "reconcile",
        &binaries["reconcile"],
        &env("ReconcileFunction"),
        template.timeout_seconds("ReconcileFunction"),
    );
    let answer = emulator.invoke(&mut reconcile, &events.join("reconcile-stock-drift.json"));
    eprintln!("reconcile answered: {answer}");
    assert_eq!(
        answer["job"],
        json!("stock_drift"),
        "{answer}\n{}",
        reconcile.tail()
    );
    assert_eq!(answer["finished"], json!(true), "{answer}");
    assert!(
        answer["this_invocation"]["rows_compared"].as_u64() >= Some(1),
        "nothing compared: {answer}"
    );
    assert_eq!(
        answer["counters"].get("drifted"),
        None,
        "Centra and the ledger disagree: {answer}"
    );
    let keys = answer["report_keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!keys.is_empty(), "no report written: {answer}");
    for key in keys {
        let key = key.as_str().expect("report key");
        let (status, _) = moto
            .s3(
                reqwest::Method::GET,
                &format!("{}/{key}", refs["ReportsBucket"]),
                Vec::new(),
            )
            .await;
        assert_eq!(status, 200, "report {key} is not in the bucket");
    }

    // Event archive: the sample stream batch (the sale's completed intake record and its two applied lines) →
    // one gzip object for LDN-01 on the sale's day.
    let mut archive = emulator.start_function(
        "event-archive",
        &binaries["event-archive"],
        &env("EventArchiveFunction"),
        template.timeout_seconds("EventArchiveFunction"),
    );
    let answer = emulator.invoke(&mut archive, &events.join("event-archive.json"));
    eprintln!("event-archive answered: {answer}");
    assert_eq!(answer, Value::Null, "{}", archive.tail());
    let key = "events/store=LDN-01/date=2026-11-28/c1d2e3f4a5b60718293a4b5c6d7e8f90.json.gz";
    let (status, object) = moto
        .s3(
            reqwest::Method::GET,
            &format!("{}/{key}", refs["ReportsBucket"]),
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200, "archive object {key} is not in the bucket");
    let mut lines = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&object[..]),
        &mut lines,
    )
    .expect("a gzip object of UTF-8 lines");
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["kind"].to_string())
        .collect();
    assert_eq!(
        kinds,
        ["\"accepted\"", "\"applied\"", "\"applied\""],
        "{lines}"
    );

    for p in [
        &mut intake,
        &mut apply,
        &mut push,
        &mut orders,
        &mut reconcile,
        &mut archive,
    ] {
        assert!(
            p.exited().is_none(),
            "{} exited after its invocation\n{}",
            p.name,
            p.tail()
        );
    }
    let _ = cloudshelf_child.kill();
    let _ = cloudshelf_child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
