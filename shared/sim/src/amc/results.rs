//! `GET …/workflowExecutions/{id}/downloadUrls`: signed URLs of a SUCCEEDED execution's CSV parts
//! (served by the simulator's file route); any other state is AMC's "unavailable for download".

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::api::{bad_request, check_headers, ok, ApiError};
use super::{Shared, VENDOR};
use crate::{Outcome, RunPhase, Sim};

pub(super) async fn download_urls(
    State(state): Shared,
    Path((instance, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sim = &state.sim;
    sim.control.count("amc.download_urls");
    check_headers(sim, &headers, &instance)?;
    let execution = state.find(&instance, &id)?;
    if execution.run.phase(sim.clock.now()) != RunPhase::Ended(Outcome::Succeed) {
        return Err(bad_request(format!(
            "Execution with ID {id} is unavailable for download"
        )));
    }
    let script = &execution.run.script;
    let urls: Vec<String> = (0..script.files)
        .map(|part| {
            let name = format!("{}-part-{part:05}.csv", execution.workflow_id);
            let seed = sim
                .prebuilt_seed(script.rows)
                .unwrap_or_else(|| Sim::seed_for(&id, part));
            sim.download_url(VENDOR, &id, &name, script.rows, seed)
        })
        .collect();
    Ok(ok(
        json!({"downloadUrls": urls, "metadataDownloadUrls": []}),
    ))
}
