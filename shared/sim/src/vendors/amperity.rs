//! Amperity workflow runs (API version `2024-04-01`), as the control-plane OpenAPI spec and the
//! endpoint pages describe them.
//!
//! Routes, at their real paths under `/api`: `POST /api/v0/oauth2/token` (client credentials),
//! `POST /api/workflow/runs` (start, 201 with state `scheduled`), `GET /api/workflow/runs` (list
//! with `created_from/to`, `ended_from/to` — partial timestamps such as `2025-04` allowed —
//! `state`, `type`, `limit`, `next_token`, `with_total`), `GET /api/workflow/runs/{id}`
//! (`view=overview|verbose`) and `POST /api/workflow/runs/{id}/stop`.
//!
//! Every workflow route checks, in this order: the `amperity-tenant` header (400 when missing),
//! the rate limit of 10 requests per simulated second per tenant (429 with `Retry-After`), the
//! bearer token (401 for a missing, unknown or expired one), and the API version from the
//! `api-version` header or the `api_version` query parameter (400 when missing; 401 for an
//! unknown version, as the spec's status table lists "an invalid version identifier" under 401).
//! Errors use the spec's `ErrorResponse` shape `{"status": <code>, "message": "..."}`.
//!
//! Strictness beyond the spec, chosen so client typos cannot pass silently: unknown query
//! parameters are rejected with 400, and `limit` must be 1..=100 (the spec gives no bound).
//!
//! Runs follow their [`ScriptedRun`] phase: `scheduled` → `started` → `in progress` (a failing
//! run shows `running with failures` in the second half of its run time) → `succeeded` /
//! `failed` (with `error.attribution` from the script) ; a stop gives `stopping` then `canceled`.
//! Runs belong to the tenant that started them; another tenant gets 404. Workflow runs produce
//! no files, so no download URLs are issued.

// Validation helpers return the vendor's finished error response, as the shared `common`
// helpers do; boxing it would only add noise to a test server.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbridge_core::VendorKind;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

use super::common::{self, AuthPolicy};
use super::SimVendor;
use crate::{Outcome, RunPhase, ScriptedRun, Sim};

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Amperity,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Amperity;
/// The only API version this simulator (and runbridge) speaks.
pub const API_VERSION: &str = "2024-04-01";
/// Requests per second per tenant before 429.
pub const RATE_LIMIT_PER_SECOND: u32 = 10;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 100;
/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 100;
/// Simulated seconds a run shows `started` before `in progress`.
const STARTED_SECONDS: f64 = 5.0;
/// Simulated seconds a stopped run spends `stopping` (mirrors the shared script model).
const STOPPING_SECONDS: i64 = 5;

/// A workflow configuration runs can be started for.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowConfig {
    /// `cg-…`, `og-…` or `cc-…`.
    pub id: &'static str,
    /// The workflow name runs carry.
    pub name: &'static str,
    /// The workflow `type` runs carry.
    pub kind: &'static str,
    /// A courier group pulling files from cloud storage: `range_from` is required.
    pub file_based: bool,
}

impl WorkflowConfig {
    fn is_courier_group(&self) -> bool {
        self.id.starts_with("cg-")
    }
}

/// The configurations every simulated tenant has.
pub const CATALOG: [WorkflowConfig; 4] = [
    WorkflowConfig {
        id: "cg-files01",
        name: "Daily files from S3",
        kind: "courier.group/run",
        file_based: true,
    },
    WorkflowConfig {
        id: "cg-db01",
        name: "Warehouse tables",
        kind: "courier.group/run",
        file_based: false,
    },
    WorkflowConfig {
        id: "og-nightly01",
        name: "Nightly activation",
        kind: "orchestration.group/run",
        file_based: false,
    },
    WorkflowConfig {
        id: "cc-campaign01",
        name: "Weekly loyalty campaign",
        kind: "campaign.send",
        file_based: false,
    },
];

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::UNAUTHORIZED,
    error,
};

fn settings(base: &str) -> Vec<(String, String)> {
    let names: Vec<String> = CATALOG
        .iter()
        .map(|c| format!("{}={}", c.id, c.name))
        .collect();
    vec![
        ("api_base".into(), format!("{base}/api")),
        ("token_url".into(), format!("{base}/api/v0/oauth2/token")),
        ("client_id".into(), common::client_id(VENDOR)),
        ("client_secret".into(), common::client_secret(VENDOR)),
        ("workflow_names".into(), names.join(";")),
    ]
}

struct Run {
    id: String,
    tenant: String,
    config: WorkflowConfig,
    scripted: ScriptedRun,
}

struct AmperitySim {
    sim: Arc<Sim>,
    runs: Mutex<HashMap<String, Run>>,
    /// Per tenant: the simulated second being counted and the requests in it.
    rate: Mutex<HashMap<String, (i64, u32)>>,
    sequence: AtomicU64,
}

type Shared = State<Arc<AmperitySim>>;
type QueryPairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn router(sim: Arc<Sim>) -> Router {
    let state = Arc::new(AmperitySim {
        sim,
        runs: Mutex::new(HashMap::new()),
        rate: Mutex::new(HashMap::new()),
        sequence: AtomicU64::new(10_000),
    });
    Router::new()
        .route("/api/v0/oauth2/token", post(token))
        .route("/api/workflow/runs", post(start_run).get(list_runs))
        .route("/api/workflow/runs/", post(start_run).get(list_runs))
        .route("/api/workflow/runs/{id}", get(get_run))
        .route("/api/workflow/runs/{id}/stop", post(stop_run))
        .with_state(state)
}

/// The token endpoint takes a form body; the router has no form extractor, so the body is
/// decoded with the query-string parser (same `application/x-www-form-urlencoded` format).
async fn token(State(state): Shared, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let form = format!("/?{text}")
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok())
        .map(|Query(form)| form)
        .unwrap_or_default();
    common::token_endpoint(&state.sim, VENDOR, &form, "client_credentials")
}

impl AmperitySim {
    /// Headers, rate limit, auth and version, common to every workflow route. Returns the tenant.
    fn admit(&self, headers: &HeaderMap, query: &[(String, String)]) -> Result<String, Response> {
        let tenant = common::require_header(headers, "amperity-tenant", error)?.to_owned();
        self.rate_limit(&tenant)?;
        common::check_bearer(&self.sim, VENDOR, headers, AUTH)?;
        let version = headers
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| {
                query
                    .iter()
                    .find(|(k, _)| k == "api_version")
                    .map(|(_, v)| v.as_str())
            });
        match version {
            None | Some("") => Err(bad_request("Missing required header api-version")),
            Some(API_VERSION) => Ok(tenant),
            Some(other) => Err(error(
                StatusCode::UNAUTHORIZED,
                &format!("Invalid API version identifier: {other}"),
            )),
        }
    }

    /// The common prelude of the single-run routes: a well-formed query with only `allowed`
    /// parameters, then [`Self::admit`]. Returns the tenant and the parsed query.
    fn admit_request(
        &self,
        headers: &HeaderMap,
        query: QueryPairs,
        allowed: &[&str],
    ) -> Result<(String, Vec<(String, String)>), Response> {
        let query = query_pairs(query)?;
        let tenant = self.admit(headers, &query)?;
        only_params(&query, allowed)?;
        Ok((tenant, query))
    }

    fn rate_limit(&self, tenant: &str) -> Result<(), Response> {
        let second = self.sim.clock.now().unix_timestamp();
        let mut rate = self.rate.lock().expect("rate lock");
        let entry = rate.entry(tenant.to_owned()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 >= RATE_LIMIT_PER_SECOND {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded: 10 requests per second",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(1));
            return Err(response);
        }
        entry.1 += 1;
        Ok(())
    }

    fn new_run_id(&self, now: OffsetDateTime) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::SeqCst) % 100_000;
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(6)
            .collect();
        let date = now
            .format(format_description!("[year][month][day]"))
            .expect("date formats");
        format!("wf-{date}-{sequence:05}-{suffix}")
    }
}

fn only_params(query: &[(String, String)], allowed: &[&str]) -> Result<(), Response> {
    match query
        .iter()
        .find(|(k, _)| k != "api_version" && !allowed.contains(&k.as_str()))
    {
        Some((k, _)) => Err(bad_request(format!("Unknown query parameter: {k}"))),
        None => Ok(()),
    }
}

fn query_pairs(query: QueryPairs) -> Result<Vec<(String, String)>, Response> {
    query
        .map(|Query(q)| q)
        .map_err(|e| bad_request(format!("Invalid query string: {e}")))
}

async fn start_run(
    State(state): Shared,
    headers: HeaderMap,
    query: QueryPairs,
    body: Bytes,
) -> Response {
    state.sim.control.count("amperity.submit");
    let (tenant, _) = match state.admit_request(&headers, query, &[]) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let config = match validate_start(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = state.sim.clock.now();
    let script = state.sim.control.next_run(VENDOR);
    let run = Run {
        id: state.new_run_id(now),
        tenant,
        config,
        scripted: ScriptedRun::new(now, script),
    };
    let body = workflow_json(&run, now, View::Verbose);
    state
        .runs
        .lock()
        .expect("runs lock")
        .insert(run.id.clone(), run);
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Checks a start body against `WorkflowRunRequest` (no unknown fields, `config_id` required)
/// and the endpoint's rules; returns the configuration to run.
fn validate_start(body: &[u8]) -> Result<WorkflowConfig, Response> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(bad_request("Request body must be a JSON object"));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["config_id", "range_from", "range_to", "run_mode"].contains(&k.as_str()))
    {
        return Err(bad_request(format!(
            "Unknown field in request body: {unknown}"
        )));
    }
    let text = |name: &str| -> Result<Option<&str>, Response> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad_request(format!("{name} must be a string"))),
        }
    };
    let config_id = text("config_id")?.ok_or_else(|| bad_request("config_id is required"))?;
    if !["cg-", "og-", "cc-"]
        .iter()
        .any(|p| config_id.starts_with(p))
    {
        return Err(bad_request(format!(
            "config_id {config_id} is not a courier group (cg-), orchestration group (og-) or campaign (cc-) id"
        )));
    }
    let config = CATALOG
        .iter()
        .find(|c| c.id == config_id)
        .copied()
        .ok_or_else(|| {
            bad_request(format!(
                "config_id {config_id}: workflow configuration not found"
            ))
        })?;
    let range_from = text("range_from")?;
    let range_to = text("range_to")?;
    let run_mode = text("run_mode")?;
    if !config.is_courier_group() {
        for (name, value) in [
            ("range_from", range_from),
            ("range_to", range_to),
            ("run_mode", run_mode),
        ] {
            if value.is_some() {
                return Err(bad_request(format!(
                    "{name} is only supported for courier groups"
                )));
            }
        }
    }
    if let Some(mode) = run_mode {
        if !["full", "refresh", "source"].contains(&mode) {
            return Err(bad_request(format!(
                "run_mode must be one of full, refresh, source; got {mode}"
            )));
        }
    }
    let from = range_from
        .map(|v| parse_range("range_from", v))
        .transpose()?;
    let to = range_to.map(|v| parse_range("range_to", v)).transpose()?;
    match (from, to) {
        (None, Some(_)) => {
            return Err(bad_request("range_from is required when range_to is given"))
        }
        (Some(from), Some(to)) if to <= from => {
            return Err(bad_request("range_to must be after range_from"))
        }
        _ => {}
    }
    if config.file_based && from.is_none() {
        return Err(bad_request(format!(
            "range_from is required: courier group {} pulls files from cloud storage",
            config.id
        )));
    }
    Ok(config)
}

/// A run window bound: ISO-8601 in UTC, a full timestamp or a date.
fn parse_range(name: &str, value: &str) -> Result<OffsetDateTime, Response> {
    if let Ok(date) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_utc());
    }
    match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(t) if t.offset() == UtcOffset::UTC => Ok(t),
        Ok(_) => Err(bad_request(format!("{name} must be in UTC: {value}"))),
        Err(_) => Err(bad_request(format!(
            "{name} must be an ISO-8601 timestamp in UTC: {value}"
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Overview,
    Verbose,
    /// List items: everything but task instances.
    ListItem,
}

/// The vendor state, end time and error of a run at `now`.
fn run_state(
    run: &Run,
    now: OffsetDateTime,
) -> (&'static str, Option<OffsetDateTime>, Option<Value>) {
    let script = &run.scripted.script;
    match run.scripted.phase(now) {
        RunPhase::Queued => ("scheduled", None, None),
        RunPhase::Running => {
            let running_for =
                (now - run.scripted.created_at).as_seconds_f64() - script.queue_seconds;
            let failing = matches!(
                script.outcome,
                Outcome::Fail { .. } | Outcome::Reject { .. }
            );
            if failing && running_for >= script.run_seconds / 2.0 {
                ("running with failures", None, None)
            } else if running_for < STARTED_SECONDS {
                ("started", None, None)
            } else {
                ("in progress", None, None)
            }
        }
        RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed) => {
            ("succeeded", run.scripted.ends_at(), None)
        }
        RunPhase::Ended(Outcome::Fail { message, customer }) => {
            let attribution = if customer { "customer" } else { "platform" };
            let error = json!({"type": "amperity.workflow.task/failed", "message": message, "attribution": attribution});
            ("failed", run.scripted.ends_at(), Some(error))
        }
        RunPhase::Ended(Outcome::Reject { message }) => {
            let error = json!({"type": "amperity.workflow/invalid", "message": message, "attribution": "customer"});
            ("failed", run.scripted.ends_at(), Some(error))
        }
        RunPhase::Ended(Outcome::NeverFinish) => ("in progress", None, None),
        RunPhase::Cancelled { stopping: true } => ("stopping", None, None),
        RunPhase::Cancelled { stopping: false } => {
            let ended = run
                .scripted
                .cancelled_at
                .map(|at| at + Duration::seconds(STOPPING_SECONDS));
            let error = json!({
                "type": "amperity.workflow.workflow.repository.core/cancel",
                "message": "Workflow manually stopped",
                "attribution": "customer",
            });
            ("canceled", ended, Some(error))
        }
    }
}

fn is_final_state(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "canceled" | "stopped")
}

/// Timestamps as the API writes them: UTC with milliseconds.
fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .expect("timestamp formats")
}

fn workflow_json(run: &Run, now: OffsetDateTime, view: View) -> Value {
    let (state, ended_at, error) = run_state(run, now);
    let mut out = Map::new();
    out.insert("id".into(), json!(run.id));
    out.insert("name".into(), json!(run.config.name));
    out.insert("type".into(), json!(run.config.kind));
    out.insert("state".into(), json!(state));
    out.insert("tenant".into(), json!(run.tenant));
    out.insert(
        "created_at".into(),
        json!(timestamp(run.scripted.created_at)),
    );
    if let Some(ended) = ended_at {
        out.insert("ended_at".into(), json!(timestamp(ended)));
    }
    if view == View::Overview {
        return Value::Object(out);
    }
    let version = format!("etv-{}", &run.id[3..]);
    out.insert(
        "principal_id".into(),
        json!(format!("api-key|{}", common::client_id(VENDOR))),
    );
    out.insert("principal_name".into(), json!("runbridge API key"));
    out.insert("launched_version".into(), json!(version));
    out.insert("current_version".into(), json!(version));
    if let Some(error) = error {
        out.insert("error".into(), error);
    }
    if view == View::Verbose {
        out.insert("task_instances".into(), json!([]));
    }
    Value::Object(out)
}

fn valid_run_id(id: &str) -> bool {
    id.strip_prefix("wf-").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

async fn get_run(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    state.sim.control.count("amperity.status");
    let (tenant, query) = match state.admit_request(&headers, query, &["view"]) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let view = match query
        .iter()
        .find(|(k, _)| k == "view")
        .map(|(_, v)| v.as_str())
    {
        None | Some("overview") => View::Overview,
        Some("verbose") => View::Verbose,
        Some(other) => {
            return bad_request(format!("view must be overview or verbose; got {other}"))
        }
    };
    if !valid_run_id(&id) {
        return bad_request(format!("Invalid workflow id: {id}"));
    }
    let runs = state.runs.lock().expect("runs lock");
    match runs.get(&id).filter(|r| r.tenant == tenant) {
        Some(run) => Json(workflow_json(run, state.sim.clock.now(), view)).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("Workflow {id} not found")),
    }
}

async fn stop_run(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    state.sim.control.count("amperity.stop");
    let (tenant, _) = match state.admit_request(&headers, query, &[]) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    if !valid_run_id(&id) {
        return bad_request(format!("Invalid workflow id: {id}"));
    }
    let now = state.sim.clock.now();
    let mut runs = state.runs.lock().expect("runs lock");
    let Some(run) = runs.get_mut(&id).filter(|r| r.tenant == tenant) else {
        return error(StatusCode::NOT_FOUND, &format!("Workflow {id} not found"));
    };
    let (current, _, _) = run_state(run, now);
    if is_final_state(current) {
        return error(
            StatusCode::CONFLICT,
            &format!("Workflow {id} has already ended (state {current})"),
        );
    }
    // Stopping a run that is already stopping changes nothing.
    if run.scripted.cancelled_at.is_none() {
        run.scripted.cancelled_at = Some(now);
    }
    Json(workflow_json(run, now, View::Verbose)).into_response()
}

/// The list filters, parsed.
struct ListFilter {
    created_from: Option<OffsetDateTime>,
    created_to: Option<OffsetDateTime>,
    ended_from: Option<OffsetDateTime>,
    ended_to: Option<OffsetDateTime>,
    state: Option<String>,
    kind: Option<String>,
    limit: usize,
    with_total: bool,
    /// Identifies the filter set, so a page token is only accepted with the filters it came from.
    fingerprint: String,
    after: Option<(i128, String)>,
}

/// States compare case-insensitively, with `-`, `_` and spaces equivalent.
fn normalize_state(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', '_'], " ")
}

fn parse_list_query(query: &[(String, String)]) -> Result<ListFilter, Response> {
    const ALLOWED: [&str; 9] = [
        "created_from",
        "created_to",
        "ended_from",
        "ended_to",
        "state",
        "type",
        "limit",
        "next_token",
        "with_total",
    ];
    only_params(query, &ALLOWED)?;
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let time = |name: &str| {
        get(name)
            .map(|v| parse_partial_timestamp(name, v))
            .transpose()
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad_request(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}; got {v}"
                )))
            }
        },
    };
    let with_total = match get("with_total") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "with_total must be true or false; got {other}"
            )))
        }
    };
    let mut filters: Vec<String> = query
        .iter()
        .filter(|(k, _)| {
            !["limit", "next_token", "with_total", "api_version"].contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    filters.sort();
    let fingerprint = hex::encode(&Sha256::digest(filters.join("&"))[..6]);
    let after = match get("next_token") {
        None => None,
        Some(token) => Some(
            decode_token(token, &fingerprint).ok_or_else(|| bad_request("Invalid next_token"))?,
        ),
    };
    Ok(ListFilter {
        created_from: time("created_from")?,
        created_to: time("created_to")?,
        ended_from: time("ended_from")?,
        ended_to: time("ended_to")?,
        state: get("state").map(normalize_state),
        kind: get("type").map(str::to_owned),
        limit,
        with_total,
        fingerprint,
        after,
    })
}

/// An ISO-8601 UTC timestamp, possibly partial: `2025`, `2025-04`, `2025-04-18`,
/// `2025-04-18T15`, `2025-04-18T15:33` (each meaning the start of that period), or a full
/// RFC 3339 timestamp.
fn parse_partial_timestamp(name: &str, value: &str) -> Result<OffsetDateTime, Response> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let invalid = || {
        bad_request(format!("{name} must be an ISO-8601 timestamp (UTC), e.g. 2025-04-18T00:00:00Z or 2025-04; got {value}"))
    };
    let trimmed = value.strip_suffix('Z').unwrap_or(value);
    let (date_part, time_part) = match trimmed.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (trimmed, None),
    };
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let date_fields: Vec<&str> = date_part.split('-').collect();
    let year = date_fields
        .first()
        .and_then(|y| number(y, 4))
        .ok_or_else(invalid)?;
    let month = date_fields
        .get(1)
        .map(|m| number(m, 2))
        .unwrap_or(Some(1))
        .ok_or_else(invalid)?;
    let day = date_fields
        .get(2)
        .map(|d| number(d, 2))
        .unwrap_or(Some(1))
        .ok_or_else(invalid)?;
    if date_fields.len() > 3 || (time_part.is_some() && date_fields.len() != 3) {
        return Err(invalid());
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| invalid())?;
    let time = match time_part {
        None => Time::MIDNIGHT,
        Some(t) => {
            let fields: Vec<&str> = t.split(':').collect();
            if fields.len() > 2 {
                return Err(invalid());
            }
            let hour = fields
                .first()
                .and_then(|h| number(h, 2))
                .ok_or_else(invalid)?;
            let minute = fields
                .get(1)
                .map(|m| number(m, 2))
                .unwrap_or(Some(0))
                .ok_or_else(invalid)?;
            Time::from_hms(hour as u8, minute as u8, 0).map_err(|_| invalid())?
        }
    };
    Ok(date.with_time(time).assume_utc())
}

/// Page tokens are opaque to clients: the hex of the last item's position and the filters.
fn encode_token(created: OffsetDateTime, id: &str, fingerprint: &str) -> String {
    hex::encode(format!(
        "{}|{id}|{fingerprint}",
        created.unix_timestamp_nanos()
    ))
}

fn decode_token(token: &str, fingerprint: &str) -> Option<(i128, String)> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let mut parts = text.splitn(3, '|');
    let nanos = parts.next()?.parse::<i128>().ok()?;
    let id = parts.next()?.to_owned();
    (parts.next()? == fingerprint).then_some((nanos, id))
}

fn in_window(t: OffsetDateTime, from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

async fn list_runs(State(state): Shared, headers: HeaderMap, query: QueryPairs) -> Response {
    state.sim.control.count("amperity.list");
    let query = match query_pairs(query) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let tenant = match state.admit(&headers, &query) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let filter = match parse_list_query(&query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let now = state.sim.clock.now();
    let runs = state.runs.lock().expect("runs lock");
    let mut matching: Vec<(&Run, &'static str, Option<OffsetDateTime>)> = runs
        .values()
        .filter(|r| r.tenant == tenant)
        .filter_map(|r| {
            let (vendor_state, ended, _) = run_state(r, now);
            let wanted = in_window(
                r.scripted.created_at,
                filter.created_from,
                filter.created_to,
            ) && (filter.ended_from.is_none() && filter.ended_to.is_none()
                || ended.is_some_and(|e| in_window(e, filter.ended_from, filter.ended_to)))
                && filter
                    .state
                    .as_deref()
                    .is_none_or(|s| s == normalize_state(vendor_state))
                && filter.kind.as_deref().is_none_or(|k| k == r.config.kind);
            wanted.then_some((r, vendor_state, ended))
        })
        .collect();
    // Newest first; the id breaks ties so the order (and the page cursor) is total.
    let order_key = |r: &Run| (r.scripted.created_at.unix_timestamp_nanos(), r.id.clone());
    matching.sort_by_key(|(run, _, _)| std::cmp::Reverse(order_key(run)));
    let total = matching.len();
    let start = match &filter.after {
        None => 0,
        Some(cursor) => matching
            .iter()
            .position(|(r, _, _)| order_key(r) < *cursor)
            .unwrap_or(total),
    };
    let page: Vec<&Run> = matching
        .iter()
        .skip(start)
        .take(filter.limit)
        .map(|(r, _, _)| *r)
        .collect();
    let mut body = Map::new();
    body.insert(
        "data".into(),
        Value::Array(
            page.iter()
                .map(|r| workflow_json(r, now, View::ListItem))
                .collect(),
        ),
    );
    if start + page.len() < total {
        if let Some(last) = page.last() {
            body.insert(
                "next_token".into(),
                json!(encode_token(
                    last.scripted.created_at,
                    &last.id,
                    &filter.fingerprint
                )),
            );
        }
    }
    if filter.with_total {
        body.insert("total".into(), json!(total));
    }
    Json(Value::Object(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_timestamps_mean_the_start_of_their_period() {
        let parse = |v: &str| {
            parse_partial_timestamp("created_from", v)
                .ok()
                .map(timestamp)
        };
        assert_eq!(parse("2025").as_deref(), Some("2025-01-01T00:00:00.000Z"));
        assert_eq!(
            parse("2025-04").as_deref(),
            Some("2025-04-01T00:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18").as_deref(),
            Some("2025-04-18T00:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15").as_deref(),
            Some("2025-04-18T15:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15:33Z").as_deref(),
            Some("2025-04-18T15:33:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15:33:51.724Z").as_deref(),
            Some("2025-04-18T15:33:51.724Z")
        );
        for bad in [
            "25-04",
            "2025-4",
            "2025-13",
            "2025-02-30",
            "2025-04T10",
            "yesterday",
            "2025-04-18T25",
        ] {
            assert!(parse(bad).is_none(), "{bad} must be rejected");
        }
    }

    #[test]
    fn page_tokens_are_bound_to_their_filters() {
        let t = OffsetDateTime::now_utc();
        let token = encode_token(t, "wf-1", "abc");
        assert_eq!(
            decode_token(&token, "abc"),
            Some((t.unix_timestamp_nanos(), "wf-1".into()))
        );
        assert_eq!(decode_token(&token, "other"), None);
        assert_eq!(decode_token("zz", "abc"), None);
    }
}
