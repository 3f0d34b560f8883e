//! The whole stock flow on the AWS implementations, against moto (DynamoDB + SQS) and the Centra simulator:
//! intake → SQS FIFO → apply (as the FIFO trigger would call it) → SQS push queue → push → Centra.
//! Nothing emulates the SQS → Lambda trigger offline, so the test receives, calls the handler with the
//! batch, and deletes what the handler did not report as failed — exactly the trigger's contract.

mod common;

use common::*;
use shared::apply::StockApplier;
use shared::aws::provision::*;
use shared::aws::sqs::{change_visibility, delete_messages, receive_batch};
use shared::aws::*;
use shared::batch::FifoItem;
use shared::centra::CentraClient;
use shared::intake::{IntakeRequest, IntakeSettings, StoreEventIntake};
use shared::mappings::Mappings;
use shared::metrics::{names, Metrics};
use shared::ports::DirtyKey;
use shared::push::{PushSettings, StockPusher};
use shared::signature::{sign, WebhookVerifier};
use shared::time::system_clock;
use simulators::centra::CentraSimConfig;
use std::sync::Arc;
use std::time::Duration;

struct Stack {
    sqs: aws_sdk_sqs::Client,
    stock_queue: String,
    stock_dlq: String,
    push_queue: String,
    intake: StoreEventIntake,
    applier: StockApplier,
    pusher: StockPusher,
    metrics: Arc<Metrics>,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn stack(
    centra_url: String,
    token: String,
    mappings: Arc<Mappings>,
    max_receives: u32,
) -> Stack {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run scripts/test.sh (starts moto)");
    }
    let sdk = sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let idem = unique("idem");
    let stock = unique("stock");
    create_idempotency_table(&dynamo, &idem).await.unwrap();
    create_stock_table(&dynamo, &stock).await.unwrap();
    let (stock_queue, stock_dlq) =
        create_fifo_queue_with_dlq(&sqs, &unique("stock"), max_receives, 30)
            .await
            .unwrap();
    let (push_queue, _) = create_standard_queue_with_dlq(&sqs, &unique("push"), 5, 30)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let ledger = Arc::new(DynamoLedgerStore::new(dynamo.clone(), &stock, &idem));
    let push_q = Arc::new(SqsPushQueue::new(sqs.clone(), &push_queue));
    let centra = CentraClient::new(centra_url, token, Duration::from_secs(5));
    let catalogue = Arc::new(shared::identity::ItemCatalogue::new(
        Some(Arc::new(shared::identity::CatalogueRead(centra.clone()))),
        Some(Arc::new(centra.clone())),
        Default::default(),
        system_clock(),
    ));
    Stack {
        intake: StoreEventIntake {
            verifier: WebhookVerifier::from_config(SECRET).unwrap(),
            mappings: mappings.clone(),
            idempotency: Arc::new(DynamoIdempotencyStore::new(dynamo.clone(), &idem)),
            queue: Arc::new(SqsStockQueue::new(sqs.clone(), &stock_queue)),
            orders: None,
            catalogue: catalogue.clone(),
            clock: system_clock(),
            metrics: metrics.clone(),
            settings: IntakeSettings::default(),
        },
        applier: StockApplier {
            ledger: ledger.clone(),
            push_queue: push_q.clone(),
            exceptions: ledger.clone(),
            metrics: metrics.clone(),
            clock: system_clock(),
            finance: Default::default(),
        },
        pusher: StockPusher {
            ledger: ledger.clone(),
            push_log: ledger.clone(),
            exceptions: ledger,
            budget: Arc::new(DynamoMutationBudget::new(
                dynamo,
                &idem,
                unique("centra"),
                20,
                1800,
            )),
            push_queue: push_q,
            centra,
            catalogue,
            mappings,
            metrics: metrics.clone(),
            clock: system_clock(),
            settings: PushSettings::default(),
            finance: Default::default(),
        },
        sqs,
        stock_queue,
        stock_dlq,
        push_queue,
        metrics,
    }
}

impl Stack {
    async fn send(&self, id: &str, body: &str) -> u16 {
        let ts = chrono::Utc::now().timestamp();
        let sig = sign(SECRET, id, ts, body.as_bytes());
        let ts = ts.to_string();
        self.intake
            .handle(IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some(id),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some(&sig),
                body: body.as_bytes(),
            })
            .await
            .status
    }

    /// One FIFO trigger invocation. `delete` false simulates a crash before the trigger deletes the batch.
    async fn apply_batch(&self, delete: bool) -> usize {
        let got = receive_batch(&self.sqs, &self.stock_queue, 10, 30)
            .await
            .unwrap();
        let items = got
            .iter()
            .map(|m| FifoItem {
                message_id: m.message_id.clone(),
                group_id: m.group_id.clone().expect("FIFO messages carry a group"),
                payload: m.body.clone(),
            })
            .collect();
        let failed = self.applier.process_batch(items).await;
        for m in &got {
            if failed.contains(&m.message_id) || !delete {
                change_visibility(&self.sqs, &self.stock_queue, &m.receipt_handle, 0)
                    .await
                    .unwrap();
            } else {
                delete_messages(
                    &self.sqs,
                    &self.stock_queue,
                    std::slice::from_ref(&m.receipt_handle),
                )
                .await
                .unwrap();
            }
        }
        got.len()
    }

    async fn apply_all(&self) {
        while self.apply_batch(true).await > 0 {}
    }

    /// One push trigger invocation over everything in the push queue.
    async fn push_all(&self) {
        loop {
            let got = receive_batch(&self.sqs, &self.push_queue, 10, 30)
                .await
                .unwrap();
            if got.is_empty() {
                return;
            }
            let keys: Vec<DirtyKey> = got
                .iter()
                .map(|m| serde_json::from_str(&m.body).unwrap())
                .collect();
            let report = self
                .pusher
                .push_keys(keys.clone(), self.pusher.clock.now_millis() + 30_000)
                .await;
            assert!(report.failed_keys.is_empty(), "{report:?}");
            let handles: Vec<String> = got.iter().map(|m| m.receipt_handle.clone()).collect();
            delete_messages(&self.sqs, &self.push_queue, &handles)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn store_events_reach_centra_through_sqs_and_dynamodb_exactly_once() {
    let (sim, mappings) = sim_with(&["W-1", "W-2"], 20, CentraSimConfig::default()).await;
    let s = stack(
        sim.graphql_url(),
        sim.token().to_string(),
        mappings.clone(),
        5,
    )
    .await;
    let at = chrono::Utc::now().timestamp_millis() - 60_000;
    let body = sale("LDN-01", at, &[("W-1", 2), ("W-2", 1)]);
    assert_eq!(s.send("aws-1", &body).await, 202);
    assert_eq!(s.send("aws-1", &body).await, 200, "DynamoDB idempotency");
    assert_eq!(
        s.send(
            "aws-2",
            &movement("stock.count", "MAN-01", at, &[("W-1", 5)])
        )
        .await,
        202
    );
    assert_eq!(
        s.send("aws-3", &sale("MAN-01", at + 1000, &[("W-1", 1)]))
            .await,
        202
    );
    // The first trigger invocation dies before deleting its batch: SQS redelivers it.
    assert!(s.apply_batch(false).await > 0);
    s.apply_all().await;
    s.push_all().await;
    assert_eq!(
        sim.stock(warehouse(&mappings, "LDN-01"), "W-1")
            .unwrap()
            .physical,
        18
    );
    assert_eq!(
        sim.stock(warehouse(&mappings, "LDN-01"), "W-2")
            .unwrap()
            .physical,
        19
    );
    assert_eq!(
        sim.stock(warehouse(&mappings, "MAN-01"), "W-1")
            .unwrap()
            .physical,
        4
    );
    assert!(
        s.metrics.total(names::MOVEMENTS_DUPLICATE) >= 1.0,
        "the redelivered batch was deduplicated"
    );
    assert_eq!(
        sim.mutation_count(),
        2,
        "one changeStock for LDN-01, one setStock for MAN-01"
    );
}

#[tokio::test]
async fn an_unreadable_message_becomes_an_exception_without_blocking_others() {
    let (sim, mappings) = sim_with(&["D-1", "D-2"], 20, CentraSimConfig::default()).await;
    let s = stack(sim.graphql_url(), sim.token().to_string(), mappings, 2).await;
    // A message no intake would produce (a manual send) must not block its group or vanish.
    s.intake
        .queue
        .send_all(&[shared::ports::FifoMessage {
            group_id: "D-1".into(),
            dedup_id: "poison".into(),
            body: "{\"not\":\"a movement\"}".into(),
        }])
        .await
        .unwrap();
    let at = chrono::Utc::now().timestamp_millis() - 60_000;
    assert_eq!(s.send("ok", &sale("LDN-01", at, &[("D-2", 1)])).await, 202);
    s.apply_all().await;
    s.push_all().await;
    assert_eq!(
        sim.stock(12, "D-2").unwrap().physical,
        19,
        "other groups flow"
    );
    // The unreadable message was recorded as an exception and acknowledged: nothing left in the queue.
    let exceptions = shared::ports::ExceptionLog::list(s.applier.exceptions.as_ref(), Some("-"))
        .await
        .unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].kind, "unreadable_message");
    assert!(receive_batch(&s.sqs, &s.stock_dlq, 10, 0)
        .await
        .unwrap()
        .is_empty());
}
