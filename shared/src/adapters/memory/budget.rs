//! The mutation budget: Centra's token bucket and hourly quota.

use crate::core::errors::BackendError;
use crate::stock::ports::{BudgetDecision, MutationBudget};
use async_trait::async_trait;
use std::sync::Mutex;

/// Token bucket like Centra's own (capacity = the 10 s quota, refilled evenly over 10 s) plus the hourly
/// quota as a fixed window. Mirroring Centra's bucket keeps a burst from meeting a 429 at all.
#[derive(Debug)]
pub struct MemoryMutationBudget {
    bucket: crate::stock::budget::TokenBucket,
    per_hour: u32,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    tokens: Option<crate::stock::budget::BucketState>,
    window_hour: (i64, u32),
    blocked_until_ms: i64,
}

impl MemoryMutationBudget {
    pub fn new(per_10s: u32, per_hour: u32) -> Self {
        Self {
            bucket: crate::stock::budget::TokenBucket::per_10s(per_10s),
            per_hour,
            state: Mutex::new(BudgetState::default()),
        }
    }
}

pub fn window_start(now_ms: i64, width_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(width_ms)
}

#[async_trait]
impl MutationBudget for MemoryMutationBudget {
    async fn try_acquire(&self, now_ms: i64) -> Result<BudgetDecision, BackendError> {
        let mut s = self.state.lock().expect("lock");
        if s.blocked_until_ms > now_ms {
            return Ok(BudgetDecision::WaitUntil(s.blocked_until_ms));
        }
        let wh = window_start(now_ms, 3_600_000);
        if s.window_hour.0 != wh {
            s.window_hour = (wh, 0);
        }
        if s.window_hour.1 >= self.per_hour {
            return Ok(BudgetDecision::WaitUntil(wh + 3_600_000));
        }
        match self.bucket.take(s.tokens, now_ms) {
            Ok(next) => {
                s.tokens = Some(next);
                s.window_hour.1 += 1;
                Ok(BudgetDecision::Granted)
            }
            Err(at) => Ok(BudgetDecision::WaitUntil(at)),
        }
    }

    async fn block_until(&self, until_ms: i64) -> Result<(), BackendError> {
        let mut s = self.state.lock().expect("lock");
        s.blocked_until_ms = s.blocked_until_ms.max(until_ms);
        Ok(())
    }
}
