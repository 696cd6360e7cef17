//! How the benches' scripted poll tasks answer the AMC queue's two steps (the deployed definition
//! runs them for a queued run): the enqueue step finds a slot free and wakes the parked execution
//! at once, and Admit submits it. One answer for every bench that runs the definition.

use runbridge_asl::{TaskFailure, TaskTokens};
use serde_json::{json, Value};

/// The answer to the poll function's `enqueue` or `admit` step, Admit asking for a first wait of
/// `first_wait` seconds; `None` for any other step (a poll).
pub fn answer(
    tokens: &TaskTokens,
    input: &Value,
    first_wait: u64,
) -> Option<Result<Value, TaskFailure>> {
    if input["step"] == "enqueue" {
        let token = input["task_token"].as_str().unwrap_or_default();
        return Some(
            tokens
                .send_task_success(token, json!({"admitted": true}))
                .map(|()| json!({"StatusCode": 202}))
                .map_err(|e| TaskFailure::new("SendTaskSuccess", e.to_string())),
        );
    }
    (input["step"] == "admit").then(|| {
        Ok(json!({
            "handle": input["handle"],
            "failed": false,
            "try_again": false,
            "queued": false,
            "wait_seconds": first_wait,
        }))
    })
}
