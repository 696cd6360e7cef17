//! Simulated time: real time multiplied by a speed factor, plus manual jumps.

use std::sync::Mutex;
use std::time::Instant;

use time::{Duration, OffsetDateTime};

/// The simulators' clock. Run durations, token lifetimes and URL expiry are all measured on it,
/// so a test can run a six-hour AMC execution in seconds.
#[derive(Debug)]
pub struct SimClock {
    inner: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    real_origin: Instant,
    sim_origin: OffsetDateTime,
    speed: f64,
}

impl SimClock {
    /// A clock starting now, running `speed` simulated seconds per real second.
    pub fn new(speed: f64) -> Self {
        Self {
            inner: Mutex::new(ClockState {
                real_origin: Instant::now(),
                sim_origin: OffsetDateTime::now_utc(),
                speed,
            }),
        }
    }

    /// Simulated now.
    pub fn now(&self) -> OffsetDateTime {
        let s = self.inner.lock().expect("clock lock");
        s.sim_origin + Duration::seconds_f64(s.real_origin.elapsed().as_secs_f64() * s.speed)
    }

    /// Jumps ahead by `seconds` of simulated time.
    pub fn advance(&self, seconds: f64) {
        let mut s = self.inner.lock().expect("clock lock");
        s.sim_origin += Duration::seconds_f64(seconds);
    }

    /// Changes the speed from now on.
    pub fn set_speed(&self, speed: f64) {
        let mut s = self.inner.lock().expect("clock lock");
        let now =
            s.sim_origin + Duration::seconds_f64(s.real_origin.elapsed().as_secs_f64() * s.speed);
        s.sim_origin = now;
        s.real_origin = Instant::now();
        s.speed = speed;
    }

    /// Current speed.
    pub fn speed(&self) -> f64 {
        self.inner.lock().expect("clock lock").speed
    }
}

impl runbridge_core::Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        SimClock::now(self)
    }
}
