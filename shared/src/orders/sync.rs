//! Order sync: kiosk orders into Centra (exactly one Centra order per Cloudshelf order, or an exception an
//! operator can act on) and Centra's order lifecycle back to Cloudshelf.
//!
//! Injection walks the outbox record: received → injecting → injected → reported. Before any Centra create
//! that follows an attempt whose outcome is unknown (timeout, 5xx, crash), the Centra orders created since that
//! attempt are searched for our tag and adopted, so a lost response never becomes a second order. The lookup
//! runs only after the earlier attempt's lease ran out, by which time its request has settled in Centra.

use crate::centra::orders::{
    CentraOrderApi, CreateOrderAddress, CreateOrderPayment, CreateOrderProduct, CreateOrderRequest,
    OrderApiError, OrderApiTarget, PaymentRecord,
};
use crate::centra::CentraClient;
use crate::cloudshelf::{CloudshelfClient, CloudshelfOrder, CloudshelfOrderStatus};
use crate::config::mappings::{Mappings, StoreOrderMapping};
use crate::core::clock::SharedClock;
use crate::core::errors::BackendError;
use crate::core::ids::ItemRef;
use crate::core::money::Amount;
use crate::events::orders::{CentraWebhookEvent, KioskOrder, OrderQueueMessage, PaymentStatus};
use crate::orders::outbox::{LifecycleNote, OrderOutbox, OutboxRecord, OutboxState};
use crate::stock::ports::{ExceptionLog, ExceptionRecord};
use crate::telemetry::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;

pub mod metric {
    pub const ORDERS_INJECTED: &str = "OrdersInjected";
    pub const ORDERS_ADOPTED: &str = "OrdersAdoptedAfterUncertainCreate";
    pub const ORDERS_REPORTED: &str = "OrdersReportedToCloudshelf";
    pub const ORDER_EXCEPTIONS: &str = "OrderExceptions";
    pub const ORDER_DUPLICATES: &str = "OrderDuplicateMessages";
    pub const ORDER_RETRIES: &str = "OrderTransientFailures";
    pub const ORDER_INJECT_LATENCY: &str = "OrderInjectLatency";
    pub const LIFECYCLE_UPDATES: &str = "LifecycleStatusUpdates";
    pub const LIFECYCLE_UNCHANGED: &str = "LifecycleUnchanged";
    pub const LIFECYCLE_IGNORED: &str = "LifecycleIgnoredOrders";
}

/// The text carried in the Centra order's `internalComment` that lets us find it again.
pub fn order_tag(cloudshelf_order_id: &str) -> String {
    format!("[cloudshelf-order:{cloudshelf_order_id}]")
}

#[derive(Debug, Clone)]
pub struct OrderSyncSettings {
    /// How long one attempt owns the Centra call. Longer than the Order-API client timeout, so a lookup after
    /// it ends sees whatever the earlier request did.
    pub lease_ms: i64,
    /// The tag lookup searches orders created from this long before the first attempt (clock skew).
    pub lookup_margin_ms: i64,
    /// Transient Centra refusals (-7) tolerated before the order becomes an exception.
    pub max_attempts: u32,
}

impl Default for OrderSyncSettings {
    fn default() -> Self {
        Self {
            lease_ms: 60_000,
            lookup_margin_ms: 10 * 60_000,
            max_attempts: 5,
        }
    }
}

/// What one queued message came to. `Retry` fails the message so SQS redelivers it (and, after the queue's
/// max receive count, parks it in the DLQ with an alarm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Centra order(s) created or adopted, and Cloudshelf told.
    Reported {
        centra_orders: Vec<u64>,
        adopted: bool,
    },
    /// The order was handled before (redelivery, duplicate event).
    AlreadyDone(OutboxState),
    /// A permanent problem, recorded as an exception; the message is done.
    Exception { kind: String, reason: String },
    /// Lifecycle: Cloudshelf now shows this status.
    StatusSet(CloudshelfOrderStatus),
    /// Lifecycle: nothing to do (not our order, or Cloudshelf already current).
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry later: {0}")]
pub struct Retry(pub String);

impl From<BackendError> for Retry {
    fn from(e: BackendError) -> Self {
        Retry(e.to_string())
    }
}

pub struct OrderSync {
    pub mappings: Arc<Mappings>,
    /// `API-Authorization` secret per `[order_api.<name>]`, resolved at start.
    pub order_api_secrets: HashMap<String, String>,
    pub order_api: CentraOrderApi,
    pub centra: CentraClient,
    pub cloudshelf: CloudshelfClient,
    pub outbox: Arc<dyn OrderOutbox>,
    pub exceptions: Arc<dyn ExceptionLog>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub settings: OrderSyncSettings,
    /// Fencing token prefix of this instance.
    pub instance_id: String,
    /// Kiosk orders accepted and posted, for the finance close; `None`: not recorded.
    pub daybook: Option<Arc<dyn crate::finance::Daybook>>,
}

/// A permanent problem found before calling Centra.
struct Refusal {
    kind: &'static str,
    reason: String,
    mapping_key: Option<String>,
    centra_message: Option<String>,
}

impl OrderSync {
    /// One orders-queue message body.
    pub async fn handle_message(&self, body: &str) -> Result<OrderOutcome, Retry> {
        match serde_json::from_str::<OrderQueueMessage>(body) {
            Ok(OrderQueueMessage::Placed(order)) => self.place(&order).await,
            Ok(OrderQueueMessage::CentraEvent(event)) => self.on_centra_event(&event).await,
            Err(e) => {
                // Retrying cannot fix it; keep it for an operator instead of poisoning the group.
                let now = self.clock.now_millis();
                self.exceptions
                    .record(&ExceptionRecord {
                        id: format!("unreadable-order-message-{now}"),
                        store: "-".into(),
                        kind: "unreadable_order_message".into(),
                        message: format!("orders queue message could not be read: {e}"),
                        created_at_ms: now,
                        ..Default::default()
                    })
                    .await?;
                self.metrics.count(metric::ORDER_EXCEPTIONS, 1);
                Ok(OrderOutcome::Exception {
                    kind: "unreadable_order_message".into(),
                    reason: e.to_string(),
                })
            }
        }
    }

    // ------------------------------------------------------------------ injection

    pub async fn place(&self, order: &KioskOrder) -> Result<OrderOutcome, Retry> {
        let started = self.clock.now_millis();
        self.record_accepted(order).await?;
        let mut record = self.outbox_record(order, started).await?;
        match record.state {
            OutboxState::Reported | OutboxState::Exception => {
                self.metrics.count(metric::ORDER_DUPLICATES, 1);
                return Ok(OrderOutcome::AlreadyDone(record.state));
            }
            OutboxState::Injected => return self.report(order, record, false).await,
            OutboxState::Received | OutboxState::Injecting => {}
        }

        let (mapping, target, store_id) = match self.resolve(order) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(order, record, refusal).await,
        };
        if record.state == OutboxState::Received {
            // Checked once, before the first Centra call: a mismatch means the event and Cloudshelf disagree.
            if let Some(refusal) = self.check_with_cloudshelf(order).await? {
                return self.refuse(order, record, refusal).await;
            }
        }

        let now = self.clock.now_millis();
        if record.state == OutboxState::Injecting && record.lease_until_ms > now {
            return Err(Retry(format!(
                "another attempt owns the Centra call for {} until {}",
                order.cloudshelf_order_id, record.lease_until_ms
            )));
        }
        let earlier_attempt_unknown = record.state == OutboxState::Injecting;
        record = self.take_lease(order, record, store_id, now).await?;

        if earlier_attempt_unknown {
            if let Some(numbers) = self
                .find_earlier_create(order, &record, store_id, now)
                .await?
            {
                self.metrics.count(metric::ORDERS_ADOPTED, 1);
                tracing::info!(cloudshelf_order = %order.cloudshelf_order_id, ?numbers, "adopted Centra order(s) created by an earlier attempt");
                record = self.mark_injected(order, record, numbers).await?;
                return self.report(order, record, true).await;
            }
        }

        self.create_in_centra(order, record, mapping, &target, now)
            .await
    }

    /// Records the order as accepted in the daybook, when there is one.
    async fn record_accepted(&self, order: &KioskOrder) -> Result<(), Retry> {
        if let Some(daybook) = &self.daybook {
            // Every delivery re-records the same values: the first one may have died right after.
            let (date, id, accepted) = crate::finance::kiosk_order_record(&self.mappings, order);
            daybook
                .record_accepted(&order.store, date, &id, &[accepted])
                .await?;
        }
        Ok(())
    }

    /// The order's outbox record, created (received) on its first delivery.
    async fn outbox_record(&self, order: &KioskOrder, now: i64) -> Result<OutboxRecord, Retry> {
        Ok(match self.outbox.get(&order.cloudshelf_order_id).await? {
            Some(r) => r,
            None => {
                let fresh = OutboxRecord::received(
                    &order.cloudshelf_order_id,
                    &order.store,
                    &order.event_id,
                    now,
                );
                if !self.outbox.put(&fresh, None).await? {
                    return Err(Retry("outbox record created concurrently".into()));
                }
                self.read(&order.cloudshelf_order_id).await?
            }
        })
    }

    /// Cloudshelf's copy of the order against the event: the refusal when they disagree or Cloudshelf cannot
    /// say, `None` when they agree.
    async fn check_with_cloudshelf(&self, order: &KioskOrder) -> Result<Option<Refusal>, Retry> {
        let refusal = |kind, reason| Refusal {
            kind,
            reason,
            mapping_key: None,
            centra_message: None,
        };
        match self.cloudshelf.order(&order.cloudshelf_order_id).await {
            Ok(Some(cs)) => Ok(compare_with_cloudshelf(order, &cs)
                .err()
                .map(|reason| refusal("cloudshelf_mismatch", reason))),
            Ok(None) => Ok(Some(refusal(
                "cloudshelf_order_not_found",
                format!(
                    "Cloudshelf has no order {}; the kiosk event names an order Cloudshelf does not know",
                    order.cloudshelf_order_id
                ),
            ))),
            Err(e) if e.is_transient() => {
                Err(self.transient(format!("Cloudshelf order read: {e}")))
            }
            Err(e) => Ok(Some(refusal(
                "cloudshelf_read_failed",
                format!("Cloudshelf order read failed: {e}"),
            ))),
        }
    }

    /// Takes the lease (fenced by rev) before touching Centra; the record as written.
    async fn take_lease(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        store_id: u64,
        now: i64,
    ) -> Result<OutboxRecord, Retry> {
        let owner = format!("{}-{}", self.instance_id, uuid::Uuid::new_v4());
        let expected = record.rev;
        record.enter(OutboxState::Injecting, now);
        record.owner = owner.clone();
        record.lease_until_ms = now + self.settings.lease_ms;
        record.first_attempt_at_ms.get_or_insert(now);
        record.centra_store_id = Some(store_id);
        if !self.outbox.put(&record, Some(expected)).await? {
            return Err(Retry("outbox changed while taking the lease".into()));
        }
        self.read(&order.cloudshelf_order_id).await
    }

    /// The Centra orders an earlier attempt whose outcome is unknown created (found by our tag since its first
    /// attempt, or recorded by an operator's retry), sorted; `None` when it created none.
    async fn find_earlier_create(
        &self,
        order: &KioskOrder,
        record: &OutboxRecord,
        store_id: u64,
        now: i64,
    ) -> Result<Option<Vec<u64>>, Retry> {
        let from_ms = record.first_attempt_at_ms.unwrap_or(now) - self.settings.lookup_margin_ms;
        let from = chrono::DateTime::from_timestamp_millis(from_ms).unwrap_or_default();
        let tag = order_tag(&order.cloudshelf_order_id);
        match self.centra.find_orders_by_tag(store_id, &tag, from).await {
            Ok(found) if !found.is_empty() => {
                let mut numbers: Vec<u64> = found.iter().map(|o| o.number).collect();
                numbers.sort_unstable();
                Ok(Some(numbers))
            }
            // An operator's retry found and recorded the Centra order (ops::order_retry): whatever this search
            // missed, never create beside it.
            Ok(_) if !record.centra_orders.is_empty() => Ok(Some(record.centra_orders.clone())),
            Ok(_) => Ok(None),
            Err(e) => Err(self.transient(format!("Centra order lookup: {e}"))),
        }
    }

    /// Creates the order in Centra under the lease and settles the record by the answer.
    async fn create_in_centra(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        mapping: &StoreOrderMapping,
        target: &OrderApiTarget,
        now: i64,
    ) -> Result<OrderOutcome, Retry> {
        record.attempts += 1;
        let request = build_create_order(order, mapping);
        let result = self.order_api.create_order(target, &request).await;
        self.metrics
            .observe_ms(metric::ORDER_INJECT_LATENCY, self.clock.now_millis() - now);
        match result {
            Ok(mut numbers) => {
                numbers.sort_unstable();
                self.metrics.count(metric::ORDERS_INJECTED, 1);
                let record = self.mark_injected(order, record, numbers).await?;
                self.report(order, record, false).await
            }
            Err(e) if e.is_permanent() => {
                let (reason, centra_message) = match &e {
                    OrderApiError::Rejected {
                        reason,
                        centra_message,
                        ..
                    } => (reason.clone(), Some(centra_message.clone())),
                    other => (other.to_string(), None),
                };
                let refusal = Refusal {
                    kind: "centra_rejected_order",
                    reason,
                    mapping_key: None,
                    centra_message,
                };
                self.refuse(order, record, refusal).await
            }
            Err(OrderApiError::Uncertain { detail }) => {
                // Keep the lease: the next delivery looks Centra up once the lease has run out.
                Err(self.transient(format!("Centra create outcome unknown: {detail}")))
            }
            Err(e) => self.release_after_failed_create(order, record, e).await,
        }
    }

    /// Centra certainly did not create the order (not sent, 429, -7): release the lease so a retry need not
    /// wait, or refuse the order after the last attempt.
    async fn release_after_failed_create(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        e: OrderApiError,
    ) -> Result<OrderOutcome, Retry> {
        if record.attempts >= self.settings.max_attempts {
            let refusal = Refusal {
                kind: "centra_order_failed",
                reason: format!(
                    "Centra refused the order {} times; last: {e}",
                    record.attempts
                ),
                mapping_key: None,
                centra_message: None,
            };
            return self.refuse(order, record, refusal).await;
        }
        let expected = record.rev;
        record.enter(OutboxState::Received, self.clock.now_millis());
        record.lease_until_ms = 0;
        let _ = self.outbox.put(&record, Some(expected)).await?;
        Err(self.transient(format!("Centra create failed: {e}")))
    }

    fn resolve<'a>(
        &'a self,
        order: &KioskOrder,
    ) -> Result<(&'a StoreOrderMapping, OrderApiTarget, u64), Refusal> {
        let store_key = format!("stores.{}", order.store);
        let store = self
            .mappings
            .store(order.store.as_str())
            .ok_or_else(|| Refusal {
                kind: "unmapped_store",
                reason: format!("store {} is not in the mappings", order.store),
                mapping_key: Some(store_key.clone()),
                centra_message: None,
            })?;
        let mapping = store.orders.as_ref().ok_or_else(|| Refusal {
            kind: "unmapped_store",
            reason: format!(
                "store {} has no order mapping (Centra Order-API store, market, pricelist)",
                order.store
            ),
            mapping_key: Some(format!("{store_key}.orders")),
            centra_message: None,
        })?;
        let shipping_key = format!("{store_key}.orders.shipping.{}", order.shipping_method);
        if !mapping.shipping.contains_key(&order.shipping_method) {
            return Err(Refusal {
                kind: "unmapped_shipping_method",
                reason: format!(
                    "kiosk shipping method \"{}\" has no Centra shipping option for store {}",
                    order.shipping_method, order.store
                ),
                mapping_key: Some(shipping_key),
                centra_message: None,
            });
        }
        if order.payment.currency != mapping.currency {
            return Err(Refusal {
                kind: "currency_mismatch",
                reason: format!(
                    "order is in {} but store {}'s Centra pricelist {} is in {}",
                    order.payment.currency, order.store, mapping.pricelist_id, mapping.currency
                ),
                mapping_key: Some(format!("{store_key}.orders.currency")),
                centra_message: None,
            });
        }
        let api = self
            .mappings
            .order_api(&mapping.order_api)
            .ok_or_else(|| Refusal {
                kind: "unmapped_order_api",
                reason: format!(
                    "Order-API store \"{}\" is not configured",
                    mapping.order_api
                ),
                mapping_key: Some(format!("order_api.{}", mapping.order_api)),
                centra_message: None,
            })?;
        let secret = self
            .order_api_secrets
            .get(&api.name)
            .ok_or_else(|| Refusal {
                kind: "missing_order_api_secret",
                reason: format!(
                    "no secret was resolved for Order-API store \"{}\"",
                    api.name
                ),
                mapping_key: Some(format!("order_api.{}.secret", api.name)),
                centra_message: None,
            })?;
        Ok((
            mapping,
            OrderApiTarget {
                base_url: api.base_url.clone(),
                secret: secret.clone(),
            },
            api.centra_store_id,
        ))
    }

    async fn read(&self, id: &str) -> Result<OutboxRecord, Retry> {
        self.outbox
            .get(id)
            .await?
            .ok_or_else(|| Retry(format!("outbox record {id} vanished")))
    }

    async fn mark_injected(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        numbers: Vec<u64>,
    ) -> Result<OutboxRecord, Retry> {
        if let Some(daybook) = &self.daybook {
            // Centra holds the order now, whatever happens to the outbox write below.
            let (date, id, _) = crate::finance::kiosk_order_record(&self.mappings, order);
            let numbers_text: Vec<String> = numbers.iter().map(u64::to_string).collect();
            daybook
                .record_posted(
                    &order.store,
                    date,
                    &[id],
                    self.clock.now_millis(),
                    &format!("centra order {}", numbers_text.join(",")),
                )
                .await?;
        }
        let expected = record.rev;
        record.enter(OutboxState::Injected, self.clock.now_millis());
        record.centra_orders = numbers;
        record.parked_order = None;
        record.lease_until_ms = 0;
        if !self.outbox.put(&record, Some(expected)).await? {
            // Someone else moved it on; the tag lookup on the next delivery reconciles.
            return Err(Retry("outbox changed after the Centra create".into()));
        }
        self.read(&record.cloudshelf_order_id).await
    }

    async fn report(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        adopted: bool,
    ) -> Result<OrderOutcome, Retry> {
        let status = match order.payment.status {
            PaymentStatus::Captured => CloudshelfOrderStatus::Paid,
            PaymentStatus::Authorized => CloudshelfOrderStatus::Placed,
        };
        let numbers = record
            .centra_orders
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        match self
            .cloudshelf
            .set_order_status(&order.cloudshelf_order_id, status, Some(&numbers))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_transient() => {
                return Err(self.transient(format!("Cloudshelf status update: {e}")))
            }
            Err(e) => {
                // The Centra order exists; only the report failed. Record it and stop retrying.
                self.record_exception(
                    order,
                    &record,
                    "cloudshelf_report_failed",
                    format!(
                        "Centra order(s) {numbers} created, but Cloudshelf refused the status update: {e}"
                    ),
                    None,
                    None,
                )
                .await?;
                return Ok(OrderOutcome::Exception {
                    kind: "cloudshelf_report_failed".into(),
                    reason: e.to_string(),
                });
            }
        }
        self.metrics.count(metric::ORDERS_REPORTED, 1);
        let expected = record.rev;
        record.enter(OutboxState::Reported, self.clock.now_millis());
        record.reported_status = Some(status.as_str().to_string());
        // A lost race here only means a redelivery reports the same status again.
        let _ = self.outbox.put(&record, Some(expected)).await?;
        Ok(OrderOutcome::Reported {
            centra_orders: record.centra_orders,
            adopted,
        })
    }

    async fn refuse(
        &self,
        order: &KioskOrder,
        mut record: OutboxRecord,
        refusal: Refusal,
    ) -> Result<OrderOutcome, Retry> {
        self.record_exception(
            order,
            &record,
            refusal.kind,
            refusal.reason.clone(),
            refusal.mapping_key,
            refusal.centra_message,
        )
        .await?;
        let expected = record.rev;
        record.enter(OutboxState::Exception, self.clock.now_millis());
        record.exception = Some(refusal.reason.clone());
        // Kept for `shelfsync orders retry` (ops::order_retry), which queues it again once the cause is fixed.
        record.parked_order = Some(Box::new(order.clone()));
        record.lease_until_ms = 0;
        let _ = self.outbox.put(&record, Some(expected)).await?;
        Ok(OrderOutcome::Exception {
            kind: refusal.kind.to_string(),
            reason: refusal.reason,
        })
    }

    async fn record_exception(
        &self,
        order: &KioskOrder,
        record: &OutboxRecord,
        kind: &str,
        message: String,
        mapping_key: Option<String>,
        centra_message: Option<String>,
    ) -> Result<(), Retry> {
        let now = self.clock.now_millis();
        tracing::warn!(cloudshelf_order = %order.cloudshelf_order_id, store = %order.store, kind, %message, "order exception");
        self.exceptions
            .record(&ExceptionRecord {
                // One record per order and kind: a redelivery rewrites it instead of adding another.
                id: format!("order-{kind}-{}", order.event_id),
                store: order.store.to_string(),
                item: Some(order.cloudshelf_order_id.clone()),
                kind: kind.to_string(),
                message,
                event_ids: vec![order.event_id.clone()],
                centra_message,
                created_at_ms: record.created_at_ms.min(now),
                mapping_key,
                attempts: Some(record.attempts),
            })
            .await?;
        self.metrics.count(metric::ORDER_EXCEPTIONS, 1);
        Ok(())
    }

    fn transient(&self, message: String) -> Retry {
        self.metrics.count(metric::ORDER_RETRIES, 1);
        tracing::info!(%message, "order step will be retried");
        Retry(message)
    }

    // ------------------------------------------------------------------ lifecycle

    /// A Centra webhook event: re-fetch the order and set the Cloudshelf status it implies, for orders that came
    /// from Cloudshelf only. Repeated and out-of-order events converge because only current state is used.
    pub async fn on_centra_event(&self, event: &CentraWebhookEvent) -> Result<OrderOutcome, Retry> {
        let number = match self.event_order_number(event).await? {
            Ok(number) => number,
            Err(ignored) => return Ok(ignored),
        };
        // Our own index first: orders that did not come from a kiosk cost one read and no Centra call.
        let Some(cloudshelf_id) = self.outbox.find_by_centra_order(number).await? else {
            self.metrics.count(metric::LIFECYCLE_IGNORED, 1);
            return Ok(OrderOutcome::Ignored(format!(
                "Centra order {number} is not a kiosk order"
            )));
        };
        let Some(mut record) = self.outbox.get(&cloudshelf_id).await? else {
            return Ok(OrderOutcome::Ignored(format!(
                "no outbox record for {cloudshelf_id}"
            )));
        };
        let states = self.read_centra_states(&record).await?;
        if states.is_empty() {
            let reason = format!("Centra returned none of {:?}", record.centra_orders);
            self.note_lifecycle(record, event, reason.clone()).await;
            return Ok(OrderOutcome::Ignored(reason));
        }
        let status = lifecycle_status(&states, record.reported_status.as_deref());
        if record.reported_status.as_deref() == Some(status.as_str()) {
            self.metrics.count(metric::LIFECYCLE_UNCHANGED, 1);
            let reason = format!("Cloudshelf already shows {}", status.as_str());
            self.note_lifecycle(record, event, reason.clone()).await;
            return Ok(OrderOutcome::Ignored(reason));
        }
        match self
            .cloudshelf
            .set_order_status(&cloudshelf_id, status, None)
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_transient() => {
                return Err(self.transient(format!("Cloudshelf status update: {e}")))
            }
            Err(e) => {
                let outcome = format!("Cloudshelf refused status {}: {e}", status.as_str());
                let refused = self
                    .record_refused_status(&record, &cloudshelf_id, status, e)
                    .await;
                self.note_lifecycle(record, event, outcome).await;
                return refused;
            }
        }
        self.metrics.count(metric::LIFECYCLE_UPDATES, 1);
        let expected = record.rev;
        record.reported_status = Some(status.as_str().to_string());
        record.updated_at_ms = self.clock.now_millis();
        record.note_lifecycle(self.lifecycle_note(
            event,
            format!("Cloudshelf status set to {}", status.as_str()),
        ));
        if !self.outbox.put(&record, Some(expected)).await? {
            // Two events raced; retrying re-reads and converges on the same current state.
            return Err(Retry("outbox changed during the lifecycle update".into()));
        }
        Ok(OrderOutcome::StatusSet(status))
    }

    fn lifecycle_note(&self, event: &CentraWebhookEvent, outcome: String) -> LifecycleNote {
        LifecycleNote {
            event: format!("{}.{} {}", event.kind, event.action, event.id),
            dedupe_key: event.dedupe_key(),
            handled_at_ms: self.clock.now_millis(),
            outcome,
        }
    }

    /// Notes an event that changed nothing on the record. Best effort: the note is for operators, and a lost
    /// race only loses the note, never state.
    async fn note_lifecycle(
        &self,
        mut record: OutboxRecord,
        event: &CentraWebhookEvent,
        outcome: String,
    ) {
        let expected = record.rev;
        record.note_lifecycle(self.lifecycle_note(event, outcome));
        if let Err(e) = self.outbox.put(&record, Some(expected)).await {
            tracing::warn!(cloudshelf_order = %record.cloudshelf_order_id, error = %e, "lifecycle note not written");
        }
    }

    /// The Centra order an event is about: its own id for `order`, looked up for `shipment` and
    /// `return`. `Ok(Err(_))`: the event is ignored, with the reason.
    async fn event_order_number(
        &self,
        event: &CentraWebhookEvent,
    ) -> Result<Result<u64, OrderOutcome>, Retry> {
        let number = match event.kind.as_str() {
            "order" => event.id.parse::<u64>().ok(),
            "shipment" | "return" => {
                let Ok(id) = event.id.parse::<u64>() else {
                    return Ok(Err(OrderOutcome::Ignored(format!(
                        "{} id {} is not numeric",
                        event.kind, event.id
                    ))));
                };
                let found = if event.kind == "shipment" {
                    self.centra.order_number_for_shipment(id).await
                } else {
                    self.centra.order_number_for_return(id).await
                };
                found.map_err(|e| self.transient(format!("Centra {} lookup: {e}", event.kind)))?
            }
            other => return Ok(Err(OrderOutcome::Ignored(format!("event type {other}")))),
        };
        let Some(number) = number else {
            return Ok(Err(OrderOutcome::Ignored(format!(
                "{} {} names no order",
                event.kind, event.id
            ))));
        };
        Ok(Ok(number))
    }

    /// Centra's current state of every order ours was split into (ones Centra no longer returns
    /// are left out).
    async fn read_centra_states(
        &self,
        record: &OutboxRecord,
    ) -> Result<Vec<crate::centra::order_reads::CentraOrderState>, Retry> {
        let mut states = Vec::with_capacity(record.centra_orders.len());
        for n in &record.centra_orders {
            match self.centra.order(*n).await {
                Ok(Some(state)) => states.push(state),
                Ok(None) => {}
                Err(e) => return Err(self.transient(format!("Centra order {n} read: {e}"))),
            }
        }
        Ok(states)
    }

    /// Cloudshelf refused the status for good: an exception to record, and the outcome.
    async fn record_refused_status(
        &self,
        record: &OutboxRecord,
        cloudshelf_id: &str,
        status: CloudshelfOrderStatus,
        e: crate::cloudshelf::CloudshelfError,
    ) -> Result<OrderOutcome, Retry> {
        let now = self.clock.now_millis();
        self.exceptions
            .record(&ExceptionRecord {
                id: format!("order-lifecycle-{cloudshelf_id}-{}", status.as_str()),
                store: record.store.to_string(),
                item: Some(cloudshelf_id.to_string()),
                kind: "cloudshelf_report_failed".into(),
                message: format!("Cloudshelf refused status {}: {e}", status.as_str()),
                event_ids: vec![record.event_id.clone()],
                created_at_ms: now,
                ..Default::default()
            })
            .await?;
        self.metrics.count(metric::ORDER_EXCEPTIONS, 1);
        Ok(OrderOutcome::Exception {
            kind: "cloudshelf_report_failed".into(),
            reason: e.to_string(),
        })
    }
}

/// The Cloudshelf status Centra's current state implies, across every order Centra split ours into.
pub fn lifecycle_status(
    states: &[crate::centra::order_reads::CentraOrderState],
    reported: Option<&str>,
) -> CloudshelfOrderStatus {
    let all_cancelled = states.iter().all(|s| s.status == "CANCELLED");
    let total = states.iter().fold(Amount::ZERO, |acc, s| {
        acc.checked_add(s.grand_total).unwrap_or(acc)
    });
    let refunded = states.iter().fold(Amount::ZERO, |acc, s| {
        acc.checked_add(s.refunded).unwrap_or(acc)
    });
    let captured = states.iter().fold(Amount::ZERO, |acc, s| {
        acc.checked_add(s.captured).unwrap_or(acc)
    });
    if all_cancelled && refunded == Amount::ZERO {
        CloudshelfOrderStatus::Voided
    } else if refunded > Amount::ZERO && refunded >= total {
        CloudshelfOrderStatus::Refunded
    } else if refunded > Amount::ZERO {
        CloudshelfOrderStatus::PartiallyRefunded
    } else if captured > Amount::ZERO || reported == Some(CloudshelfOrderStatus::Paid.as_str()) {
        // Paid at the kiosk stays paid even when Centra records no capture of its own.
        CloudshelfOrderStatus::Paid
    } else {
        CloudshelfOrderStatus::Placed
    }
}

/// The Order-API body for a kiosk order: explicit market, pricelist and shipping option, kiosk prices, the
/// delivery address, a guest customer unless configured otherwise, the kiosk payment and our tag.
pub fn build_create_order(order: &KioskOrder, mapping: &StoreOrderMapping) -> CreateOrderRequest {
    let address = &order.delivery_address;
    let mut comment = format!(
        "Cloudshelf kiosk order {} (store {}",
        order.cloudshelf_order_id, order.store
    );
    if let Some(device) = &order.device {
        comment.push_str(&format!(", device {device}"));
    }
    if let Some(assistant) = &order.sales_assistant {
        comment.push_str(&format!(", sales assistant {assistant}"));
    }
    comment.push_str(") ");
    comment.push_str(&order_tag(&order.cloudshelf_order_id));
    let payment_record = PaymentRecord {
        status: 1,
        transaction: order.payment.transaction_id.clone(),
        method: order.payment.provider.clone(),
        amount: order.payment.amount.to_f64(),
    };
    CreateOrderRequest {
        market_id: mapping.market_id,
        pricelist_id: mapping.pricelist_id,
        shipping_list: mapping.shipping[&order.shipping_method].clone(),
        shipping_value: Some(order.shipping_price.to_f64()),
        address: CreateOrderAddress {
            email: order.customer.email.clone(),
            first_name: order.customer.first_name.clone(),
            last_name: order.customer.last_name.clone(),
            cell: order.customer.phone.clone(),
            address: address.lines.first().cloned().unwrap_or_default(),
            coaddress: (address.lines.len() > 1).then(|| address.lines[1..].join(", ")),
            city: address.city.clone(),
            zipcode: address.postcode.clone(),
            state: address.region.clone(),
            country: address.country.clone(),
        },
        products: order
            .lines
            .iter()
            .map(|l| CreateOrderProduct {
                sku: match &l.item {
                    ItemRef::Sku(s) => Some(s.clone()),
                    ItemRef::Ean(_) => None,
                },
                ean: match &l.item {
                    ItemRef::Ean(e) => Some(e.clone()),
                    ItemRef::Sku(_) => None,
                },
                qty: l.quantity,
                unit_price: Some(l.unit_price.to_f64()),
            })
            .collect(),
        payment: mapping
            .payment_plugin_id
            .map(|id| match order.payment.status {
                PaymentStatus::Captured => CreateOrderPayment {
                    id,
                    capture: Some(payment_record.clone()),
                    auth: None,
                },
                PaymentStatus::Authorized => CreateOrderPayment {
                    id,
                    capture: None,
                    auth: Some(payment_record.clone()),
                },
            }),
        internal_comment: Some(comment),
        extra_attributes: Default::default(),
        send_email: None,
        customer_register: mapping.register_customers.then_some(true),
    }
}

/// Checks the event's lines against the Cloudshelf order: same number of units at the same prices, in the
/// same currency. Cloudshelf lines name a variant gid rather than a SKU; when it is one of our external gids
/// (`gid://external/<Namespace>/<SKU>`) the SKU is compared too.
pub fn compare_with_cloudshelf(order: &KioskOrder, cs: &CloudshelfOrder) -> Result<(), String> {
    let mut remaining: Vec<_> = cs.lines.iter().collect();
    for (i, line) in order.lines.iter().enumerate() {
        let sku = line.sku.as_deref();
        let pos = remaining.iter().position(|c| {
            c.quantity == i64::from(line.quantity)
                && c.price == line.unit_price
                && c.currency == line.currency
                && match (sku, external_gid_value(&c.product_variant_id)) {
                    (Some(s), Some(v)) => s == v,
                    _ => true,
                }
        });
        match pos {
            Some(p) => {
                remaining.remove(p);
            }
            None => {
                return Err(format!(
                    "lines[{i}] ({} × {} {} of {}) has no matching line in Cloudshelf order {}",
                    line.quantity,
                    line.unit_price,
                    line.currency,
                    line.item.key(),
                    order.cloudshelf_order_id
                ))
            }
        }
    }
    if let Some(extra) = remaining.first() {
        return Err(format!(
            "Cloudshelf order {} has a line the event lacks: {} × {} {} of {}",
            order.cloudshelf_order_id,
            extra.quantity,
            extra.price,
            extra.currency,
            extra.product_variant_id
        ));
    }
    Ok(())
}

fn external_gid_value(gid: &str) -> Option<&str> {
    let rest = gid.strip_prefix("gid://external/")?;
    rest.split_once('/').map(|(_, v)| v)
}

impl OrderSync {
    /// A FIFO batch: each group (one Cloudshelf order or Centra object) in order, groups concurrently; returns
    /// the message ids to report as failed (redelivered by SQS).
    pub async fn process_batch(
        &self,
        items: Vec<crate::stock::batch::FifoItem<String>>,
    ) -> Vec<String> {
        let outcomes = crate::stock::batch::run_fifo_batch(items, |body: String| async move {
            self.handle_message(&body).await
        })
        .await;
        outcomes
            .into_iter()
            .filter(|(_, outcome)| !outcome.is_done())
            .map(|(id, _)| id)
            .collect()
    }
}
