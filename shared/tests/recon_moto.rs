//! Reconciliation's AWS adapters against moto: checkpoints in the stock table (conditional on the revision) and
//! reports in S3 (path-style, as moto needs). Then reconcile as deployed (shared/tests/deployed: built by its
//! wiring with the template's environment, every call checked against its template role): a stock-drift run over
//! several invocations, and every job — SKU audit, stock drift, availability, stalled orders, finance close —
//! over data the deployed stock path wrote. `scripts/test.sh` starts moto and sets `AWS_ENDPOINT_URL`; every
//! test uses its own tables and bucket.

use crate::common;
use crate::deployed;

use common::*;
use deployed::{Stack, StackParameters, StockPipeline};
use shared::adapters::aws::provision::create_stock_table;
use shared::adapters::aws::recon::{s3_client, DynamoCheckpointStore, S3ReportSink};
use shared::adapters::aws::sdk_config;
use shared::centra::catalogue::CentraStockRow;
use shared::centra::{CentraClient, CentraError};
use shared::config::mappings::Mappings;
use shared::core::clock::{Clock, ManualClock, SharedClock};
use shared::core::ids::StoreCode;
use shared::recon::checkpoint::{Checkpoint, Cursor, PartRef, RunSignature};
use shared::recon::jobs::stock_drift::{counter, StockDriftReport};
use shared::recon::{
    run_stock_drift, CheckpointStore, Counters, JobKind, ReportSink, RunOptions,
    WarehouseStockSource,
};
use simulators::centra::CentraSimConfig;
use std::sync::Arc;
use std::time::Duration;

/// Centra pages through the real client, each moving the job's clock 1 s forward.
struct SlowPages {
    centra: CentraClient,
    clock: ManualClock,
}

#[async_trait::async_trait]
impl WarehouseStockSource for SlowPages {
    async fn stock_page(
        &self,
        warehouse_id: u64,
        page: u32,
        limit: u32,
    ) -> Result<Vec<CentraStockRow>, CentraError> {
        self.clock.advance_millis(1_000);
        self.centra
            .warehouse_stock_page(warehouse_id, page, limit)
            .await
    }
}

struct Aws {
    config: aws_config::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
}

async fn aws() -> Aws {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
    }
    let config = sdk_config().await;
    Aws {
        dynamo: aws_sdk_dynamodb::Client::new(&config),
        s3: s3_client(&config),
        config,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn bucket(aws: &Aws) -> String {
    let name = unique("recon");
    let region = aws.config.region().expect("AWS_REGION").to_string();
    let mut request = aws.s3.create_bucket().bucket(&name);
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    request.send().await.expect("create bucket");
    name
}

fn checkpoint(scope: &str) -> Checkpoint {
    let mut counters = Counters::default();
    counters.add("rows_compared", 40_000);
    Checkpoint {
        job: JobKind::StockDrift,
        scope: scope.into(),
        run_id: "20250301T020000Z-1a2b3c4d".into(),
        started_at_ms: 1_740_794_400_000,
        updated_at_ms: 1_740_794_500_000,
        revision: 0,
        signature: RunSignature {
            dry_run: true,
            since_ms: Some(5),
            full: false,
        },
        stores: vec![
            StoreCode::parse("LDN-01").unwrap(),
            StoreCode::parse("MAN-01").unwrap(),
        ],
        cursor: Cursor {
            store_index: 1,
            page: 37,
        },
        counters,
        // A long sweep's worth of parts and a 20,000-row seen bitmap stay well inside an item.
        parts: (0..5_000).map(|p| PartRef(p / 100, p % 100 + 1)).collect(),
        invocations: 3,
        finished_at_ms: None,
        state: serde_json::json!({ "seen": "A".repeat(3_400) }),
    }
}

#[tokio::test]
async fn dynamo_checkpoints_are_conditional_on_their_revision() {
    let aws = aws().await;
    let table = unique("stock");
    create_stock_table(&aws.dynamo, &table).await.unwrap();
    let store = DynamoCheckpointStore::new(aws.dynamo.clone(), &table);

    assert!(store
        .load(JobKind::StockDrift, "all")
        .await
        .unwrap()
        .is_none());
    let cp = checkpoint("all");
    assert!(store.save(&cp, None).await.unwrap());
    assert!(
        !store.save(&cp, None).await.unwrap(),
        "a second first save loses"
    );

    let loaded = store
        .load(JobKind::StockDrift, "all")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.revision, 1);
    assert_eq!(
        Checkpoint {
            revision: 0,
            ..loaded.clone()
        },
        cp
    );

    let mut next = loaded.clone();
    next.cursor.page += 1;
    assert!(store.save(&next, Some(1)).await.unwrap());
    assert!(!store.save(&next, Some(1)).await.unwrap(), "stale revision");
    let loaded = store
        .load(JobKind::StockDrift, "all")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((loaded.revision, loaded.cursor.page), (2, 38));
    assert!(store
        .load(JobKind::StockDrift, "LDN-01")
        .await
        .unwrap()
        .is_none());

    // The item sits in the stock table under the documented keys.
    let item = aws
        .dynamo
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("recon#stock_drift#all".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("checkpoint".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().expect("checkpoint item");
    assert_eq!(item["revision"].as_n().unwrap(), "2");
    assert_eq!(item["finished"].as_bool().unwrap(), &false);
}

#[tokio::test]
async fn s3_sink_puts_and_gets_objects() {
    let aws = aws().await;
    let bucket = bucket(&aws).await;
    let sink = S3ReportSink::new(aws.s3.clone(), &bucket);
    sink.put(
        "reports/x/a.json",
        "application/json",
        b"{\"a\":1}".to_vec(),
    )
    .await
    .unwrap();
    sink.put(
        "reports/x/a.json",
        "application/json",
        b"{\"a\":2}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        sink.get("reports/x/a.json").await.unwrap().unwrap(),
        b"{\"a\":2}"
    );
    assert!(sink.get("reports/x/none.json").await.unwrap().is_none());
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("reports/x/a.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
}

const TWO_STORES: &str = "[stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://x/12\"\n\
    currency = \"GBP\"\n[stores.MAN-01]\ncentra_warehouse_id = 13\ncloudshelf_location = \"gid://x/13\"\ncurrency = \"GBP\"\n";

/// A stack on `sim` whose catalogue snapshot holds Centra's sizes (what the SKU audit writes).
async fn stack_on(sim: &simulators::centra::CentraSim, mappings: &str) -> Stack {
    let stack = Stack::create(StackParameters::new(
        &sim.graphql_url(),
        sim.token(),
        mappings,
    ))
    .await;
    let centra = CentraClient::new(sim.graphql_url(), sim.token(), Duration::from_secs(10));
    let sizes = centra.all_product_sizes(200).await.unwrap();
    stack
        .put_catalogue_snapshot(sizes.iter().map(shared::centra::SizeRecord::from).collect())
        .await;
    stack
}

#[tokio::test]
async fn stock_drift_resumes_from_dynamo_and_reports_to_s3() {
    let skus: Vec<String> = (0..60).map(|i| format!("S3-{i:03}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let config = CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    };
    let (sim, _) = sim_with_mappings(
        &refs,
        0,
        config,
        Arc::new(Mappings::from_toml(TWO_STORES).unwrap()),
    )
    .await;
    let stack = stack_on(&sim, TWO_STORES).await;
    let pipeline = StockPipeline::new(&stack).await;
    let lines: Vec<(&str, i64)> = refs.iter().map(|s| (*s, 6)).collect();
    let at = chrono::Utc::now().timestamp_millis() - 60_000;
    for (n, store) in ["LDN-01", "MAN-01"].iter().enumerate() {
        let status = pipeline
            .send(
                &format!("evt_{n}"),
                &movement("stock.count", store, at, &lines),
            )
            .await;
        assert_eq!(status, 202);
    }
    pipeline.settle().await;
    sim.set_physical(13, "S3-042", 2);

    // Reconcile as its main builds it; the test paces its clock by Centra's pages.
    let clock = ManualClock::at(chrono::Utc::now().timestamp_millis());
    let mut ctx = stack.reconcile().await;
    ctx.centra_stock = Arc::new(SlowPages {
        centra: CentraClient::new(sim.graphql_url(), sim.token(), Duration::from_secs(10)),
        clock: clock.clone(),
    });
    ctx.clock = Arc::new(clock.clone()) as SharedClock;
    ctx.settings.page_interval = Duration::ZERO;
    ctx.settings.deadline_margin_ms = 0;
    // Two Centra pages per store.
    ctx.settings.page_limit = 30;
    let sink = S3ReportSink::new(
        stack.admin.s3(),
        &stack.resources["ReportsBucket"].reference,
    );

    // A page takes 1 s on the job's clock and an invocation 2.5 s: one page each, resumed from DynamoDB.
    let mut invocations = Vec::new();
    loop {
        let run = run_stock_drift(
            &ctx,
            &RunOptions {
                deadline_ms: clock.now_millis() + 2_500,
                ..Default::default()
            },
        )
        .await;
        stack.assert_no_denials();
        let run = run.unwrap();
        let finished = run.finished;
        invocations.push(run);
        if finished {
            break;
        }
        assert!(invocations.len() < 10);
    }
    assert!(invocations.len() >= 4, "{} invocations", invocations.len());
    assert!(invocations[1..]
        .iter()
        .all(|r| r.resumed && r.run_id == invocations[0].run_id));
    let run = invocations.last().unwrap();
    assert_eq!(run.counters.get(counter::DRIFTED), 1);
    assert_eq!(run.counters.get(counter::ROWS_COMPARED), 120);

    let json_key = run
        .report_keys
        .iter()
        .find(|k| k.ends_with("/stock_drift.json"))
        .unwrap();
    assert!(json_key.starts_with("reports/") && json_key.contains(&format!("/{}/", run.run_id)));
    let report: StockDriftReport =
        serde_json::from_slice(&sink.get(json_key).await.unwrap().unwrap()).unwrap();
    assert_eq!(report.drifted.len(), 1);
    assert_eq!(
        (
            report.drifted[0].store.as_str(),
            report.drifted[0].sku.as_str(),
            report.drifted[0].centra_quantity
        ),
        ("MAN-01", "S3-042", Some(2))
    );
    let csv = sink
        .get(&json_key.replace(".json", ".csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 2);
    let html_key = json_key.replace("stock_drift.json", "summary.html");
    let html = String::from_utf8(sink.get(&html_key).await.unwrap().unwrap()).unwrap();
    assert!(html.contains("data-job=\"stock_drift\">1<"));
    let head = stack
        .admin
        .s3()
        .head_object()
        .bucket(&stack.resources["ReportsBucket"].reference)
        .key(&html_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    assert!(sink.get("reports/history.json").await.unwrap().is_some());

    let stored = DynamoCheckpointStore::new(
        stack.admin.dynamodb(),
        &stack.resources["StockTable"].reference,
    )
    .load(JobKind::StockDrift, "all")
    .await
    .unwrap()
    .unwrap();
    assert!(stored.finished());
    assert_eq!(stored.invocations as usize, invocations.len());
    stack.assert_deployable();
}

#[tokio::test]
async fn alerts_are_published_to_the_sns_topic() {
    let (sim, _) = sim_with(&["A-1"], 1, CentraSimConfig::default()).await;
    let stack = Stack::create(StackParameters::new(
        &sim.graphql_url(),
        sim.token(),
        shared::config::mappings::EMBEDDED_DEFAULT,
    ))
    .await;
    use shared::adapters::aws::recon::SnsAlertSink;
    use shared::recon::AlertSink;
    // The alert topic reconcile is given (ALERT_TOPIC_ARN), published to under its role.
    let ctx = stack.reconcile().await;
    let sink = ctx
        .alerts
        .as_ref()
        .expect("the template gives reconcile an alert topic");
    // Non-ASCII and over-long subjects are made acceptable to SNS rather than refused.
    let subject = format!(
        "[reconciliation] Stock drift: 3 drifted SKUs — {}",
        "x".repeat(200)
    );
    sink.alert(&subject, "LDN-01 Tee07-M centra 2 ledger 5")
        .await
        .expect("published");
    stack.assert_deployable();

    let arn = &stack.resources["AlertTopic"].reference;
    let missing = SnsAlertSink::new(stack.admin.sns(), format!("{arn}-does-not-exist"));
    let err = missing.alert("s", "m").await.unwrap_err();
    assert!(err.to_string().contains("Publish"), "{err}");
}

const JOBS_MAPPINGS: &str = r#"
[stores.LDN-01]
centra_warehouse_id = 12
cloudshelf_location = "gid://external/CentraWarehouse/12"
currency = "GBP"
drift_policy = "correct"

[stores.MAN-01]
centra_warehouse_id = 13
cloudshelf_location = "gid://external/CentraWarehouse/13"
currency = "GBP"
finance_posting = "daily"
"#;

/// The CSV report among a run's report files.
async fn report_csv(sink: &S3ReportSink, keys: &[String]) -> String {
    let key = keys
        .iter()
        .find(|k| k.ends_with(".csv"))
        .unwrap_or_else(|| panic!("no CSV among {keys:?}"));
    String::from_utf8(sink.get(key).await.unwrap().expect("the CSV report")).unwrap()
}

/// One scheduled invocation, as reconcile's main handles it.
async fn invoke(
    ctx: &shared::recon::ReconContext,
    watch: &deployed::Watch,
    request: serde_json::Value,
) -> shared::recon::request::ReconResponse {
    let request: shared::recon::request::ReconRequest = serde_json::from_value(request).unwrap();
    let deadline_ms = ctx.clock.now_millis() + 600_000;
    let response = shared::recon::request::handle_request(ctx, &request, deadline_ms).await;
    watch.assert_no_denials();
    let response = response.unwrap_or_else(|e| panic!("{}: {e}", request.job));
    assert!(response.finished, "{response:?}");
    response
}

/// Every reconciliation job and the finance close, run by reconcile as deployed over what the deployed stock path
/// wrote: the SKU audit's snapshot feeds intake, drift corrections go through the stock queue, the availability
/// state and reports land in S3, the stalled-orders scan and the daily store's flush run, and findings are
/// published to the alert topic — each under the reconcile role.
#[tokio::test]
async fn every_job_runs_under_the_reconcile_role() {
    use shared::recon::compare::size_gid;
    use simulators::centra::CentraSim;
    use simulators::cloudshelf::{CloudshelfSim, CloudshelfSimConfig, VariantSeed};
    let centra = CentraSim::start(CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    })
    .await;
    centra.add_warehouse(12, "London");
    centra.add_warehouse(13, "Manchester");
    let cloudshelf = CloudshelfSim::start(CloudshelfSimConfig::default()).await;
    cloudshelf.add_location(Some("gid://external/CentraWarehouse/12"));
    cloudshelf.add_location(Some("gid://external/CentraWarehouse/13"));
    for i in 0..4 {
        let sku = format!("P{i}S");
        let ean = format!("73500000{i:05}");
        centra.add_product(&format!("P{i}"), "V1", &[("S", &sku, Some(&ean), true)]);
        centra.set_physical(12, &sku, 10);
        centra.set_physical(13, &sku, 10);
        let product = cloudshelf.add_product(
            Some(&format!("gid://external/CentraProduct/{i}")),
            &format!("Item {i}"),
        );
        cloudshelf.add_product_variant(
            &product,
            VariantSeed {
                platform_provided_id: Some(size_gid(&sku)),
                sku: Some(sku.clone()),
                barcode: Some(ean),
            },
        );
    }
    let stack = Stack::create(
        StackParameters::new(&centra.graphql_url(), centra.token(), JOBS_MAPPINGS)
            .value("CloudshelfApiUrl", cloudshelf.graphql_url())
            .secret("CloudshelfApiKeySecretArn", cloudshelf.api_key()),
    )
    .await;
    let bucket = stack.resources["ReportsBucket"].reference.clone();
    let sink = S3ReportSink::new(stack.admin.s3(), &bucket);
    let mut ctx = stack.reconcile().await;
    let watch = stack.watch();
    ctx.settings.page_interval = Duration::ZERO;
    ctx.settings.retry_pause = Duration::ZERO;

    // The nightly SKU audit writes the catalogue snapshot intake resolves names from.
    let audit = invoke(&ctx, &watch, serde_json::json!({"job": "sku_audit"})).await;
    assert_eq!(audit.counters.get("matched"), 4, "{audit:?}");
    assert!(sink
        .get(shared::stock::identity::SNAPSHOT_KEY)
        .await
        .unwrap()
        .is_some());

    // LDN-01 counts its shelf (the ledger's anchor for drift), then sales at both stores through the deployed
    // stock path: LDN-01 posts at once, MAN-01 (daily) is held.
    let pipeline = StockPipeline::new(&stack).await;
    let at = chrono::Utc::now().timestamp_millis() - 10 * 60_000;
    let counts: Vec<(&str, i64)> = ["P0S", "P1S", "P2S", "P3S"]
        .iter()
        .map(|s| (*s, 10))
        .collect();
    assert_eq!(
        pipeline
            .send(
                "evt_c1",
                &movement("stock.count", "LDN-01", at - 60_000, &counts)
            )
            .await,
        202
    );
    for (id, store) in [("evt_l1", "LDN-01"), ("evt_m1", "MAN-01")] {
        assert_eq!(
            pipeline
                .send(id, &sale(store, at, &[("P0S", 2), ("P1S", 1)]))
                .await,
            202
        );
    }
    pipeline.settle().await;
    assert_eq!(centra.stock(12, "P0S").unwrap().physical, 8);
    assert_eq!(
        centra.stock(13, "P0S").unwrap().physical,
        10,
        "held for the close"
    );

    // Something else wrote LDN-01's stock: the drift is corrected through the stock queue.
    centra.set_physical(12, "P2S", 3);
    let drift = invoke(
        &ctx,
        &watch,
        serde_json::json!({"job": "stock_drift", "full": true}),
    )
    .await;
    assert_eq!(drift.counters.get(counter::DRIFTED), 1, "{drift:?}");
    pipeline.settle().await;
    assert_eq!(centra.stock(12, "P2S").unwrap().physical, 10, "corrected");

    let availability = invoke(&ctx, &watch, serde_json::json!({"job": "availability"})).await;
    assert!(
        availability.counters.get("levels_pushed") > 0,
        "{availability:?}"
    );
    assert!(sink
        .get(&shared::recon::jobs::availability::pushed_levels_key(
            "LDN-01"
        ))
        .await
        .unwrap()
        .is_some());

    // The archiver gave up on a stream batch: Lambda put its position in the gap queue. The stalled-orders run
    // reports it (and leaves it queued for the operator's backfill).
    let gap_queue = stack.resources["ArchiveGapQueue"].reference.clone();
    stack
        .admin
        .sqs()
        .send_message()
        .queue_url(&gap_queue)
        .message_body(
            serde_json::json!({
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
                "version": "1.0", "timestamp": "2026-12-07T05:00:00.000Z",
                "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "100",
                    "endSequenceNumber": "137", "approximateArrivalOfFirstRecord": "2026-12-07T04:10:01Z",
                    "approximateArrivalOfLastRecord": "2026-12-07T04:11:00Z", "batchSize": 38}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let stalled = invoke(&ctx, &watch, serde_json::json!({"job": "stalled_orders"})).await;
    assert!(!stalled.report_keys.is_empty());
    assert_eq!(stalled.counters.get("archive_gaps"), 1, "{stalled:?}");
    let csv = report_csv(&sink, &stalled.report_keys).await;
    assert!(
        csv.contains("archive backfill --from 2026-12-07T04:10:01Z --to 2026-12-07T04:11:00Z"),
        "{csv}"
    );
    let again = invoke(&ctx, &watch, serde_json::json!({"job": "stalled_orders"})).await;
    assert_eq!(
        again.counters.get("archive_gaps"),
        1,
        "still queued for the operator"
    );

    // An hour after MAN-01's close: its held sales are handed to the pusher, LDN-01's day validates.
    let man = ctx.mappings.store("MAN-01").unwrap().clone();
    let close = man.close_instant(man.business_date(at)).timestamp_millis();
    ctx.clock = Arc::new(ManualClock::at(close + 3_600_000)) as SharedClock;
    let finance = invoke(&ctx, &watch, serde_json::json!({"job": "finance_close"})).await;
    assert_eq!(finance.counters.get("rows_flushed"), 2, "{finance:?}");
    pipeline.push_all().await;
    assert_eq!(
        centra.stock(13, "P0S").unwrap().physical,
        8,
        "posted by the close"
    );
    ctx.clock = Arc::new(ManualClock::at(close + 2 * 3_600_000)) as SharedClock;
    let finance = invoke(&ctx, &watch, serde_json::json!({"job": "finance_close"})).await;
    assert_eq!(finance.counters.get("unvalidated"), 0, "{finance:?}");
    stack.assert_deployable();
}
