//! What runbridge puts into an execution: the state machine's input for a new run, and the
//! guard that every state's input and output stays within [`EXECUTION_PAYLOAD_BUDGET`].

use runbridge_core::{
    BackoffPolicy, IdempotencyKey, PollPlan, RunHandle, EXECUTION_PAYLOAD_BUDGET,
};
use serde_json::Value;

use crate::HandlerError;

/// Fails when `payload` (a state's input or a step's output) is larger than
/// [`EXECUTION_PAYLOAD_BUDGET`]. What runbridge puts there is bounded by construction (a handle
/// reference, cut reasons), so this is the guard that a change cannot silently undo that.
pub fn within_budget(what: &str, payload: Value) -> Result<Value, HandlerError> {
    let size = serde_json::to_vec(&payload)
        .expect("json values serialise")
        .len();
    if size > EXECUTION_PAYLOAD_BUDGET {
        return Err(HandlerError::port(
            "executions",
            format!(
                "{what} is {size} bytes, over the execution payload budget of \
                 {EXECUTION_PAYLOAD_BUDGET} bytes"
            ),
            false,
        ));
    }
    Ok(payload)
}

/// `output` as JSON: step outputs are plain data and always serialise.
pub fn encode<T: serde::Serialize>(output: T) -> Value {
    serde_json::to_value(output).expect("step outputs serialise")
}

/// The state machine's input for a new run: a reference to the handle (the request stays in the
/// ledger entry, where poll and collect read it) and the first wait. Within
/// [`EXECUTION_PAYLOAD_BUDGET`] whatever the request's size; a failure here comes after the run
/// id was recorded, so a redelivery finds the run (and a DLQ message names it).
pub fn execution_input(handle: &RunHandle, policy: &BackoffPolicy) -> Result<Value, HandlerError> {
    let wait = first_wait(handle, policy, handle.submitted_at);
    within_budget(
        "the execution input",
        serde_json::json!({ "handle": handle.reference(), "wait_seconds": wait }),
    )
}

/// The wait before a run's first poll: its plan's first wait (nothing is predicted before the
/// first poll reads the workflow's durations), jittered by the key, so runs submitted together
/// spread out while a redelivery of one run still starts its execution with the same input.
pub fn first_wait(
    handle: &RunHandle,
    policy: &BackoffPolicy,
    now: runbridge_core::OffsetDateTime,
) -> u64 {
    let plan = PollPlan::for_run(handle.request.own_poll_policy(), None, *policy);
    plan.next_wait(
        0,
        None,
        handle.remaining_seconds(now),
        key_jitter(&handle.key),
    )
}

/// A number in `[0, 1)` fixed by `key`: jitter that a redelivery reproduces.
fn key_jitter(key: &IdempotencyKey) -> f64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_str().as_bytes());
    f64::from(u16::from_be_bytes([digest[0], digest[1]])) / 65_536.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::{IdempotencyKey, OffsetDateTime, RunRequest};

    #[test]
    fn the_first_wait_is_the_requests_own_when_it_has_a_poll_policy() {
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"p-1","connection":"c","query":"SELECT 1","poll":{"first_seconds":7,"factor":0.1,"max_seconds":30}}"#,
        )
        .unwrap()
        .resolve(OffsetDateTime::now_utc());
        let key = IdempotencyKey::for_request(&request, None);
        let handle = RunHandle::new(key, request, "job".into(), OffsetDateTime::now_utc());
        let input = execution_input(&handle, &BackoffPolicy::default()).unwrap();
        let wait = input["wait_seconds"].as_u64().unwrap();
        assert!(
            (6..=7).contains(&wait),
            "the request's own first wait, jittered: {input}"
        );
        assert!(input["handle"].get("request").is_none(), "{input}");
    }

    #[test]
    fn an_execution_input_over_the_payload_budget_is_refused_not_started() {
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"b-1","connection":"c","query":"SELECT 1"}"#,
        )
        .unwrap()
        .resolve(OffsetDateTime::now_utc());
        let key = IdempotencyKey::for_request(&request, None);
        let at = OffsetDateTime::now_utc();
        let run_id = "j".repeat(runbridge_core::EXECUTION_PAYLOAD_BUDGET);
        let handle = RunHandle::new(key, request, run_id, at);
        let err = execution_input(&handle, &BackoffPolicy::default()).unwrap_err();
        assert!(err.to_string().contains("payload budget"), "{err}");
    }
}
