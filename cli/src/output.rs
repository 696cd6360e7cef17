//! What a command prints: its report ([`Output`], text for people, JSON for scripts) or its
//! error ([`CliError`]), and the exit code either ends with ([`conclude`]).
//!
//! With `--json`, stdout holds exactly one JSON document: the report, even one that reports a
//! failure (the `status` of a failed run, the runs of a `run` that failed, the files `validate`
//! refused), or else the error object of [`CliError::to_json`]. Either way the message for
//! people goes to stderr, and the exit code is the one of [`crate::exit::Exit`].
//!
//! Everything the CLI prints goes through [`out_line`] or [`err_line`]: redacted
//! ([`runbridge_core::redact`]: a vendor's echo of a credential never reaches the terminal), and
//! quiet when the reader has gone (`runbridge schema | head -1`), instead of a panic.

use std::io::Write;

use serde_json::Value;

use crate::exit::{CliError, Exit};

/// What a command reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The `--json` document.
    pub json: Value,
    /// The text for people.
    pub text: String,
    /// Set when the command did its job but what it reports is no success (a failed run, an
    /// invalid request): the exit code and the line on stderr.
    pub failure: Option<CliError>,
    /// The command printed its report itself, while it ran (`sim`): nothing more to print.
    printed: bool,
}

impl Output {
    /// A report of a success.
    pub fn ok(json: Value, text: String) -> Self {
        Self {
            json,
            text,
            failure: None,
            printed: false,
        }
    }

    /// The end of a command that printed its report while it ran.
    pub fn printed() -> Self {
        Self {
            printed: true,
            ..Self::ok(Value::Null, String::new())
        }
    }

    /// The same report, ending with `failure` when there is one.
    pub fn failing(self, failure: Option<CliError>) -> Self {
        Self { failure, ..self }
    }

    /// Prints the report on stdout (JSON or text); returns the failure it reports, if any.
    pub fn finish(self, as_json: bool) -> Result<(), CliError> {
        if !self.printed {
            if as_json {
                out_line(&serde_json::to_string_pretty(&self.json).expect("JSON serialises"));
            } else {
                out_line(self.text.trim_end());
            }
        }
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Prints an error: `error: …` on stderr, and with `as_json` the error object on stdout.
pub fn print_error(error: &CliError, as_json: bool) {
    // The message is one line with its causes, never a backtrace, whatever RUST_BACKTRACE says:
    // a failed run is a report, not a crash.
    err_line(&format!("error: {error}"));
    if as_json {
        out_line(&serde_json::to_string_pretty(&error.to_json()).expect("JSON serialises"));
    }
}

/// Writes `line` and a newline to stdout, redacted. A closed stdout (the reader exited) is not an
/// error of the command: the rest of the output is dropped quietly.
pub fn out_line(line: &str) {
    write_line(&mut std::io::stdout().lock(), line);
}

/// Writes `line` and a newline to stderr, redacted; as quiet as [`out_line`] when it is closed.
pub fn err_line(line: &str) {
    write_line(&mut std::io::stderr().lock(), line);
}

fn write_line(to: &mut impl Write, line: &str) {
    let text = runbridge_core::redact::redact(line);
    // A broken pipe is the reader's choice; any other write error has nowhere to be reported.
    let _ = writeln!(to, "{text}").and_then(|()| to.flush());
}

/// Prints what a command ended with and returns its exit code.
pub fn conclude(result: Result<Output, CliError>, as_json: bool) -> Exit {
    match result {
        Ok(output) => match output.finish(as_json) {
            Ok(()) => Exit::Success,
            Err(failure) => {
                // The report is already on stdout; only the line for people is added.
                err_line(&format!("error: {failure}"));
                failure.exit
            }
        },
        Err(error) => {
            print_error(&error, as_json);
            error.exit
        }
    }
}
