//! A simulated run's poll schedule, as the deployed handlers choose it, and the duration mixes
//! of issue 26: the arithmetic behind BENCHMARKS section 1 (`bin/polls/` checks it against
//! the state machine run by the ASL interpreter) and the seeded check of its targets
//! (`tests/poll_targets.rs`).

use runbridge_core::{
    BackoffPolicy, DurationHistory, IdempotencyKey, PollPlan, Prediction, RunHandle, RunRequest,
    HISTORY_RUNS, OVERRUN_MAX_WAIT_SECONDS,
};
use runbridge_handlers::payload::first_wait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::seeded::Seeded;

/// The state machine's own `TimeoutSeconds`, the deadline the policy never sleeps past.
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 691_200;
/// The longest a run may be noticed late, with or without history (issue 26).
pub const MAX_LAG_SECONDS: u64 = OVERRUN_MAX_WAIT_SECONDS;

/// How a simulated run's waits are chosen.
#[derive(Debug, Clone, Copy)]
pub enum Waits {
    /// A `BackoffPolicy` alone, as polls were placed before issue 26: no history, no jitter.
    Backoff(BackoffPolicy),
    /// The poll handler's plan for a run of the default policy whose workflow's history gives
    /// `prediction` (none: a workflow without history), every wait jittered.
    Planned(Option<Prediction>),
}

/// The request the simulated runs stand for (`examples/amperity.json`), one per seed: its key
/// fixes the first wait's jitter as the trigger's does.
pub fn run_handle(seed: u64) -> RunHandle {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/amperity.json");
    let mut request: Value =
        serde_json::from_slice(&std::fs::read(path).expect("examples/amperity.json"))
            .expect("examples/amperity.json is JSON");
    request["request_id"] = format!("bench-polls-{seed}").into();
    let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_800_000_000);
    let request = RunRequest::from_json(request.to_string().as_bytes())
        .expect("a valid request")
        .resolve(at);
    let key = IdempotencyKey::for_request(&request, None);
    RunHandle::new(key, request, "bench".into(), at)
}

/// One run's waits, as the deployed handlers choose them, from a seed.
pub struct Schedule {
    waits: Waits,
    jitter: Seeded,
    /// The first wait (the trigger's, before any poll).
    pub first: u64,
}

impl Schedule {
    pub fn new(waits: Waits, seed: u64) -> Self {
        let default = BackoffPolicy::default();
        let first = match waits {
            Waits::Backoff(policy) => policy.next_wait(0, None, EXECUTION_TIMEOUT_SECONDS),
            // Nothing is predicted before the first poll reads the history.
            Waits::Planned(_) => {
                let handle = run_handle(seed);
                first_wait(&handle, &default, handle.submitted_at)
            }
        };
        Self {
            waits,
            jitter: Seeded::of(&[0x7177e4, seed]),
            first,
        }
    }

    /// The wait the poll at `age` answers (the handler draws a jitter per poll).
    pub fn next_wait(&mut self, age: u64) -> u64 {
        let remaining = EXECUTION_TIMEOUT_SECONDS.saturating_sub(age);
        match self.waits {
            Waits::Backoff(policy) => policy.next_wait(age, None, remaining),
            Waits::Planned(prediction) => PollPlan::for_run(
                None,
                prediction,
                BackoffPolicy::default(),
            )
            .next_wait(age, None, remaining, self.jitter.unit()),
        }
    }

    /// Poll ages, on their own, up to the first at or after `until` (the arithmetic view).
    pub fn ages(waits: Waits, seed: u64, until: u64) -> Vec<u64> {
        let mut schedule = Self::new(waits, seed);
        let mut ages = vec![schedule.first];
        while *ages.last().expect("one poll") < until {
            let age = *ages.last().expect("one poll");
            ages.push(age + schedule.next_wait(age));
        }
        ages
    }
}

/// The largest lag of any run ending (whole seconds) within `[from, to]`, over `seeds`.
pub fn worst_lag_within(waits: Waits, seeds: u64, from: u64, to: u64) -> u64 {
    let mut worst = 0;
    for seed in 0..seeds {
        let ages = Schedule::ages(waits, seed, to);
        let mut previous = 0;
        for &age in &ages {
            // A run ending in (previous, age] is noticed at `age`; latest lag at the earliest end.
            let earliest = (previous + 1).max(from);
            if earliest <= age.min(to) {
                worst = worst.max(age - earliest);
            }
            previous = age;
        }
    }
    worst
}

/// How a workflow's durations spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mix {
    /// Within ±10 % of the median.
    Tight,
    /// Within ±30 %.
    Wide,
    /// Within ±10 %, one run in 10 three times as long.
    Outliers,
}

impl Mix {
    pub const ALL: [Mix; 3] = [Mix::Tight, Mix::Wide, Mix::Outliers];

    pub fn label(self) -> &'static str {
        match self {
            Mix::Tight => "±10 %",
            Mix::Wide => "±30 %",
            Mix::Outliers => "±10 %, 1 in 10 at 3×",
        }
    }

    /// A run's duration around `median`, and whether it is an outlier.
    pub fn draw(self, median: u64, rng: &mut Seeded) -> (u64, bool) {
        let around = |spread: f64, rng: &mut Seeded| {
            (median as f64 * rng.between(1.0 - spread, 1.0 + spread)).round() as u64
        };
        match self {
            Mix::Tight => (around(0.1, rng), false),
            Mix::Wide => (around(0.3, rng), false),
            Mix::Outliers => {
                let outlier = rng.unit() < 0.1;
                let d = around(0.1, rng);
                if outlier {
                    (3 * d, true)
                } else {
                    (d, false)
                }
            }
        }
    }

    /// The lag bound for a run of `duration` in this mix.
    pub fn lag_target(self, duration: u64) -> u64 {
        match self {
            Mix::Tight => (duration / 50).max(60),
            Mix::Wide => (duration / 20).max(60),
            Mix::Outliers => MAX_LAG_SECONDS,
        }
    }

    pub fn target_text(self) -> &'static str {
        match self {
            Mix::Tight => "max(60 s, 2 % of the run)",
            Mix::Wide => "max(60 s, 5 % of the run)",
            Mix::Outliers => "10 min",
        }
    }

    /// Polls a 6 h run may take (none for the outlier mix).
    pub fn polls_target_6h(self) -> Option<u64> {
        match self {
            Mix::Tight => Some(20),
            Mix::Wide => Some(25),
            Mix::Outliers => None,
        }
    }
}

/// A run of a workflow with history: the prediction its previous runs give, its duration, and
/// whether it is an outlier.
#[derive(Debug, Clone, Copy)]
pub struct HistoryDraw {
    /// What the workflow's last [`HISTORY_RUNS`] runs (drawn from the same mix) predict.
    pub prediction: Option<Prediction>,
    /// The run's duration, seconds.
    pub finish: u64,
    /// Whether the run is an outlier (3×).
    pub outlier: bool,
}

impl HistoryDraw {
    /// Seeded run `seed` of a workflow whose median is `length` seconds, in `mix`.
    pub fn new(length: u64, mix: Mix, seed: u64) -> Self {
        let index = Mix::ALL.iter().position(|m| *m == mix).unwrap_or(0) as u64;
        let mut rng = Seeded::of(&[length, index, seed]);
        let mut history = DurationHistory::default();
        for _ in 0..HISTORY_RUNS {
            history.record(mix.draw(length, &mut rng).0);
        }
        let prediction = history.predict();
        let (finish, outlier) = mix.draw(length, &mut rng);
        Self {
            prediction,
            finish,
            outlier,
        }
    }
}

/// Polls up to and including the one that notices a run ending at `finish`, and its lag.
pub fn polls_and_lag(waits: Waits, seed: u64, finish: u64) -> (u64, u64) {
    let ages = Schedule::ages(waits, seed, finish);
    let noticed = *ages.last().expect("one poll");
    (ages.len() as u64, noticed - finish)
}
