//! CARTO SQL API v3 simulator: asynchronous SQL jobs, the synchronous query endpoint as CSV,
//! and CARTO's OAuth token endpoint.
//!
//! Routes (real paths): `POST /oauth/token` (auth.carto.com; client credentials with
//! `audience=carto-cloud-native-api`), `POST /v3/sql/{connection}/job`,
//! `GET|DELETE /v3/sql/{connection}/job/{jobId}`, `GET /v3/sql/{connection}/query?q=…&format=csv`.
//! Every route but the token endpoint needs a bearer token (missing, unknown or expired → 401).
//! Errors are `{"error": "<message>", "status": <code>}`.
//!
//! Jobs go `PENDING` → `RUNNING` → `DONE` on the run script. A failure is `DONE` with
//! `status.errorResult {reason, location, message}` — the shape CARTO's workflow doc shows for a
//! failed execution — with reason `invalidQuery` for a customer error and `backendError` for a
//! platform one; a rejected run (`Outcome::Reject`) is `FAILED` with reason `invalid`. A cancelled
//! job reads `RUNNING` while it stops, then `CANCELED`.
//!
//! Request rules: the body is a JSON object with only `query` (non-empty string),
//! `queryParameters` (object of non-null values named like BigQuery parameters) and `metadata`
//! (object, echoed back); anything else is a 400. A `@name` in the query that `queryParameters`
//! lacks is not a 400: like the doc's coercion error it is found by the warehouse, so the job
//! ends `DONE` with `errorResult` `invalidQuery` "Query parameter 'name' not found at [l:c]". The
//! synchronous query endpoint, which has no job to carry the error, answers that as a 400.
//!
//! The query endpoint serves the rows the latest cleanly finished job on the connection wrote:
//! `csvgen` rows of that job's script, seed [`Sim::seed_for`]`(jobId, 0)`. Only `format=csv` is
//! simulated. `GET /v3/sql/jobs` is not simulated: its response shape is not documented.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbridge_core::VendorKind;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::common::{self, AuthPolicy};
use super::SimVendor;
use crate::{csvgen, Outcome, RunPhase, ScriptedRun, Sim};

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Carto,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Carto;
/// The audience CARTO's token endpoint issues API tokens for.
pub const AUDIENCE: &str = "carto-cloud-native-api";
const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::UNAUTHORIZED,
    error,
};
/// Fields a job request may carry.
const JOB_FIELDS: [&str; 3] = ["query", "queryParameters", "metadata"];

struct CartoSim {
    sim: Arc<Sim>,
    jobs: Mutex<HashMap<String, Job>>,
}

#[derive(Clone)]
struct Job {
    id: String,
    connection: String,
    query: String,
    metadata: Value,
    run: ScriptedRun,
}

fn router(sim: Arc<Sim>) -> Router {
    let state = Arc::new(CartoSim {
        sim,
        jobs: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/oauth/token", post(token))
        .route("/v3/sql/{connection}/job", post(create_job))
        .route(
            "/v3/sql/{connection}/job/{job_id}",
            get(get_job).delete(cancel_job),
        )
        .route("/v3/sql/{connection}/query", get(query))
        .with_state(state)
}

/// CARTO's error body.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}

fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), base.to_owned()),
        ("token_url".into(), format!("{base}/oauth/token")),
        ("client_id".into(), common::client_id(VENDOR)),
        ("client_secret".into(), common::client_secret(VENDOR)),
    ]
}

/// `POST /oauth/token`: Auth0's client-credentials grant, which needs CARTO's audience.
async fn token(State(state): State<Arc<CartoSim>>, headers: HeaderMap, body: Bytes) -> Response {
    let oauth_error = |status: StatusCode, code: &str, description: &str| {
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response()
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    // A form body is a query string; parsing it as one reuses axum's decoder.
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| format!("/?{text}").parse::<Uri>().ok())
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok());
    let (true, Some(Query(form))) = (is_form, form) else {
        state.sim.control.count("carto.token");
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Expected an application/x-www-form-urlencoded body",
        );
    };
    match form.get("audience").map(String::as_str) {
        Some(AUDIENCE) => common::token_endpoint(&state.sim, VENDOR, &form, "client_credentials"),
        Some(other) => {
            state.sim.control.count("carto.token");
            oauth_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                &format!("Service not found: {other}"),
            )
        }
        None => {
            state.sim.control.count("carto.token");
            oauth_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "No audience parameter was provided, and no default audience has been configured",
            )
        }
    }
}

/// `POST /v3/sql/{connection}/job`.
async fn create_job(
    State(state): State<Arc<CartoSim>>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sim = &state.sim;
    sim.control.count("carto.submit");
    if let Err(denied) = common::check_bearer(sim, VENDOR, &headers, AUTH) {
        return denied;
    }
    let request = match parse_job_request(&headers, &body) {
        Ok(r) => r,
        Err(message) => return bad_request(message),
    };
    let now = sim.clock.now();
    let mut script = sim.control.next_run(VENDOR);
    if let Some(missing) = missing_parameters(&request.query, &request.parameters)
        .into_iter()
        .next()
    {
        // The warehouse rejects the statement as soon as it plans it.
        script.outcome = Outcome::Fail {
            message: missing.message(),
            customer: true,
        };
        script.run_seconds = script.run_seconds.min(1.0);
    }
    let id = format!("job_{}", &uuid::Uuid::new_v4().simple().to_string()[..28]);
    let job = Job {
        id: id.clone(),
        connection,
        query: request.query,
        metadata: Value::Object(request.metadata),
        run: ScriptedRun::new(now, script),
    };
    let mut answer = describe(&job, now);
    if let Some(object) = answer.as_object_mut() {
        // The create answer echoes the caller's token, as the doc's example shows.
        object.remove("status");
        if let Some(token) = crate::tokens::bearer(headers.get(header::AUTHORIZATION)) {
            object.insert("token".into(), Value::String(token.to_owned()));
        }
    }
    state.jobs.lock().expect("jobs lock").insert(id, job);
    (StatusCode::OK, Json(answer)).into_response()
}

struct JobRequest {
    query: String,
    parameters: Map<String, Value>,
    metadata: Map<String, Value>,
}

/// The request, or why it is a 400.
fn parse_job_request(headers: &HeaderMap, body: &[u8]) -> Result<JobRequest, String> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return Err(String::from("Content-Type must be application/json"));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(String::from("Request body must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|k| !JOB_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "Unknown field '{unknown}'; allowed: query, queryParameters, metadata"
        ));
    }
    let query = match fields.remove("query") {
        None | Some(Value::Null) => return Err(String::from("'query' is required")),
        Some(Value::String(q)) if q.trim().is_empty() => {
            return Err(String::from("'query' must not be empty"))
        }
        Some(Value::String(q)) => q,
        Some(_) => return Err(String::from("'query' must be a string")),
    };
    let parameters = match fields.remove("queryParameters") {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(String::from("'queryParameters' must be an object")),
    };
    check_parameters(&parameters)?;
    let metadata = match fields.remove("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(String::from("'metadata' must be an object")),
    };
    Ok(JobRequest {
        query,
        parameters,
        metadata,
    })
}

/// BigQuery parameter names: a letter or `_`, then letters, digits or `_`; values must have a
/// type, so `null` is refused.
fn check_parameters(parameters: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in parameters {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("Invalid query parameter name '{name}'"));
        }
        if value.is_null() {
            return Err(format!(
                "Query parameter '{name}' has no value; its type cannot be inferred from null"
            ));
        }
    }
    Ok(())
}

/// A `@name` the query uses but `queryParameters` does not define.
struct MissingParameter {
    name: String,
    line: usize,
    column: usize,
}

impl MissingParameter {
    /// BigQuery's words for it.
    fn message(&self) -> String {
        format!(
            "Query error: Query parameter '{}' not found at [{}:{}]",
            self.name, self.line, self.column
        )
    }
}

/// The `@name` references of `query` (outside strings, quoted identifiers and comments; `@@`
/// system variables excluded) missing from `parameters`, in order.
fn missing_parameters(query: &str, parameters: &Map<String, Value>) -> Vec<MissingParameter> {
    let chars: Vec<char> = query.chars().collect();
    let (mut line, mut column) = (1, 1);
    let mut missing: Vec<MissingParameter> = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment: Option<&str> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let mut step = 1;
        match (quote, comment) {
            (Some(q), _) => {
                if c == '\\' {
                    step = 2;
                } else if c == q {
                    quote = None;
                }
            }
            (_, Some("line")) => {
                if c == '\n' {
                    comment = None;
                }
            }
            (_, Some(_)) => {
                if c == '*' && next == Some('/') {
                    comment = None;
                    step = 2;
                }
            }
            (None, None) => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '#' => comment = Some("line"),
                '-' if next == Some('-') => comment = Some("line"),
                '/' if next == Some('*') => {
                    comment = Some("block");
                    step = 2;
                }
                '@' if next == Some('@') => step = 2,
                '@' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    let known =
                        parameters.contains_key(&name) || missing.iter().any(|m| m.name == name);
                    if !name.is_empty() && !known {
                        missing.push(MissingParameter {
                            name: name.clone(),
                            line,
                            column,
                        });
                    }
                    step = 1 + name.chars().count();
                }
                _ => {}
            },
        }
        for &skipped in &chars[i..(i + step).min(chars.len())] {
            if skipped == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        i += step;
    }
    missing
}

/// The job's vendor state and `errorResult` at `now`.
fn job_status(job: &Job, now: OffsetDateTime) -> Value {
    let (state, error_result) = match job.run.phase(now) {
        RunPhase::Queued => ("PENDING", None),
        RunPhase::Running | RunPhase::Ended(Outcome::NeverFinish) => ("RUNNING", None),
        RunPhase::Cancelled { stopping: true } => ("RUNNING", None),
        RunPhase::Cancelled { stopping: false } => ("CANCELED", None),
        RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed) => ("DONE", None),
        RunPhase::Ended(Outcome::Fail {
            message,
            customer: true,
        }) => (
            "DONE",
            Some(json!({"reason": "invalidQuery", "location": "query", "message": message})),
        ),
        RunPhase::Ended(Outcome::Fail {
            message,
            customer: false,
        }) => (
            "DONE",
            Some(json!({"reason": "backendError", "message": message})),
        ),
        RunPhase::Ended(Outcome::Reject { message }) => (
            "FAILED",
            Some(json!({"reason": "invalid", "message": message})),
        ),
    };
    let mut status = json!({ "state": state });
    if let Some(e) = error_result {
        status["errorResult"] = e;
    }
    status
}

/// The job document CARTO answers.
fn describe(job: &Job, now: OffsetDateTime) -> Value {
    json!({
        "externalId": job.id,
        "accountId": "ac_sim00001",
        "userId": "auth0|sim-carto-user",
        "connectionId": connection_id(&job.connection),
        "metadata": job.metadata,
        "createdAt": timestamp(job.run.created_at),
        "query": job.query,
        "jobMetadata": {"location": "US"},
        "status": job_status(job, now),
    })
}

/// A stable UUID-shaped id per connection name.
fn connection_id(connection: &str) -> String {
    let h = hex::encode(&Sha256::digest(connection.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `2023-10-04T16:10:35.732Z`, as in the doc.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// CARTO's 404 for a job id unknown on a connection.
fn job_not_found(job_id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Job {job_id} not found"))
}

/// `GET /v3/sql/{connection}/job/{jobId}`.
async fn get_job(
    State(state): State<Arc<CartoSim>>,
    Path((connection, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    state.sim.control.count("carto.status");
    if let Err(denied) = common::check_bearer(&state.sim, VENDOR, &headers, AUTH) {
        return denied;
    }
    let jobs = state.jobs.lock().expect("jobs lock");
    match jobs.get(&job_id).filter(|job| job.connection == connection) {
        Some(job) => Json(describe(job, state.sim.clock.now())).into_response(),
        None => job_not_found(&job_id),
    }
}

/// `DELETE /v3/sql/{connection}/job/{jobId}`: cancels a pending or running job.
async fn cancel_job(
    State(state): State<Arc<CartoSim>>,
    Path((connection, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    state.sim.control.count("carto.cancel");
    if let Err(denied) = common::check_bearer(&state.sim, VENDOR, &headers, AUTH) {
        return denied;
    }
    let now = state.sim.clock.now();
    let mut jobs = state.jobs.lock().expect("jobs lock");
    let Some(job) = jobs
        .get_mut(&job_id)
        .filter(|job| job.connection == connection)
    else {
        return job_not_found(&job_id);
    };
    if !matches!(job.run.phase(now), RunPhase::Queued | RunPhase::Running) {
        let vendor_state = job_status(job, now)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return bad_request(format!(
            "Job {job_id} is {vendor_state}; only PENDING or RUNNING jobs can be canceled"
        ));
    }
    job.run.cancelled_at = Some(now);
    Json(describe(job, now)).into_response()
}

/// `GET /v3/sql/{connection}/query?q=…&format=csv[&queryParameters=…]`.
async fn query(
    State(state): State<Arc<CartoSim>>,
    Path(connection): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let sim = &state.sim;
    sim.control.count("carto.export");
    if let Err(denied) = common::check_bearer(sim, VENDOR, &headers, AUTH) {
        return denied;
    }
    let q = match params.get("q").map(|q| q.trim()) {
        Some(q) if !q.is_empty() => q,
        _ => return bad_request("'q' is required"),
    };
    match params.get("format").map(String::as_str) {
        Some("csv") => {}
        other => {
            return bad_request(format!(
                "format {other:?} is not simulated; the simulator serves format=csv only"
            ))
        }
    }
    let parameters = match params
        .get("queryParameters")
        .map(|p| serde_json::from_str::<Value>(p))
    {
        None => Map::new(),
        Some(Ok(Value::Object(p))) => p,
        Some(_) => return bad_request("'queryParameters' must be a JSON object"),
    };
    if let Err(message) = check_parameters(&parameters) {
        return bad_request(message);
    }
    if let Some(missing) = missing_parameters(q, &parameters).into_iter().next() {
        return bad_request(missing.message());
    }
    let now = sim.clock.now();
    let source = state
        .jobs
        .lock()
        .expect("jobs lock")
        .values()
        .filter(|job| job.connection == connection)
        .filter(|job| {
            matches!(
                job.run.phase(now),
                RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed)
            )
        })
        .max_by_key(|job| job.run.created_at)
        .map(|job| (job.id.clone(), job.run.script.rows));
    let Some((job_id, rows)) = source else {
        return bad_request(
            "Query error: Not found: no job on this connection has finished writing its table",
        );
    };
    let seed = Sim::seed_for(&job_id, 0);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::CONTENT_LENGTH, csvgen::size(rows))
        .body(Body::from_stream(csvgen::stream(seed, rows)))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[&str]) -> Map<String, Value> {
        names.iter().map(|n| ((*n).to_owned(), json!(1))).collect()
    }

    #[test]
    fn finds_missing_parameters_outside_quotes_and_comments() {
        let q = "CALL `p.d.proc`(@a,@b) -- @c\n/* @d */ SELECT '@e', @@version, @f";
        let missing = missing_parameters(q, &params(&["a"]));
        let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["b", "f"]);
        assert_eq!((missing[0].line, missing[0].column), (1, 20));
        assert_eq!(missing[1].line, 2);
        assert!(missing_parameters(q, &params(&["a", "b", "f"])).is_empty());
    }

    #[test]
    fn connection_ids_are_stable_uuids() {
        assert_eq!(connection_id("x"), connection_id("x"));
        assert_eq!(connection_id("x").len(), 36);
    }
}
