//! CARTO's own examples, run against this client: `/work/shared/vendor-docs/carto-workflows-api.md`
//! ("Executing workflows via API"). Each example is quoted as the doc shows it, so a reader can
//! compare; a change to the body builder or the wire types that departs from the doc fails here.

use runbridge_core::{Attribution, ResolvedRequest, RunState};
use serde_json::{json, Value};

use super::create_body;
use super::wire::{created_job, Job};

/// The cURL example's `--data` body, verbatim.
const DOC_BODY: &str = r#"{
"query": "CALL `carto-dw-ac-jfjjof5m.workflows_temp_ernesto_pmadmin_aa2de528.workflow_procedure_09cc2e19ad5bbc6f`(@number_of_clusters,@buffer_radius,@store_type)",
"queryParameters": {"number_of_clusters":2,"buffer_radius":500,"store_type":"Supermarket"}
}"#;

/// The create response, verbatim.
const DOC_CREATED: &str = r#"{
"externalId": "job_h8UWzpdzX0s2XAAXQd3rdWCdPUT9",
"accountId": "ac_jfakef5m",
"userId": "auth0|61164b7xxx77c006a259f53",
"connectionId": "5a32a0ea-555a-48dd-aeb1-8768aae8ef1c",
"metadata": {},
"createdAt": "2023-10-04T16:10:35.732Z",
"query": "CALL `carto-dw-ac-jfjjof5m.workflows_temp_ernesto_pmadmin_aa2de528.workflow_procedure_09cc2e19ad5bbc6f`(@number_of_clusters,@buffer_radius,@store_type)",
"jobMetadata": {
"location": "US"
},
"token": "eyJhbGc(...)GUH-Lw"
}"#;

/// The failed and the successful status, verbatim (the doc shows only the `status` member; the
/// braces around it are added).
const DOC_FAILED: &str = r#"{"status": {
"errorResult": {
"reason": "invalidQuery",
"location": "query",
"message": "Query error: Cannot coerce expression @number_of_clusters to type INT64 at [1:158]"
},
"state": "DONE"
}}"#;
const DOC_SUCCEEDED: &str = r#"{"status": {
"state": "DONE"
}}"#;

#[test]
fn create_body_is_the_docs() {
    let request: ResolvedRequest = serde_json::from_value(json!({
        "vendor": "carto",
        "connection": "your_connection",
        "query": "CALL `carto-dw-ac-jfjjof5m.workflows_temp_ernesto_pmadmin_aa2de528.workflow_procedure_09cc2e19ad5bbc6f`(@number_of_clusters,@buffer_radius,@store_type)",
        "query_parameters": {"number_of_clusters": 2, "buffer_radius": 500, "store_type": "Supermarket"},
    }))
    .expect("a valid CARTO request");
    let ours = create_body(&request).unwrap();
    assert_eq!(ours, serde_json::from_str::<Value>(DOC_BODY).unwrap());
}

#[test]
fn the_docs_create_response_names_the_job() {
    let submitted = created_job(DOC_CREATED.as_bytes()).unwrap();
    assert_eq!(submitted.vendor_run_id, "job_h8UWzpdzX0s2XAAXQd3rdWCdPUT9");
    assert_eq!(submitted.vendor_state, None);
}

#[test]
fn the_docs_statuses_map() {
    let failed = serde_json::from_str::<Job>(DOC_FAILED)
        .unwrap()
        .run_status();
    assert_eq!(
        (failed.state, failed.attribution),
        (RunState::Failed, Some(Attribution::Customer))
    );
    assert_eq!(
        failed.reason.as_deref(),
        Some("invalidQuery (query): Query error: Cannot coerce expression @number_of_clusters to type INT64 at [1:158]")
    );
    let done = serde_json::from_str::<Job>(DOC_SUCCEEDED)
        .unwrap()
        .run_status();
    assert_eq!(done.state, RunState::Succeeded);
}
