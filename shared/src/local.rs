//! The whole stock flow in one process: the same intake, applier and pusher the Lambdas run, wired to the
//! embedded queues and stores. The local run, `serve`, the tests and the benchmark use it.

use crate::apply::StockApplier;
use crate::batch::FifoItem;
use crate::centra::CentraClient;
use crate::embedded::*;
use crate::intake::{IntakeSettings, StoreEventIntake};
use crate::mappings::Mappings;
use crate::metrics::Metrics;
use crate::ports::PushQueue;
use crate::push::{PushReport, PushSettings, StockPusher};
use crate::signature::{SecretFormatError, WebhookVerifier};
use crate::time::SharedClock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub struct PipelineConfig {
    pub centra_url: String,
    pub centra_token: String,
    pub store_events_secret: String,
    pub mutations_per_10s: u32,
    pub mutations_per_hour: u32,
    /// How long the pusher lets dirty keys gather before a push round (the push queue's batching window).
    pub push_window: Duration,
    pub push: PushSettings,
    pub intake: IntakeSettings,
    pub centra_timeout: Duration,
    pub clock: SharedClock,
}

impl PipelineConfig {
    /// Growth-tier budget, a 300 ms push window and default settings.
    pub fn new(
        centra_url: impl Into<String>,
        centra_token: impl Into<String>,
        store_events_secret: impl Into<String>,
    ) -> Self {
        Self {
            centra_url: centra_url.into(),
            centra_token: centra_token.into(),
            store_events_secret: store_events_secret.into(),
            mutations_per_10s: 20,
            mutations_per_hour: 1_800,
            push_window: Duration::from_millis(300),
            push: PushSettings::default(),
            intake: IntakeSettings::default(),
            centra_timeout: Duration::from_secs(10),
            clock: crate::time::system_clock(),
        }
    }
}

pub struct Pipeline {
    pub intake: Arc<StoreEventIntake>,
    pub applier: Arc<StockApplier>,
    pub pusher: Arc<StockPusher>,
    pub stock_queue: Arc<EmbeddedFifoQueue>,
    pub push_queue: Arc<EmbeddedPushQueue>,
    pub ledger: Arc<MemoryLedgerStore>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    push_window: Duration,
}

/// SQS FIFO visibility timeout used by the embedded apply loop.
const APPLY_VISIBILITY_MS: i64 = 30_000;

impl Pipeline {
    pub fn new(config: PipelineConfig, mappings: Arc<Mappings>) -> Result<Self, SecretFormatError> {
        let clock = config.clock.clone();
        let metrics = Arc::new(Metrics::new());
        let stock_queue = Arc::new(EmbeddedFifoQueue::new(5));
        let push_queue = Arc::new(EmbeddedPushQueue::new());
        let ledger = Arc::new(MemoryLedgerStore::new());
        let intake = Arc::new(StoreEventIntake {
            verifier: WebhookVerifier::from_config(&config.store_events_secret)?,
            mappings: mappings.clone(),
            idempotency: Arc::new(MemoryIdempotencyStore::new()),
            queue: stock_queue.clone(),
            // No orders queue in the local stock pipeline: order.placed answers 400 unsupported_type.
            orders: None,
            clock: clock.clone(),
            metrics: metrics.clone(),
            settings: config.intake,
        });
        let applier = Arc::new(StockApplier {
            ledger: ledger.clone(),
            push_queue: push_queue.clone(),
            exceptions: ledger.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        });
        let pusher = Arc::new(StockPusher {
            ledger: ledger.clone(),
            push_log: ledger.clone(),
            exceptions: ledger.clone(),
            budget: Arc::new(MemoryMutationBudget::new(
                config.mutations_per_10s,
                config.mutations_per_hour,
            )),
            push_queue: push_queue.clone(),
            centra: CentraClient::new(
                config.centra_url,
                config.centra_token,
                config.centra_timeout,
            ),
            mappings,
            metrics: metrics.clone(),
            clock: clock.clone(),
            settings: config.push,
        });
        Ok(Self {
            intake,
            applier,
            pusher,
            stock_queue,
            push_queue,
            ledger,
            metrics,
            clock,
            push_window: config.push_window,
        })
    }

    /// One apply round: like the FIFO trigger, up to 10 messages, partial batch response.
    pub async fn apply_round(&self) -> usize {
        let now = self.clock.now_millis();
        let received = self.stock_queue.receive(10, APPLY_VISIBILITY_MS, now);
        if received.is_empty() {
            return 0;
        }
        let items = received
            .iter()
            .map(|m| FifoItem {
                message_id: m.message_id.clone(),
                group_id: m.group_id.clone(),
                payload: m.body.clone(),
            })
            .collect();
        let failed = self.applier.process_batch(items).await;
        for m in &received {
            if failed.contains(&m.message_id) {
                self.stock_queue.release(m.receipt);
            } else {
                self.stock_queue.delete(m.receipt);
            }
        }
        received.len()
    }

    /// Apply workers: `workers` concurrent pollers, like the FIFO trigger's concurrency across groups.
    pub fn spawn_apply_workers(
        self: &Arc<Self>,
        workers: usize,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..workers)
            .map(|_| {
                let p = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        if *stop.borrow() {
                            return;
                        }
                        if p.apply_round().await == 0 {
                            tokio::select! {
                                _ = p.stock_queue.changed() => {}
                                _ = stop.changed() => {}
                                // Visibility timeouts expire without a notification.
                                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                            }
                        }
                    }
                })
            })
            .collect()
    }

    /// One push round over every dirty key visible now.
    pub async fn push_round(&self) -> PushReport {
        let keys = self.push_queue.drain_ready(self.clock.now_millis());
        if keys.is_empty() {
            return PushReport::default();
        }
        let deadline = self.clock.now_millis() + 60_000;
        let report = self.pusher.push_keys(keys, deadline).await;
        if !report.failed_keys.is_empty() {
            // The push queue's redelivery: try these again shortly.
            let _ = self.push_queue.mark_dirty(&report.failed_keys, 1).await;
        }
        report
    }

    /// Push loop: waits for dirty keys, lets them gather for the batching window, pushes.
    pub fn spawn_push_worker(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
        reports: tokio::sync::mpsc::UnboundedSender<PushReport>,
    ) -> tokio::task::JoinHandle<()> {
        let p = self.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    return;
                }
                let now = p.clock.now_millis();
                match p.push_queue.next_visible_at() {
                    Some(at) if at <= now => {
                        tokio::time::sleep(p.push_window).await;
                        let report = p.push_round().await;
                        let _ = reports.send(report);
                    }
                    Some(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis((at - now) as u64)) => {}
                            _ = p.push_queue.changed() => {}
                            _ = stop.changed() => {}
                        }
                    }
                    None => {
                        tokio::select! {
                            _ = p.push_queue.changed() => {}
                            _ = stop.changed() => {}
                            // A key marked between the check and the wait would otherwise sit unnoticed.
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                }
            }
        })
    }

    /// True when nothing is queued and no ledger row waits for Centra (blocked rows aside).
    pub fn is_settled(&self) -> bool {
        self.stock_queue.is_empty()
            && self.push_queue.is_empty()
            && self
                .ledger
                .all_rows()
                .iter()
                .all(|r| r.blocked.is_some() || (!r.has_unpushed() && r.lease.is_none()))
    }
}
