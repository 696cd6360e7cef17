//! Lambda adapters: the trigger, poll and collect functions as plain async functions over the
//! runner's handlers, so tests call them directly with event fixtures.
//!
//! - [`handle_function_event`] takes whatever the trigger function receives (an SQS batch, an
//!   EventBridge event, an EventBridge Scheduler payload, a Step Functions status change of a
//!   stopped execution) — see [`trigger`].
//! - [`handle_poll`] and [`handle_collect`] take the Step Functions task payloads.
//! - [`TriggerFunction`], [`PollFunction`] and [`CollectFunction`] wire them to AWS from the
//!   environment; each `functions/*/src/main.rs` only builds one and runs it.
//!
//! Errors are [`FunctionError`]s, whose Lambda `errorType` is `Retryable`, `NonRetryable` or
//! `InvalidRequest`.
#![deny(missing_docs)]

mod error;
mod functions;
pub mod observe;
mod steps;
pub mod trigger;

pub use error::FunctionError;
pub use functions::{CollectFunction, PollFunction, TriggerFunction};
pub use runbridge_adapters_aws::AwsEnv;
pub use runbridge_core::OffsetDateTime;
pub use steps::{handle_collect, handle_poll};
pub use trigger::{
    handle_eventbridge, handle_function_event, handle_scheduler, handle_sqs,
    handle_status_change_event, handle_trigger_event, handle_trigger_text, TriggerOutcome,
};
