//! The CARTO client against the CARTO simulator.

mod util;

use futures::StreamExt;
use runbridge_core::{Attribution, ResolvedRequest, RunRequest, RunState, VendorKind};
use runbridge_sim::{csvgen, Fault, FaultRule, Outcome, RunScript, Sim};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{
    CancelOutcome, ResultStream, ResultsAvailability, RunRef, Settings, VendorError,
};
use serde_json::{json, Value};
use util::{key, poll_until_final, request, Harness};

const CARTO: VendorKind = VendorKind::Carto;
/// The doc's example call.
const WORKFLOW_CALL: &str =
    "CALL `carto-dw-ac-jfjjof5m.workflows_temp.workflow_procedure_09cc2e19ad5bbc6f`(@number_of_clusters,@buffer_radius,@store_type)";

fn workflow_request(export: bool) -> ResolvedRequest {
    let mut doc = json!({
        "vendor": "carto",
        "connection": "your_connection",
        "query": WORKFLOW_CALL,
        "query_parameters": {"number_of_clusters": 2, "buffer_radius": 500, "store_type": "Supermarket"},
    });
    if export {
        doc["export_query"] = json!("SELECT * FROM `carto-dw-ac-jfjjof5m.shared.stores_clustered`");
    }
    request(doc)
}

fn script(outcome: Outcome) -> RunScript {
    RunScript {
        outcome,
        queue_seconds: 5.0,
        run_seconds: 60.0,
        rows: 250,
        ..RunScript::default()
    }
}

async fn read_all(download: ResultStream) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = download.body;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("body chunk"));
    }
    body
}

async fn submit_and_finish(
    h: &Harness,
    request: &ResolvedRequest,
) -> (String, runbridge_core::RunStatus) {
    let carto = h.vendor(CARTO);
    let job = carto.submit(request, &key(request)).await.expect("submit");
    let (status, _) = poll_until_final(h, carto.as_ref(), request, &job.vendor_run_id).await;
    (job.vendor_run_id, status)
}

#[tokio::test]
async fn happy_path_exports_the_csv_byte_for_byte() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    h.sim
        .sim
        .control
        .push_script(CARTO, script(Outcome::Succeed));
    let req = workflow_request(true);
    let carto = h.vendor(CARTO);

    let job = carto.submit(&req, &key(&req)).await.expect("submit");
    assert!(job.vendor_run_id.starts_with("job_"), "{job:?}");
    let run = RunRef {
        request: &req,
        vendor_run_id: &job.vendor_run_id,
    };
    let first = carto.status(run).await.expect("status");
    assert_eq!(
        (first.state, first.vendor_state.as_str()),
        (RunState::Pending, "PENDING")
    );
    // Before the job is DONE the export must wait.
    assert!(matches!(
        carto.results(run).await.expect("results"),
        ResultsAvailability::NotYet { .. }
    ));

    let (status, polls) = poll_until_final(&h, carto.as_ref(), &req, &job.vendor_run_id).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Succeeded, "DONE")
    );
    assert!(polls > 1);

    let ResultsAvailability::Ready(files) = carto.results(run).await.expect("results") else {
        panic!("expected one export file");
    };
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "export.csv");
    let download = carto.open_result(&files[0]).await.expect("open export");
    let body = read_all(download).await;
    assert_eq!(
        body,
        csvgen::generate(Sim::seed_for(&job.vendor_run_id, 0), 250)
    );
    assert_eq!(h.sim.sim.control.requests("carto.export"), 1);

    // The client's create body is exactly the doc's example body.
    let exchanges = h.sim.sim.recorder.exchanges();
    let create = exchanges
        .iter()
        .find(|e| e.method == "POST" && e.path.ends_with("/job"))
        .expect("create recorded");
    assert_eq!(create.path, "/v3/sql/your_connection/job");
    assert_eq!(
        create.request,
        Some(json!({
            "query": WORKFLOW_CALL,
            "queryParameters": {"number_of_clusters": 2, "buffer_radius": 500, "store_type": "Supermarket"},
        }))
    );
    let answer = create.response.as_ref().expect("create answer");
    assert_eq!(answer["externalId"], json!(job.vendor_run_id));
    assert_eq!(answer["jobMetadata"], json!({"location": "US"}));
    let read = exchanges
        .iter()
        .find(|e| e.method == "GET" && e.path.contains("/job/"))
        .expect("status recorded");
    assert_eq!(
        read.path,
        format!("/v3/sql/your_connection/job/{}", job.vendor_run_id)
    );
}

#[tokio::test]
async fn without_export_query_there_are_no_files() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let (job_id, status) = submit_and_finish(&h, &req).await;
    assert_eq!(status.state, RunState::Succeeded);
    let results = h
        .vendor(CARTO)
        .results(RunRef {
            request: &req,
            vendor_run_id: &job_id,
        })
        .await
        .expect("results");
    assert!(
        matches!(results, ResultsAvailability::NoFiles),
        "{results:?}"
    );
    assert_eq!(h.sim.sim.control.requests("carto.export"), 0);
}

#[tokio::test]
async fn done_with_error_result_is_a_customer_failure_with_the_reason() {
    let h = Harness::start(1.0).await;
    let message =
        "Query error: Cannot coerce expression @number_of_clusters to type INT64 at [1:158]";
    h.sim.sim.control.push_script(
        CARTO,
        script(Outcome::Fail {
            message: message.into(),
            customer: true,
        }),
    );
    let req = workflow_request(true);
    let (job_id, status) = submit_and_finish(&h, &req).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "DONE")
    );
    assert_eq!(status.attribution, Some(Attribution::Customer));
    let reason = status.reason.expect("reason");
    assert!(
        reason.contains("invalidQuery") && reason.contains(message),
        "{reason}"
    );
    // A failed job has nothing to export.
    let results = h
        .vendor(CARTO)
        .results(RunRef {
            request: &req,
            vendor_run_id: &job_id,
        })
        .await;
    assert!(
        matches!(results, Err(VendorError::Rejected { .. })),
        "{results:?}"
    );
}

#[tokio::test]
async fn backend_error_is_a_platform_failure() {
    let h = Harness::start(1.0).await;
    h.sim.sim.control.push_script(
        CARTO,
        script(Outcome::Fail {
            message: "Backend error".into(),
            customer: false,
        }),
    );
    let (_, status) = submit_and_finish(&h, &workflow_request(false)).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "DONE")
    );
    assert_eq!(status.attribution, Some(Attribution::Platform));
    assert!(status.reason.expect("reason").contains("backendError"));
}

#[tokio::test]
async fn failed_state_is_a_failure() {
    let h = Harness::start(1.0).await;
    h.sim.sim.control.push_script(
        CARTO,
        script(Outcome::Reject {
            message: "Connection is disabled".into(),
        }),
    );
    let (_, status) = submit_and_finish(&h, &workflow_request(false)).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "FAILED")
    );
    assert!(status
        .reason
        .expect("reason")
        .contains("Connection is disabled"));
}

#[tokio::test]
async fn a_parameter_missing_from_query_parameters_fails_the_job() {
    let h = Harness::start(1.0).await;
    let missing = json!({
        "vendor": "carto",
        "connection": "your_connection",
        "query": WORKFLOW_CALL,
        "query_parameters": {"number_of_clusters": 2, "buffer_radius": 500},
    });
    // `validate` refuses it before anything is sent...
    let refused = RunRequest::from_value(missing.clone()).unwrap_err();
    assert_eq!(refused.field, "query", "{refused}");
    assert!(refused.rule.contains("`@store_type`"), "{refused}");
    // ...and a request that reaches CARTO all the same (built without validation, as from an
    // older release) fails as the customer's, with the warehouse's message.
    let req: RunRequest = serde_json::from_value(missing).unwrap();
    let req = req.resolve(runbridge_core::OffsetDateTime::now_utc());
    let (_, status) = submit_and_finish(&h, &req).await;
    assert_eq!(h.runs_created(CARTO), 1);
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "DONE")
    );
    assert_eq!(status.attribution, Some(Attribution::Customer));
    let reason = status.reason.expect("reason");
    assert!(
        reason.contains("Query parameter 'store_type' not found at [1:"),
        "{reason}"
    );
}

#[tokio::test]
async fn cancel_stops_a_running_job() {
    let h = Harness::start(1.0).await;
    h.sim
        .sim
        .control
        .push_script(CARTO, script(Outcome::NeverFinish));
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    let job = carto.submit(&req, &key(&req)).await.expect("submit");
    let run = RunRef {
        request: &req,
        vendor_run_id: &job.vendor_run_id,
    };
    h.sim.sim.clock.advance(10.0);
    assert_eq!(
        carto.status(run).await.expect("status").state,
        RunState::Running
    );

    assert_eq!(
        carto.cancel(run).await.expect("cancel"),
        CancelOutcome::Requested
    );
    assert_eq!(h.sim.sim.control.requests("carto.cancel"), 1);
    // Still stopping, then canceled.
    assert_eq!(
        carto.status(run).await.expect("status").state,
        RunState::Running
    );
    h.sim.sim.clock.advance(10.0);
    let status = carto.status(run).await.expect("status");
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Cancelled, "CANCELED")
    );
    assert_eq!(
        carto.cancel(run).await.expect("cancel again"),
        CancelOutcome::AlreadyFinal
    );
    assert_eq!(
        h.sim.sim.control.requests("carto.cancel"),
        1,
        "no DELETE for a finished job"
    );
}

#[tokio::test]
async fn cancel_of_a_finished_job_is_already_final() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let (job_id, _) = submit_and_finish(&h, &req).await;
    let outcome = h
        .vendor(CARTO)
        .cancel(RunRef {
            request: &req,
            vendor_run_id: &job_id,
        })
        .await
        .expect("cancel");
    assert_eq!(outcome, CancelOutcome::AlreadyFinal);
}

#[tokio::test]
async fn expired_token_is_refreshed_once() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    let job = carto.submit(&req, &key(&req)).await.expect("submit");
    assert_eq!(h.sim.sim.tokens.issued_count(CARTO), 1);
    h.sim.sim.tokens.expire_all(CARTO, h.sim.sim.clock.now());
    let status = carto
        .status(RunRef {
            request: &req,
            vendor_run_id: &job.vendor_run_id,
        })
        .await
        .expect("status");
    assert_eq!(status.state, RunState::Pending);
    assert_eq!(h.sim.sim.tokens.issued_count(CARTO), 2);
    assert_eq!(h.sim.sim.control.requests("carto.token"), 2);
}

#[tokio::test]
async fn a_long_lived_api_token_needs_no_token_endpoint() {
    let h = Harness::start(1.0).await;
    let token = h.sim.sim.tokens.issue(CARTO, h.sim.sim.clock.now(), 86_400);
    let mut settings = Settings::new();
    settings.set("carto.api_base", h.sim.base_url());
    // Plain http to the simulator on loopback needs the sandbox switch.
    settings.set("carto.download_allow_loopback", "true");
    settings.set("carto.api_token", token);
    let carto = (runbridge_vendors::carto::ENTRY.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    )
    .expect("client");
    let req = workflow_request(false);
    let job = carto.submit(&req, &key(&req)).await.expect("submit");
    carto
        .status(RunRef {
            request: &req,
            vendor_run_id: &job.vendor_run_id,
        })
        .await
        .expect("status");
    assert_eq!(h.sim.sim.control.requests("carto.token"), 0);
}

#[tokio::test]
async fn missing_credentials_name_the_setting() {
    let build = runbridge_vendors::carto::ENTRY.build;
    let Err(VendorError::Config { setting, .. }) = build(
        &Settings::new(),
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) else {
        panic!("expected a configuration error");
    };
    assert_eq!(setting, "carto.client_id");
    let mut settings = Settings::new();
    settings.set("carto.client_id", "id");
    let Err(VendorError::Config { setting, .. }) = build(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) else {
        panic!("expected a configuration error");
    };
    assert_eq!(setting, "carto.client_secret");
}

#[tokio::test]
async fn throttling_and_server_errors_on_status_are_retried() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    let job = carto.submit(&req, &key(&req)).await.expect("submit");
    let faults = &h.sim.sim.faults;
    faults.inject(FaultRule::new(
        CARTO,
        Some("GET"),
        "/job/",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1,
    ));
    faults.inject(FaultRule::new(
        CARTO,
        Some("GET"),
        "/job/",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    ));
    faults.inject(FaultRule::new(
        CARTO,
        Some("GET"),
        "/job/",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        1,
    ));
    let started = std::time::Instant::now();
    let status = carto
        .status(RunRef {
            request: &req,
            vendor_run_id: &job.vendor_run_id,
        })
        .await
        .expect("status");
    assert_eq!(status.state, RunState::Pending);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(
        h.sim.sim.control.requests("carto.status"),
        1,
        "only the last attempt reached the handler"
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_outcome_unknown_and_creates_one_job() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    h.sim.sim.faults.inject(FaultRule::new(
        CARTO,
        Some("POST"),
        "/job",
        Fault::DropResponse,
        1,
    ));
    let result = carto.submit(&req, &key(&req)).await;
    assert!(
        matches!(result, Err(VendorError::OutcomeUnknown { .. })),
        "{result:?}"
    );
    assert_eq!(h.runs_created(CARTO), 1);
    assert_eq!(
        h.sim.sim.control.requests("carto.submit"),
        1,
        "a submit is never resent"
    );
    let found = carto
        .find_submitted(&req, &key(&req), h.sim.sim.clock.now().into())
        .await
        .expect("find");
    assert!(found.is_none(), "CARTO cannot reconcile a lost create");
}

#[tokio::test]
async fn a_500_on_create_is_outcome_unknown_but_a_503_is_retried() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    h.sim.sim.faults.inject(FaultRule::new(
        CARTO,
        Some("POST"),
        "/job",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    let result = carto.submit(&req, &key(&req)).await;
    assert!(
        matches!(result, Err(VendorError::OutcomeUnknown { .. })),
        "{result:?}"
    );
    assert_eq!(
        h.runs_created(CARTO),
        0,
        "the 500 was not followed by a second attempt"
    );

    h.sim.sim.faults.inject(FaultRule::new(
        CARTO,
        Some("POST"),
        "/job",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    carto
        .submit(&req, &key(&req))
        .await
        .expect("submit after 503s");
    assert_eq!(h.runs_created(CARTO), 1);
}

#[tokio::test]
async fn api_errors_map_from_the_error_body() {
    let h = Harness::start(1.0).await;
    let req = workflow_request(false);
    let carto = h.vendor(CARTO);
    let result = carto
        .status(RunRef {
            request: &req,
            vendor_run_id: "job_doesnotexist",
        })
        .await;
    let Err(VendorError::NotFound { message, .. }) = result else {
        panic!("expected NotFound, got {result:?}")
    };
    assert!(message.contains("job_doesnotexist"), "{message}");
}

// ---- The simulator is strict: raw requests it must reject. ----

struct Raw {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    fn new(h: &Harness) -> Self {
        let token = h.sim.sim.tokens.issue(CARTO, h.sim.sim.clock.now(), 86_400);
        Self {
            client: reqwest::Client::new(),
            base: h.sim.base_url(),
            token,
        }
    }

    async fn create(&self, body: &str, content_type: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v3/sql/conn/job", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("send");
        (
            response.status().as_u16(),
            response.json().await.expect("json body"),
        )
    }
}

fn assert_carto_error(status: u16, body: &Value, expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], json!(expected), "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"));
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
}

#[tokio::test]
async fn simulator_rejects_bad_job_bodies() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h);
    let json_type = "application/json";
    let cases = [
        (r#"{"query": "SELECT 1"}"#, "text/plain", "Content-Type"),
        ("[1, 2]", json_type, "JSON object"),
        ("{not json", json_type, "JSON object"),
        ("{}", json_type, "'query' is required"),
        (r#"{"query": "   "}"#, json_type, "must not be empty"),
        (r#"{"query": 42}"#, json_type, "must be a string"),
        (
            r#"{"query": "SELECT @a", "queryParameters": [1]}"#,
            json_type,
            "'queryParameters' must be an object",
        ),
        (
            r#"{"query": "SELECT @a", "queryParameters": {"a": null}}"#,
            json_type,
            "cannot be inferred",
        ),
        (
            r#"{"query": "SELECT 1", "queryParameters": {"1a": 1}}"#,
            json_type,
            "Invalid query parameter name",
        ),
        (
            r#"{"query": "SELECT 1", "metadata": "x"}"#,
            json_type,
            "'metadata' must be an object",
        ),
        (
            r#"{"query": "SELECT 1", "q": "SELECT 2"}"#,
            json_type,
            "Unknown field 'q'",
        ),
    ];
    for (body, content_type, needle) in cases {
        let (status, answer) = raw.create(body, content_type).await;
        assert_carto_error(status, &answer, 400, needle);
    }
    assert_eq!(h.runs_created(CARTO), 0);
}

#[tokio::test]
async fn simulator_requires_a_valid_bearer_everywhere() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h);
    let (_, created) = raw
        .create(r#"{"query": "SELECT 1"}"#, "application/json")
        .await;
    let job_id = created["externalId"]
        .as_str()
        .expect("externalId")
        .to_owned();
    let urls = [
        ("POST", format!("{}/v3/sql/conn/job", raw.base)),
        ("GET", format!("{}/v3/sql/conn/job/{job_id}", raw.base)),
        ("DELETE", format!("{}/v3/sql/conn/job/{job_id}", raw.base)),
        (
            "GET",
            format!("{}/v3/sql/conn/query?q=SELECT%201&format=csv", raw.base),
        ),
    ];
    for (method, url) in &urls {
        let method: reqwest::Method = method.parse().expect("method");
        for token in [None, Some("not-a-token")] {
            let mut builder = raw
                .client
                .request(method.clone(), url)
                .header("content-type", "application/json")
                .body("{}");
            if let Some(t) = token {
                builder = builder.bearer_auth(t);
            }
            let response = builder.send().await.expect("send");
            let status = response.status().as_u16();
            assert_carto_error(status, &response.json().await.expect("json"), 401, "");
        }
    }
    h.sim.sim.tokens.expire_all(CARTO, h.sim.sim.clock.now());
    let response = raw
        .client
        .get(&urls[1].1)
        .bearer_auth(&raw.token)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    assert_carto_error(
        status,
        &response.json().await.expect("json"),
        401,
        "expired",
    );
}

#[tokio::test]
async fn simulator_rejects_unknown_jobs_and_late_cancels() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h);
    let (_, created) = raw
        .create(
            r#"{"query": "SELECT 1", "metadata": {"source": "test"}}"#,
            "application/json",
        )
        .await;
    assert_eq!(
        created["metadata"],
        json!({"source": "test"}),
        "metadata is echoed"
    );
    assert_eq!(
        created["token"],
        json!(raw.token),
        "the create answer echoes the token, as documented"
    );
    let job_id = created["externalId"]
        .as_str()
        .expect("externalId")
        .to_owned();
    for url in [
        format!("{}/v3/sql/conn/job/job_unknown", raw.base),
        format!("{}/v3/sql/other_conn/job/{job_id}", raw.base),
    ] {
        let response = raw
            .client
            .get(&url)
            .bearer_auth(&raw.token)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        assert_carto_error(
            status,
            &response.json().await.expect("json"),
            404,
            "not found",
        );
    }
    h.sim.sim.clock.advance(3_600.0);
    let response = raw
        .client
        .delete(format!("{}/v3/sql/conn/job/{job_id}", raw.base))
        .bearer_auth(&raw.token)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    assert_carto_error(
        status,
        &response.json().await.expect("json"),
        400,
        "is DONE",
    );
}

#[tokio::test]
async fn simulator_query_endpoint_is_strict() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h);
    raw.create(r#"{"query": "SELECT 1"}"#, "application/json")
        .await;
    let get = |query: &str| {
        raw.client
            .get(format!("{}/v3/sql/conn/query?{query}", raw.base))
            .bearer_auth(&raw.token)
            .send()
    };
    let cases = [
        ("format=csv", "'q' is required"),
        ("q=SELECT%201", "format"),
        (
            "q=SELECT%20%40a&format=csv",
            "Query parameter 'a' not found at [1:8]",
        ),
        (
            "q=SELECT%20%40a&format=csv&queryParameters=%5B%5D",
            "must be a JSON object",
        ),
        (
            "q=SELECT%201&format=csv",
            "no job on this connection has finished",
        ),
    ];
    for (query, needle) in cases {
        let response = get(query).await.expect("send");
        let status = response.status().as_u16();
        assert_carto_error(status, &response.json().await.expect("json"), 400, needle);
    }
    h.sim.sim.clock.advance(3_600.0);
    let response = get("q=SELECT%20%40a&format=csv&queryParameters=%7B%22a%22%3A1%7D")
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv");
}

#[tokio::test]
async fn simulator_token_endpoint_requires_the_audience_and_credentials() {
    let h = Harness::start(1.0).await;
    let client = reqwest::Client::new();
    let url = format!("{}/oauth/token", h.sim.base_url());
    let id = runbridge_sim::auth::client_id(CARTO);
    let secret = runbridge_sim::auth::client_secret(CARTO);
    // (form fields, expected status, expected OAuth error code)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: [Case; 4] = [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            403,
            "access_denied",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", "other"),
            ],
            403,
            "access_denied",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
                ("audience", "carto-cloud-native-api"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", "carto-cloud-native-api"),
            ],
            200,
            "",
        ),
    ];
    for (form, expected, code) in cases {
        let response = client.post(&url).form(&form).send().await.expect("send");
        assert_eq!(response.status().as_u16(), expected);
        let body: Value = response.json().await.expect("json");
        if expected == 200 {
            assert!(
                body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
                "{body}"
            );
        } else {
            assert_eq!(body["error"], json!(code), "{body}");
        }
    }
    assert_eq!(h.sim.sim.tokens.issued_count(CARTO), 1);
}

#[tokio::test]
async fn export_download_refreshes_an_expired_token() {
    let h = Harness::start(1.0).await;
    h.sim
        .sim
        .control
        .push_script(CARTO, script(Outcome::Succeed));
    let req = workflow_request(true);
    let (job_id, status) = submit_and_finish(&h, &req).await;
    assert_eq!(status.state, RunState::Succeeded);
    let carto = h.vendor(CARTO);
    let ResultsAvailability::Ready(files) = carto
        .results(RunRef {
            request: &req,
            vendor_run_id: &job_id,
        })
        .await
        .expect("results")
    else {
        panic!("expected one export file");
    };
    h.sim.sim.tokens.expire_all(CARTO, h.sim.sim.clock.now());
    let body = read_all(carto.open_result(&files[0]).await.expect("open export")).await;
    assert_eq!(body, csvgen::generate(Sim::seed_for(&job_id, 0), 250));
    assert_eq!(h.sim.sim.tokens.issued_count(CARTO), 2);
    assert_eq!(
        h.sim.sim.control.requests("carto.export"),
        2,
        "one refused, one served"
    );
}

/// Issue 15: the export of a second run of the same export query, days later, lands *that* run's
/// bytes. CARTO caches `GET /query` for a year (the simulator serves the first answer for a URL
/// again), so the export is a `POST /query` — never cached — with `format: csv`, and without
/// `queryParameters` when the export SQL uses none. A query far longer than any URL still goes.
#[tokio::test]
async fn exports_are_never_served_from_the_get_cache() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let carto = h.vendor(CARTO);
    let req = workflow_request(true);
    let mut exports = Vec::new();
    for _ in 0..2 {
        h.sim
            .sim
            .control
            .push_script(CARTO, script(Outcome::Succeed));
        let (job, status) = submit_and_finish(&h, &req).await;
        assert_eq!(status.state, RunState::Succeeded);
        let run = RunRef {
            request: &req,
            vendor_run_id: &job,
        };
        let ResultsAvailability::Ready(files) = carto.results(run).await.unwrap() else {
            panic!("one export file");
        };
        let body = read_all(carto.open_result(&files[0]).await.unwrap()).await;
        assert_eq!(
            body,
            csvgen::generate(Sim::seed_for(&job, 0), 250),
            "the export is this run's rows"
        );
        exports.push(body);
        h.sim.sim.clock.advance(2.0 * 86_400.0);
    }
    assert_ne!(exports[0], exports[1]);
    assert_eq!(h.sim.sim.control.requests("carto.export.get"), 0);
    assert_eq!(h.sim.sim.control.requests("carto.export.post"), 2);
    let export = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .find(|e| e.method == "POST" && e.path.ends_with("/query"))
        .expect("export recorded");
    assert_eq!(export.query, None, "nothing in the URL");
    assert_eq!(
        export.request,
        Some(json!({
            "q": "SELECT * FROM `carto-dw-ac-jfjjof5m.shared.stores_clustered`",
            "format": "csv",
        })),
        "no queryParameters: the export SQL uses none"
    );

    // The simulator's GET cache is real: the same URL serves the first job's bytes again.
    let raw = reqwest::Client::new();
    let token = h.sim.sim.tokens.issue(CARTO, h.sim.sim.clock.now(), 3_600);
    let url = format!(
        "{}/v3/sql/your_connection/query?q=SELECT%201&format=csv",
        h.sim.base_url()
    );
    let first = raw.get(&url).bearer_auth(&token).send().await.unwrap();
    let first = first.bytes().await.unwrap();
    h.sim
        .sim
        .control
        .push_script(CARTO, script(Outcome::Succeed));
    let (newer, _) = submit_and_finish(&h, &req).await;
    let again = raw.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap(), first, "cached GET");
    assert_ne!(first, csvgen::generate(Sim::seed_for(&newer, 0), 250));

    // A 20,000-character export query (beyond any CDN's URL limit) is exported the same way.
    let long_sql = format!(
        "SELECT * FROM `carto-dw-ac-jfjjof5m.shared.stores_clustered` WHERE store_type = @store_type {}",
        "AND 1 = 1 ".repeat(2_000)
    );
    let mut doc = serde_json::to_value(&req).unwrap();
    doc["export_query"] = json!(long_sql);
    let long = request(doc);
    let run = RunRef {
        request: &long,
        vendor_run_id: &newer,
    };
    let ResultsAvailability::Ready(files) = carto.results(run).await.unwrap() else {
        panic!("one export file");
    };
    let body = read_all(carto.open_result(&files[0]).await.unwrap()).await;
    assert_eq!(body, csvgen::generate(Sim::seed_for(&newer, 0), 250));
    let last = h.sim.sim.recorder.exchanges().into_iter().last().unwrap();
    assert_eq!(
        last.request.as_ref().unwrap()["queryParameters"],
        json!({"store_type": "Supermarket"}),
        "only the parameter the export SQL uses"
    );
}
