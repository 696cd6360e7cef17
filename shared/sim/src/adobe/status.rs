//! `GET /data/foundation/flowservice/runs/{runId}`: one run of the caller's sandbox, as
//! `{"items": [run]}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{check_headers, flow_error};
use super::model::run_json;
use super::Shared;

pub(super) async fn get_run(
    State(state): Shared,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let sim = &state.sim;
    sim.control.count("adobe.status");
    let sandbox = check_headers(sim, &headers)?;
    let runs = state.runs.lock().expect("adobe runs lock");
    match runs.get(&run_id).filter(|r| r.sandbox == sandbox) {
        Some(run) => Ok(Json(json!({"items": [run_json(run, sim.clock.now())]})).into_response()),
        None => Err(flow_error(
            StatusCode::NOT_FOUND,
            1101,
            "Resource not found",
            "The requested resource is not found. Error from flow provider: Resource with given id does not exist.",
        )),
    }
}
