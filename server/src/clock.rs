//! What time it is, asked of one value that the composition root chooses: the system's
//! clock in `ferry serve`, a clock a test can move forward in the test harness. The
//! service, the scheduler and the sync read the time only through a [`Clock`], so a
//! rule that depends on days passing (retention, leases, the notice rule) is tested by
//! moving the clock, not by waiting or by writing old timestamps into the database.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// A handle to the clock, cheap to clone.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock plus an offset that a test moves forward (time still passes, so
/// timeouts and leases behave as they do in production). Only in test builds.
#[cfg(any(test, feature = "failpoints"))]
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

#[cfg(any(test, feature = "failpoints"))]
impl OffsetClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "failpoints"))]
impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::SeqCst);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_forward_when_told() {
        let clock = OffsetClock::default();
        let before = clock.now();
        clock.advance(chrono::Duration::days(8));
        let moved = clock.now() - before;
        assert!(moved >= chrono::Duration::days(8), "{moved}");
        assert!(moved < chrono::Duration::days(8) + chrono::Duration::minutes(1));
    }
}
