//! The figures of a real day, read from what the stack left: each execution's history in the
//! interpreter, the manifests, the trigger's refusals and the dead letters, the simulators'
//! counters (creates per run tag, 429s, AMC's active executions per instance) and the counted
//! storage ports.

use std::collections::BTreeMap;
use std::time::Duration;

use runbridge_asl::ExecutionStatus;
use runbridge_core::{RunState, VendorKind};

use crate::day::figures::Spread;
use crate::realday::requests::amc_instance;
use crate::realday::stack::{Day, Ended, Stack};

/// What a real day measured.
#[derive(Debug, Clone)]
pub struct RealFigures {
    pub runs: usize,
    pub completed: usize,
    /// Failed runs by cause (the execution's error, or the manifest's state).
    pub failed: BTreeMap<String, usize>,
    /// Each failed run: its vendor, and why (the manifest's reason, else the execution's cause).
    pub failures: Vec<String>,
    /// Requests the trigger refused, and requests and status changes dead-lettered.
    pub dead_lettered: usize,
    pub duplicate_vendor_runs: u64,
    /// Runs never submitted to their vendor.
    pub never_submitted: usize,
    pub without_manifest: usize,
    /// 429s per vendor; `None`: the simulator has no limit to refuse with.
    pub vendor_429s: BTreeMap<VendorKind, Option<u64>>,
    pub amc_peak_active: u64,
    pub polls: Spread,
    pub polls_mean: f64,
    pub transitions: Spread,
    /// The largest execution history, events counted toward Step Functions' quota.
    pub largest_history: u64,
    pub storage_gets: Spread,
    pub storage_puts: Spread,
    /// Mean storage GETs and PUTs per run in each step ([`STEPS`]).
    pub storage_by_step: Vec<(&'static str, f64, f64)>,
    /// Polls of each run, by the run's index in the day.
    pub polls_by_index: BTreeMap<usize, u64>,
    pub wall: Duration,
    pub speed: f64,
}

/// The steps storage requests are counted in (`""`: the trigger, outside any state).
pub const STEPS: [(&str, &str); 5] = [
    ("", "trigger"),
    ("enqueue", "enqueue (AMC)"),
    ("admit", "admit (AMC)"),
    ("poll", "polls"),
    ("collect", "collect"),
];

fn polls(run: &Ended) -> u64 {
    run.execution
        .states_entered()
        .iter()
        .filter(|s| **s == "Poll")
        .count() as u64
}

fn history_events(run: &Ended) -> u64 {
    run.execution
        .history
        .iter()
        .filter(|e| e.kind.counts_toward_quota())
        .count() as u64
}

impl RealFigures {
    pub fn of(day: &Day, stack: &Stack) -> Self {
        let ended = &day.ended;
        let mut failed: BTreeMap<String, usize> = BTreeMap::new();
        let mut completed = 0;
        let mut failures = Vec::new();
        for run in ended {
            let succeeded = run.execution.status == ExecutionStatus::Succeeded
                && run
                    .manifest
                    .as_ref()
                    .is_some_and(|m| m.state == RunState::Succeeded);
            if succeeded {
                completed += 1;
                continue;
            }
            let cause = run
                .execution
                .error
                .clone()
                .or_else(|| run.manifest.as_ref().map(|m| format!("{:?}", m.state)))
                .unwrap_or_else(|| format!("{:?}", run.execution.status));
            let reason = run
                .manifest
                .as_ref()
                .and_then(|m| m.reason.clone())
                .or_else(|| run.execution.cause.clone())
                .unwrap_or_default();
            failures.push(format!(
                "{} run {} ({} s): {cause}: {reason}",
                run.planned.kind, run.planned.index, run.planned.spec.duration
            ));
            *failed.entry(cause).or_default() += 1;
        }
        let instances: Vec<String> = ended
            .iter()
            .filter(|r| r.planned.kind == VendorKind::Amc)
            .map(|r| amc_instance(r.planned.spec.account))
            .collect();
        let spread = |f: &dyn Fn(&Ended) -> f64| Spread::of(ended.iter().map(f).collect());
        let n = ended.len().max(1) as f64;
        Self {
            runs: ended.len() + day.refused.len(),
            completed,
            failed,
            failures,
            dead_lettered: day.refused.len() + day.dead_letters,
            duplicate_vendor_runs: ended.iter().map(|r| r.submits.saturating_sub(1)).sum(),
            never_submitted: ended.iter().filter(|r| r.submits == 0).count(),
            without_manifest: ended.iter().filter(|r| r.manifest.is_none()).count()
                + day.refused.len(),
            vendor_429s: VendorKind::ALL
                .iter()
                .map(|v| (*v, stack.refusals(*v)))
                .collect(),
            amc_peak_active: stack.amc_peak(&instances),
            polls: spread(&|r| polls(r) as f64),
            polls_mean: ended.iter().map(polls).sum::<u64>() as f64 / n,
            transitions: spread(&|r| r.execution.transitions as f64),
            largest_history: ended.iter().map(history_events).max().unwrap_or(0),
            storage_gets: spread(&|r| r.storage.gets() as f64),
            storage_puts: spread(&|r| r.storage.puts() as f64),
            storage_by_step: STEPS
                .iter()
                .map(|(step, name)| {
                    let (gets, puts) = ended.iter().fold((0, 0), |(g, p), r| {
                        let q = stack.counter.of_step(r.key.as_str(), step);
                        (g + q.gets(), p + q.puts())
                    });
                    (*name, gets as f64 / n, puts as f64 / n)
                })
                .collect(),
            polls_by_index: ended.iter().map(|r| (r.planned.index, polls(r))).collect(),
            wall: day.wall,
            speed: stack.speed,
        }
    }

    /// The zero figures of the issue that are not zero, named (as the model's
    /// `Figures::nonzero_zero_figures`).
    pub fn nonzero_zero_figures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, value: u64| {
            if value != 0 {
                out.push(format!("{name}: {value}"));
            }
        };
        check("duplicate vendor runs", self.duplicate_vendor_runs);
        check("runs never submitted", self.never_submitted as u64);
        check("runs without a manifest", self.without_manifest as u64);
        check("dead letters", self.dead_lettered as u64);
        check(
            "vendor 429s",
            self.vendor_429s.values().flatten().sum::<u64>(),
        );
        check("failed runs", self.failed.values().sum::<usize>() as u64);
        check(
            "history over 50 % of 25,000",
            u64::from(self.largest_history * 2 > 25_000),
        );
        out
    }
}
