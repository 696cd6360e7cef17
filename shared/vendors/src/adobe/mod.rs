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
//! - Reconciliation ([`Vendor::find_submitted`]): the one run of the flow, in the request's
//!   sandbox, that this API client created inside the claim's window for the same data window;
//!   two such runs are [`VendorError::Ambiguous`], never a guess. The match fields are in the
//!   `reconcile` submodule.
//!
//! # Layout
//! This file holds the client (the [`Vendor`] impl, `build`, Platform headers); beside it:
//! `config` (setting defaults), `wire` (Flow Service's answers, state and attribution mapping,
//! error shapes), `body` (the create-run body) and `reconcile` (finding a lost submit).
//!
//! [`RunState`]: runbridge_core::RunState

mod body;
mod config;
#[cfg(test)]
mod doc_examples;
mod reconcile;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use runbridge_core::request::AdobeRun;
use runbridge_core::{
    IdempotencyKey, OffsetDateTime, ResolvedRequest, RunStatus, VendorKind, VendorSpec,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::TokenSource;
use crate::download::DownloadPolicy;
use crate::http::{ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::result_stream;
use crate::spec::VendorRun;
use crate::vendor::{ReconcileWindow, VendorEntry};
use crate::{
    CancelOutcome, ResultFile, ResultStream, ResultsAvailability, RunRef, Settings, SubmittedRun,
    Vendor, VendorError,
};

pub use body::create_run_body;
pub use config::{DEFAULT_API_BASE, DEFAULT_SANDBOX, DEFAULT_SCOPES, DEFAULT_TOKEN_URL};
pub use reconcile::MAX_LIST_PAGES as MAX_RECONCILE_PAGES;
pub use wire::{attribution, map_state, RunError};

use wire::{api_error, Created, RunsPage};

/// The settings the Adobe client reads (see [`VendorEntry::settings`]).
pub const SETTINGS: &[&str] = &[
    "client_id",
    "client_secret",
    "org_id",
    "api_base",
    "token_url",
    "scopes",
    "sandbox_name",
];

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Adobe,
    build,
    max_concurrent: None,
    settings: SETTINGS,
};

const VENDOR: VendorKind = VendorKind::Adobe;

impl VendorRun for AdobeRun {
    const VENDOR: VendorKind = VENDOR;

    fn narrow(spec: &VendorSpec) -> Option<&Self> {
        match spec {
            VendorSpec::Adobe(run) => Some(run),
            _ => None,
        }
    }

    fn mismatch(other: VendorKind) -> String {
        format!("a {other} request was sent to the Adobe client")
    }
}

/// Not rate-limited per request: the budget is not used.
fn build(
    settings: &Settings,
    retry: &RetryConfig,
    _: &Arc<dyn crate::rate::RateBudget>,
) -> Result<Arc<dyn Vendor>, VendorError> {
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let org_id = settings.require_secret(VENDOR, "org_id")?;
    let api_base = settings.url_or(VENDOR, "api_base", DEFAULT_API_BASE)?;
    let token_url = settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL);
    crate::endpoints::check_endpoints(
        settings,
        VENDOR,
        &[("api_base", api_base.as_str()), ("token_url", &token_url)],
    )?;
    let scopes = settings.plain_or(VENDOR, "scopes", DEFAULT_SCOPES);
    let http = HttpClient::new(VENDOR, retry.clone())?.for_profile(settings.profile());
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
        download: DownloadPolicy::from_settings(settings, VENDOR, &[])?,
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

impl Adobe {
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The request's sandbox, else the configured one. Deliberately not an error for another
    /// vendor's request: `status` reads only the sandbox, and has never refused one.
    fn sandbox<'a>(&'a self, request: &'a ResolvedRequest) -> &'a str {
        AdobeRun::narrow(&request.spec)
            .and_then(|run| run.sandbox_name.as_deref())
            .unwrap_or(&self.default_sandbox)
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
        self.http
            .send_authorized(Idempotency::Safe, &self.tokens, |c, token| {
                self.platform_request(c, Method::GET, url.clone(), token, sandbox)
            })
            .await?
            .success_or(api_error)
    }
}

#[async_trait]
impl Vendor for Adobe {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &ResolvedRequest,
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
            .await?
            .success_or(api_error)?;
        // A 2xx was answered: whatever its body, Adobe may have created the run.
        let created: Created = serde_json::from_slice(&response.body)
            .map_err(|e| VendorError::unreadable_create(VENDOR, "did not parse", Some(&e)))?;
        let id = created
            .run_id()
            .ok_or_else(|| VendorError::unreadable_create(VENDOR, "names no run id", None))?;
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

    fn results_may_lag_success(&self) -> bool {
        // Flow runs have no result files.
        false
    }

    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError> {
        result_stream::open(&self.http, &self.download, file, None).await
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
        self.find_run(request, window).await
    }
}
