//! SQS trigger adapters shared by the stock-apply and stock-push functions: Lambda's SQS event in, the
//! partial batch response (`ReportBatchItemFailures`) out. The only place the domain meets Lambda's types.

use crate::stock::batch::FifoItem;
use crate::stock::ports::DirtyKey;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

/// FIFO records as batch items; the group id comes from the record's `MessageGroupId` attribute.
pub fn fifo_items(event: SqsEvent) -> Vec<FifoItem<String>> {
    event
        .records
        .into_iter()
        .map(|r| {
            let message_id = r.message_id.unwrap_or_default();
            FifoItem {
                group_id: r
                    .attributes
                    .get("MessageGroupId")
                    .cloned()
                    // Without a group id nothing can be ordered against it: give it a group of its own.
                    .unwrap_or_else(|| format!("message:{message_id}")),
                message_id,
                payload: r.body.unwrap_or_default(),
            }
        })
        .collect()
}

/// Dirty keys of a push-queue batch, each with the message ids that named it. Unreadable bodies are
/// returned apart (they name nothing to push).
pub fn dirty_keys(event: SqsEvent) -> (Vec<(DirtyKey, Vec<String>)>, Vec<String>) {
    let mut keys: Vec<(DirtyKey, Vec<String>)> = Vec::new();
    let mut unreadable = Vec::new();
    for r in event.records {
        let id = r.message_id.unwrap_or_default();
        match r.body.as_deref().map(serde_json::from_str::<DirtyKey>) {
            Some(Ok(key)) => match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ids)) => ids.push(id),
                None => keys.push((key, vec![id])),
            },
            _ => unreadable.push(id),
        }
    }
    (keys, unreadable)
}

pub fn batch_response(failed_message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed_message_ids
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> SqsEvent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_group_ids_and_dirty_keys() {
        let e = event(
            r#"{"Records":[
              {"messageId":"m1","body":"{\"store\":\"LDN-01\",\"item\":{\"by\":\"sku\",\"value\":\"A\"}}","attributes":{"MessageGroupId":"A"},"messageAttributes":{}},
              {"messageId":"m2","body":"{\"store\":\"LDN-01\",\"item\":{\"by\":\"sku\",\"value\":\"A\"}}","attributes":{},"messageAttributes":{}},
              {"messageId":"m3","body":"nope","attributes":{},"messageAttributes":{}}
            ]}"#,
        );
        let items = fifo_items(e.clone());
        assert_eq!(items[0].group_id, "A");
        assert_eq!(items[1].group_id, "message:m2");
        let (keys, bad) = dirty_keys(e);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].1, vec!["m1".to_string(), "m2".to_string()]);
        assert_eq!(bad, vec!["m3".to_string()]);
        let r = batch_response(vec!["m1".to_string()]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"batchItemFailures":[{"itemIdentifier":"m1"}]})
        );
    }
}
