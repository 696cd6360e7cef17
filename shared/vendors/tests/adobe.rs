//! Adobe Flow Service client against its simulator.

mod util;

use std::time::Instant;

use reqwest::StatusCode;
use runbridge_core::{Attribution, ResolvedRequest, RunState, VendorKind};
use runbridge_sim::adobe::{BASE_PATH, FILE_FLOW_ID, ORG_ID, TABLE_FLOW_ID, TOKEN_PATH};
use runbridge_sim::auth as common;
use runbridge_sim::{Fault, FaultRule, Outcome, RunScript};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{
    CancelOutcome, ResultFile, ResultsAvailability, RunRef, Settings, VendorError,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use util::{key, poll_until_final, request, Harness};

const ADOBE: VendorKind = VendorKind::Adobe;

/// A file-flow request for the day starting `2026-11-25 + day_offset`.
fn file_request(day_offset: i64) -> ResolvedRequest {
    let start = time::macros::datetime!(2026-11-25 00:00 UTC) + Duration::days(day_offset);
    let end = start + Duration::days(1);
    request(json!({
        "vendor": "adobe",
        "flow_id": FILE_FLOW_ID,
        "window_start": start.format(&Rfc3339).unwrap(),
        "window_end": end.format(&Rfc3339).unwrap(),
    }))
}

fn with(base: ResolvedRequest, extra: Value) -> ResolvedRequest {
    let mut value = serde_json::to_value(&base).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    request(value)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

async fn status_of(h: &Harness, req: &ResolvedRequest, id: &str) -> runbridge_core::RunStatus {
    h.vendor(ADOBE)
        .status(RunRef {
            request: req,
            vendor_run_id: id,
        })
        .await
        .expect("status")
}

#[tokio::test]
async fn happy_path_sends_the_documented_body_and_succeeds() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let vendor = h.vendor(ADOBE);
    // The tutorial's own values: startTime 1663735590, windowStartTime 1651584991.
    let req = request(json!({
        "vendor": "adobe",
        "flow_id": TABLE_FLOW_ID,
        "start_time": "2022-09-21T04:46:30Z",
        "window_start": "2022-05-03T13:36:31Z",
        "window_end": "2022-05-04T00:00:00Z",
        "delta_column": "DOB",
        "first_run": true,
    }));
    let submitted = vendor.submit(&req, &key(&req)).await.expect("submit");

    let exchanges = h.sim.sim.recorder.exchanges();
    let create = exchanges
        .iter()
        .find(|e| e.method == "POST" && e.path.ends_with("/runs"))
        .expect("create recorded");
    assert_eq!(create.path, format!("{BASE_PATH}/runs"));
    assert_eq!(
        create.request,
        Some(json!({
            "flowId": TABLE_FLOW_ID,
            "params": {
                "startTime": "1663735590",
                "windowStartTime": "1651584991",
                "windowEndTime": "1651622400",
                "deltaColumn": {"name": "DOB"}
            }
        }))
    );
    assert_eq!(create.status, 201);
    let response = create.response.as_ref().expect("JSON response");
    assert_eq!(response["items"][0]["id"], json!(submitted.vendor_run_id));
    assert!(response["items"][0]["etag"]
        .as_str()
        .is_some_and(|e| e.starts_with('"')));

    let (status, polls) =
        poll_until_final(&h, vendor.as_ref(), &req, &submitted.vendor_run_id).await;
    assert_eq!(status.state, RunState::Succeeded);
    assert_eq!(status.vendor_state, "success");
    assert_eq!((status.reason, status.attribution), (None, None));
    assert!(polls > 1, "the run must pass through non-final states");

    let run = RunRef {
        request: &req,
        vendor_run_id: &submitted.vendor_run_id,
    };
    assert!(matches!(
        vendor.results(run).await.unwrap(),
        ResultsAvailability::NoFiles
    ));
    assert_eq!(
        vendor.cancel(run).await.unwrap(),
        CancelOutcome::Unsupported
    );
    assert_eq!(h.runs_created(ADOBE), 1);
    assert_eq!(h.sim.sim.control.requests("adobe.submit"), 1);
    // The status read the overall state where Adobe puts it.
    let last = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .rev()
        .find(|e| e.method == "GET")
        .unwrap();
    assert_eq!(
        last.response.unwrap()["items"][0]["metrics"]["statusSummary"]["status"],
        "success"
    );
}

#[tokio::test]
async fn start_time_defaults_to_now_and_delta_column_is_only_sent_when_given() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let req = file_request(0);
    let before = OffsetDateTime::now_utc().unix_timestamp();
    h.vendor(ADOBE)
        .submit(&req, &key(&req))
        .await
        .expect("submit");
    let after = OffsetDateTime::now_utc().unix_timestamp();
    let exchanges = h.sim.sim.recorder.exchanges();
    let create = exchanges
        .iter()
        .find(|e| e.path == format!("{BASE_PATH}/runs"))
        .expect("create recorded");
    let body = create.request.clone().expect("JSON body");
    let params = body["params"].as_object().unwrap();
    let start: i64 = params["startTime"].as_str().unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&start),
        "startTime {start} is not now"
    );
    assert_eq!(params["windowStartTime"], "1795564800");
    assert_eq!(params["windowEndTime"], "1795651200");
    assert!(!params.contains_key("deltaColumn"));
}

#[tokio::test]
async fn status_follows_adobe_states_from_scheduled_to_success() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    // Flow Service takes whole unix seconds, and so does validation.
    let start = (h.sim.sim.clock.now() + Duration::seconds(120))
        .replace_nanosecond(0)
        .unwrap();
    let req = with(file_request(0), json!({"start_time": rfc3339(start)}));
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;

    let s = status_of(&h, &req, &id).await;
    assert_eq!(
        (s.state, s.vendor_state.as_str()),
        (RunState::Pending, "scheduled")
    );
    h.sim.sim.clock.advance(122.0);
    let s = status_of(&h, &req, &id).await;
    assert_eq!(
        (s.state, s.vendor_state.as_str()),
        (RunState::Pending, "queued")
    );
    h.sim.sim.clock.advance(10.0);
    let s = status_of(&h, &req, &id).await;
    assert_eq!(
        (s.state, s.vendor_state.as_str()),
        (RunState::Running, "inProgress")
    );
    h.sim.sim.clock.advance(60.0);
    let s = status_of(&h, &req, &id).await;
    assert_eq!(
        (s.state, s.vendor_state.as_str()),
        (RunState::Succeeded, "success")
    );
}

#[tokio::test]
async fn failed_runs_carry_adobe_errors_and_attribution() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let cases = [
        (
            Outcome::Fail {
                message: "Invalid credentials for the source".into(),
                customer: true,
            },
            "CONNECTOR-1001-400",
            Attribution::Customer,
        ),
        (
            Outcome::Fail {
                message: "Error copying data".into(),
                customer: false,
            },
            "CONNECTOR-1001-500",
            Attribution::Platform,
        ),
        (
            Outcome::Reject {
                message: "Not entitled to this operation".into(),
            },
            "FLOW-1100-400",
            Attribution::Customer,
        ),
    ];
    for (i, (outcome, code, attribution)) in cases.into_iter().enumerate() {
        let message = match &outcome {
            Outcome::Fail { message, .. } | Outcome::Reject { message } => message.clone(),
            _ => unreachable!(),
        };
        h.sim.sim.control.push_script(
            ADOBE,
            RunScript {
                outcome,
                ..RunScript::default()
            },
        );
        let req = file_request(i as i64);
        let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
        let (status, _) = poll_until_final(&h, vendor.as_ref(), &req, &id).await;
        assert_eq!(
            (status.state, status.vendor_state.as_str()),
            (RunState::Failed, "failed")
        );
        assert_eq!(
            status.reason.as_deref(),
            Some(format!("{code}: {message}").as_str())
        );
        assert_eq!(status.attribution, Some(attribution), "{code}");
    }
}

#[tokio::test]
async fn a_run_that_never_ends_stays_in_progress_and_cannot_be_cancelled() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    h.sim.sim.control.push_script(
        ADOBE,
        RunScript {
            outcome: Outcome::NeverFinish,
            ..RunScript::default()
        },
    );
    let req = file_request(0);
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(100_000.0);
    let run = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    assert_eq!(
        vendor.cancel(run).await.unwrap(),
        CancelOutcome::Unsupported
    );
    let s = status_of(&h, &req, &id).await;
    assert_eq!(
        (s.state, s.vendor_state.as_str()),
        (RunState::Running, "inProgress")
    );
    // Cancel made no call: Flow Service has no route for it.
    assert_eq!(
        h.sim
            .sim
            .control
            .all_requests()
            .keys()
            .filter(|k| k.starts_with("adobe."))
            .count(),
        3
    );
}

#[tokio::test]
async fn delta_column_is_refused_after_the_first_run_and_on_file_flows() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let table = |day: i64| {
        with(
            file_request(day),
            json!({"flow_id": TABLE_FLOW_ID, "delta_column": "updated_at", "first_run": true}),
        )
    };
    let first = table(0);
    vendor
        .submit(&first, &key(&first))
        .await
        .expect("first run takes a delta column");

    let second = table(1);
    match vendor.submit(&second, &key(&second)).await {
        Err(VendorError::Rejected {
            status: 400,
            field,
            message,
            ..
        }) => {
            assert_eq!(field.as_deref(), Some("params.deltaColumn"));
            assert!(message.starts_with("FLOW-1100-400: "), "{message}");
        }
        other => panic!("second run with deltaColumn must be rejected, got {other:?}"),
    }
    let file = with(
        file_request(0),
        json!({"delta_column": "updated_at", "first_run": true}),
    );
    assert!(matches!(
        vendor.submit(&file, &key(&file)).await,
        Err(VendorError::Rejected { status: 400, .. })
    ));
    // A later run of the table flow without a delta column is fine.
    let plain = with(file_request(2), json!({"flow_id": TABLE_FLOW_ID}));
    vendor
        .submit(&plain, &key(&plain))
        .await
        .expect("later run without deltaColumn");
    assert_eq!(h.runs_created(ADOBE), 2);
}

#[tokio::test]
async fn the_request_sandbox_overrides_the_default() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    // The catalog's flows live in `prod`; in `dev` the same flow id does not exist.
    let req = with(file_request(0), json!({"sandbox_name": "dev"}));
    match vendor.submit(&req, &key(&req)).await {
        Err(VendorError::Rejected {
            status: 400,
            message,
            ..
        }) => assert!(
            message.starts_with("FLOW-1430-400: Flow not found"),
            "{message}"
        ),
        other => panic!("expected flow not found in dev, got {other:?}"),
    }
    let prod = file_request(0);
    let id = vendor
        .submit(&prod, &key(&prod))
        .await
        .unwrap()
        .vendor_run_id;
    // Reading a prod run through the dev sandbox does not find it.
    let err = vendor
        .status(RunRef {
            request: &req,
            vendor_run_id: &id,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, VendorError::NotFound { .. }), "{err:?}");
    assert_eq!(h.runs_created(ADOBE), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_mid_run() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let req = file_request(0);
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    assert_eq!(h.sim.sim.tokens.issued_count(ADOBE), 1);
    h.sim.sim.tokens.expire_all(ADOBE, h.sim.sim.clock.now());
    let (status, _) = poll_until_final(&h, vendor.as_ref(), &req, &id).await;
    assert_eq!(status.state, RunState::Succeeded);
    assert_eq!(h.sim.sim.tokens.issued_count(ADOBE), 2);
    assert_eq!(h.sim.sim.control.requests("adobe.token"), 2);
}

#[tokio::test]
async fn status_calls_retry_throttling_and_server_errors() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let req = file_request(0);
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;

    let faults = &h.sim.sim.faults;
    faults.inject(FaultRule::new(
        ADOBE,
        Some("GET"),
        "/runs/",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1,
    ));
    let started = Instant::now();
    let s = status_of(&h, &req, &id).await;
    assert_eq!(s.state, RunState::Pending);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After must be waited out"
    );

    faults.inject(FaultRule::new(
        ADOBE,
        Some("GET"),
        "/runs/",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    ));
    faults.inject(FaultRule::new(
        ADOBE,
        Some("GET"),
        "/runs/",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    let s = status_of(&h, &req, &id).await;
    assert_eq!(s.vendor_state, "queued");
    // Every fault was used up before the handler answered, once per status call.
    assert!(faults
        .take(ADOBE, "GET", &format!("{BASE_PATH}/runs/{id}"))
        .is_none());
    assert_eq!(h.sim.sim.control.requests("adobe.status"), 2);
}

#[tokio::test]
async fn a_lost_submit_answer_is_outcome_unknown_and_reconciles_to_the_one_run() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let req = file_request(0);
    let since = OffsetDateTime::now_utc();
    h.sim.sim.faults.inject(FaultRule::new(
        ADOBE,
        Some("POST"),
        "/flowservice/runs",
        Fault::DropResponse,
        1,
    ));
    let err = vendor.submit(&req, &key(&req)).await.unwrap_err();
    assert!(matches!(err, VendorError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(
        h.runs_created(ADOBE),
        1,
        "the dropped submit was not retried"
    );

    let found = vendor
        .find_submitted(&req, &key(&req), since.into())
        .await
        .unwrap()
        .expect("the run is found");
    assert_eq!(found.vendor_state.as_deref(), Some("queued"));
    let s = status_of(&h, &req, &found.vendor_run_id).await;
    assert_eq!(s.vendor_state, "queued");
    // Another window, or a later `since`, finds nothing.
    assert!(vendor
        .find_submitted(&file_request(1), &key(&req), since.into())
        .await
        .unwrap()
        .is_none());
    let later = since + Duration::hours(1);
    assert!(vendor
        .find_submitted(&req, &key(&req), later.into())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_submit_answered_500_is_outcome_unknown_and_never_repeated() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let req = file_request(0);
    h.sim.sim.faults.inject(FaultRule::new(
        ADOBE,
        Some("POST"),
        "/flowservice/runs",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    ));
    let err = vendor.submit(&req, &key(&req)).await.unwrap_err();
    assert!(matches!(err, VendorError::OutcomeUnknown { .. }), "{err:?}");
    // The second hit of the rule is still there: the client sent the submit once.
    assert!(matches!(
        h.sim
            .sim
            .faults
            .take(ADOBE, "POST", &format!("{BASE_PATH}/runs")),
        Some(Fault::Status { status: 500, .. })
    ));
    assert_eq!(h.runs_created(ADOBE), 0);

    // 503 means Adobe did not act: the submit is repeated and creates exactly one run.
    h.sim.sim.faults.inject(FaultRule::new(
        ADOBE,
        Some("POST"),
        "/flowservice/runs",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        1,
    ));
    vendor
        .submit(&req, &key(&req))
        .await
        .expect("retried after 503");
    assert_eq!(h.runs_created(ADOBE), 1);
}

#[tokio::test]
async fn find_submitted_pages_through_newer_runs() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let since = OffsetDateTime::now_utc();
    let target = file_request(0);
    let target_id = vendor
        .submit(&target, &key(&target))
        .await
        .unwrap()
        .vendor_run_id;
    for day in 1..=60 {
        h.sim.sim.clock.advance(1.0);
        let r = file_request(day);
        vendor.submit(&r, &key(&r)).await.unwrap();
    }
    let lists_before = h.sim.sim.control.requests("adobe.list");
    let found = vendor
        .find_submitted(&target, &key(&target), since.into())
        .await
        .unwrap()
        .expect("found on page two");
    assert_eq!(found.vendor_run_id, target_id);
    assert_eq!(
        h.sim.sim.control.requests("adobe.list") - lists_before,
        2,
        "newest first, 50 per page"
    );
}

/// An access token from the simulated IMS endpoint.
async fn raw_token(h: &Harness) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}{TOKEN_PATH}", h.sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", common::client_id(ADOBE).as_str()),
            ("client_secret", common::client_secret(ADOBE).as_str()),
            ("scope", "openid,AdobeID,read_organizations"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn platform_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-api-key", common::client_id(ADOBE)),
        ("x-gw-ims-org-id", ORG_ID.to_owned()),
        ("x-sandbox-name", "prod".to_owned()),
        ("content-type", "application/json".to_owned()),
    ]
}

fn valid_body() -> Value {
    json!({"flowId": FILE_FLOW_ID, "params": {"startTime": "1663735590", "windowStartTime": "1651584991", "windowEndTime": "1651622400"}})
}

/// One request the simulator must refuse.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    status: u16,
    /// `error_code` of a gateway error, or the `FLOW-…` tail of a Flow Service error's `type`.
    code: &'static str,
}

fn case(name: &'static str, token: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: format!("{BASE_PATH}/runs"),
        headers: platform_headers(token),
        body: Some(valid_body().to_string()),
        status,
        code,
    }
}

impl Case {
    fn without(mut self, header: &str) -> Self {
        self.headers.retain(|(n, _)| *n != header);
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }
    fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }
    fn get(mut self, path_and_query: &str) -> Self {
        self.method = "GET";
        self.path = format!("{BASE_PATH}{path_and_query}");
        self.body = None;
        self
    }
}

fn with_params(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut body = valid_body();
    edit(body["params"].as_object_mut().unwrap());
    body
}

#[tokio::test]
async fn the_simulator_rejects_what_adobe_rejects() {
    let h = Harness::start(1.0).await;
    let token = raw_token(&h).await;
    let t = token.as_str();
    let cases = vec![
        case("no Authorization", t, 403, "403010").without("authorization"),
        case("unknown token", t, 401, "401013").header("authorization", "Bearer not-a-token"),
        case("no x-api-key", t, 403, "403000").without("x-api-key"),
        case("foreign x-api-key", t, 403, "403003").header("x-api-key", "someone-else"),
        case("no org header", t, 400, "400003").without("x-gw-ims-org-id"),
        case("foreign org", t, 403, "403025").header("x-gw-ims-org-id", "0000@AdobeOrg"),
        case("no sandbox header", t, 400, "FLOW-2105-400").without("x-sandbox-name"),
        case("unknown sandbox", t, 404, "FLOW-2100-404").header("x-sandbox-name", "nope"),
        case("no JSON content type", t, 400, "BadRequestError").header("content-type", "text/plain"),
        case("empty body", t, 400, "FLOW-1405-400").raw_body(""),
        case("not JSON", t, 400, "FLOW-1100-400").raw_body("{flowId:"),
        case("unknown top-level field", t, 400, "FLOW-1100-400").body(json!({"flowId": FILE_FLOW_ID, "params": valid_body()["params"], "name": "x"})),
        case("missing flowId", t, 400, "FLOW-1446-400").body(json!({"params": valid_body()["params"]})),
        case("empty flowId", t, 400, "FLOW-1446-400").body(json!({"flowId": "", "params": valid_body()["params"]})),
        case("flowId not a string", t, 400, "FLOW-1100-400").body(json!({"flowId": 7, "params": valid_body()["params"]})),
        case("unknown flow", t, 400, "FLOW-1430-400").body(json!({"flowId": "00000000-0000-4000-8000-000000000000", "params": valid_body()["params"]})),
        case("missing params", t, 400, "FLOW-1100-400").body(json!({"flowId": FILE_FLOW_ID})),
        case("params not an object", t, 400, "FLOW-1100-400").body(json!({"flowId": FILE_FLOW_ID, "params": "x"})),
        case("unknown param", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("endTime".into(), json!("1"));
        })),
        case("missing startTime", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.remove("startTime");
        })),
        case("non-numeric time", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("windowStartTime".into(), json!("2022-05-03T13:36:31Z"));
        })),
        case("boolean time", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("windowEndTime".into(), json!(true));
        })),
        case("negative time", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("startTime".into(), json!(-5));
        })),
        case("window end before start", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("windowEndTime".into(), json!("1651584990"));
        })),
        case("deltaColumn on a file flow", t, 400, "FLOW-1100-400").body(with_params(|p| {
            p.insert("deltaColumn".into(), json!({"name": "DOB"}));
        })),
        case("deltaColumn without a name", t, 400, "FLOW-1100-400").body(json!({
            "flowId": TABLE_FLOW_ID,
            "params": {"startTime": "1", "windowStartTime": "1", "windowEndTime": "2", "deltaColumn": {"column": "DOB"}}
        })),
        case("unknown run", t, 404, "FLOW-1101-404").get("/runs/00000000-0000-4000-8000-000000000000"),
        case("run read without a token", t, 403, "403010").get("/runs/x").without("authorization"),
        case("unknown list parameter", t, 400, "FLOW-1451-400").get(&format!("/runs?flow={FILE_FLOW_ID}")),
        case("limit with count", t, 400, "FLOW-1401-400").get("/runs?limit=2&count=true"),
        case("limit out of range", t, 400, "FLOW-1452-400").get("/runs?limit=0"),
        case("unknown filter field", t, 400, "FLOW-1449-400").get("/runs?property=state%3D%3Denabled"),
        case("range operator on flowId", t, 400, "FLOW-1448-400").get("/runs?property=flowId%3E%3Dx"),
        case("filter without operator", t, 400, "FLOW-1453-400").get("/runs?property=flowId"),
        case("bad orderby", t, 400, "FLOW-1433-400").get("/runs?orderby=name"),
        case("bad continuation token", t, 400, "FLOW-1453-400").get("/runs?continuationToken=abc"),
    ];
    let client = reqwest::Client::new();
    for c in cases {
        let mut builder = client.request(
            c.method.parse().unwrap(),
            format!("{}{}", h.sim.base_url(), c.path),
        );
        for (name, value) in &c.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = c.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.unwrap();
        assert_eq!(response.status().as_u16(), c.status, "{}", c.name);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("json"),
            "{}",
            c.name
        );
        let body: Value = response.json().await.unwrap();
        let code = body["error_code"]
            .as_str()
            .or_else(|| {
                body["type"]
                    .as_str()
                    .filter(|t| t.contains("FLOW-"))
                    .and_then(|t| t.rsplit('/').next())
            })
            .or_else(|| body["title"].as_str())
            .unwrap_or_default();
        assert_eq!(code, c.code, "{}: {body}", c.name);
        if body
            .get("type")
            .is_some_and(|t| t.as_str().unwrap().contains("FLOW-"))
        {
            assert_eq!(body["status"], c.status, "{}", c.name);
            assert!(body["report"]["detailed-message"].is_string(), "{}", c.name);
        } else if body.get("error_code").is_some() {
            assert!(body["message"].is_string(), "{}", c.name);
        }
    }
    assert_eq!(
        h.runs_created(ADOBE),
        0,
        "no rejected request created a run"
    );

    // The valid body passes, as integers too (the OpenAPI types the times as integers).
    for body in [
        valid_body(),
        json!({"flowId": FILE_FLOW_ID, "params": {"startTime": 1663735590, "windowStartTime": 1651584991, "windowEndTime": 1651622400}}),
    ] {
        let mut builder = client.post(format!("{}{BASE_PATH}/runs", h.sim.base_url()));
        for (name, value) in platform_headers(t) {
            builder = builder.header(name, value);
        }
        let response = builder.body(body.to_string()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // An expired token is "not valid" at the gateway.
    h.sim.sim.tokens.expire_all(ADOBE, h.sim.sim.clock.now());
    let mut builder = client.get(format!("{}{BASE_PATH}/runs", h.sim.base_url()));
    for (name, value) in platform_headers(t) {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error_code"],
        "401013"
    );
}

#[tokio::test]
async fn the_token_endpoint_needs_the_right_client_and_a_scope() {
    let h = Harness::start(1.0).await;
    let url = format!("{}{TOKEN_PATH}", h.sim.base_url());
    let client = reqwest::Client::new();
    let id = common::client_id(ADOBE);
    let secret = common::client_secret(ADOBE);
    // (form fields, expected status, expected OAuth error code)
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 3] = [
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            400,
            "invalid_scope",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
                ("scope", "openid"),
            ],
            401,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "openid"),
            ],
            400,
            "unsupported_grant_type",
        ),
    ];
    for (form, status, error) in cases {
        let response = client.post(&url).form(form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{error}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], error);
    }
    assert_eq!(h.sim.sim.tokens.issued_count(ADOBE), 0);
}

#[tokio::test]
async fn listing_pages_with_continuation_tokens() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let mut created = Vec::new();
    for day in 0..5 {
        let r = file_request(day);
        created.push(vendor.submit(&r, &key(&r)).await.unwrap().vendor_run_id);
        h.sim.sim.clock.advance(1.0);
    }
    let table = with(file_request(0), json!({"flow_id": TABLE_FLOW_ID}));
    vendor.submit(&table, &key(&table)).await.unwrap();

    let token = raw_token(&h).await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let mut builder = client.get(format!("{}{BASE_PATH}{path}", h.sim.base_url()));
        for (name, value) in platform_headers(&token) {
            builder = builder.header(name, value);
        }
        async move { builder.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut seen = Vec::new();
    let mut path = format!("/runs?property=flowId%3D%3D{FILE_FLOW_ID}&limit=2");
    let mut pages = 0;
    loop {
        let page = get(path.clone()).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["_links"]["next"]["href"].as_str() {
            Some(href) => path = href.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, created,
        "oldest first by default, only the file flow's runs"
    );

    let newest_first = get(format!(
        "/runs?property=flowId%3D%3D{FILE_FLOW_ID}&orderby=-createdAt&count=true"
    ))
    .await;
    assert_eq!(newest_first["count"], 5);
    assert_eq!(
        newest_first["items"][0]["id"].as_str(),
        created.last().map(String::as_str)
    );
    let all = get("/runs?count=true".into()).await;
    assert_eq!(all["count"], 6);
}

#[tokio::test]
async fn missing_credentials_are_configuration_errors() {
    let h = Harness::start(1.0).await;
    for missing in ["client_id", "client_secret", "org_id"] {
        let mut settings = Settings::new();
        for (k, v) in h.sim.client_settings() {
            if k != format!("adobe.{missing}") {
                settings.set(k, v);
            }
        }
        match (runbridge_vendors::adobe::ENTRY.build)(
            &settings,
            &RetryConfig::fast(),
            &runbridge_vendors::rate::InProcessBudget::process(),
        ) {
            Err(VendorError::Config { setting, .. }) => {
                assert_eq!(setting, format!("adobe.{missing}"))
            }
            Err(other) => panic!("{missing}: unexpected error {other:?}"),
            Ok(_) => panic!("{missing}: built without it"),
        }
    }
}

#[tokio::test]
async fn open_result_applies_the_download_policy() {
    let h = Harness::start(1.0).await;
    let file = ResultFile {
        name: "x.csv".into(),
        url: "https://files.example.com/x.csv".to_owned().into(),
        size_hint: None,
        post_json: None,
    };
    let err = h.vendor(ADOBE).open_result(&file).await.unwrap_err();
    assert!(
        matches!(err, VendorError::DownloadRefused { .. }),
        "{err:?}"
    );
}

/// Issue 15: two runs of the same window by this client after the claim are ambiguous.
#[tokio::test]
async fn two_runs_of_the_same_window_after_the_claim_are_ambiguous() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(ADOBE);
    let req = file_request(0);
    let claimed_at = h.sim.sim.clock.now();
    let a = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(1.0);
    let b = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(1.0);
    let window = runbridge_vendors::ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let err = vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap_err();
    match &err {
        VendorError::Ambiguous { candidates, .. } => {
            assert!(
                candidates.contains(&a) && candidates.contains(&b),
                "{candidates:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 15: a 403 (here: an org the API key does not belong to) is a permission error for the
/// customer. No token refresh, and the create is sent exactly once.
#[tokio::test]
async fn a_403_is_a_permission_error_never_refreshed_nor_resent() {
    let h = Harness::start(1.0).await;
    let mut settings = Settings::new();
    for (k, v) in h.sim.client_settings() {
        settings.set(
            k.clone(),
            if k == "adobe.org_id" {
                "0000@AdobeOrg".into()
            } else {
                v
            },
        );
    }
    let vendor = (runbridge_vendors::adobe::ENTRY.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    )
    .unwrap();
    h.sim.sim.recorder.enable();
    let req = file_request(0);
    let err = vendor.submit(&req, &key(&req)).await.unwrap_err();
    assert!(
        matches!(err, VendorError::Forbidden { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(err.attribution(), Attribution::Customer);
    assert!(!err.is_retryable());
    let posts = h
        .sim
        .sim
        .recorder
        .exchanges()
        .iter()
        .filter(|e| e.method == "POST" && e.path.ends_with("/runs"))
        .count();
    assert_eq!(posts, 1, "the create is never re-sent");
    assert_eq!(h.sim.sim.control.requests("adobe.token"), 1, "no refresh");
    // An expired token (401) is still refreshed once.
    let ok = h.vendor(ADOBE);
    ok.submit(&req, &key(&req)).await.unwrap();
    h.sim.sim.tokens.expire_all(ADOBE, h.sim.sim.clock.now());
    ok.submit(&req, &key(&req))
        .await
        .expect("refreshed after 401");
}
