//! What Amperity answers, as runbridge reads it: workflow runs (`Workflow`), pages of them
//! (`WorkflowList`), the error shape (`ErrorResponse`), and the mapping of a run's `state` and
//! `error` to [`RunStatus`].

use reqwest::StatusCode;
use runbridge_core::{Attribution, RunState, RunStatus};
use serde::Deserialize;

use super::VENDOR;
use crate::error_body::field_named_in;
use crate::http::{self, ApiResponse};
use crate::VendorError;

/// Request fields the vendor's messages may name.
const REQUEST_FIELDS: [&str; 4] = ["config_id", "range_from", "range_to", "run_mode"];

/// A workflow run (`Workflow`), the fields this module reads.
#[derive(Debug, Deserialize)]
pub(super) struct Workflow {
    pub(super) id: String,
    pub(super) state: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) created_at: Option<String>,
    /// Who started the run (absent from the `overview` view).
    #[serde(default)]
    pub(super) principal_id: Option<String>,
    /// The starter's display name; `Automated workflow` for scheduled runs.
    #[serde(default)]
    pub(super) principal_name: Option<String>,
    #[serde(default)]
    error: Option<WorkflowError>,
}

#[derive(Debug, Deserialize)]
struct WorkflowError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    attribution: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A page of runs (`WorkflowList`).
#[derive(Debug, Deserialize)]
pub(super) struct WorkflowList {
    pub(super) data: Vec<Workflow>,
    #[serde(default)]
    pub(super) next_token: Option<String>,
}

/// The error body (`ErrorResponse`).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
}

/// Maps an Amperity workflow state to the common state. Case, `-`, `_` and spaces do not matter;
/// an unknown state is logged and treated as still running.
pub fn map_state(vendor_state: &str) -> RunState {
    match normalize_state(vendor_state).as_str() {
        "scheduled" => RunState::Pending,
        "started"
        | "in progress"
        | "running"
        | "running with failures"
        | "stopping"
        | "canceling"
        | "cancelling"
        | "paused"
        | "finalizing" => RunState::Running,
        "succeeded" => RunState::Succeeded,
        "failed" => RunState::Failed,
        "canceled" | "cancelled" | "stopped" => RunState::Cancelled,
        _ => {
            tracing::warn!(vendor = %VENDOR, state = vendor_state, "unknown workflow state; treating it as running");
            RunState::Running
        }
    }
}

fn normalize_state(s: &str) -> String {
    s.trim()
        .to_ascii_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_attribution(value: Option<&str>) -> Option<Attribution> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("customer") => Some(Attribution::Customer),
        Some("platform") => Some(Attribution::Platform),
        _ => None,
    }
}

/// A run's status: `error.message` (and `error.type`) as the reason, `error.attribution` as
/// whose fault it is.
pub(super) fn run_status(workflow: &Workflow) -> RunStatus {
    let mut status = RunStatus::new(map_state(&workflow.state), workflow.state.clone());
    if let Some(error) = &workflow.error {
        status.reason = match (&error.message, &error.kind) {
            (Some(m), Some(k)) => Some(format!("{m} ({k})")),
            (Some(m), None) => Some(m.clone()),
            (None, k) => k.clone(),
        };
        status.attribution = parse_attribution(error.attribution.as_deref());
    }
    status
}

/// Maps a non-success answer, reading the `{status, message}` error shape when present.
pub(super) fn api_error(response: &ApiResponse) -> VendorError {
    let message = serde_json::from_slice::<ErrorBody>(&response.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| response.text_snippet());
    // The error shape has no field; name the request field the message mentions, if any.
    let field = (response.status == StatusCode::BAD_REQUEST)
        .then(|| field_named_in(&message, &REQUEST_FIELDS).map(str::to_owned))
        .flatten();
    http::status_error(VENDOR, response, message, field)
}
