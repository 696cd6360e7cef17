//! `GET|POST /v3/sql/{connection}/query`: the synchronous query endpoint runbridge collects
//! results with. It serves the rows the latest cleanly finished job on the connection wrote
//! (`csvgen` rows of that job's script, seed [`Sim::seed_for`]`(jobId, 0)`); only `format=csv`
//! is simulated, and a `@name` without a parameter is a 400 here.
//!
//! As CARTO documents: `GET` (`?q=…&format=csv[&queryParameters=<JSON>]`) is "Cached for 1
//! year" — the first answer for a URL is served again for that URL (the same job's bytes, even
//! after newer jobs finished); `POST` (JSON body `{"q", "format", "queryParameters"?}`) is
//! "Never cached" and has no URL-length limit.

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

/// `GET /v3/sql/{connection}/query?q=…&format=csv[&queryParameters=…]` (cached by URL).
pub(super) async fn query(
    State(state): Shared,
    Path(connection): Path<String>,
    uri: axum::http::Uri,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    state.admit("carto.export", &headers)?;
    state.sim.control.count("carto.export.get");
    let parameters = match params
        .get("queryParameters")
        .map(|p| serde_json::from_str::<Value>(p))
    {
        None => Map::new(),
        Some(Ok(Value::Object(p))) => p,
        Some(_) => return Err(bad_request("'queryParameters' must be a JSON object")),
    };
    let cache_key = uri.to_string();
    let cached = state
        .get_cache
        .lock()
        .expect("cache lock")
        .get(&cache_key)
        .cloned();
    let (job_id, rows) = match cached {
        Some(hit) => hit,
        None => {
            let source = answer(
                &state,
                &connection,
                params.get("q").map(String::as_str),
                params.get("format").map(String::as_str),
                &parameters,
            )?;
            state
                .get_cache
                .lock()
                .expect("cache lock")
                .insert(cache_key, source.clone());
            source
        }
    };
    Ok(csv(&job_id, rows))
}

/// `POST /v3/sql/{connection}/query` with `{"q", "format", "queryParameters"?}` (never cached).
pub(super) async fn query_post(
    State(state): Shared,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    state.admit("carto.export", &headers)?;
    state.sim.control.count("carto.export.post");
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return Err(bad_request("the body must be a JSON object"));
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["q", "format", "queryParameters"].contains(&k.as_str()))
    {
        return Err(bad_request(format!("unknown field '{unknown}'")));
    }
    let parameters = match body.get("queryParameters") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(bad_request("'queryParameters' must be a JSON object")),
    };
    let (job_id, rows) = answer(
        &state,
        &connection,
        body.get("q").and_then(Value::as_str),
        body.get("format").and_then(Value::as_str),
        &parameters,
    )?;
    Ok(csv(&job_id, rows))
}

/// Checks a query and finds the job whose rows answer it.
fn answer(
    state: &super::CartoSim,
    connection: &str,
    q: Option<&str>,
    format: Option<&str>,
    parameters: &Map<String, Value>,
) -> Result<(String, u64), Response> {
    let sim = &state.sim;
    let q = match q.map(str::trim) {
        Some(q) if !q.is_empty() => q,
        _ => return Err(bad_request("'q' is required")),
    };
    match format {
        Some("csv") => {}
        other => {
            return Err(bad_request(format!(
                "format {other:?} is not simulated; the simulator serves format=csv only"
            )))
        }
    }
    check_parameters(parameters).map_err(bad_request)?;
    if let Some(missing) = missing_parameters(q, parameters).into_iter().next() {
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
    source.ok_or_else(|| {
        bad_request(
            "Query error: Not found: no job on this connection has finished writing its table",
        )
    })
}

/// The CSV rows `job_id` wrote.
fn csv(job_id: &str, rows: u64) -> Response {
    let seed = Sim::seed_for(job_id, 0);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::CONTENT_LENGTH, csvgen::size(rows))
        .body(Body::from_stream(csvgen::stream(seed, rows)))
        .expect("valid response")
}
