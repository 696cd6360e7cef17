//! The figures of a simulated day: outcomes, the zero figures, vendor and AWS limits' peaks and
//! throttles, per-run distributions and cost per 1,000 runs by line item.

use std::collections::HashMap;
use std::time::Duration;

use crate::cost::{Cost, Usage};
use crate::day::engine::Engine;
use crate::day::machine::MachineFacts;
use crate::day::run::{Cause, Outcome};
use crate::day::workload::Vendor;

/// p50, p95 and max of a set of values (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: usize| values[((values.len() * q).div_ceil(100)).max(1) - 1];
        Self {
            p50: rank(50),
            p95: rank(95),
            max: *values.last().expect("values"),
        }
    }

    pub fn text(&self, digits: usize) -> String {
        format!(
            "{:.d$} / {:.d$} / {:.d$}",
            self.p50,
            self.p95,
            self.max,
            d = digits
        )
    }
}

/// The most AMC executions PENDING or RUNNING at once on any instance: from each run's
/// submission to the vendor's end.
fn amc_peak_running(runs: &[crate::day::run::Run]) -> u64 {
    let mut changes: HashMap<usize, Vec<(u64, i64)>> = HashMap::new();
    for r in runs.iter().filter(|r| r.spec.vendor == Vendor::Amc) {
        if let Some(at) = r.submitted_ms {
            let list = changes.entry(r.spec.account).or_default();
            list.push((at, 1));
            list.push((r.vendor_end_ms, -1));
        }
    }
    let mut peak = 0;
    for list in changes.values_mut() {
        // An end and a start at the same moment: the end first.
        list.sort_unstable();
        let mut running = 0i64;
        for (_, change) in list.iter() {
            running += change;
            peak = peak.max(running);
        }
    }
    peak as u64
}

/// One AWS quota's use.
#[derive(Debug, Clone)]
pub struct QuotaUse {
    pub name: &'static str,
    pub limit: String,
    pub peak: u64,
    pub throttled: u64,
}

/// Everything a day printed about itself.
#[derive(Debug, Clone)]
pub struct Figures {
    pub runs: usize,
    pub completed: usize,
    pub failed: HashMap<&'static str, usize>,
    pub dead_lettered: usize,
    pub duplicate_vendor_runs: usize,
    pub without_manifest: usize,
    pub cancelled_vendor_runs: usize,
    /// Vendor 429s, per vendor; the worst one-second count of any account, per vendor.
    pub vendor_429s: HashMap<Vendor, u64>,
    pub worst_second: HashMap<Vendor, u64>,
    pub amc_peak_active: u64,
    pub amc_refused: u64,
    pub quotas: Vec<QuotaUse>,
    pub failed_from_throttling: usize,
    pub largest_history: u64,
    pub polls: Spread,
    pub transitions: Spread,
    pub gb_seconds: Spread,
    pub s3_puts: Spread,
    pub s3_gets: Spread,
    pub detection_lag: Spread,
    pub queue_wait: Spread,
    /// Request sent → its execution started (the intake alone: Scheduler, the queue, the trigger).
    pub intake_wait: Spread,
    /// Cost per 1,000 runs (completed or not), by line item.
    pub cost: Cost,
    pub usage_per_run: Usage,
    pub lambda_invocations: u64,
    pub last_manifest_ms: u64,
    pub first_sent_ms: u64,
    pub wall: Duration,
    /// Polls of each run, in the order given (calibration).
    pub polls_by_run: Vec<u64>,
    /// Durations collect records, in the order given.
    pub recorded_seconds: Vec<u64>,
}

impl Figures {
    pub fn of(engine: Engine<'_>, facts: &MachineFacts, wall: Duration) -> Self {
        let runs = &engine.runs;
        let q = &engine.q;
        let mut failed: HashMap<&'static str, usize> = HashMap::new();
        for r in runs {
            if let Outcome::Failed(cause) = r.outcome {
                let name = match cause {
                    Cause::LambdaThrottle => "Lambda throttle retries ran out",
                    Cause::History => "execution history full",
                    Cause::Deadline => "cancelled at its deadline (the vendor's default)",
                };
                *failed.entry(name).or_default() += 1;
            }
        }
        let mut vendor_429s = HashMap::new();
        let mut worst_second = HashMap::new();
        for ((vendor, _), window) in &q.vendor {
            *vendor_429s.entry(*vendor).or_insert(0) += window.refused;
            let w = worst_second.entry(*vendor).or_insert(0);
            *w = (*w).max(window.worst_second);
        }
        let figures = &q.lambda.figures;
        let quotas = vec![
            QuotaUse {
                name: "Scheduler target invocations / s",
                limit: "1,000".into(),
                peak: q.scheduler.peak,
                throttled: q.scheduler.throttled,
            },
            QuotaUse {
                name: "StartExecution (bucket)",
                limit: "1,300, +300/s".into(),
                peak: q.start_execution.rate.peak,
                throttled: q.start_execution.throttled,
            },
            QuotaUse {
                name: "StateTransition (bucket)",
                limit: "5,000, +5,000/s".into(),
                peak: q.transitions.rate.peak,
                throttled: q.transitions.throttled,
            },
            QuotaUse {
                name: "Lambda concurrency (account)",
                limit: "1,000".into(),
                peak: q.lambda.peak_concurrency,
                throttled: figures.iter().map(|f| f.throttles).sum(),
            },
            QuotaUse {
                name: "Lambda new environments / 10 s (poll fn)",
                limit: "1,000".into(),
                peak: figures[1].peak_scaling,
                throttled: 0,
            },
            QuotaUse {
                name: "SQS event source (trigger batches at once)",
                limit: "TriggerMaxConcurrency 5".into(),
                peak: q.peak_trigger_batches,
                throttled: figures[0].throttles,
            },
            QuotaUse {
                name: "S3 PUT / s, `_ledger/`",
                limit: "3,500".into(),
                peak: q.s3_ledger_put.peak,
                throttled: q.s3_ledger_put.throttled,
            },
            QuotaUse {
                name: "S3 GET / s, `_ledger/`",
                limit: "5,500".into(),
                peak: q.s3_ledger_get.peak,
                throttled: q.s3_ledger_get.throttled,
            },
            QuotaUse {
                name: "S3 PUT / s, results",
                limit: "3,500".into(),
                peak: q.s3_results_put.peak,
                throttled: q.s3_results_put.throttled,
            },
            QuotaUse {
                name: "S3 GET / s, results",
                limit: "5,500".into(),
                peak: q.s3_results_get.peak,
                throttled: q.s3_results_get.throttled,
            },
        ];
        let queued = |v: Vendor| v == Vendor::Amc;
        let transitions_of = |r: &crate::day::run::Run| {
            facts.transitions(r.polls, r.retries, queued(r.spec.vendor)) as f64
        };
        let mut usage = Usage::default();
        for r in runs {
            usage = usage.plus(&Usage {
                transitions: transitions_of(r),
                triggers: r.triggers,
                polls: r.poll_calls,
                collects: r.collects,
                s3_gets: r.s3_gets as f64,
                s3_puts: r.s3_puts as f64,
            });
        }
        let n = runs.len().max(1) as f64;
        let usage_per_run = usage.times(1.0 / n);
        // Lambda compute from the simulated durations, in place of cost.rs's fixed assumptions.
        let gb_total: f64 = runs.iter().map(|r| r.gb_seconds).sum();
        let mut cost = usage.times(1_000.0 / n).cost();
        cost.lambda_compute = gb_total * 1_000.0 / n * crate::cost::USD_PER_GB_SECOND_ARM64;
        let spread = |f: &dyn Fn(&crate::day::run::Run) -> Option<f64>| {
            Spread::of(runs.iter().filter_map(f).collect())
        };
        Self {
            runs: runs.len(),
            completed: runs
                .iter()
                .filter(|r| r.outcome == Outcome::Succeeded)
                .count(),
            failed_from_throttling: failed
                .get("Lambda throttle retries ran out")
                .copied()
                .unwrap_or(0),
            failed,
            dead_lettered: runs
                .iter()
                .filter(|r| r.outcome == Outcome::DeadLettered)
                .count(),
            duplicate_vendor_runs: runs
                .iter()
                .map(|r| r.submits.saturating_sub(1) as usize)
                .sum(),
            without_manifest: runs.iter().filter(|r| !r.manifest).count(),
            cancelled_vendor_runs: runs.iter().filter(|r| r.cancelled).count(),
            vendor_429s,
            worst_second,
            amc_peak_active: amc_peak_running(runs),
            amc_refused: q.amc_refused,
            quotas,
            largest_history: runs
                .iter()
                .map(|r| facts.history_events(r.polls, r.retries, queued(r.spec.vendor)))
                .max()
                .unwrap_or(0),
            polls: spread(&|r| Some(r.polls as f64)),
            transitions: spread(&|r| Some(transitions_of(r))),
            gb_seconds: spread(&|r| Some(r.gb_seconds)),
            s3_puts: spread(&|r| Some(r.s3_puts as f64)),
            s3_gets: spread(&|r| Some(r.s3_gets as f64)),
            detection_lag: spread(&|r| {
                r.detected_ms
                    .map(|d| (d - r.vendor_end_ms) as f64 / 1_000.0)
            }),
            queue_wait: spread(&|r| {
                r.submitted_ms
                    .map(|s| s.saturating_sub(r.spec.sent_ms) as f64 / 1_000.0)
            }),
            intake_wait: spread(&|r| {
                r.started_ms
                    .map(|s| s.saturating_sub(r.spec.sent_ms) as f64 / 1_000.0)
            }),
            cost,
            usage_per_run,
            lambda_invocations: figures.iter().map(|f| f.invocations).sum(),
            last_manifest_ms: runs.iter().filter_map(|r| r.finished_ms).max().unwrap_or(0),
            first_sent_ms: runs.iter().map(|r| r.spec.sent_ms).min().unwrap_or(0),
            wall,
            polls_by_run: runs.iter().map(|r| r.polls).collect(),
            recorded_seconds: runs.iter().map(|r| r.recorded_seconds()).collect(),
        }
    }

    /// The zero figures of the issue that are not zero, named.
    pub fn nonzero_zero_figures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, value: u64| {
            if value != 0 {
                out.push(format!("{name}: {value}"));
            }
        };
        check("duplicate vendor runs", self.duplicate_vendor_runs as u64);
        check("runs without a manifest", self.without_manifest as u64);
        check(
            "vendor 429s",
            self.vendor_429s.values().sum::<u64>() + self.amc_refused,
        );
        check(
            "failed runs from throttling",
            self.failed_from_throttling as u64,
        );
        check(
            "history over 50 % of 25,000",
            u64::from(self.largest_history * 2 > 25_000),
        );
        out
    }
}
