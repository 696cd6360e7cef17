//! The real day beside the model's: one row per figure, real and model and their ratio, and the
//! figures that differ by more than [`TOLERANCE`].

use std::collections::HashMap;

use crate::day::figures::{Figures, Spread};
use crate::day::workload::Vendor;
use crate::realday::figures::RealFigures;
use crate::realday::Compared;
use crate::{ratio, Table};

/// How far real and model may differ before a figure is named as differing.
pub const TOLERANCE: f64 = 0.15;

/// One compared figure: real, model, and the values their ratio is taken of.
pub struct Row {
    pub name: String,
    pub real: String,
    pub model: String,
    /// (real, model) pairs whose ratios the row shows.
    pub pairs: Vec<(f64, f64)>,
}

impl Row {
    fn count(name: &str, real: f64, model: f64) -> Self {
        Self {
            name: name.to_owned(),
            real: format!("{real}"),
            model: format!("{model}"),
            pairs: vec![(real, model)],
        }
    }

    fn spread(name: &str, real: Spread, model: Spread) -> Self {
        Self {
            name: name.to_owned(),
            real: real.text(0),
            model: model.text(0),
            pairs: vec![
                (real.p50, model.p50),
                (real.p95, model.p95),
                (real.max, model.max),
            ],
        }
    }

    /// Whether any pair differs by more than [`TOLERANCE`] (two zeros agree; a zero beside
    /// anything else differs).
    pub fn differs(&self) -> bool {
        self.pairs.iter().any(|(real, model)| {
            if *model == 0.0 {
                *real != 0.0
            } else {
                (real / model - 1.0).abs() > TOLERANCE
            }
        })
    }

    fn ratios(&self) -> String {
        if self.pairs.iter().all(|(r, m)| *r == 0.0 && *m == 0.0) {
            return "both 0".to_owned();
        }
        self.pairs
            .iter()
            .map(|(r, m)| ratio(*r, *m))
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

fn failed_text(failed: impl IntoIterator<Item = (String, usize)>) -> (String, f64) {
    let failed: Vec<(String, usize)> = failed.into_iter().filter(|(_, n)| *n > 0).collect();
    let total = failed.iter().map(|(_, n)| *n).sum::<usize>() as f64;
    if failed.is_empty() {
        return ("0".to_owned(), 0.0);
    }
    let causes: Vec<String> = failed.iter().map(|(c, n)| format!("{n} {c}")).collect();
    (causes.join(", "), total)
}

fn model_429s(model: &Figures, vendor: Vendor) -> u64 {
    let refused = model.vendor_429s.get(&vendor).copied().unwrap_or(0);
    if vendor == Vendor::Amc {
        refused + model.amc_refused
    } else {
        refused
    }
}

/// The rows of the comparison.
pub fn rows(real: &RealFigures, model: &Figures) -> Vec<Row> {
    let mut rows = vec![Row::count(
        "runs completed",
        real.completed as f64,
        model.completed as f64,
    )];
    let (real_failed, real_n) = failed_text(real.failed.clone());
    let (model_failed, model_n) = failed_text(
        model
            .failed
            .iter()
            .map(|(c, n)| ((*c).to_owned(), *n))
            .collect::<HashMap<_, _>>(),
    );
    rows.push(Row {
        name: "runs failed (by cause)".into(),
        real: real_failed,
        model: model_failed,
        pairs: vec![(real_n, model_n)],
    });
    rows.push(Row::count(
        "dead-lettered",
        real.dead_lettered as f64,
        model.dead_lettered as f64,
    ));
    rows.push(Row::count(
        "duplicate vendor runs",
        real.duplicate_vendor_runs as f64,
        model.duplicate_vendor_runs as f64,
    ));
    rows.push(Row::count(
        "runs without a manifest",
        real.without_manifest as f64,
        model.without_manifest as f64,
    ));
    for vendor in Vendor::ALL {
        let model_count = model_429s(model, vendor) as f64;
        let (real_text, real_count) = match real.vendor_429s.get(&vendor.kind()).copied().flatten()
        {
            Some(n) => (n.to_string(), n as f64),
            None => ("0 (no limit simulated)".to_owned(), 0.0),
        };
        rows.push(Row {
            name: format!("vendor 429s, {}", vendor.name()),
            real: real_text,
            model: format!("{model_count}"),
            pairs: vec![(real_count, model_count)],
        });
    }
    rows.push(Row::count(
        "peak AMC executions on one instance",
        real.amc_peak_active as f64,
        model.amc_peak_active as f64,
    ));
    rows.push(Row::spread(
        "polls per run (p50 / p95 / max)",
        real.polls,
        model.polls,
    ));
    let model_mean = model.polls_by_run.iter().sum::<u64>() as f64 / model.runs.max(1) as f64;
    rows.push(Row {
        name: "polls per run, mean".into(),
        real: format!("{:.2}", real.polls_mean),
        model: format!("{model_mean:.2}"),
        pairs: vec![(real.polls_mean, model_mean)],
    });
    rows.push(Row::spread(
        "state transitions per run (p50 / p95 / max)",
        real.transitions,
        model.transitions,
    ));
    let (real_history, model_history) = (
        real.largest_history as f64 / 250.0,
        model.largest_history as f64 / 250.0,
    );
    rows.push(Row {
        name: "largest execution history, % of 25,000".into(),
        real: format!("{real_history:.2} % ({} events)", real.largest_history),
        model: format!("{model_history:.2} % ({} events)", model.largest_history),
        pairs: vec![(real_history, model_history)],
    });
    rows.push(Row::spread(
        "storage GETs per run (p50 / p95 / max)",
        real.storage_gets,
        model.s3_gets,
    ));
    rows.push(Row::spread(
        "storage PUTs per run (p50 / p95 / max)",
        real.storage_puts,
        model.s3_puts,
    ));
    rows
}

/// Mean of |real − model| polls over the runs both ran, and how many runs differ.
pub fn per_run_polls(real: &RealFigures, model: &Figures) -> (f64, usize) {
    let mut total = 0.0;
    let mut differing = 0;
    for (index, polls) in &real.polls_by_index {
        let modelled = model.polls_by_run.get(*index).copied().unwrap_or(0);
        total += polls.abs_diff(modelled) as f64;
        differing += usize::from(*polls != modelled);
    }
    (total / real.polls_by_index.len().max(1) as f64, differing)
}

/// The comparison as a Markdown table.
pub fn table(compared: &Compared) -> String {
    let mut t = Table::new([
        "figure",
        "real stack",
        "model",
        "real ÷ model",
        "within 15 %",
    ]);
    for row in rows(&compared.real, &compared.model) {
        let within = if row.differs() { "**no**" } else { "yes" };
        t.row([
            row.name.clone(),
            row.real.clone(),
            row.model.clone(),
            row.ratios(),
            within.to_owned(),
        ]);
    }
    t.markdown()
}
