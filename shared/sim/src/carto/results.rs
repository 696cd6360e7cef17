//! `GET /v3/sql/{connection}/query?q=…&format=csv`: the synchronous query endpoint runbridge
//! collects results with. It serves the rows the latest cleanly finished job on the connection
//! wrote (`csvgen` rows of that job's script, seed [`Sim::seed_for`]`(jobId, 0)`); only
//! `format=csv` is simulated, and a `@name` without a parameter is a 400 here.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::api::bad_request;
use super::parameters::{check_parameters, missing_parameters};
use super::Shared;
use crate::{csvgen, Outcome, RunPhase, Sim};

/// `GET /v3/sql/{connection}/query?q=…&format=csv[&queryParameters=…]`.
pub(super) async fn query(
    State(state): Shared,
    Path(connection): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    state.admit("carto.export", &headers)?;
    let sim = &state.sim;
    let q = match params.get("q").map(|q| q.trim()) {
        Some(q) if !q.is_empty() => q,
        _ => return Err(bad_request("'q' is required")),
    };
    match params.get("format").map(String::as_str) {
        Some("csv") => {}
        other => {
            return Err(bad_request(format!(
                "format {other:?} is not simulated; the simulator serves format=csv only"
            )))
        }
    }
    let parameters = match params
        .get("queryParameters")
        .map(|p| serde_json::from_str::<Value>(p))
    {
        None => Map::new(),
        Some(Ok(Value::Object(p))) => p,
        Some(_) => return Err(bad_request("'queryParameters' must be a JSON object")),
    };
    check_parameters(&parameters).map_err(bad_request)?;
    if let Some(missing) = missing_parameters(q, &parameters).into_iter().next() {
        return Err(bad_request(missing.message()));
    }
    let now = sim.clock.now();
    let source = state
        .jobs
        .lock()
        .expect("jobs lock")
        .values()
        .filter(|job| job.connection == connection)
        .filter(|job| {
            matches!(
                job.run.phase(now),
                RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed)
            )
        })
        .max_by_key(|job| job.run.created_at)
        .map(|job| (job.id.clone(), job.run.script.rows));
    let Some((job_id, rows)) = source else {
        return Err(bad_request(
            "Query error: Not found: no job on this connection has finished writing its table",
        ));
    };
    let seed = Sim::seed_for(&job_id, 0);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::CONTENT_LENGTH, csvgen::size(rows))
        .body(Body::from_stream(csvgen::stream(seed, rows)))
        .expect("valid response"))
}
