//! AMC client against the AMC simulator: the run lifecycle, faults, reconciliation, and proof that
//! the simulator refuses what AMC refuses.

mod util;

use std::time::{Duration, Instant};

use runbridge_core::{Attribution, OffsetDateTime, ResolvedRequest, RunState, VendorKind};
use runbridge_sim::{csvgen, Fault, FaultRule, Outcome, RunScript, Sim};
use runbridge_vendors::download::{DownloadPolicy, S3_ENDPOINTS};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{
    registry, CancelOutcome, ResultsAvailability, RunRef, Settings, Vendor, VendorError,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use util::{key, poll_until_final, request, Harness};

const AMC: VendorKind = VendorKind::Amc;
const INSTANCE: &str = "amcinstance01";
const MEDIA_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";

fn adhoc(sql: &str) -> ResolvedRequest {
    request(json!({
        "vendor": "amc",
        "instance_id": INSTANCE,
        "advertiser_id": "ENTITY1ABC",
        "marketplace_id": "ATVPDKIKX0DER",
        "sql_query": sql,
        "time_window_type": "MOST_RECENT_WEEK",
    }))
}

fn run_ref<'a>(request: &'a ResolvedRequest, id: &'a str) -> RunRef<'a> {
    RunRef {
        request,
        vendor_run_id: id,
    }
}

fn script(outcome: Outcome) -> RunScript {
    RunScript {
        outcome,
        ..RunScript::default()
    }
}

/// Reads a whole result file through the client's download policy.
async fn download(vendor: &dyn Vendor, file: &runbridge_vendors::ResultFile) -> Vec<u8> {
    let download = vendor.open_result(file).await.expect("download opens");
    download.bytes().await.expect("download body").to_vec()
}

async fn ready_files(
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    id: &str,
) -> Vec<runbridge_vendors::ResultFile> {
    match vendor.results(run_ref(request, id)).await.expect("results") {
        ResultsAvailability::Ready(files) => files,
        other => panic!("expected files, got {other:?}"),
    }
}

/// The recorded `createWorkflowExecution` exchange.
fn create_exchange(h: &Harness) -> runbridge_sim::Exchange {
    let path = format!("/amc/reporting/{INSTANCE}/workflowExecutions");
    let exchanges = h.sim.sim.recorder.exchanges();
    exchanges
        .into_iter()
        .find(|e| e.method == "POST" && e.path == path)
        .expect("create recorded")
}

#[tokio::test]
async fn adhoc_query_runs_to_success_and_lands_the_exact_csv() {
    let h = Harness::start(1.0).await;
    h.sim.sim.control.push_script(
        AMC,
        RunScript {
            files: 2,
            rows: 250,
            ..RunScript::default()
        },
    );
    h.sim.sim.recorder.enable();
    let amc = h.vendor(AMC);
    let sql = "SELECT\n  advertiser, -- who\n  SUM(total_cost) AS spend /* all\n costs */\nFROM dsp_impressions\nWHERE campaign <> 'a  b'\nGROUP BY advertiser;\n";
    let req = adhoc(sql);
    let submitted = amc.submit(&req, &key(&req)).await.expect("submit");
    assert_eq!(submitted.vendor_state.as_deref(), Some("PENDING"));

    let create = create_exchange(&h);
    assert_eq!(
        create.path,
        format!("/amc/reporting/{INSTANCE}/workflowExecutions")
    );
    assert_eq!(
        create.request,
        Some(json!({
            "workflow": {"sqlQuery": "SELECT advertiser, SUM(total_cost) AS spend FROM dsp_impressions WHERE campaign <> 'a  b' GROUP BY advertiser"},
            "timeWindowType": "MOST_RECENT_WEEK",
            "timeWindowTimeZone": "UTC",
        }))
    );
    let answer = create.response.expect("create answer");
    assert_eq!(
        answer["workflowExecutionId"],
        json!(submitted.vendor_run_id)
    );
    assert_eq!(create.status, 200);

    let (status, polls) = poll_until_final(&h, amc.as_ref(), &req, &submitted.vendor_run_id).await;
    assert_eq!(status.state, RunState::Succeeded, "{status:?}");
    assert_eq!(status.vendor_state, "SUCCEEDED");
    assert!(polls >= 2, "the run must pass through non-final states");

    let files = ready_files(amc.as_ref(), &req, &submitted.vendor_run_id).await;
    assert_eq!(files.len(), 2);
    for (part, file) in files.iter().enumerate() {
        assert!(
            !file.name.contains("sig") && file.name.ends_with(".csv"),
            "a log-safe name: {}",
            file.name
        );
        let expected = csvgen::generate(Sim::seed_for(&submitted.vendor_run_id, part as u32), 250);
        assert_eq!(download(amc.as_ref(), file).await, expected, "part {part}");
    }
    assert_eq!(h.runs_created(AMC), 1);
}

#[tokio::test]
async fn saved_workflow_with_an_explicit_window_sends_the_documented_body() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let amc = h.vendor(AMC);
    let req = request(json!({
        "vendor": "amc",
        "instance_id": INSTANCE,
        "advertiser_id": "ENTITY1ABC",
        "marketplace_id": "ATVPDKIKX0DER",
        "workflow_id": "daily-reach",
        "time_window_type": "EXPLICIT",
        "time_window_start": "2026-11-26T00:00:00Z",
        "time_window_end": "2026-11-27",
        "parameter_values": {"advertiser": "Acme", "min_spend": 10, "strict": true},
        "ignore_data_gaps": true,
    }));
    let submitted = amc.submit(&req, &key(&req)).await.expect("submit");
    let create = create_exchange(&h);
    assert_eq!(
        create.request,
        Some(json!({
            "workflowId": "daily-reach",
            "timeWindowType": "EXPLICIT",
            "timeWindowStart": "2026-11-26T00:00:00",
            "timeWindowEnd": "2026-11-27T00:00:00",
            "timeWindowTimeZone": "UTC",
            "parameterValues": {"advertiser": "Acme", "min_spend": "10", "strict": "true"},
            "ignoreDataGaps": true,
        }))
    );
    let answer = create.response.expect("answer");
    assert_eq!(answer["timeWindowStart"], "2026-11-26T00:00:00Z");
    assert_eq!(answer["workflowId"], "daily-reach");
    let status = amc
        .status(run_ref(&req, &submitted.vendor_run_id))
        .await
        .expect("status");
    assert_eq!(status.state, RunState::Pending);
}

#[tokio::test]
async fn failed_and_rejected_runs_end_failed_with_amc_reason() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    h.sim.sim.control.push_script(
        AMC,
        script(Outcome::Fail {
            message: "Query timed out after 21600 seconds".into(),
            customer: false,
        }),
    );
    h.sim.sim.control.push_script(
        AMC,
        script(Outcome::Reject {
            message: "Column user_id is not allowed in output".into(),
        }),
    );
    let failing = adhoc("SELECT 1");
    let rejected = adhoc("SELECT 2");
    let a = amc.submit(&failing, &key(&failing)).await.expect("submit");
    let b = amc
        .submit(&rejected, &key(&rejected))
        .await
        .expect("submit");

    let (status, _) = poll_until_final(&h, amc.as_ref(), &failing, &a.vendor_run_id).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "FAILED")
    );
    assert_eq!(
        status.reason.as_deref(),
        Some("Query timed out after 21600 seconds")
    );

    let (status, _) = poll_until_final(&h, amc.as_ref(), &rejected, &b.vendor_run_id).await;
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Failed, "REJECTED")
    );
    assert_eq!(
        status.reason.as_deref(),
        Some("Column user_id is not allowed in output")
    );
    assert_eq!(status.attribution, Some(Attribution::Customer));

    // A failed run has no output: AMC keeps answering "unavailable for download".
    assert!(matches!(
        amc.results(run_ref(&failing, &a.vendor_run_id))
            .await
            .expect("results"),
        ResultsAvailability::NotYet { .. }
    ));
}

#[tokio::test]
async fn cancel_stops_a_running_execution_and_reports_already_final_after() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    let run = amc.submit(&req, &key(&req)).await.expect("submit");
    h.sim.sim.clock.advance(10.0);
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status");
    assert_eq!(status.state, RunState::Running);

    assert_eq!(
        amc.cancel(run_ref(&req, &run.vendor_run_id))
            .await
            .expect("cancel"),
        CancelOutcome::Requested
    );
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status");
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Cancelled, "CANCELLED")
    );
    // AMC answers 400 to cancelling a CANCELLED execution.
    assert_eq!(
        amc.cancel(run_ref(&req, &run.vendor_run_id))
            .await
            .expect("cancel"),
        CancelOutcome::AlreadyFinal
    );

    let done = adhoc("SELECT 2");
    let finished = amc.submit(&done, &key(&done)).await.expect("submit");
    poll_until_final(&h, amc.as_ref(), &done, &finished.vendor_run_id).await;
    assert_eq!(
        amc.cancel(run_ref(&done, &finished.vendor_run_id))
            .await
            .expect("cancel"),
        CancelOutcome::AlreadyFinal
    );
    assert_eq!(h.sim.sim.control.requests("amc.cancel"), 3);
}

#[tokio::test]
async fn output_still_publishing_is_not_yet_rather_than_a_failure() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    h.sim.sim.control.push_script(
        AMC,
        RunScript {
            publish_seconds: 600.0,
            ..RunScript::default()
        },
    );
    let req = adhoc("SELECT 1");
    let run = amc.submit(&req, &key(&req)).await.expect("submit");
    h.sim.sim.clock.advance(70.0);
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status");
    assert_eq!(
        (status.state, status.vendor_state.as_str()),
        (RunState::Running, "PUBLISHING")
    );
    match amc
        .results(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("results")
    {
        ResultsAvailability::NotYet { reason, .. } => {
            assert_eq!(
                reason,
                format!(
                    "Execution with ID {} is unavailable for download",
                    run.vendor_run_id
                )
            )
        }
        other => panic!("expected NotYet, got {other:?}"),
    }
    h.sim.sim.clock.advance(600.0);
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status");
    assert_eq!(status.state, RunState::Succeeded);
    assert_eq!(
        ready_files(amc.as_ref(), &req, &run.vendor_run_id)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn an_expired_token_mid_run_is_refreshed_once() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    let run = amc.submit(&req, &key(&req)).await.expect("submit");
    assert_eq!(h.sim.sim.tokens.issued_count(AMC), 1);
    h.sim.sim.tokens.expire_all(AMC, h.sim.sim.clock.now());
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status after refresh");
    assert!(!status.state.is_final());
    assert_eq!(h.sim.sim.tokens.issued_count(AMC), 2, "exactly one refresh");
    assert_eq!(h.sim.sim.control.requests("amc.token"), 2);
    // Two status calls reached the handler: the 403 and the retry.
    assert_eq!(h.sim.sim.control.requests("amc.status"), 2);
}

#[tokio::test]
async fn throttling_and_server_errors_on_status_are_retried() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    let run = amc.submit(&req, &key(&req)).await.expect("submit");
    let faults = &h.sim.sim.faults;
    faults.inject(FaultRule::new(
        AMC,
        Some("GET"),
        &run.vendor_run_id,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1,
    ));
    faults.inject(FaultRule::new(
        AMC,
        Some("GET"),
        &run.vendor_run_id,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    ));
    faults.inject(FaultRule::new(
        AMC,
        Some("GET"),
        &run.vendor_run_id,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    let started = Instant::now();
    let status = amc
        .status(run_ref(&req, &run.vendor_run_id))
        .await
        .expect("status after retries");
    assert_eq!(status.vendor_state, "PENDING");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After must be honoured"
    );
    assert_eq!(
        h.sim.sim.control.requests("amc.status"),
        1,
        "only the last attempt reached the handler"
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_outcome_unknown_and_reconciled_to_the_one_run() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let since = h.sim.sim.clock.now();
    let req = adhoc("SELECT advertiser FROM dsp_impressions");
    h.sim.sim.faults.inject(FaultRule::new(
        AMC,
        Some("POST"),
        "/workflowExecutions",
        Fault::DropResponse,
        1,
    ));
    let err = amc
        .submit(&req, &key(&req))
        .await
        .expect_err("answer was dropped");
    assert!(matches!(err, VendorError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(
        h.runs_created(AMC),
        1,
        "the create was applied once and not repeated"
    );

    let found = amc
        .find_submitted(&req, &key(&req), since.into())
        .await
        .expect("list")
        .expect("the run is found");
    let status = amc
        .status(run_ref(&req, &found.vendor_run_id))
        .await
        .expect("status of the found run");
    assert!(!status.state.is_final());
    let other = adhoc("SELECT campaign FROM dsp_impressions");
    assert!(amc
        .find_submitted(&other, &key(&other), since.into())
        .await
        .expect("list")
        .is_none());
    let later = h.sim.sim.clock.now() + time::Duration::seconds(5);
    assert!(
        amc.find_submitted(&req, &key(&req), later.into())
            .await
            .expect("list")
            .is_none(),
        "created before `since`"
    );
}

#[tokio::test]
async fn a_500_on_create_is_outcome_unknown_and_never_retried() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    h.sim.sim.faults.inject(FaultRule::new(
        AMC,
        Some("POST"),
        "/workflowExecutions",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    let err = amc.submit(&req, &key(&req)).await.expect_err("500");
    assert!(matches!(err, VendorError::OutcomeUnknown { .. }), "{err:?}");
    // A retry would have reached the handler and created a run.
    assert_eq!(h.runs_created(AMC), 0);
    assert_eq!(h.sim.sim.control.requests("amc.create"), 0);
}

#[tokio::test]
async fn a_503_on_create_is_retried_and_creates_one_run() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    h.sim.sim.faults.inject(FaultRule::new(
        AMC,
        Some("POST"),
        "/workflowExecutions",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    amc.submit(&req, &key(&req))
        .await
        .expect("submit after 503s");
    assert_eq!(h.runs_created(AMC), 1);
}

#[tokio::test]
async fn reconciliation_pages_through_more_than_one_list_page() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let since = h.sim.sim.clock.now();
    // Runs that end at once, so the concurrency limit never bites.
    let instant = RunScript {
        queue_seconds: 0.0,
        run_seconds: 0.0,
        ..RunScript::default()
    };
    for i in 0..104 {
        h.sim.sim.control.push_script(AMC, instant.clone());
        let other = adhoc(&format!("SELECT {i}"));
        amc.submit(&other, &key(&other)).await.expect("submit");
    }
    h.sim.sim.control.push_script(AMC, instant);
    let target = adhoc("SELECT 'target'");
    let created = amc.submit(&target, &key(&target)).await.expect("submit");
    let found = amc
        .find_submitted(&target, &key(&target), since.into())
        .await
        .expect("list")
        .expect("found");
    assert_eq!(found.vendor_run_id, created.vendor_run_id);
    assert_eq!(
        h.sim.sim.control.requests("amc.list"),
        2,
        "the target is on the second page"
    );
}

#[tokio::test]
async fn the_concurrency_limit_refuses_an_eleventh_active_execution() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let mut first = None;
    for i in 0..10 {
        h.sim
            .sim
            .control
            .push_script(AMC, script(Outcome::NeverFinish));
        let req = adhoc(&format!("SELECT {i}"));
        let run = amc
            .submit(&req, &key(&req))
            .await
            .expect("submit within the limit");
        first.get_or_insert((req, run.vendor_run_id));
    }
    let extra = adhoc("SELECT 'one too many'");
    let err = amc
        .submit(&extra, &key(&extra))
        .await
        .expect_err("over the limit");
    assert!(matches!(err, VendorError::Throttled { .. }), "{err:?}");
    assert!(
        err.to_string().contains("at most 10 may run concurrently"),
        "the vendor's reason survives the retries: {err}"
    );
    assert_eq!(h.runs_created(AMC), 10);

    let raw = Raw::new(&h).await;
    let (status, body) = raw
        .send(
            "POST",
            "",
            Some(json!({"workflow": {"sqlQuery": "SELECT 1"}}).to_string()),
        )
        .await;
    assert_error(status, &body, 429, "at most 10 may run concurrently");

    // Another instance is not affected, and a cancel frees a slot.
    let mut elsewhere = adhoc("SELECT 1").request().clone();
    if let runbridge_core::VendorSpec::Amc(run) = &mut elsewhere.spec {
        run.instance_id = "amcinstance02".into();
    }
    let elsewhere = elsewhere.resolve(OffsetDateTime::now_utc());
    amc.submit(&elsewhere, &key(&elsewhere))
        .await
        .expect("other instance");
    let (req, id) = first.expect("ten runs");
    amc.cancel(run_ref(&req, &id)).await.expect("cancel");
    amc.submit(&extra, &key(&extra))
        .await
        .expect("a slot is free again");
}

#[tokio::test]
async fn the_production_download_policy_refuses_the_simulator_urls() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    let run = amc.submit(&req, &key(&req)).await.expect("submit");
    poll_until_final(&h, amc.as_ref(), &req, &run.vendor_run_id).await;
    let files = ready_files(amc.as_ref(), &req, &run.vendor_run_id).await;

    let mut strict = Settings::new();
    for (k, v) in h.sim.client_settings() {
        if k != "amc.download_allow_loopback" {
            strict.set(k, v);
        }
    }
    let entry = registry::VENDORS
        .iter()
        .find(|e| e.kind == AMC)
        .expect("registered");
    // Without the sandbox switch the simulator's plain-http API is refused outright: it would
    // receive the refresh token.
    match (entry.build)(
        &strict,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) {
        Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.api_base"),
        Err(other) => panic!("expected a config error naming amc.api_base, got {other:?}"),
        Ok(_) => panic!("a production client accepted a plain-http API base"),
    }
    // And the production download policy refuses the simulator's URL.
    let production = DownloadPolicy::from_settings(&strict, AMC, &[S3_ENDPOINTS]).expect("policy");
    let url = url::Url::parse(files[0].url.expose_secret()).expect("URL");
    let err = production
        .check(AMC, &url)
        .expect_err("loopback http is refused");
    assert!(
        matches!(err, VendorError::DownloadRefused { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_execution_is_not_found_and_unresolved_windows_are_refused() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT 1");
    let err = amc
        .status(run_ref(&req, "00000000-0000-0000-0000-000000000000"))
        .await
        .expect_err("unknown");
    assert!(matches!(err, VendorError::NotFound { .. }), "{err:?}");

    // An unresolved window cannot reach the client at all: a `ResolvedRequest` is only made by
    // `RunRequest::resolve`, and reading one back refuses a relative window, naming it.
    let relative = json!({
        "vendor": "amc", "instance_id": INSTANCE, "advertiser_id": "E1", "marketplace_id": "M1",
        "workflow_id": "w1", "time_window_type": "EXPLICIT", "relative_window": "previous_day",
    });
    match serde_json::from_value::<ResolvedRequest>(relative) {
        Err(e) => assert!(e.to_string().contains("relative_window"), "{e}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        h.sim.sim.control.requests("amc.create"),
        0,
        "nothing was sent"
    );
}

// ---- raw requests: the simulator refuses what AMC refuses ----

/// Raw HTTP against the simulator with a valid token and every header AMC wants.
struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    async fn new(h: &Harness) -> Self {
        let http = reqwest::Client::new();
        let base = h.sim.base_url();
        let answer: Value = http
            .post(format!("{base}/auth/o2/token"))
            .form(&[
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", runbridge_sim::auth::refresh_token(AMC)),
                ("client_id", runbridge_sim::auth::client_id(AMC)),
                ("client_secret", runbridge_sim::auth::client_secret(AMC)),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        let token = answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Self { http, base, token }
    }

    fn request(&self, method: &str, suffix: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/amc/reporting/{INSTANCE}/workflowExecutions{suffix}",
            self.base
        );
        self.http
            .request(method.parse().expect("method"), url)
            .bearer_auth(&self.token)
            .header(
                "Amazon-Advertising-API-ClientId",
                runbridge_sim::auth::client_id(AMC),
            )
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1ABC")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
            .header("Accept", MEDIA_TYPE)
    }

    async fn send(&self, method: &str, suffix: &str, body: Option<String>) -> (u16, Value) {
        let mut builder = self.request(method, suffix);
        if let Some(body) = body {
            builder = builder.header("Content-Type", MEDIA_TYPE).body(body);
        }
        finish(builder).await
    }
}

async fn finish(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.send().await.expect("simulator answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// AMC's error shape: `{"code": "<status>", "details": "…"}`.
#[track_caller]
fn assert_error(status: u16, body: &Value, expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], json!(expected.to_string()), "{body}");
    let details = body["details"].as_str().unwrap_or_default();
    assert!(
        details.contains(needle),
        "expected `{needle}` in {details:?}"
    );
}

fn valid_create() -> Value {
    json!({"workflow": {"sqlQuery": "SELECT 1"}, "timeWindowType": "MOST_RECENT_DAY"})
}

fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut target = &mut body;
    for part in &path[..path.len() - 1] {
        target = target.get_mut(*part).expect("path exists");
    }
    target[path[path.len() - 1]] = value;
    body
}

#[tokio::test]
async fn the_simulator_rejects_invalid_create_bodies_as_amc_does() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let (status, ok) = raw.send("POST", "", Some(valid_create().to_string())).await;
    assert_eq!(status, 200, "the baseline body is valid: {ok}");

    let explicit = |start: &str, end: &str| json!({"workflowId": "w1", "timeWindowType": "EXPLICIT", "timeWindowStart": start, "timeWindowEnd": end});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown field",
            with(valid_create(), &["bogus"], json!(1)),
            "Unrecognized field \"bogus\"",
        ),
        (
            "unknown workflow field",
            with(valid_create(), &["workflow", "extra"], json!(true)),
            "Unrecognized field \"workflow.extra\"",
        ),
        (
            "wrong type",
            with(valid_create(), &["ignoreDataGaps"], json!("true")),
            "Invalid type for field \"ignoreDataGaps\"",
        ),
        (
            "bad enum",
            with(valid_create(), &["timeWindowType"], json!("LAST_YEAR")),
            "\"timeWindowType\"",
        ),
        (
            "bad nested enum",
            with(
                valid_create(),
                &["workflow", "privacyFilteringBehavior"],
                json!("DROP"),
            ),
            "privacyFilteringBehavior",
        ),
        (
            "both query kinds",
            with(valid_create(), &["workflowId"], json!("w1")),
            "cannot be populated at the same time",
        ),
        (
            "no query",
            json!({"timeWindowType": "MOST_RECENT_DAY"}),
            "is required",
        ),
        (
            "empty sql",
            with(valid_create(), &["workflow", "sqlQuery"], json!(" ")),
            "workflow.sqlQuery",
        ),
        (
            "multi-line sql",
            with(
                valid_create(),
                &["workflow", "sqlQuery"],
                json!("SELECT\n1"),
            ),
            "single line",
        ),
        (
            "tab in sql",
            with(
                valid_create(),
                &["workflow", "sqlQuery"],
                json!("SELECT\t1"),
            ),
            "single line",
        ),
        (
            "explicit without bounds",
            json!({"workflowId": "w1", "timeWindowType": "EXPLICIT"}),
            "required with timeWindowType EXPLICIT",
        ),
        (
            "explicit with one bound",
            json!({"workflowId": "w1", "timeWindowType": "EXPLICIT", "timeWindowStart": "2026-11-26T00:00:00"}),
            "required with timeWindowType EXPLICIT",
        ),
        (
            "offset in bound",
            explicit("2026-11-26T00:00:00Z", "2026-11-27T00:00:00"),
            "yyyy-MM-dd'T'HH:mm:ss",
        ),
        (
            "date-only bound",
            explicit("2026-11-26", "2026-11-27T00:00:00"),
            "yyyy-MM-dd'T'HH:mm:ss",
        ),
        (
            "end before start",
            explicit("2026-11-27T00:00:00", "2026-11-26T00:00:00"),
            "must be after",
        ),
        (
            "non-string parameter",
            with(valid_create(), &["parameterValues"], json!({"x": 1})),
            "parameterValues.x",
        ),
        (
            "parameters not an object",
            with(valid_create(), &["parameterValues"], json!(["x"])),
            "\"parameterValues\"",
        ),
        (
            "timeout too short",
            with(
                valid_create(),
                &["workflowExecutionTimeoutSeconds"],
                json!(60),
            ),
            "between 900 and 86400",
        ),
        (
            "timeout as text",
            with(
                valid_create(),
                &["workflowExecutionTimeoutSeconds"],
                json!("900"),
            ),
            "Invalid type",
        ),
        (
            "bad advertiser type",
            with(
                valid_create(),
                &["advertisers"],
                json!([{"id": "a", "type": "TV"}]),
            ),
            "advertisers[0].type",
        ),
        (
            "advertiser without id",
            with(valid_create(), &["advertisers"], json!([{"type": "SAS"}])),
            "advertisers[0].id",
        ),
        (
            "bad output format",
            with(
                valid_create(),
                &["workflow", "outputFormat"],
                json!({"separatorCharacter": ";;"}),
            ),
            "one character",
        ),
        (
            "bad time zone",
            with(
                valid_create(),
                &["timeWindowTimeZone"],
                json!("Mars Standard"),
            ),
            "timeWindowTimeZone",
        ),
    ];
    for (name, body, needle) in cases {
        let (status, answer) = raw.send("POST", "", Some(body.to_string())).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_error(status, &answer, 400, needle);
    }
    let (status, answer) = raw.send("POST", "", Some("not json".into())).await;
    assert_error(status, &answer, 400, "Malformed request body");
    let (status, answer) = raw.send("POST", "", Some("[1]".into())).await;
    assert_error(status, &answer, 400, "JSON object");
    let (status, answer) = finish(
        raw.request("POST", "")
            .header("Content-Type", "text/plain")
            .body(valid_create().to_string()),
    )
    .await;
    assert_error(status, &answer, 415, "Unsupported Content-Type");
    // Only the baseline created a run.
    assert_eq!(h.runs_created(AMC), 1);
}

#[tokio::test]
async fn the_simulator_enforces_auth_and_headers_as_amc_does() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let url = format!(
        "{}/amc/reporting/{INSTANCE}/workflowExecutions?minCreationTime=2026-01-01T00:00:00",
        raw.base
    );
    let full = || {
        raw.http
            .get(&url)
            .header(
                "Amazon-Advertising-API-ClientId",
                runbridge_sim::auth::client_id(AMC),
            )
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1ABC")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
    };
    let (status, _) = finish(full().bearer_auth(&raw.token)).await;
    assert_eq!(status, 200, "the baseline request is valid");

    let (status, body) = finish(full()).await;
    assert_error(status, &body, 401, "Authorization");
    let (status, body) = finish(full().bearer_auth("not-a-token")).await;
    assert_error(status, &body, 401, "Invalid access token");
    for header in [
        "Amazon-Advertising-API-ClientId",
        "Amazon-Advertising-API-AdvertiserId",
        "Amazon-Advertising-API-MarketplaceId",
    ] {
        let mut builder = raw.http.get(&url).bearer_auth(&raw.token);
        for (name, value) in [
            (
                "Amazon-Advertising-API-ClientId",
                runbridge_sim::auth::client_id(AMC),
            ),
            ("Amazon-Advertising-API-AdvertiserId", "ENTITY1ABC".into()),
            (
                "Amazon-Advertising-API-MarketplaceId",
                "ATVPDKIKX0DER".into(),
            ),
        ] {
            if name != header {
                builder = builder.header(name, value);
            }
        }
        let (status, body) = finish(builder).await;
        assert_error(status, &body, 400, header);
    }
    let (status, body) = finish(
        raw.http
            .get(&url)
            .bearer_auth(&raw.token)
            .header("Amazon-Advertising-API-ClientId", "someone-else")
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1ABC")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER"),
    )
    .await;
    assert_error(status, &body, 401, "ClientId");
    let (status, body) = finish(full().bearer_auth(&raw.token).header("Accept", "text/html")).await;
    assert_error(status, &body, 406, "Cannot produce");

    h.sim.sim.tokens.expire_all(AMC, h.sim.sim.clock.now());
    let (status, body) = finish(full().bearer_auth(&raw.token)).await;
    assert_error(status, &body, 403, "expired");

    let (status, body) = finish(raw.http.post(format!("{}/auth/o2/token", raw.base)).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "stolen"),
        ("client_id", &runbridge_sim::auth::client_id(AMC)),
        ("client_secret", &runbridge_sim::auth::client_secret(AMC)),
    ]))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_simulator_rejects_bad_status_list_cancel_and_download_calls() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let (status, created) = raw.send("POST", "", Some(valid_create().to_string())).await;
    assert_eq!(status, 200);
    let id = created["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();

    let (status, body) = raw
        .send("GET", "/00000000-0000-0000-0000-000000000000", None)
        .await;
    assert_error(status, &body, 404, "not found");
    let (status, body) = finish(
        raw.http
            .get(format!(
                "{}/amc/reporting/otherinstance/workflowExecutions/{id}",
                raw.base
            ))
            .bearer_auth(&raw.token)
            .header(
                "Amazon-Advertising-API-ClientId",
                runbridge_sim::auth::client_id(AMC),
            )
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1ABC")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER"),
    )
    .await;
    assert_error(status, &body, 404, "not found");

    let (status, body) = raw.send("GET", &format!("/{id}/downloadUrls"), None).await;
    assert_error(
        status,
        &body,
        400,
        &format!("Execution with ID {id} is unavailable for download"),
    );

    for (query, needle) in [
        ("", "minCreationTime"),
        (
            "?minCreationTime=2026-01-01T00:00:00Z",
            "yyyy-MM-dd'T'HH:mm:ss",
        ),
        ("?minCreationTime=2026-01-01T00:00:00&limit=0", "limit"),
        ("?minCreationTime=2026-01-01T00:00:00&limit=101", "limit"),
        ("?minCreationTime=2026-01-01T00:00:00&limit=ten", "limit"),
        (
            "?minCreationTime=2026-01-01T00:00:00&nextToken=zz",
            "nextToken",
        ),
        (
            "?minCreationTime=2026-01-01T00:00:00&sortAscending=yes",
            "sortAscending",
        ),
    ] {
        let (status, body) = raw.send("GET", query, None).await;
        assert_error(status, &body, 400, needle);
    }

    let path = format!("/{id}");
    let put = |body: Value| raw.send("PUT", &path, Some(body.to_string()));
    let (status, body) = put(json!({"status": "RUNNING"})).await;
    assert_error(status, &body, 400, "only be updated to CANCELLED");
    let (status, body) = put(json!({"status": "STOPPED"})).await;
    assert_error(status, &body, 400, "\"status\"");
    let (status, body) = put(json!({"status": "CANCELLED", "reason": "x"})).await;
    assert_error(status, &body, 400, "Unrecognized field \"reason\"");
    let (status, _) = put(json!({"status": "CANCELLED"})).await;
    assert_eq!(status, 200);
    let (status, body) = put(json!({"status": "CANCELLED"})).await;
    assert_error(status, &body, 400, "its status is CANCELLED");
}

#[tokio::test]
async fn the_simulator_lists_in_pages_newest_first_without_cancelled_by_default() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let since = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let since = since
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = with(
            valid_create(),
            &["workflow", "sqlQuery"],
            json!(format!("SELECT {i}")),
        );
        let (_, created) = raw.send("POST", "", Some(body.to_string())).await;
        ids.push(
            created["workflowExecutionId"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        h.sim.sim.clock.advance(1.0);
    }
    let (status, _) = raw
        .send(
            "PUT",
            &format!("/{}", ids[0]),
            Some(json!({"status": "CANCELLED"}).to_string()),
        )
        .await;
    assert_eq!(status, 200);

    let mut listed = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut query = format!("?minCreationTime={since}&limit=2");
        if let Some(t) = &token {
            query.push_str(&format!("&nextToken={t}"));
        }
        let (status, page) = raw.send("GET", &query, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for e in page["executions"].as_array().expect("executions") {
            assert!(
                e.get("sqlQuery").is_none(),
                "sqlQuery only with includeWorkflow"
            );
            listed.push(e["workflowExecutionId"].as_str().expect("id").to_owned());
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids[1..].iter().rev().cloned().collect();
    assert_eq!(
        listed, newest_first,
        "newest first, cancelled left out, each once"
    );
    assert_eq!(pages, 2);

    let (_, all) = raw.send("GET", &format!("?minCreationTime={since}&includeCancelled=true&sortAscending=true&includeWorkflow=true"), None).await;
    let executions = all["executions"].as_array().expect("executions");
    assert_eq!(executions.len(), 5);
    assert_eq!(executions[0]["workflowExecutionId"], json!(ids[0]));
    assert_eq!(executions[0]["status"], "CANCELLED");
    assert_eq!(executions[0]["sqlQuery"], "SELECT 0");
}

/// Issue 15: two identical executions inside the window cannot be told apart (AMC keeps no client
/// token): reconciliation refuses to guess and names both; outside the window, a run made before
/// the claim is not a candidate.
#[tokio::test]
async fn two_identical_executions_in_the_window_are_ambiguous_not_the_oldest() {
    let h = Harness::start(1.0).await;
    let amc = h.vendor(AMC);
    let req = adhoc("SELECT advertiser FROM dsp_impressions");
    let earlier = amc.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(60.0);
    let claimed_at = h.sim.sim.clock.now();
    let first = amc.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(1.0);
    let window = runbridge_vendors::ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let found = amc
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap()
        .expect("the one run after the claim");
    assert_eq!(
        found.vendor_run_id, first,
        "not {earlier}, made before the claim"
    );
    let second = amc.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(1.0);
    let window = runbridge_vendors::ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let err = amc
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap_err();
    match &err {
        VendorError::Ambiguous { candidates, .. } => {
            assert_eq!(candidates, &vec![first.clone(), second.clone()])
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
}

/// A download that sends its headers and then drips one byte at a time (never quiet long enough
/// for the idle timer), or stalls after its headers, ends within its stated bound with a reason
/// that says it timed out and which timeout fired.
#[tokio::test]
async fn a_dripping_or_stalled_download_times_out_naming_the_timeout() {
    let retry = RetryConfig::fast();
    let bound = retry.download_stall_bound();
    for (fault, names) in [
        (
            // A byte every 300 ms: the 2 s idle timer is reset long before it fires.
            Fault::DripBody {
                keep_bytes: 64,
                every_millis: 300,
            },
            "minimum-rate timeout",
        ),
        (
            Fault::StallBody {
                keep_bytes: 64,
                millis: 600_000,
            },
            "idle timeout",
        ),
        (
            Fault::StallBody {
                keep_bytes: 0,
                millis: 600_000,
            },
            "idle timeout",
        ),
    ] {
        let h = Harness::start(1.0).await;
        h.sim.sim.control.push_script(
            AMC,
            RunScript {
                files: 1,
                rows: 2_000,
                ..RunScript::default()
            },
        );
        let amc = h.vendor(AMC);
        let req = adhoc("SELECT 1");
        let submitted = amc.submit(&req, &key(&req)).await.expect("submit");
        poll_until_final(&h, amc.as_ref(), &req, &submitted.vendor_run_id).await;
        let files = ready_files(amc.as_ref(), &req, &submitted.vendor_run_id).await;
        h.sim.sim.faults.inject(FaultRule::new(
            AMC,
            Some("GET"),
            "/__sim/files/",
            fault.clone(),
            100,
        ));
        let started = Instant::now();
        let opened = amc.open_result(&files[0]).await.expect("headers arrive");
        let err = opened.bytes().await.expect_err("the download must fail");
        let took = started.elapsed();
        let text = err.to_string();
        assert!(text.contains("timed out"), "{fault:?}: {text}");
        assert!(text.contains(names), "{fault:?}: {text}");
        assert!(
            err.is_retryable(),
            "{fault:?}: a new download may succeed: {err:?}"
        );
        assert!(
            took < bound + Duration::from_secs(2),
            "{fault:?}: took {took:?}, bound {bound:?}"
        );
        h.sim.stop().await;
    }
}
