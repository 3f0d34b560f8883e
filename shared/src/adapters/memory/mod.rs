//! In-process implementations of the ports: the local run, the tests and the benchmarks use them with the
//! same domain code the Lambdas run. They keep the semantics that matter (conditional writes, FIFO groups,
//! visibility timeouts, redelivery, dead-lettering), not just storage.

pub mod budget;
pub mod checkpoints;
pub mod daybook;
pub mod fifo_queue;
pub mod idempotency;
pub mod ledger;
pub mod push_queue;

pub use budget::{window_start, MemoryMutationBudget};
pub use checkpoints::MemoryCheckpointStore;
pub use daybook::MemoryDaybook;
pub use fifo_queue::{MemoryFifoQueue, ReceivedFifoMessage};
pub use idempotency::MemoryIdempotencyStore;
pub use ledger::MemoryLedgerStore;
pub use push_queue::MemoryPushQueue;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::ports::{BudgetDecision, FifoMessage, MutationBudget, StockQueue};

    fn msg(group: &str, dedup: &str) -> FifoMessage {
        FifoMessage {
            group_id: group.into(),
            dedup_id: dedup.into(),
            body: dedup.into(),
        }
    }

    #[tokio::test]
    async fn fifo_groups_block_while_in_flight_and_redeliver_in_order() {
        let q = MemoryFifoQueue::new(3);
        q.send_all(&[
            msg("A", "a1"),
            msg("A", "a2"),
            msg("B", "b1"),
            msg("A", "a1"),
        ])
        .await
        .unwrap();
        assert_eq!(q.len(), 3, "duplicate dedup id dropped");
        let first = q.receive(1, 1000, 0);
        assert_eq!(first[0].body, "a1");
        let second = q.receive(10, 10_000, 0);
        assert_eq!(
            second.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["b1"]
        );
        // a1 times out: it comes back before a2.
        let again = q.receive(1, 1000, 1000);
        assert_eq!(again[0].body, "a1");
        assert_eq!(again[0].receive_count, 2);
        q.delete(again[0].receipt);
        let next = q.receive(10, 1000, 1000);
        assert_eq!(
            next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["a2"]
        );
    }

    #[tokio::test]
    async fn fifo_dead_letters_after_max_receives() {
        let q = MemoryFifoQueue::new(2);
        q.send_all(&[msg("A", "a1"), msg("A", "a2")]).await.unwrap();
        for _ in 0..2 {
            let m = q.receive(1, 0, 0);
            q.release(m[0].receipt);
        }
        let m = q.receive(1, 0, 0);
        assert_eq!(m[0].body, "a2");
        assert_eq!(q.dead_letter_bodies(), vec!["a1".to_string()]);
    }

    #[tokio::test]
    async fn budget_is_a_token_bucket_with_an_hourly_cap() {
        let b = MemoryMutationBudget::new(2, 4);
        assert_eq!(b.try_acquire(0).await.unwrap(), BudgetDecision::Granted);
        assert_eq!(b.try_acquire(0).await.unwrap(), BudgetDecision::Granted);
        // Empty: one token comes back every 10 s / 2 (at 95 % of the rate: 5.27 s).
        assert_eq!(
            b.try_acquire(1_000).await.unwrap(),
            BudgetDecision::WaitUntil(5_264)
        );
        assert_eq!(b.try_acquire(5_264).await.unwrap(), BudgetDecision::Granted);
        assert_eq!(
            b.try_acquire(60_000).await.unwrap(),
            BudgetDecision::Granted
        );
        assert_eq!(
            b.try_acquire(120_000).await.unwrap(),
            BudgetDecision::WaitUntil(3_600_000)
        );
        b.block_until(3_700_000).await.unwrap();
        assert_eq!(
            b.try_acquire(3_600_001).await.unwrap(),
            BudgetDecision::WaitUntil(3_700_000)
        );
    }
}
