//! The exit-code table and the error every command returns.
//!
//! [`Exit`] is the one table: a code per outcome, the same for every command (`demo`, `run`,
//! `sim`, `validate`, `schema` and the operator commands). `--help` prints it from the enum
//! ([`Exit::help`]) and docs/RUNBOOK.md repeats it (a test compares the two). [`CliError`] carries
//! its [`Exit`], so a command decides its code where it knows the cause, and `main` only prints:
//! the message on stderr for people and, with `--json`, one error object on stdout for scripts.

use runbridge_core::{Attribution, ValidationError};
use runbridge_handlers::HandlerError;
use runbridge_vendors::VendorError;
use serde::Serialize;
use serde_json::{json, Value};

use crate::input::InputError;

/// How a command ended, as its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// The command did what it was asked.
    Success,
    /// A run did not succeed: it failed or was cancelled, or the vendor refused it.
    RunFailed,
    /// The input is wrong: a request, an argument, the usage.
    InvalidInput,
    /// Something named does not exist: a key, a stack, a stack output.
    NotFound,
    /// An AWS call failed.
    AwsError,
    /// Anything else.
    Other,
}

impl Exit {
    /// Every outcome, in code order.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::RunFailed,
        Exit::InvalidInput,
        Exit::NotFound,
        Exit::AwsError,
        Exit::Other,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::RunFailed => 1,
            Exit::InvalidInput => 2,
            Exit::NotFound => 3,
            Exit::AwsError => 4,
            Exit::Other => 5,
        }
    }

    /// What the code means, as `--help` and the runbook say it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::RunFailed => {
                "a run failed, was cancelled or was refused by the vendor (run, demo; status of such a run)"
            }
            Exit::InvalidInput => {
                "invalid input: a bad request, argument or usage, a request file that cannot be read"
            }
            Exit::NotFound => "not found: no such key, stack or stack output",
            Exit::AwsError => "AWS error: credentials, permissions, throttling, endpoint",
            Exit::Other => {
                "any other error: a vendor unreachable or throttling after retries, local I/O, a bug"
            }
        }
    }

    /// The outcome's name in a `--json` error object (`kind`).
    pub fn name(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::RunFailed => "run_failed",
            Exit::InvalidInput => "invalid_input",
            Exit::NotFound => "not_found",
            Exit::AwsError => "aws_error",
            Exit::Other => "other",
        }
    }

    /// The table as `--help` prints it.
    pub fn help() -> String {
        let mut text = String::from("Exit codes:\n");
        for exit in Exit::ALL {
            text.push_str(&format!("  {}  {}\n", exit.code(), exit.meaning()));
        }
        text
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Why a command failed: the message, the outcome (and so the exit code), and what a script may
/// want beside the message (the request field at fault, who caused a failure).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The outcome.
    pub exit: Exit,
    /// What happened and, where it helps, what to do.
    pub message: String,
    /// The request field at fault (`profile`, `range_to`, …), for invalid input.
    pub field: Option<String>,
    /// Who caused a failed run, when known.
    pub attribution: Option<Attribution>,
}

impl CliError {
    /// An error with outcome `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            field: None,
            attribution: None,
        }
    }

    /// A run that did not succeed.
    pub fn run_failed(message: impl Into<String>) -> Self {
        Self::new(Exit::RunFailed, message)
    }

    /// Invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Exit::InvalidInput, message)
    }

    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Exit::NotFound, message)
    }

    /// An AWS call failed.
    pub fn aws(message: impl Into<String>) -> Self {
        Self::new(Exit::AwsError, message)
    }

    /// Anything else.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Exit::Other, message)
    }

    /// An invalid request, naming its field.
    pub fn invalid_request(error: &ValidationError) -> Self {
        Self {
            field: Some(error.field.clone()),
            ..Self::invalid(error.to_string())
        }
    }

    /// The same error, said of `label` (the file it came from): `label: …`.
    pub fn of(self, label: &str) -> Self {
        Self {
            message: format!("{label}: {}", self.message),
            ..self
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.exit.code()
    }

    /// The `--json` error object: `error` (the message), `exit_code`, `kind` ([`Exit::name`]),
    /// and `field` and `attribution` when known.
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "error": self.message,
            "exit_code": self.exit_code(),
            "kind": self.exit.name(),
        });
        if let Some(field) = &self.field {
            object["field"] = json!(field);
        }
        if let Some(attribution) = self.attribution {
            object["attribution"] = json!(attribution);
        }
        object
    }

    /// Any error of the local commands (the sandbox answers `anyhow`), by its cause: the first
    /// [`CliError`], [`HandlerError`], [`ValidationError`] or [`InputError`] in its chain decides
    /// the outcome; anything else is [`Exit::Other`]. The message is the whole chain on one line.
    pub fn from_anyhow(error: &anyhow::Error) -> Self {
        let found = error
            .chain()
            .enumerate()
            .find_map(|(at, e)| Self::cause(e).map(|cause| (at, cause)));
        match found {
            // The contexts above the cause prefix its own message, as `{:#}` would print them.
            Some((at, cause)) => {
                let mut said: Vec<String> = error.chain().take(at).map(|e| e.to_string()).collect();
                said.push(cause.message.clone());
                Self {
                    message: said.join(": "),
                    ..cause
                }
            }
            None => Self::other(format!("{error:#}")),
        }
    }

    /// The outcome one error of a chain decides, if it is of a type that knows its cause.
    fn cause(error: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if let Some(e) = error.downcast_ref::<CliError>() {
            return Some(e.clone());
        }
        if let Some(e) = error.downcast_ref::<HandlerError>() {
            return Some(Self::from(e));
        }
        if let Some(e) = error.downcast_ref::<ValidationError>() {
            return Some(Self::invalid_request(e));
        }
        error
            .downcast_ref::<InputError>()
            .map(|e| Self::invalid(e.to_string()))
    }
}

impl From<InputError> for CliError {
    fn from(error: InputError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<&HandlerError> for CliError {
    /// A handler's error as the command line reports it: an invalid request (or one whose key
    /// was claimed for another body) is invalid input; a vendor's definite refusal of the run
    /// (it rejected the request, the credentials or the permissions, or does not know the
    /// resource) is a run that did not succeed, whichever vendor and whichever step refused;
    /// runbridge's own vendor configuration is invalid input; the rest (a vendor unreachable or
    /// throttling after retries, a local port) is another error.
    fn from(error: &HandlerError) -> Self {
        let message = error.to_string();
        let base = match error {
            HandlerError::Invalid(e) => Self {
                field: Some(e.field.clone()),
                ..Self::invalid(message)
            },
            HandlerError::KeyConflict { .. } => Self::invalid(message),
            // The message names the setting; `field` is for the request's own fields.
            HandlerError::Vendor(VendorError::Config { .. }) => Self::invalid(message),
            HandlerError::Vendor(e)
                if !e.is_retryable() && e.attribution() == Attribution::Customer =>
            {
                Self::run_failed(format!("the vendor refused the run: {message}"))
            }
            _ => Self::other(message),
        };
        Self {
            attribution: Some(error.attribution()),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_order() {
        for (i, exit) in Exit::ALL.iter().enumerate() {
            assert_eq!(exit.code() as usize, i);
        }
        let help = Exit::help();
        assert!(help.contains("  1  a run failed"), "{help}");
        assert!(help.contains("  3  not found"), "{help}");
    }

    #[test]
    fn the_json_object_names_the_code_and_the_field() {
        let e = CliError::invalid_request(&ValidationError::new("profile", "no profile `x`"))
            .of("r.json");
        let json = e.to_json();
        assert_eq!(json["exit_code"], 2);
        assert_eq!(json["kind"], "invalid_input");
        assert_eq!(json["field"], "profile");
        assert!(json["error"].as_str().unwrap().starts_with("r.json: "));
    }

    #[test]
    fn a_handler_error_is_classified_by_its_cause() {
        let invalid = HandlerError::Invalid(ValidationError::new("query", "is required"));
        assert_eq!(CliError::from(&invalid).exit, Exit::InvalidInput);
        let refused = HandlerError::Vendor(VendorError::Forbidden {
            vendor: runbridge_core::VendorKind::Amperity,
            status: 403,
            message: "no".into(),
        });
        let e = CliError::from(&refused);
        assert_eq!(e.exit, Exit::RunFailed);
        assert_eq!(e.attribution, Some(Attribution::Customer));
        let any = anyhow::Error::from(refused).context("running the request");
        let e = CliError::from_anyhow(&any);
        assert_eq!(e.exit, Exit::RunFailed);
        assert!(e.message.starts_with("running the request: "), "{e}");
        let io = anyhow::anyhow!("disk full");
        assert_eq!(CliError::from_anyhow(&io).exit, Exit::Other);
    }
}
