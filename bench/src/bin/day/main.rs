//! A simulated day at scale (issue 22): 10,000 runs on one virtual clock through the stack's
//! intake, Lambda, Step Functions and the vendors, in three intake shapes, with runbridge's poll
//! plan and the fixed 60 s and 30 s anchors, then a volume sweep. The engine is
//! `runbridge_bench::day`; this binary runs the cases and prints BENCHMARKS section 6. Last, a
//! scaled-down day on the real stack beside the model on the same runs
//! (`runbridge_bench::realday`).
//!
//! Usage: `cargo run --release -p runbridge-bench --bin day [-- --runs N] [--no-sweep | --sweep-only]
//! [--real-runs N] [--real-speed S] [--no-real]`.
//!
//! Here: the cases; `report.rs` prints their figures, `real.rs` the real day's.

mod real;
mod report;

use anyhow::Context;
use runbridge_bench::day::calibrate::{polls_alone, queue_ratio, SECTION_1, SECTION_5_RATIO};
use runbridge_bench::day::machine::MachineFacts;
use runbridge_bench::day::workload::{Intake, Workload};
use runbridge_bench::day::{simulate_workload, Budget, Params, PollPolicy};
use runbridge_bench::realday::RealDay;

/// The sweep's daily volumes.
const SWEEP: [usize; 4] = [10_000, 30_000, 100_000, 300_000];
const SEED: u64 = 22;
/// The real day: runs, and simulated seconds per real second (its 6-hour runs take ~1 minute).
const REAL_RUNS: usize = 200;
const REAL_SPEED: f64 = 400.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut runs = 10_000;
    let mut sweep = true;
    let mut cases_wanted = true;
    let mut real_runs = REAL_RUNS;
    let mut real_speed = REAL_SPEED;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--no-sweep" => sweep = false,
            "--sweep-only" => cases_wanted = false,
            "--real-runs" => real_runs = args.next().context("--real-runs N")?.parse()?,
            "--real-speed" => real_speed = args.next().context("--real-speed S")?.parse()?,
            "--no-real" => real_runs = 0,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let facts = MachineFacts::measure().await?;
    let calibration: Vec<(u64, u64, u64)> = SECTION_1
        .iter()
        .map(|(d, p)| (*d, *p, polls_alone(&facts, *d)))
        .collect();
    let ratio = queue_ratio(&facts);

    let mut cases = Vec::new();
    for intake in Intake::ALL.into_iter().filter(|_| cases_wanted) {
        for budget in [Budget::PerProcess, Budget::Shared] {
            for waits in [
                PollPolicy::Plan,
                PollPolicy::Fixed(60),
                PollPolicy::Fixed(30),
            ] {
                if budget == Budget::PerProcess && waits != PollPolicy::Plan {
                    continue;
                }
                let mut params = Params::deployed(SEED, intake, waits);
                params.amperity_budget = budget;
                let day = simulate_workload(&params, &facts, &Workload::issue(runs, intake, SEED));
                eprintln!(
                    "[day] {} / {} / {}: {:.1} s",
                    intake.label(),
                    budget.label(),
                    waits.label(),
                    day.wall.as_secs_f64()
                );
                cases.push((intake, budget, waits, day));
            }
        }
    }
    let mut volumes = Vec::new();
    if sweep {
        for volume in SWEEP {
            let intake = Intake::SchedulerCron;
            let mut params = Params::deployed(SEED, intake, PollPolicy::Plan);
            params.amperity_budget = Budget::Shared;
            let day = simulate_workload(&params, &facts, &Workload::issue(volume, intake, SEED));
            eprintln!("[day] sweep {volume}: {:.1} s", day.wall.as_secs_f64());
            volumes.push((volume, day));
        }
    }
    report::print(&report::Report {
        runs,
        facts: &facts,
        calibration: &calibration,
        queue_ratio: (ratio, SECTION_5_RATIO),
        cases: &cases,
        sweep: &volumes,
        wall: started.elapsed(),
    });
    if real_runs > 0 {
        let day = RealDay::burst(real_runs, SEED, real_speed);
        let compared = runbridge_bench::realday::run(day, &facts).await?;
        eprintln!(
            "[day] real stack, {real_runs} runs: {:.1} s",
            compared.real.wall.as_secs_f64()
        );
        real::print(&compared);
    }
    Ok(())
}
