//! Adobe Experience Platform Flow Service client: on-demand runs of batch-source dataflows.
//!
//! This module owns everything Adobe-specific: the settings it reads, the IMS OAuth
//! server-to-server token, the Platform headers (`x-api-key`, `x-gw-ims-org-id`,
//! `x-sandbox-name`), the create-run body, the mapping of a run's
//! `metrics.statusSummary.status` to [`RunState`], and of Adobe's two error shapes (the gateway's
//! `{"error_code", "message"}` and Flow Service's `{"type": ".../FLOW-1430-400", "title",
//! "report": {"detailed-message"}}`) to [`VendorError`].
//!
//! Settings (`adobe.*`): `api_base` (default `https://platform.adobe.io/data/foundation/flowservice`),
//! `token_url` (default `https://ims-na1.adobelogin.com/ims/token/v3`), `scopes` (default
//! `openid,AdobeID,read_organizations,additional_info.projectedProductContext,session`), and the
//! secrets `client_id` (also the `x-api-key`), `client_secret` and `org_id`; `sandbox_name`
//! (default `prod`) unless the request names one.
//!
//! What Adobe does and does not offer, and so what this client does:
//! - Submit: `POST /runs` with `flowId` and `params` (`startTime`, `windowStartTime`,
//!   `windowEndTime` as unix-second strings; `deltaColumn: {name}` only when the request has a
//!   delta column, which Adobe accepts only on a table-based flow's first run). `start_time`
//!   defaults to now.
//! - Status: `GET /runs/{runId}`. Failures carry `errors[{code, message}]`; the code ends in an
//!   HTTP class (`CONNECTOR-1001-500`, `FLOW-1100-400`). A failure is the customer's when every
//!   error code is of class 4xx (Adobe's own marker of a request or configuration error), the
//!   platform's otherwise, including when no code is given.
//! - Cancel: Flow Service has no way to stop an on-demand run, so [`Vendor::cancel`] answers
//!   [`CancelOutcome::Unsupported`] without a call; the run goes on until Adobe ends it.
//! - Results: a run ingests into Experience Platform and produces no file:
//!   [`ResultsAvailability::NoFiles`]. [`Vendor::open_result`] still applies the download policy,
//!   which for Adobe allows no host by default.
//! - Reconciliation ([`Vendor::find_submitted`]): lists the flow's runs in the request's sandbox
//!   (`GET /runs?property=flowId==<id>&orderby=-createdAt`, following `_links.next`) and claims
//!   the oldest run that this API client created (`createdClient`) at or after `since` (less
//!   [`CLOCK_SKEW_SECONDS`]) whose copy activity reports the same window. It cannot tell apart two
//!   submissions of the same window by the same client after `since` (runs carry no
//!   caller-chosen label, so the idempotency key cannot be matched), and a run whose activities do
//!   not yet report a window is not claimed.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use runbridge_core::{
    Attribution, IdempotencyKey, OffsetDateTime, RunRequest, RunState, RunStatus, VendorKind,
    VendorSpec,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::download::{self, DownloadPolicy};
use crate::http::{status_error, ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::registry::VendorEntry;
use crate::{
    auth::TokenSource, CancelOutcome, ResultFile, ResultsAvailability, RunRef, Settings,
    SubmittedRun, Vendor, VendorError,
};

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Adobe,
    build,
};

const VENDOR: VendorKind = VendorKind::Adobe;
/// Flow Service on the Platform gateway.
pub const DEFAULT_API_BASE: &str = "https://platform.adobe.io/data/foundation/flowservice";
/// IMS token endpoint (OAuth server-to-server).
pub const DEFAULT_TOKEN_URL: &str = "https://ims-na1.adobelogin.com/ims/token/v3";
/// Scopes of an Experience Platform OAuth server-to-server credential.
pub const DEFAULT_SCOPES: &str =
    "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session";
/// Sandbox used when neither the request nor the settings name one.
pub const DEFAULT_SANDBOX: &str = "prod";
/// Tolerated difference between our clock and Adobe's when comparing `createdAt` with `since`.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Runs asked for per list page.
const LIST_PAGE_SIZE: usize = 50;
/// Pages read at most while reconciling (newest first, so older pages rarely matter).
const MAX_LIST_PAGES: usize = 20;

fn build(settings: &Settings, retry: &RetryConfig) -> Result<Arc<dyn Vendor>, VendorError> {
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let org_id = settings.require_secret(VENDOR, "org_id")?;
    let api_base = settings.plain_or(VENDOR, "api_base", DEFAULT_API_BASE);
    let api_base = Url::parse(api_base.trim_end_matches('/')).map_err(|e| VendorError::Config {
        vendor: VENDOR,
        setting: "adobe.api_base".into(),
        message: format!("is not a URL: {e}"),
    })?;
    let token_url = settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL);
    let scopes = settings.plain_or(VENDOR, "scopes", DEFAULT_SCOPES);
    let http = HttpClient::new(VENDOR, retry.clone())?;
    let tokens = TokenSource::client_credentials(
        http.clone(),
        token_url,
        client_id.clone(),
        client_secret,
        Some(scopes),
    );
    Ok(Arc::new(Adobe {
        http,
        tokens,
        api_base,
        client_id,
        org_id,
        default_sandbox: settings.plain_or(VENDOR, "sandbox_name", DEFAULT_SANDBOX),
        download: DownloadPolicy::from_settings(settings, VENDOR, &[]),
    }))
}

/// The Flow Service client.
struct Adobe {
    http: HttpClient,
    tokens: TokenSource,
    api_base: Url,
    client_id: SecretString,
    org_id: SecretString,
    default_sandbox: String,
    download: DownloadPolicy,
}

/// The Adobe part of a request, with its window resolved at `anchor` if it was relative.
fn adobe_run(
    request: &RunRequest,
    anchor: OffsetDateTime,
) -> Result<runbridge_core::request::AdobeRun, VendorError> {
    match request.resolve(anchor).spec {
        VendorSpec::Adobe(run) => Ok(run),
        _ => Err(VendorError::Config {
            vendor: VENDOR,
            setting: "vendor".into(),
            message: format!(
                "a {} request was sent to the Adobe client",
                request.vendor()
            ),
        }),
    }
}

/// Unix seconds of a validated request time (RFC 3339 UTC or a bare date).
fn unix_seconds(field: &str, value: &str) -> Result<i64, VendorError> {
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    OffsetDateTime::parse(value, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .or_else(|_| {
            time::Date::parse(value, date_only).map(|d| d.midnight().assume_utc().unix_timestamp())
        })
        .map_err(|_| VendorError::Rejected {
            vendor: VENDOR,
            status: 0,
            field: Some(field.into()),
            message: format!("`{value}` is not a UTC timestamp"),
        })
}

/// The window of a resolved request, in unix seconds.
fn window_seconds(run: &runbridge_core::request::AdobeRun) -> Result<(i64, i64), VendorError> {
    match (&run.window_start, &run.window_end) {
        (Some(start), Some(end)) => Ok((
            unix_seconds("window_start", start)?,
            unix_seconds("window_end", end)?,
        )),
        _ => Err(VendorError::Rejected {
            vendor: VENDOR,
            status: 0,
            field: Some("window_start".into()),
            message: "a window is required".into(),
        }),
    }
}

/// The `POST /runs` body, as Adobe's on-demand ingestion tutorial shows it.
pub fn create_run_body(request: &RunRequest, now: OffsetDateTime) -> Result<Value, VendorError> {
    let run = adobe_run(request, now)?;
    let start = match &run.start_time {
        Some(t) => unix_seconds("start_time", t)?,
        None => now.unix_timestamp(),
    };
    let (window_start, window_end) = window_seconds(&run)?;
    let mut params = json!({
        "startTime": start.to_string(),
        "windowStartTime": window_start.to_string(),
        "windowEndTime": window_end.to_string(),
    });
    if let Some(column) = &run.delta_column {
        params["deltaColumn"] = json!({"name": column});
    }
    Ok(json!({"flowId": run.flow_id, "params": params}))
}

/// Maps a `statusSummary.status` (any casing, `inProgress` or `IN_PROGRESS`) to the common state;
/// `None` for a state this client does not know.
pub fn map_state(vendor_state: &str) -> Option<RunState> {
    let normalized: String = vendor_state
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    Some(match normalized.as_str() {
        "scheduled" | "queued" | "pending" | "created" | "notstarted" => RunState::Pending,
        "inprogress" | "running" | "started" | "processing" => RunState::Running,
        // Partial success: ingested within the flow's error threshold.
        "success" | "succeeded" | "completed" | "partialsuccess" => RunState::Succeeded,
        "failed" | "failure" | "partialfailure" | "error" => RunState::Failed,
        "cancelled" | "canceled" | "stopped" | "aborted" => RunState::Cancelled,
        _ => return None,
    })
}

/// Whose fault a failed run is: the customer's only when every error code carries Adobe's 4xx
/// class suffix (`FLOW-1100-400`).
pub fn attribution(errors: &[RunError]) -> Attribution {
    let class = |code: &str| {
        code.rsplit('-')
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..600).contains(c))
    };
    let all_customer = !errors.is_empty()
        && errors.iter().all(|e| {
            e.code
                .as_deref()
                .and_then(class)
                .is_some_and(|c| (400..500).contains(&c))
        });
    if all_customer {
        Attribution::Customer
    } else {
        Attribution::Platform
    }
}

/// One entry of a run's `errors`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunError {
    /// Adobe's code, e.g. `CONNECTOR-1001-500`.
    #[serde(default)]
    pub code: Option<String>,
    /// Adobe's message.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RunsPage {
    #[serde(default)]
    items: Vec<RunItem>,
    #[serde(default, rename = "_links")]
    links: Option<Links>,
}

#[derive(Debug, Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<Link>,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunItem {
    id: String,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    created_client: Option<String>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(default)]
    activities: Vec<Activity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    #[serde(default)]
    status_summary: Option<StatusSummary>,
}

#[derive(Debug, Deserialize)]
struct StatusSummary {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    errors: Vec<RunError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(default)]
    duration_summary: Option<ActivityDuration>,
}

#[derive(Debug, Deserialize)]
struct ActivityDuration {
    #[serde(default)]
    extensions: Option<WindowExtensions>,
}

/// The window a run ingests, in epoch milliseconds.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WindowExtensions {
    window_start: Option<i64>,
    window_end: Option<i64>,
}

impl RunItem {
    fn status_summary(&self) -> Option<&StatusSummary> {
        self.metrics
            .as_ref()
            .and_then(|m| m.status_summary.as_ref())
    }

    /// The window in seconds, from the first activity that reports one.
    fn window(&self) -> Option<(i64, i64)> {
        self.activities.iter().find_map(|a| {
            let ext = a.duration_summary.as_ref()?.extensions.as_ref()?;
            Some((ext.window_start? / 1000, ext.window_end? / 1000))
        })
    }

    fn to_status(&self) -> RunStatus {
        let summary = self.status_summary();
        // Adobe omits the status summary until the run has been picked up.
        let Some(vendor_state) = summary.and_then(|s| s.status.clone()) else {
            return RunStatus::new(RunState::Pending, "pending");
        };
        let state = map_state(&vendor_state).unwrap_or_else(|| {
            tracing::warn!(vendor = %VENDOR, run_id = %self.id, vendor_state = %vendor_state, "unknown Adobe run state; treating it as running");
            RunState::Running
        });
        let mut status = RunStatus::new(state, vendor_state);
        if matches!(state, RunState::Failed | RunState::Cancelled) {
            let errors = summary.map(|s| s.errors.as_slice()).unwrap_or_default();
            let reason: Vec<String> = errors
                .iter()
                .map(|e| match (&e.code, &e.message) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => "error without details".into(),
                })
                .collect();
            status.reason = Some(if reason.is_empty() {
                format!("run ended {} without an error summary", status.vendor_state)
            } else {
                reason.join("; ")
            });
            status.attribution = Some(attribution(errors));
        }
        status
    }
}

/// Maps Adobe's error bodies: the gateway's `{"error_code", "message"}` and Flow Service's
/// `{"type": ".../FLOW-<n>-<status>", "title", "report": {"detailed-message"}, "errorMessage"}`.
fn api_error(response: &ApiResponse) -> VendorError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let code = text(&body["error_code"])
        .or_else(|| text(&body["type"]).and_then(|t| t.rsplit('/').next().map(str::to_owned)));
    let message = text(&body["report"]["detailed-message"])
        .or_else(|| text(&body["errorMessage"]))
        .or_else(|| text(&body["detail"]))
        .or_else(|| text(&body["message"]))
        .or_else(|| text(&body["title"]))
        .unwrap_or_else(|| response.text_snippet());
    let message = match code {
        Some(code) => format!("{code}: {message}"),
        None => message,
    };
    // Adobe names no field; its messages do, for the parameters of a run.
    let field = [
        "deltaColumn",
        "windowEndTime",
        "windowStartTime",
        "startTime",
        "flowId",
    ]
    .into_iter()
    .find(|f| message.contains(f))
    .map(|f| {
        if f == "flowId" {
            f.to_owned()
        } else {
            format!("params.{f}")
        }
    });
    status_error(VENDOR, response, message, field)
}

impl Adobe {
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn sandbox<'a>(&'a self, request: &'a RunRequest) -> &'a str {
        match &request.spec {
            VendorSpec::Adobe(run) => run.sandbox_name.as_deref().unwrap_or(&self.default_sandbox),
            _ => &self.default_sandbox,
        }
    }

    /// A request with the Platform headers every Flow Service call needs.
    fn platform_request(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
        token: &str,
        sandbox: &str,
    ) -> RequestBuilder {
        client
            .request(method, url)
            .bearer_auth(token)
            .header("x-api-key", self.client_id.expose_secret())
            .header("x-gw-ims-org-id", self.org_id.expose_secret())
            .header("x-sandbox-name", sandbox)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn get(&self, url: Url, sandbox: &str) -> Result<ApiResponse, VendorError> {
        let response = self
            .http
            .send_authorized(Idempotency::Safe, &self.tokens, |c, token| {
                self.platform_request(c, Method::GET, url.clone(), token, sandbox)
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        Ok(response)
    }
}

#[async_trait]
impl Vendor for Adobe {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let body = create_run_body(request, OffsetDateTime::now_utc())?;
        let sandbox = self.sandbox(request);
        let url = self.url(&["runs"]);
        let response = self
            .http
            .send_authorized(Idempotency::Unsafe, &self.tokens, |c, token| {
                self.platform_request(c, Method::POST, url.clone(), token, sandbox)
                    .json(&body)
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        // The tutorial shows `{"items": [{"id", "etag"}]}`; the OpenAPI schema a bare `{"id", "etag"}`.
        #[derive(Deserialize)]
        struct Created {
            #[serde(default)]
            items: Vec<CreatedItem>,
            #[serde(default)]
            id: Option<String>,
        }
        #[derive(Deserialize)]
        struct CreatedItem {
            id: String,
        }
        let created: Created = response.json(VENDOR)?;
        let id = created
            .items
            .into_iter()
            .next()
            .map(|i| i.id)
            .or(created.id)
            .ok_or_else(|| VendorError::protocol(VENDOR, "create run answered without a run id"))?;
        Ok(SubmittedRun {
            vendor_run_id: id,
            vendor_state: None,
        })
    }

    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let response = self
            .get(
                self.url(&["runs", run.vendor_run_id]),
                self.sandbox(run.request),
            )
            .await?;
        let page: RunsPage = response.json(VENDOR)?;
        let item = page
            .items
            .into_iter()
            .find(|i| i.id == run.vendor_run_id)
            .ok_or_else(|| {
                VendorError::protocol(
                    VENDOR,
                    format!("run {} is missing from its own lookup", run.vendor_run_id),
                )
            })?;
        Ok(item.to_status())
    }

    async fn results(&self, _run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        Ok(ResultsAvailability::NoFiles)
    }

    async fn cancel(&self, _run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        Ok(CancelOutcome::Unsupported)
    }

    async fn open_result(&self, file: &ResultFile) -> Result<reqwest::Response, VendorError> {
        download::open(&self.http, &self.download, file, None).await
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
        let run = adobe_run(request, since)?;
        let window = window_seconds(&run)?;
        let sandbox = self.sandbox(request);
        let since_ms = (since.unix_timestamp() - CLOCK_SKEW_SECONDS) * 1000;
        let client_id = self.client_id.expose_secret();
        let mut continuation: Option<String> = None;
        let mut found: Option<RunItem> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut url = self.url(&["runs"]);
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("property", &format!("flowId=={}", run.flow_id))
                    .append_pair("orderby", "-createdAt")
                    .append_pair("limit", &LIST_PAGE_SIZE.to_string());
                if let Some(token) = &continuation {
                    query.append_pair("continuationToken", token);
                }
            }
            let page: RunsPage = self.get(url, sandbox).await?.json(VENDOR)?;
            let mut reached_older = false;
            for item in page.items {
                let created = item.created_at.unwrap_or(i64::MIN);
                if created < since_ms {
                    reached_older = true;
                    break;
                }
                let ours = item
                    .created_client
                    .as_deref()
                    .is_none_or(|c| c == client_id);
                // Newest first: keep overwriting so the oldest match after `since` wins.
                if ours && item.window() == Some(window) {
                    found = Some(item);
                }
            }
            continuation = page
                .links
                .and_then(|l| l.next)
                .and_then(|n| continuation_token(&n.href));
            if reached_older || continuation.is_none() {
                break;
            }
        }
        Ok(found.map(|item| SubmittedRun {
            vendor_state: item.status_summary().and_then(|s| s.status.clone()),
            vendor_run_id: item.id,
        }))
    }
}

/// The `continuationToken` of a next-page link such as `/runs?continuationToken=…&limit=50`.
fn continuation_token(href: &str) -> Option<String> {
    let url = Url::parse("https://placeholder.invalid")
        .ok()?
        .join(href)
        .ok()?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "continuationToken")
        .map(|(_, v)| v.into_owned());
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_case_insensitively() {
        for (raw, want) in [
            ("success", RunState::Succeeded),
            ("SUCCESS", RunState::Succeeded),
            ("partialSuccess", RunState::Succeeded),
            ("PARTIAL_SUCCESS", RunState::Succeeded),
            ("failed", RunState::Failed),
            ("FAILED", RunState::Failed),
            ("inProgress", RunState::Running),
            ("IN_PROGRESS", RunState::Running),
            ("in-progress", RunState::Running),
            ("queued", RunState::Pending),
            ("SCHEDULED", RunState::Pending),
            ("pending", RunState::Pending),
            ("cancelled", RunState::Cancelled),
            ("Canceled", RunState::Cancelled),
        ] {
            assert_eq!(map_state(raw), Some(want), "{raw}");
        }
        assert_eq!(map_state("hibernating"), None);
    }

    #[test]
    fn unknown_state_is_running() {
        let item: RunItem = serde_json::from_value(
            json!({"id": "r", "metrics": {"statusSummary": {"status": "warming"}}}),
        )
        .unwrap();
        let status = item.to_status();
        assert_eq!(
            (status.state, status.vendor_state.as_str()),
            (RunState::Running, "warming")
        );
    }

    #[test]
    fn attribution_follows_the_code_class() {
        let e = |code: &str| RunError {
            code: Some(code.into()),
            message: None,
        };
        assert_eq!(attribution(&[e("FLOW-1100-400")]), Attribution::Customer);
        assert_eq!(
            attribution(&[e("CONNECTOR-1001-500")]),
            Attribution::Platform
        );
        assert_eq!(
            attribution(&[e("FLOW-1100-400"), e("CONNECTOR-2001-500")]),
            Attribution::Platform
        );
        assert_eq!(attribution(&[e("2200")]), Attribution::Platform);
        assert_eq!(attribution(&[]), Attribution::Platform);
    }

    #[test]
    fn next_link_token() {
        assert_eq!(
            continuation_token("/runs?property=flowId%3D%3Dx&continuationToken=ab%2Bc").as_deref(),
            Some("ab+c")
        );
        assert_eq!(continuation_token("/runs?limit=2"), None);
    }
}
