//! Why an accepted record is not posted yet, read from where it waits: the ledger row of a sale or return, the
//! outbox record of a kiosk order. Kept apart from the pure close, which only sees the daybook.

use super::{DayClose, DifferenceKind, FinanceKind};
use crate::config::mappings::{FinancePosting, StoreMapping};
use crate::core::errors::BackendError;
use crate::core::ids::{ItemRef, StoreCode};
use crate::orders::outbox::{OrderOutbox, OutboxState};
use crate::stock::ports::LedgerStore;

/// Fills `reason` on the close's accepted-but-not-posted records. `outbox`: `None` leaves kiosk orders
/// unexplained. One read per distinct ledger row or order.
pub async fn explain_unposted(
    close: &mut DayClose,
    mapping: &StoreMapping,
    ledger: &dyn LedgerStore,
    outbox: Option<&dyn OrderOutbox>,
    now_ms: i64,
) -> Result<(), BackendError> {
    let store = &mapping.store;
    for d in close
        .differences
        .iter_mut()
        .filter(|d| d.kind == DifferenceKind::AcceptedNotPosted)
    {
        let kiosk = d.accepted.iter().any(|a| a.kind == FinanceKind::KioskOrder);
        d.reason = match (kiosk, d.record_id.strip_prefix("order:"), outbox) {
            (true, Some(order_id), Some(outbox)) => Some(order_reason(outbox, order_id).await?),
            (true, _, _) => None,
            (false, _, _) => match item_of(&d.record_id) {
                Some(item) => Some(stock_reason(ledger, store, &item, mapping, now_ms).await?),
                None => None,
            },
        };
    }
    Ok(())
}

/// The item of a stock record id `<event id>#<item key>`.
fn item_of(record_id: &str) -> Option<ItemRef> {
    ItemRef::from_key(record_id.rsplit_once('#')?.1)
}

async fn stock_reason(
    ledger: &dyn LedgerStore,
    store: &StoreCode,
    item: &ItemRef,
    mapping: &StoreMapping,
    now_ms: i64,
) -> Result<String, BackendError> {
    let Some(row) = ledger.get(store, item).await? else {
        return Ok(format!(
            "no ledger row for {item}: accepted but not applied"
        ));
    };
    Ok(if let Some(blocked) = &row.blocked {
        format!("{blocked}; held until an operator clears the row")
    } else if row.lease_active(now_ms) {
        "being pushed to Centra now".to_string()
    } else if row.has_unpushed() && mapping.finance_posting == FinancePosting::Daily {
        "held: the store posts daily, at its close".to_string()
    } else if row.has_unpushed() {
        "waiting for the pusher".to_string()
    } else {
        "the ledger shows Centra holds the row, but the posting was not recorded".to_string()
    })
}

async fn order_reason(outbox: &dyn OrderOutbox, order_id: &str) -> Result<String, BackendError> {
    let Some(record) = outbox.get(order_id).await? else {
        return Ok("no order outbox record: the order was never processed".into());
    };
    Ok(match record.state {
        OutboxState::Exception => format!(
            "order exception: {}",
            record
                .exception
                .as_deref()
                .unwrap_or("see the exception log")
        ),
        OutboxState::Received => "not sent to Centra yet".into(),
        OutboxState::Injecting => format!(
            "Centra create in progress or uncertain ({} attempts)",
            record.attempts
        ),
        OutboxState::Injected | OutboxState::Reported => format!(
            "Centra order {:?} exists, but the posting was not recorded",
            record.centra_orders
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryDaybook;
    use crate::adapters::memory::MemoryLedgerStore;
    use crate::config::mappings::Mappings;
    use crate::core::money::Money;
    use crate::finance::{close_store_day, Accepted, Daybook};
    use crate::orders::outbox::{MemoryOrderOutbox, OutboxRecord};
    use crate::stock::ledger::LedgerRow;

    fn accepted(kind: FinanceKind) -> [Accepted; 1] {
        [Accepted {
            kind,
            units: 1,
            gross: Money::parse("10.00").unwrap(),
            currency: "GBP".into(),
            accepted_at_ms: 0,
        }]
    }

    #[tokio::test]
    async fn each_unposted_record_says_where_it_waits() {
        let mappings = Mappings::from_toml(
            "[stores.LDN-01]\ncentra_warehouse_id = 1\ncloudshelf_location = \"gid://x/1\"\ncurrency = \"GBP\"\nfinance_posting = \"daily\"\n",
        )
        .unwrap();
        let mapping = mappings.store("LDN-01").unwrap().clone();
        let store = mapping.store.clone();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let book = MemoryDaybook::new();
        let ledger = MemoryLedgerStore::new();
        let outbox = MemoryOrderOutbox::new();

        let mut held = LedgerRow::new(store.clone(), ItemRef::Sku("HELD".into()));
        held.delta_applied = -1;
        let mut refused = LedgerRow::new(store.clone(), ItemRef::Sku("BAD".into()));
        refused.delta_applied = -1;
        refused.blocked = Some("Centra refused sku:BAD: unknown SKU".into());
        for row in [held, refused] {
            let id = format!("m-{}", row.item);
            LedgerStore::apply(&ledger, &id, 0, &row, None)
                .await
                .unwrap();
        }
        let mut failed = OutboxRecord::received("gid://cs/Order/9", &store, "evt_o9", 0);
        failed.state = OutboxState::Exception;
        failed.exception = Some("unmapped shipping method".into());
        assert!(outbox.put(&failed, None).await.unwrap());

        for (id, kind) in [
            ("e1#sku:HELD", FinanceKind::Sale),
            ("e2#sku:BAD", FinanceKind::Sale),
            ("e3#sku:GONE", FinanceKind::Return),
            ("order:gid://cs/Order/9", FinanceKind::KioskOrder),
        ] {
            book.record_accepted(&store, day, id, &accepted(kind))
                .await
                .unwrap();
        }
        let mut close = close_store_day(&store, day, &book.day(&store, day).await.unwrap(), 0);
        explain_unposted(&mut close, &mapping, &ledger, Some(&outbox), 0)
            .await
            .unwrap();
        let reason = |id: &str| {
            close
                .differences
                .iter()
                .find(|d| d.record_id == id)
                .and_then(|d| d.reason.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            reason("e1#sku:HELD"),
            "held: the store posts daily, at its close"
        );
        assert!(reason("e2#sku:BAD").contains("unknown SKU"), "{close:?}");
        assert!(reason("e3#sku:GONE").contains("not applied"), "{close:?}");
        assert_eq!(
            reason("order:gid://cs/Order/9"),
            "order exception: unmapped shipping method"
        );
    }
}
