//! `GET /v3/sql/{connection}/job/{jobId}`: one job of the connection, as CARTO shows it now.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::model::describe;
use super::{job_not_found, Shared};

/// `GET /v3/sql/{connection}/job/{jobId}`.
pub(super) async fn get_job(
    State(state): Shared,
    Path((connection, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    state.admit("carto.status", &headers)?;
    let jobs = state.jobs.lock().expect("jobs lock");
    match jobs.get(&job_id).filter(|job| job.connection == connection) {
        Some(job) => Ok(Json(describe(job, state.sim.clock.now())).into_response()),
        None => Err(job_not_found(&job_id)),
    }
}
