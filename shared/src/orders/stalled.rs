//! Stalled kiosk orders: what the scheduled check reports when the event-driven path lost something — a
//! Cloudshelf order paid or placed with no Centra order, an outbox record stuck in a state, a Centra order from a
//! kiosk stuck PENDING. Pure: the caller reads Cloudshelf (by `updatedAt` watermark), the outbox and Centra.

use crate::centra::order_reads::CentraOrderState;
use crate::cloudshelf::{CloudshelfOrder, CloudshelfOrderStatus};
use crate::orders::outbox::{OutboxRecord, OutboxState};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct StalledThresholds {
    /// A paid/placed Cloudshelf order without a Centra order after this long is stalled.
    pub cloudshelf_without_centra_ms: i64,
    /// An outbox record in received / injecting / injected this long is stuck.
    pub outbox_stuck_ms: i64,
    /// A kiosk order still PENDING in Centra this long (not confirmed) is stuck.
    pub centra_pending_ms: i64,
}

impl Default for StalledThresholds {
    fn default() -> Self {
        Self {
            cloudshelf_without_centra_ms: 15 * 60_000,
            outbox_stuck_ms: 15 * 60_000,
            centra_pending_ms: 24 * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StalledOrder {
    /// Cloudshelf shows the order placed or paid, but no Centra order exists for it (the event never arrived,
    /// or injection failed).
    CloudshelfWithoutCentraOrder {
        cloudshelf_order_id: String,
        status: String,
        minutes: i64,
        outbox_state: Option<String>,
    },
    /// The outbox record has not moved on.
    OutboxStuck {
        cloudshelf_order_id: String,
        store: String,
        state: String,
        minutes: i64,
        attempts: u32,
    },
    /// The Centra order created for a kiosk order is still PENDING.
    CentraPending {
        cloudshelf_order_id: String,
        centra_order: u64,
        minutes: i64,
    },
}

/// Compares the three sources. `cloudshelf_orders` are those updated since the watermark; `centra_states` the
/// current Centra state of the outbox's Centra orders (by number) that the caller chose to re-read. Output is
/// sorted by kind, then id.
pub fn find_stalled_orders(
    cloudshelf_orders: &[CloudshelfOrder],
    outbox: &[OutboxRecord],
    centra_states: &HashMap<u64, CentraOrderState>,
    now_ms: i64,
    thresholds: &StalledThresholds,
) -> Vec<StalledOrder> {
    let by_id: HashMap<&str, &OutboxRecord> = outbox
        .iter()
        .map(|r| (r.cloudshelf_order_id.as_str(), r))
        .collect();
    let minutes = |since_ms: i64| (now_ms - since_ms) / 60_000;
    let mut found = Vec::new();
    for order in cloudshelf_orders {
        if !matches!(
            order.status,
            CloudshelfOrderStatus::Placed | CloudshelfOrderStatus::Paid
        ) {
            continue;
        }
        let updated = order.updated_at.timestamp_millis();
        if now_ms - updated < thresholds.cloudshelf_without_centra_ms {
            continue;
        }
        let record = by_id.get(order.id.as_str());
        if record.is_some_and(|r| !r.centra_orders.is_empty()) {
            continue;
        }
        found.push(StalledOrder::CloudshelfWithoutCentraOrder {
            cloudshelf_order_id: order.id.clone(),
            status: order.status.as_str().to_string(),
            minutes: minutes(updated),
            outbox_state: record.map(|r| r.state.as_str().to_string()),
        });
    }
    for record in outbox {
        let in_flight = matches!(
            record.state,
            OutboxState::Received | OutboxState::Injecting | OutboxState::Injected
        );
        if in_flight && now_ms - record.updated_at_ms >= thresholds.outbox_stuck_ms {
            found.push(StalledOrder::OutboxStuck {
                cloudshelf_order_id: record.cloudshelf_order_id.clone(),
                store: record.store.to_string(),
                state: record.state.as_str().to_string(),
                minutes: minutes(record.updated_at_ms),
                attempts: record.attempts,
            });
        }
        for number in &record.centra_orders {
            let Some(state) = centra_states.get(number) else {
                continue;
            };
            if state.status == "PENDING"
                && now_ms - record.created_at_ms >= thresholds.centra_pending_ms
            {
                found.push(StalledOrder::CentraPending {
                    cloudshelf_order_id: record.cloudshelf_order_id.clone(),
                    centra_order: *number,
                    minutes: minutes(record.created_at_ms),
                });
            }
        }
    }
    found.sort_by_key(sort_key);
    found
}

fn sort_key(s: &StalledOrder) -> (u8, String, u64) {
    match s {
        StalledOrder::CloudshelfWithoutCentraOrder {
            cloudshelf_order_id,
            ..
        } => (0, cloudshelf_order_id.clone(), 0),
        StalledOrder::OutboxStuck {
            cloudshelf_order_id,
            ..
        } => (1, cloudshelf_order_id.clone(), 0),
        StalledOrder::CentraPending {
            cloudshelf_order_id,
            centra_order,
            ..
        } => (2, cloudshelf_order_id.clone(), *centra_order),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::StoreCode;
    use crate::core::money::Amount;
    use chrono::{DateTime, Utc};

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_795_860_900_000;

    fn cs(id: &str, status: CloudshelfOrderStatus, minutes_ago: i64) -> CloudshelfOrder {
        CloudshelfOrder {
            id: id.into(),
            status,
            third_party_id: None,
            updated_at: DateTime::<Utc>::from_timestamp_millis(NOW - minutes_ago * MIN).unwrap(),
            lines: vec![],
        }
    }

    fn record(id: &str, state: OutboxState, minutes_ago: i64, centra: &[u64]) -> OutboxRecord {
        let mut r = OutboxRecord::received(
            id,
            &StoreCode::parse("LDN-01").unwrap(),
            "evt",
            NOW - minutes_ago * MIN,
        );
        r.state = state;
        r.centra_orders = centra.to_vec();
        r
    }

    fn centra(number: u64, status: &str) -> CentraOrderState {
        CentraOrderState {
            number,
            status: status.into(),
            store_id: 1,
            internal_comment: None,
            grand_total: Amount::ZERO,
            currency: "GBP".into(),
            captured: Amount::ZERO,
            refunded: Amount::ZERO,
            shipped: false,
        }
    }

    #[test]
    fn healthy_orders_produce_no_findings() {
        let found = find_stalled_orders(
            &[
                cs("A", CloudshelfOrderStatus::Paid, 60),
                cs("B", CloudshelfOrderStatus::DraftBasket, 600),
            ],
            &[record("A", OutboxState::Reported, 60, &[1000])],
            &HashMap::from([(1000, centra(1000, "CONFIRMED"))]),
            NOW,
            &StalledThresholds::default(),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn each_kind_of_stall_is_found_once_past_its_threshold() {
        let t = StalledThresholds::default();
        let found = find_stalled_orders(
            &[
                // Paid in Cloudshelf 20 min ago, never reached us.
                cs("lost", CloudshelfOrderStatus::Paid, 20),
                // Paid 5 min ago: still within the threshold.
                cs("fresh", CloudshelfOrderStatus::Paid, 5),
                // Placed, injection failed (exception, no Centra order).
                cs("refused", CloudshelfOrderStatus::Placed, 30),
            ],
            &[
                record("refused", OutboxState::Exception, 30, &[]),
                record("stuck", OutboxState::Injecting, 40, &[]),
                record("pending", OutboxState::Reported, 2 * 24 * 60, &[2000]),
            ],
            &HashMap::from([(2000, centra(2000, "PENDING"))]),
            NOW,
            &t,
        );
        assert_eq!(
            found,
            vec![
                StalledOrder::CloudshelfWithoutCentraOrder {
                    cloudshelf_order_id: "lost".into(),
                    status: "PAID".into(),
                    minutes: 20,
                    outbox_state: None,
                },
                StalledOrder::CloudshelfWithoutCentraOrder {
                    cloudshelf_order_id: "refused".into(),
                    status: "PLACED".into(),
                    minutes: 30,
                    outbox_state: Some("exception".into()),
                },
                StalledOrder::OutboxStuck {
                    cloudshelf_order_id: "stuck".into(),
                    store: "LDN-01".into(),
                    state: "injecting".into(),
                    minutes: 40,
                    attempts: 0,
                },
                StalledOrder::CentraPending {
                    cloudshelf_order_id: "pending".into(),
                    centra_order: 2000,
                    minutes: 2 * 24 * 60,
                },
            ]
        );
    }
}
