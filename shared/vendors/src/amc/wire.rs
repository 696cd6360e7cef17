//! What AMC answers, as runbridge reads it: workflow executions (flat or wrapped), execution
//! lists, download URLs, AMC's time format, and the mapping of an execution's status to
//! [`RunStatus`].

use std::collections::BTreeMap;

use runbridge_core::{Attribution, OffsetDateTime, RunState, RunStatus};
use serde::Deserialize;
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcOffset};

use super::VENDOR;
use crate::http::ApiResponse;
use crate::VendorError;

/// AMC's time format for window bounds and creation-time filters (no offset; the zone is sent
/// separately).
const AMC_TIME: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// Formats a time the way AMC takes it (UTC, whole seconds, no offset).
pub(super) fn amc_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(AMC_TIME)
        .expect("formatting a UTC time with a fixed format cannot fail")
}

/// Parses AMC's UTC output times (`yyyy-MM-dd'T'HH:mm:ss'Z'`, tolerating a missing `Z`).
pub(super) fn parse_amc_time(value: &str) -> Option<OffsetDateTime> {
    let bare = value.strip_suffix('Z').unwrap_or(value);
    PrimitiveDateTime::parse(bare, AMC_TIME)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// A workflow execution as AMC returns it. The Ads docs show it at the top level of create and
/// get answers; the OpenAPI wraps it in `workflowExecution`. Both are read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Execution {
    #[serde(default)]
    pub(super) workflow_execution_id: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) status_reason: Option<String>,
    #[serde(default)]
    pub(super) output_channels: Vec<OutputChannel>,
    #[serde(default)]
    pub(super) create_time: Option<String>,
    #[serde(default)]
    pub(super) workflow_id: Option<String>,
    #[serde(default)]
    pub(super) sql_query: Option<String>,
    #[serde(default)]
    pub(super) time_window_start: Option<String>,
    #[serde(default)]
    pub(super) time_window_end: Option<String>,
    #[serde(default)]
    pub(super) parameter_values: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutputChannel {
    #[serde(default)]
    pub(super) status_reason: Option<String>,
}

/// One page of `GET …/workflowExecutions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExecutionList {
    #[serde(default)]
    pub(super) executions: Vec<Execution>,
    #[serde(default)]
    pub(super) next_token: Option<String>,
}

/// The answer of `GET …/{id}/downloadUrls`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DownloadUrls {
    #[serde(default)]
    pub(super) download_urls: Vec<String>,
}

/// Reads an execution from a create/get answer, flat or wrapped.
pub(super) fn parse_execution(response: &ApiResponse) -> Result<Execution, VendorError> {
    let mut value: serde_json::Value = response.json(VENDOR)?;
    if let Some(inner) = value.get_mut("workflowExecution").filter(|v| v.is_object()) {
        value = inner.take();
    }
    serde_json::from_value(value).map_err(|e| {
        VendorError::protocol(VENDOR, format!("workflow execution did not parse: {e}"))
    })
}

/// Maps an AMC status (any case) to the common state.
pub fn map_state(vendor_state: &str) -> RunState {
    match vendor_state.to_ascii_uppercase().as_str() {
        "PENDING" => RunState::Pending,
        // PUBLISHING: the query finished and AMC is writing the output; not done yet.
        "RUNNING" | "PUBLISHING" => RunState::Running,
        "SUCCEEDED" => RunState::Succeeded,
        "FAILED" | "REJECTED" => RunState::Failed,
        "CANCELLED" => RunState::Cancelled,
        other => {
            tracing::warn!(vendor = %VENDOR, state = other, "unknown AMC execution status; treating it as running");
            RunState::Running
        }
    }
}

/// An execution's status. The failure text is `statusReason`, falling back to an output
/// channel's; only REJECTED (AMC refused the query) is attributed, to the customer.
pub(super) fn run_status(execution: Execution) -> Result<RunStatus, VendorError> {
    let vendor_state = execution
        .status
        .ok_or_else(|| VendorError::protocol(VENDOR, "workflow execution has no status"))?;
    let mut status = RunStatus::new(map_state(&vendor_state), vendor_state.clone());
    if status.state == RunState::Failed {
        status.reason = execution
            .status_reason
            .or_else(|| {
                execution
                    .output_channels
                    .into_iter()
                    .find_map(|c| c.status_reason)
            })
            .or_else(|| Some(format!("AMC execution {vendor_state}")));
        if vendor_state.eq_ignore_ascii_case("REJECTED") {
            status.attribution = Some(Attribution::Customer);
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_case_insensitively() {
        assert_eq!(map_state("pending"), RunState::Pending);
        assert_eq!(map_state("Running"), RunState::Running);
        assert_eq!(map_state("PUBLISHING"), RunState::Running);
        assert_eq!(map_state("succeeded"), RunState::Succeeded);
        assert_eq!(map_state("FAILED"), RunState::Failed);
        assert_eq!(map_state("rejected"), RunState::Failed);
        assert_eq!(map_state("Cancelled"), RunState::Cancelled);
        assert_eq!(map_state("SOMETHING_NEW"), RunState::Running);
    }
}
