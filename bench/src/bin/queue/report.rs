//! The figures the section prints: means, spans, a class of runs' table row, a prediction.

use runbridge_bench::storage::Requests;
use runbridge_core::{OffsetDateTime, Prediction};

use crate::deployment::Run;

pub fn describe_prediction(p: Option<&Prediction>) -> String {
    match p {
        Some(p) => format!(
            "median {} s, usual range {}–{} s, from {} runs",
            p.median_seconds, p.low_seconds, p.high_seconds, p.runs
        ),
        None => "none".to_owned(),
    }
}

pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

pub fn seconds(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64()
}

/// The first request → last manifest of `runs`, from `started`.
pub fn span(started: OffsetDateTime, runs: &[Run]) -> f64 {
    runs.iter()
        .filter_map(|r| r.manifest.as_ref())
        .map(|m| seconds(started, m.finished_at))
        .fold(0.0, f64::max)
}

/// Per-run figures of a class of runs, for the table.
pub fn class_row(name: &str, runs: &[&Run]) -> [String; 8] {
    let n = runs.len() as f64;
    let sum = |f: &dyn Fn(&Run) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
    let mean_requests = |f: &dyn Fn(&Run) -> Requests| {
        let mut total = Requests::default();
        for r in runs {
            total = total.plus(&f(r));
        }
        total
    };
    let all = mean_requests(&|r| r.storage);
    let queue = mean_requests(&|r| r.queue_storage);
    let per_run = |r: Requests| {
        let div = |x: u64| x as f64 / n;
        format!(
            "{:.1} (ledger {:.1}, slots {:.1}, history {:.1}; {:.1} GET + {:.1} PUT)",
            div(r.state_requests()),
            div(r.ledger_gets + r.ledger_puts + r.ledger_deletes),
            div(r.slots_gets + r.slots_puts),
            div(r.history_gets + r.history_puts),
            div(r.ledger_gets + r.slots_gets + r.history_gets),
            div(r.ledger_puts + r.slots_puts + r.history_puts),
        )
    };
    [
        name.to_owned(),
        runs.len().to_string(),
        format!("{:.1}", sum(&|r| r.polls() as f64)),
        format!("{:.1}", sum(&|r| r.execution.transitions as f64)),
        format!("{:.1}", sum(&|r| r.queue_transitions() as f64)),
        per_run(all),
        per_run(queue),
        format!(
            "{:.0} s",
            sum(&|r| r
                .entry
                .run()
                .map_or(0.0, |run| seconds(r.arrived(), run.submitted_at)))
        ),
    ]
}

pub fn mean_of(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    mean(runs.iter().map(|r| f(r)))
}
