//! Errors: what can be wrong with a definition ([`DefinitionError`]), how a task reports failure
//! ([`TaskFailure`]), and the reserved `States.*` error names the interpreter raises itself
//! ([`names`]).

use thiserror::Error;

/// Why a state machine definition was rejected. Every variant names where the problem is (the
/// state, and the field inside it), because the message is usually read by someone editing the
/// JSON who needs to know which line to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The text (after substitutions) is not JSON.
    #[error("definition is not valid JSON: {0}")]
    Json(String),
    /// A `${Name}` placeholder has no entry in the substitutions map.
    #[error("definition placeholder ${{{name}}} has no value in the substitutions map")]
    MissingSubstitution {
        /// The placeholder name between `${` and `}`.
        name: String,
    },
    /// A transition (`StartAt`, `Next`, `Default`, a Choice rule's or a Catcher's `Next`) names a
    /// state that does not exist.
    #[error("{location}: {field} names \"{target}\", which is not a state in this machine")]
    MissingTarget {
        /// Where the transition is, e.g. `state "Poll"` or `top level`.
        location: String,
        /// The field holding the bad name, e.g. `Next` or `Catch[0].Next`.
        field: String,
        /// The name that matched no state.
        target: String,
    },
    /// A feature that Step Functions has but this interpreter deliberately does not run
    /// (Parallel, Map, intrinsic functions, JSONata, variables, fields the deployed definition
    /// does not use). Rejecting it up front beats silently diverging from the cloud.
    #[error("{location}: {feature} is unsupported by the local runner")]
    Unsupported {
        /// Where the feature is used.
        location: String,
        /// What the feature is.
        feature: String,
    },
    /// Any other violation of the Amazon States Language rules.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the violation is, e.g. `state "Poll".Retry[0]`.
        location: String,
        /// What rule was broken.
        message: String,
    },
}

impl DefinitionError {
    pub(crate) fn invalid(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// A task failure as Step Functions sees it: `error` is matched by Retry/Catch `ErrorEquals`,
/// `cause` is free text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    /// The error name (e.g. a Lambda's `errorType`, or `Lambda.ServiceException`).
    pub error: String,
    /// Human-readable detail; for Lambda this is usually a JSON document.
    pub cause: String,
}

impl TaskFailure {
    /// A failure named `error` because of `cause`.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// The reserved error names (ASL appendix A plus the ones AWS added) that this interpreter raises
/// or matches specially.
pub mod names {
    /// Wildcard in `ErrorEquals`: any error except the terminal ones ([`RUNTIME`],
    /// [`DATA_LIMIT_EXCEEDED`]).
    pub const ALL: &str = "States.ALL";
    /// Wildcard in `ErrorEquals`: any error except [`TIMEOUT`].
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// The execution ran out of time, a task ran past its `TimeoutSeconds` or went
    /// `HeartbeatSeconds` without a heartbeat (or a task reported this error itself).
    pub const TIMEOUT: &str = "States.Timeout";
    /// In `ErrorEquals` only: matches a heartbeat timeout (which is reported as [`TIMEOUT`]).
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// Input/output processing hit a path that selects nothing, or a value of the wrong type.
    /// Terminal: Retry and Catch never see it, as in Step Functions.
    pub const RUNTIME: &str = "States.Runtime";
    /// A payload exceeded the 256 KiB quota. Terminal like [`RUNTIME`].
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A Choice state matched no rule and has no `Default`.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// `ResultPath` cannot be applied to the state's input (e.g. it goes through a non-object).
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// Not an AWS name: the local runner's guard against endless loops, raised when the history
    /// reaches the 25,000-event quota (where Step Functions would also fail the execution).
    pub const HISTORY_LIMIT_EXCEEDED: &str = "RunBridge.HistoryLimitExceeded";
}

/// An error raised inside a state, before Retry/Catch have had their say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateError {
    pub error: String,
    pub cause: String,
    /// A callback task went `HeartbeatSeconds` without a heartbeat: `error` is
    /// `States.Timeout`, and `States.HeartbeatTimeout` matches it too.
    pub heartbeat_timeout: bool,
}

impl StateError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
            heartbeat_timeout: false,
        }
    }

    pub fn heartbeat_timeout(cause: impl Into<String>) -> Self {
        Self {
            heartbeat_timeout: true,
            ..Self::new(names::TIMEOUT, cause)
        }
    }

    /// Whether a Retrier's or Catcher's `ErrorEquals` matches this error.
    pub fn matches(&self, error_equals: &[String]) -> bool {
        error_matches(error_equals, &self.error, self.heartbeat_timeout)
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }

    /// Terminal errors fail the execution even when a Retry or Catch names them: Step Functions
    /// documents that `States.ALL` cannot catch them, and they are not retriable.
    pub fn is_terminal(&self) -> bool {
        self.error == names::RUNTIME || self.error == names::DATA_LIMIT_EXCEEDED
    }
}

/// Whether an `ErrorEquals` list matches `error`. Terminal errors never reach this. A heartbeat
/// timeout is reported as `States.Timeout`, which `heartbeat_timeout` says it is: then
/// `States.HeartbeatTimeout` matches it too (as in Step Functions, where that name only exists
/// in Retry and Catch).
pub(crate) fn error_matches(error_equals: &[String], error: &str, heartbeat_timeout: bool) -> bool {
    error_equals.iter().any(|e| {
        e == error
            || e == names::ALL
            || (e == names::TASK_FAILED && error != names::TIMEOUT)
            || (heartbeat_timeout && e == names::HEARTBEAT_TIMEOUT)
    })
}
