//! A small seeded day on the real stack (issue 22): 60 runs of the mix sent at once
//! through the real handlers, the deployed state machine in the interpreter and the four vendor
//! simulators, on a clock running 150× real time, must leave every zero figure at zero and poll
//! as often as the model (`runbridge_bench::day`) says for the same runs. Scaled real time, so
//! the durations are the shortest runs (5–30 min) to keep it short.

use runbridge_bench::day::machine::MachineFacts;
use runbridge_bench::realday::compare::{per_run_polls, table};
use runbridge_bench::realday::{run, RealDay};

/// How far the real day's mean polls per run may be from the model's. Real polls carry the
/// scaled clock's noise (each millisecond of handling is `speed` simulated ms), and AMC's slots
/// are handed on by real executions.
const POLLS_TOLERANCE: f64 = 0.20;

fn small_day(runs: usize, seed: u64) -> RealDay {
    let mut day = RealDay::burst(runs, seed, 150.0);
    day.workload.shortest = 300;
    day.workload.longest = 1_800;
    day
}

async fn facts() -> MachineFacts {
    MachineFacts::measure()
        .await
        .expect("the deployed definition measures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_real_day_has_no_nonzero_zero_figure_and_polls_as_the_model_says() {
    let compared = run(small_day(60, 22), &facts().await)
        .await
        .expect("the real day runs");
    println!("{}", table(&compared));
    let (real, model) = (&compared.real, &compared.model);
    assert_eq!(real.runs, 60);
    assert!(
        real.nonzero_zero_figures().is_empty(),
        "{:?}",
        real.nonzero_zero_figures()
    );
    assert_eq!(real.completed, 60);
    assert!(real.amc_peak_active <= 10, "{}", real.amc_peak_active);
    let model_mean = model.polls_by_run.iter().sum::<u64>() as f64 / model.runs as f64;
    let (mean_gap, _) = per_run_polls(real, model);
    assert!(
        (real.polls_mean / model_mean - 1.0).abs() <= POLLS_TOLERANCE,
        "real {:.2} polls per run, model {model_mean:.2} (per run off by {mean_gap:.2})",
        real.polls_mean
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_check_fails_when_amcs_queue_is_off() {
    // 15 AMC runs on one instance at once without the queue: AMC refuses the 11th at once.
    let mut day = small_day(15, 5);
    day.workload.mix = [100, 0, 0, 0];
    day.workload.amc_instances = 1;
    day.amc_limit = None;
    let compared = run(day, &facts().await).await.expect("the real day runs");
    let bad = compared.real.nonzero_zero_figures();
    assert!(bad.iter().any(|f| f.starts_with("vendor 429s")), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polls_check_fails_when_the_vendors_take_longer_than_the_workload_says() {
    // The simulators run each run for twice its workload's duration; the model keeps the
    // workload's. The real runs overrun their predictions and poll on past them.
    let mut day = small_day(30, 9);
    day.duration_factor = 2.0;
    let compared = run(day, &facts().await).await.expect("the real day runs");
    let (real, model) = (&compared.real, &compared.model);
    let model_mean = model.polls_by_run.iter().sum::<u64>() as f64 / model.runs as f64;
    println!(
        "twice the durations: real {:.2} polls per run, model {model_mean:.2}",
        real.polls_mean
    );
    assert!(
        (real.polls_mean / model_mean - 1.0).abs() > POLLS_TOLERANCE,
        "real {:.2} polls per run at twice the durations, model {model_mean:.2}",
        real.polls_mean
    );
}
