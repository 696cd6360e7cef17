//! The `POST /v3/sql/{connection}/job` body: `{"query", "queryParameters"}`, the whole of what
//! CARTO's workflow doc sends (parameters only when the request has some).

use runbridge_core::request::CartoRun;
use runbridge_core::ResolvedRequest;

use crate::spec::run_of;
use crate::VendorError;

/// The job-creation body for a request.
pub fn create_body(request: &ResolvedRequest) -> Result<serde_json::Value, VendorError> {
    let run: &CartoRun = run_of(request)?;
    let mut body = serde_json::json!({ "query": run.query });
    if !run.query_parameters.is_empty() {
        body["queryParameters"] = serde_json::json!(run.query_parameters);
    }
    Ok(body)
}
