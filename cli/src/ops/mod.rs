//! Operator commands against a deployed stack: `submit`, `status`, `list`, `cancel`, `rerun`,
//! `backfill`, `dlq`.
//!
//! [`stack`] finds the deployed resources (CloudFormation outputs of `--stack NAME`, or
//! `RUNBRIDGE_*` variables); [`Ops`] holds the SDK clients and makes each AWS call in one small
//! function the tests drive against moto, reading ledger entries through the typed ledger port;
//! [`view`] builds the typed view of one run that `status` and `list` print; [`commands`] holds
//! one module per command; [`backfill`] computes backfill windows without I/O; [`dlq`] classifies
//! dead letters and redrives them.

pub mod backfill;
pub mod client;
pub mod commands;
pub mod dlq;
pub mod stack;
pub mod view;

pub use client::{Ops, Target};
pub use stack::{Stack, StackSelector};

use runbridge_core::IdempotencyKey;

use crate::exit::CliError;

/// An operator's KEY argument read as a run key: refused as invalid input, before any AWS call,
/// when it is none (empty, over-long, a character no key has such as in `../x`, no vendor).
pub fn run_key(text: &str) -> Result<IdempotencyKey, CliError> {
    IdempotencyKey::parse(text)
        .map_err(|e| CliError::invalid(format!("{text:?} is not a run key: {e}")))
}
