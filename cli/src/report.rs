//! Terminal output of `demo` and `run`: one live line per run while runs progress, and the
//! report of the runs (the summary table, or JSON) with its exit code.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use runbridge_core::RunState;
use runbridge_handlers::poll::PollOutput;

use crate::exit::CliError;
use crate::output::Output;
use crate::sandbox::{Observer, RunSummary};

/// Live progress: a spinner line per run on a terminal, plain lines otherwise (CI logs).
pub struct Progress {
    bars: MultiProgress,
    lines: Mutex<HashMap<String, ProgressBar>>,
    plain: bool,
    on_stderr: bool,
}

/// The variable that turns colours and live progress lines off (any non-empty value).
pub const NO_COLOR_VAR: &str = "NO_COLOR";

/// Whether stderr may carry ANSI codes: it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn colour_allowed() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os(NO_COLOR_VAR).is_none_or(|v| v.is_empty())
}

impl Progress {
    /// Progress output; `plain` forces line-by-line output, and so do `NO_COLOR` and a stderr
    /// that is not a terminal (the live lines redraw with ANSI codes).
    pub fn new(plain: bool) -> Self {
        let bars = MultiProgress::new();
        let plain = plain || bars.is_hidden() || !colour_allowed();
        Self {
            bars,
            lines: Mutex::new(HashMap::new()),
            plain,
            on_stderr: false,
        }
    }

    /// Plain lines go to stderr when `yes` (with `--json`, stdout holds the report alone).
    pub fn on_stderr(self, yes: bool) -> Self {
        Self {
            on_stderr: yes,
            ..self
        }
    }

    fn print_line(&self, line: String) {
        if self.on_stderr {
            crate::output::err_line(&line);
        } else {
            crate::output::out_line(&line);
        }
    }

    fn line(&self, key: &str, vendor: &str) -> ProgressBar {
        let mut lines = self.lines.lock().expect("progress lock");
        lines
            .entry(key.to_owned())
            .or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:9} {msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(vendor.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn say(&self, key: &str, vendor: &str, message: String) {
        let message = runbridge_core::redact::redacted(&message);
        if self.plain {
            self.print_line(format!("{vendor:9} {message}"));
        } else {
            self.line(key, vendor).set_message(message);
        }
    }
}

impl Observer for Progress {
    fn submitted(&self, key: &str, vendor: &str, vendor_run_id: Option<&str>) {
        let what = match vendor_run_id {
            Some(id) => format!("submitted as {id} (key {key})"),
            None => format!("queued for a concurrency slot (key {key}); submitted once admitted"),
        };
        self.say(key, vendor, what);
    }

    fn polled(&self, key: &str, output: &PollOutput) {
        let vendor = output.handle.vendor().to_string();
        let last = output
            .handle
            .timeline
            .last()
            .map(|c| c.vendor_state.clone())
            .unwrap_or_default();
        let message = if output.done {
            format!(
                "{} ({last}) after {} polls, collecting",
                output.state, output.handle.polls
            )
        } else if output.failed {
            format!(
                "{} ({last}): {}",
                output.state,
                output.reason.clone().unwrap_or_default()
            )
        } else {
            format!(
                "{} ({last}), poll {}, next in {} s",
                output.state, output.handle.polls, output.wait_seconds
            )
        };
        self.say(key, &vendor, message);
    }

    fn finished(&self, summary: &RunSummary) {
        let message = format!(
            "{} — {} file(s), {} bytes",
            summary.state, summary.files, summary.bytes
        );
        if self.plain {
            self.print_line(format!("{:9} {message}", summary.vendor));
        } else if let Some(bar) = self.lines.lock().expect("progress lock").get(&summary.key) {
            bar.finish_with_message(message);
        }
    }
}

/// The report of `demo` and `run`: the summary table and where the results are (JSON: the runs
/// and the results directory), failing with exit code 1 when a run did not succeed.
pub fn runs_output(runs: &[RunSummary], out: &Path) -> Output {
    let text = format!("\n{}\n\nresults in {}", table(runs), out.display());
    let json = serde_json::json!({"runs": runs, "out": out.display().to_string()});
    let failed: Vec<&RunSummary> = runs
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .collect();
    let failure = match failed.as_slice() {
        [] => None,
        [one] => Some(CliError {
            attribution: one.attribution,
            ..CliError::run_failed(format!(
                "run {} ended {}{}",
                one.key,
                one.state,
                one.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ))
        }),
        many => Some(CliError::run_failed(format!(
            "{} run(s) did not succeed",
            many.len()
        ))),
    };
    Output::ok(json, text).failing(failure)
}

/// The summary table.
pub fn table(runs: &[RunSummary]) -> String {
    let header = [
        "vendor", "profile", "run id", "state", "polls", "files", "bytes", "rows", "seconds",
    ];
    let rows: Vec<[String; 9]> = runs
        .iter()
        .map(|r| {
            [
                r.vendor.to_string(),
                r.profile.clone(),
                // A run refused before the vendor accepted it has no run id.
                if r.vendor_run_id.is_empty() {
                    "-".to_owned()
                } else {
                    r.vendor_run_id.clone()
                },
                r.state.to_string(),
                r.polls.to_string(),
                r.files.to_string(),
                r.bytes.to_string(),
                r.rows.to_string(),
                format!("{:.1}", r.seconds),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let fmt = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i >= 4 {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = fmt(header.to_vec());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    for row in &rows {
        out.push('\n');
        out.push_str(&fmt(row.iter().map(String::as_str).collect()));
    }
    for r in runs.iter().filter(|r| r.reason.is_some()) {
        out.push('\n');
        out.push_str(&reason_line(
            r.vendor.as_str(),
            r.reason.as_deref().unwrap_or_default(),
        ));
    }
    out
}

/// `vendor: reason`, without a second `vendor: ` when the reason (a vendor error) starts with
/// one already.
pub fn reason_line(vendor: &str, reason: &str) -> String {
    let prefix = format!("{vendor}: ");
    if reason.starts_with(&prefix) {
        reason.to_owned()
    } else {
        format!("{prefix}{reason}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vendor_prefix_is_never_doubled() {
        assert_eq!(
            super::reason_line("amc", "amc: download refused: URL has no host"),
            "amc: download refused: URL has no host"
        );
        assert_eq!(super::reason_line("amc", "run failed"), "amc: run failed");
    }
}
