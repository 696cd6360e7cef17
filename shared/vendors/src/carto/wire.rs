//! What the CARTO SQL job API answers, as runbridge reads it: a job's `status` (an object with
//! `state` and a BigQuery-style `errorResult`, or a bare state), the create answer's
//! `externalId`, CARTO's error JSON, and the mapping of all of these to [`RunStatus`] and
//! [`VendorError`].

use runbridge_core::{Attribution, RunState, RunStatus};
use serde::Deserialize;

use super::VENDOR;
use crate::error_body::ErrorBody;
use crate::http::{self, ApiResponse};
use crate::{SubmittedRun, VendorError};

/// A job as `GET …/job/{id}` answers it (only what runbridge reads).
#[derive(Deserialize)]
pub(super) struct Job {
    status: JobStatus,
}

impl Job {
    /// The job's state in runbridge's terms.
    pub(super) fn run_status(self) -> RunStatus {
        map_status(self.status)
    }
}

/// `status` is an object in the v3 examples; a bare state string is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum JobStatus {
    Object {
        state: String,
        #[serde(default, rename = "errorResult")]
        error_result: Option<ErrorResult>,
    },
    State(String),
}

/// BigQuery-style job error, as CARTO passes it through.
#[derive(Deserialize)]
struct ErrorResult {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ErrorResult {
    fn describe(&self) -> String {
        let reason = self.reason.as_deref().unwrap_or("error");
        let message = self.message.as_deref().unwrap_or("no message");
        match &self.location {
            Some(location) => format!("{reason} ({location}): {message}"),
            None => format!("{reason}: {message}"),
        }
    }
}

/// Whose fault a job error is, by its BigQuery reason code.
fn attribution(reason: Option<&str>) -> Attribution {
    match reason.map(str::to_ascii_lowercase).as_deref() {
        Some(
            "backenderror" | "internalerror" | "ratelimitexceeded" | "timeout" | "tableunavailable",
        ) => Attribution::Platform,
        // invalidQuery, invalid, notFound, accessDenied, quotaExceeded, resourcesExceeded, …:
        // the query, its data or the account's limits — repeating it will not help.
        _ => Attribution::Customer,
    }
}

/// Maps a job's status to the common state.
fn map_status(status: JobStatus) -> RunStatus {
    let (state, error_result) = match status {
        JobStatus::Object {
            state,
            error_result,
        } => (state, error_result),
        JobStatus::State(state) => (state, None),
    };
    let failed = |error: Option<&ErrorResult>| {
        let mut s = RunStatus::new(RunState::Failed, state.clone());
        s.reason = Some(error.map_or_else(|| format!("job {state}"), ErrorResult::describe));
        s.attribution = Some(attribution(error.and_then(|e| e.reason.as_deref())));
        s
    };
    match state.to_ascii_lowercase().as_str() {
        "pending" => RunStatus::new(RunState::Pending, state),
        "running" => RunStatus::new(RunState::Running, state),
        "done" => match &error_result {
            None => RunStatus::new(RunState::Succeeded, state),
            Some(e)
                if e.reason
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("stopped")) =>
            {
                let mut s = RunStatus::new(RunState::Cancelled, state.clone());
                s.reason = Some(e.describe());
                s
            }
            Some(e) => failed(Some(e)),
        },
        "failed" => failed(error_result.as_ref()),
        "canceled" | "cancelled" => {
            let mut s = RunStatus::new(RunState::Cancelled, state.clone());
            s.reason = error_result.as_ref().map(ErrorResult::describe);
            s
        }
        _ => {
            tracing::warn!(vendor = %VENDOR, vendor_state = %state, "unknown CARTO job state; treating it as running");
            RunStatus::new(RunState::Running, state)
        }
    }
}

/// Maps a non-success answer using CARTO's error body (`{"error": "…"}`).
pub(super) fn api_error(response: &ApiResponse) -> VendorError {
    let body = ErrorBody::parse(&response.body);
    let message = body
        .text(&["/error", "/message"])
        .unwrap_or_else(|| format!("HTTP {}", response.status.as_u16()));
    http::status_error(VENDOR, response, message, body.text(&["/field"]))
}

/// The job a create answer names. Parsed by hand so that no error message quotes the body,
/// which echoes the caller's token.
pub(super) fn created_job(body: &[u8]) -> Result<SubmittedRun, VendorError> {
    let created: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| VendorError::OutcomeUnknown {
            vendor: VENDOR,
            message: "job created but its answer is not JSON".into(),
        })?;
    let job_id = created
        .get("externalId")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty());
    let Some(job_id) = job_id else {
        return Err(VendorError::OutcomeUnknown {
            vendor: VENDOR,
            message: "job created but its answer has no externalId".into(),
        });
    };
    let vendor_state = created
        .pointer("/status/state")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok(SubmittedRun {
        vendor_run_id: job_id.to_owned(),
        vendor_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> RunStatus {
        map_status(
            serde_json::from_value::<Job>(json)
                .expect("job parses")
                .status,
        )
    }

    #[test]
    fn states_map_case_insensitively() {
        assert_eq!(
            status(serde_json::json!({"status": {"state": "PENDING"}})).state,
            RunState::Pending
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "running"}})).state,
            RunState::Running
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "Done"}})).state,
            RunState::Succeeded
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "CANCELED"}})).state,
            RunState::Cancelled
        );
        assert_eq!(
            status(serde_json::json!({"status": "failed"})).state,
            RunState::Failed
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "QUEUED_SOMEWHERE"}})).state,
            RunState::Running
        );
    }

    #[test]
    fn done_with_error_result_is_a_failure() {
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {
            "reason": "invalidQuery", "location": "query",
            "message": "Query error: Cannot coerce expression @number_of_clusters to type INT64 at [1:158]"}}}),
        );
        assert_eq!(s.state, RunState::Failed);
        assert_eq!(s.attribution, Some(Attribution::Customer));
        assert!(
            s.reason
                .as_deref()
                .unwrap_or_default()
                .contains("Cannot coerce"),
            "{s:?}"
        );
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {"reason": "backendError", "message": "x"}}}),
        );
        assert_eq!(
            (s.state, s.attribution),
            (RunState::Failed, Some(Attribution::Platform))
        );
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {"reason": "stopped", "message": "x"}}}),
        );
        assert_eq!(s.state, RunState::Cancelled);
    }
}
