//! CARTO SQL API v3 simulator: asynchronous SQL jobs, the synchronous query endpoint as CSV,
//! and CARTO's OAuth token endpoint.
//!
//! Routes (real paths): `POST /oauth/token` (auth.carto.com; client credentials with
//! `audience=carto-cloud-native-api`), `POST /v3/sql/{connection}/job`,
//! `GET|DELETE /v3/sql/{connection}/job/{jobId}`, `GET /v3/sql/{connection}/query?q=…&format=csv`.
//! Every route but the token endpoint needs a bearer token (missing, unknown or expired → 401).
//! Errors are `{"error": "<message>", "status": <code>}`.
//!
//! Jobs go `PENDING` → `RUNNING` → `DONE` on the run script. A failure is `DONE` with
//! `status.errorResult {reason, location, message}` — the shape CARTO's workflow doc shows for a
//! failed execution — with reason `invalidQuery` for a customer error and `backendError` for a
//! platform one; a rejected run (`Outcome::Reject`) is `FAILED` with reason `invalid`. A cancelled
//! job reads `RUNNING` while it stops, then `CANCELED`.
//!
//! Request rules: the body is a JSON object with only `query` (non-empty string),
//! `queryParameters` (object of non-null values named like BigQuery parameters) and `metadata`
//! (object, echoed back); anything else is a 400. A `@name` in the query that `queryParameters`
//! lacks is not a 400: like the doc's coercion error it is found by the warehouse, so the job
//! ends `DONE` with `errorResult` `invalidQuery` "Query parameter 'name' not found at [l:c]". The
//! synchronous query endpoint, which has no job to carry the error, answers that as a 400.
//!
//! The query endpoint serves the rows the latest cleanly finished job on the connection wrote:
//! `csvgen` rows of that job's script, seed [`Sim::seed_for`]`(jobId, 0)`. Only `format=csv` is
//! simulated. `GET /v3/sql/jobs` is not simulated: its response shape is not documented.
//!
//! Where things are: `api.rs` holds what every route shares (the error shape, the bearer check,
//! the OAuth token endpoint); `model.rs` a job, its states and the job document; `create.rs` the
//! job route and its body validation; `parameters.rs` the query-parameter rules both the job
//! and the query routes apply; `status.rs`, `cancel.rs` and `results.rs` (the query endpoint
//! serving CSV) the other routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use runbridge_core::VendorKind;

use crate::vendor::SimVendor;
use crate::{auth, Sim};

mod api;
mod cancel;
mod create;
mod model;
mod parameters;
mod results;
mod status;

use api::error;
use model::Job;

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Carto,
    router,
    error,
    settings,
};

const VENDOR: VendorKind = VendorKind::Carto;
/// The audience CARTO's token endpoint issues API tokens for.
pub const AUDIENCE: &str = "carto-cloud-native-api";

struct CartoSim {
    sim: Arc<Sim>,
    jobs: Mutex<HashMap<String, Job>>,
    /// `GET /query` answers by URL (path and query string): CARTO caches them for a year, so
    /// the same URL serves the same job's rows again, however many jobs finished since.
    get_cache: Mutex<HashMap<String, (String, u64)>>,
}

type Shared = State<Arc<CartoSim>>;

fn router(sim: Arc<Sim>) -> Router {
    let state = Arc::new(CartoSim {
        sim,
        jobs: Mutex::new(HashMap::new()),
        get_cache: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/oauth/token", post(api::token))
        .route("/v3/sql/{connection}/job", post(create::create_job))
        .route(
            "/v3/sql/{connection}/job/{job_id}",
            get(status::get_job).delete(cancel::cancel_job),
        )
        .route(
            "/v3/sql/{connection}/query",
            get(results::query).post(results::query_post),
        )
        .with_state(state)
}

fn settings(base: &str) -> Vec<(String, String)> {
    vec![
        ("api_base".into(), base.to_owned()),
        ("token_url".into(), format!("{base}/oauth/token")),
        ("client_id".into(), auth::client_id(VENDOR)),
        ("client_secret".into(), auth::client_secret(VENDOR)),
    ]
}

/// CARTO's 404 for a job id unknown on a connection.
fn job_not_found(job_id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Job {job_id} not found"))
}
