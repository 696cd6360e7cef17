//! The adaptive wait between polls.
//!
//! A run's remaining duration is roughly proportional to how long it has already run, so the
//! wait grows with the run's age: short runs are noticed quickly, six-hour runs are not polled
//! every minute. A vendor hint (Retry-After) is a floor, the deadline a ceiling.

use serde::{Deserialize, Serialize};

/// Parameters of the poll wait. Defaults: first wait 15 s, then 0.85 × the run's age, at most
/// 1 hour.
///
/// The defaults come from `bench/` (docs/BENCHMARKS.md, "Polls per run"): a 6-hour run takes
/// 15 polls instead of 360 at a fixed minute. The price is lag: a run that ends just after a
/// poll is noticed up to 0.85 × its age later (a run of a few minutes, a minute or so late), and
/// a run longer than ~70 minutes up to an hour late.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    /// Wait before the first poll and the smallest wait ever, in seconds.
    pub min_wait_seconds: u64,
    /// The largest wait, in seconds; bounds how late a finished long run is noticed.
    pub max_wait_seconds: u64,
    /// Wait as a fraction of the run's age.
    pub age_fraction: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            min_wait_seconds: 15,
            max_wait_seconds: 3_600,
            age_fraction: 0.85,
        }
    }
}

impl BackoffPolicy {
    /// A fixed wait, the baseline the benchmarks compare against.
    pub fn fixed(seconds: u64) -> Self {
        Self {
            min_wait_seconds: seconds,
            max_wait_seconds: seconds,
            age_fraction: 0.0,
        }
    }

    /// Seconds to wait before the next poll of a run that is `age_seconds` old, given a vendor
    /// hint and the seconds left before the deadline. Never 0: Step Functions needs a positive
    /// wait and a vendor needs a breather.
    pub fn next_wait(
        &self,
        age_seconds: u64,
        hint_seconds: Option<u64>,
        remaining_seconds: u64,
    ) -> u64 {
        let by_age = (age_seconds as f64 * self.age_fraction).round() as u64;
        let mut wait = by_age.clamp(
            self.min_wait_seconds,
            self.max_wait_seconds.max(self.min_wait_seconds),
        );
        if let Some(hint) = hint_seconds {
            wait = wait.max(hint.min(self.max_wait_seconds.max(hint.min(3_600))));
        }
        // Wake up at the deadline rather than sleep past it, so cancellation is on time.
        wait.min(remaining_seconds).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polls_for(policy: &BackoffPolicy, run_seconds: u64) -> (u32, u64) {
        let mut age = 0;
        let mut polls = 0;
        loop {
            age += policy.next_wait(age, None, u64::MAX);
            polls += 1;
            if age >= run_seconds {
                return (polls, age - run_seconds);
            }
        }
    }

    #[test]
    fn wait_grows_with_age_and_is_capped() {
        let p = BackoffPolicy::default();
        assert_eq!(p.next_wait(0, None, 10_000), 15);
        assert_eq!(p.next_wait(10, None, 10_000), 15);
        assert_eq!(p.next_wait(600, None, 10_000), 510);
        assert_eq!(p.next_wait(100_000, None, 100_000), 3_600);
    }

    #[test]
    fn hint_is_a_floor_and_deadline_a_ceiling() {
        let p = BackoffPolicy::default();
        assert_eq!(p.next_wait(0, Some(120), 10_000), 120);
        assert_eq!(p.next_wait(10_000, None, 42), 42);
        assert_eq!(p.next_wait(10_000, None, 0), 1);
    }

    #[test]
    fn adaptive_polls_far_less_than_fixed_for_long_runs() {
        let adaptive = polls_for(&BackoffPolicy::default(), 21_600);
        let fixed = polls_for(&BackoffPolicy::fixed(60), 21_600);
        assert!(
            adaptive.0 * 5 < fixed.0,
            "adaptive {adaptive:?} vs fixed {fixed:?}"
        );
        // A one-minute run is still noticed within a minute.
        assert!(polls_for(&BackoffPolicy::default(), 60).1 <= 60);
    }

    #[test]
    fn six_hour_run_meets_the_benchmark_targets() {
        // docs/BENCHMARKS.md: at most 15 polls, noticed within 10 % of the run time.
        let (polls, lag) = polls_for(&BackoffPolicy::default(), 21_600);
        assert!(polls <= 15, "{polls} polls");
        assert!(lag <= 2_160, "lag {lag} s");
    }
}
