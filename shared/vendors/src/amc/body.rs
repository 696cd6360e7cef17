//! The `createWorkflowExecution` body: a runbridge [`AmcRun`] in AMC's words (an ad-hoc
//! `workflow.sqlQuery` made single-line, or a saved `workflowId`; the time window; parameters as
//! strings; `ignoreDataGaps`). Reconciliation reuses the window and parameter readers so that it
//! compares exactly what a submit sends.

use runbridge_core::request::amc::{check_parameter_value, check_whole_seconds};
use runbridge_core::request::{AmcRun, AmcTimeWindowType};
use runbridge_core::{OffsetDateTime, ResolvedRequest, ValidationError};

use super::error::invalid;
use super::sql::normalize_sql;
use super::wire::amc_time;
use crate::spec::run_of;
use crate::VendorError;

/// Parses a request bound by the same rule request validation applies (UTC, whole seconds, no
/// leap second; a bare date is midnight UTC): one rule, in `runbridge_core`.
pub(super) fn parse_request_time(
    field: &str,
    value: &str,
) -> Result<OffsetDateTime, ValidationError> {
    check_whole_seconds(field, value)
}

/// The EXPLICIT window of a request, if it has one.
pub(super) fn explicit_window(
    run: &AmcRun,
) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, VendorError> {
    if run.time_window_type != AmcTimeWindowType::Explicit {
        return Ok(None);
    }
    // A relative window cannot reach here: the run comes from a `ResolvedRequest`.
    match (&run.time_window_start, &run.time_window_end) {
        (Some(start), Some(end)) => Ok(Some((
            parse_request_time("time_window_start", start).map_err(invalid)?,
            parse_request_time("time_window_end", end).map_err(invalid)?,
        ))),
        _ => Err(invalid(ValidationError::new(
            "time_window_start",
            "EXPLICIT windows need a start and an end",
        ))),
    }
}

/// `parameterValues` as AMC types them: strings. Numbers and booleans are written as text;
/// lists and objects have no string form AMC would understand, so they are refused.
pub(super) fn parameter_values(
    run: &AmcRun,
) -> Result<serde_json::Map<String, serde_json::Value>, VendorError> {
    let mut out = serde_json::Map::new();
    for (name, value) in &run.parameter_values {
        check_parameter_value(&format!("parameter_values.{name}"), value).map_err(invalid)?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(name.clone(), serde_json::Value::String(text));
    }
    Ok(out)
}

/// The `createWorkflowExecution` body for a request.
pub fn create_body(request: &ResolvedRequest) -> Result<serde_json::Value, VendorError> {
    let run: &AmcRun = run_of(request)?;
    let mut body = serde_json::Map::new();
    match (&run.sql_query, &run.workflow_id) {
        (Some(sql), None) => {
            let sql = normalize_sql(sql).map_err(invalid)?;
            body.insert("workflow".into(), serde_json::json!({ "sqlQuery": sql }));
        }
        (None, Some(id)) => {
            body.insert("workflowId".into(), id.clone().into());
        }
        _ => {
            return Err(invalid(ValidationError::new(
                "sql_query",
                "give exactly one of `sql_query` or `workflow_id`",
            )))
        }
    }
    body.insert(
        "timeWindowType".into(),
        run.time_window_type.as_str().into(),
    );
    if let Some((start, end)) = explicit_window(run)? {
        body.insert("timeWindowStart".into(), amc_time(start).into());
        body.insert("timeWindowEnd".into(), amc_time(end).into());
    } else {
        // Bounds given with another window type are sent, not silently dropped: AMC judges
        // them (validation refuses them first; this keeps client and vendor on one rule).
        for (field, key, value) in [
            (
                "time_window_start",
                "timeWindowStart",
                &run.time_window_start,
            ),
            ("time_window_end", "timeWindowEnd", &run.time_window_end),
        ] {
            if let Some(v) = value {
                let t = parse_request_time(field, v).map_err(invalid)?;
                body.insert(key.into(), amc_time(t).into());
            }
        }
    }
    // Day and month boundaries (and EXPLICIT bounds) are UTC in runbridge; say so rather than
    // rely on the instance's default.
    body.insert("timeWindowTimeZone".into(), "UTC".into());
    let params = parameter_values(run)?;
    if !params.is_empty() {
        body.insert("parameterValues".into(), params.into());
    }
    if let Some(ignore) = run.ignore_data_gaps {
        body.insert("ignoreDataGaps".into(), ignore.into());
    }
    Ok(serde_json::Value::Object(body))
}
