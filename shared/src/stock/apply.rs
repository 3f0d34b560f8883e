//! Stage 1 of stock sync: apply stock messages, in order per SKU, to the ledger. No Centra call here, so
//! Centra's rate limit can never stall ordering; the pusher (stage 2) sends what the ledger holds.

use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::core::ids::ItemRef;
use crate::events::store_events::StockLineMessage;
use crate::stock::batch::{run_fifo_batch, FifoItem, ItemOutcome};
use crate::stock::ledger::{apply_movement, ApplyDecision};
use crate::stock::ports::{
    ApplyWrite, DirtyKey, ExceptionLog, ExceptionRecord, LedgerStore, PushQueue,
};
use crate::telemetry::metrics::{names, Metrics};
use std::sync::Arc;

/// Applied-movement markers outlive SQS's longest retention (14 days), so any redelivery still finds them.
pub const MOVEMENT_MARKER_TTL_S: i64 = 15 * 24 * 3600;
// Kept below the applier's marker lifetime at compile time.
const _: () = assert!(crate::events::store_events::MAX_EVENT_AGE_MS < MOVEMENT_MARKER_TTL_S * 1000);
const MAX_CONFLICT_RETRIES: usize = 20;
/// Daybook `posted_ref` of a stale sale or return: Centra got it inside a later stock count.
pub const COVERED_BY_COUNT: &str = "covered by stock count";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    Duplicate,
    Stale,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("unreadable message could not be recorded as an exception")]
    Unrecorded,
    #[error("ledger row for {0} kept changing; will retry")]
    Contended(String),
}

pub struct StockApplier {
    pub ledger: Arc<dyn LedgerStore>,
    pub push_queue: Arc<dyn PushQueue>,
    pub exceptions: Arc<dyn ExceptionLog>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub finance: crate::finance::FinanceHooks,
}

impl StockApplier {
    /// Applies one movement exactly once (keyed by its business id, not the SQS message id). Returns the row it
    /// went to: a legacy row merged into its size's canonical row forwards there.
    pub async fn apply(
        &self,
        msg: &StockLineMessage,
    ) -> Result<(ApplyOutcome, ItemRef), ApplyError> {
        let movement_id = msg.movement_id();
        let mut msg = std::borrow::Cow::Borrowed(msg);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let current = self.ledger.get(&msg.store, &msg.item).await?;
            if let Some(into) = current.as_ref().and_then(|r| r.retired_into.clone()) {
                msg.to_mut().item = into;
                continue;
            }
            let msg = msg.as_ref();
            let expected_rev = current.as_ref().map(|r| r.rev);
            let now_ms = self.clock.now_millis();
            let (row, outcome) = match apply_movement(current, msg, now_ms) {
                ApplyDecision::Apply(row) => (row, ApplyOutcome::Applied),
                ApplyDecision::Stale { reason, row } => {
                    tracing::info!(event_id = %msg.event_id, store = %msg.store, item = %msg.item, %reason, "stale movement ignored");
                    (row, ApplyOutcome::Stale)
                }
            };
            let expires = now_ms.div_euclid(1000) + MOVEMENT_MARKER_TTL_S;
            match self
                .ledger
                .apply(&movement_id, expires, &row, expected_rev)
                .await?
            {
                ApplyWrite::Written => {
                    // After the ledger: a failure here fails the message, whose redelivery is a duplicate
                    // below and records it then.
                    self.finance.accepted(msg, now_ms).await?;
                    self.post_if_covered_by_count(msg, outcome, now_ms).await?;
                    self.metrics.count(
                        if outcome == ApplyOutcome::Applied {
                            names::MOVEMENTS_APPLIED
                        } else {
                            names::MOVEMENTS_STALE
                        },
                        1,
                    );
                    return Ok((outcome, msg.item.clone()));
                }
                ApplyWrite::Duplicate => {
                    self.finance.accepted(msg, now_ms).await?;
                    // `outcome` is against the current row: a stale movement stays stale.
                    self.post_if_covered_by_count(msg, outcome, now_ms).await?;
                    self.metrics.count(names::MOVEMENTS_DUPLICATE, 1);
                    return Ok((ApplyOutcome::Duplicate, msg.item.clone()));
                }
                // The pusher wrote the row meanwhile: read again.
                ApplyWrite::Conflict => continue,
            }
        }
        Err(ApplyError::Contended(format!("{} {}", msg.store, msg.item)))
    }

    /// A sale or return older than the applied stock count never reaches Centra on its own: the count (which
    /// already reflects it) does. Recorded as posted so the finance close does not wait for it forever.
    async fn post_if_covered_by_count(
        &self,
        msg: &StockLineMessage,
        outcome: ApplyOutcome,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let (Some(daybook), Some(date)) = (&self.finance.daybook, msg.business_date) else {
            return Ok(());
        };
        if outcome != ApplyOutcome::Stale || msg.values.is_empty() {
            return Ok(());
        }
        let id = crate::finance::record_id(&msg.event_id, &msg.item);
        daybook
            .record_posted(&msg.store, date, &[id], now_ms, COVERED_BY_COUNT)
            .await
    }

    /// Processes one FIFO batch and returns the message ids to report as failed (redelivered by SQS).
    pub async fn process_batch(&self, items: Vec<FifoItem<String>>) -> Vec<String> {
        let mut parsed = Vec::with_capacity(items.len());
        for item in items {
            match serde_json::from_str::<StockLineMessage>(&item.payload) {
                Ok(msg) => parsed.push(FifoItem {
                    message_id: item.message_id,
                    group_id: item.group_id,
                    payload: Some(msg),
                }),
                Err(e) => {
                    // Not from our intake (manual send, old format): park it where an operator sees it,
                    // rather than let it block its group or vanish.
                    let exception = ExceptionRecord {
                        id: format!("unreadable-{}", item.message_id),
                        store: "-".into(),
                        item: Some(item.group_id.clone()),
                        kind: "unreadable_message".into(),
                        message: format!("stock message could not be read: {e}"),
                        event_ids: vec![],
                        centra_message: None,
                        created_at_ms: self.clock.now_millis(),
                        ..Default::default()
                    };
                    tracing::error!(message_id = %item.message_id, error = %e, body = %item.payload.chars().take(500).collect::<String>(), "unreadable stock message");
                    self.metrics.count(names::STOCK_EXCEPTIONS, 1);
                    if self.exceptions.record(&exception).await.is_err() {
                        // Not recorded anywhere yet: fail it so it comes back (and ends in the DLQ).
                        parsed.push(FifoItem {
                            message_id: item.message_id,
                            group_id: item.group_id,
                            payload: None,
                        });
                    }
                }
            }
        }
        let outcomes = run_fifo_batch(parsed, |msg: Option<StockLineMessage>| async move {
            let Some(msg) = msg else {
                return Err(ApplyError::Unrecorded);
            };
            let outcome = self.apply(&msg).await;
            if let Err(e) = &outcome {
                tracing::warn!(event_id = %msg.event_id, item = %msg.item, error = %e, "movement not applied; will retry");
            }
            outcome.map(|(o, item)| (o, DirtyKey { store: msg.store.clone(), item }))
        })
        .await;

        let mut failed = Vec::new();
        let mut done_ids = Vec::new();
        let mut dirty = Vec::new();
        for (id, outcome) in outcomes {
            match outcome {
                ItemOutcome::Done((result, key)) => {
                    // Duplicates re-mark the key: the first delivery may have died before doing so. Stores
                    // that post daily are held until their close flushes them.
                    if result != ApplyOutcome::Stale
                        && !self.finance.held_stores.contains(&key.store)
                    {
                        dirty.push(key);
                    }
                    done_ids.push(id);
                }
                ItemOutcome::Failed(_) | ItemOutcome::Skipped => failed.push(id),
            }
        }
        dirty.sort();
        dirty.dedup();
        if !dirty.is_empty() {
            if let Err(e) = self.push_queue.mark_dirty(&dirty, 0).await {
                tracing::error!(error = %e, "push queue unavailable; batch will be redelivered");
                failed.extend(done_ids);
            }
        }
        failed
    }
}
