//! The whole stock flow on the AWS implementations, against moto (DynamoDB + SQS + S3 + Secrets Manager + SSM)
//! and the Centra simulator: intake → SQS FIFO → apply (as the FIFO trigger would call it) → SQS push queue →
//! push → Centra. Each function is built by its own wiring with the template's environment and runs under its
//! template role (shared/tests/deployed). Nothing emulates the SQS → Lambda trigger offline, so the test receives,
//! calls the handler with the batch, and deletes what the handler did not report as failed — exactly the
//! trigger's contract (the trigger's own SQS rights are the Lambda service's, not the function's code).

use crate::common;
use crate::deployed;

use common::*;
use deployed::{Stack, StackParameters, StockPipeline};
use shared::adapters::aws::sqs::receive_batch;
use shared::adapters::aws::*;
use shared::config::mappings::EMBEDDED_DEFAULT;
use shared::stock::ports::StockQueue;
use shared::telemetry::metrics::names;
use simulators::centra::CentraSimConfig;

struct Flow {
    stack: Stack,
    pipeline: StockPipeline,
    stock_dlq: String,
}

impl std::ops::Deref for Flow {
    type Target = StockPipeline;
    fn deref(&self) -> &StockPipeline {
        &self.pipeline
    }
}

async fn flow(centra_url: String, token: String) -> Flow {
    let stack = Stack::create(StackParameters::new(&centra_url, &token, EMBEDDED_DEFAULT)).await;
    Flow {
        pipeline: StockPipeline::new(&stack).await,
        stock_dlq: stack.resources["StockDLQ"].reference.clone(),
        stack,
    }
}

#[tokio::test]
async fn store_events_reach_centra_through_sqs_and_dynamodb_exactly_once() {
    let (sim, mappings) = sim_with(&["W-1", "W-2"], 20, CentraSimConfig::default()).await;
    let s = flow(sim.graphql_url(), sim.token().to_string()).await;
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
        s.applier.metrics.total(names::MOVEMENTS_DUPLICATE) >= 1.0,
        "the redelivered batch was deduplicated"
    );
    assert_eq!(
        sim.mutation_count(),
        2,
        "one changeStock for LDN-01, one setStock for MAN-01"
    );
    s.stack.assert_deployable();
}

#[tokio::test]
async fn an_unreadable_message_becomes_an_exception_without_blocking_others() {
    let (sim, _) = sim_with(&["D-1", "D-2"], 20, CentraSimConfig::default()).await;
    let s = flow(sim.graphql_url(), sim.token().to_string()).await;
    // A message no intake would produce (a manual send) must not block its group or vanish.
    SqsFifoQueue::new(s.sqs.clone(), &s.stock_queue)
        .send_all(&[shared::stock::ports::FifoMessage {
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
    let ledger = DynamoLedgerStore::new(
        s.stack.admin.dynamodb(),
        &s.stack.resources["StockTable"].reference,
        &s.stack.resources["IdempotencyTable"].reference,
    );
    let exceptions = shared::stock::ports::ExceptionLog::list(&ledger, Some("-"))
        .await
        .unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].kind, "unreadable_message");
    assert!(receive_batch(&s.sqs, &s.stock_dlq, 10, 0)
        .await
        .unwrap()
        .is_empty());
    s.stack.assert_deployable();
}

/// `shelfsync trace event` against the deployed tables: what it reads (the idempotency record intake wrote, the
/// applier's DynamoDB marker, the ledger row, the push record) at each stage of one sale, with the operator's
/// rights rather than a function role, and Centra's change as the simulator recorded it.
#[tokio::test]
async fn a_trace_follows_one_sale_through_sqs_and_dynamodb() {
    use shared::ops::trace::{LineStage, TraceSources};
    use std::sync::Arc;
    let (sim, mappings) = sim_with(&["T-1"], 20, CentraSimConfig::default()).await;
    let s = flow(sim.graphql_url(), sim.token().to_string()).await;
    let at = chrono::Utc::now().timestamp_millis() - 60_000;
    assert_eq!(
        s.send("aws-trace-1", &sale("LDN-01", at, &[("T-1", 3)]))
            .await,
        202
    );
    let dynamo = s.stack.admin.dynamodb();
    let ledger = Arc::new(DynamoLedgerStore::new(
        dynamo.clone(),
        &s.stack.resources["StockTable"].reference,
        &s.stack.resources["IdempotencyTable"].reference,
    ));
    let sources = TraceSources {
        idempotency: Arc::new(DynamoIdempotencyStore::new(
            dynamo.clone(),
            &s.stack.resources["IdempotencyTable"].reference,
        )),
        ledger: ledger.clone(),
        markers: ledger.clone(),
        push_log: ledger.clone(),
        exceptions: ledger.clone(),
        outbox: Some(Arc::new(DynamoOrderOutbox::new(
            dynamo,
            &s.stack.resources["StockTable"].reference,
        ))),
        centra: Some(shared::centra::CentraClient::new(
            sim.graphql_url(),
            sim.token(),
            std::time::Duration::from_secs(5),
        )),
        mappings: mappings.clone(),
        clock: shared::core::clock::system_clock(),
    };

    let t = sources.trace_event("aws-trace-1").await.unwrap();
    let accepted = t.accepted.clone().expect("accepted");
    assert_eq!(accepted.intake_status, "completed");
    assert_eq!(t.lines[0].stage, LineStage::NotApplied);

    s.apply_all().await;
    let t = sources.trace_event("aws-trace-1").await.unwrap();
    let line = &t.lines[0];
    assert_eq!(line.stage, LineStage::WaitingForPush, "{}", line.detail);
    assert_eq!(line.resolved_to.as_deref(), Some("sku:T-1"));
    assert_eq!(line.version, Some(1));

    s.push_all().await;
    let t = sources.trace_event("aws-trace-1").await.unwrap();
    let line = &t.lines[0];
    assert_eq!(line.stage, LineStage::InCentra, "{}", line.detail);
    let push = line.push.as_ref().expect("the carrying push");
    let changes = sim.stock_changes();
    let change = changes
        .iter()
        .find(|c| c.comment.contains(&format!("push {}/", push.push_id)))
        .expect("Centra holds the push's change");
    assert_eq!(
        push.centra_change_id.as_deref(),
        Some(change.id.to_string().as_str())
    );
    let change_at = push.centra_change_at.as_deref().expect("Centra's time");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(change_at)
            .unwrap()
            .timestamp(),
        change.created_at.timestamp()
    );
    assert_eq!(
        line.accepted_to_centra_ms,
        Some(push.recorded_at_ms - accepted.received_at_ms)
    );
    assert_eq!(
        sim.stock(warehouse(&mappings, "LDN-01"), "T-1")
            .unwrap()
            .physical,
        17
    );
}
