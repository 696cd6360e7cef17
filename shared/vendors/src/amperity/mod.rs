//! Amperity workflow runs, API version `2024-04-01`.
//!
//! This module owns everything runbridge says to Amperity: starting a workflow run of a courier
//! group (`cg-`), orchestration group (`og-`) or campaign (`cc-`) with `POST /workflow/runs`,
//! reading it with `GET /workflow/runs/{id}?view=verbose` (the `overview` view omits `error`,
//! which carries the failure's attribution), stopping it with `POST /workflow/runs/{id}/stop`,
//! and finding a run whose start answer was lost with the `GET /workflow/runs` list.
//!
//! Every request goes to the `amperity.api_base` template (`{tenant}` replaced by the request's
//! tenant), which depends on where the tenant is hosted (the spec's two servers): Azure tenants
//! `https://{tenant}.amperity.com/api` (the default, [`AZURE_API_BASE`]), AWS tenants
//! `https://app.amperity.com/api` ([`AWS_API_BASE`]). Every request carries the
//! headers `amperity-tenant`, `api-version: 2024-04-01` and a bearer token from the tenant's
//! token endpoint (`amperity.token_url`, default `https://{tenant}.amperity.com/api/v0/oauth2/token`,
//! client credentials `amperity.client_id` / `amperity.client_secret`). API keys are per tenant,
//! so each tenant gets its own cached [`TokenSource`]. Amperity allows 10 requests per second
//! per tenant: every call of a tenant (token fetches and retries included) takes its turn from
//! the tenant's rate budget ([`crate::rate::RateBudget`], `amperity.requests_per_second`,
//! default 10; shared by every Lambda environment of a deployed stack), and a 429 with
//! `Retry-After` is still waited out.
//!
//! States are compared case-insensitively with `-`, `_` and spaces treated alike: `scheduled` is
//! pending; `started`, `in progress`, `running`, `running with failures` (tasks failed but the
//! workflow has not ended), `stopping`, `canceling`, `paused`, `finalizing` are running;
//! `succeeded`; `failed`; `canceled` and `stopped` are cancelled. Anything else is logged and
//! treated as running, so a new state never ends a run by mistake. `error.attribution`
//! (`customer` / `platform`) becomes the status's attribution and `error.message` its reason.
//!
//! Workflow runs produce no file: [`Vendor::results`] answers [`ResultsAvailability::NoFiles`].
//!
//! Reconciliation ([`Vendor::find_submitted`]) matches runs by every field the list echoes that
//! runbridge can predict: the workflow *name* of the request's configuration (from
//! `amperity.workflow_names` or an earlier answer; the list does not show the configuration id),
//! the courier-group type, the creation time inside the claim's window (`created_from` /
//! `created_to`), and the starting principal (`amperity.principal_id` or an earlier start's
//! answer; never the scheduler's "Automated workflow"). More than one match is
//! [`VendorError::Ambiguous`]; a page budget that runs out is "unknown", never "not found". The
//! details are in the `reconcile` submodule.
//!
//! # Layout
//! This file holds the client (the [`Vendor`] impl, `build`, per-tenant tokens and headers);
//! beside it: `config` (URL templates, API version, workflow names), `wire` (Amperity's answers,
//! state mapping, error shape), `body` (the start body) and `reconcile` (finding a lost start).

mod body;
mod config;
#[cfg(test)]
mod doc_examples;
mod reconcile;
mod wire;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::StatusCode;
use runbridge_core::request::AmperityRun;
use runbridge_core::{
    IdempotencyKey, ResolvedRequest, RunState, RunStatus, VendorKind, VendorSpec,
};
use secrecy::SecretString;

use crate::auth::TokenSource;
use crate::download::DownloadPolicy;
use crate::http::{ApiResponse, HttpClient, Idempotency, RetryConfig};
use crate::rate::{RateBudget, RateGate};
use crate::result_stream;
use crate::spec::{run_of, VendorRun};
use crate::vendor::{ReconcileWindow, VendorEntry};
use crate::{
    CancelOutcome, ResultFile, ResultStream, ResultsAvailability, RunRef, Settings, SubmittedRun,
    Vendor, VendorError,
};

pub use body::create_body;
pub use config::{API_VERSION, AWS_API_BASE, AZURE_API_BASE, DEFAULT_API_BASE, DEFAULT_TOKEN_URL};
pub use reconcile::{
    COURIER_GROUP_TYPE, LIST_PAGE_INTERVAL, LIST_PAGE_SIZE, MAX_RECONCILE_PAGES,
    SCHEDULER_PRINCIPAL_NAME,
};
pub use wire::map_state;

use wire::{api_error, run_status, Workflow};

/// The settings the Amperity client reads (see [`VendorEntry::settings`]): the credentials,
/// endpoints and reconciliation settings here, the rate limit in `config`.
pub const SETTINGS: &[&str] = &[
    "client_id",
    "client_secret",
    "workflow_names",
    "api_base",
    "token_url",
    "principal_id",
    "requests_per_second",
];

/// Registry entry.
pub const ENTRY: VendorEntry = VendorEntry {
    kind: VendorKind::Amperity,
    build,
    max_concurrent: None,
    settings: SETTINGS,
};

const VENDOR: VendorKind = VendorKind::Amperity;

impl VendorRun for AmperityRun {
    const VENDOR: VendorKind = VENDOR;

    fn narrow(spec: &VendorSpec) -> Option<&Self> {
        match spec {
            VendorSpec::Amperity(run) => Some(run),
            _ => None,
        }
    }

    fn mismatch(other: VendorKind) -> String {
        format!("the Amperity client was given a {other} request")
    }
}

fn build(
    settings: &Settings,
    retry: &RetryConfig,
    rate_budget: &Arc<dyn RateBudget>,
) -> Result<Arc<dyn Vendor>, VendorError> {
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let workflow_names =
        config::parse_workflow_names(&settings.plain_or(VENDOR, "workflow_names", ""))?;
    let api_base = settings.plain_or(VENDOR, "api_base", DEFAULT_API_BASE);
    let token_url = settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL);
    crate::endpoints::check_endpoints(
        settings,
        VENDOR,
        &[("api_base", &api_base), ("token_url", &token_url)],
    )?;
    Ok(Arc::new(AmperityClient {
        http: HttpClient::new(VENDOR, retry.clone())?.for_profile(settings.profile()),
        api_base,
        token_url,
        client_id,
        client_secret,
        download_policy: DownloadPolicy::from_settings(settings, VENDOR, &[".amperity.com"])?,
        requests_per_second: config::requests_per_second(settings)?,
        rate_budget: rate_budget.clone(),
        tokens: Mutex::new(HashMap::new()),
        configured_names: workflow_names,
        learned_names: Mutex::new(HashMap::new()),
        configured_principal: settings
            .plain_or(VENDOR, "principal_id", "")
            .trim()
            .to_owned(),
        learned_principals: Mutex::new(HashMap::new()),
    }))
}

/// The Amperity client.
pub struct AmperityClient {
    http: HttpClient,
    api_base: String,
    token_url: String,
    client_id: SecretString,
    client_secret: SecretString,
    download_policy: DownloadPolicy,
    /// Amperity's limit per tenant (`amperity.requests_per_second`, default 10).
    requests_per_second: NonZeroU32,
    /// Where every request of a tenant takes its turn (the stack's shared budget when deployed).
    rate_budget: Arc<dyn RateBudget>,
    /// One token source per tenant: API keys are tenant-specific.
    tokens: Mutex<HashMap<String, Arc<TokenSource>>>,
    /// Config id → workflow name, from `amperity.workflow_names`.
    configured_names: HashMap<String, String>,
    /// (tenant, config id) → workflow name, seen in responses of this process.
    learned_names: Mutex<HashMap<(String, String), String>>,
    /// The `principal_id` runs started with this API key carry (`amperity.principal_id`; empty
    /// when not configured).
    configured_principal: String,
    /// tenant → the `principal_id` a start answered in this process.
    learned_principals: Mutex<HashMap<String, String>>,
}

impl AmperityClient {
    fn api_url(&self, tenant: &str, path: &str) -> String {
        format!(
            "{}{path}",
            self.api_base
                .replace("{tenant}", tenant)
                .trim_end_matches('/')
        )
    }

    /// The client for `tenant`'s API: every call (token fetches and retries included) takes
    /// its turn from the tenant's rate budget.
    fn tenant_http(&self, tenant: &str) -> HttpClient {
        let account = format!("amperity:{}", self.api_url(tenant, ""));
        self.http.clone().with_rate_limit(RateGate::new(
            self.rate_budget.clone(),
            &account,
            self.requests_per_second,
        ))
    }

    fn token_source(&self, tenant: &str) -> Arc<TokenSource> {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(
                    TokenSource::client_credentials(
                        self.tenant_http(tenant),
                        self.token_url.replace("{tenant}", tenant),
                        self.client_id.clone(),
                        self.client_secret.clone(),
                        None,
                    )
                    // Every request to Amperity names its tenant, the token's too: the vendor
                    // counts it against that tenant's limit.
                    .with_header("amperity-tenant", tenant),
                )
            })
            .clone()
    }

    /// Sends one request with the tenant's token and the required headers.
    async fn send<F>(
        &self,
        idempotency: Idempotency,
        tenant: &str,
        build: F,
    ) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        let tokens = self.token_source(tenant);
        self.tenant_http(tenant)
            .send_authorized(idempotency, &tokens, |client, token| {
                build(client)
                    .bearer_auth(token)
                    .header("amperity-tenant", tenant)
                    .header("api-version", API_VERSION)
            })
            .await
    }
}

#[async_trait]
impl Vendor for AmperityClient {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &ResolvedRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        let run: &AmperityRun = run_of(request)?;
        let body = body::start_body(run);
        let url = self.api_url(&run.tenant, "/workflow/runs");
        // The spec documents 201; the endpoint page shows 200. Both mean the run started.
        let response = self
            .send(Idempotency::Unsafe, &run.tenant, |c| {
                c.post(&url).json(&body)
            })
            .await?
            .success_or(api_error)?;
        // A 2xx was answered: whatever its body, Amperity may have started the run.
        let workflow: Workflow = serde_json::from_slice(&response.body)
            .map_err(|e| VendorError::unreadable_create(VENDOR, "did not parse", Some(&e)))?;
        if workflow.id.is_empty() {
            return Err(VendorError::unreadable_create(
                VENDOR,
                "names no run id",
                None,
            ));
        }
        self.remember_name(&run.tenant, &run.config_id, &workflow);
        self.remember_principal(&run.tenant, &workflow);
        tracing::info!(vendor = %VENDOR, run_id = %workflow.id, state = %workflow.state, "workflow run started");
        Ok(SubmittedRun {
            vendor_run_id: workflow.id,
            vendor_state: Some(workflow.state),
        })
    }

    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let spec: &AmperityRun = run_of(run.request)?;
        let url = self.api_url(
            &spec.tenant,
            &format!("/workflow/runs/{}", run.vendor_run_id),
        );
        let workflow: Workflow = self
            .send(Idempotency::Safe, &spec.tenant, |c| {
                c.get(&url).query(&[("view", "verbose")])
            })
            .await?
            .success_or(api_error)?
            .json(VENDOR)?;
        self.remember_name(&spec.tenant, &spec.config_id, &workflow);
        Ok(run_status(&workflow))
    }

    async fn results(&self, _run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        Ok(ResultsAvailability::NoFiles)
    }

    async fn cancel(&self, run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let spec: &AmperityRun = run_of(run.request)?;
        let url = self.api_url(
            &spec.tenant,
            &format!("/workflow/runs/{}/stop", run.vendor_run_id),
        );
        // Stopping twice is harmless, so the stop may be retried. The stop takes no body; it is
        // sent empty with `Content-Length: 0`, since some gateways answer a body-less POST
        // without a length with 411.
        let response = self
            .send(Idempotency::Safe, &spec.tenant, |c| {
                c.post(&url)
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .body(Vec::<u8>::new())
            })
            .await?;
        if response.status == StatusCode::CONFLICT {
            return Ok(CancelOutcome::AlreadyFinal);
        }
        if response.status == StatusCode::BAD_REQUEST {
            // The stop's documented errors are 400/401/403/404/500, with nothing said about a
            // run that already ended: a 400 may be that, or a genuine request error, so look at
            // the run before concluding.
            let error = api_error(&response);
            return match self.status(run).await {
                Ok(status) if status.state.is_final() => Ok(CancelOutcome::AlreadyFinal),
                _ => Err(error),
            };
        }
        let workflow: Workflow = response.success_or(api_error)?.json(VENDOR)?;
        Ok(match map_state(&workflow.state) {
            RunState::Succeeded | RunState::Failed => CancelOutcome::AlreadyFinal,
            _ => CancelOutcome::Requested,
        })
    }

    fn results_may_lag_success(&self) -> bool {
        // Workflow runs have no result files.
        false
    }

    async fn open_result(&self, file: &ResultFile) -> Result<ResultStream, VendorError> {
        // Workflow runs have no result files; this only serves a file a caller built itself.
        result_stream::open(&self.http, &self.download_policy, file, None).await
    }

    fn can_reconcile(&self, request: &ResolvedRequest) -> bool {
        // Runs are matched by workflow name, which only configuration (or an earlier answer in
        // this process) maps from the config id.
        run_of::<AmperityRun>(request)
            .is_ok_and(|run| self.workflow_name(&run.tenant, &run.config_id).is_some())
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
