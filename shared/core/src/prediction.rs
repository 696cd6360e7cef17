//! When a run will end, from how long the same workflow took before, and where its polls go.
//!
//! The same workflows run every night and take about as long each time. A [`DurationHistory`]
//! keeps the durations of a workflow's last [`HISTORY_RUNS`] successful runs (per vendor, profile
//! and workflow: see [`crate::ResolvedRequest::workflow_key`]); from it a [`Prediction`] gives the
//! expected end and how far it spreads, robust to an outlier. [`PollPlan`] then places polls
//! sparsely early, densely around the predicted end (its lag target a small fraction of the run,
//! growing with the spread), and backs off again if the run overruns, never waiting longer than
//! [`OVERRUN_MAX_WAIT_SECONDS`] then. A workflow without history gets the adaptive policy capped
//! the same way, so no run is noticed more than ten minutes late. Every wait is jittered, so runs
//! started together do not poll together for their whole life.

use serde::{Deserialize, Serialize};

use crate::{BackoffPolicy, FormatVersion, HISTORY_FORMAT};

/// Durations kept per workflow: enough for a robust median and spread, small enough to store.
pub const HISTORY_RUNS: usize = 20;

/// Runs of a workflow needed before its end is predicted.
pub const MIN_HISTORY_RUNS: usize = 3;

/// The longest wait once a run has outlived its prediction, or when nothing is predicted: bounds
/// how late any run is noticed (ten minutes).
pub const OVERRUN_MAX_WAIT_SECONDS: u64 = 600;

/// The durations of a workflow's last successful runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationHistory {
    /// The history's format ([`crate::format`]); absent in histories of earlier versions.
    #[serde(default)]
    pub format_version: FormatVersion<HISTORY_FORMAT>,
    /// Seconds from submission to the vendor's end, oldest first, at most [`HISTORY_RUNS`].
    pub durations: Vec<u64>,
}

impl DurationHistory {
    /// Adds a run's duration, forgetting the oldest beyond [`HISTORY_RUNS`].
    pub fn record(&mut self, seconds: u64) {
        self.durations.push(seconds);
        if self.durations.len() > HISTORY_RUNS {
            let extra = self.durations.len() - HISTORY_RUNS;
            self.durations.drain(..extra);
        }
    }

    /// The expected end of the next run, once there are [`MIN_HISTORY_RUNS`] runs: the median,
    /// and the range of the runs within half and twice of it (an outlier does not widen the
    /// range it would otherwise stretch).
    pub fn predict(&self) -> Option<Prediction> {
        if self.durations.len() < MIN_HISTORY_RUNS {
            return None;
        }
        let mut sorted = self.durations.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        let usual: Vec<u64> = sorted
            .iter()
            .copied()
            .filter(|d| *d * 2 >= median && *d <= median.saturating_mul(2))
            .collect();
        Some(Prediction {
            low_seconds: *usual.first()?,
            median_seconds: median.max(1),
            high_seconds: *usual.last()?,
            runs: n as u32,
        })
    }
}

/// When a run is expected to end, in seconds after its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Prediction {
    /// The earliest usual end.
    pub low_seconds: u64,
    /// The median end.
    pub median_seconds: u64,
    /// The latest usual end.
    pub high_seconds: u64,
    /// How many earlier runs it rests on.
    pub runs: u32,
}

impl Prediction {
    /// The spread of the usual ends around the median, as a fraction of it (±).
    pub fn spread(&self) -> f64 {
        (self.high_seconds - self.low_seconds) as f64 / (2.0 * self.median_seconds as f64)
    }

    /// The lag aimed at for a run ending at the median: [`Self::lag_fraction`] of it, at least a
    /// minute (more spread, more polls; the lag target gives some back). The lag before the
    /// window's start and after its end are at least this.
    pub fn lag_target_seconds(&self) -> u64 {
        ((self.median_seconds as f64 * self.lag_fraction()) as u64).max(60)
    }

    /// The lag aimed at as a fraction of the run's age inside the predicted window: 2 % at ±10 %
    /// spread or less, rising to 5 % at ±30 % (and at least [`WINDOW_MIN_WAIT_SECONDS`], see
    /// [`PollPlan`]).
    pub fn lag_fraction(&self) -> f64 {
        (0.02 + (self.spread() - 0.1) * 0.15).clamp(0.02, 0.05)
    }
}

/// How far polls jump towards the predicted window: each wait covers two thirds of what is
/// left, so a six-hour run reaches its window in a handful of polls.
const APPROACH: f64 = 2.0;
/// The longest wait before the predicted window: a run that fails early is still noticed
/// within two hours.
const APPROACH_MAX_WAIT_SECONDS: u64 = 7_200;
/// The window is widened by this fraction of its width on each side: a new run may end a
/// little beyond the ends its predecessors had.
const WINDOW_PAD: f64 = 0.1;
/// After the window, the wait grows by half the time the run has overrun.
const OVERRUN_GROWTH: f64 = 0.5;
/// The shortest wait inside the predicted window: a quarter of the (padded) window, between
/// [`WINDOW_MIN_WAIT_SECONDS`] and [`WINDOW_MAX_FLOOR_SECONDS`]. A short run's lag is mostly this
/// floor. A sharp prediction (all runs within a minute or two) is polled about four times
/// inside its window: at a fixed minute, such runs were noticed ~30 s late on average, and a
/// run holding a concurrency slot (AMC) kept the next one waiting that long (BENCHMARKS §5:
/// 1.08× the ideal). A wide window keeps the minute, so a short workflow whose runs vary a lot
/// does not cost more polls than fixed 60 s.
pub const WINDOW_MIN_WAIT_SECONDS: u64 = 30;
/// The largest floor inside the predicted window (see [`WINDOW_MIN_WAIT_SECONDS`]).
pub const WINDOW_MAX_FLOOR_SECONDS: u64 = 60;
/// Polls a sharp window gets at its floor: the floor is this fraction of its width.
const POLLS_PER_WINDOW: f64 = 4.0;

/// Where a run's polls go: around its predicted end when its workflow has history, else the
/// adaptive policy capped at [`OVERRUN_MAX_WAIT_SECONDS`]. A request's own `poll` policy is not
/// a plan: it is followed as given ([`PollPlan::Policy`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PollPlan {
    /// Polls placed around the predicted end.
    Predicted(Prediction),
    /// An adaptive policy (a request's own, or the default for a workflow without history,
    /// whose waits are capped so that the run is never noticed more than ten minutes late).
    Policy(BackoffPolicy),
}

impl PollPlan {
    /// The plan for a run: `own` (the request's `poll`), else the prediction, else `default`
    /// capped at [`OVERRUN_MAX_WAIT_SECONDS`].
    pub fn for_run(
        own: Option<BackoffPolicy>,
        prediction: Option<Prediction>,
        default: BackoffPolicy,
    ) -> Self {
        match (own, prediction) {
            (Some(policy), _) => Self::Policy(policy),
            (None, Some(p)) => Self::Predicted(p),
            (None, None) => Self::Policy(BackoffPolicy {
                max_wait_seconds: default.max_wait_seconds.min(OVERRUN_MAX_WAIT_SECONDS),
                ..default
            }),
        }
    }

    /// Seconds to wait before the next poll of a run `age_seconds` old, given a vendor hint
    /// (a floor) and the seconds left before its deadline (a ceiling). `jitter`, in `[0, 1)`,
    /// shortens the wait by up to a fifth (±10 % around 90 % of it), so runs started together
    /// spread out; it never lengthens a wait beyond what the plan allows. Never 0.
    pub fn next_wait(
        &self,
        age_seconds: u64,
        hint_seconds: Option<u64>,
        remaining_seconds: u64,
        jitter: f64,
    ) -> u64 {
        let planned = match self {
            Self::Policy(policy) => policy.next_wait(age_seconds, None, u64::MAX) as f64,
            Self::Predicted(p) => predicted_wait(p, age_seconds) as f64,
        };
        let jittered = (planned * (1.0 - 0.2 * jitter.clamp(0.0, 1.0))).round() as u64;
        let mut wait = jittered.max(1);
        if let Some(hint) = hint_seconds {
            wait = wait.max(hint.min(3_600));
        }
        // Wake up at the deadline rather than sleep past it, so cancellation is on time.
        wait.min(remaining_seconds).max(1)
    }
}

fn predicted_wait(p: &Prediction, age: u64) -> u64 {
    let lag = p.lag_target_seconds() as f64;
    let pad = WINDOW_PAD * (p.high_seconds - p.low_seconds) as f64;
    let (low, high, age) = (
        p.low_seconds as f64 - pad,
        p.high_seconds as f64 + pad,
        age as f64,
    );
    let wait = if age < low {
        // Sparse: jump most of the way to the window, never past its start.
        let left = low - age;
        let jump = (APPROACH * left / (1.0 + APPROACH)).max(lag);
        let jump = if left > lag { jump.min(left) } else { jump };
        jump.min(APPROACH_MAX_WAIT_SECONDS as f64)
    } else if age <= high {
        // The fraction of the age, not of the median: a run ending before the median is held
        // to its own (shorter) bound, and polls thin out towards the window's end.
        let floor = ((high - low) / POLLS_PER_WINDOW).clamp(
            WINDOW_MIN_WAIT_SECONDS as f64,
            WINDOW_MAX_FLOOR_SECONDS as f64,
        );
        (p.lag_fraction() * age).floor().max(floor)
    } else {
        // Overrun: still watched, less and less densely, at most ten minutes apart.
        (OVERRUN_GROWTH * (age - high))
            .max(lag)
            .min(OVERRUN_MAX_WAIT_SECONDS as f64)
    };
    wait.round().max(15.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(durations: &[u64]) -> DurationHistory {
        let mut h = DurationHistory::default();
        for d in durations {
            h.record(*d);
        }
        h
    }

    /// Polls a run of `duration` seconds under `plan` (no jitter): (polls, lag).
    fn polls(plan: &PollPlan, duration: u64) -> (u32, u64) {
        let (mut age, mut polls) = (0, 0);
        loop {
            age += plan.next_wait(age, None, u64::MAX, 0.5);
            polls += 1;
            if age >= duration {
                return (polls, age - duration);
            }
        }
    }

    #[test]
    fn the_prediction_needs_a_few_runs_and_ignores_an_outlier() {
        assert_eq!(history(&[100, 110]).predict(), None);
        let p = history(&[100, 110, 90, 300, 105]).predict().unwrap();
        assert_eq!(p.median_seconds, 105);
        assert_eq!(
            (p.low_seconds, p.high_seconds),
            (90, 110),
            "300 is an outlier"
        );
        assert_eq!(p.runs, 5);
        let mut h = history(&[7; 25]);
        h.record(8);
        assert_eq!(h.durations.len(), HISTORY_RUNS);
        assert_eq!(h.durations.last(), Some(&8));
    }

    #[test]
    fn a_predicted_six_hour_run_is_polled_densely_near_its_end_and_rarely_before() {
        let durations: Vec<u64> = (0..20).map(|i| 19_600 + i * 200).collect(); // ±9 %
        let plan = PollPlan::Predicted(history(&durations).predict().unwrap());
        for end in [19_500, 21_600, 23_700] {
            let (n, lag) = polls(&plan, end);
            assert!(n <= 20, "{n} polls for a {end} s run");
            assert!(lag <= 432, "{lag} s late for a {end} s run");
        }
        // Three times longer than ever: still polled to its end, at most ten minutes late.
        let (_, lag) = polls(&plan, 3 * 21_600);
        assert!(lag <= OVERRUN_MAX_WAIT_SECONDS, "{lag}");
    }

    #[test]
    fn a_sharp_window_is_polled_more_densely_than_a_wide_one() {
        let in_window = |durations: &[u64]| {
            let p = history(durations).predict().unwrap();
            let plan = PollPlan::Predicted(p);
            plan.next_wait(p.median_seconds, None, u64::MAX, 0.0)
        };
        // Ten-minute runs all within ±15 s: half a minute apart near their end.
        let sharp: Vec<u64> = (0..20).map(|i| 590 + i).collect();
        assert_eq!(in_window(&sharp), WINDOW_MIN_WAIT_SECONDS);
        // Five-minute runs spread ±30 %: about a minute apart, as fixed 60 s would poll them.
        let wide: Vec<u64> = (0..20).map(|i| 210 + i * 9).collect();
        let wait = in_window(&wide);
        assert!((45..=WINDOW_MAX_FLOOR_SECONDS).contains(&wait), "{wait}");
    }

    #[test]
    fn without_history_no_run_is_noticed_more_than_ten_minutes_late() {
        let plan = PollPlan::for_run(None, None, BackoffPolicy::default());
        for end in [60, 300, 3_600, 21_600, 86_400] {
            let (_, lag) = polls(&plan, end);
            assert!(lag <= OVERRUN_MAX_WAIT_SECONDS, "{end}: {lag}");
        }
        // A request's own policy is followed as given.
        let own = BackoffPolicy::fixed(30);
        assert_eq!(
            PollPlan::for_run(Some(own), None, BackoffPolicy::default()),
            PollPlan::Policy(own)
        );
    }

    #[test]
    fn jitter_shortens_waits_by_at_most_a_fifth_and_the_deadline_still_bounds() {
        let plan = PollPlan::Policy(BackoffPolicy::fixed(100));
        assert_eq!(plan.next_wait(0, None, 1_000, 0.0), 100);
        assert_eq!(plan.next_wait(0, None, 1_000, 0.999), 80);
        assert_eq!(
            plan.next_wait(0, Some(120), 1_000, 0.5),
            120,
            "a hint is a floor"
        );
        assert_eq!(plan.next_wait(0, None, 7, 0.0), 7);
        assert_eq!(plan.next_wait(0, None, 0, 0.0), 1);
    }
}
