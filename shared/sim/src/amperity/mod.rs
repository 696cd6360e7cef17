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
//! the rate limit of 10 requests in any sliding simulated second per tenant, token requests
//! included (429 with `Retry-After`), the bearer token (401 for a missing, unknown or expired
//! one), and the API version from the
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
//!
//! Where things are: `api.rs` holds what every route shares (the error shape, the tenant, rate
//! limit, auth and version checks, the token endpoint); `model.rs` a run, its states and how the
//! API shows it; `start.rs` the start route and its validation; `status.rs`, `stop.rs` and
//! `list.rs` the other routes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use runbridge_core::VendorKind;
use time::OffsetDateTime;

use crate::vendor::SimVendor;
use crate::{auth, Sim};

mod api;
mod list;
mod model;
mod start;
mod status;
mod stop;

use api::error;
use model::Run;

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

fn settings(base: &str) -> Vec<(String, String)> {
    let names: Vec<String> = CATALOG
        .iter()
        .map(|c| format!("{}={}", c.id, c.name))
        .collect();
    vec![
        ("api_base".into(), format!("{base}/api")),
        ("token_url".into(), format!("{base}/api/v0/oauth2/token")),
        ("client_id".into(), auth::client_id(VENDOR)),
        ("client_secret".into(), auth::client_secret(VENDOR)),
        ("workflow_names".into(), names.join(";")),
    ]
}

struct AmperitySim {
    sim: Arc<Sim>,
    runs: Mutex<HashMap<String, Run>>,
    /// Per tenant: the simulated times of the requests admitted in the last second.
    rate: Mutex<HashMap<String, VecDeque<OffsetDateTime>>>,
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
        .route("/api/v0/oauth2/token", post(api::token))
        .route(
            "/api/workflow/runs",
            post(start::start_run).get(list::list_runs),
        )
        .route(
            "/api/workflow/runs/",
            post(start::start_run).get(list::list_runs),
        )
        .route("/api/workflow/runs/{id}", get(status::get_run))
        .route("/api/workflow/runs/{id}/stop", post(stop::stop_run))
        .with_state(state)
}
