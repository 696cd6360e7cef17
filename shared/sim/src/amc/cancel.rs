//! `PUT …/workflowExecutions/{id}`: AMC's update, which only cancels. The body is a
//! `WorkflowExecution`; only a PENDING or RUNNING execution can move to CANCELLED.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::api::{bad_request, check_enum, check_headers, json_object, ok, ApiError};
use super::{not_found, Shared};

pub(super) async fn update(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sim = &state.sim;
    sim.control.count("amc.cancel");
    check_headers(sim, &headers, &instance)?;
    let body = json_object(&headers, &body)?;
    // The body is a WorkflowExecution; fields other than status are ignored, unknown ones are not.
    const EXECUTION_FIELDS: &[&str] = &[
        "acrCollaborationId",
        "acrCustomerMembershipId",
        "acrDetailPageUrl",
        "acrProtectedQueryId",
        "advertisers",
        "createTime",
        "disableAggregationControls",
        "expireTime",
        "invalidationOffsetSecs",
        "lastUpdatedTime",
        "outputChannels",
        "outputS3URI",
        "requireSyntheticData",
        "sqlQuery",
        "status",
        "timeWindowEnd",
        "timeWindowEndOriginal",
        "timeWindowStart",
        "timeWindowStartOriginal",
        "timeWindowTimeZoneOriginal",
        "waitUntil",
        "workflowExecutionId",
        "workflowExecutionTimeoutSeconds",
        "workflowId",
    ];
    if let Some(name) = body
        .keys()
        .find(|k| !EXECUTION_FIELDS.contains(&k.as_str()))
    {
        return Err(bad_request(format!("Unrecognized field \"{name}\"")));
    }
    check_enum(
        "status",
        body.get("status"),
        &["CANCELLED", "FAILED", "PENDING", "RUNNING", "SUCCEEDED"],
    )?;
    let wanted = match body.get("status") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(bad_request(
                "Invalid type for field \"status\": expected a string",
            ))
        }
    };
    let now = sim.clock.now();
    let mut executions = state.executions.lock().expect("amc lock");
    let Some(execution) = executions
        .get_mut(&id)
        .filter(|e| e.instance_id == instance)
    else {
        return Err(not_found(&id));
    };
    match wanted {
        None => Ok(ok(json!({}))),
        Some("CANCELLED") => {
            if !execution.is_active(now) {
                let (current, _) = execution.status(now);
                return Err(bad_request(format!(
                    "Workflow execution {id} cannot be cancelled: its status is {current}; only PENDING or RUNNING executions can be cancelled"
                )));
            }
            execution.run.cancelled_at = Some(now);
            Ok(ok(json!({})))
        }
        Some(other) => Err(bad_request(format!("Invalid value for field \"status\": an execution can only be updated to CANCELLED, not {other}"))),
    }
}
