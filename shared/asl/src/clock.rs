//! Time: how Wait states and retry intervals pass it. [`RealClock`] really sleeps (a sandbox
//! run); [`InstantClock`] is virtual time that advances instantly and remembers every sleep, so a
//! test can assert on a poll loop that would take hours of wall time.

use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

/// How Wait states and retry intervals pass time. Real time for a sandbox run; a virtual clock
/// that advances instantly (but records total virtual seconds) for tests and simulations.
#[async_trait::async_trait]
pub trait WaitClock: Send + Sync {
    /// Lets `seconds` pass (never negative).
    async fn sleep(&self, seconds: f64);
    /// The current time; the execution `TimeoutSeconds` is measured on it.
    fn now(&self) -> OffsetDateTime;
}

/// Wall-clock time: `sleep` is `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealClock;

#[async_trait::async_trait]
impl WaitClock for RealClock {
    async fn sleep(&self, seconds: f64) {
        if seconds > 0.0 {
            // A Wait state's seconds come from the execution's input: an enormous or infinite one
            // waits for ever rather than overflowing `Duration`.
            let wait =
                std::time::Duration::try_from_secs_f64(seconds).unwrap_or(std::time::Duration::MAX);
            tokio::time::sleep(wait).await;
        }
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Virtual time: starts at a given instant, and `sleep` moves it forward without waiting.
/// Every sleep is recorded, in order, so tests can assert exact retry intervals.
#[derive(Debug)]
pub struct InstantClock {
    inner: Mutex<Virtual>,
}

#[derive(Debug)]
struct Virtual {
    now: OffsetDateTime,
    sleeps: Vec<f64>,
}

impl InstantClock {
    /// A clock reading `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            inner: Mutex::new(Virtual {
                now: start,
                sleeps: Vec::new(),
            }),
        }
    }

    /// A clock starting at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Total virtual seconds slept so far.
    pub fn total_slept(&self) -> f64 {
        self.lock().sleeps.iter().sum()
    }

    /// Every sleep so far, in order, in seconds.
    pub fn sleeps(&self) -> Vec<f64> {
        self.lock().sleeps.clone()
    }

    /// Moves the clock forward without recording a sleep (to simulate time spent elsewhere).
    pub fn advance(&self, seconds: f64) {
        let mut inner = self.lock();
        inner.now += time::Duration::seconds_f64(seconds.max(0.0));
    }

    fn lock(&self) -> MutexGuard<'_, Virtual> {
        // A panic while holding this lock cannot leave the data half-updated, so a poisoned lock
        // is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for InstantClock {
    fn default() -> Self {
        Self::starting_now()
    }
}

#[async_trait::async_trait]
impl WaitClock for InstantClock {
    async fn sleep(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let mut inner = self.lock();
        inner.now += time::Duration::seconds_f64(seconds);
        inner.sleeps.push(seconds);
    }

    fn now(&self) -> OffsetDateTime {
        self.lock().now
    }
}
