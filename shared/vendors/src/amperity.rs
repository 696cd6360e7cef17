//! Amperity workflow runs, API version `2024-04-01`.
//!
//! This module owns everything runbridge says to Amperity: starting a workflow run of a courier
//! group (`cg-`), orchestration group (`og-`) or campaign (`cc-`) with `POST /workflow/runs`,
//! reading it with `GET /workflow/runs/{id}?view=verbose` (the `overview` view omits `error`,
//! which carries the failure's attribution), stopping it with `POST /workflow/runs/{id}/stop`,
//! and finding a run whose start answer was lost with the `GET /workflow/runs` list.
//!
//! Every request goes to the `amperity.api_base` template (default
//! `https://{tenant}.amperity.com/api`, `{tenant}` replaced by the request's tenant) with the
//! headers `amperity-tenant`, `api-version: 2024-04-01` and a bearer token from the tenant's
//! token endpoint (`amperity.token_url`, default `https://{tenant}.amperity.com/api/v0/oauth2/token`,
//! client credentials `amperity.client_id` / `amperity.client_secret`). API keys are per tenant,
//! so each tenant gets its own cached [`TokenSource`].
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
//! Reconciliation ([`Vendor::find_submitted`]): the list response exposes each run's `id`,
//! `name`, `type`, `state` and `created_at`, but not the configuration id it was started for.
//! A run is therefore matched by the workflow *name* of the request's configuration, created at
//! or after `since` (server-side `created_from` filter), and for courier groups also by the
//! documented type `courier.group/run` (server-side `type` filter; the types of orchestration
//! groups and campaigns are not documented, so those are matched by name alone). The name comes
//! from the optional setting `amperity.workflow_names` (`cg-1=Daily files;og-2=Nightly`) or, in
//! the same process, from an earlier response for that configuration. When the name is unknown
//! the module cannot tell runs apart and answers `Ok(None)` with a warning. Two runs of the same
//! configuration started after `since` (say, a schedule and runbridge) are indistinguishable; the
//! earliest is returned, which does the same work. Pages are followed up to
//! [`MAX_RECONCILE_PAGES`] pages of [`LIST_PAGE_SIZE`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::StatusCode;
use runbridge_core::request::{AmperityRun, AmperityRunMode};
use runbridge_core::{
    Attribution, IdempotencyKey, OffsetDateTime, RunRequest, RunState, RunStatus, VendorKind,
    VendorSpec,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

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
    kind: VendorKind::Amperity,
    build,
};

const VENDOR: VendorKind = VendorKind::Amperity;
/// The API version every request names.
pub const API_VERSION: &str = "2024-04-01";
/// Default base URL template.
pub const DEFAULT_API_BASE: &str = "https://{tenant}.amperity.com/api";
/// Default token endpoint template.
pub const DEFAULT_TOKEN_URL: &str = "https://{tenant}.amperity.com/api/v0/oauth2/token";
/// The documented workflow type of courier-group runs.
pub const COURIER_GROUP_TYPE: &str = "courier.group/run";
/// Page size used when listing runs.
pub const LIST_PAGE_SIZE: u32 = 100;
/// Most list pages read by one reconciliation.
pub const MAX_RECONCILE_PAGES: usize = 20;
/// Request fields the vendor's messages may name.
const REQUEST_FIELDS: [&str; 4] = ["config_id", "range_from", "range_to", "run_mode"];

fn build(settings: &Settings, retry: &RetryConfig) -> Result<Arc<dyn Vendor>, VendorError> {
    let client_id = settings.require_secret(VENDOR, "client_id")?;
    let client_secret = settings.require_secret(VENDOR, "client_secret")?;
    let workflow_names = parse_workflow_names(&settings.plain_or(VENDOR, "workflow_names", ""))?;
    Ok(Arc::new(AmperityClient {
        http: HttpClient::new(VENDOR, retry.clone())?,
        api_base: settings.plain_or(VENDOR, "api_base", DEFAULT_API_BASE),
        token_url: settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL),
        client_id,
        client_secret,
        download_policy: DownloadPolicy::from_settings(settings, VENDOR, &[".amperity.com"]),
        tokens: Mutex::new(HashMap::new()),
        configured_names: workflow_names,
        learned_names: Mutex::new(HashMap::new()),
    }))
}

/// Parses `cg-1=Daily files;og-2=Nightly` into config id → workflow name.
fn parse_workflow_names(text: &str) -> Result<HashMap<String, String>, VendorError> {
    let mut names = HashMap::new();
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, name)) = pair.split_once('=') else {
            return Err(VendorError::Config {
                vendor: VENDOR,
                setting: "amperity.workflow_names".into(),
                message: format!("entry `{pair}` is not `config_id=Workflow name`"),
            });
        };
        names.insert(id.trim().to_owned(), name.trim().to_owned());
    }
    Ok(names)
}

/// The Amperity client.
pub struct AmperityClient {
    http: HttpClient,
    api_base: String,
    token_url: String,
    client_id: SecretString,
    client_secret: SecretString,
    download_policy: DownloadPolicy,
    /// One token source per tenant: API keys are tenant-specific.
    tokens: Mutex<HashMap<String, Arc<TokenSource>>>,
    /// Config id → workflow name, from `amperity.workflow_names`.
    configured_names: HashMap<String, String>,
    /// (tenant, config id) → workflow name, seen in responses of this process.
    learned_names: Mutex<HashMap<(String, String), String>>,
}

/// The start request body (`WorkflowRunRequest`).
#[derive(Debug, Serialize)]
struct StartBody<'a> {
    config_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_mode: Option<&'static str>,
}

/// A workflow run (`Workflow`), the fields this module reads.
#[derive(Debug, Deserialize)]
struct Workflow {
    id: String,
    state: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    error: Option<WorkflowError>,
}

#[derive(Debug, Deserialize)]
struct WorkflowError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    attribution: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A page of runs (`WorkflowList`).
#[derive(Debug, Deserialize)]
struct WorkflowList {
    data: Vec<Workflow>,
    #[serde(default)]
    next_token: Option<String>,
}

/// The error body (`ErrorResponse`).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
}

/// Maps an Amperity workflow state to the common state. Case, `-`, `_` and spaces do not matter;
/// an unknown state is logged and treated as still running.
pub fn map_state(vendor_state: &str) -> RunState {
    match normalize_state(vendor_state).as_str() {
        "scheduled" => RunState::Pending,
        "started"
        | "in progress"
        | "running"
        | "running with failures"
        | "stopping"
        | "canceling"
        | "cancelling"
        | "paused"
        | "finalizing" => RunState::Running,
        "succeeded" => RunState::Succeeded,
        "failed" => RunState::Failed,
        "canceled" | "cancelled" | "stopped" => RunState::Cancelled,
        _ => {
            tracing::warn!(vendor = %VENDOR, state = vendor_state, "unknown workflow state; treating it as running");
            RunState::Running
        }
    }
}

fn normalize_state(s: &str) -> String {
    s.trim()
        .to_ascii_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_attribution(value: Option<&str>) -> Option<Attribution> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("customer") => Some(Attribution::Customer),
        Some("platform") => Some(Attribution::Platform),
        _ => None,
    }
}

fn run_status(workflow: &Workflow) -> RunStatus {
    let mut status = RunStatus::new(map_state(&workflow.state), workflow.state.clone());
    if let Some(error) = &workflow.error {
        status.reason = match (&error.message, &error.kind) {
            (Some(m), Some(k)) => Some(format!("{m} ({k})")),
            (Some(m), None) => Some(m.clone()),
            (None, k) => k.clone(),
        };
        status.attribution = parse_attribution(error.attribution.as_deref());
    }
    status
}

fn amperity_run(request: &RunRequest) -> Result<&AmperityRun, VendorError> {
    match &request.spec {
        VendorSpec::Amperity(run) => Ok(run),
        _ => Err(VendorError::Config {
            vendor: VENDOR,
            setting: "vendor".into(),
            message: format!(
                "the Amperity client was given a {} request",
                request.vendor()
            ),
        }),
    }
}

/// Maps a non-success answer, reading the `{status, message}` error shape when present.
fn api_error(response: &ApiResponse) -> VendorError {
    let message = serde_json::from_slice::<ErrorBody>(&response.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| response.text_snippet());
    // The error shape has no field; name the request field the message mentions, if any.
    let field = (response.status == StatusCode::BAD_REQUEST)
        .then(|| {
            REQUEST_FIELDS
                .iter()
                .find(|f| message.contains(*f))
                .map(|f| (*f).to_owned())
        })
        .flatten();
    http::status_error(VENDOR, response, message, field)
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

    fn token_source(&self, tenant: &str) -> Arc<TokenSource> {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(TokenSource::client_credentials(
                    self.http.clone(),
                    self.token_url.replace("{tenant}", tenant),
                    self.client_id.clone(),
                    self.client_secret.clone(),
                    None,
                ))
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
        self.http
            .send_authorized(idempotency, &tokens, |client, token| {
                build(client)
                    .bearer_auth(token)
                    .header("amperity-tenant", tenant)
                    .header("api-version", API_VERSION)
            })
            .await
    }

    fn remember_name(&self, tenant: &str, config_id: &str, workflow: &Workflow) {
        if let Some(name) = &workflow.name {
            let mut learned = self
                .learned_names
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            learned.insert((tenant.to_owned(), config_id.to_owned()), name.clone());
        }
    }

    fn workflow_name(&self, tenant: &str, config_id: &str) -> Option<String> {
        if let Some(name) = self.configured_names.get(config_id) {
            return Some(name.clone());
        }
        let learned = self
            .learned_names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        learned
            .get(&(tenant.to_owned(), config_id.to_owned()))
            .cloned()
    }

    async fn list_page(
        &self,
        tenant: &str,
        filters: &[(&str, String)],
        next_token: Option<&str>,
    ) -> Result<WorkflowList, VendorError> {
        let url = self.api_url(tenant, "/workflow/runs");
        let response = self
            .send(Idempotency::Safe, tenant, |c| {
                let mut query: Vec<(&str, String)> = filters.to_vec();
                query.push(("limit", LIST_PAGE_SIZE.to_string()));
                if let Some(token) = next_token {
                    query.push(("next_token", token.to_owned()));
                }
                c.get(&url).query(&query)
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        response.json(VENDOR)
    }
}

fn timestamp(t: OffsetDateTime) -> Result<String, VendorError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| VendorError::protocol(VENDOR, format!("cannot format {t}: {e}")))
}

#[async_trait]
impl Vendor for AmperityClient {
    fn kind(&self) -> VendorKind {
        VENDOR
    }

    async fn submit(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
    ) -> Result<SubmittedRun, VendorError> {
        // A relative window is resolved against now, as RunRequest::resolve documents for
        // requests without a schedule time; the trigger normally resolves it first.
        let resolved;
        let request = if amperity_run(request)?.relative_window.is_some() {
            resolved = request.resolve(OffsetDateTime::now_utc());
            &resolved
        } else {
            request
        };
        let run = amperity_run(request)?;
        let body = StartBody {
            config_id: &run.config_id,
            range_from: run.range_from.as_deref(),
            range_to: run.range_to.as_deref(),
            run_mode: run.run_mode.map(|m| match m {
                AmperityRunMode::Full => "full",
                AmperityRunMode::Refresh => "refresh",
                AmperityRunMode::Source => "source",
            }),
        };
        let url = self.api_url(&run.tenant, "/workflow/runs");
        let response = self
            .send(Idempotency::Unsafe, &run.tenant, |c| {
                c.post(&url).json(&body)
            })
            .await?;
        // The spec documents 201; the endpoint page shows 200. Both mean the run started.
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let workflow: Workflow = response.json(VENDOR)?;
        self.remember_name(&run.tenant, &run.config_id, &workflow);
        tracing::info!(vendor = %VENDOR, run_id = %workflow.id, state = %workflow.state, "workflow run started");
        Ok(SubmittedRun {
            vendor_run_id: workflow.id,
            vendor_state: Some(workflow.state),
        })
    }

    async fn status(&self, run: RunRef<'_>) -> Result<RunStatus, VendorError> {
        let spec = amperity_run(run.request)?;
        let url = self.api_url(
            &spec.tenant,
            &format!("/workflow/runs/{}", run.vendor_run_id),
        );
        let response = self
            .send(Idempotency::Safe, &spec.tenant, |c| {
                c.get(&url).query(&[("view", "verbose")])
            })
            .await?;
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let workflow: Workflow = response.json(VENDOR)?;
        self.remember_name(&spec.tenant, &spec.config_id, &workflow);
        Ok(run_status(&workflow))
    }

    async fn results(&self, _run: RunRef<'_>) -> Result<ResultsAvailability, VendorError> {
        Ok(ResultsAvailability::NoFiles)
    }

    async fn cancel(&self, run: RunRef<'_>) -> Result<CancelOutcome, VendorError> {
        let spec = amperity_run(run.request)?;
        let url = self.api_url(
            &spec.tenant,
            &format!("/workflow/runs/{}/stop", run.vendor_run_id),
        );
        // Stopping twice is harmless, so the stop may be retried.
        let response = self
            .send(Idempotency::Safe, &spec.tenant, |c| c.post(&url))
            .await?;
        if response.status == StatusCode::CONFLICT {
            return Ok(CancelOutcome::AlreadyFinal);
        }
        if !response.status.is_success() {
            return Err(api_error(&response));
        }
        let workflow: Workflow = response.json(VENDOR)?;
        Ok(match map_state(&workflow.state) {
            RunState::Succeeded | RunState::Failed => CancelOutcome::AlreadyFinal,
            _ => CancelOutcome::Requested,
        })
    }

    async fn open_result(&self, file: &ResultFile) -> Result<reqwest::Response, VendorError> {
        // Workflow runs have no result files; this only serves a file a caller built itself.
        download::open(&self.http, &self.download_policy, file, None).await
    }

    fn can_reconcile(&self, request: &RunRequest) -> bool {
        // Runs are matched by workflow name, which only configuration (or an earlier answer in
        // this process) maps from the config id.
        amperity_run(request)
            .is_ok_and(|run| self.workflow_name(&run.tenant, &run.config_id).is_some())
    }

    async fn find_submitted(
        &self,
        request: &RunRequest,
        _key: &IdempotencyKey,
        since: OffsetDateTime,
    ) -> Result<Option<SubmittedRun>, VendorError> {
        let run = amperity_run(request)?;
        let Some(name) = self.workflow_name(&run.tenant, &run.config_id) else {
            tracing::warn!(
                vendor = %VENDOR,
                config_id = %run.config_id,
                "workflow name unknown (set amperity.workflow_names); cannot tell this configuration's runs apart"
            );
            return Ok(None);
        };
        let mut filters = vec![("created_from", timestamp(since)?)];
        let kind = run
            .config_id
            .starts_with("cg-")
            .then_some(COURIER_GROUP_TYPE);
        if let Some(kind) = kind {
            filters.push(("type", kind.to_owned()));
        }
        let mut candidates: Vec<(Option<OffsetDateTime>, Workflow)> = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_RECONCILE_PAGES {
            let page = self
                .list_page(&run.tenant, &filters, next_token.as_deref())
                .await?;
            // `created_from` already bounds the page by `since`; `created_at` is only compared
            // between candidates (it is written in milliseconds, so it may read just before a
            // nanosecond `since`).
            for workflow in page.data {
                let same_workflow = workflow.name.as_deref() == Some(name.as_str())
                    && kind.is_none_or(|k| workflow.kind.as_deref() == Some(k));
                let created = workflow
                    .created_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
                if same_workflow {
                    candidates.push((created, workflow));
                }
            }
            // An empty or absent token marks the last page.
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => break,
            }
        }
        // The earliest candidate; one whose `created_at` does not parse sorts last.
        let earliest = candidates
            .into_iter()
            .min_by_key(|(created, _)| (created.is_none(), *created));
        Ok(earliest.map(|(_, workflow)| {
            tracing::info!(vendor = %VENDOR, run_id = %workflow.id, "found the run an unanswered start created");
            SubmittedRun { vendor_run_id: workflow.id, vendor_state: Some(workflow.state) }
        }))
    }
}
