//! FIFO batch processing with skip-group-on-error.
//!
//! A FIFO batch may mix message groups. Within a group messages run strictly in order; groups run
//! concurrently. When a message fails, the rest of *its* group in this batch is not run (running it would
//! reorder that SKU), while other groups go on. Failed and skipped messages are reported for redelivery.

use futures::future::join_all;
use std::future::Future;

#[derive(Debug, Clone)]
pub struct FifoItem<T> {
    pub message_id: String,
    pub group_id: String,
    pub payload: T,
}

#[derive(Debug)]
pub enum ItemOutcome<R, E> {
    Done(R),
    Failed(E),
    /// Not run because an earlier message of its group failed in this batch.
    Skipped,
}

impl<R, E> ItemOutcome<R, E> {
    pub fn is_done(&self) -> bool {
        matches!(self, ItemOutcome::Done(_))
    }
}

/// Runs `handler` over the batch; returns each message id with its outcome, in input order.
pub async fn run_fifo_batch<T, R, E, F, Fut>(
    items: Vec<FifoItem<T>>,
    handler: F,
) -> Vec<(String, ItemOutcome<R, E>)>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    // Group indices, keeping first-appearance order of groups and arrival order within each group.
    type Member<T> = (usize, String, T);
    let mut groups: Vec<(String, Vec<Member<T>>)> = Vec::new();
    let total = items.len();
    for (index, item) in items.into_iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == item.group_id) {
            Some((_, members)) => members.push((index, item.message_id, item.payload)),
            None => groups.push((item.group_id, vec![(index, item.message_id, item.payload)])),
        }
    }
    let handler = &handler;
    let per_group = groups.into_iter().map(|(_, members)| async move {
        let mut out = Vec::with_capacity(members.len());
        let mut failed = false;
        for (index, id, payload) in members {
            if failed {
                out.push((index, id, ItemOutcome::Skipped));
                continue;
            }
            match handler(payload).await {
                Ok(r) => out.push((index, id, ItemOutcome::Done(r))),
                Err(e) => {
                    failed = true;
                    out.push((index, id, ItemOutcome::Failed(e)));
                }
            }
        }
        out
    });
    let mut results: Vec<Option<(String, ItemOutcome<R, E>)>> = (0..total).map(|_| None).collect();
    for group in join_all(per_group).await {
        for (index, id, outcome) in group {
            results[index] = Some((id, outcome));
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every item has an outcome"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn item(id: &str, group: &str) -> FifoItem<String> {
        FifoItem {
            message_id: id.into(),
            group_id: group.into(),
            payload: id.into(),
        }
    }

    #[tokio::test]
    async fn failure_skips_only_the_rest_of_its_group() {
        let seen = Mutex::new(Vec::new());
        let batch = vec![
            item("a1", "A"),
            item("b1", "B"),
            item("a2", "A"),
            item("b2", "B"),
            item("a3", "A"),
            item("c1", "C"),
        ];
        let out = run_fifo_batch(batch, |id: String| {
            seen.lock().unwrap().push(id.clone());
            async move {
                if id == "a2" {
                    Err("boom")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        let summary: Vec<(&str, &str)> = out
            .iter()
            .map(|(id, o)| {
                (
                    id.as_str(),
                    match o {
                        ItemOutcome::Done(_) => "done",
                        ItemOutcome::Failed(_) => "failed",
                        ItemOutcome::Skipped => "skipped",
                    },
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a1", "done"),
                ("b1", "done"),
                ("a2", "failed"),
                ("b2", "done"),
                ("a3", "skipped"),
                ("c1", "done")
            ]
        );
        let seen = seen.into_inner().unwrap();
        assert!(
            !seen.contains(&"a3".to_string()),
            "a skipped message never runs"
        );
        let pos = |x: &str| seen.iter().position(|s| s == x).unwrap();
        assert!(
            pos("a1") < pos("a2") && pos("b1") < pos("b2"),
            "order kept within a group"
        );
    }
}
