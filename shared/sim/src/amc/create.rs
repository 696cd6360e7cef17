//! `POST …/workflowExecutions`: the create route, its request validation (the fields of
//! `CreateWorkflowExecutionRequest`, their types and rules) and the per-instance concurrency
//! limit.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::api::{
    bad_request, check_enum, check_fields, check_headers, json_object, ok, reject, ApiError, Kind,
};
use super::model::{parse_amc_time, resolve_window, Execution, ExecutionParams};
use super::{Shared, VENDOR};
use crate::ScriptedRun;

/// PENDING + RUNNING executions one instance may have.
const MAX_ACTIVE_PER_INSTANCE: usize = 10;

pub(super) async fn create(
    State(state): Shared,
    Path(instance): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sim = &state.sim;
    sim.control.count("amc.create");
    check_headers(sim, &headers, &instance)?;
    let now = sim.clock.now();
    let request = validate_create(&json_object(&headers, &body)?, now)?;
    let mut executions = state.executions.lock().expect("amc lock");
    let active = executions
        .values()
        .filter(|e| e.instance_id == instance && e.is_active(now))
        .count();
    if active >= MAX_ACTIVE_PER_INSTANCE {
        sim.control.count("amc.create.over_limit");
        return Err(reject(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Instance {instance} already has {active} PENDING or RUNNING workflow executions; \
                 at most {MAX_ACTIVE_PER_INSTANCE} may run concurrently"
            ),
        ));
    }
    let instance_key = instance.clone();
    let id = uuid::Uuid::new_v4().to_string();
    let execution = Execution {
        id: id.clone(),
        instance_id: instance,
        run: ScriptedRun::new(now, sim.control.next_run_for(VENDOR, &body)),
        workflow_id: request
            .workflow_id
            .unwrap_or_else(|| format!("transient_{}", uuid::Uuid::new_v4())),
        params: request.params,
    };
    let view = execution.view(now, false);
    executions.insert(id, execution);
    // What the concurrency benchmark reads: the most executions this instance ever had active.
    sim.control
        .observe(&format!("amc.active.{instance_key}"), active as u64 + 1);
    Ok(ok(view))
}

const CREATE_FIELDS: &[(&str, Kind)] = &[
    ("additionalAcrResultsReceivers", Kind::StrArray),
    ("advertisers", Kind::ObjArray),
    ("disableAggregationControls", Kind::Bool),
    ("dryRun", Kind::Bool),
    ("ignoreDataGaps", Kind::Bool),
    ("maxCertifiedTime", Kind::Str),
    ("maxDimensionTime", Kind::Str),
    ("parameterValues", Kind::Object),
    ("requireSyntheticData", Kind::Bool),
    ("skipPublish", Kind::Bool),
    ("timeWindowEnd", Kind::Str),
    ("timeWindowStart", Kind::Str),
    ("timeWindowTimeZone", Kind::Str),
    ("timeWindowType", Kind::Str),
    ("workflow", Kind::Object),
    ("workflowExecutionTimeoutSeconds", Kind::Int),
    ("workflowId", Kind::Str),
];

const WORKFLOW_FIELDS: &[(&str, Kind)] = &[
    ("filteredMetricsDiscriminatorColumn", Kind::Str),
    ("inputParameters", Kind::ObjArray),
    ("inputSchema", Kind::Str),
    ("outputColumns", Kind::ObjArray),
    ("outputFormat", Kind::Object),
    ("privacyFilteringBehavior", Kind::Str),
    ("query", Kind::StrArray),
    ("sqlQuery", Kind::Str),
    ("workflowId", Kind::Str),
];

const TIME_WINDOW_TYPES: &[&str] = &[
    "ALL",
    "CURRENT_MONTH",
    "EXPLICIT",
    "MOST_RECENT_DAY",
    "MOST_RECENT_WEEK",
    "PREVIOUS_MONTH",
];

/// What a valid create request asks for.
struct CreateRequest {
    workflow_id: Option<String>,
    params: ExecutionParams,
}

fn str_field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name).and_then(Value::as_str)
}

fn validate_create(
    body: &Map<String, Value>,
    now: OffsetDateTime,
) -> Result<CreateRequest, ApiError> {
    check_fields("", body, CREATE_FIELDS)?;
    check_enum(
        "timeWindowType",
        body.get("timeWindowType"),
        TIME_WINDOW_TYPES,
    )?;
    if let Some(advertisers) = body.get("advertisers").and_then(Value::as_array) {
        for (i, a) in advertisers.iter().enumerate() {
            let a = a.as_object().expect("checked to be objects");
            let prefix = format!("advertisers[{i}].");
            check_fields(
                &prefix,
                a,
                &[
                    ("id", Kind::Str),
                    ("type", Kind::Str),
                    ("marketplaceId", Kind::Str),
                ],
            )?;
            for required in ["id", "type"] {
                if str_field(a, required).is_none() {
                    return Err(bad_request(format!(
                        "Missing required field \"{prefix}{required}\""
                    )));
                }
            }
            check_enum(
                &format!("{prefix}type"),
                a.get("type"),
                &["DISPLAY", "SAS", "SPONSORED_ADS"],
            )?;
        }
    }
    let workflow = body.get("workflow").and_then(Value::as_object);
    if let Some(w) = workflow {
        check_fields("workflow.", w, WORKFLOW_FIELDS)?;
        check_enum(
            "workflow.privacyFilteringBehavior",
            w.get("privacyFilteringBehavior"),
            &["REMOVE_ROWS", "REMOVE_VALUES"],
        )?;
        if let Some(format) = w.get("outputFormat").and_then(Value::as_object) {
            let known = [
                ("escapeCharacter", Kind::Str),
                ("quoteCharacter", Kind::Str),
                ("separatorCharacter", Kind::Str),
            ];
            check_fields("workflow.outputFormat.", format, &known)?;
            for (name, value) in format {
                if value.as_str().is_some_and(|c| c.chars().count() != 1) {
                    return Err(bad_request(format!("Invalid value for field \"workflow.outputFormat.{name}\": must be one character")));
                }
            }
        }
    }
    let workflow_id = str_field(body, "workflowId");
    let sql_query = workflow.and_then(|w| str_field(w, "sqlQuery"));
    let has_operations = workflow
        .and_then(|w| w.get("query"))
        .and_then(Value::as_array)
        .is_some_and(|q| !q.is_empty());
    match (workflow_id, workflow) {
        (Some(_), Some(_)) => return Err(bad_request(
            "Field \"workflowId\" cannot be populated at the same time as \"workflow\" (sqlQuery)",
        )),
        (None, None) => {
            return Err(bad_request(
                "Either field \"workflowId\" or field \"workflow\" with a sqlQuery is required",
            ))
        }
        (Some(id), None) if id.trim().is_empty() => {
            return Err(bad_request(
                "Invalid value for field \"workflowId\": must not be empty",
            ))
        }
        (None, Some(_)) if sql_query.is_none_or(|q| q.trim().is_empty()) && !has_operations => {
            return Err(bad_request("Missing required field \"workflow.sqlQuery\""))
        }
        _ => {}
    }
    if let Some(sql) = sql_query {
        if sql.contains(['\n', '\r', '\t']) {
            return Err(bad_request(
                "Invalid value for field \"workflow.sqlQuery\": the SQL query must be a single line without tab or new-line characters",
            ));
        }
    }
    let window_type = str_field(body, "timeWindowType").unwrap_or("MOST_RECENT_DAY");
    let start = str_field(body, "timeWindowStart");
    let end = str_field(body, "timeWindowEnd");
    let window = if window_type == "EXPLICIT" {
        let (Some(start), Some(end)) = (start, end) else {
            return Err(bad_request(
                "Fields \"timeWindowStart\" and \"timeWindowEnd\" are required with timeWindowType EXPLICIT",
            ));
        };
        let start = parse_amc_time("timeWindowStart", start)?;
        let end = parse_amc_time("timeWindowEnd", end)?;
        if end <= start {
            return Err(bad_request(
                "Invalid value for field \"timeWindowEnd\": must be after timeWindowStart",
            ));
        }
        Some((start, end))
    } else {
        // The bounds belong to EXPLICIT; with another type AMC resolves the window from the
        // create time, so bounds sent anyway are a caller's mistake, refused rather than ignored.
        if let Some(field) = [("timeWindowStart", start), ("timeWindowEnd", end)]
            .into_iter()
            .find_map(|(name, v)| v.map(|_| name))
        {
            return Err(bad_request(format!(
                "Invalid value for field \"{field}\": only allowed with timeWindowType EXPLICIT"
            )));
        }
        resolve_window(window_type, now)
    };
    if let Some(max_dimension) = str_field(body, "maxDimensionTime") {
        parse_amc_time("maxDimensionTime", max_dimension)?;
    }
    let time_zone = str_field(body, "timeWindowTimeZone").unwrap_or("UTC");
    let zone_ok = time_zone == "UTC"
        || time_zone.split_once('/').is_some_and(|(area, city)| {
            !area.is_empty()
                && !city.is_empty()
                && time_zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        });
    if !zone_ok {
        return Err(bad_request(format!(
            "Invalid value for field \"timeWindowTimeZone\": unknown time zone `{time_zone}`"
        )));
    }
    let parameter_values = body
        .get("parameterValues")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // A parameter is named in the workflow's SQL, so its name is a SQL identifier.
    if let Some(name) = parameter_values.keys().find(|name| {
        let mut chars = name.chars();
        let identifier = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        !identifier || name.len() > 128
    }) {
        return Err(bad_request(format!(
            "Invalid parameter name \"{name}\": must be a SQL identifier"
        )));
    }
    if let Some((name, _)) = parameter_values.iter().find(|(_, v)| !v.is_string()) {
        return Err(bad_request(format!(
            "Invalid type for field \"parameterValues.{name}\": expected a string"
        )));
    }
    let timeout_seconds = match body.get("workflowExecutionTimeoutSeconds").and_then(Value::as_i64) {
        Some(t) if !(900..=86_400).contains(&t) => {
            return Err(bad_request("Invalid value for field \"workflowExecutionTimeoutSeconds\": must be between 900 and 86400"))
        }
        Some(t) => t,
        None => 21_600,
    };
    Ok(CreateRequest {
        workflow_id: workflow_id.map(str::to_owned),
        params: ExecutionParams {
            sql_query: sql_query.map(str::to_owned),
            window,
            time_zone: time_zone.to_owned(),
            parameter_values,
            ignore_data_gaps: body
                .get("ignoreDataGaps")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            disable_aggregation_controls: body
                .get("disableAggregationControls")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            timeout_seconds,
        },
    })
}
