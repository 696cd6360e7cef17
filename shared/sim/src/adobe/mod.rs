//! Adobe Experience Platform Flow Service simulator: on-demand flow runs of batch sources.
//!
//! Routes, at their real paths:
//! - `POST /ims/token/v3` — IMS OAuth server-to-server (`client_credentials` with a `scope`).
//! - `POST /data/foundation/flowservice/runs` — create a run: `{"flowId", "params": {startTime,
//!   windowStartTime, windowEndTime, deltaColumn?}}` → `201 {"items": [{"id", "etag"}]}`.
//! - `GET /data/foundation/flowservice/runs/{runId}` — `{"items": [run]}` with the overall state in
//!   `metrics.statusSummary.status` and failures in `metrics.statusSummary.errors[{code, message}]`.
//! - `GET /data/foundation/flowservice/runs?property=flowId==<id>&limit=&orderby=&continuationToken=`
//!   — paged by `_links.next.href`.
//!
//! There is no cancel route: Flow Service cannot stop an on-demand run.
//!
//! Two error shapes, as Adobe has them. The API gateway (token, API key, organization) answers
//! `{"error_code": "403010", "message": "Oauth token is missing."}`; Flow Service itself answers
//! `{"type": "https://ns.adobe.com/aep/errors/FLOW-1430-400", "title", "status", "report":
//! {"detailed-message", "request-id"}, "errorMessage", "errorDetails"}` with the codes of Adobe's
//! "Flow Service error messages" catalog where it has one. Body checks that catalog does not cover
//! use `FLOW-1100-400` ("Invalid request") with a message naming the field.
//!
//! Run states are `scheduled` (before `startTime`), `queued`, `inProgress`, `success` and `failed`.
//! A failed run's error code ends in the HTTP class Adobe gives it: `CONNECTOR-1001-400` for a
//! configuration failure (the script says `customer: true`), `CONNECTOR-1001-500` for a platform
//! one, `FLOW-1100-400` for a rejected run. The window times are seconds (numeric strings, as the
//! tutorial sends them, or integers, as the OpenAPI types them); the run echoes them in
//! milliseconds under `activities[copyActivity].durationSummary.extensions`, as Adobe's run
//! notifications do.
//!
//! Where things are: `api.rs` holds what every route shares (the two error shapes, the gateway
//! and sandbox checks, the IMS token endpoint); `model.rs` a run, its states and how Flow Service
//! shows it; `create.rs` the create route and its validation; `status.rs` and `list.rs` the
//! read routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use runbridge_core::VendorKind;

use crate::vendor::SimVendor;
use crate::{auth, Sim};

mod api;
mod create;
mod list;
mod model;
mod status;

use api::error;
use model::Run;

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Adobe,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Adobe;
/// Flow Service base path under the Platform gateway.
pub const BASE_PATH: &str = "/data/foundation/flowservice";
/// IMS token endpoint path.
pub const TOKEN_PATH: &str = "/ims/token/v3";
/// The table-based flow (a CRM/database source) of the default catalog.
pub const TABLE_FLOW_ID: &str = "3abea21c-7e36-4be1-bec1-d3bad0e3e0de";
/// The file-based flow (a cloud-storage source) of the default catalog.
pub const FILE_FLOW_ID: &str = "9f1a2b3c-0000-4000-8000-000000000001";
/// The organization the simulator's credentials belong to.
pub const ORG_ID: &str = "5C1328435BF324E90A49402A@AdobeOrg";
/// Sandboxes that exist; the catalog's flows live in `prod`.
pub const SANDBOXES: [&str; 2] = ["prod", "dev"];
/// The sandbox holding the flow catalog.
const FLOW_SANDBOX: &str = "prod";
/// Page size when a list request gives no `limit`.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest accepted `limit`.
pub const MAX_PAGE_SIZE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowKind {
    /// Advertising, CRM, database… sources: accept `deltaColumn` on the first run only.
    Table,
    /// Cloud-storage sources: never accept `deltaColumn`.
    File,
}

struct AdobeSim {
    sim: Arc<Sim>,
    flows: HashMap<&'static str, FlowKind>,
    runs: Mutex<HashMap<String, Run>>,
}

type Shared = State<Arc<AdobeSim>>;

fn router(sim: Arc<Sim>) -> Router {
    let flows = HashMap::from([
        (TABLE_FLOW_ID, FlowKind::Table),
        (FILE_FLOW_ID, FlowKind::File),
    ]);
    let state = Arc::new(AdobeSim {
        sim,
        flows,
        runs: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(TOKEN_PATH, post(api::token))
        .route(
            &format!("{BASE_PATH}/runs"),
            post(create::create_run).get(list::list_runs),
        )
        .route(
            &format!("{BASE_PATH}/runs/{{run_id}}"),
            get(status::get_run),
        )
        .with_state(state)
}

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), format!("{base}{BASE_PATH}")),
        ("token_url".into(), format!("{base}{TOKEN_PATH}")),
        ("client_id".into(), auth::client_id(VENDOR)),
        ("client_secret".into(), auth::client_secret(VENDOR)),
        ("org_id".into(), ORG_ID.into()),
    ]
}
