//! The sample events in `events/` stay usable: they parse as the Lambda events they claim to be and carry
//! bodies our handlers accept.

use aws_lambda_events::sqs::SqsEvent;
use shared::config::mappings::Mappings;
use shared::events::store_events::{parse_stock_event, StockLineMessage};
use shared::intake::signature::WebhookVerifier;
use shared::lambda::sqs::{dirty_keys, fifo_items};

fn read(name: &str) -> serde_json::Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample exists"))
        .expect("valid JSON")
}

#[test]
fn webhook_intake_sample_is_signed_and_valid() {
    let event = read("webhook-intake.json");
    let headers = &event["headers"];
    let body = event["body"].as_str().unwrap();
    let ts: i64 = headers["webhook-timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let verifier = WebhookVerifier::from_config("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let id = verifier
        .verify(
            headers["webhook-id"].as_str(),
            headers["webhook-timestamp"].as_str(),
            headers["webhook-signature"].as_str(),
            body.as_bytes(),
            ts,
        )
        .expect("signature verifies at its own timestamp");
    let parsed = parse_stock_event(
        id,
        body.as_bytes(),
        &Mappings::embedded_default(),
        ts * 1000 + 60_000,
    );
    assert!(parsed.is_ok(), "{parsed:?}");
    assert_eq!(event["routeKey"], "POST /v1/store-events");
}

#[test]
fn stock_apply_sample_is_a_fifo_batch_of_stock_messages() {
    let event: SqsEvent = serde_json::from_value(read("stock-apply.json")).unwrap();
    let items = fifo_items(event);
    assert!(items.len() >= 2);
    for item in items {
        let msg: StockLineMessage =
            serde_json::from_str(&item.payload).expect("a stock line message");
        assert_eq!(item.group_id, msg.item.group_id(), "group id = SKU");
    }
}

#[test]
fn stock_push_sample_holds_dirty_keys() {
    let event: SqsEvent = serde_json::from_value(read("stock-push.json")).unwrap();
    let (keys, unreadable) = dirty_keys(event);
    assert!(!keys.is_empty());
    assert!(unreadable.is_empty());
}

#[test]
fn order_sync_sample_holds_a_kiosk_order_and_a_centra_event() {
    use shared::events::orders::OrderQueueMessage;
    let event: SqsEvent = serde_json::from_value(read("order-sync.json")).unwrap();
    let items = fifo_items(event);
    assert_eq!(items.len(), 2);
    for item in items {
        match serde_json::from_str::<OrderQueueMessage>(&item.payload).expect("an orders message") {
            OrderQueueMessage::Placed(order) => {
                assert_eq!(item.group_id, order.cloudshelf_order_id);
                assert_eq!(
                    order
                        .lines_total()
                        .unwrap()
                        .checked_add(order.shipping_price),
                    Some(order.payment.amount),
                    "the sample's totals add up"
                );
            }
            OrderQueueMessage::CentraEvent(e) => {
                assert_eq!(item.group_id, format!("centra-{}-{}", e.kind, e.id));
            }
        }
    }
}

#[test]
fn reconcile_samples_are_requests_the_function_accepts() {
    use shared::recon::request::ReconRequest;
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("reconcile-") {
            continue;
        }
        let request: ReconRequest =
            serde_json::from_value(read(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (job, opts) = request
            .options(1_800_000_000_000, 1_800_000_900_000)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(store) = &opts.store {
            assert!(
                Mappings::embedded_default().store(store.as_str()).is_some(),
                "{name}"
            );
        }
        seen.insert(job);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        shared::recon::JobKind::ALL.to_vec(),
        "one sample per job at least"
    );
}
