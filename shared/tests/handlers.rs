//! Each function's handler (`shared::lambda::handlers`) called with its sample payload from `events/` (the
//! shapes Lambda delivers: API Gateway HTTP API v2.0, SQS FIFO and standard batches, the Scheduler's `Input`),
//! on the state its main builds: each function built by its own wiring with the template's environment and role
//! against moto (shared/tests/deployed), Centra and Cloudshelf simulated. Each test asserts the whole answer: the
//! HTTP status and body, the exact `batchItemFailures` (with one failing record where the handler has that path),
//! the reconciliation run's summary.

use crate::deployed;

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use deployed::{Stack, StackParameters, STORE_EVENTS_SECRET};
use serde_json::{json, Value};
use shared::config::mappings::{Mappings, EMBEDDED_DEFAULT};
use shared::core::errors::BackendError;
use shared::lambda::handlers::{
    order_sync, reconcile, stock_apply, stock_push, webhook_intake, MetricsSink,
};
use shared::stock::ports::{ExceptionLog, ExceptionRecord};
use shared::telemetry::metrics::Metrics;
use simulators::centra::{CentraSim, CentraSimConfig};
use simulators::cloudshelf::{CloudshelfFault, CloudshelfSim, CloudshelfSimConfig};
use std::sync::Arc;

/// The two sizes the samples name: one by SKU, one by its EAN.
const SKU_S: &str = "Prod123Var123789S";
const SKU_M: &str = "Prod123Var123790M";
const EAN_M: &str = "7350000000012";

fn sample(name: &str) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sqs_sample(name: &str) -> SqsEvent {
    serde_json::from_str(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn failures(answer: &aws_lambda_events::sqs::SqsBatchResponse) -> Value {
    serde_json::to_value(answer).unwrap()
}

fn metrics_sink(metrics: &Metrics) -> MetricsSink<'_> {
    MetricsSink {
        metrics,
        namespace: "handler-tests",
    }
}

fn in_a_minute() -> i64 {
    chrono::Utc::now().timestamp_millis() + 60_000
}

/// Centra with the embedded mappings' warehouses and the samples' two sizes, 50 of each everywhere.
async fn centra() -> CentraSim {
    let sim = CentraSim::start(CentraSimConfig::default()).await;
    let mappings = Mappings::embedded_default();
    for store in mappings.stores() {
        sim.add_warehouse(store.centra_warehouse_id, store.store.as_str());
    }
    sim.add_size(SKU_S, Some("7350000000005"), true);
    sim.add_size(SKU_M, Some(EAN_M), true);
    for store in mappings.stores() {
        sim.set_physical(store.centra_warehouse_id, SKU_S, 50);
        sim.set_physical(store.centra_warehouse_id, SKU_M, 50);
    }
    sim
}

async fn stack(centra: &CentraSim) -> Stack {
    let stack = Stack::create(StackParameters::new(
        &centra.graphql_url(),
        centra.token(),
        EMBEDDED_DEFAULT,
    ))
    .await;
    // The SKU audit has run: intake resolves names from the snapshot.
    stack
        .put_catalogue_snapshot(vec![
            shared::centra::SizeRecord {
                id: 1,
                sku: Some(SKU_S.into()),
                ean: Some("7350000000005".into()),
            },
            shared::centra::SizeRecord {
                id: 2,
                sku: Some(SKU_M.into()),
                ean: Some(EAN_M.into()),
            },
        ])
        .await;
    stack
}

fn centra_physical(centra: &CentraSim, sku: &str) -> i64 {
    let warehouse = Mappings::embedded_default()
        .store("LDN-01")
        .unwrap()
        .centra_warehouse_id;
    centra.stock(warehouse, sku).unwrap().physical
}

/// The HTTP sample with a current `occurred_at`, re-signed now with the stack's store-events secret (what
/// `shelfsync sign` does): the file's own signature has expired (events/README.md).
fn signed_now(mut request: ApiGatewayV2httpRequest) -> ApiGatewayV2httpRequest {
    let mut body: Value = match &request.body {
        Some(text) => serde_json::from_str(text).unwrap(),
        None => panic!("the sample has a body"),
    };
    body["occurred_at"] = json!((chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let body = body.to_string();
    let id = request.headers["webhook-id"].to_str().unwrap().to_string();
    let ts = chrono::Utc::now().timestamp();
    let signature = shared::intake::signature::sign(STORE_EVENTS_SECRET, &id, ts, body.as_bytes());
    let headers = &mut request.headers;
    headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers.insert("content-length", body.len().to_string().parse().unwrap());
    request.body = Some(body);
    request
}

fn answer_body(answer: &aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> Value {
    match &answer.body {
        Some(Body::Text(text)) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        other => panic!("a text body, not {other:?}"),
    }
}

#[tokio::test]
async fn webhook_intake_answers_the_http_api_sample() {
    let centra = centra().await;
    let stack = stack(&centra).await;
    let intake = stack.webhook_intake().await;
    let metrics = Metrics::new();
    let sink = metrics_sink(&metrics);
    let now = chrono::Utc::now().timestamp_millis();
    let file: ApiGatewayV2httpRequest =
        serde_json::from_str(&sample("webhook-intake.json")).unwrap();

    // As stored, the sample was signed on 2026-11-28: replay protection refuses it.
    let answer = webhook_intake(&intake, &sink, now, file.clone()).await;
    assert_eq!(answer.status_code, 401, "{answer:?}");
    assert_eq!(
        answer_body(&answer)["error"]["code"],
        json!("timestamp_out_of_tolerance")
    );

    // Re-signed now: accepted, both lines queued.
    let fresh = signed_now(file.clone());
    let answer = webhook_intake(&intake, &sink, now, fresh.clone()).await;
    assert_eq!(answer.status_code, 202, "{answer:?}");
    assert_eq!(
        answer.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = answer_body(&answer);
    assert_eq!(body["status"], json!("accepted"), "{body}");
    assert_eq!(
        body,
        json!({ "status": "accepted", "id": "evt_sample_0001" })
    );

    // The same request again, base64-encoded as API Gateway sends a binary body: a duplicate.
    let mut encoded = fresh.clone();
    encoded.body = Some(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        fresh.body.as_deref().unwrap(),
    ));
    encoded.is_base64_encoded = true;
    let answer = webhook_intake(&intake, &sink, now, encoded.clone()).await;
    assert_eq!(answer.status_code, 200, "{answer:?}");
    assert_eq!(answer_body(&answer)["status"], json!("duplicate"));

    // A body that is not base64 although flagged so, and a path the function does not serve.
    encoded.body = Some("%%% not base64".into());
    let answer = webhook_intake(&intake, &sink, now, encoded).await;
    assert_eq!(answer.status_code, 400, "{answer:?}");
    let mut elsewhere = fresh;
    elsewhere.raw_path = Some("/v1/elsewhere".into());
    let answer = webhook_intake(&intake, &sink, now, elsewhere).await;
    assert_eq!(answer.status_code, 404, "{answer:?}");
    stack.assert_deployable();
}

/// An exception log that cannot write (its table unreachable).
struct Unwritable;

#[async_trait]
impl ExceptionLog for Unwritable {
    async fn record(&self, _: &ExceptionRecord) -> Result<(), BackendError> {
        Err(BackendError::new("dynamodb", "exception log down"))
    }
    async fn list(&self, _: Option<&str>) -> Result<Vec<ExceptionRecord>, BackendError> {
        Ok(Vec::new())
    }
}

fn unreadable_record(id: &str, group: &str) -> SqsMessage {
    let mut record = sqs_sample("stock-apply.json").records.remove(0);
    record.message_id = Some(id.into());
    record.body = Some("{\"not\":\"a movement\"}".into());
    record
        .attributes
        .insert("MessageGroupId".into(), group.into());
    record
}

#[tokio::test]
async fn stock_apply_answers_the_fifo_sample_and_fails_what_it_could_not_record() {
    let centra = centra().await;
    let stack = stack(&centra).await;
    let applier = stack.stock_apply().await;
    let metrics = Metrics::new();
    let sink = metrics_sink(&metrics);

    // The sample: a sale by SKU and by EAN, then a count of the SKU. Nothing fails.
    let answer = stock_apply(&applier, &sink, sqs_sample("stock-apply.json")).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));
    // Redelivered: already applied, still nothing fails.
    let answer = stock_apply(&applier, &sink, sqs_sample("stock-apply.json")).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));

    // An unreadable message is parked as an exception and acknowledged.
    let mut event = SqsEvent::default();
    event.records = vec![unreadable_record("poison-1", "poison")];
    let answer = stock_apply(&applier, &sink, event).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));
    stack.assert_deployable();

    // When the exception cannot be written, the unreadable message fails (SQS brings it back, then the DLQ),
    // and so does the later message of its group; the other groups are applied.
    let mut applier = applier;
    applier.exceptions = Arc::new(Unwritable);
    let mut event = sqs_sample("stock-apply.json");
    let later = event.records.remove(2);
    event.records.push(unreadable_record(
        "poison-2",
        later.attributes["MessageGroupId"].as_str(),
    ));
    event.records.push(later);
    let answer = stock_apply(&applier, &sink, event).await;
    assert_eq!(
        failures(&answer),
        json!({ "batchItemFailures": [
            { "itemIdentifier": "poison-2" },
            { "itemIdentifier": "0b1f6c2e-5a41-4c1e-9f7a-000000000003" },
        ] })
    );
}

#[tokio::test]
async fn stock_push_answers_the_queue_sample_and_drops_an_unreadable_key() {
    let centra = centra().await;
    let stack = stack(&centra).await;
    let applier = stack.stock_apply().await;
    let pusher = stack.stock_push().await;
    let metrics = Metrics::new();
    let sink = metrics_sink(&metrics);
    let answer = stock_apply(&applier, &sink, sqs_sample("stock-apply.json")).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));

    // The sample with an unreadable message added (dropped, not failed: a dirty key only says where to look).
    let mut event = sqs_sample("stock-push.json");
    let mut unreadable = event.records[0].clone();
    unreadable.message_id = Some("unreadable".into());
    unreadable.body = Some("nope".into());
    event.records.push(unreadable);
    let answer = stock_push(&pusher, &sink, event, in_a_minute()).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));
    // The count of 7 for the SKU, and one sold of the size the EAN names.
    assert_eq!(centra_physical(&centra, SKU_S), 7);
    assert_eq!(centra_physical(&centra, SKU_M), 49);
    stack.assert_deployable();
}

#[tokio::test]
async fn order_sync_answers_the_orders_fifo_sample_and_fails_what_cloudshelf_did_not_answer() {
    let centra = centra().await;
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    let stack = Stack::create(
        StackParameters::new(&centra.graphql_url(), centra.token(), EMBEDDED_DEFAULT)
            .value("CloudshelfApiUrl", cloudshelf.graphql_url())
            .secret("CloudshelfApiKeySecretArn", cloudshelf.api_key()),
    )
    .await;
    let sync = stack.order_sync().await;
    let metrics = Metrics::new();
    let sink = metrics_sink(&metrics);

    // Cloudshelf is down: the kiosk order comes back; the Centra webhook (an order that is no kiosk order) is
    // done.
    cloudshelf.inject(CloudshelfFault::ServerError);
    let answer = order_sync(&sync, &sink, sqs_sample("order-sync.json")).await;
    assert_eq!(
        failures(&answer),
        json!({ "batchItemFailures": [{ "itemIdentifier": "5e1c0a7e-0d7c-4b8e-8f20-000000000001" }] })
    );

    // Redelivered with Cloudshelf up: Cloudshelf does not know the order, which becomes an exception (no Centra
    // order); nothing fails.
    let answer = order_sync(&sync, &sink, sqs_sample("order-sync.json")).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));
    assert_eq!(centra.order_create_count(), 0);
    stack.assert_deployable();
}

#[tokio::test]
async fn reconcile_answers_the_scheduler_sample_with_the_run_summary() {
    let centra = centra().await;
    let stack = stack(&centra).await;
    let applier = stack.stock_apply().await;
    let ctx = stack.reconcile().await;
    let metrics = Metrics::new();
    let sink = metrics_sink(&metrics);
    let answer = stock_apply(&applier, &sink, sqs_sample("stock-apply.json")).await;
    assert_eq!(failures(&answer), json!({ "batchItemFailures": [] }));

    // The dry run of LDN-01's stock drift: the two rows applied above are not pushed yet, so in flight, not drift.
    let payload: Value =
        serde_json::from_str(&sample("reconcile-stock-drift-dry-run.json")).unwrap();
    let summary = reconcile(&ctx, &sink, payload, in_a_minute())
        .await
        .expect("a run summary");
    let summary = serde_json::to_value(&summary).unwrap();
    assert_eq!(summary["job"], json!("stock_drift"), "{summary}");
    assert_eq!(summary["scope"], json!("LDN-01"), "{summary}");
    assert_eq!(summary["finished"], json!(true), "{summary}");
    assert_eq!(summary["resumed"], json!(false), "{summary}");
    assert_eq!(
        summary["counters"],
        json!({ "centra_rows": 2, "in_flight": 2, "ledger_rows": 2, "pages": 1, "stores": 1 }),
        "{summary}"
    );
    assert_eq!(summary["this_invocation"], summary["counters"], "{summary}");
    assert!(
        !summary["report_keys"].as_array().unwrap().is_empty(),
        "{summary}"
    );

    // A payload the schedule would never send: refused, as the invocation's error.
    let error = reconcile(
        &ctx,
        &sink,
        json!({ "job": "stock_drift", "stores": "LDN-01" }),
        in_a_minute(),
    )
    .await
    .expect_err("an unknown field");
    assert!(
        error.to_string().starts_with("reconciliation request:"),
        "{error}"
    );
    stack.assert_deployable();
}
