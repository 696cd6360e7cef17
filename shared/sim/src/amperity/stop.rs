//! `POST /api/workflow/runs/{id}/stop`: stopping a run that has not ended (409 once it has);
//! stopping a run that is already stopping changes nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{bad_request, error};
use super::model::{is_final_state, run_state, valid_run_id, workflow_json, View};
use super::{QueryPairs, Shared};

pub(super) async fn stop_run(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, Response> {
    state.sim.control.count("amperity.stop");
    // Like the gateways in front of some tenants: a POST without a length is 411.
    if !headers.contains_key(axum::http::header::CONTENT_LENGTH)
        && !headers.contains_key(axum::http::header::TRANSFER_ENCODING)
    {
        return Err(error(
            StatusCode::LENGTH_REQUIRED,
            "Length Required: send the stop with an empty body and Content-Length: 0",
        ));
    }
    let (tenant, _) = state.admit_request(&headers, query, &[])?;
    if !valid_run_id(&id) {
        return Err(bad_request(format!("Invalid workflow id: {id}")));
    }
    let now = state.sim.clock.now();
    let mut runs = state.runs.lock().expect("runs lock");
    let Some(run) = runs.get_mut(&id).filter(|r| r.tenant == tenant) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            &format!("Workflow {id} not found"),
        ));
    };
    let (current, _, _) = run_state(run, now);
    if is_final_state(current) {
        return Err(error(
            StatusCode::CONFLICT,
            &format!("Workflow {id} has already ended (state {current})"),
        ));
    }
    // Stopping a run that is already stopping changes nothing.
    if run.scripted.cancelled_at.is_none() {
        run.scripted.cancelled_at = Some(now);
    }
    Ok(Json(workflow_json(run, now, View::Verbose)).into_response())
}
