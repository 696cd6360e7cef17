//! Amazon Marketing Cloud (AMC) workflow executions.
//!
//! This module owns everything runbridge says to AMC's workflow-management API
//! (`{api_base}/amc/reporting/{instanceId}/workflowExecutions`):
//!
//! - **Settings**: `amc.client_id`, `amc.client_secret`, `amc.refresh_token` (secrets, required);
//!   `amc.region` (`na` default, `eu`, `fe`) choosing the API host
//!   (`advertising-api[-eu|-fe].amazon.com`) and the Login with Amazon token host
//!   (`api.amazon.com`, `api.amazon.co.uk`, `api.amazon.co.jp`); `amc.api_base` and
//!   `amc.token_url` override those (https only; plain http to loopback only with the sandbox
//!   switch `amc.download_allow_loopback`, which a deployed function refuses);
//!   `amc.download_hosts` extends the download allow-list (default: S3 endpoints on port 443,
//!   where AMC's presigned URLs point) and `amc.private_download_hosts` names hosts that may
//!   resolve to private addresses (an S3 interface endpoint in a VPC).
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
//!   [`crate::http::status_error`], with a field named when `details` quotes one.
//! - **Reconciliation** ([`Vendor::find_submitted`]): lists executions created since the submit
//!   and matches the query or workflow, window and parameters; two identical requests submitted
//!   in the same period cannot be told apart (AMC stores no client token). The details, and what
//!   is not compared, are in the `reconcile` submodule.
//!
//! # Layout
//! This file holds the client (the [`Vendor`] impl and `build`); beside it:
//! `config` (region, endpoints, download hosts), `wire` (AMC's answers and status mapping),
//! `error` (AMC's error bodies), `body` (the create body), `reconcile` (finding a lost submit)
//! and `sql` (the single-line SQL lexer).

mod body;
mod config;
#[cfg(test)]
mod doc_examples;
mod error;
mod reconcile;
mod sql;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use runbridge_core::request::AmcRun;
use runbridge_core::{IdempotencyKey, ResolvedRequest, RunStatus, VendorKind, VendorSpec};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::TokenSource;
use crate::download::DownloadPolicy;
use crate::http::{ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::result_stream;
use crate::spec::{run_of, VendorRun};
use crate::vendor::{ReconcileWindow, VendorEntry};
use crate::{
    CancelOutcome, ResultFile, ResultStream, ResultsAvailability, RunRef, Settings, SubmittedRun,
    Vendor, VendorError,
};

pub use body::create_body;
pub use config::MEDIA_TYPE;
pub use sql::normalize_sql;
pub use wire::map_state;

use error::{api_error, error_message, not_published_yet};
use wire::{parse_execution, run_status, DownloadUrls};

/// The settings the AMC client reads (see [`VendorEntry::settings`]): the credentials here, the
/// region and its endpoint overrides in `config`.
pub const SETTINGS: &[&str] = &[
    "client_id",
    "client_secret",
    "refresh_token",
    "region",
    "api_base",
    "token_url",
];

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Amc,
    build,
    // "About 10 concurrently running (PENDING + RUNNING) executions per instance."
    max_concurrent: Some(10),
    settings: SETTINGS,
};

const VENDOR: VendorKind = VendorKind::Amc;

impl VendorRun for AmcRun {
    const VENDOR: VendorKind = VENDOR;

    fn narrow(spec: &VendorSpec) -> Option<&Self> {
        match spec {
            VendorSpec::Amc(run) => Some(run),
            _ => None,
        }
    }

    fn mismatch(other: VendorKind) -> String {
        format!("request is for {other}, not amc")
    }
}

/// Not rate-limited per request: the budget is not used.
fn build(
    settings: &Settings,
    retry: &RetryConfig,
    _: &Arc<dyn crate::rate::RateBudget>,
) -> Result<Arc<dyn Vendor>, VendorError> {
    let (api_base, token_url) = config::endpoints(settings)?;
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let refresh_token = settings.require_secret(VENDOR, "refresh_token")?;
    let http = HttpClient::new(VENDOR, retry.clone())?.for_profile(settings.profile());
    let tokens = TokenSource::refresh_token(
        http.clone(),
        token_url,
        client_id.clone(),
        client_secret,
        refresh_token,
    );
    let downloads = DownloadPolicy::from_settings(settings, VENDOR, config::DOWNLOAD_HOSTS)?;
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

impl AmcClient {
    /// `{api_base}/amc/reporting/{instance}/workflowExecutions[/{segments}…]`, each segment
    /// percent-encoded.
    fn url(&self, instance_id: &str, segments: &[&str]) -> Result<Url, VendorError> {
        let mut url = config::api_base_url(&self.api_base)?;
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
}

#[async_trait]
impl Vendor for AmcClient {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    fn concurrency_scope(&self, request: &ResolvedRequest) -> Option<String> {
        run_of::<AmcRun>(request)
            .ok()
            .map(|run| run.instance_id.clone())
    }

    async fn submit(
        &self,
        request: &ResolvedRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let run: &AmcRun = run_of(request)?;
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
            .await?
            .success_or(api_error)?;
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
        let run: &AmcRun = run_of(run_ref.request)?;
        let url = self.url(&run.instance_id, &[run_ref.vendor_run_id])?;
        let response = self.get(run, &url).await?.success_or(api_error)?;
        run_status(parse_execution(&response)?)
    }

    async fn results(&self, run_ref: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        let run: &AmcRun = run_of(run_ref.request)?;
        let url = self.url(&run.instance_id, &[run_ref.vendor_run_id, "downloadUrls"])?;
        let response = self.get(run, &url).await?;
        if !response.status.is_success() {
            let message = error_message(&response);
            if not_published_yet(&response, &message) {
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
                url: {
                    // A presigned URL's signature and session token are credentials.
                    crate::http::register_url(&url);
                    SecretString::from(url)
                },
                size_hint: None,
                post_json: None,
            })
            .collect();
        Ok(ResultsAvailability::Ready(files))
    }

    async fn cancel(&self, run_ref: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let run: &AmcRun = run_of(run_ref.request)?;
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

    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError> {
        // Presigned S3 URLs carry their own signature: no bearer token.
        result_stream::open(&self.http, &self.downloads, file, None).await
    }

    fn can_reconcile(&self, _request: &ResolvedRequest) -> bool {
        true
    }

    async fn find_submitted(
        &self,
        request: &ResolvedRequest,
        _key: &IdempotencyKey,
        window: ReconcileWindow,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        self.find_execution(request, window).await
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

#[cfg(test)]
mod tests {
    use super::body::parse_request_time;
    use super::error::quoted_field;
    use super::wire::{amc_time, parse_amc_time};
    use super::*;

    #[test]
    fn missing_credentials_name_the_setting() {
        let mut s = Settings::new();
        s.set("amc.client_id", "id");
        s.set("amc.client_secret", "secret");
        match build(
            &s,
            &RetryConfig::fast(),
            &crate::rate::InProcessBudget::process(),
        ) {
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
