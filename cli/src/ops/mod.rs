//! Operator commands against a deployed stack: `submit`, `status`, `list`, `cancel`, `rerun`,
//! `backfill`.
//!
//! [`stack`] finds the deployed resources (CloudFormation outputs of `--stack NAME`, or
//! `RUNBRIDGE_*` variables); [`Ops`] holds the SDK clients and makes each AWS call in one small
//! function the tests drive against moto; [`commands`] composes them into the commands and their
//! reports (text, or `--json`); [`backfill`] computes backfill windows without I/O.

pub mod backfill;
pub mod client;
pub mod commands;
pub mod dlq;
pub mod stack;

pub use client::Ops;
pub use stack::{Stack, StackSelector};

use runbridge_core::IdempotencyKey;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run (or one of the runs) did not succeed.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code: invalid input (a bad request, a bad argument, a usage error).
pub const EXIT_INVALID: u8 = 2;
/// Exit code: the key, stack or output does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: an AWS call failed (credentials, permissions, throttling, endpoint).
pub const EXIT_AWS: u8 = 4;
/// Exit code: anything else (an I/O error, a bug).
pub const EXIT_OTHER: u8 = 5;

/// Why an operator command failed; each cause has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The run did not succeed (status of a failed run, a demo or run that failed).
    #[error("{0}")]
    RunFailed(String),
    /// The input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An AWS call failed.
    #[error("{0}")]
    Aws(String),
}

impl OpsError {
    /// The process exit code for this cause.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::RunFailed(_) => EXIT_RUN_FAILED,
            Self::Invalid(_) => EXIT_INVALID,
            Self::NotFound(_) => EXIT_NOT_FOUND,
            Self::Aws(_) => EXIT_AWS,
        }
    }
}

/// An operator's KEY argument read as a run key: refused as invalid input, before any AWS call,
/// when it is none (empty, over-long, a character no key has such as in `../x`, no vendor).
pub fn run_key(text: &str) -> Result<IdempotencyKey, OpsError> {
    IdempotencyKey::parse(text)
        .map_err(|e| OpsError::Invalid(format!("{text:?} is not a run key: {e}")))
}

/// The exit code of any error the CLI returns: an [`OpsError`]'s own, [`EXIT_OTHER`] otherwise.
pub fn exit_code_of(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<OpsError>())
        .map_or(EXIT_OTHER, OpsError::exit_code)
}
