//! `rerun KEY`: sends the request stored in the key's ledger entry again as the next attempt
//! (`attempt` is part of the key, so the next attempt is a new run).

use runbridge_core::{RunRequest, MAX_ATTEMPT};
use serde_json::json;

use super::submit::predicted_key;
use crate::exit::CliError;
use crate::ops::{run_key, Ops};
use crate::output::Output;

/// `rerun KEY`: re-sends the stored request with `attempt` one higher.
pub async fn rerun(ops: &Ops, key: &str) -> Result<Output, CliError> {
    let run_key = run_key(key)?;
    let Some(entry) = ops.ledger_entry(&run_key).await? else {
        return Err(CliError::not_found(format!(
            "no ledger entry for key {key}"
        )));
    };
    if let Some(exec) = ops.describe_execution(key).await? {
        if exec.status == "RUNNING" {
            return Err(CliError::invalid(format!(
                "run {key} is still running; cancel it first (runbridge cancel {key})"
            )));
        }
    }
    let (request, body) = next_attempt(key, entry.request.request())?;
    let message_id = ops.send_request(&body).await?;
    let new_key = predicted_key(&request);
    let next = request.attempt();
    Ok(Output::ok(
        json!({"key": key, "attempt": next, "new_key": new_key, "message_id": message_id}),
        format!(
            "{key}: attempt {next} sent, key {}",
            new_key.as_deref().unwrap_or("assigned by the trigger")
        ),
    ))
}

/// The next attempt of `stored` (the request of run `key`'s ledger entry) and the queue message
/// that sends it: the stored request as it was validated, `attempt` one higher, written out and
/// read back through the strict parse the trigger applies (so its numbers stay as written).
pub fn next_attempt(key: &str, stored: &RunRequest) -> Result<(RunRequest, String), CliError> {
    let mut request = stored.clone();
    let attempt = request.attempt();
    if attempt >= MAX_ATTEMPT {
        return Err(CliError {
            field: Some("attempt".into()),
            ..CliError::invalid(format!(
                "run {key} is attempt {attempt}, the last one a request may have (at most \
                 {MAX_ATTEMPT}): send the request again with a new request_id (runbridge submit)"
            ))
        });
    }
    request.attempt = Some(attempt + 1);
    let body = serde_json::to_string(&request).expect("requests serialise");
    let request = RunRequest::from_json(body.as_bytes())
        .map_err(|e| CliError::invalid_request(&e).of(&format!("the stored request of {key}")))?;
    Ok((request, body))
}
