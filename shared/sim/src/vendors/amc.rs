//! Amazon Marketing Cloud workflow executions, as the Amazon Ads API serves them.
//!
//! Routes (real paths): `POST /auth/o2/token` (Login with Amazon, refresh-token grant) and, under
//! `/amc/reporting/{instanceId}/workflowExecutions`: `POST` (create), `GET` (list, paged with
//! `nextToken`), `GET /{id}` (status), `PUT /{id}` (cancel with `{"status":"CANCELLED"}`) and
//! `GET /{id}/downloadUrls`.
//!
//! Every call needs a bearer token (missing or unknown → 401, expired → 403, as the Ads docs say
//! for expired credentials) and the `Amazon-Advertising-API-ClientId` (matching the token's
//! client), `-AdvertiserId` and `-MarketplaceId` headers (400 when missing). Bodies must be
//! JSON (`application/vnd.amcworkflowexecutions.v1+json` or `application/json`, else 415); an
//! `Accept` that allows neither is 406. Errors use the spec's `{"code": "<status>", "details":
//! "…"}`.
//!
//! Create validation follows `CreateWorkflowExecutionRequest` (plus `ignoreDataGaps`, which the
//! Ads guide documents and the spec omits): unknown fields, wrong JSON types, bad enum values,
//! `workflowId` together with `workflow`, neither of them, an `sqlQuery` with line breaks or tabs,
//! EXPLICIT windows without both bounds, bounds not in `yyyy-MM-dd'T'HH:mm:ss`, an end not after
//! the start, non-string `parameterValues` and timeouts outside 900–86400 s are all 400. An
//! instance with 10 PENDING + RUNNING executions refuses another with 429 (the spec's
//! "rate-limited" status; the docs give no other code for AMC's concurrency limit).
//!
//! Answers are flat execution objects as the Ads guide shows them (the spec's
//! `workflowExecution` wrapper is not what the service sends). States: PENDING (queued),
//! RUNNING, PUBLISHING (the script's `publish_seconds`), then SUCCEEDED, FAILED or REJECTED with
//! `statusReason`; CANCELLED from the moment a cancel is accepted. `downloadUrls` answers 400
//! "Execution with ID … is unavailable for download" until the execution has SUCCEEDED.
//! Limitations: window time zones other than UTC are echoed but not converted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use runbridge_core::VendorKind;
use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::common::{self, AuthPolicy};
use super::SimVendor;
use crate::{Outcome, RunPhase, ScriptedRun, Sim};

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Amc,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Amc;
const MEDIA_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";
/// PENDING + RUNNING executions one instance may have.
const MAX_ACTIVE_PER_INSTANCE: usize = 10;
/// Default and largest page of the list operation.
const MAX_PAGE: usize = 100;

const AMC_TIME: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::FORBIDDEN,
    error,
};

/// AMC's error response.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"code": status.as_u16().to_string(), "details": message});
    (
        status,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// A refusal on its way to becoming a response (kept small: a `Response` is not).
enum ApiError {
    /// AMC's `{code, details}` answer.
    Amc { status: StatusCode, details: String },
    /// An answer already built by the shared checks.
    Built(Box<Response>),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Amc { status, details } => error(status, &details),
            Self::Built(response) => *response,
        }
    }
}

fn reject(status: StatusCode, details: impl Into<String>) -> ApiError {
    ApiError::Amc {
        status,
        details: details.into(),
    }
}

fn bad_request(details: impl Into<String>) -> ApiError {
    reject(StatusCode::BAD_REQUEST, details)
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), base.to_owned()),
        ("token_url".into(), format!("{base}/auth/o2/token")),
        ("client_id".into(), common::client_id(VENDOR)),
        ("client_secret".into(), common::client_secret(VENDOR)),
        ("refresh_token".into(), common::refresh_token(VENDOR)),
    ]
}

/// One simulated execution.
#[derive(Debug, Clone)]
struct Execution {
    id: String,
    instance_id: String,
    run: ScriptedRun,
    /// The saved workflow's id, or a `transient_…` id for an ad-hoc query.
    workflow_id: String,
    sql_query: Option<String>,
    /// UTC window AMC resolved (None for `ALL`).
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    time_zone: String,
    parameter_values: Map<String, Value>,
    ignore_data_gaps: bool,
    disable_aggregation_controls: bool,
    timeout_seconds: i64,
}

impl Execution {
    fn status(&self, now: OffsetDateTime) -> (&'static str, Option<String>) {
        match self.run.phase(now) {
            RunPhase::Queued => ("PENDING", None),
            RunPhase::Running => ("RUNNING", None),
            RunPhase::Publishing => ("PUBLISHING", None),
            RunPhase::Ended(Outcome::Succeed) => ("SUCCEEDED", None),
            RunPhase::Ended(Outcome::Fail { message, .. }) => ("FAILED", Some(message)),
            RunPhase::Ended(Outcome::Reject { message }) => ("REJECTED", Some(message)),
            // A script that never finishes stays RUNNING (phase() never reports it ended).
            RunPhase::Ended(Outcome::NeverFinish) => ("RUNNING", None),
            // AMC shows CANCELLED as soon as the update is accepted.
            RunPhase::Cancelled { .. } => ("CANCELLED", None),
        }
    }

    fn is_active(&self, now: OffsetDateTime) -> bool {
        matches!(self.run.phase(now), RunPhase::Queued | RunPhase::Running)
    }

    /// When the current status began.
    fn last_updated(&self, now: OffsetDateTime) -> OffsetDateTime {
        let s = &self.run.script;
        let at = |secs: f64| self.run.created_at + Duration::seconds_f64(secs);
        match self.run.phase(now) {
            RunPhase::Queued => self.run.created_at,
            RunPhase::Running => at(s.queue_seconds),
            RunPhase::Publishing => at(s.queue_seconds + s.run_seconds),
            RunPhase::Ended(_) => at(s.queue_seconds + s.run_seconds + s.publish_seconds),
            RunPhase::Cancelled { .. } => self.run.cancelled_at.unwrap_or(now),
        }
    }

    /// The execution as AMC shows it.
    fn view(&self, now: OffsetDateTime, include_workflow: bool) -> Value {
        let (status, reason) = self.status(now);
        let mut v = json!({
            "workflowExecutionId": self.id,
            "workflowId": self.workflow_id,
            "status": status,
            "createTime": utc_z(self.run.created_at),
            "lastUpdatedTime": utc_z(self.last_updated(now)),
            "expireTime": utc_z(self.run.created_at + Duration::days(1)),
            "executionCategory": "AD_HOC",
            "dataGaps": [],
            "ignoreDataGaps": self.ignore_data_gaps,
            "disableAggregationControls": self.disable_aggregation_controls,
            "parameterValues": self.parameter_values,
            "timeWindowTimeZoneOriginal": self.time_zone,
            "workflowExecutionTimeoutSeconds": self.timeout_seconds,
            "outputS3URI": format!("s3://amc-{}/workflow={}/schedule=adhoc/", self.instance_id, self.workflow_id),
        });
        let obj = v.as_object_mut().expect("a json! object");
        if let Some((start, end)) = self.window {
            obj.insert("timeWindowStart".into(), utc_z(start).into());
            obj.insert("timeWindowEnd".into(), utc_z(end).into());
            obj.insert("timeWindowStartOriginal".into(), amc_time(start).into());
            obj.insert("timeWindowEndOriginal".into(), amc_time(end).into());
        }
        if let Some(reason) = reason {
            obj.insert("statusReason".into(), reason.into());
        }
        if include_workflow {
            if let Some(sql) = &self.sql_query {
                obj.insert("sqlQuery".into(), sql.clone().into());
            }
        }
        v
    }
}

fn amc_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(AMC_TIME)
        .expect("fixed format")
}

fn utc_z(t: OffsetDateTime) -> String {
    format!("{}Z", amc_time(t))
}

fn parse_amc_time(field: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    PrimitiveDateTime::parse(value, AMC_TIME).map(PrimitiveDateTime::assume_utc).map_err(|_| {
        bad_request(format!("Invalid value for field \"{field}\": required format is yyyy-MM-dd'T'HH:mm:ss (e.g. 2019-08-14T16:12:34)"))
    })
}

struct AmcState {
    sim: Arc<Sim>,
    executions: Mutex<HashMap<String, Execution>>,
}

type Shared = State<Arc<AmcState>>;

fn router(sim: Arc<Sim>) -> Router {
    let state = Arc::new(AmcState {
        sim,
        executions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/auth/o2/token", post(token))
        .route(
            "/amc/reporting/{instance}/workflowExecutions",
            post(create).get(list),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}",
            get(status).put(update),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}/downloadUrls",
            get(download_urls),
        )
        .with_state(state)
}

async fn token(State(state): Shared, RawForm(form): RawForm) -> Response {
    // A form body is URL-encoded exactly like a query string.
    let fields = std::str::from_utf8(&form)
        .ok()
        .and_then(|f| format!("/?{f}").parse::<Uri>().ok())
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok())
        .map(|Query(q)| q)
        .unwrap_or_default();
    common::token_endpoint(&state.sim, VENDOR, &fields, "refresh_token")
}

/// Auth and the headers every call needs.
fn check_headers(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    let built = |r: Response| ApiError::Built(Box::new(r));
    common::check_bearer(sim, VENDOR, headers, AUTH).map_err(built)?;
    let client_id =
        common::require_header(headers, "Amazon-Advertising-API-ClientId", error).map_err(built)?;
    if client_id != common::client_id(VENDOR) {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            "Amazon-Advertising-API-ClientId does not match the access token's client",
        ));
    }
    common::require_header(headers, "Amazon-Advertising-API-AdvertiserId", error).map_err(built)?;
    common::require_header(headers, "Amazon-Advertising-API-MarketplaceId", error)
        .map_err(built)?;
    if let Some(accept) = headers.get(header::ACCEPT) {
        let accept = accept.to_str().unwrap_or_default();
        let acceptable = accept
            .split(',')
            .map(|m| m.split(';').next().unwrap_or_default().trim())
            .any(|m| matches!(m, MEDIA_TYPE | "application/json" | "application/*" | "*/*"));
        if !acceptable {
            return Err(reject(
                StatusCode::NOT_ACCEPTABLE,
                format!("Cannot produce {accept}; use {MEDIA_TYPE}"),
            ));
        }
    }
    Ok(())
}

/// Parses a JSON object body after checking its media type.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media != MEDIA_TYPE && media != "application/json" {
        return Err(reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Content-Type `{content_type}`; send {MEDIA_TYPE}"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("Request body must be a JSON object")),
        Err(e) => Err(bad_request(format!("Malformed request body: {e}"))),
    }
}

/// JSON types the create request uses.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Str,
    Int,
    Object,
    StrArray,
    ObjArray,
}

fn check_type(field: &str, value: &Value, kind: Kind) -> Result<(), ApiError> {
    let (ok, expected) = match kind {
        Kind::Bool => (value.is_boolean(), "a boolean"),
        Kind::Str => (value.is_string(), "a string"),
        Kind::Int => (value.is_i64() || value.is_u64(), "an integer"),
        Kind::Object => (value.is_object(), "an object"),
        Kind::StrArray => (
            value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "an array of strings",
        ),
        Kind::ObjArray => (
            value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_object)),
            "an array of objects",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(bad_request(format!(
            "Invalid type for field \"{field}\": expected {expected}"
        )))
    }
}

/// Rejects fields not in `known` and values of the wrong type.
fn check_fields(
    prefix: &str,
    map: &Map<String, Value>,
    known: &[(&str, Kind)],
) -> Result<(), ApiError> {
    for (name, value) in map {
        let path = format!("{prefix}{name}");
        let Some((_, kind)) = known.iter().find(|(k, _)| k == name) else {
            return Err(bad_request(format!("Unrecognized field \"{path}\"")));
        };
        if !value.is_null() {
            check_type(&path, value, *kind)?;
        }
    }
    Ok(())
}

fn check_enum(field: &str, value: Option<&Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match value.and_then(Value::as_str) {
        Some(v) if !allowed.contains(&v) => Err(bad_request(format!(
            "Invalid value for field \"{field}\": `{v}` is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
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
    sql_query: Option<String>,
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    time_zone: String,
    parameter_values: Map<String, Value>,
    ignore_data_gaps: bool,
    disable_aggregation_controls: bool,
    timeout_seconds: i64,
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
        // The bounds are only used with EXPLICIT; AMC resolves the others from the create time.
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
    })
}

/// The UTC window a predefined window type means at `now`.
fn resolve_window(
    window_type: &str,
    now: OffsetDateTime,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let today = now.to_offset(UtcOffset::UTC).date().midnight().assume_utc();
    let first_of_month = today.replace_day(1).expect("day 1 exists");
    match window_type {
        "MOST_RECENT_DAY" => Some((today - Duration::days(1), today)),
        "MOST_RECENT_WEEK" => Some((today - Duration::days(7), today)),
        "CURRENT_MONTH" => Some((first_of_month, today)),
        "PREVIOUS_MONTH" => {
            let prev = (first_of_month - Duration::days(1))
                .replace_day(1)
                .expect("day 1 exists");
            Some((prev, first_of_month))
        }
        _ => None,
    }
}

async fn create(
    State(state): Shared,
    Path(instance): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sim = &state.sim;
    sim.control.count("amc.create");
    if let Err(r) = check_headers(sim, &headers) {
        return r.into_response();
    }
    let now = sim.clock.now();
    let request = match json_object(&headers, &body).and_then(|b| validate_create(&b, now)) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let mut executions = state.executions.lock().expect("amc lock");
    let active = executions
        .values()
        .filter(|e| e.instance_id == instance && e.is_active(now))
        .count();
    if active >= MAX_ACTIVE_PER_INSTANCE {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Instance {instance} already has {active} PENDING or RUNNING workflow executions; \
                 at most {MAX_ACTIVE_PER_INSTANCE} may run concurrently"
            ),
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    let execution = Execution {
        id: id.clone(),
        instance_id: instance,
        run: ScriptedRun::new(now, sim.control.next_run(VENDOR)),
        workflow_id: request
            .workflow_id
            .unwrap_or_else(|| format!("transient_{}", uuid::Uuid::new_v4())),
        sql_query: request.sql_query,
        window: request.window,
        time_zone: request.time_zone,
        parameter_values: request.parameter_values,
        ignore_data_gaps: request.ignore_data_gaps,
        disable_aggregation_controls: request.disable_aggregation_controls,
        timeout_seconds: request.timeout_seconds,
    };
    let view = execution.view(now, false);
    executions.insert(id, execution);
    ok(view)
}

/// The execution `id` of `instance`, or AMC's 404.
fn find(state: &AmcState, instance: &str, id: &str) -> Result<Execution, ApiError> {
    let executions = state.executions.lock().expect("amc lock");
    executions
        .get(id)
        .filter(|e| e.instance_id == instance)
        .cloned()
        .ok_or_else(|| {
            reject(
                StatusCode::NOT_FOUND,
                format!("Workflow execution with ID {id} not found"),
            )
        })
}

fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(bad_request(format!(
            "Invalid value for parameter \"{name}\": `{v}` is not true or false"
        ))),
    }
}

async fn status(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.sim.control.count("amc.status");
    if let Err(r) = check_headers(&state.sim, &headers) {
        return r.into_response();
    }
    let include_workflow = match flag(&query, "includeWorkflow") {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match find(&state, &instance, &id) {
        Ok(e) => ok(e.view(state.sim.clock.now(), include_workflow)),
        Err(r) => r.into_response(),
    }
}

async fn update(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sim = &state.sim;
    sim.control.count("amc.cancel");
    if let Err(r) = check_headers(sim, &headers) {
        return r.into_response();
    }
    let body = match json_object(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
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
        return bad_request(format!("Unrecognized field \"{name}\"")).into_response();
    }
    if let Err(r) = check_enum(
        "status",
        body.get("status"),
        &["CANCELLED", "FAILED", "PENDING", "RUNNING", "SUCCEEDED"],
    ) {
        return r.into_response();
    }
    let wanted = match body.get("status") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return bad_request("Invalid type for field \"status\": expected a string")
                .into_response()
        }
    };
    let now = sim.clock.now();
    let mut executions = state.executions.lock().expect("amc lock");
    let Some(execution) = executions
        .get_mut(&id)
        .filter(|e| e.instance_id == instance)
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Workflow execution with ID {id} not found"),
        );
    };
    match wanted {
        None => ok(json!({})),
        Some("CANCELLED") => {
            if !execution.is_active(now) {
                let (current, _) = execution.status(now);
                return bad_request(format!(
                    "Workflow execution {id} cannot be cancelled: its status is {current}; only PENDING or RUNNING executions can be cancelled"
                ))
                .into_response();
            }
            execution.run.cancelled_at = Some(now);
            ok(json!({}))
        }
        Some(other) => {
            bad_request(format!("Invalid value for field \"status\": an execution can only be updated to CANCELLED, not {other}"))
                .into_response()
        }
    }
}

async fn download_urls(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let sim = &state.sim;
    sim.control.count("amc.download_urls");
    if let Err(r) = check_headers(sim, &headers) {
        return r.into_response();
    }
    let execution = match find(&state, &instance, &id) {
        Ok(e) => e,
        Err(r) => return r.into_response(),
    };
    if execution.run.phase(sim.clock.now()) != RunPhase::Ended(Outcome::Succeed) {
        return bad_request(format!(
            "Execution with ID {id} is unavailable for download"
        ))
        .into_response();
    }
    let script = &execution.run.script;
    let urls: Vec<String> = (0..script.files)
        .map(|part| {
            let name = format!("{}-part-{part:05}.csv", execution.workflow_id);
            sim.download_url(VENDOR, &id, &name, script.rows, Sim::seed_for(&id, part))
        })
        .collect();
    ok(json!({"downloadUrls": urls, "metadataDownloadUrls": []}))
}

/// A list cursor: the creation time and id of the last execution on the previous page.
fn encode_cursor(e: &Execution) -> String {
    hex::encode(format!(
        "{}|{}",
        e.run.created_at.unix_timestamp_nanos(),
        e.id
    ))
}

fn decode_cursor(token: &str) -> Option<(i128, String)> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (nanos, id) = text.split_once('|')?;
    Some((nanos.parse().ok()?, id.to_owned()))
}

async fn list(
    State(state): Shared,
    Path(instance): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let sim = &state.sim;
    sim.control.count("amc.list");
    if let Err(r) = check_headers(sim, &headers) {
        return r.into_response();
    }
    match list_page(&state, &instance, &query) {
        Ok(v) => ok(v),
        Err(r) => r.into_response(),
    }
}

fn list_page(
    state: &AmcState,
    instance: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let min = query
        .get("minCreationTime")
        .map(|v| parse_amc_time("minCreationTime", v))
        .transpose()?;
    let max = query
        .get("maxCreationTime")
        .map(|v| parse_amc_time("maxCreationTime", v))
        .transpose()?;
    let workflow_id = query.get("workflowId");
    if min.is_none() && workflow_id.is_none() {
        return Err(bad_request(
            "Either parameter \"minCreationTime\" or parameter \"workflowId\" is required",
        ));
    }
    if query.get("timeZone").is_some_and(|z| z != "UTC") {
        // Creation-time filters in other zones would need a zone database the simulator lacks.
        return Err(bad_request(
            "Invalid value for parameter \"timeZone\": the simulator supports UTC only",
        ));
    }
    let limit = match query.get("limit") {
        None => MAX_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(bad_request(format!(
                "Invalid value for parameter \"limit\": must be an integer from 1 to {MAX_PAGE}"
            )))
            }
        },
    };
    let ascending = flag(query, "sortAscending")?;
    let include_cancelled = flag(query, "includeCancelled")?;
    let include_workflow = flag(query, "includeWorkflow")?;
    let cursor = match query.get("nextToken") {
        None => None,
        Some(t) => Some(
            decode_cursor(t)
                .ok_or_else(|| bad_request("Invalid value for parameter \"nextToken\""))?,
        ),
    };
    let now = state.sim.clock.now();
    let executions = state.executions.lock().expect("amc lock");
    let mut selected: Vec<&Execution> = executions
        .values()
        .filter(|e| e.instance_id == instance)
        .filter(|e| min.is_none_or(|m| e.run.created_at >= m))
        .filter(|e| max.is_none_or(|m| e.run.created_at <= m))
        .filter(|e| workflow_id.is_none_or(|w| &e.workflow_id == w))
        .filter(|e| include_cancelled || !matches!(e.run.phase(now), RunPhase::Cancelled { .. }))
        .collect();
    let key = |e: &Execution| (e.run.created_at.unix_timestamp_nanos(), e.id.clone());
    selected.sort_by_key(|e| key(e));
    if !ascending {
        selected.reverse();
    }
    if let Some(cursor) = cursor {
        selected.retain(|e| {
            if ascending {
                key(e) > cursor
            } else {
                key(e) < cursor
            }
        });
    }
    let page: Vec<&Execution> = selected.iter().take(limit).copied().collect();
    let mut body = json!({"executions": page.iter().map(|e| e.view(now, include_workflow)).collect::<Vec<_>>()});
    if selected.len() > limit {
        if let Some(last) = page.last() {
            body["nextToken"] = encode_cursor(last).into();
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let e = Execution {
            id: "abc".into(),
            instance_id: "i".into(),
            run: ScriptedRun::new(
                OffsetDateTime::UNIX_EPOCH + Duration::seconds(5),
                crate::RunScript::default(),
            ),
            workflow_id: "w".into(),
            sql_query: None,
            window: None,
            time_zone: "UTC".into(),
            parameter_values: Map::new(),
            ignore_data_gaps: false,
            disable_aggregation_controls: false,
            timeout_seconds: 21_600,
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&e)),
            Some((5_000_000_000, "abc".into()))
        );
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("no separator")), None);
    }

    #[test]
    fn predefined_windows_resolve_in_utc() {
        let now = time::macros::datetime!(2026-01-15 10:00 UTC);
        let (s, e) = resolve_window("PREVIOUS_MONTH", now).unwrap();
        assert_eq!(
            (amc_time(s).as_str(), amc_time(e).as_str()),
            ("2025-12-01T00:00:00", "2026-01-01T00:00:00")
        );
        let (s, e) = resolve_window("MOST_RECENT_DAY", now).unwrap();
        assert_eq!(
            (amc_time(s).as_str(), amc_time(e).as_str()),
            ("2026-01-14T00:00:00", "2026-01-15T00:00:00")
        );
        assert_eq!(resolve_window("ALL", now), None);
    }
}
