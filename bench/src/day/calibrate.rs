//! The simulated day against today's measurements: polls per run as BENCHMARKS §1 measures them
//! (one run alone, no latency: the same `PollPlan` schedule the interpreter follows there), and
//! §5's queue ratio (50 AMC requests for one instance at once after a warm-up, 600 s each).

use runbridge_core::DurationHistory;

use crate::day::machine::MachineFacts;
use crate::day::workload::{Intake, RunSpec, Vendor};
use crate::day::{simulate, Params, PollPolicy};

/// §1's run lengths and, for the default plan without history at seed 0, its polls.
pub const SECTION_1: [(u64, u64); 6] = [
    (60, 4),
    (300, 7),
    (900, 9),
    (3_600, 14),
    (10_800, 27),
    (21_600, 47),
];
/// §5: 50 requests for one instance, first request → last manifest ÷ ⌈50/10⌉ × 600 s.
pub const SECTION_5_RATIO: f64 = 1.036;

/// Polls of one run of `duration` alone, without history, on a stack without latency.
pub fn polls_alone(facts: &MachineFacts, duration: u64) -> u64 {
    let params = Params::deployed(0, Intake::Spread, PollPolicy::Plan).instant();
    let spec = RunSpec {
        vendor: Vendor::Carto,
        account: 0,
        sent_ms: 0,
        duration,
        prediction: None,
        history: DurationHistory::default(),
    };
    simulate(&params, facts, vec![spec]).polls_by_run[0]
}

/// §5's measurement on the simulated stack: 3 runs without history, 10 predicted from them,
/// then 50 at once, each 600 s, on one AMC instance; the 50's span ÷ the ideal.
pub fn queue_ratio(facts: &MachineFacts) -> f64 {
    let params = Params::deployed(5, Intake::Spread, PollPolicy::Plan);
    let mut history = DurationHistory::default();
    let mut ratio = 0.0;
    for count in [3, 10, 50] {
        let spec = RunSpec {
            vendor: Vendor::Amc,
            account: 0,
            sent_ms: 0,
            duration: 600,
            prediction: history.predict(),
            history: history.clone(),
        };
        let figures = simulate(&params, facts, vec![spec; count]);
        for seconds in &figures.recorded_seconds {
            history.record(*seconds);
        }
        let ideal = count.div_ceil(10) as f64 * 600.0;
        ratio = (figures.last_manifest_ms - figures.first_sent_ms) as f64 / 1_000.0 / ideal;
    }
    ratio
}
