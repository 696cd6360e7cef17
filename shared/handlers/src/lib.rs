//! The three runbridge handlers as plain async functions over ports, and local adapters.
//!
//! - [`trigger`]: validate a request, claim its idempotency key, submit once, start the
//!   execution that watches it.
//! - [`admit`]: a request whose profile limits runs at once waits in the state machine for a
//!   concurrency slot ([`ports::Slots`]) and is submitted once it holds one.
//! - [`poll`]: one iteration of the Step Functions Wait → Poll → Choice loop.
//! - [`collect`]: stream result files to their final keys in a [`ResultSink`], publish them
//!   when all are whole, write the manifest last, announce the outcome.
//! - [`stopped`]: when the execution watching a run is stopped or times out, cancel the vendor
//!   run and end the run with a CANCELLED manifest and its event.
//!
//! The Lambda binaries wire these to AWS adapters (S3, Step Functions, EventBridge); the CLI and
//! the tests wire them to [`local`] ones, running the deployed state machine with
//! [`local::LocalExecutions`]. Ports are in [`ports`].
#![deny(missing_docs)]

pub mod admit;
pub mod cancel;
pub mod collect;
mod error;
pub mod finish;
pub mod metrics;
pub mod payload;
pub mod poll;
pub mod ports;
pub mod queue;
pub mod span;
pub mod steps;
pub mod stopped;
pub mod submission;
pub mod trigger;

pub use error::{error_names, HandlerError};
pub use ports::{
    Clock, DeadLetterReason, DeadLetters, Events, Executions, History, Ledger, ObjectChecksum,
    PartWriter, ResultSink, Secrets, Slots, StagedObject, SystemClock,
};
