//! The one step dispatcher: a Step Functions task's payload in, the handler called, its answer
//! (or its typed error) out. The Lambda adapter and the local runner both go through here, so a
//! payload is decoded and an error named the same way in the cloud and on a laptop.
//!
//! Poll gets `{"handle": …}` and answers [`PollOutput`](crate::poll::PollOutput); collect gets
//! `{"handle", "outcome", "reason", "attribution"}` and answers
//! [`RunOutcome`](runbridge_core::RunOutcome). A payload that breaks that contract is
//! [`HandlerError::BadInput`] (`NonRetryable`).

use serde_json::Value;

use crate::collect::{CollectInput, Collector};
use crate::poll::{PollInput, Poller};
use crate::HandlerError;

/// A Task state of the state machine, by the handler it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One poll of the Wait → Poll → Choice loop.
    Poll,
    /// Collecting a finished run's results, or recording its failure.
    Collect,
}

impl Step {
    /// The step's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Collect => "collect",
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(step: Step, payload: Value) -> Result<T, HandlerError> {
    serde_json::from_value(payload)
        .map_err(|e| HandlerError::BadInput(format!("{} input: {e}", step.name())))
}

fn encode<T: serde::Serialize>(output: T) -> Value {
    serde_json::to_value(output).expect("step outputs serialise")
}

/// Runs one poll from a task payload.
pub async fn poll_step(poller: &Poller, payload: Value) -> Result<Value, HandlerError> {
    let input: PollInput = decode(Step::Poll, payload)?;
    Ok(encode(poller.poll(input).await?))
}

/// Runs one collect (or failure record) from a task payload.
pub async fn collect_step(collector: &Collector, payload: Value) -> Result<Value, HandlerError> {
    let input: CollectInput = decode(Step::Collect, payload)?;
    Ok(encode(collector.collect(input).await?))
}

#[cfg(test)]
mod tests {
    use crate::error::error_names;

    const DEFINITION: &str = include_str!("../../../infra/statemachine.asl.json");

    /// Every `ErrorEquals` name of every state, with the state's name.
    fn error_equals(kind: &str) -> Vec<(String, String)> {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let mut out = Vec::new();
        for (state, body) in asl["States"].as_object().unwrap() {
            for clause in body[kind].as_array().into_iter().flatten() {
                for name in clause["ErrorEquals"].as_array().unwrap() {
                    out.push((state.clone(), name.as_str().unwrap().to_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn the_state_machine_matches_only_error_names_the_handlers_raise() {
        for kind in ["Retry", "Catch"] {
            for (state, name) in error_equals(kind) {
                assert!(
                    name.starts_with("States.")
                        || name.starts_with("Lambda.")
                        || error_names::ALL.contains(&name.as_str()),
                    "{state}.{kind} matches {name:?}, which no handler raises"
                );
            }
        }
    }

    #[test]
    fn customer_errors_are_caught_apart_and_before_the_catch_all() {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        for state in ["Poll", "Collect"] {
            let catch = asl["States"][state]["Catch"].as_array().unwrap();
            let names: Vec<&str> = catch[0]["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            assert_eq!(names, error_names::CUSTOMER, "{state}");
            let describe = catch[0]["Next"].as_str().unwrap();
            assert_eq!(
                asl["States"][describe]["Parameters"]["attribution"], "customer",
                "{state}"
            );
            assert_eq!(catch[1]["ErrorEquals"][0], "States.ALL", "{state}");
        }
    }

    #[test]
    fn every_task_retries_the_retryable_error() {
        let asl: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let retried: Vec<_> = error_equals("Retry")
            .into_iter()
            .filter(|(_, n)| n == error_names::RETRYABLE)
            .map(|(s, _)| s)
            .collect();
        for (state, body) in asl["States"].as_object().unwrap() {
            if body["Type"] == "Task" {
                assert!(retried.contains(state), "{state} does not retry Retryable");
            }
        }
    }
}
