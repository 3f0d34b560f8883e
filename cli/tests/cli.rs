//! The `shelfsync` binary as an operator runs it: the local run's report, `validate` exit codes, and `serve`
//! answering signed store events and Centra webhooks on a local port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shelfsync");

#[test]
fn local_run_reports_stock_orders_and_exceptions() {
    let out = Command::new(BIN).output().expect("run shelfsync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let answer_of = |label: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no line for {label:?} in:\n{text}"));
        line[line.find(label).unwrap() + label.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(answer_of("kiosk order at LDN-01 for home delivery"), "202");
    assert_eq!(answer_of("same kiosk order again (kiosk retry)"), "200");
    assert_eq!(answer_of("forged signature"), "401");
    for expected in [
        "Centra stock (physical) per store warehouse and SKU",
        "status PARTIALLY_REFUNDED, thirdPartyId 1000",
        "mapping key to add: stores.MAN-01.orders.shipping.home-express",
        "[centra_rejected_line] store EDI-01 item sku:Scarf02Grey-OS",
        "unknown_item",
        "Cloudshelf order updates: 2",
        // The closing trace of the first sale: it reached Centra in a named push.
        "shelfsync trace event evt_demo_sale_1",
        "IN CENTRA: carried by push",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn validate_exits_non_zero_naming_the_key() {
    let ok = Command::new(BIN)
        .args([
            "validate",
            "--mappings",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../config/mappings.example.toml"
            ),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("kiosk orders → Order-API store uk"));

    let dir = std::env::temp_dir().join(format!("shelfsync-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://x/1\"\n\
         [stores.LDN-01.orders]\norder_api = \"nope\"\nmarket_id = 3\npricelist_id = 5\ncurrency = \"GBP\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--mappings", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stores.LDN-01.orders.order_api"));

    // A store with neither `currency` nor kiosk orders cannot check its events' currency.
    let no_currency = dir.join("no-currency.toml");
    std::fs::write(
        &no_currency,
        "[stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://x/1\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--mappings", no_currency.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stores.LDN-01.currency"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(port: u16, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn serve_answers_signed_store_events_and_centra_webhooks() {
    let mut child = Command::new(BIN)
        .args(["serve", "--simulate-centra", "--port", "0"])
        .env("RUST_LOG", "info")
        .env_remove("STORE_EVENTS_SECRET")
        .env_remove("CENTRA_WEBHOOK_SECRET")
        .env_remove("MAPPINGS_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its first line on stdout, once it listens, says where (logs go to stderr).
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let first = BufReader::new(stdout)
        .lines()
        .next()
        .expect("serve exited before listening")
        .unwrap();
    let url: serde_json::Value = serde_json::from_str(&first).expect("the address as JSON");
    let port: u16 = url["url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the url");

    let body = serde_json::json!({
        "type": "stock.sale", "occurred_at": chrono::Utc::now().to_rfc3339(), "store": "LDN-01",
        "lines": [{ "sku": "Tee01Black-M", "quantity": 1, "unit_price": "25.00", "currency": "GBP" }]
    })
    .to_string();
    let ts = chrono::Utc::now().timestamp();
    let signature = shared::intake::signature::sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "evt_cli_1",
        ts,
        body.as_bytes(),
    );
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", "evt_cli_1".to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ];
    let (status, answer) = post(port, "/v1/store-events", &headers, &body);
    assert_eq!(status, 202, "{answer}");
    let (status, _) = post(port, "/v1/store-events", &headers, &body);
    assert_eq!(status, 200, "the retry is a duplicate");

    let form = "payload=%7B%22events%22%3A%5B%7B%22type%22%3A%22customer%22%2C%22action%22%3A%22update%22%2C%22date%22%3A%22d%22%2C%22id%22%3A1%7D%5D%7D";
    let t = chrono::Utc::now().timestamp();
    let (status, answer) = post(
        port,
        "/v1/centra-webhooks",
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            (
                "x-centra-signature",
                shared::intake::centra_webhooks::sign_centra(
                    "centra-demo-endpoint-secret",
                    t,
                    form.as_bytes(),
                ),
            ),
        ],
        form,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"ignored\":1"), "{answer}");
    let (status, _) = post(
        port,
        "/v1/centra-webhooks",
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        form,
    );
    assert_eq!(status, 401, "unsigned Centra webhook");
}

#[test]
fn reconcile_demo_finds_the_seeded_drift_and_writes_parseable_reports() {
    let out_dir = std::env::temp_dir().join(format!("shelfsync-recon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let run = |job: &str, extra: &[&str]| -> String {
        let out = Command::new(BIN)
            .args(["reconcile", job, "--demo", "--out"])
            .arg(&out_dir)
            .args(extra)
            .output()
            .expect("run shelfsync reconcile");
        assert!(
            out.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let text = run("stock-drift", &[]);
    assert!(text.contains("1 drifted SKUs"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("Tee07-M"))
        .unwrap_or_else(|| panic!("no drift row in:\n{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], ["LDN-01", "Tee07-M"]);
    assert!(
        row.contains(" 2 ") && row.contains(" 5 ") && row.contains(" -3 "),
        "{row}"
    );

    // Every file the run names exists, the JSON parses and the CSV has the drifted row.
    let written: Vec<std::path::PathBuf> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("wrote "))
        .map(std::path::PathBuf::from)
        .collect();
    assert_eq!(written.len(), 5, "{text}");
    for path in &written {
        let body =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<serde_json::Value>(&body)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        if path.extension().is_some_and(|e| e == "csv") {
            assert_eq!(body.lines().count(), 2, "{body}");
            assert!(body.contains("Tee07-M"), "{body}");
        }
    }

    let text = run("sku-audit", &["--dry-run", "--fix"]);
    assert!(text.contains("2 catalogue findings"), "{text}");
    assert!(text.contains("would_create"), "{text}");

    let err = Command::new(BIN)
        .args(["reconcile", "stock-drift", "--demo", "--since", "5w"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("--since"),
        "names the flag"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}
