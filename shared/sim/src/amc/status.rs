//! `GET …/workflowExecutions/{id}`: one execution as AMC shows it now, with its SQL when
//! `includeWorkflow=true`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::api::{check_headers, flag, ok, ApiError};
use super::Shared;

pub(super) async fn status(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    state.sim.control.count("amc.status");
    check_headers(&state.sim, &headers, &instance)?;
    let include_workflow = flag(&query, "includeWorkflow")?;
    let execution = state.find(&instance, &id)?;
    Ok(ok(execution.view(state.sim.clock.now(), include_workflow)))
}
