//! Shared pieces of the benchmark binaries: Markdown tables, ratios and process measurements.
//!
//! Every benchmark prints one Markdown section to stdout; `bench/run.sh` concatenates them into
//! `docs/BENCHMARKS.md`. Every figure in a table is measured in the same process run as the
//! baseline it is divided by, so a slower or faster machine moves both sides.

use std::fmt::Write as _;

pub mod cost;
pub mod day;
pub mod poll_sim;
pub mod queue_steps;
pub mod realday;
pub mod seeded;
pub mod sim_server;
pub mod storage;

/// A Markdown table built row by row.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// The table as GitHub-flavoured Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        let _ = writeln!(out, "|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `value / baseline` as "0.42×"; "n/a" when the baseline is zero.
pub fn ratio(value: f64, baseline: f64) -> String {
    if baseline == 0.0 || !baseline.is_finite() || !value.is_finite() {
        "n/a".to_owned()
    } else {
        format!("{:.2}×", value / baseline)
    }
}

/// "met" or how far a measured value is from an upper-bound target.
pub fn at_most(value: f64, target: f64, unit: &str) -> String {
    if value <= target {
        format!("met ({value:.1} {unit} ≤ {target} {unit})")
    } else {
        format!(
            "**missed** by {:.1} {unit} ({:.0} % over: {value:.1} > {target})",
            value - target,
            (value / target - 1.0) * 100.0
        )
    }
}

/// "met" or how far a ratio is above an upper-bound target ratio (two decimals, "×").
pub fn ratio_at_most(value: f64, target: f64) -> String {
    if value <= target {
        format!("met ({value:.2}× ≤ {target}×)")
    } else {
        format!(
            "**missed** by {:.2}× ({value:.2}× > {target}×)",
            value - target
        )
    }
}

/// "met" or how far a measured value is from a lower-bound target.
pub fn at_least(value: f64, target: f64, unit: &str) -> String {
    if value >= target {
        format!("met ({value:.2}{unit} ≥ {target}{unit})")
    } else {
        format!(
            "**missed** by {:.2}{unit} ({value:.2}{unit} < {target}{unit})",
            target - value
        )
    }
}

/// Human duration in seconds: "1 min", "6 h", "45 s".
pub fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// This process's peak resident set size in bytes (`VmHWM` in /proc/self/status).
pub fn peak_rss_bytes() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("no VmHWM line in /proc/self/status"))
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_renders_header_separator_and_rows() {
        let mut t = Table::new(["a", "b"]);
        t.row(["1", "2"]);
        assert_eq!(t.markdown(), "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }

    #[test]
    fn ratios_and_targets_say_by_how_much() {
        assert_eq!(ratio(1.0, 4.0), "0.25×");
        assert_eq!(ratio(1.0, 0.0), "n/a");
        assert!(at_most(14.0, 15.0, "polls").starts_with("met"));
        assert!(at_most(24.0, 15.0, "polls").contains("missed** by 9.0 polls"));
        assert!(at_least(0.5, 0.8, "×").contains("missed** by 0.30×"));
        assert_eq!(ratio_at_most(0.04, 0.15), "met (0.04× ≤ 0.15×)");
        assert!(ratio_at_most(1.0, 0.15).contains("missed** by 0.85×"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(60), "1 min");
        assert_eq!(human_seconds(21_600), "6 h");
        assert_eq!(human_seconds(45), "45 s");
    }

    #[test]
    fn reads_own_peak_rss() {
        assert!(peak_rss_bytes().unwrap() > 1024 * 1024);
    }
}
