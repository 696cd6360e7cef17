//! The time handlers reason with (ages, deadlines). It lives here, beside the run model, so the
//! simulators' speed-up clock can implement it without depending on the handlers.

use time::OffsetDateTime;

/// A source of "now". Tests and the sandbox share the simulators' clock through it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
