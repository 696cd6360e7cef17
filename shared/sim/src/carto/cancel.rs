//! `DELETE /v3/sql/{connection}/job/{jobId}`: cancelling a PENDING or RUNNING job (400 for any
//! other state); the job reads `RUNNING` while it stops, then `CANCELED`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::bad_request;
use super::model::{describe, job_status};
use super::{job_not_found, Shared};
use crate::RunPhase;

/// `DELETE /v3/sql/{connection}/job/{jobId}`: cancels a pending or running job.
pub(super) async fn cancel_job(
    State(state): Shared,
    Path((connection, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    state.admit("carto.cancel", &headers)?;
    let now = state.sim.clock.now();
    let mut jobs = state.jobs.lock().expect("jobs lock");
    let Some(job) = jobs
        .get_mut(&job_id)
        .filter(|job| job.connection == connection)
    else {
        return Err(job_not_found(&job_id));
    };
    if !matches!(job.run.phase(now), RunPhase::Queued | RunPhase::Running) {
        let vendor_state = job_status(job, now)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Err(bad_request(format!(
            "Job {job_id} is {vendor_state}; only PENDING or RUNNING jobs can be canceled"
        )));
    }
    job.run.cancelled_at = Some(now);
    Ok(Json(describe(job, now)).into_response())
}
