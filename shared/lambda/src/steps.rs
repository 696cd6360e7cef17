//! The poll and collect tasks of the state machine.
//!
//! Step Functions invokes them with the task's `Parameters` as the payload: poll gets
//! `{"handle": …}` and returns [`PollOutput`]; collect gets `{"handle", "outcome", "reason",
//! "attribution"}` and returns [`CollectOutput`]. A failure's Lambda `errorType` is
//! `Retryable` when trying again can help, which is what the `Retry` clauses match.
//!
//! [`PollOutput`]: runbridge_handlers::poll::PollOutput
//! [`CollectOutput`]: runbridge_handlers::collect::CollectOutput

use runbridge_handlers::collect::{CollectInput, Collector};
use runbridge_handlers::poll::{PollInput, Poller};
use serde_json::Value;

use crate::FunctionError;

/// One poll of the Wait → Poll → Choice loop.
pub async fn handle_poll(poller: &Poller, payload: Value) -> Result<Value, FunctionError> {
    let input: PollInput = serde_json::from_value(payload)
        .map_err(|e| FunctionError::bad_input(format!("poll input: {e}")))?;
    let output = poller.poll(input).await?;
    Ok(serde_json::to_value(output).expect("poll output serialises"))
}

/// Collects a finished run's results, or records its failure.
pub async fn handle_collect(collector: &Collector, payload: Value) -> Result<Value, FunctionError> {
    let input: CollectInput = serde_json::from_value(payload)
        .map_err(|e| FunctionError::bad_input(format!("collect input: {e}")))?;
    let output = collector.collect(input).await?;
    Ok(serde_json::to_value(output).expect("collect output serialises"))
}
