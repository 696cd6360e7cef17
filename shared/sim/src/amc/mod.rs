//! Amazon Marketing Cloud workflow executions, as the Amazon Ads API serves them.
//!
//! Routes (real paths): `POST /auth/o2/token` (Login with Amazon, refresh-token grant) and, under
//! `/amc/reporting/{instanceId}/workflowExecutions`: `POST` (create), `GET` (list, paged with
//! `nextToken`), `GET /{id}` (status), `PUT /{id}` (cancel with `{"status":"CANCELLED"}`) and
//! `GET /{id}/downloadUrls`.
//!
//! Every call needs a bearer token (missing or unknown → 401, expired → 403, as the Ads docs say
//! for expired credentials) and the `Amazon-Advertising-API-ClientId` (matching the token's
//! client), `-AdvertiserId` and `-MarketplaceId` headers (400 when missing). Bodies must be
//! JSON (`application/vnd.amcworkflowexecutions.v1+json` or `application/json`, else 415); an
//! `Accept` that allows neither is 406. Errors use the spec's `{"code": "<status>", "details":
//! "…"}`.
//!
//! Create validation follows `CreateWorkflowExecutionRequest` (plus `ignoreDataGaps`, which the
//! Ads guide documents and the spec omits): unknown fields, wrong JSON types, bad enum values,
//! `workflowId` together with `workflow`, neither of them, an `sqlQuery` with line breaks or tabs,
//! EXPLICIT windows without both bounds, bounds not in `yyyy-MM-dd'T'HH:mm:ss`, an end not after
//! the start, non-string `parameterValues` and timeouts outside 900–86400 s are all 400. An
//! instance with 10 PENDING + RUNNING executions refuses another with 429 (the spec's
//! "rate-limited" status; the docs give no other code for AMC's concurrency limit).
//!
//! Answers are flat execution objects as the Ads guide shows them (the spec's
//! `workflowExecution` wrapper is not what the service sends). States: PENDING (queued),
//! RUNNING, PUBLISHING (the script's `publish_seconds`), then SUCCEEDED, FAILED or REJECTED with
//! `statusReason`; CANCELLED from the moment a cancel is accepted. `downloadUrls` answers 400
//! "Execution with ID … is unavailable for download" until the execution has SUCCEEDED.
//! Limitations: window time zones other than UTC are echoed but not converted.
//!
//! Where things are: `api.rs` holds what every route shares (the error shape, header and body
//! checks, the token endpoint); `model.rs` an execution, its states and how AMC shows it;
//! `create.rs` the create route and its validation; `status.rs`, `cancel.rs`, `list.rs` and
//! `results.rs` the other routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use runbridge_core::VendorKind;

use crate::vendor::SimVendor;
use crate::{auth, Sim};

mod api;
mod cancel;
mod create;
mod list;
mod model;
mod results;
mod status;

use api::{error, reject, ApiError};
use model::Execution;

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Amc,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Amc;

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), base.to_owned()),
        ("token_url".into(), format!("{base}/auth/o2/token")),
        ("client_id".into(), auth::client_id(VENDOR)),
        ("client_secret".into(), auth::client_secret(VENDOR)),
        ("refresh_token".into(), auth::refresh_token(VENDOR)),
    ]
}

struct AmcState {
    sim: Arc<Sim>,
    executions: Mutex<HashMap<String, Execution>>,
}

type Shared = State<Arc<AmcState>>;

fn router(sim: Arc<Sim>) -> Router {
    let state = Arc::new(AmcState {
        sim,
        executions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/auth/o2/token", post(api::token))
        .route(
            "/amc/reporting/{instance}/workflowExecutions",
            post(create::create).get(list::list),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}",
            get(status::status).put(cancel::update),
        )
        .route(
            "/amc/reporting/{instance}/workflowExecutions/{id}/downloadUrls",
            get(results::download_urls),
        )
        .with_state(state)
}

impl AmcState {
    /// A copy of the execution `id` of `instance`, or AMC's 404.
    fn find(&self, instance: &str, id: &str) -> Result<Execution, ApiError> {
        let executions = self.executions.lock().expect("amc lock");
        executions
            .get(id)
            .filter(|e| e.instance_id == instance)
            .cloned()
            .ok_or_else(|| not_found(id))
    }
}

/// AMC's 404 for an execution id unknown on an instance.
fn not_found(id: &str) -> ApiError {
    reject(
        StatusCode::NOT_FOUND,
        format!("Workflow execution with ID {id} not found"),
    )
}
