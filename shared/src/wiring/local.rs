//! The whole stock flow in one process: the same intake, applier and pusher the Lambdas run, wired to the
//! embedded queues and stores. The local run, `serve`, the tests and the benchmark use it.

use crate::adapters::memory::{
    MemoryFifoQueue, MemoryIdempotencyStore, MemoryLedgerStore, MemoryMutationBudget,
    MemoryPushQueue, ReceivedFifoMessage,
};
use crate::centra::CentraClient;
use crate::config::mappings::Mappings;
use crate::core::clock::SharedClock;
use crate::intake::centra_webhooks::{
    CentraSecretError, CentraSignatureVerifier, CentraWebhookIntake,
};
use crate::intake::contract::IntakeSettings;
use crate::intake::signature::{SecretFormatError, WebhookVerifier};
use crate::intake::store_events::StoreEventIntake;
use crate::orders::outbox::MemoryOrderOutbox;
use crate::orders::sync::OrderSync;
use crate::stock::apply::StockApplier;
use crate::stock::batch::FifoItem;
use crate::stock::identity::{CatalogueRead, CatalogueSettings, ItemCatalogue};
use crate::stock::ports::PushQueue;
use crate::stock::push::{PushReport, PushSettings, StockPusher};
use crate::telemetry::metrics::Metrics;
use crate::wiring::local_orders::{local_order_sync, LocalOrderEndpoints};
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
    /// Kiosk orders and Centra order webhooks; `None`: `order.placed` answers 400 `unsupported_type`.
    pub orders: Option<LocalOrderConfig>,
    /// How names missing from the catalogue are looked up in Centra.
    pub catalogue: CatalogueSettings,
    /// Centra's sizes when known up front (tests, benchmarks): no catalogue read and no lookups, a name not
    /// among them is unknown. `None`: read from Centra on first use.
    pub known_sizes: Option<Vec<crate::centra::SizeRecord>>,
}

pub struct LocalOrderConfig {
    pub endpoints: LocalOrderEndpoints,
    /// Centra webhook endpoint secret(s), comma-separated.
    pub centra_webhook_secret: String,
}

/// The order half of the pipeline: the orders FIFO queue, order sync, its outbox and the Centra webhook intake.
pub struct OrderStage {
    pub queue: Arc<MemoryFifoQueue>,
    pub sync: Arc<OrderSync>,
    pub outbox: Arc<MemoryOrderOutbox>,
    pub centra_webhooks: Arc<CentraWebhookIntake>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("store events secret: {0}")]
    StoreEventsSecret(#[from] SecretFormatError),
    #[error("Centra webhook secret: {0}")]
    CentraWebhookSecret(#[from] CentraSecretError),
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
            clock: crate::core::clock::system_clock(),
            orders: None,
            catalogue: CatalogueSettings::default(),
            known_sizes: None,
        }
    }
}

pub struct Pipeline {
    pub intake: Arc<StoreEventIntake>,
    pub applier: Arc<StockApplier>,
    pub pusher: Arc<StockPusher>,
    pub stock_queue: Arc<MemoryFifoQueue>,
    pub push_queue: Arc<MemoryPushQueue>,
    pub ledger: Arc<MemoryLedgerStore>,
    /// Intake's idempotency records (they keep each accepted request).
    pub idempotency: Arc<MemoryIdempotencyStore>,
    /// Sales and returns accepted and posted (the finance close reads it).
    pub daybook: Arc<crate::adapters::memory::MemoryDaybook>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub orders: Option<OrderStage>,
    /// Centra's sizes (read whole from Centra on first use, then looked up per unknown name).
    pub catalogue: Arc<ItemCatalogue>,
    push_window: Duration,
}

/// A received embedded batch as the FIFO trigger hands it to a handler.
pub fn fifo_items(received: &[ReceivedFifoMessage]) -> Vec<FifoItem<String>> {
    received
        .iter()
        .map(|m| FifoItem {
            message_id: m.message_id.clone(),
            group_id: m.group_id.clone(),
            payload: m.body.clone(),
        })
        .collect()
}

/// SQS FIFO visibility timeout used by the embedded apply loop.
const APPLY_VISIBILITY_MS: i64 = 30_000;

/// The stores and instruments every stage of the local pipeline shares.
struct SharedParts<'a> {
    clock: &'a SharedClock,
    metrics: &'a Arc<Metrics>,
    ledger: &'a Arc<MemoryLedgerStore>,
    idempotency: &'a Arc<MemoryIdempotencyStore>,
    daybook: &'a Arc<crate::adapters::memory::MemoryDaybook>,
}

/// Centra's sizes: the given ones, or read from Centra on first use.
fn build_catalogue(
    centra: &CentraClient,
    known_sizes: Option<Vec<crate::centra::SizeRecord>>,
    settings: CatalogueSettings,
    clock: &SharedClock,
) -> ItemCatalogue {
    match known_sizes {
        Some(sizes) => ItemCatalogue::with_sizes(sizes, clock.clone()),
        None => ItemCatalogue::new(
            Some(Arc::new(CatalogueRead(centra.clone()))),
            Some(Arc::new(centra.clone())),
            settings,
            clock.clone(),
        ),
    }
}

/// The order stage: its FIFO queue, order-sync with its outbox, and the Centra webhook intake.
fn build_order_stage(
    order_config: LocalOrderConfig,
    mappings: &Arc<Mappings>,
    parts: &SharedParts<'_>,
    intake_settings: &IntakeSettings,
) -> Result<OrderStage, PipelineError> {
    let queue = Arc::new(MemoryFifoQueue::new(5));
    let (sync, outbox) = local_order_sync(
        order_config.endpoints,
        mappings.clone(),
        parts.ledger.clone(),
        parts.clock.clone(),
        parts.metrics.clone(),
        Some(parts.daybook.clone() as Arc<dyn crate::finance::Daybook>),
    );
    let centra_webhooks = Arc::new(CentraWebhookIntake {
        verifier: Some(CentraSignatureVerifier::from_config(
            &order_config.centra_webhook_secret,
        )?),
        idempotency: parts.idempotency.clone(),
        orders: Some(queue.clone()),
        clock: parts.clock.clone(),
        metrics: parts.metrics.clone(),
        settings: intake_settings.clone(),
    });
    Ok(OrderStage {
        queue,
        sync: Arc::new(sync),
        outbox,
        centra_webhooks,
    })
}

/// The stock applier and pusher, sharing the finance hooks, ledger and push queue.
fn build_stock_stages(
    parts: &SharedParts<'_>,
    mappings: Arc<Mappings>,
    push_queue: &Arc<MemoryPushQueue>,
    centra: CentraClient,
    catalogue: &Arc<ItemCatalogue>,
    budget: MemoryMutationBudget,
    push_settings: PushSettings,
) -> (Arc<StockApplier>, Arc<StockPusher>) {
    let finance = crate::finance::FinanceHooks::new(
        &mappings,
        Some(parts.daybook.clone() as Arc<dyn crate::finance::Daybook>),
    );
    let applier = Arc::new(StockApplier {
        finance: finance.clone(),
        ledger: parts.ledger.clone(),
        push_queue: push_queue.clone(),
        exceptions: parts.ledger.clone(),
        metrics: parts.metrics.clone(),
        clock: parts.clock.clone(),
    });
    let pusher = Arc::new(StockPusher {
        finance,
        ledger: parts.ledger.clone(),
        push_log: parts.ledger.clone(),
        exceptions: parts.ledger.clone(),
        budget: Arc::new(budget),
        push_queue: push_queue.clone(),
        centra,
        catalogue: catalogue.clone(),
        mappings,
        metrics: parts.metrics.clone(),
        clock: parts.clock.clone(),
        settings: push_settings,
    });
    (applier, pusher)
}

impl Pipeline {
    pub fn new(config: PipelineConfig, mappings: Arc<Mappings>) -> Result<Self, PipelineError> {
        let clock = config.clock.clone();
        let metrics = Arc::new(Metrics::new());
        let stock_queue = Arc::new(MemoryFifoQueue::new(5));
        let push_queue = Arc::new(MemoryPushQueue::new());
        let ledger = Arc::new(MemoryLedgerStore::new());
        let idempotency = Arc::new(MemoryIdempotencyStore::new());
        let daybook = Arc::new(crate::adapters::memory::MemoryDaybook::new());
        let centra = CentraClient::new(
            config.centra_url,
            config.centra_token,
            config.centra_timeout,
        );
        let catalogue = Arc::new(build_catalogue(
            &centra,
            config.known_sizes,
            config.catalogue,
            &clock,
        ));
        let parts = SharedParts {
            clock: &clock,
            metrics: &metrics,
            ledger: &ledger,
            idempotency: &idempotency,
            daybook: &daybook,
        };
        let orders = match config.orders {
            None => None,
            Some(order_config) => Some(build_order_stage(
                order_config,
                &mappings,
                &parts,
                &config.intake,
            )?),
        };
        let intake = Arc::new(StoreEventIntake {
            verifier: WebhookVerifier::from_config(&config.store_events_secret)?,
            mappings: mappings.clone(),
            idempotency: idempotency.clone(),
            queue: stock_queue.clone(),
            orders: orders
                .as_ref()
                .map(|o| o.queue.clone() as Arc<dyn crate::stock::ports::OrderQueue>),
            catalogue: catalogue.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            settings: config.intake,
        });
        let (applier, pusher) = build_stock_stages(
            &parts,
            mappings,
            &push_queue,
            centra,
            &catalogue,
            MemoryMutationBudget::new(config.mutations_per_10s, config.mutations_per_hour),
            config.push,
        );
        Ok(Self {
            intake,
            applier,
            pusher,
            stock_queue,
            push_queue,
            ledger,
            idempotency,
            daybook,
            metrics,
            clock,
            orders,
            catalogue,
            push_window: config.push_window,
        })
    }

    /// Signs `body` as a store system would (Standard Webhooks, `secret`, this pipeline's clock) and hands it to
    /// the intake: the local run, benchmarks and tests send events this way.
    pub async fn send_signed(
        &self,
        secret: &str,
        id: &str,
        body: &[u8],
    ) -> crate::intake::contract::IntakeResponse {
        let ts = self.clock.now_seconds();
        let signature = crate::intake::signature::sign(secret, id, ts, body);
        let ts = ts.to_string();
        self.intake
            .handle(crate::intake::store_events::IntakeRequest {
                content_type: Some("application/json"),
                webhook_id: Some(id),
                webhook_timestamp: Some(&ts),
                webhook_signature: Some(&signature),
                body,
            })
            .await
    }

    /// One order round: like the orders FIFO trigger, up to 10 messages, partial batch response. A failed
    /// message becomes visible again after `retry_after_ms` (the queue's visibility timeout, shortened).
    pub async fn order_round(&self, retry_after_ms: i64) -> usize {
        let Some(stage) = &self.orders else { return 0 };
        let received = stage
            .queue
            .receive(10, retry_after_ms, self.clock.now_millis());
        let failed = stage.sync.process_batch(fifo_items(&received)).await;
        for m in &received {
            // A failed message stays invisible until its visibility timeout ends, as in SQS.
            if !failed.contains(&m.message_id) {
                stage.queue.delete(m.receipt);
            }
        }
        received.len()
    }

    /// The order worker: polls the orders queue until stopped.
    pub fn spawn_order_worker(
        self: &Arc<Self>,
        retry_after_ms: i64,
        stop: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let stage_queue = self.orders.as_ref()?.queue.clone();
        let p = self.clone();
        let mut stop = stop;
        Some(tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    return;
                }
                if p.order_round(retry_after_ms).await == 0 {
                    tokio::select! {
                        _ = stage_queue.changed() => {}
                        _ = stop.changed() => {}
                        // Visibility timeouts expire without a notification.
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }))
    }

    /// One apply round: like the FIFO trigger, up to 10 messages, partial batch response.
    pub async fn apply_round(&self) -> usize {
        let received = self
            .stock_queue
            .receive(10, APPLY_VISIBILITY_MS, self.clock.now_millis());
        let failed = self.applier.process_batch(fifo_items(&received)).await;
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

    /// What `shelfsync trace` reads, in this process: the same stores and Centra the pipeline uses.
    pub fn trace_sources(&self) -> crate::ops::trace::TraceSources {
        crate::ops::trace::TraceSources {
            idempotency: self.idempotency.clone(),
            ledger: self.ledger.clone(),
            markers: self.ledger.clone(),
            push_log: self.ledger.clone(),
            exceptions: self.ledger.clone(),
            outbox: self
                .orders
                .as_ref()
                .map(|o| o.outbox.clone() as Arc<dyn crate::orders::outbox::OrderOutbox>),
            centra: Some(self.pusher.centra.clone()),
            mappings: self.pusher.mappings.clone(),
            clock: self.clock.clone(),
        }
    }

    /// True when nothing is queued and no ledger row waits for Centra (blocked rows aside).
    pub fn is_settled(&self) -> bool {
        self.orders.as_ref().is_none_or(|o| o.queue.is_empty())
            && self.stock_queue.is_empty()
            && self.push_queue.is_empty()
            && self
                .ledger
                .all_rows()
                .iter()
                .all(|r| r.blocked.is_some() || (!r.has_unpushed() && r.lease.is_none()))
    }
}
