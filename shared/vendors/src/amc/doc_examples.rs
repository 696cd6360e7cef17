//! AMC's own examples, run against this client: `/work/shared/vendor-docs/amc-workflow-executions.md`
//! ("Create and execute an ad hoc workflow" and "View your workflow results"). Each example is
//! quoted as the doc shows it, so a reader can compare; a change to the body builder or the wire
//! types that departs from the doc fails here.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use runbridge_core::{OffsetDateTime, ResolvedRequest, RunState};
use serde_json::{json, Value};
use time::macros::datetime;

use super::error::{error_message, not_published_yet};
use super::wire::{parse_amc_time, parse_execution, run_status};
use super::{create_body, normalize_sql};
use crate::http::ApiResponse;

/// The doc's multi-line query ("The query is below").
const DOC_QUERY: &str = "SELECT
  advertiser,
  campaign,
  SUM(total_cost) AS spend,
  SUM(impressions) AS impressions,
  COUNT(DISTINCT user_id) AS reach
FROM
  dsp_impressions
GROUP BY
  advertiser,
  campaign
";

/// The doc's single-line form ("Note how we convert the SQL query to a single line").
const DOC_SINGLE_LINE: &str = "SELECT advertiser, campaign, sum(total_cost) as spend, sum(impressions) as impressions, count(DISTINCT user_id) as reach FROM dsp_impressions GROUP BY advertiser, campaign";

/// "Sample request payload", verbatim.
const DOC_REQUEST_PAYLOAD: &str = r#"{
 "workflow": 
    {
     "sqlQuery": "SELECT advertiser, campaign, sum(total_cost) as spend, sum(impressions) as impressions, count(DISTINCT user_id) as reach FROM dsp_impressions GROUP BY advertiser, campaign"
    },
    "timeWindowType": "MOST_RECENT_WEEK"
}"#;

/// "Sample response" of the create call, verbatim.
const DOC_CREATE_RESPONSE: &str = r#"{
    "createTime": "2023-08-16T04:12:53Z",
    "dataGaps": [],
    "disableAggregationControls": false,
    "executionCategory": "AD_HOC",
    "expireTime": "2023-08-17T04:12:53Z",
    "ignoreDataGaps": false,
    "lastUpdatedTime": "2023-08-16T04:12:53Z",
    "parameterValues": {},
    "status": "PENDING",
    "timeWindowTimeZoneOriginal": "UTC",
    "waitUntil": "2023-08-16T03:12:53Z",
    "workflowExecutionId": "a111111c-111f-1111-b1f1-11d111f1c1d1",
    "workflowExecutionTimeoutSeconds": 21600,
    "workflowId": "transient_c3393afa-5996-4e0e-829e-5da4718eb9e3"
}"#;

/// The `downloadUrls` answer while the output is not ready, verbatim.
const DOC_NOT_READY: &str =
    r#""Execution with ID a111111c-111f-1111-b1f1-11d111f1c1d1 is unavailable for download""#;

fn request(sql: &str) -> ResolvedRequest {
    serde_json::from_value(json!({
        "vendor": "amc",
        "instance_id": "amcinstance01",
        "advertiser_id": "ENTITY1ABC",
        "marketplace_id": "ATVPDKIKX0DER",
        "sql_query": sql,
        "time_window_type": "MOST_RECENT_WEEK",
    }))
    .expect("a valid AMC request")
}

fn response(status: StatusCode, body: &str) -> ApiResponse {
    ApiResponse {
        status,
        headers: HeaderMap::new(),
        body: Bytes::from(body.to_owned()),
    }
}

#[test]
fn create_body_is_the_docs_sample_payload() {
    let doc: Value = serde_json::from_str(DOC_REQUEST_PAYLOAD).unwrap();
    let mut ours = create_body(&request(DOC_SINGLE_LINE)).unwrap();
    // The one addition, on purpose: runbridge's windows are UTC, so the client says so instead
    // of relying on the instance's default zone (see the module docs).
    let zone = ours.as_object_mut().unwrap().remove("timeWindowTimeZone");
    assert_eq!(zone, Some(json!("UTC")));
    assert_eq!(ours, doc);
}

#[test]
fn the_docs_multi_line_query_becomes_its_single_line() {
    // The doc also lower-cases `SUM`, `AS` and `COUNT` on the way; runbridge keeps the query's
    // words as written (SQL keywords are case-insensitive), so only the case may differ.
    let one_line = normalize_sql(DOC_QUERY).unwrap();
    assert_eq!(one_line.to_lowercase(), DOC_SINGLE_LINE.to_lowercase());
    // And a body built from the multi-line query carries that single line.
    let body = create_body(&request(DOC_QUERY)).unwrap();
    assert_eq!(body["workflow"]["sqlQuery"], json!(one_line));
}

#[test]
fn the_docs_create_response_parses() {
    let execution = parse_execution(&response(StatusCode::OK, DOC_CREATE_RESPONSE)).unwrap();
    assert_eq!(
        execution.workflow_execution_id.as_deref(),
        Some("a111111c-111f-1111-b1f1-11d111f1c1d1")
    );
    assert_eq!(
        execution.workflow_id.as_deref(),
        Some("transient_c3393afa-5996-4e0e-829e-5da4718eb9e3")
    );
    assert_eq!(
        execution.create_time.as_deref().and_then(parse_amc_time),
        Some::<OffsetDateTime>(datetime!(2023-08-16 04:12:53 UTC))
    );
    assert_eq!(
        execution.parameter_values.as_ref().map(|p| p.len()),
        Some(0)
    );
    let status = run_status(execution).unwrap();
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Pending, "PENDING")
    );
}

#[test]
fn the_docs_not_ready_answer_means_not_yet() {
    // The doc does not give the status code; any 4xx with these words is "not published yet".
    let answer = response(StatusCode::BAD_REQUEST, DOC_NOT_READY);
    let message = error_message(&answer);
    assert!(not_published_yet(&answer, &message), "{message}");
    assert!(message.contains("a111111c-111f-1111-b1f1-11d111f1c1d1"));
}
