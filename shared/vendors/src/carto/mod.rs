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
//! - The export CSV comes from `POST /v3/sql/{connection}/query` with the JSON body
//!   `{"q", "format": "csv", "queryParameters"?}` (the SQL API reference: `GET /query` is "Cached
//!   for 1 year", `POST /query` is "Never cached" and takes queries too long for a URL; CARTO's
//!   own client switches to POST above ~7,000 characters). `queryParameters` carries only the
//!   parameters the export SQL references, and is absent when it references none.
//!
//! # Settings (`carto.*`)
//! `api_base` (default `https://gcp-us-east1.api.carto.com`); either `api_token` (a long-lived
//! API access token) or `client_id` + `client_secret` (an M2M OAuth client) with `token_url`
//! (default `https://auth.carto.com/oauth/token`). Without `api_token`, a missing `client_id` or
//! `client_secret` is a configuration error naming that setting.
//!
//! # Reconciliation: none, so no resubmit
//! [`Vendor::find_submitted`] always answers `Ok(None)` and [`Vendor::can_reconcile`] is false:
//! the create request carries nothing runbridge could later match (CARTO's documented body is
//! `query` and `queryParameters` only), and the shape and filters of `GET /v3/sql/jobs` are not
//! documented, so a job whose create answer was lost cannot be found again. Such a submit stays
//! [`VendorError::OutcomeUnknown`], and the handlers never resubmit it: a lost create answer, a
//! 5xx on the create, a crash between the submit and the ledger record, or a submit cut off at
//! the invocation's deadline ends in `Unreconcilable`, a non-retryable error that sends the
//! request to the dead-letter queue with the reason. A lost result is loud (a DLQ message and its
//! alarm); a duplicate job would be silent and billed. The operator checks the workspace's job
//! history and resends with a new `request_id` if the job never ran (`docs/RUNBOOK.md`,
//! "`Unreconcilable`"). This is where runbridge's exactly-once submit ends for CARTO
//! (`docs/RELIABILITY.md`); tested by `tests/tests/fault_matrix.rs`
//! (`carto_lost_submit_answer_is_never_resubmitted_and_goes_to_an_operator`,
//! `a_submit_answered_500_is_reconciled_then_submitted_once`: 0 jobs at CARTO) and
//! `tests/tests/handlers.rs` (`a_lost_submit_answer_is_never_resubmitted_where_the_vendor_cannot_tell`).
//!
//! The export CSV carries no digest either (no ETag, no checksum header), so a same-length
//! corruption in transit cannot be detected; TLS protects it in practice
//! (`a_corrupted_carto_export_lands_as_served_for_want_of_a_digest` pins the gap).
//!
//! The create answer echoes the caller's token (`"token"` in the doc's example), so response
//! bodies of the create call are never put into errors or logs.
//!
//! # Layout
//! This file holds the client (the [`Vendor`] impl, `build`, job and export URLs); beside it:
//! `config` (setting defaults and the credential choice), `wire` (CARTO's answers, state and
//! attribution mapping, error JSON) and `body` (the job-creation body). There is no `reconcile`:
//! see above.
//!
//! [`RunState`]: runbridge_core::RunState

mod body;
mod config;
#[cfg(test)]
mod doc_examples;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use runbridge_core::request::CartoRun;
use runbridge_core::{
    IdempotencyKey, ResolvedRequest, RunState, RunStatus, VendorKind, VendorSpec,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::TokenSource;
use crate::download::{self, DownloadPolicy};
use crate::http::{ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::spec::{run_of, VendorRun};
use crate::vendor::VendorEntry;
use crate::{
    CancelOutcome, ResultFile, ResultStream, ResultsAvailability, RunRef, Settings, SubmittedRun,
    Vendor, VendorError,
};

pub use body::{create_body, export_body};
pub use config::{AUDIENCE, DEFAULT_API_BASE, DEFAULT_TOKEN_URL};

use wire::{api_error, created_job, Job};

/// The settings the CARTO client reads (see [`VendorEntry::settings`]): the endpoints here, the
/// credentials (an API token, or client credentials) in `config`.
pub const SETTINGS: &[&str] = &[
    "api_token",
    "client_id",
    "client_secret",
    "api_base",
    "token_url",
];

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Carto,
    build,
    max_concurrent: None,
    settings: SETTINGS,
};

const VENDOR: VendorKind = VendorKind::Carto;
/// Name of the single export file.
const EXPORT_FILE_NAME: &str = "export.csv";

impl VendorRun for CartoRun {
    const VENDOR: VendorKind = VENDOR;

    fn narrow(spec: &VendorSpec) -> Option<&Self> {
        match spec {
            VendorSpec::Carto(run) => Some(run),
            _ => None,
        }
    }

    fn mismatch(other: VendorKind) -> String {
        format!("a {other} request was sent to the CARTO client")
    }
}

/// Not rate-limited per request: the budget is not used.
fn build(
    settings: &Settings,
    retry: &RetryConfig,
    _: &Arc<dyn crate::rate::RateBudget>,
) -> Result<Arc<dyn Vendor>, VendorError> {
    let api_base = settings.url_or(VENDOR, "api_base", DEFAULT_API_BASE)?;
    let host = api_base.host_str().ok_or_else(|| VendorError::Config {
        vendor: VENDOR,
        setting: "carto.api_base".into(),
        message: "has no host".into(),
    })?;
    let token_url = settings.plain_or(VENDOR, "token_url", config::DEFAULT_TOKEN_URL);
    crate::endpoints::check_endpoints(
        settings,
        VENDOR,
        &[("api_base", api_base.as_str()), ("token_url", &token_url)],
    )?;
    // Only the SQL API itself (its host and port) serves export CSVs.
    let host_rule = format!("{host}:{}", api_base.port_or_known_default().unwrap_or(443));
    let download_policy = DownloadPolicy::from_settings(settings, VENDOR, &[&host_rule])?;
    let http = HttpClient::new(VENDOR, retry.clone())?.for_profile(settings.profile());
    let tokens = config::token_source(settings, &http)?;
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
        let job: Job = self
            .send(Idempotency::Safe, |c, token| {
                c.get(url.clone()).bearer_auth(token)
            })
            .await?
            .success_or(api_error)?
            .json(VENDOR)?;
        Ok(job.run_status())
    }

    /// The export as a file: `POST /v3/sql/{connection}/query` with [`export_body`]. CARTO
    /// caches `GET /query` for a year, so a GET could land an earlier run's bytes; the POST is
    /// never cached and has no URL-length limit.
    fn export_file(&self, run: &CartoRun, export_query: &str) -> ResultFile {
        let url = self.sql_url(&[&run.connection, "query"]);
        ResultFile {
            name: EXPORT_FILE_NAME.into(),
            url: SecretString::from(url.to_string()),
            size_hint: None,
            post_json: Some(export_body(export_query, &run.query_parameters)),
        }
    }

    /// Opens the export with `token` (download::open sends it to the allowed host only).
    async fn open_with(
        &self,
        file: &ResultFile,
        token: &SecretString,
    ) -> Result<reqwest::Response, VendorError> {
        download::open(
            &self.http,
            &self.download_policy,
            file,
            Some(token.expose_secret()),
        )
        .await
    }
}

#[async_trait]
impl Vendor for Carto {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &ResolvedRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let run: &CartoRun = run_of(request)?;
        let url = self.sql_url(&[&run.connection, "job"]);
        let body = create_body(request)?;
        let response = self
            .send(Idempotency::Unsafe, |c, token| {
                c.post(url.clone()).bearer_auth(token).json(&body)
            })
            .await?
            .success_or(api_error)?;
        let submitted = created_job(&response.body)?;
        tracing::info!(vendor = %VENDOR, job_id = submitted.vendor_run_id.as_str(), connection = %run.connection, "job created");
        Ok(submitted)
    }

    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let carto: &CartoRun = run_of(run.request)?;
        self.job_status(&carto.connection, run.vendor_run_id).await
    }

    async fn results(&self, run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        let carto: &CartoRun = run_of(run.request)?;
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
        Ok(ResultsAvailability::Ready(vec![
            self.export_file(carto, export_query)
        ]))
    }

    async fn cancel(&self, run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let carto: &CartoRun = run_of(run.request)?;
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

    fn results_may_lag_success(&self) -> bool {
        // The export query reads what the DONE job wrote: ready with the success poll saw. Collect
        // checks the job once more itself, so a premature collect still waits.
        false
    }

    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError> {
        // The query endpoint wants the bearer token; a rejected one is refreshed once, as
        // `send_authorized` does for API calls.
        let token = self.tokens.token().await?;
        let mut response = self.open_with(file, &token).await?;
        if crate::auth::token_rejected(VENDOR, response.status()) {
            self.tokens.invalidate(&token).await;
            let token = self.tokens.token().await?;
            response = self.open_with(file, &token).await?;
        }
        if response.status().is_success() {
            return Ok(ResultStream::from_response(
                VENDOR,
                file,
                response,
                self.http.retry_config(),
            ));
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
