//! `POST /data/foundation/flowservice/runs`: creating an on-demand run. The body is checked as
//! Flow Service does (content type, known fields, `flowId`, unix-second window `params`, a delta
//! column only on a table-based flow's first run); the flow must exist in the caller's sandbox.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::api::{check_headers, flow_error, header_value, invalid_request};
use super::model::Run;
use super::{FlowKind, Shared, FLOW_SANDBOX, VENDOR};
use crate::{auth, ScriptedRun};

/// The validated body of a create request.
struct NewRun {
    flow_id: String,
    start_time: i64,
    window_start: i64,
    window_end: i64,
    delta_column: Option<String>,
}

pub(super) async fn create_run(
    State(state): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let sim = &state.sim;
    sim.control.count("adobe.submit");
    let sandbox = check_headers(sim, &headers)?;
    let json_content = header_value(&headers, "content-type")
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_content {
        let body = json!({"type": "/placeholder/type/uri", "status": 400, "title": "BadRequestError", "detail": "A valid content-type must be specified"});
        return Err((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    let new = parse_create(&body)?;
    // Flows belong to a sandbox: the catalog lives in `prod`.
    let kind = match state.flows.get(new.flow_id.as_str()) {
        Some(k) if sandbox == FLOW_SANDBOX => *k,
        _ => {
            let detail = format!("Flow not found with id {}.", new.flow_id);
            return Err(flow_error(
                StatusCode::BAD_REQUEST,
                1430,
                "Invalid request",
                &detail,
            ));
        }
    };
    let mut runs = state.runs.lock().expect("adobe runs lock");
    if new.delta_column.is_some() {
        if kind == FlowKind::File {
            return Err(invalid_request("params.deltaColumn is only supported for table-based sources; file-based flows do not take a delta column."));
        }
        // After the first run the flow's copy transformation owns the delta column.
        if runs.values().any(|r| r.flow_id == new.flow_id) {
            return Err(invalid_request(&format!(
                "params.deltaColumn cannot be changed through flow run parameters: flow {} already has a delta column from its first run.",
                new.flow_id
            )));
        }
    }
    let now = sim.clock.now();
    let start = OffsetDateTime::from_unix_timestamp(new.start_time).unwrap_or(now);
    // A run scheduled for later starts its script then.
    let script = ScriptedRun::new(start.max(now), sim.control.next_run_for(VENDOR, &body));
    let id = uuid::Uuid::new_v4().to_string();
    let etag = format!("\"{}\"", uuid::Uuid::new_v4());
    let run = Run {
        id: id.clone(),
        etag: etag.clone(),
        flow_id: new.flow_id,
        sandbox,
        created_client: auth::client_id(VENDOR),
        created_at: now,
        start_time: new.start_time,
        window_start: new.window_start,
        window_end: new.window_end,
        script,
    };
    runs.insert(id.clone(), run);
    Ok((
        StatusCode::CREATED,
        Json(json!({"items": [{"id": id, "etag": etag}]})),
    )
        .into_response())
}

fn parse_create(body: &[u8]) -> Result<NewRun, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_body_empty());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_request(&format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(invalid_request("The request body must be a JSON object."));
    };
    if let Some(unknown) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "flowId" | "params"))
    {
        return Err(invalid_request(&format!(
            "Unrecognized field '{unknown}' in the create run request."
        )));
    }
    let flow_id = match top.get("flowId") {
        None | Some(Value::Null) => return Err(flow_id_missing()),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(flow_id_missing()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid_request("flowId must be a string.")),
    };
    let params = match top.get("params") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => {
            return Err(invalid_request(
                "params is required: startTime, windowStartTime and windowEndTime.",
            ))
        }
        Some(_) => return Err(invalid_request("params must be an object.")),
    };
    if let Some(unknown) = params.keys().find(|k| {
        !matches!(
            k.as_str(),
            "startTime" | "windowStartTime" | "windowEndTime" | "deltaColumn"
        )
    }) {
        return Err(invalid_request(&format!(
            "Unrecognized field 'params.{unknown}' in the create run request."
        )));
    }
    let start_time = unix_param(params, "startTime")?;
    let window_start = unix_param(params, "windowStartTime")?;
    let window_end = unix_param(params, "windowEndTime")?;
    if window_end <= window_start {
        return Err(invalid_request(
            "params.windowEndTime must be after params.windowStartTime.",
        ));
    }
    let delta_column = match params.get("deltaColumn") {
        None => None,
        Some(Value::Object(d)) => {
            if let Some(unknown) = d.keys().find(|k| k.as_str() != "name") {
                return Err(invalid_request(&format!(
                    "Unrecognized field 'params.deltaColumn.{unknown}'."
                )));
            }
            match d.get("name") {
                Some(Value::String(n)) if !n.trim().is_empty() => Some(n.clone()),
                _ => {
                    return Err(invalid_request(
                        "params.deltaColumn.name must be a non-empty string.",
                    ))
                }
            }
        }
        Some(_) => {
            return Err(invalid_request(
                "params.deltaColumn must be an object with a name.",
            ))
        }
    };
    Ok(NewRun {
        flow_id,
        start_time,
        window_start,
        window_end,
        delta_column,
    })
}

fn invalid_body_empty() -> Response {
    flow_error(
        StatusCode::BAD_REQUEST,
        1405,
        "Invalid request",
        "The request body cannot be null or empty. Please provide a request body and try again.",
    )
}

fn flow_id_missing() -> Response {
    flow_error(
        StatusCode::BAD_REQUEST,
        1446,
        "Invalid request",
        "The flow ID cannot be null or empty. Please update the flow ID and try again.",
    )
}

/// A unix time in seconds: a numeric string (the tutorial) or a non-negative integer (the
/// OpenAPI type).
fn unix_param(params: &Map<String, Value>, name: &str) -> Result<i64, Response> {
    let bad = || {
        invalid_request(&format!(
            "params.{name} must be a unix time in seconds, e.g. \"1663735590\"."
        ))
    };
    match params.get(name) {
        None | Some(Value::Null) => Err(invalid_request(&format!("params.{name} is required."))),
        Some(Value::String(s)) => {
            if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        }
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}
