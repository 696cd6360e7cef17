//! Issue 26's targets for polls, checked on a small seeded version of BENCHMARKS section 1 (the
//! same draws and the same schedule arithmetic, fewer runs, no state machine): a change to
//! `PollPlan` or `DurationHistory::predict` that misses a target fails here, not only in the
//! document.

use runbridge_bench::poll_sim::{
    polls_and_lag, worst_lag_within, HistoryDraw, Mix, Waits, MAX_LAG_SECONDS,
};

/// Seeded runs per workflow and mix (the document uses 500).
const SEEDS: u64 = 150;
/// Median durations of the workflows with history: 5 min, 1 h, 6 h.
const LENGTHS: [u64; 3] = [300, 3_600, 21_600];

/// Every run of `mix` checked against its lag bound; the most polls a 6 h run took.
fn check(mix: Mix) -> u64 {
    let mut most_polls_6h = 0;
    for length in LENGTHS {
        for seed in 0..SEEDS {
            let draw = HistoryDraw::new(length, mix, seed);
            assert!(draw.prediction.is_some(), "a full history predicts an end");
            let (polls, lag) = polls_and_lag(Waits::Planned(draw.prediction), seed, draw.finish);
            let bound = mix.lag_target(draw.finish);
            assert!(
                lag <= bound,
                "{} workflow of {length} s, seed {seed}: a run of {} s{} noticed {lag} s late, \
                 over its bound of {bound} s ({polls} polls, predicted {:?})",
                mix.label(),
                draw.finish,
                if draw.outlier { " (an outlier)" } else { "" },
                draw.prediction
            );
            if length == 21_600 {
                most_polls_6h = most_polls_6h.max(polls);
            }
        }
    }
    most_polls_6h
}

#[test]
fn within_10_percent_a_run_is_noticed_within_2_percent_at_20_polls_per_6_hours() {
    let polls = check(Mix::Tight);
    assert!(polls <= 20, "a 6 h run took {polls} polls");
}

#[test]
fn within_30_percent_a_run_is_noticed_within_5_percent_at_25_polls_per_6_hours() {
    let polls = check(Mix::Wide);
    assert!(polls <= 25, "a 6 h run took {polls} polls");
}

#[test]
fn an_outlier_at_3x_is_polled_to_its_end_and_noticed_within_10_minutes() {
    check(Mix::Outliers);
}

#[test]
fn without_history_no_run_is_noticed_more_than_10_minutes_late() {
    for duration in [60, 300, 900, 3_600, 10_800, 21_600, 86_400] {
        let worst = worst_lag_within(
            Waits::Planned(None),
            20,
            duration * 9 / 10,
            duration * 11 / 10,
        );
        assert!(
            worst <= MAX_LAG_SECONDS,
            "a run of about {duration} s without history noticed {worst} s late"
        );
    }
}
