//! The poll and collect tasks of the state machine.
//!
//! Step Functions invokes them with the task's `Parameters` as the payload: poll gets
//! `{"handle": …}` and returns [`PollOutput`]; collect gets `{"handle", "outcome", "reason",
//! "attribution"}` and returns [`RunOutcome`]. A failure's Lambda `errorType` is
//! `Retryable` when trying again can help, which is what the `Retry` clauses match.
//!
//! [`PollOutput`]: runbridge_handlers::poll::PollOutput
//! [`RunOutcome`]: runbridge_core::RunOutcome

use runbridge_handlers::collect::Collector;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::steps::{collect_step, poll_step};
use serde_json::Value;

use crate::FunctionError;

/// One poll of the Wait → Poll → Choice loop.
pub async fn handle_poll(poller: &Poller, payload: Value) -> Result<Value, FunctionError> {
    Ok(poll_step(poller, payload).await?)
}

/// Collects a finished run's results, or records its failure.
pub async fn handle_collect(collector: &Collector, payload: Value) -> Result<Value, FunctionError> {
    Ok(collect_step(collector, payload).await?)
}
