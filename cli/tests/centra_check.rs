//! `shelfsync centra-check` against a Centra simulator serving our schema, and one serving a schema that
//! differs: each difference is named, and the exit code says whether our documents still validate.

use std::process::{Command, Output};

use serde_json::Value;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::schema::{centra_schema, validate_document, CENTRA_SDL};

const BIN: &str = env!("CARGO_BIN_EXE_shelfsync");

async fn check(sim: &CentraSim, token: &str, json: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "centra-check",
        "--url",
        &sim.graphql_url(),
        "--token",
        token,
    ])
    .env_remove("CENTRA_API_URL")
    .env_remove("CENTRA_API_TOKEN");
    if json {
        cmd.arg("--json");
    }
    // The simulator runs on this test's runtime; the binary is waited for on a blocking thread.
    tokio::task::spawn_blocking(move || cmd.output().expect("run shelfsync"))
        .await
        .unwrap()
}

async fn sim(sdl: Option<String>) -> CentraSim {
    CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        schema_sdl: sdl,
        ..CentraSimConfig::default()
    })
    .await
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Our Centra documents that do not validate against our own schema (the lead is fixing
/// `StockChanges`); against a live schema equal to ours exactly these fail.
fn failing_against_our_schema() -> Vec<String> {
    let ours = centra_schema();
    shared::graphql_documents::all()
        .into_iter()
        .filter(|d| d.api == shared::graphql_documents::Api::Centra)
        .filter(|d| validate_document(&ours, &d.text).is_err())
        .map(|d| d.name.to_string())
        .collect()
}

fn invalid_documents(report: &Value) -> Vec<String> {
    report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["valid"] == Value::Bool(false))
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_schema_shows_no_difference() {
    let sim = sim(None).await;
    let out = check(&sim, sim.token(), true).await;
    let r = report(&out);
    let differing: Vec<&Value> = r["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] != "same")
        .collect();
    assert!(differing.is_empty(), "{differing:?}");
    assert_eq!(r["live_only"], serde_json::json!([]));
    let unverified = r["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["unverified"] == true)
        .count();
    assert!(
        unverified > 100,
        "every UNVERIFIED element is listed: {unverified}"
    );

    let expected_failures = failing_against_our_schema();
    assert_eq!(invalid_documents(&r), expected_failures);
    let expected_code = if expected_failures.is_empty() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(expected_code));

    // The human-readable form says the same.
    let out = check(&sim, sim.token(), false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("match the live schema"), "{text}");
    assert!(text.contains("UNVERIFIED elements"), "{text}");
    assert!(!text.contains("DIFFERS"), "{text}");
    assert_eq!(out.status.code(), Some(expected_code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_differs_is_reported_element_by_element() {
    let modified = CENTRA_SDL
        .replace("  totalCount: Int! # UNVERIFIED: name (stripped)\n", "")
        .replace(
            "  deliveredQuantity: Int! # UNVERIFIED: name (stripped; as on ProductSizeStockChangeInput). Could be `quantity`.",
            "  quantity: Int!",
        )
        .replace("  INACTIVE # [PIM]\n", "");
    assert_ne!(modified, CENTRA_SDL);
    let sim = sim(Some(modified)).await;
    let out = check(&sim, sim.token(), true).await;
    let r = report(&out);
    let element = |c: &str| -> Value {
        r["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["coordinate"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("{c} not in the report"))
    };
    assert_eq!(
        element("StockChangeConnection.totalCount")["status"],
        "missing"
    );
    assert_eq!(
        element("StockChangeConnection.totalCount")["unverified"],
        true
    );
    assert_eq!(
        element("StockChangeProductSizeInput.deliveredQuantity")["status"],
        "missing"
    );
    assert_eq!(element("ProductStatus.INACTIVE")["status"], "missing");
    assert_eq!(element("ProductStatus.ACTIVE")["status"], "same");
    let live_only: Vec<&str> = r["live_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(live_only, ["StockChangeProductSizeInput.quantity"]);
    let differing: Vec<&str> = r["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] != "same")
        .map(|e| e["coordinate"].as_str().unwrap())
        .collect();
    assert_eq!(
        differing,
        [
            "ProductStatus.INACTIVE",
            "StockChangeConnection.totalCount",
            "StockChangeProductSizeInput.deliveredQuantity",
        ]
    );
    // CatalogueSizes writes `status: [ACTIVE, INACTIVE]`; it no longer validates.
    let mut expected = failing_against_our_schema();
    expected.push("CatalogueSizes".into());
    expected.sort();
    let mut invalid = invalid_documents(&r);
    invalid.sort();
    assert_eq!(invalid, expected);
    assert_eq!(out.status.code(), Some(1));

    let out = check(&sim, sim.token(), false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "DIFFERS  StockChangeConnection.totalCount: live has no such field",
        "DIFFERS  StockChangeProductSizeInput.deliveredQuantity: live has no such input field",
        "DIFFERS  ProductStatus.INACTIVE: live has no such enum value",
        "Live also has, in our types: StockChangeProductSizeInput.quantity",
        "INVALID  CatalogueSizes: Value \"INACTIVE\" does not exist in \"ProductStatus\" enum.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_no_server_exits_2() {
    let sim = sim(None).await;
    let out = check(&sim, "wrong-token", false).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token"));

    let url = sim.graphql_url();
    sim.shutdown().await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["centra-check", "--json"])
            .env("CENTRA_API_URL", url)
            .env("CENTRA_API_TOKEN", "t")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let r = report(&out);
    assert!(r["error"].as_str().unwrap().contains("cannot reach"), "{r}");
}
