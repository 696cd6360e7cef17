//! CARTO SQL job API (v3): runs a query — typically the ``CALL `…`(@a, @b)`` of a workflow's
//! stored procedure — as an asynchronous job, watches it, and optionally collects an export query
//! as CSV.
//!
//! This module owns the CARTO settings, the CARTO OAuth client-credentials grant (a shared
//! [`TokenSource`] with the `audience` CARTO requires), the job calls, the mapping of job states and `errorResult`s to
//! [`RunState`], and the mapping of CARTO's error JSON to [`VendorError`].
//!
//! # Sources
//! - The workflow doc ("Executing workflows via API"): `POST {api_base}/v3/sql/{connection}/job`
//!   with `{"query", "queryParameters"}` answers a job whose `externalId` is the job id;
//!   `GET …/job/{externalId}` answers `status: {state, errorResult?}`. A job can be `DONE` **with**
//!   `errorResult {reason, location, message}` (the doc's coercion example): that is a failure.
//! - docs.carto.com, "SQL API" reference: `POST/GET/DELETE /v3/sql/{connectionName}/job[/{jobId}]`,
//!   `GET /v3/sql/{connectionName}/query`, `GET /v3/sql/jobs`; "CARTO API" reference: OAuth
//!   tokens come from `POST https://auth.carto.com/oauth/token` with `grant_type=client_credentials`,
//!   `client_id`, `client_secret` and `audience=carto-cloud-native-api`; default region base URL
//!   `https://gcp-us-east1.api.carto.com`.
//! - FACTS.md: job states pending, running, done, failed, canceled (v3 examples upper case).
//!
//! # Assumptions (not confirmed by a published schema)
//! - Error bodies are `{"error": "<message>", …}` (what deck.gl's CARTO client reads); a
//!   `message` field is accepted too.
//! - A cancelled job reads `CANCELED`/`CANCELLED`; BigQuery's way, `DONE` with
//!   `errorResult.reason = "stopped"`, is read as cancelled as well.
//! - The export CSV comes from `GET /v3/sql/{connection}/query?q=…&format=csv` (the `format`
//!   parameter of CARTO's SQL API; not shown on the v3 page), with `queryParameters` as a JSON
//!   string when the request has parameters. A GET URL limits the export query's length.
//!
//! # Settings (`carto.*`)
//! `api_base` (default `https://gcp-us-east1.api.carto.com`); either `api_token` (a long-lived
//! API access token) or `client_id` + `client_secret` (an M2M OAuth client) with `token_url`
//! (default `https://auth.carto.com/oauth/token`). Without `api_token`, a missing `client_id` or
//! `client_secret` is a configuration error naming that setting.
//!
//! # Reconciliation
//! [`Vendor::find_submitted`] always answers `Ok(None)`: the create request carries nothing
//! runbridge could later match (CARTO's documented body is `query` and `queryParameters` only),
//! and the shape and filters of `GET /v3/sql/jobs` are not documented, so a job whose create
//! answer was lost cannot be found again. Such a submit stays [`VendorError::OutcomeUnknown`].
//!
//! The create answer echoes the caller's token (`"token"` in the doc's example), so response
//! bodies of the create call are never put into errors or logs.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use runbridge_core::request::CartoRun;
use runbridge_core::{
    Attribution, IdempotencyKey, RunRequest, RunState, RunStatus, VendorKind, VendorSpec,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
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
    kind: VendorKind::Carto,
    build,
};

const VENDOR: VendorKind = VendorKind::Carto;
/// The US-East CARTO Cloud region; other regions and self-hosted tenants set `carto.api_base`.
pub const DEFAULT_API_BASE: &str = "https://gcp-us-east1.api.carto.com";
/// CARTO's OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://auth.carto.com/oauth/token";
/// The audience CARTO's token endpoint requires for API tokens.
pub const AUDIENCE: &str = "carto-cloud-native-api";
/// Name of the single export file.
const EXPORT_FILE_NAME: &str = "export.csv";

fn build(settings: &Settings, retry: &RetryConfig) -> Result<Arc<dyn Vendor>, VendorError> {
    let api_base = settings.plain_or(VENDOR, "api_base", DEFAULT_API_BASE);
    let api_base = Url::parse(api_base.trim_end_matches('/')).map_err(|e| VendorError::Config {
        vendor: VENDOR,
        setting: "carto.api_base".into(),
        message: format!("is not a URL: {e}"),
    })?;
    let host = api_base.host_str().ok_or_else(|| VendorError::Config {
        vendor: VENDOR,
        setting: "carto.api_base".into(),
        message: "has no host".into(),
    })?;
    // Only the SQL API itself serves export CSVs.
    let download_policy = DownloadPolicy::from_settings(settings, VENDOR, &[host]);
    let http = HttpClient::new(VENDOR, retry.clone())?;
    let tokens = match settings.secret(VENDOR, "api_token") {
        Some(token) => TokenSource::fixed(http.clone(), token),
        None => TokenSource::client_credentials(
            http.clone(),
            settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL),
            settings.require_secret(VENDOR, "client_id")?,
            settings.require_secret(VENDOR, "client_secret")?,
            None,
        )
        .with_form_field("audience", AUDIENCE),
    };
    Ok(Arc::new(Carto {
        http,
        api_base,
        tokens,
        download_policy,
    }))
}

/// The CARTO client.
struct Carto {
    http: HttpClient,
    api_base: Url,
    /// An API access token, or an M2M OAuth client's tokens (with CARTO's `audience`).
    tokens: TokenSource,
    download_policy: DownloadPolicy,
}

/// A job as `GET …/job/{id}` answers it (only what runbridge reads).
#[derive(Deserialize)]
struct Job {
    status: JobStatus,
}

/// `status` is an object in the v3 examples; a bare state string is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum JobStatus {
    Object {
        state: String,
        #[serde(default, rename = "errorResult")]
        error_result: Option<ErrorResult>,
    },
    State(String),
}

/// BigQuery-style job error, as CARTO passes it through.
#[derive(Deserialize)]
struct ErrorResult {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ErrorResult {
    fn describe(&self) -> String {
        let reason = self.reason.as_deref().unwrap_or("error");
        let message = self.message.as_deref().unwrap_or("no message");
        match &self.location {
            Some(location) => format!("{reason} ({location}): {message}"),
            None => format!("{reason}: {message}"),
        }
    }
}

/// Whose fault a job error is, by its BigQuery reason code.
fn attribution(reason: Option<&str>) -> Attribution {
    match reason.map(str::to_ascii_lowercase).as_deref() {
        Some(
            "backenderror" | "internalerror" | "ratelimitexceeded" | "timeout" | "tableunavailable",
        ) => Attribution::Platform,
        // invalidQuery, invalid, notFound, accessDenied, quotaExceeded, resourcesExceeded, …:
        // the query, its data or the account's limits — repeating it will not help.
        _ => Attribution::Customer,
    }
}

/// Maps a job's status to the common state.
fn map_status(status: JobStatus) -> RunStatus {
    let (state, error_result) = match status {
        JobStatus::Object {
            state,
            error_result,
        } => (state, error_result),
        JobStatus::State(state) => (state, None),
    };
    let failed = |error: Option<&ErrorResult>| {
        let mut s = RunStatus::new(RunState::Failed, state.clone());
        s.reason = Some(error.map_or_else(|| format!("job {state}"), ErrorResult::describe));
        s.attribution = Some(attribution(error.and_then(|e| e.reason.as_deref())));
        s
    };
    match state.to_ascii_lowercase().as_str() {
        "pending" => RunStatus::new(RunState::Pending, state),
        "running" => RunStatus::new(RunState::Running, state),
        "done" => match &error_result {
            None => RunStatus::new(RunState::Succeeded, state),
            Some(e)
                if e.reason
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("stopped")) =>
            {
                let mut s = RunStatus::new(RunState::Cancelled, state.clone());
                s.reason = Some(e.describe());
                s
            }
            Some(e) => failed(Some(e)),
        },
        "failed" => failed(error_result.as_ref()),
        "canceled" | "cancelled" => {
            let mut s = RunStatus::new(RunState::Cancelled, state.clone());
            s.reason = error_result.as_ref().map(ErrorResult::describe);
            s
        }
        _ => {
            tracing::warn!(vendor = %VENDOR, vendor_state = %state, "unknown CARTO job state; treating it as running");
            RunStatus::new(RunState::Running, state)
        }
    }
}

/// Maps a non-success answer using CARTO's error body (`{"error": "…"}`).
fn api_error(response: &ApiResponse) -> VendorError {
    let parsed = serde_json::from_slice::<serde_json::Value>(&response.body).ok();
    let text = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let message = text("error")
        .or_else(|| text("message"))
        .unwrap_or_else(|| format!("HTTP {}", response.status.as_u16()));
    http::status_error(VENDOR, response, message, text("field"))
}

fn carto_run(request: &RunRequest) -> Result<&CartoRun, VendorError> {
    match &request.spec {
        VendorSpec::Carto(run) => Ok(run),
        _ => Err(VendorError::Config {
            vendor: VENDOR,
            setting: "vendor".into(),
            message: format!(
                "a {} request was sent to the CARTO client",
                request.vendor()
            ),
        }),
    }
}

impl Carto {
    /// `{api_base}/v3/sql/{segments…}`, each segment percent-encoded.
    fn sql_url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("api_base was checked to be a base URL with a host")
            .pop_if_empty()
            .extend(["v3", "sql"])
            .extend(segments);
        url
    }

    /// Sends an authorised request; a rejected token is refreshed once.
    async fn send<F>(&self, idempotency: Idempotency, build: F) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.http
            .send_authorized(idempotency, &self.tokens, build)
            .await
    }

    async fn job_status(&self, connection: &str, job_id: &str) -> Result<RunStatus, VendorError> {
        let url = self.sql_url(&[connection, "job", job_id]);
        let response = self
            .send(Idempotency::Safe, |c, token| {
                c.get(url.clone()).bearer_auth(token)
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let job: Job = response.json(VENDOR)?;
        Ok(map_status(job.status))
    }

    /// The SQL API URL answering `export_query` as CSV.
    fn export_url(&self, run: &CartoRun, export_query: &str) -> Result<Url, VendorError> {
        let mut url = self.sql_url(&[&run.connection, "query"]);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("q", export_query)
                .append_pair("format", "csv");
            if !run.query_parameters.is_empty() {
                let parameters = serde_json::to_string(&run.query_parameters).map_err(|e| {
                    VendorError::protocol(VENDOR, format!("queryParameters do not serialise: {e}"))
                })?;
                query.append_pair("queryParameters", &parameters);
            }
        }
        Ok(url)
    }
}

#[async_trait]
impl Vendor for Carto {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let run = carto_run(request)?;
        let url = self.sql_url(&[&run.connection, "job"]);
        let mut body = serde_json::json!({ "query": run.query });
        if !run.query_parameters.is_empty() {
            body["queryParameters"] = serde_json::json!(run.query_parameters);
        }
        let response = self
            .send(Idempotency::Unsafe, |c, token| {
                c.post(url.clone()).bearer_auth(token).json(&body)
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        // Parsed by hand so that no error message quotes the body, which echoes the token.
        let created: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|_| VendorError::OutcomeUnknown {
                vendor: VENDOR,
                message: "job created but its answer is not JSON".into(),
            })?;
        let job_id = created
            .get("externalId")
            .and_then(|v| v.as_str())
            .filter(|id| !id.is_empty());
        let Some(job_id) = job_id else {
            return Err(VendorError::OutcomeUnknown {
                vendor: VENDOR,
                message: "job created but its answer has no externalId".into(),
            });
        };
        let vendor_state = created
            .pointer("/status/state")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        tracing::info!(vendor = %VENDOR, job_id, connection = %run.connection, "job created");
        Ok(SubmittedRun {
            vendor_run_id: job_id.to_owned(),
            vendor_state,
        })
    }

    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let carto = carto_run(run.request)?;
        self.job_status(&carto.connection, run.vendor_run_id).await
    }

    async fn results(&self, run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        let carto = carto_run(run.request)?;
        let Some(export_query) = &carto.export_query else {
            return Ok(ResultsAvailability::NoFiles);
        };
        // The export reads what the job wrote, so it must wait for a clean DONE.
        let status = self
            .job_status(&carto.connection, run.vendor_run_id)
            .await?;
        match status.state {
            RunState::Succeeded => {}
            RunState::Pending | RunState::Running => {
                return Ok(ResultsAvailability::NotYet {
                    retry_after_seconds: None,
                    reason: format!("job is {}", status.vendor_state),
                })
            }
            RunState::Failed | RunState::Cancelled => {
                return Err(VendorError::Rejected {
                    vendor: VENDOR,
                    status: 409,
                    field: None,
                    message: format!(
                        "job ended {} ({}); there is nothing to export",
                        status.vendor_state,
                        status.reason.unwrap_or_default()
                    ),
                })
            }
        }
        let url = self.export_url(carto, export_query)?;
        Ok(ResultsAvailability::Ready(vec![ResultFile {
            name: EXPORT_FILE_NAME.into(),
            url: SecretString::from(url.to_string()),
            size_hint: None,
        }]))
    }

    async fn cancel(&self, run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let carto = carto_run(run.request)?;
        if self
            .job_status(&carto.connection, run.vendor_run_id)
            .await?
            .state
            .is_final()
        {
            return Ok(CancelOutcome::AlreadyFinal);
        }
        let url = self.sql_url(&[&carto.connection, "job", run.vendor_run_id]);
        let response = self
            .send(Idempotency::Safe, |c, token| {
                c.delete(url.clone()).bearer_auth(token)
            })
            .await?;
        if response.status.is_success() {
            return Ok(CancelOutcome::Requested);
        }
        // The job may have ended between the read and the cancel.
        let error = api_error(&response);
        match self.job_status(&carto.connection, run.vendor_run_id).await {
            Ok(status) if status.state.is_final() => Ok(CancelOutcome::AlreadyFinal),
            _ => Err(error),
        }
    }

    async fn open_result(&self, file: &ResultFile) -> Result<reqwest::Response, VendorError> {
        // The query endpoint wants the bearer token (download::open sends it to this host only).
        let token = self.tokens.token().await?;
        let mut response = download::open(
            &self.http,
            &self.download_policy,
            file,
            Some(token.expose_secret()),
        )
        .await?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            self.tokens.invalidate(&token).await;
            let token = self.tokens.token().await?;
            response = download::open(
                &self.http,
                &self.download_policy,
                file,
                Some(token.expose_secret()),
            )
            .await?;
        }
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(api_error(&ApiResponse {
            status,
            headers,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> RunStatus {
        map_status(
            serde_json::from_value::<Job>(json)
                .expect("job parses")
                .status,
        )
    }

    #[test]
    fn states_map_case_insensitively() {
        assert_eq!(
            status(serde_json::json!({"status": {"state": "PENDING"}})).state,
            RunState::Pending
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "running"}})).state,
            RunState::Running
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "Done"}})).state,
            RunState::Succeeded
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "CANCELED"}})).state,
            RunState::Cancelled
        );
        assert_eq!(
            status(serde_json::json!({"status": "failed"})).state,
            RunState::Failed
        );
        assert_eq!(
            status(serde_json::json!({"status": {"state": "QUEUED_SOMEWHERE"}})).state,
            RunState::Running
        );
    }

    #[test]
    fn done_with_error_result_is_a_failure() {
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {
            "reason": "invalidQuery", "location": "query",
            "message": "Query error: Cannot coerce expression @number_of_clusters to type INT64 at [1:158]"}}}),
        );
        assert_eq!(s.state, RunState::Failed);
        assert_eq!(s.attribution, Some(Attribution::Customer));
        assert!(
            s.reason
                .as_deref()
                .unwrap_or_default()
                .contains("Cannot coerce"),
            "{s:?}"
        );
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {"reason": "backendError", "message": "x"}}}),
        );
        assert_eq!(
            (s.state, s.attribution),
            (RunState::Failed, Some(Attribution::Platform))
        );
        let s = status(
            serde_json::json!({"status": {"state": "DONE", "errorResult": {"reason": "stopped", "message": "x"}}}),
        );
        assert_eq!(s.state, RunState::Cancelled);
    }
}
