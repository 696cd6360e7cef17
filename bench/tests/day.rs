//! A small seeded day (issue 22): 1,000 runs in each intake shape, the vendors' accounts scaled
//! down with it so each carries the full day's load, must leave every zero figure at zero and
//! complete every run but those longer than their deadline (cancelled, as the stack does); and
//! the simulation must calibrate against BENCHMARKS §1 (polls per run) and §5 (queue ratio).

use runbridge_bench::day::calibrate::{polls_alone, queue_ratio, SECTION_1, SECTION_5_RATIO};
use runbridge_bench::day::machine::MachineFacts;
use runbridge_bench::day::workload::{generate, Intake, Workload};
use runbridge_bench::day::{simulate_workload, Budget, Params, PollPolicy};
use runbridge_bench::poll_sim::{polls_and_lag, Waits};

fn facts() -> MachineFacts {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(MachineFacts::measure())
        .expect("the deployed definition measures")
}

#[test]
fn a_small_seeded_day_has_no_nonzero_zero_figure_in_any_intake_shape() {
    let facts = facts();
    for intake in Intake::ALL {
        let mut workload = Workload::issue(1_000, intake, 22);
        workload.amc_instances = 50;
        workload.amperity_tenants = 5;
        workload.other_accounts = 2;
        let mut params = Params::deployed(22, intake, PollPolicy::Plan);
        // The cross-environment budget the stack is getting; today's per-process limiter is
        // reported by the bench, not held to zero here.
        params.amperity_budget = Budget::Shared;
        let day = simulate_workload(&params, &facts, &workload);
        assert_eq!(day.runs, 1_000);
        assert_eq!(
            day.completed + day.dead_lettered + day.failed.values().sum::<usize>(),
            1_000
        );
        assert!(
            day.nonzero_zero_figures().is_empty(),
            "{}: {:?}",
            intake.label(),
            day.nonzero_zero_figures()
        );
        // Every run completes but those the stack cancels at their deadline (the vendor's
        // default): all runs longer than it, and none that end two hours before it.
        let cancelled = day
            .failed
            .get("cancelled at its deadline (the vendor's default)")
            .copied()
            .unwrap_or(0);
        let runs = generate(&workload);
        let longer_than = |margin: u64| {
            runs.iter()
                .filter(|r| r.duration + margin > r.vendor.kind().default_deadline_seconds())
                .count()
        };
        assert!(
            (longer_than(0)..=longer_than(7_200)).contains(&cancelled),
            "{}: {cancelled} cancelled at their deadline, {} runs longer than it",
            intake.label(),
            longer_than(0)
        );
        assert_eq!(
            day.completed + cancelled,
            1_000,
            "{}: {:?}",
            intake.label(),
            day.failed
        );
        assert!(day.amc_peak_active <= 10);
    }
}

#[test]
fn polls_per_run_are_section_1s() {
    let facts = facts();
    for (duration, polls) in SECTION_1 {
        let simulated = polls_alone(&facts, duration);
        assert_eq!(simulated, polls, "{duration} s");
        assert_eq!(
            simulated,
            polls_and_lag(Waits::Planned(None), 0, duration).0
        );
    }
}

#[test]
fn the_queue_ratio_is_within_ten_percent_of_section_5s() {
    let ratio = queue_ratio(&facts());
    assert!(
        (ratio / SECTION_5_RATIO - 1.0).abs() <= 0.10,
        "{ratio:.3} vs {SECTION_5_RATIO}"
    );
}

#[test]
fn the_zero_check_fails_when_a_limit_is_broken() {
    // Today's per-process limiter with every Amperity run on one tenant and all sent at once:
    // five trigger environments each keep 10 requests/s to themselves, the tenant sees more.
    let facts = facts();
    let mut workload = Workload::issue(400, Intake::SqsBurst, 7);
    workload.mix = [0, 100, 0, 0];
    workload.amperity_tenants = 1;
    let params = Params::deployed(7, Intake::SqsBurst, PollPolicy::Plan);
    assert_eq!(params.amperity_budget, Budget::PerProcess);
    let day = simulate_workload(&params, &facts, &workload);
    assert!(
        day.nonzero_zero_figures()
            .iter()
            .any(|f| f.starts_with("vendor 429s")),
        "{:?}",
        day.nonzero_zero_figures()
    );
    // The same day with the shared budget keeps the tenant's limit.
    let mut shared = params.clone();
    shared.amperity_budget = Budget::Shared;
    let day = simulate_workload(&shared, &facts, &workload);
    assert!(
        day.nonzero_zero_figures().is_empty(),
        "{:?}",
        day.nonzero_zero_figures()
    );
}
