//! `POST /v3/sql/{connection}/job`: creating a job. The body may hold only `query`,
//! `queryParameters` and `metadata`; a `@name` the parameters lack is not a 400 but a job that
//! ends `DONE` with `invalidQuery`, as the warehouse finds it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::api::bad_request;
use super::model::{describe, Job};
use super::parameters::{check_parameters, missing_parameters};
use super::{Shared, VENDOR};
use crate::{Outcome, ScriptedRun};

/// Fields a job request may carry.
const JOB_FIELDS: [&str; 3] = ["query", "queryParameters", "metadata"];

/// `POST /v3/sql/{connection}/job`.
pub(super) async fn create_job(
    State(state): Shared,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    state.admit("carto.submit", &headers)?;
    let sim = &state.sim;
    let request = parse_job_request(&headers, &body).map_err(bad_request)?;
    let now = sim.clock.now();
    let mut script = sim.control.next_run_for(VENDOR, &body);
    if let Some(missing) = missing_parameters(&request.query, &request.parameters)
        .into_iter()
        .next()
    {
        // The warehouse rejects the statement as soon as it plans it.
        script.outcome = Outcome::Fail {
            message: missing.message(),
            customer: true,
        };
        script.run_seconds = script.run_seconds.min(1.0);
    }
    let id = format!("job_{}", &uuid::Uuid::new_v4().simple().to_string()[..28]);
    let job = Job {
        id: id.clone(),
        connection,
        query: request.query,
        metadata: Value::Object(request.metadata),
        run: ScriptedRun::new(now, script),
    };
    let mut answer = describe(&job, now);
    if let Some(object) = answer.as_object_mut() {
        // The create answer echoes the caller's token, as the doc's example shows.
        object.remove("status");
        if let Some(token) = crate::auth::bearer(headers.get(header::AUTHORIZATION)) {
            object.insert("token".into(), Value::String(token.to_owned()));
        }
    }
    state.jobs.lock().expect("jobs lock").insert(id, job);
    Ok((StatusCode::OK, Json(answer)).into_response())
}

struct JobRequest {
    query: String,
    parameters: Map<String, Value>,
    metadata: Map<String, Value>,
}

/// The request, or why it is a 400.
fn parse_job_request(headers: &HeaderMap, body: &[u8]) -> Result<JobRequest, String> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return Err(String::from("Content-Type must be application/json"));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(String::from("Request body must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|k| !JOB_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "Unknown field '{unknown}'; allowed: query, queryParameters, metadata"
        ));
    }
    let query = match fields.remove("query") {
        None | Some(Value::Null) => return Err(String::from("'query' is required")),
        Some(Value::String(q)) if q.trim().is_empty() => {
            return Err(String::from("'query' must not be empty"))
        }
        // BigQuery's lexer has no NUL: "Syntax error: Illegal input character \"\\000\"".
        Some(Value::String(q)) if q.contains('\0') => {
            return Err(String::from(
                "Syntax error: Illegal input character \"\\000\" in 'query'",
            ))
        }
        Some(Value::String(q)) => q,
        Some(_) => return Err(String::from("'query' must be a string")),
    };
    let parameters = match fields.remove("queryParameters") {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(String::from("'queryParameters' must be an object")),
    };
    check_parameters(&parameters)?;
    let metadata = match fields.remove("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(String::from("'metadata' must be an object")),
    };
    Ok(JobRequest {
        query,
        parameters,
        metadata,
    })
}
