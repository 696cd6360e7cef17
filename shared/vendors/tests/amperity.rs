//! Amperity client against the Amperity simulator: the run lifecycle, failures, cancel, token
//! expiry, retries, unknown submit outcomes, reconciliation, paging, filters, the rate limit, and
//! the simulator's request validation.

mod util;

use std::collections::HashSet;
use std::time::Instant;

use runbridge_core::{Attribution, ResolvedRequest, RunState, VendorKind};
use runbridge_sim::auth as common;
use runbridge_sim::{Fault, FaultRule, ForeignRun, ForeignStarter, Outcome, RunScript};
use runbridge_vendors::amperity::map_state;
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{
    CancelOutcome, ReconcileWindow, ResultsAvailability, RunRef, Settings, VendorError,
};
use serde_json::{json, Value};
use util::{key, poll_until_final, request, Harness};

const AMPERITY: VendorKind = VendorKind::Amperity;
const TENANT: &str = "acme";

fn files_request() -> ResolvedRequest {
    request(json!({
        "vendor": "amperity",
        "tenant": TENANT,
        "config_id": "cg-files01",
        "range_from": "2026-11-26T00:00:00Z",
        "range_to": "2026-11-27T00:00:00Z",
        "run_mode": "full",
    }))
}

fn config_request(config_id: &str) -> ResolvedRequest {
    request(json!({"vendor": "amperity", "tenant": TENANT, "config_id": config_id}))
}

fn script(outcome: Outcome) -> RunScript {
    RunScript {
        outcome,
        queue_seconds: 10.0,
        run_seconds: 100.0,
        ..RunScript::default()
    }
}

/// Requests built by hand, to probe what the simulator accepts.
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
            .post(format!("{base}/api/v0/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", common::client_id(AMPERITY)),
                ("client_secret", common::client_secret(AMPERITY)),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["access_token"]
            .as_str()
            .expect("token issued")
            .to_owned();
        Self { http, base, token }
    }

    /// A request with every required header; the clock moves a second first so that probes
    /// never hit the rate limit.
    fn call(&self, h: &Harness, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        h.sim.sim.clock.advance(1.0);
        self.http
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(&self.token)
            .header("amperity-tenant", TENANT)
            .header("api-version", "2024-04-01")
    }

    fn get(&self, h: &Harness, path: &str) -> reqwest::RequestBuilder {
        self.call(h, reqwest::Method::GET, path)
    }

    fn post(&self, h: &Harness, path: &str) -> reqwest::RequestBuilder {
        self.call(h, reqwest::Method::POST, path)
    }

    async fn start(&self, h: &Harness, body: Value) -> Value {
        let response = self
            .post(h, "/workflow/runs")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "start must answer 201");
        response.json().await.unwrap()
    }

    async fn list(&self, h: &Harness, query: &[(&str, &str)]) -> Value {
        let response = self
            .get(h, "/workflow/runs")
            .query(query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "list {query:?}");
        response.json().await.unwrap()
    }
}

/// Asserts the vendor's error shape: exactly `{"status": <code>, "message": "..."}`.
async fn expect_error(response: reqwest::Response, status: u16, what: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON: {e}"));
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: error body is not an object"));
    assert_eq!(
        object.len(),
        2,
        "{what}: ErrorResponse has only status and message: {body}"
    );
    assert_eq!(body["status"], status, "{what}");
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: message missing"))
        .to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn happy_path_sends_the_documented_body_and_reaches_succeeded() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let vendor = h.vendor(AMPERITY);
    let req = files_request();
    let submitted = vendor.submit(&req, &key(&req)).await.expect("submit");
    assert!(submitted.vendor_run_id.starts_with("wf-"), "{submitted:?}");
    assert_eq!(submitted.vendor_state.as_deref(), Some("scheduled"));

    let exchanges = h.sim.sim.recorder.exchanges();
    let start = exchanges
        .iter()
        .find(|e| e.method == "POST" && e.path == "/api/workflow/runs")
        .expect("start recorded");
    assert_eq!(
        start.request,
        Some(json!({
            "config_id": "cg-files01",
            "range_from": "2026-11-26T00:00:00Z",
            "range_to": "2026-11-27T00:00:00Z",
            "run_mode": "full",
        }))
    );
    assert_eq!(start.status, 201);
    let answer = start.response.as_ref().unwrap();
    assert_eq!(answer["state"], "scheduled");
    assert_eq!(answer["type"], "courier.group/run");
    assert_eq!(answer["tenant"], TENANT);

    let run = RunRef {
        request: &req,
        vendor_run_id: &submitted.vendor_run_id,
    };
    let first = vendor.status(run).await.unwrap();
    assert_eq!(
        (first.state, first.vendor_state.as_str()),
        (RunState::Pending, "scheduled")
    );
    let (status, polls) =
        poll_until_final(&h, vendor.as_ref(), &req, &submitted.vendor_run_id).await;
    assert_eq!(status.state, RunState::Succeeded);
    assert_eq!(status.vendor_state, "succeeded");
    assert!(status.reason.is_none() && status.attribution.is_none());
    assert!(polls >= 3, "the run takes several polls ({polls})");
    // Status reads ask for the verbose view, the only one carrying `error`.
    let reads: Vec<_> = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .filter(|e| e.method == "GET")
        .collect();
    assert!(
        !reads.is_empty()
            && reads
                .iter()
                .all(|e| e.query.as_deref() == Some("view=verbose")),
        "{reads:?}"
    );
    assert!(matches!(
        vendor.results(run).await.unwrap(),
        ResultsAvailability::NoFiles
    ));
    assert_eq!(h.runs_created(AMPERITY), 1);
    assert_eq!(h.sim.sim.control.requests("amperity.submit"), 1);
}

#[tokio::test]
async fn non_courier_configs_send_only_the_config_id() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let vendor = h.vendor(AMPERITY);
    for config in ["og-nightly01", "cc-campaign01", "cg-db01"] {
        let req = config_request(config);
        vendor
            .submit(&req, &key(&req))
            .await
            .unwrap_or_else(|e| panic!("{config}: {e}"));
    }
    let bodies: Vec<Value> = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .filter_map(|e| e.request)
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"config_id": "og-nightly01"}),
            json!({"config_id": "cc-campaign01"}),
            json!({"config_id": "cg-db01"})
        ]
    );
}

#[tokio::test]
async fn observed_states_progress_and_running_with_failures_is_not_final() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    h.sim.sim.control.push_script(
        AMPERITY,
        script(Outcome::Fail {
            message: "Found table in an invalid state".into(),
            customer: true,
        }),
    );
    let req = config_request("og-nightly01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let run = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    let mut seen = Vec::new();
    // queue 10 s, run 100 s: started until 15 s, in progress, then running with failures from 60 s.
    for step in [2.0, 10.0, 20.0, 50.0, 30.0] {
        h.sim.sim.clock.advance(step);
        let s = vendor.status(run).await.unwrap();
        seen.push((s.vendor_state.clone(), s.state));
    }
    let expected = [
        ("scheduled", RunState::Pending),
        ("started", RunState::Running),
        ("in progress", RunState::Running),
        ("running with failures", RunState::Running),
        ("failed", RunState::Failed),
    ];
    let expected: Vec<(String, RunState)> = expected
        .iter()
        .map(|(v, s)| ((*v).to_owned(), *s))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn failures_carry_attribution_and_reason() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let cases = [
        (
            Outcome::Fail {
                message: "Found table in an invalid state".into(),
                customer: true,
            },
            Attribution::Customer,
        ),
        (
            Outcome::Fail {
                message: "Spark cluster lost".into(),
                customer: false,
            },
            Attribution::Platform,
        ),
        (
            Outcome::Reject {
                message: "Courier group is disabled".into(),
            },
            Attribution::Customer,
        ),
    ];
    for (outcome, attribution) in cases {
        let message = match &outcome {
            Outcome::Fail { message, .. } | Outcome::Reject { message } => message.clone(),
            _ => unreachable!(),
        };
        h.sim.sim.control.push_script(AMPERITY, script(outcome));
        let req = config_request("cg-db01");
        let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
        let (status, _) = poll_until_final(&h, vendor.as_ref(), &req, &id).await;
        assert_eq!(status.state, RunState::Failed);
        assert_eq!(status.vendor_state, "failed");
        assert_eq!(status.attribution, Some(attribution), "{message}");
        assert!(
            status
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(&message)),
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn cancel_stops_then_cancels_and_a_finished_run_is_already_final() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    h.sim
        .sim
        .control
        .push_script(AMPERITY, script(Outcome::NeverFinish));
    let req = config_request("cc-campaign01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let run = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    h.sim.sim.clock.advance(30.0);
    assert_eq!(vendor.cancel(run).await.unwrap(), CancelOutcome::Requested);
    let stopping = vendor.status(run).await.unwrap();
    assert_eq!(
        (stopping.vendor_state.as_str(), stopping.state),
        ("stopping", RunState::Running)
    );
    // A second stop while stopping is accepted and changes nothing.
    assert_eq!(vendor.cancel(run).await.unwrap(), CancelOutcome::Requested);
    h.sim.sim.clock.advance(10.0);
    let cancelled = vendor.status(run).await.unwrap();
    assert_eq!(
        (cancelled.vendor_state.as_str(), cancelled.state),
        ("canceled", RunState::Cancelled)
    );
    assert!(
        cancelled
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("manually stopped")),
        "{cancelled:?}"
    );
    assert_eq!(
        vendor.cancel(run).await.unwrap(),
        CancelOutcome::AlreadyFinal
    );

    let req = config_request("cg-db01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    poll_until_final(&h, vendor.as_ref(), &req, &id).await;
    assert_eq!(
        vendor
            .cancel(RunRef {
                request: &req,
                vendor_run_id: &id
            })
            .await
            .unwrap(),
        CancelOutcome::AlreadyFinal
    );
    assert_eq!(h.sim.sim.control.requests("amperity.stop"), 4);
}

/// The stop's documented errors do not say what stopping an ended run answers; a 400 there is
/// read against the run: already final for an ended run, the refusal for a running one.
#[tokio::test]
async fn a_400_to_a_stop_is_already_final_only_for_an_ended_run() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let bad_request = || Fault::Status {
        status: 400,
        retry_after: None,
    };
    let req = config_request("cg-db01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    poll_until_final(&h, vendor.as_ref(), &req, &id).await;
    let ended = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    h.sim.sim.faults.inject(FaultRule::new(
        AMPERITY,
        Some("POST"),
        "/stop",
        bad_request(),
        1,
    ));
    assert_eq!(
        vendor.cancel(ended).await.unwrap(),
        CancelOutcome::AlreadyFinal
    );
    h.sim
        .sim
        .control
        .push_script(AMPERITY, script(Outcome::NeverFinish));
    let req = config_request("cc-campaign01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    h.sim.sim.faults.inject(FaultRule::new(
        AMPERITY,
        Some("POST"),
        "/stop",
        bad_request(),
        1,
    ));
    let running = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    assert!(
        vendor.cancel(running).await.is_err(),
        "a refused stop of a run that has not ended"
    );
    assert!(!vendor.status(running).await.unwrap().state.is_final());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = config_request("cg-db01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let run = RunRef {
        request: &req,
        vendor_run_id: &id,
    };
    vendor.status(run).await.unwrap();
    assert_eq!(h.sim.sim.tokens.issued_count(AMPERITY), 1);
    h.sim.sim.tokens.expire_all(AMPERITY, h.sim.sim.clock.now());
    h.sim.sim.clock.advance(1.0);
    let status = vendor.status(run).await.expect("status after refresh");
    assert_eq!(status.vendor_state, "scheduled");
    assert_eq!(h.sim.sim.tokens.issued_count(AMPERITY), 2);
    assert_eq!(h.sim.sim.control.requests("amperity.token"), 2);
}

#[tokio::test]
async fn status_retries_throttling_and_server_errors() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = config_request("cg-db01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let faults = &h.sim.sim.faults;
    let status_fault = |fault, times| {
        FaultRule::new(
            AMPERITY,
            Some("GET"),
            "/api/workflow/runs/wf-",
            fault,
            times,
        )
    };
    faults.inject(status_fault(
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1,
    ));
    faults.inject(status_fault(
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    ));
    faults.inject(status_fault(
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    let started = Instant::now();
    let status = vendor
        .status(RunRef {
            request: &req,
            vendor_run_id: &id,
        })
        .await
        .expect("retried to success");
    assert_eq!(status.vendor_state, "scheduled");
    assert!(
        started.elapsed().as_millis() >= 1_000,
        "Retry-After: 1 was honoured"
    );
    // Five faults answered before the handler; only the sixth attempt reached it.
    assert_eq!(h.sim.sim.control.requests("amperity.status"), 1);
}

#[tokio::test]
async fn a_lost_submit_answer_is_outcome_unknown_and_never_repeated() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = config_request("cg-db01");

    h.sim.sim.faults.inject(FaultRule::new(
        AMPERITY,
        Some("POST"),
        "/api/workflow/runs",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    let error = vendor.submit(&req, &key(&req)).await.unwrap_err();
    assert!(
        matches!(error, VendorError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert_eq!(
        h.runs_created(AMPERITY),
        0,
        "the 500 came before the vendor acted, and no retry followed"
    );

    let since = h.sim.sim.clock.now();
    h.sim.sim.faults.inject(FaultRule::new(
        AMPERITY,
        Some("POST"),
        "/api/workflow/runs",
        Fault::DropResponse,
        1,
    ));
    let error = vendor.submit(&req, &key(&req)).await.unwrap_err();
    assert!(
        matches!(error, VendorError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert_eq!(
        h.runs_created(AMPERITY),
        1,
        "exactly one run, no blind retry"
    );
    assert_eq!(h.sim.sim.control.requests("amperity.submit"), 1);

    // Reconciliation finds the run the lost answer created.
    let found = vendor
        .find_submitted(&req, &key(&req), since.into())
        .await
        .unwrap()
        .expect("run found");
    let raw = Raw::new(&h).await;
    let listed = raw.list(&h, &[]).await;
    assert_eq!(ids(&listed), vec![found.vendor_run_id]);
}

#[tokio::test]
async fn find_submitted_matches_only_the_requested_configuration() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let before = h.sim.sim.clock.now();
    h.sim.sim.clock.advance(5.0);
    let db = config_request("cg-db01");
    let db_run = vendor.submit(&db, &key(&db)).await.unwrap().vendor_run_id;
    h.sim.sim.clock.advance(1.0);
    let og = config_request("og-nightly01");
    let og_run = vendor.submit(&og, &key(&og)).await.unwrap().vendor_run_id;

    let found = vendor
        .find_submitted(&db, &key(&db), before.into())
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.vendor_run_id), Some(db_run.clone()));
    let found = vendor
        .find_submitted(&og, &key(&og), before.into())
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.vendor_run_id), Some(og_run));
    // Same type (courier group), different configuration: not matched.
    let files = files_request();
    assert!(vendor
        .find_submitted(&files, &key(&files), before.into())
        .await
        .unwrap()
        .is_none());
    // Never submitted campaign: not matched.
    let cc = config_request("cc-campaign01");
    assert!(vendor
        .find_submitted(&cc, &key(&cc), before.into())
        .await
        .unwrap()
        .is_none());
    // A run created before `since` is not ours.
    let later = h.sim.sim.clock.now();
    assert!(vendor
        .find_submitted(&db, &key(&db), later.into())
        .await
        .unwrap()
        .is_none());
    // With more runs of the configuration after `since` than one page holds, nothing tells
    // them apart: every page is read and the answer is "ambiguous", listing all of them.
    let page = runbridge_vendors::amperity::LIST_PAGE_SIZE as usize;
    for _ in 0..page {
        h.sim.sim.clock.advance(0.11);
        vendor.submit(&db, &key(&db)).await.unwrap();
    }
    // A fresh second, so the rate limit (which counts refused requests too) stays out of it.
    h.sim.sim.clock.advance(1.0);
    let lists_before = h.sim.sim.control.requests("amperity.list");
    let err = vendor
        .find_submitted(&db, &key(&db), before.into())
        .await
        .unwrap_err();
    let VendorError::Ambiguous { candidates, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(candidates.len(), page + 1);
    assert!(candidates.contains(&db_run));
    assert!(!err.is_retryable(), "ambiguity goes to an operator");
    assert_eq!(
        h.sim.sim.control.requests("amperity.list") - lists_before,
        2,
        "two pages read"
    );
}

#[tokio::test]
async fn find_submitted_without_a_known_workflow_name_finds_nothing() {
    let h = Harness::start(1.0).await;
    let before = h.sim.sim.clock.now();
    let req = config_request("cg-db01");
    h.vendor(AMPERITY).submit(&req, &key(&req)).await.unwrap();
    // A fresh client (a cold start) without `amperity.workflow_names` cannot tell configs apart.
    let mut settings = Settings::new();
    for (k, v) in h.sim.client_settings() {
        if k != "amperity.workflow_names" {
            settings.set(k, v);
        }
    }
    let cold = runbridge_vendors::Vendors::from_settings(&settings, &RetryConfig::fast())
        .get(AMPERITY)
        .unwrap();
    assert!(cold
        .find_submitted(&req, &key(&req), before.into())
        .await
        .unwrap()
        .is_none());
    // Once it has seen a response for the configuration, it knows the name; two runs of it in
    // the window are then ambiguous, never the earliest by guess.
    let id = cold.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let err = cold
        .find_submitted(&req, &key(&req), before.into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VendorError::Ambiguous { candidates, .. } if candidates.len() == 2 && candidates.contains(&id)),
        "{err:?}"
    );
}

#[tokio::test]
async fn listing_pages_through_25_runs_with_opaque_tokens() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let mut created = Vec::new();
    for _ in 0..25 {
        h.sim.sim.clock.advance(0.25);
        let req = config_request("cg-db01");
        created.push(vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id);
    }
    let raw = Raw::new(&h).await;
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            ("limit", "10".to_owned()),
            ("with_total", "true".to_owned()),
        ];
        if let Some(t) = &token {
            query.push(("next_token", t.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = raw.list(&h, &query).await;
        assert_eq!(page["total"], 25);
        pages.push(ids(&page));
        match page.get("next_token").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    let listed: Vec<String> = pages.concat();
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), 25);

    // Without with_total there is no total; a token only works with the filters it came from.
    let first = raw.list(&h, &[("limit", "10")]).await;
    assert!(first.get("total").is_none());
    let token = first["next_token"].as_str().unwrap().to_owned();
    let response = raw
        .get(&h, "/workflow/runs")
        .query(&[("next_token", token.as_str()), ("state", "succeeded")])
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "token reused with other filters").await;
    // A run created between pages does not shift the next page.
    let req = config_request("cg-db01");
    vendor.submit(&req, &key(&req)).await.unwrap();
    let second = raw
        .list(&h, &[("limit", "10"), ("next_token", token.as_str())])
        .await;
    assert_eq!(ids(&second), newest_first[10..20].to_vec());
}

#[tokio::test]
async fn list_filters_select_by_time_state_and_type() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let db = raw.start(&h, json!({"config_id": "cg-db01"})).await;
    h.sim.sim.clock.advance(600.0);
    // Queued long enough to stay `scheduled` while the probes below move the clock.
    h.sim.sim.control.push_script(
        AMPERITY,
        RunScript {
            queue_seconds: 1_000.0,
            ..RunScript::default()
        },
    );
    let campaign = raw.start(&h, json!({"config_id": "cc-campaign01"})).await;
    let (db_id, cc_id) = (
        db["id"].as_str().unwrap().to_owned(),
        campaign["id"].as_str().unwrap().to_owned(),
    );
    // The default script ends the courier group's run 65 s after creation.
    let listed = |page: Value| ids(&page).into_iter().collect::<HashSet<_>>();
    let both: HashSet<String> = [db_id.clone(), cc_id.clone()].into();
    let only = |id: &String| HashSet::from([id.clone()]);
    let none = HashSet::new();

    let created = db["created_at"].as_str().unwrap().to_owned();
    let cc_created = campaign["created_at"].as_str().unwrap().to_owned();
    let (year, month, day, hour) = (&created[..4], &created[..7], &created[..10], &created[..13]);
    for (query, expected) in [
        (vec![("created_from", year)], &both),
        (vec![("created_to", year)], &none),
        (vec![("created_from", month)], &both),
        (vec![("created_to", month)], &none),
        (vec![("created_from", day)], &both),
        (vec![("created_to", day)], &none),
        (vec![("created_from", hour)], &both),
        (
            vec![
                ("created_from", created.as_str()),
                ("created_to", cc_created.as_str()),
            ],
            &only(&db_id),
        ),
        (vec![("created_from", cc_created.as_str())], &only(&cc_id)),
        (vec![("ended_from", year)], &only(&db_id)),
        (vec![("ended_to", year)], &none),
        (vec![("state", "succeeded")], &only(&db_id)),
        (vec![("state", "Succeeded")], &only(&db_id)),
        (vec![("state", "scheduled")], &only(&cc_id)),
        (vec![("state", "failed")], &none),
        (vec![("type", "courier.group/run")], &only(&db_id)),
        (vec![("type", "campaign.send")], &only(&cc_id)),
        (
            vec![("type", "campaign.send"), ("state", "succeeded")],
            &none,
        ),
    ] {
        assert_eq!(&listed(raw.list(&h, &query).await), expected, "{query:?}");
    }
    // ended_* leave out runs that have not ended.
    h.sim.sim.clock.advance(1_200.0);
    assert_eq!(listed(raw.list(&h, &[("ended_from", day)]).await), both);
}

#[tokio::test]
async fn the_rate_limit_answers_429_and_the_client_waits_it_out() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = config_request("cg-db01");
    let id = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    let raw = Raw::new(&h).await;
    // Freeze simulated time a second after the submit's token and start requests, so those are
    // out of the sliding second the simulator counts and every request below falls into it.
    h.sim.sim.clock.set_speed(0.0);
    h.sim.sim.clock.advance(1.001);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = raw
            .http
            .get(format!("{}/api/workflow/runs/{id}", raw.base))
            .bearer_auth(&raw.token)
            .header("amperity-tenant", TENANT)
            .header("api-version", "2024-04-01")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
            expect_error(response, 429, "over the rate limit").await;
        }
    }
    assert_eq!(statuses, [vec![200; 10], vec![429; 2]].concat());
    // Another tenant has its own budget.
    let other = raw
        .http
        .get(format!("{}/api/workflow/runs", raw.base))
        .bearer_auth(&raw.token)
        .header("amperity-tenant", "other")
        .header("api-version", "2024-04-01")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // The client's next call is throttled, waits Retry-After, and succeeds in the next second.
    h.sim.sim.clock.set_speed(1.0);
    let started = Instant::now();
    let status = vendor
        .status(RunRef {
            request: &req,
            vendor_run_id: &id,
        })
        .await
        .expect("waited out the limit");
    assert_eq!(status.vendor_state, "scheduled");
    assert!(started.elapsed().as_millis() >= 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_status_calls_stays_under_the_tenant_rate_limit() {
    let h = Harness::start(1.0).await;
    let req = config_request("cg-db01");
    let id = h
        .vendor(AMPERITY)
        .submit(&req, &key(&req))
        .await
        .unwrap()
        .vendor_run_id;
    // Two clients in one process (as two concurrent runs would have) share the tenant's limit.
    let second = runbridge_vendors::Vendors::from_settings(&h.settings, &RetryConfig::fast());
    let clients = [h.vendor(AMPERITY), second.get(AMPERITY).expect("amperity")];
    let started = Instant::now();
    let calls = (0..200).map(|i| {
        let client = clients[i % 2].clone();
        let (req, id) = (req.clone(), id.clone());
        tokio::spawn(async move {
            client
                .status(RunRef {
                    request: &req,
                    vendor_run_id: &id,
                })
                .await
        })
    });
    for call in futures::future::join_all(calls).await {
        call.expect("task").expect("status");
    }
    assert_eq!(
        h.sim.sim.control.requests("amperity.rate_limited"),
        0,
        "the simulator never had to throttle"
    );
    assert_eq!(h.sim.sim.control.requests("amperity.status"), 200);
    // 200 calls at no more than 10 per second take at least 19 seconds after the first.
    assert!(
        started.elapsed().as_secs_f64() >= 19.0,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_simulator_rejects_what_amperity_rejects() {
    let h = Harness::start(1.0).await;
    let raw = Raw::new(&h).await;
    let runs = "/workflow/runs";

    // Headers, auth and version.
    h.sim.sim.clock.advance(1.0);
    let no_tenant = raw
        .http
        .get(format!("{}/api{runs}", raw.base))
        .bearer_auth(&raw.token)
        .header("api-version", "2024-04-01");
    expect_error(
        no_tenant.send().await.unwrap(),
        400,
        "missing amperity-tenant",
    )
    .await;
    let no_version = raw
        .http
        .get(format!("{}/api{runs}", raw.base))
        .bearer_auth(&raw.token)
        .header("amperity-tenant", TENANT);
    expect_error(no_version.send().await.unwrap(), 400, "missing api-version").await;
    let query_version = raw
        .http
        .get(format!("{}/api{runs}?api_version=2024-04-01", raw.base))
        .bearer_auth(&raw.token)
        .header("amperity-tenant", TENANT);
    assert_eq!(
        query_version.send().await.unwrap().status(),
        200,
        "api_version may be a query parameter"
    );
    let bad_version = raw
        .http
        .get(format!("{}/api{runs}", raw.base))
        .bearer_auth(&raw.token)
        .header("amperity-tenant", TENANT)
        .header("api-version", "2023-01-01");
    expect_error(
        bad_version.send().await.unwrap(),
        401,
        "unsupported api-version",
    )
    .await;
    let no_token = raw
        .http
        .get(format!("{}/api{runs}", raw.base))
        .header("amperity-tenant", TENANT)
        .header("api-version", "2024-04-01");
    expect_error(no_token.send().await.unwrap(), 401, "missing bearer").await;
    let unknown = raw
        .http
        .get(format!("{}/api{runs}", raw.base))
        .bearer_auth("not-a-token")
        .header("amperity-tenant", TENANT)
        .header("api-version", "2024-04-01");
    expect_error(unknown.send().await.unwrap(), 401, "unknown bearer").await;

    // Start bodies.
    let start_cases: Vec<(Value, &str)> = vec![
        (json!([]), "body not an object"),
        (json!({}), "config_id missing"),
        (json!({"config_id": 42}), "config_id not a string"),
        (
            json!({"config_id": "cg-db01", "request_id": "x"}),
            "unknown field",
        ),
        (json!({"config_id": "xx-db01"}), "bad config id prefix"),
        (json!({"config_id": "cg-nope"}), "unknown configuration"),
        (
            json!({"config_id": "cg-files01"}),
            "file courier group without range_from",
        ),
        (
            json!({"config_id": "cg-db01", "run_mode": "everything"}),
            "bad run_mode",
        ),
        (
            json!({"config_id": "cg-db01", "run_mode": 1}),
            "run_mode not a string",
        ),
        (
            json!({"config_id": "og-nightly01", "run_mode": "full"}),
            "run_mode on an orchestration group",
        ),
        (
            json!({"config_id": "cc-campaign01", "range_from": "2026-11-26"}),
            "range on a campaign",
        ),
        (
            json!({"config_id": "cg-db01", "range_to": "2026-11-27T00:00:00Z"}),
            "range_to without range_from",
        ),
        (
            json!({"config_id": "cg-db01", "range_from": "2026-11-27", "range_to": "2026-11-26"}),
            "range_to before range_from",
        ),
        (
            json!({"config_id": "cg-db01", "range_from": "2026-11-27T00:00:00+02:00"}),
            "range_from not UTC",
        ),
        (
            json!({"config_id": "cg-db01", "range_from": "yesterday"}),
            "range_from not a timestamp",
        ),
    ];
    for (body, what) in start_cases {
        let response = raw.post(&h, runs).json(&body).send().await.unwrap();
        expect_error(response, 400, what).await;
    }
    let response = raw
        .post(&h, runs)
        .header("content-type", "application/json")
        .body("{\"config_id\"=\"cg-db01\"}")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "body not JSON").await;
    assert_eq!(
        h.runs_created(AMPERITY),
        0,
        "no rejected start created a run"
    );
    // The accepted forms: date-only range_from without range_to, every run mode.
    raw.start(
        &h,
        json!({"config_id": "cg-files01", "range_from": "2026-11-26"}),
    )
    .await;
    let run = raw
        .start(&h, json!({"config_id": "cg-db01", "run_mode": "source"}))
        .await;
    let id = run["id"].as_str().unwrap();

    // Reading runs.
    expect_error(
        raw.get(&h, "/workflow/runs/not-a-run")
            .send()
            .await
            .unwrap(),
        400,
        "malformed id",
    )
    .await;
    expect_error(
        raw.get(&h, "/workflow/runs/wf-20260101-00001-abcdef")
            .send()
            .await
            .unwrap(),
        404,
        "unknown id",
    )
    .await;
    let other_tenant = raw
        .http
        .get(format!("{}/api/workflow/runs/{id}", raw.base))
        .bearer_auth(&raw.token)
        .header("amperity-tenant", "other")
        .header("api-version", "2024-04-01");
    expect_error(
        other_tenant.send().await.unwrap(),
        404,
        "another tenant's run",
    )
    .await;
    let response = raw
        .get(&h, &format!("/workflow/runs/{id}"))
        .query(&[("view", "full")])
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "bad view").await;
    let overview: Value = raw
        .get(&h, &format!("/workflow/runs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&str> = overview
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["created_at", "id", "name", "state", "tenant", "type"],
        "overview is the default view"
    );
    let verbose: Value = raw
        .get(&h, &format!("/workflow/runs/{id}"))
        .query(&[("view", "verbose")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(verbose["task_instances"].is_array() && verbose["launched_version"].is_string());

    // Listing.
    for (query, what) in [
        (vec![("limit", "0")], "limit 0"),
        (vec![("limit", "101")], "limit over 100"),
        (vec![("limit", "ten")], "limit not a number"),
        (vec![("with_total", "yes")], "with_total not boolean"),
        (
            vec![("created_from", "last week")],
            "created_from not a timestamp",
        ),
        (vec![("ended_to", "2025-13")], "ended_to month 13"),
        (vec![("next_token", "ABCd1fghIJk2l3M")], "forged next_token"),
        (vec![("created_since", "2025")], "unknown parameter"),
    ] {
        expect_error(
            raw.get(&h, runs).query(&query).send().await.unwrap(),
            400,
            what,
        )
        .await;
    }

    // Stopping: without a length some gateways answer 411, so the simulator does too.
    expect_error(
        raw.post(&h, &format!("/workflow/runs/{id}/stop"))
            .send()
            .await
            .unwrap(),
        411,
        "stop without Content-Length",
    )
    .await;
    expect_error(
        raw.post(&h, "/workflow/runs/wf-20260101-00001-abcdef/stop")
            .header("content-length", "0")
            .send()
            .await
            .unwrap(),
        404,
        "stop unknown",
    )
    .await;
    h.sim.sim.clock.advance(600.0);
    expect_error(
        raw.post(&h, &format!("/workflow/runs/{id}/stop"))
            .header("content-length", "0")
            .send()
            .await
            .unwrap(),
        409,
        "stop a finished run",
    )
    .await;

    // The token endpoint refuses wrong credentials (OAuth error shape).
    let response = raw
        .http
        .post(format!("{}/api/v0/oauth2/token", raw.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // An expired token is refused with 401.
    h.sim.sim.tokens.expire_all(AMPERITY, h.sim.sim.clock.now());
    expect_error(
        raw.get(&h, runs).send().await.unwrap(),
        401,
        "expired bearer",
    )
    .await;
}

#[tokio::test]
async fn vendor_errors_map_to_typed_errors() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = config_request("cg-missing01");
    match vendor.submit(&req, &key(&req)).await.unwrap_err() {
        VendorError::Rejected {
            status: 400,
            field,
            message,
            ..
        } => {
            assert_eq!(field.as_deref(), Some("config_id"));
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    let file_group = config_request("cg-files01");
    match vendor
        .submit(&file_group, &key(&file_group))
        .await
        .unwrap_err()
    {
        VendorError::Rejected {
            status: 400, field, ..
        } => assert_eq!(field.as_deref(), Some("range_from")),
        other => panic!("expected Rejected, got {other:?}"),
    }
    let ok = config_request("cg-db01");
    let missing = vendor
        .status(RunRef {
            request: &ok,
            vendor_run_id: "wf-20260101-00001-abcdef",
        })
        .await
        .unwrap_err();
    assert!(
        matches!(missing, VendorError::NotFound { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn missing_credentials_are_configuration_errors_naming_the_setting() {
    let entry = runbridge_vendors::registry::VENDORS
        .iter()
        .find(|e| e.kind == AMPERITY)
        .unwrap();
    let mut settings = Settings::new();
    match (entry.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) {
        Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amperity.client_id"),
        other => panic!("expected Config, got {:?}", other.map(|_| ())),
    }
    settings.set("amperity.client_id", "id");
    match (entry.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) {
        Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amperity.client_secret"),
        other => panic!("expected Config, got {:?}", other.map(|_| ())),
    }
    settings.set("amperity.client_secret", "secret");
    settings.set("amperity.workflow_names", "cg-1 without a name");
    match (entry.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process(),
    ) {
        Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amperity.workflow_names"),
        other => panic!("expected Config, got {:?}", other.map(|_| ())),
    }
    settings.set("amperity.workflow_names", "cg-1=Daily");
    assert!((entry.build)(
        &settings,
        &RetryConfig::fast(),
        &runbridge_vendors::rate::InProcessBudget::process()
    )
    .is_ok());
}

#[test]
fn every_documented_state_maps() {
    let cases = [
        ("scheduled", RunState::Pending),
        ("Scheduled", RunState::Pending),
        ("started", RunState::Running),
        ("in progress", RunState::Running),
        ("In progress", RunState::Running),
        ("in-progress", RunState::Running),
        ("in_progress", RunState::Running),
        ("running", RunState::Running),
        ("running with failures", RunState::Running),
        ("Running with failures", RunState::Running),
        ("stopping", RunState::Running),
        ("canceling", RunState::Running),
        ("paused", RunState::Running),
        ("succeeded", RunState::Succeeded),
        ("SUCCEEDED", RunState::Succeeded),
        ("failed", RunState::Failed),
        ("canceled", RunState::Cancelled),
        ("Stopped", RunState::Cancelled),
        ("something new", RunState::Running),
    ];
    for (vendor_state, expected) in cases {
        assert_eq!(map_state(vendor_state), expected, "{vendor_state}");
    }
}

/// A run of the same workflow that another starter created at `created_at`.
fn foreign(
    h: &Harness,
    config_id: &str,
    created_at: time::OffsetDateTime,
    starter: ForeignStarter,
) {
    h.sim.sim.control.add_foreign_run(
        AMPERITY,
        ForeignRun {
            tenant: TENANT.into(),
            config_id: config_id.into(),
            created_at,
            starter,
        },
    );
}

/// Issue 15: a scheduled run of the same workflow created 60 s before the claim, and one the
/// scheduler started right after it, are never adopted; nor is a person's run in the window.
/// The run found is the one the lost start created.
#[tokio::test]
async fn reconciliation_never_adopts_a_scheduled_or_earlier_run_of_the_same_workflow() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let req = files_request();
    let claimed_at = h.sim.sim.clock.now();
    foreign(
        &h,
        "cg-files01",
        claimed_at - time::Duration::seconds(60),
        ForeignStarter::Scheduler,
    );
    foreign(
        &h,
        "cg-files01",
        claimed_at - time::Duration::seconds(30),
        ForeignStarter::SameApiKey,
    );
    h.sim.sim.clock.advance(0.5);
    h.sim.sim.faults.inject(FaultRule::new(
        AMPERITY,
        Some("POST"),
        "/api/workflow/runs",
        Fault::DropResponse,
        1,
    ));
    assert!(vendor.submit(&req, &key(&req)).await.is_err());
    h.sim.sim.clock.advance(0.5);
    foreign(
        &h,
        "cg-files01",
        h.sim.sim.clock.now(),
        ForeignStarter::Scheduler,
    );
    h.sim.sim.clock.advance(1.0);
    let raw = Raw::new(&h).await;
    let all = raw.list(&h, &[]).await;
    assert_eq!(ids(&all).len(), 4, "three foreign runs and ours");
    let window = ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let found = vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap()
        .expect("our run is found");
    // Ours is the only run the API key started after the claim.
    let ours: Vec<&Value> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            w["principal_name"] != "Automated workflow"
                && time::OffsetDateTime::parse(
                    w["created_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
                    >= claimed_at
        })
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(found.vendor_run_id, ours[0]["id"].as_str().unwrap());
    // A person's run of the same workflow inside the window is a different principal once the
    // client knows its own (learned from a start answer, or `amperity.principal_id`).
    let learned = vendor
        .submit(&config_request("cg-db01"), &key(&config_request("cg-db01")))
        .await;
    assert!(learned.is_ok());
    foreign(
        &h,
        "cg-files01",
        h.sim.sim.clock.now(),
        ForeignStarter::User,
    );
    h.sim.sim.clock.advance(1.0);
    let window = ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let again = vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap()
        .expect("still our run");
    assert_eq!(again.vendor_run_id, found.vendor_run_id);
}

/// Issue 15: the search window goes out as `created_from`/`created_to` in the precision the API
/// documents and writes (UTC, milliseconds), never nanoseconds.
#[tokio::test]
async fn reconciliation_sends_a_millisecond_window_with_created_to() {
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    let vendor = h.vendor(AMPERITY);
    let req = files_request();
    let from = time::macros::datetime!(2026-11-27 10:00:00.123456789 UTC);
    let to = time::macros::datetime!(2026-11-27 10:05:00.000000001 UTC);
    let window = ReconcileWindow { from, to: Some(to) };
    assert!(vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap()
        .is_none());
    let list = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .find(|e| e.method == "GET" && e.path == "/api/workflow/runs")
        .expect("list recorded");
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(list.query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query["created_from"], "2026-11-27T10:00:00.123Z");
    assert_eq!(query["created_to"], "2026-11-27T10:05:00.001Z");
}

/// Issue 15: a server that pages smaller than asked is followed to the last page, no faster than
/// the tenant's rate limit allows (no 429 drawn), and a budget that runs out is "unknown"
/// (retryable), never "not found".
#[tokio::test]
async fn reconciliation_follows_small_server_pages_to_the_end_within_the_rate_limit() {
    let h = Harness::start(1.0).await;
    let vendor = h.vendor(AMPERITY);
    let claimed_at = h.sim.sim.clock.now();
    // 12 runs of another workflow in the window, then ours, oldest of all on the last page.
    let req = files_request();
    let ours = vendor.submit(&req, &key(&req)).await.unwrap().vendor_run_id;
    for _ in 0..12 {
        h.sim.sim.clock.advance(0.2);
        foreign(
            &h,
            "cg-files01",
            h.sim.sim.clock.now(),
            ForeignStarter::Scheduler,
        );
    }
    h.sim.sim.clock.advance(1.0);
    h.sim.sim.control.set_list_page_cap(AMPERITY, 2);
    let lists_before = h.sim.sim.control.requests("amperity.list");
    let started = Instant::now();
    let window = ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let found = vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap()
        .expect("found on the last small page");
    assert_eq!(found.vendor_run_id, ours);
    let pages = h.sim.sim.control.requests("amperity.list") - lists_before;
    assert_eq!(pages, 7, "13 runs, 2 per page");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= runbridge_vendors::amperity::LIST_PAGE_INTERVAL * (pages as u32 - 1),
        "pages are paced: {pages} pages in {elapsed:?}"
    );

    // More pages than the budget: unknown, retryable, never "not found".
    h.sim.sim.control.set_list_page_cap(AMPERITY, 1);
    for _ in 0..runbridge_vendors::amperity::MAX_RECONCILE_PAGES {
        h.sim.sim.clock.advance(0.01);
        foreign(
            &h,
            "cg-files01",
            h.sim.sim.clock.now(),
            ForeignStarter::Scheduler,
        );
    }
    h.sim.sim.clock.advance(1.0);
    let window = ReconcileWindow::after_claim(claimed_at, h.sim.sim.clock.now());
    let err = vendor
        .find_submitted(&req, &key(&req), window)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("unknown"), "{err}");
}
