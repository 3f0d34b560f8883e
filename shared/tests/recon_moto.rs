//! Reconciliation's AWS adapters against moto: checkpoints in the stock table (conditional on the revision) and
//! reports in S3 (path-style, as moto needs), then a whole stock-drift run over several invocations with both.
//! `scripts/test.sh` starts moto and sets `AWS_ENDPOINT_URL`; every test uses its own table and bucket.

mod common;

use common::*;
use shared::aws::provision::create_stock_table;
use shared::aws::sdk_config;
use shared::centra::{CentraClient, CentraError};
use shared::centra_catalogue::CentraStockRow;
use shared::domain::StoreCode;
use shared::mappings::Mappings;
use shared::metrics::Metrics;
use shared::recon::aws::{s3_client, DynamoCheckpointStore, S3ReportSink};
use shared::recon::checkpoint::{Checkpoint, Cursor, PartRef, RunSignature};
use shared::recon::stock_drift::{counter, StockDriftReport};
use shared::recon::{
    run_stock_drift, CheckpointStore, Counters, JobKind, ReconContext, ReconSettings, ReportSink,
    RunOptions, WarehouseStockSource,
};
use shared::time::{Clock, ManualClock, SharedClock};
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

#[tokio::test]
async fn stock_drift_resumes_from_dynamo_and_reports_to_s3() {
    let aws = aws().await;
    let table = unique("stock");
    create_stock_table(&aws.dynamo, &table).await.unwrap();
    let bucket = bucket(&aws).await;

    let skus: Vec<String> = (0..250).map(|i| format!("S3-{i:03}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let config = CentraSimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    };
    let h = Harness::with(&refs, 0, config, |_| {}).await;
    let lines: Vec<(&str, i64)> = refs.iter().map(|s| (*s, 6)).collect();
    for (n, store) in ["LDN-01", "MAN-01"].iter().enumerate() {
        let r = h
            .send(
                &format!("evt_{n}"),
                &movement("stock.count", store, h.now_ms() - 60_000, &lines),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    h.settle().await;
    h.sim
        .set_physical(warehouse(&h.mappings, "MAN-01"), "S3-210", 2);

    let clock = ManualClock::at(chrono::Utc::now().timestamp_millis());
    let mappings = Arc::new(
        Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://x/12\"\ncurrency = \"GBP\"\n\
             [stores.MAN-01]\ncentra_warehouse_id = 13\ncloudshelf_location = \"gid://x/13\"\ncurrency = \"GBP\"\n",
        )
        .unwrap(),
    );
    let sink = Arc::new(S3ReportSink::new(aws.s3.clone(), &bucket));
    let ctx = ReconContext {
        mappings,
        ledger: h.pipeline.ledger.clone(),
        stock_queue: h.pipeline.stock_queue.clone(),
        exceptions: h.pipeline.ledger.clone(),
        centra_stock: Arc::new(SlowPages {
            centra: CentraClient::new(h.sim.graphql_url(), h.sim.token(), Duration::from_secs(10)),
            clock: clock.clone(),
        }),
        checkpoints: Arc::new(DynamoCheckpointStore::new(aws.dynamo.clone(), &table)),
        reports: sink.clone(),
        metrics: Arc::new(Metrics::new()),
        clock: Arc::new(clock.clone()) as SharedClock,
        settings: ReconSettings {
            page_interval: Duration::ZERO,
            deadline_margin_ms: 0,
            ..Default::default()
        },
        alerts: None,
        sources: Default::default(),
    };

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
        .await
        .unwrap();
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
    assert_eq!(run.counters.get(counter::ROWS_COMPARED), 500);

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
        ("MAN-01", "S3-210", Some(2))
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
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key(&html_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    assert!(sink.get("reports/history.json").await.unwrap().is_some());

    let stored = ctx
        .checkpoints
        .load(JobKind::StockDrift, "all")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.finished());
    assert_eq!(stored.invocations as usize, invocations.len());
}

#[tokio::test]
async fn alerts_are_published_to_the_sns_topic() {
    use shared::recon::aws::SnsAlertSink;
    use shared::recon::AlertSink;
    let aws = aws().await;
    let sns = aws_sdk_sns::Client::new(&aws.config);
    let topic = sns
        .create_topic()
        .name(unique("recon-alerts"))
        .send()
        .await
        .expect("create topic");
    let arn = topic.topic_arn().expect("topic arn").to_string();
    let sink = SnsAlertSink::new(sns.clone(), &arn);
    // Non-ASCII and over-long subjects are made acceptable to SNS rather than refused.
    let subject = format!(
        "[reconciliation] Stock drift: 3 drifted SKUs — {}",
        "x".repeat(200)
    );
    sink.alert(&subject, "LDN-01 Tee07-M centra 2 ledger 5")
        .await
        .expect("published");

    let missing = SnsAlertSink::new(sns, format!("{arn}-does-not-exist"));
    let err = missing.alert("s", "m").await.unwrap_err();
    assert!(err.to_string().contains("Publish"), "{err}");
}
