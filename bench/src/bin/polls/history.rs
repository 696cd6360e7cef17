//! Workflows with history: seeded runs of 5 min, 1 h and 6 h workflows in three mixes, and
//! their tables against fixed 60 s and the adaptive policy.

use anyhow::ensure;
use runbridge_asl::StateMachine;
use runbridge_bench::cost::{Cost, Usage};
use runbridge_bench::poll_sim::{HistoryDraw, Mix, Waits};
use runbridge_bench::{at_most, human_seconds, ratio, ratio_at_most, Table};
use runbridge_core::{BackoffPolicy, HISTORY_RUNS};

use crate::sim::{simulate, Outcome};
use crate::storage_model::StorageModel;
use crate::usd;

/// Median durations of the workflows with history.
pub const HISTORY_LENGTHS: [u64; 3] = [300, 3_600, 21_600];
/// Seeded runs per workflow, mix and policy.
pub const SEEDED_RUNS: u64 = 500;
/// Cost per 1,000 runs against fixed 60 s, at most.
pub const TARGET_COST_RATIO: f64 = 0.15;

/// One seeded run of a workflow with history.
#[derive(Debug, Clone, Copy)]
pub struct SeededRun {
    pub finish: u64,
    pub outlier: bool,
    pub outcome: Outcome,
}

/// Many seeded runs of one workflow, mix and policy.
pub struct Cell {
    pub length: u64,
    pub mix: Mix,
    pub policy: usize,
    pub runs: Vec<SeededRun>,
}

impl Cell {
    pub fn worst(&self, filter: impl Fn(&SeededRun) -> bool) -> Option<&SeededRun> {
        self.runs
            .iter()
            .filter(|r| filter(r))
            .max_by_key(|r| r.outcome.lag_seconds)
    }

    /// The 95th percentile of the lags (nearest rank).
    pub fn p95_lag(&self) -> u64 {
        let mut lags: Vec<u64> = self.runs.iter().map(|r| r.outcome.lag_seconds).collect();
        lags.sort_unstable();
        let rank = (lags.len() * 95).div_ceil(100).max(1);
        lags.get(rank - 1).copied().unwrap_or(0)
    }

    pub fn worst_fraction(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.lag_seconds as f64 / r.finish as f64)
            .fold(0.0, f64::max)
    }

    pub fn late(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.outcome.lag_seconds > self.mix.lag_target(r.finish))
            .count()
    }

    pub fn mean_polls(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.polls as f64)
            .sum::<f64>()
            / self.runs.len() as f64
    }

    pub fn max_polls(&self) -> u64 {
        self.runs.iter().map(|r| r.outcome.polls).max().unwrap_or(0)
    }

    pub fn mean_transitions(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.outcome.transitions as f64)
            .sum::<f64>()
            / self.runs.len() as f64
    }

    /// Cost per 1,000 runs.
    pub fn cost(&self, storage: &StorageModel) -> Cost {
        let mut usage = Usage::default();
        for r in &self.runs {
            usage = usage.plus(&storage.usage(r.outcome.polls, r.outcome.transitions));
        }
        usage.times(1_000.0 / self.runs.len() as f64).cost()
    }
}

/// The table for workflows with history: 5 min, 1 h and 6 h workflows in three mixes, the plan
/// against fixed 60 s and the adaptive policy before issue 26, in the same run.
pub async fn history_tables(
    machine: &StateMachine,
    storage: &StorageModel,
    adaptive: BackoffPolicy,
) -> anyhow::Result<()> {
    let names = [
        "runbridge (`PollPlan` from history)",
        "adaptive before issue 26",
        "fixed 60 s",
    ];
    let mut cells: Vec<Cell> = Vec::new();
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL.iter() {
            let mut runs: [Vec<SeededRun>; 3] = Default::default();
            for seed in 0..SEEDED_RUNS {
                let HistoryDraw {
                    prediction,
                    finish,
                    outlier,
                } = HistoryDraw::new(length, *mix, seed);
                ensure!(prediction.is_some(), "{HISTORY_RUNS} runs predict an end");
                let policies = [
                    Waits::Planned(prediction),
                    Waits::Backoff(adaptive),
                    Waits::Backoff(BackoffPolicy::fixed(60)),
                ];
                for (p, waits) in policies.into_iter().enumerate() {
                    let outcome = simulate(machine, waits, seed, finish).await?;
                    runs[p].push(SeededRun {
                        finish,
                        outlier,
                        outcome,
                    });
                }
            }
            for (policy, runs) in runs.into_iter().enumerate() {
                cells.push(Cell {
                    length,
                    mix: *mix,
                    policy,
                    runs,
                });
            }
        }
    }
    let cell = |length: u64, mix: Mix, policy: usize| {
        cells
            .iter()
            .find(|c| c.length == length && c.mix == mix && c.policy == policy)
            .expect("every cell simulated")
    };

    println!("### Workflows with history\n");
    println!(
        "A workflow of 5 min, 1 h or 6 h (its median), its durations in one of three mixes: \
         uniformly within ±10 % of the median, within ±30 %, or within ±10 % with one run in 10 \
         three times as long (drawn at random: about {} of the {SEEDED_RUNS}). Each of \
         {SEEDED_RUNS} seeded runs draws the workflow's {HISTORY_RUNS} previous runs from the \
         same mix into a `DurationHistory`, predicts from it (`DurationHistory::predict`), then \
         draws the run itself and polls it through the state machine as above; the other two \
         policies poll the same runs. *Worst lag* is the largest over the {SEEDED_RUNS} runs \
         (with the run it happened in), *p95 lag* the 95th percentile; *late* counts runs over the issue's bound for the mix \
         (±10 %: max(60 s, 2 % of the run); ±30 %: max(60 s, 5 %); outliers: 10 min). The \
         history holds the runs' true durations; deployed, collect records the middle of the \
         last two polls, off by at most half a lag.\n",
        SEEDED_RUNS / 10
    );
    let mut table = Table::new([
        "workflow",
        "mix",
        "policy",
        "worst lag",
        "p95 lag",
        "largest lag ÷ its run",
        "late",
        "polls mean",
        "polls max",
        "transitions mean",
    ]);
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL {
            for (p, name) in names.iter().enumerate() {
                let c = cell(length, mix, p);
                let worst = c.worst(|_| true).expect("runs");
                table.row([
                    human_seconds(length),
                    mix.label().to_owned(),
                    name.to_string(),
                    format!(
                        "{} s (run of {} s{})",
                        worst.outcome.lag_seconds,
                        worst.finish,
                        if worst.outlier { ", an outlier" } else { "" }
                    ),
                    format!("{} s", c.p95_lag()),
                    format!("{:.1} %", 100.0 * c.worst_fraction()),
                    format!("{}/{}", c.late(), c.runs.len()),
                    format!("{:.1}", c.mean_polls()),
                    c.max_polls().to_string(),
                    format!("{:.1}", c.mean_transitions()),
                ]);
            }
        }
    }
    println!("{}", table.markdown());

    println!("**Cost per 1,000 runs by line item** (USD; mean over the {SEEDED_RUNS} runs)\n");
    let mut table = Table::new([
        "workflow",
        "mix",
        "policy",
        "Step Functions",
        "Lambda requests",
        "Lambda GB-s",
        "S3 GET",
        "S3 PUT",
        "total",
        "vs fixed 60 s",
    ]);
    for length in HISTORY_LENGTHS {
        for mix in Mix::ALL {
            let fixed = cell(length, mix, 2).cost(storage).total();
            for (p, name) in names.iter().enumerate() {
                let c = cell(length, mix, p).cost(storage);
                table.row([
                    human_seconds(length),
                    mix.label().to_owned(),
                    name.to_string(),
                    usd(c.transitions),
                    usd(c.lambda_requests),
                    usd(c.lambda_compute),
                    usd(c.s3_gets),
                    usd(c.s3_puts),
                    usd(c.total()),
                    ratio(c.total(), fixed),
                ]);
            }
        }
    }
    println!("{}", table.markdown());

    // Over the mix: 1,000 runs of each of the three workflows together.
    let over_mix = |mix: Mix, policy: usize| -> f64 {
        HISTORY_LENGTHS
            .iter()
            .map(|l| cell(*l, mix, policy).cost(storage).total())
            .sum()
    };
    println!(
        "**Cost over the mix** — 1,000 runs of each of the three workflows together (USD), \
         against fixed 60 s:\n"
    );
    let mut table = Table::new(["mix", "runbridge", "adaptive before issue 26", "fixed 60 s"]);
    for mix in Mix::ALL {
        let fixed = over_mix(mix, 2);
        table.row([
            mix.label().to_owned(),
            format!(
                "{} ({})",
                usd(over_mix(mix, 0)),
                ratio(over_mix(mix, 0), fixed)
            ),
            format!(
                "{} ({})",
                usd(over_mix(mix, 1)),
                ratio(over_mix(mix, 1), fixed)
            ),
            usd(fixed),
        ]);
    }
    println!("{}", table.markdown());

    println!("**Targets for workflows with history (issue 26), runbridge's plan**\n");
    for mix in Mix::ALL {
        let mut lines = Vec::new();
        for length in HISTORY_LENGTHS {
            let c = cell(length, mix, 0);
            let worst = c.worst(|_| true).expect("runs");
            // The bound of the run the worst lag happened in; `late` counts every run.
            let bound = mix.lag_target(worst.finish);
            let mut line = format!(
                "{}: worst lag {} ({} of {} runs over their bound)",
                human_seconds(length),
                at_most(worst.outcome.lag_seconds as f64, bound as f64, "s"),
                c.late(),
                c.runs.len()
            );
            if let (Some(target), 21_600) = (mix.polls_target_6h(), length) {
                line.push_str(&format!(
                    "; polls per 6 h run ≤ {target}: {}",
                    at_most(c.max_polls() as f64, target as f64, "polls")
                ));
            }
            if mix == Mix::Outliers {
                let outliers = c.worst(|r| r.outlier);
                let others = c.worst(|r| !r.outlier).expect("runs that are no outlier");
                line.push_str(&format!(
                    "; the outliers ({} runs) all polled to their end, the latest noticed {} s \
                     after it; the other runs at most {} s late, {} of them over max(60 s, 2 % \
                     of the run)",
                    c.runs.iter().filter(|r| r.outlier).count(),
                    outliers.map_or(0, |r| r.outcome.lag_seconds),
                    others.outcome.lag_seconds,
                    c.runs
                        .iter()
                        .filter(|r| !r.outlier
                            && r.outcome.lag_seconds > Mix::Tight.lag_target(r.finish))
                        .count()
                ));
            }
            let ratio_here = c.cost(storage).total() / cell(length, mix, 2).cost(storage).total();
            line.push_str(&format!(
                "; cost ≤ {TARGET_COST_RATIO}× fixed 60 s at this length: {}",
                ratio_at_most(ratio_here, TARGET_COST_RATIO)
            ));
            lines.push(line);
        }
        println!(
            "- {} (lag bound {}): {}; cost over the mix ≤ {TARGET_COST_RATIO}× fixed 60 s: {}",
            mix.label(),
            mix.target_text(),
            lines.join("; "),
            ratio_at_most(over_mix(mix, 0) / over_mix(mix, 2), TARGET_COST_RATIO)
        );
    }
    println!();

    // What the history buys against the policy it replaced, in this run's figures.
    let summary: Vec<String> = HISTORY_LENGTHS
        .iter()
        .map(|l| {
            let (plan, old, fixed) = (
                cell(*l, Mix::Tight, 0),
                cell(*l, Mix::Tight, 1),
                cell(*l, Mix::Tight, 2),
            );
            let lag = |c: &Cell| c.worst(|_| true).map_or(0, |r| r.outcome.lag_seconds);
            format!(
                "{}: worst lag {} s → {} s, polls {:.1} → {:.1} (fixed 60 s: {:.1})",
                human_seconds(*l),
                lag(old),
                lag(plan),
                old.mean_polls(),
                plan.mean_polls(),
                fixed.mean_polls()
            )
        })
        .collect();
    println!(
        "**What the history buys** (±10 %, the adaptive policy before issue 26 → runbridge's \
         plan, mean polls per run): {}. On a 5 min workflow a fixed minute is already \
         within the lag target, and the plan, whose lag target there is that same minute, \
         cannot poll much less; the fixed per-run costs (trigger, collect, their requests) \
         weigh more there too.\n",
        summary.join("; ")
    );
    Ok(())
}
