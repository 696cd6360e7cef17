//! The handlers through the local adapters and the deployed state machine, against the vendor
//! simulators: exactly-once submission, deadlines, failures, broken downloads, resumed collects.

use runbridge_system_tests::harness;

use harness::{carto_request, example_request, Harness};
use runbridge_core::{Manifest, RunState, VendorKind};
use runbridge_handlers::{HandlerError, Ledger};
use runbridge_sim::{Fault, FaultRule, Outcome, RunScript};

const CARTO: VendorKind = VendorKind::Carto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_and_ten_sequential_deliveries_make_one_run_and_one_execution() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let body = example_request(vendor, "dup-1");
        let concurrent =
            futures::future::join_all((0..10).map(|_| h.trigger.handle_bytes(&body, None))).await;
        let mut submitted_now = 0;
        for result in &concurrent {
            match result {
                Ok(t) if t.submitted_now => submitted_now += 1,
                Ok(_) => {}
                // A delivery racing the submitter is told to come back later, never to submit.
                Err(e) => assert!(e.is_retryable(), "{vendor}: {e}"),
            }
        }
        assert_eq!(submitted_now, 1, "{vendor}");
        for _ in 0..10 {
            let t = h
                .trigger
                .handle_bytes(&body, None)
                .await
                .expect("redelivery succeeds");
            assert!(!t.submitted_now, "{vendor}");
        }
        assert_eq!(
            h.sim.sim.control.runs_created(vendor),
            1,
            "{vendor}: exactly one vendor run"
        );
        let manifest = h.run_to_end_for(vendor, "dup-1").await;
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
    }
    assert_eq!(
        h.executions.names().len(),
        4,
        "exactly one execution per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_deadline_is_cancelled_and_reported_failed() {
    let h = Harness::start().await;
    h.sim.sim.control.push_script(
        CARTO,
        RunScript {
            outcome: Outcome::NeverFinish,
            ..RunScript::default()
        },
    );
    let mut request: serde_json::Value =
        serde_json::from_slice(&carto_request("late-1", false)).unwrap();
    request["deadline_seconds"] = 120.into();
    h.trigger
        .handle_bytes(&serde_json::to_vec(&request).unwrap(), None)
        .await
        .unwrap();
    let manifest = h.run_to_end("late-1").await;
    assert_eq!(manifest.state, RunState::Failed);
    let reason = manifest.reason.unwrap();
    assert!(
        reason.contains("deadline of 120 s exceeded")
            && reason.contains(&format!(
                "carto run {} cancelled",
                manifest.vendor_run_id.clone()
            )),
        "{reason}"
    );
    assert_eq!(
        h.sim.sim.control.requests("carto.cancel"),
        1,
        "the vendor job was cancelled"
    );
    assert!(manifest.files.is_empty());
    assert_eq!(
        h.events.published().last().unwrap().detail_type(),
        "Run Failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_gets_a_manifest_with_the_vendor_reason_and_attribution() {
    let h = Harness::start().await;
    h.sim.sim.control.push_script(
        CARTO,
        RunScript {
            outcome: Outcome::Fail {
                message: "Cannot coerce @a".into(),
                customer: true,
            },
            ..RunScript::default()
        },
    );
    h.trigger
        .handle_bytes(&carto_request("bad-1", true), None)
        .await
        .unwrap();
    let manifest = h.run_to_end("bad-1").await;
    assert_eq!(manifest.state, RunState::Failed);
    assert!(
        manifest
            .reason
            .as_deref()
            .unwrap()
            .contains("Cannot coerce @a"),
        "{:?}",
        manifest.reason
    );
    assert_eq!(
        manifest.attribution,
        Some(runbridge_core::Attribution::Customer)
    );
    assert!(manifest.files.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_download_is_retried_and_nothing_partial_is_visible() {
    let h = Harness::start().await;
    // The export is a POST (CARTO's never-cached query endpoint).
    h.sim.sim.faults.inject(FaultRule::new(
        CARTO,
        Some("POST"),
        "/query",
        Fault::TruncateBody { keep_bytes: 10_000 },
        1,
    ));
    h.trigger
        .handle_bytes(&carto_request("trunc-1", true), None)
        .await
        .unwrap();
    let manifest = h.run_to_end("trunc-1").await;
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(manifest.files.len(), 1);
    let bytes = std::fs::read(h.out.path().join(&manifest.files[0].key)).unwrap();
    assert_eq!(bytes.len() as u64, manifest.files[0].size_bytes);
    assert!(
        bytes.len() > 10_000,
        "the complete file, not the truncated one"
    );
    assert_eq!(
        h.sim.sim.control.requests("carto.export") + h.sim.sim.control.requests("carto.query"),
        2,
        "{:?}",
        h.sim.sim.control.all_requests()
    );
    assert!(h.partial_files().is_empty(), "{:?}", h.partial_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_after_the_manifest_does_nothing_twice() {
    let h = Harness::start().await;
    h.trigger
        .handle_bytes(&carto_request("again-1", true), None)
        .await
        .unwrap();
    let manifest = h.run_to_end("again-1").await;
    let events_before = h.events.published().len();
    let out = h
        .collector
        .collect(runbridge_handlers::collect::CollectInput {
            handle: h.handle("again-1").await,
            outcome: runbridge_handlers::collect::Outcome::Succeeded,
            reason: None,
            attribution: None,
        })
        .await
        .unwrap();
    assert_eq!(out.files, manifest.files.len());
    assert_eq!(h.events.published().len(), events_before, "no second event");
}

#[tokio::test]
async fn an_invalid_request_names_its_field_and_never_reaches_the_vendor() {
    let h = Harness::start().await;
    let err = h
        .trigger
        .handle_bytes(br#"{"vendor":"carto","connection":"c","query":""}"#, None)
        .await
        .unwrap_err();
    match &err {
        HandlerError::Invalid(v) => assert_eq!(v.field, "query"),
        other => panic!("{other}"),
    }
    assert_eq!(err.error_type(), "InvalidRequest");
    assert_eq!(h.sim.sim.control.runs_created(CARTO), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_submit_answer_is_never_resubmitted_where_the_vendor_cannot_tell() {
    let h = Harness::start().await;
    // CARTO creates the job, then the answer is lost.
    h.sim.sim.faults.inject(FaultRule::new(
        CARTO,
        Some("POST"),
        "/job",
        Fault::DropResponse,
        1,
    ));
    let body = carto_request("lost-1", false);
    let first = h.trigger.handle_bytes(&body, None).await.unwrap_err();
    assert!(matches!(first, HandlerError::Unreconcilable(_)), "{first}");
    assert_eq!(
        first.error_type(),
        "NonRetryable",
        "goes to the DLQ, not back to the queue"
    );
    // A redelivery within the claim's lease waits; after it, it is refused the same way.
    let again = h.trigger.handle_bytes(&body, None).await.unwrap_err();
    assert!(again.is_retryable(), "{again}");
    h.sim.sim.clock.advance(600.0);
    let later = h.trigger.handle_bytes(&body, None).await.unwrap_err();
    assert!(matches!(later, HandlerError::Unreconcilable(_)), "{later}");
    assert_eq!(
        h.sim.sim.control.runs_created(CARTO),
        1,
        "never a second job"
    );
    assert!(h.executions.names().is_empty());
}

/// Issue 15 and 24: a collect failure is attributed as its typed error says, through the
/// deployed state machine, and every view tells the same story. A 403 on the export (a
/// permission the customer must grant) is the customer's: resending cannot help, so the run ends
/// FAILED with a manifest, its `Run Failed` event and the customer named, and nothing is left to
/// recover. A 500 that outlasts every retry is the platform's: no manifest (the vendor run
/// succeeded, and a resend collects it again), a ledger record of the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collect_failure_is_attributed_as_its_error_says() {
    let h = Harness::start().await;
    for (id, status, attribution) in [
        ("forbidden-1", 403, runbridge_core::Attribution::Customer),
        ("unavailable-1", 500, runbridge_core::Attribution::Platform),
    ] {
        h.sim.sim.faults.inject(FaultRule::new(
            CARTO,
            Some("POST"),
            "/query",
            Fault::Status {
                status,
                retry_after: None,
            },
            1_000,
        ));
        h.trigger
            .handle_bytes(&carto_request(id, true), None)
            .await
            .unwrap();
        let key = Harness::key_for(CARTO, id);
        let execution = h
            .executions
            .wait(&key.execution_name())
            .await
            .expect("execution started");
        h.sim.sim.faults.clear();
        assert_eq!(
            execution.status,
            runbridge_asl::ExecutionStatus::Failed,
            "{id}"
        );
        let handle = h.handle(id).await;
        let manifest_path = h.out.path().join(h.layout.paths(&handle).manifest());
        let entry = h.ledger.get(&key).await.unwrap().expect("ledger entry");
        match attribution {
            runbridge_core::Attribution::Customer => {
                let manifest: Manifest =
                    serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
                assert_eq!(manifest.state, RunState::Failed, "{id}");
                assert_eq!(manifest.attribution, Some(attribution), "{id}");
                let reason = manifest.reason.unwrap_or_default();
                assert!(
                    reason.contains(
                        "the vendor run succeeded, but its results could not be collected"
                    ),
                    "{reason}"
                );
                assert!(!reason.contains("resend"), "{reason}");
                let events = h.events.published();
                let event = events
                    .iter()
                    .find(|e| e.key == key.as_str())
                    .expect("the run's event");
                assert_eq!(event.state, RunState::Failed);
                assert_eq!(event.attribution, Some(attribution));
                assert_eq!(entry.collect_failure(), None, "nothing to recover");
            }
            _ => {
                assert!(
                    !manifest_path.exists(),
                    "{id}: no manifest for a collect that failed on our side"
                );
                let failure = entry
                    .collect_failure()
                    .cloned()
                    .expect("collect failure recorded");
                assert_eq!(failure.attribution, Some(attribution), "{id}: {failure:?}");
            }
        }
    }
}

/// Issue 15: poll and collect do not read the same terminal status over and over: a CARTO run
/// reads its DONE status twice in all (poll sees it, collect checks the job before the export),
/// not three times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_carto_job_is_read_done_at_most_twice() {
    let h = Harness::start().await;
    h.sim.sim.recorder.enable();
    h.trigger
        .handle_bytes(&carto_request("reads-1", true), None)
        .await
        .unwrap();
    let manifest = h.run_to_end("reads-1").await;
    assert_eq!(manifest.state, RunState::Succeeded);
    let done_reads = h
        .sim
        .sim
        .recorder
        .exchanges()
        .iter()
        .filter(|e| e.method == "GET" && e.path.contains("/job/"))
        .filter(|e| {
            e.response
                .as_ref()
                .is_some_and(|r| r["status"]["state"] == "DONE")
        })
        .count();
    assert_eq!(done_reads, 2, "one read by poll, one by collect");
}
