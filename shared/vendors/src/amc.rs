//! Amazon Marketing Cloud (AMC) workflow executions.
//!
//! This module owns everything runbridge says to AMC's workflow-management API
//! (`{api_base}/amc/reporting/{instanceId}/workflowExecutions`):
//!
//! - **Settings**: `amc.client_id`, `amc.client_secret`, `amc.refresh_token` (secrets, required);
//!   `amc.region` (`na` default, `eu`, `fe`) choosing the API host
//!   (`advertising-api[-eu|-fe].amazon.com`) and the Login with Amazon token host
//!   (`api.amazon.com`, `api.amazon.co.uk`, `api.amazon.co.jp`); `amc.api_base` and
//!   `amc.token_url` override those; `amc.download_hosts` / `amc.download_allow_loopback` extend
//!   the download policy (default allow-list: `.amazonaws.com`, where AMC's presigned S3 URLs
//!   point).
//! - **Auth**: Login with Amazon refresh-token grant; every call sends the bearer token and the
//!   `Amazon-Advertising-API-ClientId`, `-AdvertiserId` and `-MarketplaceId` headers, with the
//!   `application/vnd.amcworkflowexecutions.v1+json` media type as `Accept` (and as
//!   `Content-Type` of bodies, as the OpenAPI declares).
//! - **Submit**: `POST …/workflowExecutions`, an ad-hoc `workflow.sqlQuery` (multi-line SQL is
//!   made single-line by [`normalize_sql`]) or a saved `workflowId`, with `timeWindowType`,
//!   EXPLICIT bounds as `yyyy-MM-dd'T'HH:mm:ss` plus `timeWindowTimeZone: "UTC"`,
//!   `parameterValues` (strings, as the spec types them) and `ignoreDataGaps`. AMC always writes
//!   CSV; the spec has no format selector (`workflow.outputFormat` only sets separator/quote
//!   characters), so none is sent.
//! - **Status**: PENDING → Pending; RUNNING, PUBLISHING → Running; SUCCEEDED; FAILED and REJECTED
//!   → Failed (REJECTED is the customer's: AMC refused the query); CANCELLED. Compared
//!   case-insensitively; an unknown status is logged and treated as Running. The failure text is
//!   `statusReason` (falling back to an output channel's `statusReason`).
//! - **Results**: `GET …/{id}/downloadUrls`. "Execution with ID … is unavailable for download"
//!   (a 4xx) means the output is not published yet: [`ResultsAvailability::NotYet`].
//! - **Cancel**: `PUT …/{id}` with `{"status":"CANCELLED"}`. AMC answers 400 unless the execution
//!   is PENDING or RUNNING; the client then reads the status and reports
//!   [`CancelOutcome::AlreadyFinal`] when the run has ended (or is only publishing).
//! - **Errors**: AMC's `{"code": "...", "details": "..."}` is mapped through
//!   [`http::status_error`], with a field named when `details` quotes one.
//!
//! **Reconciliation** ([`Vendor::find_submitted`]): lists executions created at or after the
//! (whole-second) submit time with `minCreationTime`, `includeCancelled` and `includeWorkflow`,
//! following `nextToken`, oldest first. A saved workflow matches on `workflowId` (also filtered
//! server-side); an ad-hoc query on its normalised `sqlQuery` (the workflow id of an ad-hoc run is
//! a fresh `transient_…` id). EXPLICIT windows must also match `timeWindowStart`/`timeWindowEnd`,
//! and `parameterValues` must match when AMC returns them. What it cannot tell apart: AMC stores
//! no client token, so two identical requests (same query or workflow, same window, same
//! parameters) submitted in the same period are indistinguishable, and the oldest is returned;
//! for non-EXPLICIT windows the list does not echo `timeWindowType`, so only the query,
//! parameters and creation time are compared.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use runbridge_core::request::{AmcRun, AmcTimeWindowType};
use runbridge_core::{
    Attribution, IdempotencyKey, OffsetDateTime, RunRequest, RunState, RunStatus, ValidationError,
    VendorKind, VendorSpec,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, PrimitiveDateTime, Time, UtcOffset};
use url::Url;

use crate::auth::TokenSource;
use crate::download::{self, DownloadPolicy};
use crate::http::{self, ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::registry::VendorEntry;
use crate::{
    CancelOutcome, ResultFile, ResultsAvailability, RunRef, Settings, SubmittedRun, Vendor,
    VendorError,
};

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Amc,
    build,
};

const VENDOR: VendorKind = VendorKind::Amc;

/// The media type AMC's workflow-execution operations produce and consume.
pub const MEDIA_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";

/// Where AMC's presigned result URLs point (S3).
const DOWNLOAD_HOSTS: &[&str] = &[".amazonaws.com"];

/// Pages read by one reconciliation before giving up (100 executions each).
const MAX_LIST_PAGES: usize = 50;

/// AMC's time format for window bounds and creation-time filters (no offset; the zone is sent
/// separately).
const AMC_TIME: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// API host and Login with Amazon token URL of each Amazon Ads region.
fn region_defaults(region: &str) -> Option<(&'static str, &'static str)> {
    match region.to_ascii_lowercase().as_str() {
        "na" => Some((
            "https://advertising-api.amazon.com",
            "https://api.amazon.com/auth/o2/token",
        )),
        "eu" => Some((
            "https://advertising-api-eu.amazon.com",
            "https://api.amazon.co.uk/auth/o2/token",
        )),
        "fe" => Some((
            "https://advertising-api-fe.amazon.com",
            "https://api.amazon.co.jp/auth/o2/token",
        )),
        _ => None,
    }
}

/// The API base and token URL chosen by `amc.region`, `amc.api_base` and `amc.token_url`.
fn endpoints(settings: &Settings) -> Result<(String, String), VendorError> {
    let region = settings.plain_or(VENDOR, "region", "na");
    let (api, token) = region_defaults(&region).ok_or_else(|| VendorError::Config {
        vendor: VENDOR,
        setting: "amc.region".into(),
        message: format!("is `{region}`; must be one of na, eu, fe"),
    })?;
    let api_base = settings.plain_or(VENDOR, "api_base", api);
    let token_url = settings.plain_or(VENDOR, "token_url", token);
    for (setting, value) in [("amc.api_base", &api_base), ("amc.token_url", &token_url)] {
        Url::parse(value).map_err(|e| VendorError::Config {
            vendor: VENDOR,
            setting: setting.into(),
            message: format!("is not a URL: {e}"),
        })?;
    }
    Ok((api_base, token_url))
}

fn build(settings: &Settings, retry: &RetryConfig) -> Result<Arc<dyn Vendor>, VendorError> {
    let (api_base, token_url) = endpoints(settings)?;
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let refresh_token = settings.require_secret(VENDOR, "refresh_token")?;
    let http = HttpClient::new(VENDOR, retry.clone())?;
    let tokens = TokenSource::refresh_token(
        http.clone(),
        token_url,
        client_id.clone(),
        client_secret,
        refresh_token,
    );
    let downloads = DownloadPolicy::from_settings(settings, VENDOR, DOWNLOAD_HOSTS);
    Ok(Arc::new(AmcClient {
        http,
        tokens,
        api_base,
        client_id,
        downloads,
    }))
}

/// The AMC client.
struct AmcClient {
    http: HttpClient,
    tokens: TokenSource,
    api_base: String,
    /// Also sent as `Amazon-Advertising-API-ClientId`.
    client_id: SecretString,
    downloads: DownloadPolicy,
}

/// A workflow execution as AMC returns it. The Ads docs show it at the top level of create and
/// get answers; the OpenAPI wraps it in `workflowExecution`. Both are read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Execution {
    #[serde(default)]
    workflow_execution_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    status_reason: Option<String>,
    #[serde(default)]
    output_channels: Vec<OutputChannel>,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    sql_query: Option<String>,
    #[serde(default)]
    time_window_start: Option<String>,
    #[serde(default)]
    time_window_end: Option<String>,
    #[serde(default)]
    parameter_values: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputChannel {
    #[serde(default)]
    status_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionList {
    #[serde(default)]
    executions: Vec<Execution>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownloadUrls {
    #[serde(default)]
    download_urls: Vec<String>,
}

/// Reads an execution from a create/get answer, flat or wrapped.
fn parse_execution(response: &ApiResponse) -> Result<Execution, VendorError> {
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

/// AMC's error body: `{"code": "400", "details": "..."}` (older gateways answer `message`).
fn error_message(response: &ApiResponse) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    let text = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    text("details")
        .or_else(|| text("message"))
        .unwrap_or_else(|| {
            format!(
                "HTTP {}: {}",
                response.status.as_u16(),
                response.text_snippet()
            )
        })
}

/// The field an AMC message quotes, as in `Unrecognized field "foo"`.
fn quoted_field(message: &str) -> Option<String> {
    let rest = &message[message.find("field \"")? + "field \"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn api_error(response: &ApiResponse) -> VendorError {
    let message = error_message(response);
    let field = quoted_field(&message);
    http::status_error(VENDOR, response, message, field)
}

/// A request problem found before anything was sent.
fn invalid(error: ValidationError) -> VendorError {
    VendorError::Rejected {
        vendor: VENDOR,
        status: 400,
        field: Some(error.field),
        message: format!("{} (rejected before sending)", error.rule),
    }
}

fn amc_run(request: &RunRequest) -> Result<&AmcRun, VendorError> {
    match &request.spec {
        VendorSpec::Amc(run) => Ok(run),
        _ => Err(VendorError::Config {
            vendor: VENDOR,
            setting: "vendor".into(),
            message: format!("request is for {}, not amc", request.vendor()),
        }),
    }
}

/// Parses a request bound: RFC 3339 in UTC, or a bare date meaning midnight UTC.
fn parse_request_time(field: &str, value: &str) -> Result<OffsetDateTime, ValidationError> {
    if let Ok(date) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_utc());
    }
    match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(t) if t.offset() == UtcOffset::UTC && t.nanosecond() == 0 => Ok(t),
        Ok(t) if t.offset() != UtcOffset::UTC => Err(ValidationError::new(field, "must be in UTC")),
        Ok(_) => Err(ValidationError::new(
            field,
            "AMC takes whole seconds; drop the fraction",
        )),
        Err(_) => Err(ValidationError::new(
            field,
            "must be an RFC 3339 UTC timestamp or a date",
        )),
    }
}

fn amc_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(AMC_TIME)
        .expect("formatting a UTC time with a fixed format cannot fail")
}

/// Parses AMC's UTC output times (`yyyy-MM-dd'T'HH:mm:ss'Z'`, tolerating a missing `Z`).
fn parse_amc_time(value: &str) -> Option<OffsetDateTime> {
    let bare = value.strip_suffix('Z').unwrap_or(value);
    PrimitiveDateTime::parse(bare, AMC_TIME)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The EXPLICIT window of a request, if it has one.
fn explicit_window(run: &AmcRun) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, VendorError> {
    if run.time_window_type != AmcTimeWindowType::Explicit {
        return Ok(None);
    }
    if run.relative_window.is_some() {
        return Err(invalid(ValidationError::new(
            "relative_window",
            "must be resolved into time_window_start/end (RunRequest::resolve) before submitting",
        )));
    }
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
fn parameter_values(
    run: &AmcRun,
) -> Result<serde_json::Map<String, serde_json::Value>, VendorError> {
    let mut out = serde_json::Map::new();
    for (name, value) in &run.parameter_values {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(ValidationError::new(
                    format!("parameter_values.{name}"),
                    "must be a string, number or boolean (AMC parameter values are strings)",
                )))
            }
        };
        out.insert(name.clone(), serde_json::Value::String(text));
    }
    Ok(out)
}

/// The `createWorkflowExecution` body for a request.
pub fn create_body(request: &RunRequest) -> Result<serde_json::Value, VendorError> {
    let run = amc_run(request)?;
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

impl AmcClient {
    /// `{api_base}/amc/reporting/{instance}/workflowExecutions[/{segments}…]`, each segment
    /// percent-encoded.
    fn url(&self, instance_id: &str, segments: &[&str]) -> Result<Url, VendorError> {
        let mut url = Url::parse(&self.api_base).map_err(|e| VendorError::Config {
            vendor: VENDOR,
            setting: "amc.api_base".into(),
            message: format!("is not a URL: {e}"),
        })?;
        url.path_segments_mut()
            .map_err(|()| VendorError::Config {
                vendor: VENDOR,
                setting: "amc.api_base".into(),
                message: "cannot be a base URL".into(),
            })?
            .pop_if_empty()
            .extend(["amc", "reporting", instance_id, "workflowExecutions"])
            .extend(segments);
        Ok(url)
    }

    /// Adds the headers every AMC call carries.
    fn headers(
        &self,
        builder: reqwest::RequestBuilder,
        token: &str,
        run: &AmcRun,
    ) -> reqwest::RequestBuilder {
        builder
            .bearer_auth(token)
            .header(
                "Amazon-Advertising-API-ClientId",
                self.client_id.expose_secret(),
            )
            .header("Amazon-Advertising-API-AdvertiserId", &run.advertiser_id)
            .header("Amazon-Advertising-API-MarketplaceId", &run.marketplace_id)
            .header(ACCEPT, MEDIA_TYPE)
    }

    async fn get(&self, run: &AmcRun, url: &Url) -> Result<ApiResponse, VendorError> {
        self.http
            .send_authorized(Idempotency::Safe, &self.tokens, |c, token| {
                self.headers(c.get(url.clone()), token, run)
            })
            .await
    }

    /// One page of executions created at or after `since`.
    async fn list_page(
        &self,
        run: &AmcRun,
        since: OffsetDateTime,
        next_token: Option<&str>,
    ) -> Result<ExecutionList, VendorError> {
        let mut url = self.url(&run.instance_id, &[])?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("minCreationTime", &amc_time(since))
                .append_pair("sortAscending", "true")
                .append_pair("includeCancelled", "true")
                .append_pair("includeWorkflow", "true")
                .append_pair("limit", "100");
            if let Some(id) = &run.workflow_id {
                query.append_pair("workflowId", id);
            }
            if let Some(token) = next_token {
                query.append_pair("nextToken", token);
            }
        }
        let response = self.get(run, &url).await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        response.json(VENDOR)
    }
}

/// Whether a listed execution is the one `run` would have created at or after `since`.
fn matches(
    run: &AmcRun,
    sql: Option<&str>,
    execution: &Execution,
    since: OffsetDateTime,
) -> Result<bool, VendorError> {
    let created = execution.create_time.as_deref().and_then(parse_amc_time);
    if created.is_none_or(|t| t < since) {
        return Ok(false);
    }
    let same_query = match (sql, &run.workflow_id) {
        (Some(sql), _) => execution.sql_query.as_deref() == Some(sql),
        (None, Some(id)) => execution.workflow_id.as_deref() == Some(id.as_str()),
        (None, None) => false,
    };
    if !same_query {
        return Ok(false);
    }
    if let Some((start, end)) = explicit_window(run)? {
        let listed_start = execution
            .time_window_start
            .as_deref()
            .and_then(parse_amc_time);
        let listed_end = execution
            .time_window_end
            .as_deref()
            .and_then(parse_amc_time);
        if listed_start != Some(start) || listed_end != Some(end) {
            return Ok(false);
        }
    }
    if let Some(listed) = &execution.parameter_values {
        let ours = parameter_values(run)?;
        let listed: serde_json::Map<String, serde_json::Value> =
            listed.clone().into_iter().collect();
        if listed != ours {
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl Vendor for AmcClient {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let run = amc_run(request)?;
        let body = serde_json::to_vec(&create_body(request)?).map_err(|e| {
            VendorError::protocol(VENDOR, format!("cannot encode the create body: {e}"))
        })?;
        let url = self.url(&run.instance_id, &[])?;
        let response = self
            .http
            .send_authorized(Idempotency::Unsafe, &self.tokens, |c, token| {
                self.headers(c.post(url.clone()), token, run)
                    .header(CONTENT_TYPE, MEDIA_TYPE)
                    .body(body.clone())
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let execution = parse_execution(&response).map_err(|e| VendorError::OutcomeUnknown {
            vendor: VENDOR,
            message: format!("AMC accepted the execution but its answer was unreadable: {e}"),
        })?;
        let vendor_run_id = execution
            .workflow_execution_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| VendorError::OutcomeUnknown {
                vendor: VENDOR,
                message: "AMC accepted the execution without a workflowExecutionId".into(),
            })?;
        Ok(SubmittedRun {
            vendor_run_id,
            vendor_state: execution.status,
        })
    }

    async fn status(&self, run_ref: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let run = amc_run(run_ref.request)?;
        let url = self.url(&run.instance_id, &[run_ref.vendor_run_id])?;
        let response = self.get(run, &url).await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let execution = parse_execution(&response)?;
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

    async fn results(&self, run_ref: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        let run = amc_run(run_ref.request)?;
        let url = self.url(&run.instance_id, &[run_ref.vendor_run_id, "downloadUrls"])?;
        let response = self.get(run, &url).await?;
        if !response.status.is_success() {
            let message = error_message(&response);
            if response.status.is_client_error() && message.contains("unavailable for download") {
                return Ok(ResultsAvailability::NotYet {
                    retry_after_seconds: response.retry_after_seconds(),
                    reason: message,
                });
            }
            return Err(api_error(&response));
        }
        let urls: DownloadUrls = response.json(VENDOR)?;
        let files = urls
            .download_urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| ResultFile {
                name: file_name(&url, i),
                url: SecretString::from(url),
                size_hint: None,
            })
            .collect();
        Ok(ResultsAvailability::Ready(files))
    }

    async fn cancel(&self, run_ref: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let run = amc_run(run_ref.request)?;
        let url = self.url(&run.instance_id, &[run_ref.vendor_run_id])?;
        let body = br#"{"status":"CANCELLED"}"#.as_slice();
        let response = self
            .http
            .send_authorized(Idempotency::Safe, &self.tokens, |c, token| {
                self.headers(c.put(url.clone()), token, run)
                    .header(CONTENT_TYPE, MEDIA_TYPE)
                    .body(body)
            })
            .await?;
        if response.status.is_success() {
            return Ok(CancelOutcome::Requested);
        }
        if response.status == StatusCode::BAD_REQUEST {
            // AMC refuses to cancel anything not PENDING or RUNNING; a 400 may also be a genuine
            // request error, so look at the run before concluding.
            let status = self.status(run_ref).await?;
            if status.state.is_final() || status.vendor_state.eq_ignore_ascii_case("PUBLISHING") {
                return Ok(CancelOutcome::AlreadyFinal);
            }
        }
        Err(api_error(&response))
    }

    async fn open_result(&self, file: &ResultFile) -> Result<reqwest::Response, VendorError> {
        // Presigned S3 URLs carry their own signature: no bearer token.
        let response = download::open(&self.http, &self.downloads, file, None).await?;
        if !response.status().is_success() {
            return Err(VendorError::Unavailable {
                vendor: VENDOR,
                status: Some(response.status().as_u16()),
                message: format!("download of {} answered {}", file.name, response.status()),
            });
        }
        Ok(response)
    }

    fn can_reconcile(&self, _request: &RunRequest) -> bool {
        true
    }

    async fn find_submitted(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
        since: OffsetDateTime,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run = amc_run(request)?;
        let sql = run
            .sql_query
            .as_deref()
            .map(normalize_sql)
            .transpose()
            .map_err(invalid)?;
        // AMC filters on whole seconds; a run created in the same second must still be found.
        let since = since
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(since);
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_page(run, since, next_token.as_deref()).await?;
            for execution in &page.executions {
                if matches(run, sql.as_deref(), execution, since)? {
                    if let Some(id) = &execution.workflow_execution_id {
                        return Ok(Some(SubmittedRun {
                            vendor_run_id: id.clone(),
                            vendor_state: execution.status.clone(),
                        }));
                    }
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(None),
            }
        }
        Err(VendorError::Unavailable {
            vendor: VENDOR,
            status: None,
            message: format!("more than {MAX_LIST_PAGES} pages of executions since the submit time; cannot reconcile"),
        })
    }
}

/// A log-safe name for a result URL: its last path segment (never the query, which holds the
/// signature).
fn file_name(url: &str, index: usize) -> String {
    Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("part-{index:05}.csv"))
}

/// Where the SQL scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Code,
    /// Inside `'…'` (a literal; `''` is an escaped quote).
    Literal,
    /// Inside `"…"` or `` `…` `` (a quoted identifier; the quote doubled escapes it).
    Identifier(char),
    LineComment,
    BlockComment,
}

/// Turns a multi-line query into the single line AMC requires, without changing its meaning.
///
/// Outside quotes, every run of whitespace becomes one space, `--` line comments and `/* */`
/// block comments are removed (each counts as whitespace: joined onto one line, a line comment
/// would swallow the rest of the query), and a trailing `;` is dropped. String literals
/// (`'…'`, `''` escaping a quote) and quoted identifiers (`"…"`, `` `…` ``) are copied as they
/// are. A line break or tab inside quotes cannot be written on one line and is an error naming
/// `sql_query`, as are an unterminated quote or block comment and a query that is empty.
pub fn normalize_sql(sql: &str) -> Result<String, ValidationError> {
    let err = |rule: &str| ValidationError::new("sql_query", rule);
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    let mut state = Scan::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            Scan::Code => {
                if c.is_whitespace() {
                    pending_space = true;
                    continue;
                }
                if c == '-' && chars.peek() == Some(&'-') {
                    chars.next();
                    state = Scan::LineComment;
                    pending_space = true;
                    continue;
                }
                if c == '/' && chars.peek() == Some(&'*') {
                    chars.next();
                    state = Scan::BlockComment;
                    pending_space = true;
                    continue;
                }
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
                state = match c {
                    '\'' => Scan::Literal,
                    '"' | '`' => Scan::Identifier(c),
                    _ => Scan::Code,
                };
            }
            Scan::Literal | Scan::Identifier(_) => {
                let quote = if let Scan::Identifier(q) = state {
                    q
                } else {
                    '\''
                };
                if matches!(c, '\n' | '\r' | '\t') {
                    let what = if state == Scan::Literal {
                        "string literal"
                    } else {
                        "quoted identifier"
                    };
                    return Err(err(&format!(
                        "has a line break or tab inside a {what}, which cannot be sent on the single line AMC requires; \
                         use an escape such as CHR(10) or concatenation instead"
                    )));
                }
                out.push(c);
                if c == quote {
                    if chars.peek() == Some(&quote) {
                        // A doubled quote is an escaped quote: still inside.
                        out.push(quote);
                        chars.next();
                    } else {
                        state = Scan::Code;
                    }
                }
            }
            Scan::LineComment => {
                if c == '\n' || c == '\r' {
                    state = Scan::Code;
                }
            }
            Scan::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = Scan::Code;
                }
            }
        }
    }
    match state {
        Scan::Literal => {
            return Err(err(
                "has an unterminated string literal (a `'` is not closed)",
            ))
        }
        Scan::Identifier(q) => {
            return Err(err(&format!(
                "has an unterminated quoted identifier (a `{q}` is not closed)"
            )))
        }
        Scan::BlockComment => return Err(err("has an unterminated `/*` comment")),
        Scan::Code | Scan::LineComment => {}
    }
    // Every quote is closed, so a `;` at the very end is outside any literal.
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    if out.is_empty() {
        return Err(err("is empty once comments and whitespace are removed"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> String {
        normalize_sql(sql).unwrap_or_else(|e| panic!("{sql:?} should normalise: {e}"))
    }

    fn fails(sql: &str) -> ValidationError {
        let e = normalize_sql(sql).expect_err(sql);
        assert_eq!(e.field, "sql_query");
        e
    }

    #[test]
    fn joins_lines_and_collapses_whitespace() {
        let sql = "SELECT\n  advertiser,\n\tcampaign,\r\n  SUM(total_cost) AS spend\nFROM\n  dsp_impressions\nGROUP BY\n  advertiser,\n  campaign\n";
        assert_eq!(ok(sql), "SELECT advertiser, campaign, SUM(total_cost) AS spend FROM dsp_impressions GROUP BY advertiser, campaign");
        assert_eq!(ok("  select 1  "), "select 1");
    }

    #[test]
    fn keeps_literals_and_identifiers_exactly() {
        assert_eq!(ok("SELECT 'a  b',\n 'x'\n"), "SELECT 'a  b', 'x'");
        assert_eq!(
            ok("SELECT 'it''s  --not a comment'"),
            "SELECT 'it''s  --not a comment'"
        );
        assert_eq!(
            ok("SELECT '/* kept */  ', \"my  col\" FROM t"),
            "SELECT '/* kept */  ', \"my  col\" FROM t"
        );
        assert_eq!(
            ok("SELECT \"a\"\"b  c\" FROM `x  y`"),
            "SELECT \"a\"\"b  c\" FROM `x  y`"
        );
        assert_eq!(ok("SELECT ''''"), "SELECT ''''");
        assert_eq!(ok("SELECT '' ,  ''"), "SELECT '' , ''");
        assert_eq!(ok("SELECT 'a;'"), "SELECT 'a;'");
    }

    #[test]
    fn tab_inside_a_literal_is_refused() {
        // AMC forbids tabs anywhere in sqlQuery; inside a literal there is no equivalent.
        fails("SELECT 'x\ty'");
    }

    #[test]
    fn drops_comments_outside_literals() {
        let sql = "SELECT a, -- the first column\n  b /* second */ FROM t -- trailing\n";
        assert_eq!(ok(sql), "SELECT a, b FROM t");
        assert_eq!(ok("SELECT a/*x*/b"), "SELECT a b");
        assert_eq!(ok("SELECT 1 --;\n"), "SELECT 1");
        assert_eq!(ok("SELECT /* multi\nline\ncomment */ 1"), "SELECT 1");
        assert_eq!(
            ok("SELECT 1 /* '' unbalanced quote in a comment ' */"),
            "SELECT 1"
        );
        assert_eq!(
            ok("SELECT 1 -- it's a comment with a quote\nFROM t"),
            "SELECT 1 FROM t"
        );
        assert_eq!(ok("SELECT 2-1"), "SELECT 2-1");
        assert_eq!(ok("SELECT 4/2"), "SELECT 4/2");
        assert_eq!(ok("-- only a header\nSELECT 1"), "SELECT 1");
    }

    #[test]
    fn a_line_comment_never_swallows_the_rest() {
        let sql = "SELECT a -- note\nFROM t\nWHERE x = 1";
        let one = ok(sql);
        assert_eq!(one, "SELECT a FROM t WHERE x = 1");
        assert!(!one.contains("--"));
    }

    #[test]
    fn strips_a_trailing_semicolon() {
        assert_eq!(ok("SELECT 1;"), "SELECT 1");
        assert_eq!(ok("SELECT 1 ;\n\n"), "SELECT 1");
        assert_eq!(ok("SELECT 1; -- done\n"), "SELECT 1");
        assert_eq!(ok("SELECT ';'"), "SELECT ';'");
    }

    #[test]
    fn refuses_what_cannot_be_one_line() {
        let e = fails("SELECT 'first line\nsecond line' FROM t");
        assert!(e.rule.contains("string literal"), "{e}");
        fails("SELECT 'a\r\nb'");
        let e = fails("SELECT \"col\nname\" FROM t");
        assert!(e.rule.contains("identifier"), "{e}");
        assert!(fails("SELECT 'open").rule.contains("unterminated"));
        assert!(fails("SELECT \"open").rule.contains("unterminated"));
        assert!(fails("SELECT 1 /* open").rule.contains("unterminated"));
        assert!(fails("-- nothing\n /* at all */ ;").rule.contains("empty"));
        fails("");
        fails("SELECT 'it''s");
    }

    #[test]
    fn output_has_no_line_breaks_or_tabs_for_any_valid_input() {
        let inputs = [
            "SELECT\ta\nFROM\tt",
            "SELECT a\r\nFROM t\r\n",
            "SELECT a -- c\r\nFROM t",
            "SELECT\u{a0}a FROM t",
        ];
        for sql in inputs {
            let one = ok(sql);
            assert!(!one.contains(['\n', '\r', '\t']), "{one:?}");
        }
    }

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

    #[test]
    fn regions_choose_hosts_and_overrides_win() {
        let mut s = Settings::new();
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api.amazon.com"
        );
        assert_eq!(
            endpoints(&s).unwrap().1,
            "https://api.amazon.com/auth/o2/token"
        );
        s.set("amc.region", "EU");
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api-eu.amazon.com"
        );
        s.set("amc.region", "fe");
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api-fe.amazon.com"
        );
        s.set("amc.api_base", "https://example.test");
        assert_eq!(endpoints(&s).unwrap().0, "https://example.test");
        s.set("amc.region", "mars");
        match endpoints(&s) {
            Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.region"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_credentials_name_the_setting() {
        let mut s = Settings::new();
        s.set("amc.client_id", "id");
        s.set("amc.client_secret", "secret");
        match build(&s, &RetryConfig::fast()) {
            Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.refresh_token"),
            Err(other) => panic!("expected a config error, got {other:?}"),
            Ok(_) => panic!("expected a config error"),
        }
    }

    #[test]
    fn error_fields_and_file_names() {
        assert_eq!(
            quoted_field("Unrecognized field \"foo\" in request"),
            Some("foo".into())
        );
        assert_eq!(quoted_field("nothing here"), None);
        assert_eq!(
            file_name(
                "https://b.s3.amazonaws.com/a/b/part-1.csv?X-Amz-Signature=s",
                0
            ),
            "part-1.csv"
        );
        assert_eq!(file_name("not a url", 3), "part-00003.csv");
    }

    #[test]
    fn times_use_amc_format() {
        let t = parse_request_time("x", "2026-11-26").unwrap();
        assert_eq!(amc_time(t), "2026-11-26T00:00:00");
        assert_eq!(parse_amc_time("2026-11-26T00:00:00Z"), Some(t));
        assert!(parse_request_time("x", "2026-11-26T00:00:00.5Z").is_err());
    }
}
