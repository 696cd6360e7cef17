//! Amperity's own examples, run against this client:
//! `/work/shared/vendor-docs/amperity-post-workflow-runs.txt` (the `POST /workflow/runs` request
//! bodies and 200 response) and `/work/shared/vendor-docs/amperity-get-workflow-runs.rst` (a run
//! with an `error`). Each example is quoted, so a reader can compare; a change to the body
//! builder or the wire types that departs from the doc fails here.

use runbridge_core::{Attribution, OffsetDateTime, ResolvedRequest, RunState};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::wire::{run_status, Workflow};
use super::{create_body, COURIER_GROUP_TYPE};

/// The Python example's body, verbatim ("Body of the request"); the doc's `YYYY-MM-DD`
/// placeholders are filled in by [`with_dates`].
const DOC_PYTHON_BODY: &str = r#"{
 "config_id": "cg-2efo5X8vo",
 "range_from": "YYYY-MM-DD",
 "range_to": "YYYY-MM-DD",
 "run_mode": "source"
}"#;

/// The "200 OK" response, verbatim.
const DOC_START_RESPONSE: &str = r#"{
 "task_instances":[],
 "id":"wf-123456A-78901-2bcd3e",
 "name":"Daily",
 "principal_name":"Daniel Kuhlman",
 "principal_id":"abc-EFghIjKL1Mn",
 "type":"courier.group/run",
 "launched_version":"abc-123456A-78901-2bcd3",
 "state":"scheduled",
 "created_at":"2025-04-18T15:33:51.724Z",
 "tenant":"bridge",
 "current_version":"abc-123456A-78901-2bcd3"
}"#;

/// The GET page's "200 OK" example. The doc's block is not valid JSON (trailing commas, a
/// message string broken over lines); this is it with those two things repaired and nothing else.
const DOC_FAILED_RUN: &str = r#"{
  "error": {
    "attribution": "customer",
    "type": "amperity.workflow.error/type",
    "message": "Found table in an invalid state:\n loyalty_members. This error can be\n resolved by removing this table\n or by loading data to the table."
    },
  "id": "wf-20240603-12345-MNabc",
  "ended_at": "2024-02-10T17:29:32.687Z",
  "name": "Loyalty Membership",
  "principal_name": "Justin Scott",
  "principal_id": "google-apps|justin.scott@socktown.com",
  "type": "amperity.orchestration.orchestration/run",
  "principal_email": "justin.scott@socktown.com",
  "state": "canceled",
  "created_at": "2024-02-10T17:29:22.454Z",
  "tenant": "socktown"
}"#;

fn with_dates(doc: &str, from: &str, to: &str) -> Value {
    let filled = doc
        .replacen("YYYY-MM-DD", from, 1)
        .replacen("YYYY-MM-DD", to, 1);
    serde_json::from_str(&filled).unwrap()
}

fn request(run: Value) -> ResolvedRequest {
    let mut doc = json!({"vendor": "amperity", "tenant": "bridge"});
    doc.as_object_mut()
        .unwrap()
        .extend(run.as_object().unwrap().clone());
    serde_json::from_value(doc).expect("a valid Amperity request")
}

#[test]
fn create_body_is_the_docs_python_body() {
    let ours = create_body(&request(json!({
        "config_id": "cg-2efo5X8vo",
        "range_from": "2025-04-17",
        "range_to": "2025-04-18",
        "run_mode": "source",
    })))
    .unwrap();
    // The docs write bare dates; runbridge sends the same instants in its one canonical UTC form.
    assert_eq!(
        ours,
        with_dates(
            DOC_PYTHON_BODY,
            "2025-04-17T00:00:00Z",
            "2025-04-18T00:00:00Z"
        )
    );
}

#[test]
fn campaign_and_orchestration_bodies_are_the_config_id_alone() {
    // The cURL examples send `--data '{"config_id"="cc-123ABc4DE"}'` (`=` is the doc's typo for
    // `:`): a campaign or orchestration run is started by its config id and nothing else.
    for id in ["cc-123ABc4DE", "og-123ABc4DE", "cg-123ABc4DE"] {
        let ours = create_body(&request(json!({ "config_id": id }))).unwrap();
        assert_eq!(ours, json!({ "config_id": id }));
    }
}

#[test]
fn the_docs_start_response_parses() {
    let workflow: Workflow = serde_json::from_str(DOC_START_RESPONSE).unwrap();
    assert_eq!(workflow.id, "wf-123456A-78901-2bcd3e");
    assert_eq!(workflow.name.as_deref(), Some("Daily"));
    assert_eq!(workflow.kind.as_deref(), Some(COURIER_GROUP_TYPE));
    let created = workflow
        .created_at
        .as_deref()
        .map(|t| OffsetDateTime::parse(t, &Rfc3339).unwrap());
    assert_eq!(
        created,
        Some(time::macros::datetime!(2025-04-18 15:33:51.724 UTC))
    );
    let status = run_status(&workflow);
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Pending, "scheduled")
    );
}

#[test]
fn the_docs_failed_run_carries_its_error() {
    let workflow: Workflow = serde_json::from_str(DOC_FAILED_RUN).unwrap();
    let status = run_status(&workflow);
    assert_eq!(status.state, RunState::Cancelled);
    assert_eq!(status.attribution, Some(Attribution::Customer));
    let reason = status.reason.unwrap_or_default();
    assert!(
        reason.starts_with("Found table in an invalid state")
            && reason.ends_with("(amperity.workflow.error/type)"),
        "{reason}"
    );
}
