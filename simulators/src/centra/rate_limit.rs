//! Centra's rate limits: token buckets for request count, mutation count and query
//! complexity, each over a 10 s and a 1 h window, shared by every client of the environment.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Centra pricing tier; decides the bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateTier {
    #[default]
    Growth,
    Enhanced,
    HighVolume,
    Enterprise,
}

/// Quotas of one tier, per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierQuotas {
    pub requests_10s: u64,
    pub requests_1h: u64,
    pub mutations_10s: u64,
    pub mutations_1h: u64,
    pub complexity_10s: u64,
    pub complexity_1h: u64,
}

impl RateTier {
    /// The published tier table.
    pub fn quotas(self) -> TierQuotas {
        let (requests_10s, requests_1h, mutations_10s, mutations_1h, complexity_10s, complexity_1h) =
            match self {
                RateTier::Growth => (60, 5_000, 20, 1_800, 250_000, 30_000_000),
                RateTier::Enhanced => (150, 20_000, 50, 4_500, 900_000, 90_000_000),
                RateTier::HighVolume => (450, 40_000, 150, 7_000, 1_800_000, 180_000_000),
                RateTier::Enterprise => (1_500, 85_000, 500, 25_000, 4_000_000, 400_000_000),
            };
        TierQuotas {
            requests_10s,
            requests_1h,
            mutations_10s,
            mutations_1h,
            complexity_10s,
            complexity_1h,
        }
    }
}

/// What a bucket counts (Centra's `RateLimitType` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitType {
    RequestCount,
    MutationCount,
    QueryComplexity,
}

impl LimitType {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitType::RequestCount => "REQUEST_COUNT",
            LimitType::MutationCount => "MUTATION_COUNT",
            LimitType::QueryComplexity => "QUERY_COMPLEXITY",
        }
    }
}

/// Which window a bucket belongs to (Centra's `intervalSeconds` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    TenSeconds,
    OneHour,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::TenSeconds => "TEN_SECONDS",
            Interval::OneHour => "ONE_HOUR",
        }
    }
}

/// One row of the `rateLimits` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit_type: LimitType,
    pub interval: Interval,
    pub quota: u64,
    pub used_quota: u64,
    pub remaining_quota: u64,
}

/// Cost of one request against each bucket type.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cost {
    pub requests: u64,
    pub mutations: u64,
    pub complexity: u64,
}

impl Cost {
    fn of(&self, t: LimitType) -> u64 {
        match t {
            LimitType::RequestCount => self.requests,
            LimitType::MutationCount => self.mutations,
            LimitType::QueryComplexity => self.complexity,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    limit_type: LimitType,
    interval: Interval,
    quota: f64,
    window: Duration,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Continuous refill: a full bucket's worth of tokens per window.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.quota / self.window.as_secs_f64()).min(self.quota);
        self.updated = now;
    }

    /// How long until `cost` tokens are available (zero if they are now).
    fn wait_for(&self, cost: u64) -> Duration {
        let cost = cost as f64;
        if self.tokens >= cost {
            return Duration::ZERO;
        }
        if cost > self.quota {
            // Never satisfiable; a full window is the honest "not soon" answer.
            return self.window;
        }
        Duration::from_secs_f64((cost - self.tokens) * self.window.as_secs_f64() / self.quota)
    }
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Vec<Bucket>,
}

impl RateLimiter {
    pub fn new(
        tier: RateTier,
        short_window: Duration,
        long_window: Duration,
        now: Instant,
    ) -> Self {
        let q = tier.quotas();
        let spec = [
            (
                LimitType::RequestCount,
                Interval::TenSeconds,
                q.requests_10s,
            ),
            (LimitType::RequestCount, Interval::OneHour, q.requests_1h),
            (
                LimitType::MutationCount,
                Interval::TenSeconds,
                q.mutations_10s,
            ),
            (LimitType::MutationCount, Interval::OneHour, q.mutations_1h),
            (
                LimitType::QueryComplexity,
                Interval::TenSeconds,
                q.complexity_10s,
            ),
            (
                LimitType::QueryComplexity,
                Interval::OneHour,
                q.complexity_1h,
            ),
        ];
        let buckets = spec
            .into_iter()
            .map(|(limit_type, interval, quota)| Bucket {
                limit_type,
                interval,
                quota: quota as f64,
                window: match interval {
                    Interval::TenSeconds => short_window,
                    Interval::OneHour => long_window,
                },
                tokens: quota as f64,
                updated: now,
            })
            .collect();
        RateLimiter { buckets }
    }

    /// Take `cost` from every bucket, or nothing and say how long to wait.
    pub fn try_acquire(&mut self, cost: Cost, now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for b in &mut self.buckets {
            b.refill(now);
            wait = wait.max(b.wait_for(cost.of(b.limit_type)));
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for b in &mut self.buckets {
            b.tokens -= cost.of(b.limit_type) as f64;
        }
        Ok(())
    }

    pub fn reset(&mut self, now: Instant) {
        for b in &mut self.buckets {
            b.tokens = b.quota;
            b.updated = now;
        }
    }

    pub fn status(&mut self, now: Instant) -> Vec<RateLimitStatus> {
        self.buckets
            .iter_mut()
            .map(|b| {
                b.refill(now);
                let remaining = b.tokens.max(0.0).floor() as u64;
                let quota = b.quota as u64;
                RateLimitStatus {
                    limit_type: b.limit_type,
                    interval: b.interval,
                    quota,
                    used_quota: quota - remaining.min(quota),
                    remaining_quota: remaining,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutation() -> Cost {
        Cost {
            requests: 1,
            mutations: 1,
            complexity: 1,
        }
    }

    #[test]
    fn growth_allows_twenty_mutations_then_waits_for_one_token() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut rl = RateLimiter::new(RateTier::Growth, window, Duration::from_secs(3600), t0);
        for _ in 0..20 {
            rl.try_acquire(mutation(), t0).unwrap();
        }
        let wait = rl.try_acquire(mutation(), t0).unwrap_err();
        // 20 per 10 s refills one token every 0.5 s.
        assert_eq!(wait, Duration::from_millis(500));
        assert!(rl
            .try_acquire(mutation(), t0 + Duration::from_millis(499))
            .is_err());
        rl.try_acquire(mutation(), t0 + Duration::from_millis(500))
            .unwrap();
    }

    #[test]
    fn queries_are_not_held_back_by_the_mutation_bucket() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(
            RateTier::Growth,
            Duration::from_secs(10),
            Duration::from_secs(3600),
            t0,
        );
        for _ in 0..20 {
            rl.try_acquire(mutation(), t0).unwrap();
        }
        let query = Cost {
            requests: 1,
            mutations: 0,
            complexity: 5,
        };
        for _ in 0..40 {
            rl.try_acquire(query, t0).unwrap();
        }
        assert!(
            rl.try_acquire(query, t0).is_err(),
            "61st request in the window"
        );
        let status = rl.status(t0);
        let req = status
            .iter()
            .find(|s| s.limit_type == LimitType::RequestCount && s.interval == Interval::TenSeconds)
            .unwrap();
        assert_eq!(
            (req.quota, req.used_quota, req.remaining_quota),
            (60, 60, 0)
        );
    }
}
