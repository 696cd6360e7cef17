//! Adobe Experience Platform Flow Service simulator: on-demand flow runs of batch sources.
//!
//! Routes, at their real paths:
//! - `POST /ims/token/v3` — IMS OAuth server-to-server (`client_credentials` with a `scope`).
//! - `POST /data/foundation/flowservice/runs` — create a run: `{"flowId", "params": {startTime,
//!   windowStartTime, windowEndTime, deltaColumn?}}` → `201 {"items": [{"id", "etag"}]}`.
//! - `GET /data/foundation/flowservice/runs/{runId}` — `{"items": [run]}` with the overall state in
//!   `metrics.statusSummary.status` and failures in `metrics.statusSummary.errors[{code, message}]`.
//! - `GET /data/foundation/flowservice/runs?property=flowId==<id>&limit=&orderby=&continuationToken=`
//!   — paged by `_links.next.href`.
//!
//! There is no cancel route: Flow Service cannot stop an on-demand run.
//!
//! Two error shapes, as Adobe has them. The API gateway (token, API key, organization) answers
//! `{"error_code": "403010", "message": "Oauth token is missing."}`; Flow Service itself answers
//! `{"type": "https://ns.adobe.com/aep/errors/FLOW-1430-400", "title", "status", "report":
//! {"detailed-message", "request-id"}, "errorMessage", "errorDetails"}` with the codes of Adobe's
//! "Flow Service error messages" catalog where it has one. Body checks that catalog does not cover
//! use `FLOW-1100-400` ("Invalid request") with a message naming the field.
//!
//! Run states are `scheduled` (before `startTime`), `queued`, `inProgress`, `success` and `failed`.
//! A failed run's error code ends in the HTTP class Adobe gives it: `CONNECTOR-1001-400` for a
//! configuration failure (the script says `customer: true`), `CONNECTOR-1001-500` for a platform
//! one, `FLOW-1100-400` for a rejected run. The window times are seconds (numeric strings, as the
//! tutorial sends them, or integers, as the OpenAPI types them); the run echoes them in
//! milliseconds under `activities[copyActivity].durationSummary.extensions`, as Adobe's run
//! notifications do.

// Handlers and their helpers return the vendor's error `Response` as the `Err`, like
// `common::check_bearer`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbridge_core::VendorKind;
use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

use super::common::{self, AuthPolicy};
use super::SimVendor;
use crate::{Outcome, RunPhase, ScriptedRun, Sim};

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Adobe,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Adobe;
/// Flow Service base path under the Platform gateway.
pub const BASE_PATH: &str = "/data/foundation/flowservice";
/// IMS token endpoint path.
pub const TOKEN_PATH: &str = "/ims/token/v3";
/// The table-based flow (a CRM/database source) of the default catalog.
pub const TABLE_FLOW_ID: &str = "3abea21c-7e36-4be1-bec1-d3bad0e3e0de";
/// The file-based flow (a cloud-storage source) of the default catalog.
pub const FILE_FLOW_ID: &str = "9f1a2b3c-0000-4000-8000-000000000001";
/// The organization the simulator's credentials belong to.
pub const ORG_ID: &str = "5C1328435BF324E90A49402A@AdobeOrg";
/// Sandboxes that exist; the catalog's flows live in `prod`.
pub const SANDBOXES: [&str; 2] = ["prod", "dev"];
/// The sandbox holding the flow catalog.
const FLOW_SANDBOX: &str = "prod";
/// Page size when a list request gives no `limit`.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest accepted `limit`.
pub const MAX_PAGE_SIZE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowKind {
    /// Advertising, CRM, database… sources: accept `deltaColumn` on the first run only.
    Table,
    /// Cloud-storage sources: never accept `deltaColumn`.
    File,
}

#[derive(Debug, Clone)]
struct Run {
    id: String,
    etag: String,
    flow_id: String,
    sandbox: String,
    created_client: String,
    created_at: OffsetDateTime,
    start_time: i64,
    window_start: i64,
    window_end: i64,
    script: ScriptedRun,
}

struct AdobeSim {
    sim: Arc<Sim>,
    flows: HashMap<&'static str, FlowKind>,
    runs: Mutex<HashMap<String, Run>>,
}

fn router(sim: Arc<Sim>) -> Router {
    let flows = HashMap::from([
        (TABLE_FLOW_ID, FlowKind::Table),
        (FILE_FLOW_ID, FlowKind::File),
    ]);
    let state = Arc::new(AdobeSim {
        sim,
        flows,
        runs: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(
            &format!("{BASE_PATH}/runs"),
            post(create_run).get(list_runs),
        )
        .route(&format!("{BASE_PATH}/runs/{{run_id}}"), get(get_run))
        .with_state(state)
}

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), format!("{base}{BASE_PATH}")),
        ("token_url".into(), format!("{base}{TOKEN_PATH}")),
        ("client_id".into(), common::client_id(VENDOR)),
        ("client_secret".into(), common::client_secret(VENDOR)),
        ("org_id".into(), ORG_ID.into()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Error shapes

/// The Platform gateway's error body.
fn gateway_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// Flow Service's error body for catalog code `code` (e.g. 1430) and `status`.
fn flow_error(status: StatusCode, code: u16, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://ns.adobe.com/aep/errors/FLOW-{code}-{}", status.as_u16()),
        "title": title,
        "status": status.as_u16(),
        "report": {
            "detailed-message": detail,
            "request-id": uuid::Uuid::new_v4().to_string(),
        },
        "errorMessage": detail,
        "errorDetails": detail,
    });
    (status, Json(body)).into_response()
}

fn invalid_request(detail: &str) -> Response {
    flow_error(StatusCode::BAD_REQUEST, 1100, "Invalid request", detail)
}

/// Errors for injected faults: the gateway throttles, Flow Service fails.
fn error(status: StatusCode, message: &str) -> Response {
    match status.as_u16() {
        429 => gateway_error(status, "429001", "Too many requests"),
        500 => flow_error(
            status,
            1102,
            "Internal Error",
            "An internal error has occurred. Please try again.",
        ),
        503 => flow_error(
            status,
            1103,
            "Service Unavailable",
            "The service is temporarily unavailable. Please try again.",
        ),
        504 => flow_error(
            status,
            1104,
            "Gateway Timeout",
            "A gateway timeout has occurred. Please try again.",
        ),
        _ => flow_error(
            status,
            1100,
            status.canonical_reason().unwrap_or("Error"),
            message,
        ),
    }
}

/// Any bad bearer token (unknown, malformed or expired) is "not valid" at the gateway.
fn token_error(status: StatusCode, _message: &str) -> Response {
    gateway_error(status, "401013", "Oauth token is not valid")
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

async fn token(State(state): State<Arc<AdobeSim>>, uri: Uri, body: Bytes) -> Response {
    // The form is parsed with the query-string decoder: a urlencoded body is a query string.
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| format!("{}?{text}", uri.path()).parse::<Uri>().ok())
        .and_then(|u| Query::<HashMap<String, String>>::try_from_uri(&u).ok())
        .map(|Query(f)| f)
        .unwrap_or_default();
    // IMS refuses a client-credentials grant without the scopes of the credential.
    if form.get("scope").is_none_or(|s| s.trim().is_empty()) {
        state.sim.control.count("adobe.token");
        let body =
            json!({"error": "invalid_scope", "error_description": "scope parameter is required"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    common::token_endpoint(&state.sim, VENDOR, &form, "client_credentials")
}

// ---------------------------------------------------------------------------------------------
// Headers every Flow Service call needs

/// Checks the gateway headers and the sandbox, in the order Adobe reports them; returns the
/// sandbox name.
fn check_headers(sim: &Sim, headers: &HeaderMap) -> Result<String, Response> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403010",
            "Oauth token is missing.",
        ));
    }
    let api_key = header_value(headers, "x-api-key")
        .ok_or_else(|| gateway_error(StatusCode::FORBIDDEN, "403000", "Api Key is required"))?;
    let policy = AuthPolicy {
        invalid: StatusCode::UNAUTHORIZED,
        expired: StatusCode::UNAUTHORIZED,
        error: token_error,
    };
    common::check_bearer(sim, VENDOR, headers, policy)?;
    // Tokens are only issued to the simulator's client, so the key must be that client's id.
    if api_key != common::client_id(VENDOR) {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403003",
            "Api Key is invalid",
        ));
    }
    let org = header_value(headers, "x-gw-ims-org-id")
        .ok_or_else(|| gateway_error(StatusCode::BAD_REQUEST, "400003", "Missing header"))?;
    if org != ORG_ID {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403025",
            "Profile is not valid",
        ));
    }
    let sandbox = header_value(headers, "x-sandbox-name").ok_or_else(|| {
        flow_error(
            StatusCode::BAD_REQUEST,
            2105,
            "Header is missing",
            "The header x-sandbox-name is missing in the request. Please add the header in the request and try again.",
        )
    })?;
    if !SANDBOXES.contains(&sandbox) {
        return Err(flow_error(
            StatusCode::NOT_FOUND,
            2100,
            "Sandbox not found",
            &format!("The sandbox with the name '{sandbox}' could not be found. Please ensure that the sandbox name is correct and try again."),
        ));
    }
    Ok(sandbox.to_owned())
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Create

/// The validated body of a create request.
struct NewRun {
    flow_id: String,
    start_time: i64,
    window_start: i64,
    window_end: i64,
    delta_column: Option<String>,
}

async fn create_run(
    State(state): State<Arc<AdobeSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sim = &state.sim;
    sim.control.count("adobe.submit");
    let sandbox = match check_headers(sim, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let json_content = header_value(&headers, "content-type")
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_content {
        let body = json!({"type": "/placeholder/type/uri", "status": 400, "title": "BadRequestError", "detail": "A valid content-type must be specified"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let new = match parse_create(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    // Flows belong to a sandbox: the catalog lives in `prod`.
    let kind = match state.flows.get(new.flow_id.as_str()) {
        Some(k) if sandbox == FLOW_SANDBOX => *k,
        _ => {
            let detail = format!("Flow not found with id {}.", new.flow_id);
            return flow_error(StatusCode::BAD_REQUEST, 1430, "Invalid request", &detail);
        }
    };
    let mut runs = state.runs.lock().expect("adobe runs lock");
    if new.delta_column.is_some() {
        if kind == FlowKind::File {
            return invalid_request("params.deltaColumn is only supported for table-based sources; file-based flows do not take a delta column.");
        }
        // After the first run the flow's copy transformation owns the delta column.
        if runs.values().any(|r| r.flow_id == new.flow_id) {
            return invalid_request(&format!(
                "params.deltaColumn cannot be changed through flow run parameters: flow {} already has a delta column from its first run.",
                new.flow_id
            ));
        }
    }
    let now = sim.clock.now();
    let start = OffsetDateTime::from_unix_timestamp(new.start_time).unwrap_or(now);
    // A run scheduled for later starts its script then.
    let script = ScriptedRun::new(start.max(now), sim.control.next_run(VENDOR));
    let id = uuid::Uuid::new_v4().to_string();
    let etag = format!("\"{}\"", uuid::Uuid::new_v4());
    let run = Run {
        id: id.clone(),
        etag: etag.clone(),
        flow_id: new.flow_id,
        sandbox,
        created_client: common::client_id(VENDOR),
        created_at: now,
        start_time: new.start_time,
        window_start: new.window_start,
        window_end: new.window_end,
        script,
    };
    runs.insert(id.clone(), run);
    (
        StatusCode::CREATED,
        Json(json!({"items": [{"id": id, "etag": etag}]})),
    )
        .into_response()
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

// ---------------------------------------------------------------------------------------------
// Read

async fn get_run(
    State(state): State<Arc<AdobeSim>>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let sim = &state.sim;
    sim.control.count("adobe.status");
    let sandbox = match check_headers(sim, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let runs = state.runs.lock().expect("adobe runs lock");
    match runs.get(&run_id).filter(|r| r.sandbox == sandbox) {
        Some(run) => Json(json!({"items": [run_json(run, sim.clock.now())]})).into_response(),
        None => flow_error(
            StatusCode::NOT_FOUND,
            1101,
            "Resource not found",
            "The requested resource is not found. Error from flow provider: Resource with given id does not exist.",
        ),
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The run as Flow Service shows it at `now`.
fn run_json(run: &Run, now: OffsetDateTime) -> Value {
    let script = &run.script;
    let started_at = script.created_at + Duration::seconds_f64(script.script.queue_seconds);
    let phase = script.phase(now);
    let (status, errors) = match &phase {
        RunPhase::Queued if now.unix_timestamp() < run.start_time => ("scheduled", vec![]),
        RunPhase::Queued => ("queued", vec![]),
        RunPhase::Running | RunPhase::Publishing => ("inProgress", vec![]),
        RunPhase::Ended(Outcome::Succeed) => ("success", vec![]),
        RunPhase::Ended(Outcome::Fail { message, customer }) => {
            let code = if *customer {
                "CONNECTOR-1001-400"
            } else {
                "CONNECTOR-1001-500"
            };
            ("failed", vec![json!({"code": code, "message": message})])
        }
        RunPhase::Ended(Outcome::Reject { message }) => (
            "failed",
            vec![json!({"code": "FLOW-1100-400", "message": message})],
        ),
        RunPhase::Ended(Outcome::NeverFinish) => ("inProgress", vec![]),
        // Unreachable without a cancel route; kept so every phase has a name.
        RunPhase::Cancelled { .. } => ("cancelled", vec![]),
    };
    let mut duration = Map::new();
    if !matches!(phase, RunPhase::Queued) {
        duration.insert("startedAtUTC".into(), json!(millis(started_at)));
    }
    if let (RunPhase::Ended(_), Some(end)) = (&phase, script.ends_at()) {
        duration.insert("completedAtUTC".into(), json!(millis(end)));
    }
    let mut status_summary = json!({"status": status});
    if !errors.is_empty() {
        status_summary["errors"] = Value::Array(errors);
    }
    let mut activity_duration = duration.clone();
    activity_duration.insert(
        "extensions".into(),
        json!({"windowStart": run.window_start * 1000, "windowEnd": run.window_end * 1000}),
    );
    let updated_at = millis(now.min(script.ends_at().unwrap_or(now)).max(run.created_at));
    json!({
        "id": run.id,
        "createdAt": millis(run.created_at),
        "updatedAt": updated_at,
        "createdBy": format!("{}@AdobeID", run.created_client),
        "updatedBy": format!("{}@AdobeID", run.created_client),
        "createdClient": run.created_client,
        "updatedClient": run.created_client,
        "sandboxId": sandbox_id(&run.sandbox),
        "sandboxName": run.sandbox,
        "imsOrgId": ORG_ID,
        "flowId": run.flow_id,
        "flowSpec": {"id": "6499120c-0b15-42dc-936e-847ea3c24d72", "version": "1.0"},
        "providerRefId": format!("M-{}-adhoc-0:{}", run.flow_id, run.id),
        "etag": run.etag,
        "metrics": {
            "durationSummary": Value::Object(duration),
            "statusSummary": status_summary,
        },
        "activities": [{
            "id": "copyActivity",
            "updatedAtUTC": updated_at,
            "durationSummary": Value::Object(activity_duration),
            "statusSummary": {"status": status},
        }],
    })
}

fn sandbox_id(name: &str) -> &'static str {
    match name {
        "prod" => "1bd86660-c5da-11e9-93d4-6d5fc3a66a8e",
        _ => "e49ebb00-d0fa-11e9-b164-ed6a398c8b35",
    }
}

// ---------------------------------------------------------------------------------------------
// List

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

struct Filter {
    field: &'static str,
    op: Op,
    value: String,
}

struct ListQuery {
    filters: Vec<Filter>,
    limit: usize,
    offset: usize,
    descending: bool,
    order_field: &'static str,
    count: bool,
    /// The query minus the continuation token, repeated in the next page's link.
    carry: Vec<(String, String)>,
}

async fn list_runs(State(state): State<Arc<AdobeSim>>, headers: HeaderMap, uri: Uri) -> Response {
    let sim = &state.sim;
    sim.control.count("adobe.list");
    let sandbox = match check_headers(sim, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = match parse_list_query(&uri) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let now = sim.clock.now();
    let runs = state.runs.lock().expect("adobe runs lock");
    let mut matching: Vec<&Run> = runs
        .values()
        .filter(|r| r.sandbox == sandbox && query.filters.iter().all(|f| matches(r, f)))
        .collect();
    matching.sort_by(|a, b| {
        let key = |r: &Run| {
            (
                if query.order_field == "updatedAt" {
                    run_updated(r, now)
                } else {
                    r.created_at
                },
                r.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    if query.descending {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|r| run_json(r, now))
        .collect();
    let next = query.offset + page.len();
    let mut body = json!({"items": page});
    if next < total {
        let mut params = query.carry.clone();
        params.push(("continuationToken".into(), continuation_token(next)));
        let qs: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
            .collect();
        body["_links"] = json!({"next": {"href": format!("/runs?{}", qs.join("&"))}});
    }
    if query.count {
        body["count"] = json!(total);
    }
    Json(body).into_response()
}

fn run_updated(run: &Run, now: OffsetDateTime) -> OffsetDateTime {
    now.min(run.script.ends_at().unwrap_or(now))
        .max(run.created_at)
}

fn matches(run: &Run, f: &Filter) -> bool {
    let text = match f.field {
        "flowId" => Some(run.flow_id.as_str()),
        "id" => Some(run.id.as_str()),
        _ => None,
    };
    if let Some(t) = text {
        return (f.op == Op::Eq) == (t == f.value);
    }
    // Validated numeric when parsed.
    let wanted: i64 = f.value.parse().unwrap_or_default();
    let have = millis(run.created_at);
    match f.op {
        Op::Eq => have == wanted,
        Op::Ne => have != wanted,
        Op::Ge => have >= wanted,
        Op::Le => have <= wanted,
        Op::Gt => have > wanted,
        Op::Lt => have < wanted,
    }
}

fn query_error(code: u16, detail: &str) -> Response {
    flow_error(StatusCode::BAD_REQUEST, code, "Invalid request", detail)
}

fn parse_list_query(uri: &Uri) -> Result<ListQuery, Response> {
    let pairs = match uri.query() {
        None => Vec::new(),
        Some(_) => match Query::<Vec<(String, String)>>::try_from_uri(uri) {
            Ok(Query(p)) => p,
            Err(_) => {
                return Err(query_error(
                    1453,
                    "Invalid query value provided in query param.",
                ))
            }
        },
    };
    let mut q = ListQuery {
        filters: vec![],
        limit: DEFAULT_PAGE_SIZE,
        offset: 0,
        descending: false,
        order_field: "createdAt",
        count: false,
        carry: vec![],
    };
    let mut limit_given = false;
    for (name, value) in pairs {
        match name.as_str() {
            "property" => {
                for part in value.split(',').filter(|p| !p.is_empty()) {
                    q.filters.push(parse_filter(part)?);
                }
            }
            "limit" => {
                limit_given = true;
                q.limit = match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                    _ => {
                        return Err(query_error(
                            1452,
                            &format!("Invalid value {value} for field limit."),
                        ))
                    }
                };
            }
            "orderby" => {
                let (descending, field) = match value.strip_prefix('-') {
                    Some(f) => (true, f),
                    None => (false, value.strip_prefix('+').unwrap_or(&value)),
                };
                q.descending = descending;
                q.order_field = match field {
                    "createdAt" => "createdAt",
                    "updatedAt" => "updatedAt",
                    _ => return Err(query_error(1433, &format!("Incorrect field= #{field} passed in orderBy, example are +name, -name, name."))),
                };
            }
            "count" => {
                q.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(query_error(
                            1452,
                            &format!("Invalid value {value} for field count."),
                        ))
                    }
                };
            }
            "continuationToken" => {
                q.offset = parse_continuation_token(&value)
                    .ok_or_else(|| query_error(1453, &format!("Invalid query value continuationToken={value} provided in query param.")))?;
                continue;
            }
            other => {
                return Err(query_error(
                    1451,
                    &format!("Invalid params {other} provided in query params."),
                ))
            }
        }
        q.carry.push((name, value));
    }
    if limit_given && q.count {
        return Err(query_error(
            1401,
            "The limit and count parameters cannot be given together in the same request. Please provide either only the limit or the count parameter and try again.",
        ));
    }
    Ok(q)
}

fn parse_filter(text: &str) -> Result<Filter, Response> {
    // Two-character operators first, so `>=` is not read as `>`.
    const OPS: [(&str, Op); 6] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];
    let Some((at, token, op)) = OPS
        .iter()
        .filter_map(|(t, op)| text.find(t).map(|at| (at, *t, *op)))
        .min_by_key(|(at, t, _)| (*at, usize::MAX - t.len()))
    else {
        return Err(query_error(
            1453,
            &format!("Invalid query value {text} provided in query param."),
        ));
    };
    let (name, value) = (&text[..at], &text[at + token.len()..]);
    if value.is_empty() {
        return Err(query_error(
            1453,
            &format!("Invalid query value {text} provided in query param."),
        ));
    }
    let field = match name {
        "flowId" => "flowId",
        "id" => "id",
        "createdAt" => "createdAt",
        _ => {
            return Err(query_error(
                1449,
                &format!("Invalid field {name} in filter params."),
            ))
        }
    };
    if field != "createdAt" && !matches!(op, Op::Eq | Op::Ne) {
        return Err(query_error(
            1448,
            &format!("Operator {token} not supported for field {field}."),
        ));
    }
    if field == "createdAt" && value.parse::<i64>().is_err() {
        return Err(query_error(
            1452,
            &format!("Invalid value {value} for field createdAt."),
        ));
    }
    Ok(Filter {
        field,
        op,
        value: value.to_owned(),
    })
}

/// Opaque to clients; here the offset of the next page.
fn continuation_token(offset: usize) -> String {
    format!("ct{offset:08x}")
}

fn parse_continuation_token(token: &str) -> Option<usize> {
    let hex = token.strip_prefix("ct")?;
    (hex.len() == 8)
        .then(|| usize::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Percent-encodes a query value (filters hold `=`, `>` and `<`).
fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_operators_longest_first() {
        let f = parse_filter("createdAt>=1700000000000")
            .map_err(|_| ())
            .unwrap();
        assert_eq!(
            (f.field, f.op, f.value.as_str()),
            ("createdAt", Op::Ge, "1700000000000")
        );
        let f = parse_filter("flowId==abc").map_err(|_| ()).unwrap();
        assert_eq!((f.field, f.op), ("flowId", Op::Eq));
        assert!(parse_filter("flowId>=abc").is_err());
        assert!(parse_filter("state==enabled").is_err());
        assert!(parse_filter("flowId").is_err());
    }

    #[test]
    fn continuation_tokens_round_trip() {
        assert_eq!(parse_continuation_token(&continuation_token(40)), Some(40));
        assert_eq!(parse_continuation_token("garbage"), None);
    }
}
