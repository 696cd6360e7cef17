//! `GET /api/workflow/runs/{id}`: one run of the caller's tenant, in the `overview` (default) or
//! `verbose` view.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{bad_request, error};
use super::model::{valid_run_id, workflow_json, View};
use super::{QueryPairs, Shared};

pub(super) async fn get_run(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, Response> {
    state.sim.control.count("amperity.status");
    let (tenant, query) = state.admit_request(&headers, query, &["view"])?;
    let view = match query
        .iter()
        .find(|(k, _)| k == "view")
        .map(|(_, v)| v.as_str())
    {
        None | Some("overview") => View::Overview,
        Some("verbose") => View::Verbose,
        Some(other) => {
            return Err(bad_request(format!(
                "view must be overview or verbose; got {other}"
            )))
        }
    };
    if !valid_run_id(&id) {
        return Err(bad_request(format!("Invalid workflow id: {id}")));
    }
    let runs = state.runs.lock().expect("runs lock");
    match runs.get(&id).filter(|r| r.tenant == tenant) {
        Some(run) => Ok(Json(workflow_json(run, state.sim.clock.now(), view)).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            &format!("Workflow {id} not found"),
        )),
    }
}
