//! One clock for the domain, so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type EpochMillis = i64;

pub trait Clock: Send + Sync {
    fn now_millis(&self) -> EpochMillis;
    fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(millis: EpochMillis) -> Self {
        Self(Arc::new(AtomicI64::new(millis)))
    }
    pub fn advance_millis(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
    pub fn set_millis(&self, to: EpochMillis) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> EpochMillis {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// Wall-clock time plus an adjustable offset: tests jump past a lease or TTL without sleeping, while waits
/// the code does itself (budget pacing, `Retry-After`) still pass in real time.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock(Arc<AtomicI64>);

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn advance_millis(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_millis(&self) -> EpochMillis {
        chrono::Utc::now().timestamp_millis() + self.0.load(Ordering::SeqCst)
    }
}
