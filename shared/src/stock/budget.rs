//! Token-bucket arithmetic for the shared Centra mutation budget (Centra limits with a token bucket per
//! environment). Pure, so the in-process and the DynamoDB budgets compute the same thing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// Tokens left at `at_ms`, in thousandths of a token (integers survive a DynamoDB round trip exactly).
    pub milli_tokens: i64,
    pub at_ms: i64,
}

const REFILL_SAFETY: f64 = 0.95;

#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    capacity: i64,
    /// Milli-tokens gained per millisecond × 1000 (so 20 per 10 s = 2 tokens/s = 2 milli-tokens/ms).
    refill_per_ms_milli: f64,
}

impl TokenBucket {
    /// A bucket holding `quota` tokens, refilled over 10 s at 95 % of the quota's rate: requests reach
    /// Centra a little later than they are granted, in any order, so an exact mirror would still meet 429s.
    pub fn per_10s(quota: u32) -> Self {
        Self {
            capacity: i64::from(quota.max(1)) * 1000,
            refill_per_ms_milli: f64::from(quota.max(1)) * 1000.0 / 10_000.0 * REFILL_SAFETY,
        }
    }

    /// Takes one token. `Ok(new state)` or `Err(when one token will be there)`. `None` = full bucket.
    pub fn take(&self, state: Option<BucketState>, now_ms: i64) -> Result<BucketState, i64> {
        let current = match state {
            None => self.capacity,
            Some(s) => {
                let gained = ((now_ms - s.at_ms).max(0) as f64 * self.refill_per_ms_milli) as i64;
                (s.milli_tokens + gained).min(self.capacity)
            }
        };
        if current >= 1000 {
            Ok(BucketState {
                milli_tokens: current - 1000,
                at_ms: now_ms,
            })
        } else {
            let missing = (1000 - current) as f64;
            Err(now_ms + (missing / self.refill_per_ms_milli).ceil() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let b = TokenBucket::per_10s(20);
        let mut s = None;
        for _ in 0..20 {
            s = Some(b.take(s, 0).unwrap());
        }
        assert_eq!(b.take(s, 0), Err(527));
        let s2 = b.take(s, 527).unwrap();
        assert_eq!(b.take(Some(s2), 600), Err(1054));
        // Never more than capacity after a long pause.
        let full = b
            .take(
                Some(BucketState {
                    milli_tokens: 0,
                    at_ms: 0,
                }),
                1_000_000,
            )
            .unwrap();
        assert_eq!(full.milli_tokens, 19_000);
    }
}
