//! A key's lifecycle across refusals, fixes, conflicts and reruns (issue 10), on the simulators.
//! Each test is named for the case it pins.

use runbridge_system_tests::harness;
use runbridge_test_support::doubles::{
    FailingEvents, LedgerDouble, LedgerFault, LedgerOp, RefusingSink,
};
use runbridge_test_support::memory::LogEvents;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use harness::{example_request, Harness, HarnessOptions};
use runbridge_adapters_local::{StatusChanges, LOCAL_STATE_MACHINE_ARN, OPERATOR_STOP_CAUSE};
use runbridge_asl::ExecutionStatus;
use runbridge_core::{
    IdempotencyKey, Manifest, ResultLayout, RunHandle, RunOutcome, RunState, VendorKind,
};
use runbridge_handlers::collect::{
    CollectInput, CollectOptions, Collector, Outcome as CollectOutcome,
};
use runbridge_handlers::finish::Finisher;
use runbridge_handlers::ports::LedgerEntry;
use runbridge_handlers::ports::StartOutcome;
use runbridge_handlers::stopped::{execution_stopped, ExecutionStopped, StopHandled, StopStatus};
use runbridge_handlers::trigger::recovery_execution_name;
use runbridge_handlers::{HandlerError, Ledger, ObjectChecksum};
use runbridge_sim::{Fault, FaultRule, Outcome as SimOutcome, RunScript};
use runbridge_vendors::RunRef;
use VendorKind::{Adobe, Amc, Amperity, Carto};

fn body(
    vendor: VendorKind,
    request_id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let mut r: serde_json::Value =
        serde_json::from_slice(&example_request(vendor, request_id)).unwrap();
    edit(&mut r);
    serde_json::to_vec(&r).unwrap()
}

/// Case 1: a submit the vendor (or runbridge) definitely refused releases the key at once, and
/// the corrected resend with the same `request_id` runs — no "being submitted by another
/// delivery", no replay of the stored old request after a lease, no `Unreconcilable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definitely_refused_submit_releases_the_key_and_the_corrected_resend_runs_at_once() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let id = "refused-1";
        let refused = match vendor {
            // AMC: SQL that is only a comment, refused before anything is sent.
            Amc => body(vendor, id, |r| r["sql_query"] = "-- nothing here".into()),
            // Adobe: a flow the sandbox does not know (400 from the vendor).
            Adobe => body(vendor, id, |r| {
                r["flow_id"] = "9f1a2b3c-0000-4000-8000-0000000000ff".into()
            }),
            // Amperity: a vendor 400 on create. CARTO: a 429 whose Retry-After is beyond the
            // client's budget. Neither created anything.
            Amperity | Carto => {
                let fault = if vendor == Amperity {
                    Fault::Status {
                        status: 400,
                        retry_after: None,
                    }
                } else {
                    Fault::Status {
                        status: 429,
                        retry_after: Some(3600),
                    }
                };
                h.fault_submits(vendor, fault, 1);
                example_request(vendor, id)
            }
        };
        let err = h.trigger.handle_bytes(&refused, None).await.unwrap_err();
        assert!(
            !err.to_string().contains("Unreconcilable")
                && !matches!(err, HandlerError::Unreconcilable(_)),
            "{vendor}: {err}"
        );
        assert_eq!(h.sim.sim.control.runs_created(vendor), 0, "{vendor}");
        let ledger_file = h
            .out
            .path()
            .join("_ledger")
            .join(format!("{vendor}-{id}.json"));
        assert!(!ledger_file.exists(), "{vendor}: the claim was released");

        // The corrected request, same request_id, right away (no lease passes).
        let fixed = example_request(vendor, id);
        let triggered = h
            .trigger
            .handle_bytes(&fixed, None)
            .await
            .unwrap_or_else(|e| panic!("{vendor}: the corrected resend is refused: {e}"));
        assert!(triggered.submitted_now, "{vendor}");
        assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
        let manifest = h.run_to_end_for(vendor, id).await;
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
    }
    assert_eq!(h.sim.sim.faults.pending(), 0);
}

/// Case 2a: the same `request_id` with a changed body is a `KeyConflict` naming both
/// fingerprints, non-retryable, and starts nothing; the first run is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_id_with_another_body_is_a_key_conflict_not_a_reuse() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let first = example_request(vendor, "conflict-1");
        h.trigger.handle_bytes(&first, None).await.unwrap();
        let changed = body(vendor, "conflict-1", |r| {
            r["deadline_seconds"] = 7200.into()
        });
        let err = h.trigger.handle_bytes(&changed, None).await.unwrap_err();
        match &err {
            HandlerError::KeyConflict {
                stored, received, ..
            } => {
                assert_ne!(stored, received);
                assert!(err.to_string().contains(stored) && err.to_string().contains(received));
            }
            other => panic!("{vendor}: expected a KeyConflict, got {other}"),
        }
        assert!(!err.is_retryable(), "{vendor}");
        assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
        // The original still redelivers fine.
        assert!(
            !h.trigger
                .handle_bytes(&first, None)
                .await
                .unwrap()
                .submitted_now
        );
        let manifest = h.run_to_end_for(vendor, "conflict-1").await;
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
    }
}

/// Case 2b: a `request_id` equal to another request's content hash does not take over that
/// request's key: both run, each its own job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_equal_to_a_content_hash_gets_its_own_run() {
    let h = Harness::start().await;
    let a = body(Carto, "x", |r| {
        r.as_object_mut().unwrap().remove("request_id");
    });
    let ta = h.trigger.handle_bytes(&a, None).await.unwrap();
    let hash = ta
        .key()
        .as_str()
        .split_once(['.', '-'])
        .unwrap()
        .1
        .to_owned();
    let b = body(Carto, &hash, |r| r["query"] = "CALL `p.d.other`()".into());
    let tb = h.trigger.handle_bytes(&b, None).await.unwrap();
    assert!(ta.submitted_now && tb.submitted_now);
    assert_ne!(ta.key(), tb.key());
    assert_ne!(ta.vendor_run_id(), tb.vendor_run_id());
    assert_eq!(h.sim.sim.control.runs_created(Carto), 2);
}

/// Case 8: `"attempt": 2` runs a finished key again, under its own key and result path; the
/// first attempt's results stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_two_reruns_a_finished_key_into_its_own_result_path() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let id = "rerun-1";
        let (_, first) = run_example(&h, vendor, id).await;
        assert_eq!(first.state, RunState::Succeeded);
        // A plain redelivery does not rerun.
        assert!(
            !h.trigger
                .handle_bytes(&example_request(vendor, id), None)
                .await
                .unwrap()
                .submitted_now
        );
        let rerun = body(vendor, id, |r| r["attempt"] = 2.into());
        let t2 = h.trigger.handle_bytes(&rerun, None).await.unwrap();
        assert!(t2.submitted_now, "{vendor}");
        assert_eq!(t2.key().as_str(), format!("{vendor}_2-{id}"));
        assert_eq!(h.sim.sim.control.runs_created(vendor), 2, "{vendor}");
        // A redelivered rerun is the same attempt.
        assert!(
            !h.trigger
                .handle_bytes(&rerun, None)
                .await
                .unwrap()
                .submitted_now
        );
        let execution = h.executions.wait(&t2.key().execution_name()).await.unwrap();
        let paths_2 = h.layout.paths(&t2.handle);
        let second: runbridge_core::Manifest = serde_json::from_slice(
            &std::fs::read(h.out.path().join(paths_2.manifest()))
                .unwrap_or_else(|e| panic!("{vendor}: {e} {:?}", execution.cause)),
        )
        .unwrap();
        assert_eq!(second.state, RunState::Succeeded);
        let paths_1 = h.layout.paths(&h.handle_for(vendor, id).await);
        assert_ne!(paths_1.manifest(), paths_2.manifest());
        assert!(
            h.out.path().join(paths_1.manifest()).exists(),
            "attempt 1 stays"
        );
    }
}

/// Case 9: an empty or partial claim file in the local ledger (a crash mid-write by an older
/// version, a hand edit) does not read as "claimed now" forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_partial_local_claim_file_does_not_hold_the_key_forever() {
    let h = Harness::start().await;
    let dir = h.out.path().join("_ledger");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, content) in [
        ("empty-1", &b""[..]),
        ("partial-1", &b"{\"key\":\"carto-par"[..]),
    ] {
        let file = dir.join(format!("carto-{id}.json"));
        std::fs::write(&file, content).unwrap();
        let body = example_request(Carto, id);
        // Fresh: maybe a writer at work; retry later.
        let err = h.trigger.handle_bytes(&body, None).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        // Abandoned (older than the grace): claimed afresh and submitted.
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        let t = h.trigger.handle_bytes(&body, None).await.unwrap();
        assert!(t.submitted_now);
        assert_eq!(h.run_to_end(id).await.state, RunState::Succeeded);
    }
}

/// Case 3: a collect that fails on our side leaves no FAILED manifest (the vendor run succeeded);
/// the execution fails with the reason, the ledger records it, and the next delivery of the same
/// request collects the succeeded vendor run without a second submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collect_failing_on_our_side_is_recovered_by_the_next_delivery_without_resubmitting() {
    let refusing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = refusing.clone();
    let h = Harness::start_with(HarnessOptions {
        wrap_sink: Some(Box::new(move |inner| {
            Arc::new(RefusingSink {
                inner,
                refusing: flag,
            })
        })),
        ..HarnessOptions::default()
    })
    .await;
    for vendor in VendorKind::ALL {
        refusing.store(true, Ordering::SeqCst);
        let id = "ourside-1";
        let body = example_request(vendor, id);
        let t = h.trigger.handle_bytes(&body, None).await.unwrap();
        let first = h.executions.wait(&t.key().execution_name()).await.unwrap();
        let cause = first.cause.clone().unwrap_or_default();
        assert!(
            cause.contains("collect failed on our side") && cause.contains("AccessDenied"),
            "{vendor}: {:?} {cause}",
            first.status
        );
        let manifest = h.out.path().join(h.layout.paths(&t.handle).manifest());
        assert!(
            !manifest.exists(),
            "{vendor}: no manifest blames the vendor run"
        );
        let entry = h.ledger.get(t.key()).await.unwrap().unwrap();
        assert_eq!(entry.collect_failure().unwrap().count, 1, "{vendor}");

        // The configuration is fixed; the same request is delivered again.
        refusing.store(false, Ordering::SeqCst);
        let again = h.trigger.handle_bytes(&body, None).await.unwrap();
        assert!(!again.submitted_now, "{vendor}");
        assert_eq!(
            h.sim.sim.control.runs_created(vendor),
            1,
            "{vendor}: no second submit"
        );
        let recovery = recovery_execution_name(t.key(), 1).unwrap();
        let second = h.executions.wait(&recovery).await.unwrap();
        let manifest: runbridge_core::Manifest = serde_json::from_slice(
            &std::fs::read(&manifest)
                .unwrap_or_else(|e| panic!("{vendor}: {e}: {:?}", second.cause)),
        )
        .unwrap();
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
        // A further redelivery finds the recovery, starts nothing new.
        h.trigger.handle_bytes(&body, None).await.unwrap();
        assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
    }
    let announced: Vec<_> = h
        .events
        .published()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        announced.len(),
        4,
        "one Run Completed per key: {announced:?}"
    );
}

/// Triggers `vendor`'s example request `id` and runs it to its end: the run's handle as the
/// trigger answered it, and its manifest.
async fn run_example(h: &Harness, vendor: VendorKind, id: &str) -> (RunHandle, Manifest) {
    let t = h
        .trigger
        .handle_bytes(&example_request(vendor, id), None)
        .await
        .unwrap();
    (t.handle, h.run_to_end_for(vendor, id).await)
}

/// A collector like the harness's, into the results root `root`, so it starts from nothing.
fn second_collector(h: &Harness, root: &str) -> Collector {
    Collector {
        vendors: h.collector.vendors.clone(),
        ledger: h.ledger.clone(),
        history: h.collector.history.clone(),
        finisher: Arc::new(Finisher {
            layout: ResultLayout::new(root).unwrap(),
            ..(*h.collector.finisher).clone()
        }),
        options: h.collector.options,
    }
}

/// Case 4: when PutEvents fails after the manifest was written, the retried collect finds the
/// manifest but no announcement, and publishes; a further retry publishes nothing more. The
/// event carries `<key>#<attempt>` as its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completion_event_is_published_again_when_put_events_failed_after_the_manifest() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let id = "event-1";
        let (handle, _) = run_example(&h, vendor, id).await;
        let published = Arc::new(LogEvents::default());
        let events = Arc::new(FailingEvents::new(published.clone(), 2));
        // A second collector into another root, so it starts from nothing.
        let again = second_collector(&h, "again");
        let collector = Collector {
            finisher: Arc::new(Finisher {
                events: events.clone(),
                ..(*again.finisher).clone()
            }),
            ..again
        };
        let input = CollectInput {
            handle: handle.clone(),
            outcome: CollectOutcome::Succeeded,
            reason: None,
            attribution: None,
        };
        for _ in 0..2 {
            let err = collector.collect(input.clone()).await.unwrap_err();
            assert!(err.is_retryable(), "{vendor}: {err}");
        }
        let outcome = collector.collect(input.clone()).await.unwrap();
        collector.collect(input.clone()).await.unwrap();
        let published = published.published();
        assert_eq!(
            published.len(),
            1,
            "{vendor}: announced once it worked, not again"
        );
        assert_eq!(published[0], outcome);
        assert_eq!(published[0].event_id, format!("{vendor}-{id}#1"));
        assert_eq!(published[0].state, RunState::Succeeded);
    }
}

/// `MANIFEST_SHA256=false`: the manifest lists every file without `sha256` and with the
/// CRC-64/NVME of the bytes landed; the default (the harness's collector) lists both. AMC's
/// results carry an MD5 ETag, so its download is still verified with the SHA-256 off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_without_the_manifest_sha256_still_records_the_crc64nvme() {
    let h = Harness::start().await;
    assert!(h.collector.options.sha256, "on by default");
    for vendor in VendorKind::ALL {
        let id = "no-sha-1";
        let (handle, with) = run_example(&h, vendor, id).await;
        let collector = Collector {
            options: CollectOptions { sha256: false },
            ..second_collector(&h, "no-sha")
        };
        let outcome = collector
            .collect(CollectInput {
                handle: handle.clone(),
                outcome: CollectOutcome::Succeeded,
                reason: None,
                attribution: None,
            })
            .await
            .unwrap();
        let text = std::fs::read_to_string(h.out.path().join(&outcome.manifest_key)).unwrap();
        assert!(!text.contains("sha256"), "{vendor}: {text}");
        let without: Manifest = serde_json::from_str(&text).unwrap();
        if vendor == Amc {
            assert!(!without.files.is_empty(), "AMC's example run has files");
        }
        assert_eq!(without.files.len(), with.files.len(), "{vendor}");
        for (file, default) in without.files.iter().zip(&with.files) {
            let landed = std::fs::read(h.out.path().join(&file.key)).unwrap();
            let crc = ObjectChecksum::of(&landed).crc64nvme_base64();
            assert_eq!(file.sha256, "", "{vendor}: absent from the JSON");
            assert_eq!(file.crc64nvme.as_deref(), Some(crc.as_str()), "{vendor}");
            assert_eq!(
                (file.size_bytes, file.rows, &file.crc64nvme),
                (default.size_bytes, default.rows, &default.crc64nvme),
                "{vendor}: the same file as the default collect's"
            );
            assert_eq!(
                default.sha256,
                hex::encode(Sha256::digest(&landed)),
                "{vendor}"
            );
        }
    }
}

/// Case 6 (downloads): a download that sends its headers and some bytes, then stalls, fails
/// after the client's idle timeout (2 s in the fast test config) instead of hanging collect; the
/// retried collect lands the whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_stalls_after_its_headers_times_out_and_is_retried() {
    let h = Harness::start().await;
    // CARTO exports are a POST (never cached); AMC results are signed GETs.
    for (vendor, method, path) in [(Amc, "GET", "/__sim/files/"), (Carto, "POST", "/query")] {
        let id = "stall-1";
        h.sim.sim.faults.inject(FaultRule::new(
            vendor,
            Some(method),
            path,
            Fault::StallBody {
                keep_bytes: 100,
                millis: 120_000,
            },
            1,
        ));
        let started = std::time::Instant::now();
        let (_, manifest) = run_example(&h, vendor, id).await;
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
        assert_eq!(manifest.files.len(), 1, "{vendor}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{vendor}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            h.sim.sim.faults.pending(),
            0,
            "{vendor}: the stall was served"
        );
    }
}

/// A run the simulator keeps running until it is cancelled.
fn endless(h: &Harness, vendor: VendorKind) {
    h.sim.sim.control.push_script(
        vendor,
        RunScript {
            outcome: SimOutcome::NeverFinish,
            queue_seconds: 10.0,
            ..RunScript::default()
        },
    );
}

/// The simulator's count of cancel calls for `vendor` (Adobe has no cancel).
fn cancel_calls(h: &Harness, vendor: VendorKind) -> u64 {
    match vendor {
        Amc => h.sim.sim.control.requests("amc.cancel"),
        Amperity => h.sim.sim.control.requests("amperity.stop"),
        Carto => h.sim.sim.control.requests("carto.cancel"),
        Adobe => 0,
    }
}

/// The run's state as the vendor reports it now (through the vendor client, from the
/// simulator), after the few simulated seconds a cancel takes to settle.
async fn vendor_state(h: &Harness, handle: &RunHandle) -> RunState {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let vendor = h.collector.vendors.for_request(&handle.request).unwrap();
    vendor
        .status(RunRef {
            request: &handle.request,
            vendor_run_id: handle.vendor_run_id.as_deref().unwrap(),
        })
        .await
        .unwrap()
        .state
}

/// The manifest the ledger entry of `key` points at (from the ledger, not the execution input).
async fn manifest_of(h: &Harness, key: &IdempotencyKey) -> (RunHandle, Option<Vec<u8>>) {
    let handle = h.ledger.get(key).await.unwrap().unwrap().handle().unwrap();
    let path = h.out.path().join(h.layout.paths(&handle).manifest());
    (handle, std::fs::read(path).ok())
}

/// Case 7: stopping a run's execution (`runbridge cancel`) reaches the vendor. The stop's status
/// change goes to the stop handler, which cancels the vendor run (AMC PUT CANCELLED, Amperity
/// stop, CARTO DELETE; Adobe has none and says so), writes a CANCELLED manifest saying who
/// stopped it and what the cancel did, and announces it once. A duplicate status change
/// changes nothing; attempt 2 then runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_execution_cancels_the_vendor_run_once_and_attempt_two_runs() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        let id = "stop-1";
        endless(&h, vendor);
        let t = h
            .trigger
            .handle_bytes(&example_request(vendor, id), None)
            .await
            .unwrap();
        // Let it poll a few times: the run is running at the vendor.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            h.cancel(t.key()).unwrap(),
            "{vendor}: the execution was running"
        );
        let execution = h.executions.wait(&t.key().execution_name()).await.unwrap();
        assert_eq!(execution.status, ExecutionStatus::Aborted, "{vendor}");

        let (handle, manifest) = manifest_of(&h, t.key()).await;
        let manifest_bytes = manifest.unwrap_or_else(|| panic!("{vendor}: no manifest"));
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest.state, RunState::Cancelled, "{vendor}");
        let reason = manifest.reason.clone().unwrap();
        assert!(
            reason.contains("ABORTED") && reason.contains(OPERATOR_STOP_CAUSE),
            "{vendor}: {reason}"
        );
        let at_vendor = vendor_state(&h, &handle).await;
        if vendor == Adobe {
            assert!(reason.contains("has no cancel"), "{reason}");
            assert_eq!(at_vendor, RunState::Running, "Adobe runs on");
        } else {
            assert!(reason.contains("cancelled"), "{vendor}: {reason}");
            assert_eq!(at_vendor, RunState::Cancelled, "{vendor}");
            assert_eq!(cancel_calls(&h, vendor), 1, "{vendor}");
        }
        let announced = |h: &Harness| {
            h.events
                .published()
                .into_iter()
                .filter(|e| e.key == t.key().as_str())
                .collect::<Vec<_>>()
        };
        let events = announced(&h);
        assert_eq!(events.len(), 1, "{vendor}: {events:?}");
        assert_eq!(events[0].state, RunState::Cancelled);
        assert_eq!(events[0].event_id, format!("{vendor}-{id}#1"));
        assert_eq!(events[0].detail_type(), runbridge_core::RUN_FAILED);

        // The same status change again (EventBridge delivers at least once), and a second stop.
        let duplicate = ExecutionStopped {
            name: t.key().execution_name(),
            status: StopStatus::Aborted,
            execution_arn: None,
            error: None,
            cause: None,
        }
        .to_event(LOCAL_STATE_MACHINE_ARN, time::OffsetDateTime::now_utc());
        h.stops.deliver(duplicate).await;
        assert!(matches!(
            h.stops.handled().last(),
            Some(StopHandled::AlreadyFinished {
                announced_now: false,
                ..
            })
        ));
        assert!(
            !h.cancel(t.key()).unwrap(),
            "{vendor}: nothing left to stop"
        );
        assert_eq!(announced(&h).len(), 1, "{vendor}: not announced again");
        assert_eq!(cancel_calls(&h, vendor), u64::from(vendor != Adobe));
        assert_eq!(
            manifest_of(&h, t.key()).await.1.unwrap(),
            manifest_bytes,
            "{vendor}: the manifest is unchanged"
        );

        // The cancelled key reruns as attempt 2.
        let rerun = body(vendor, id, |r| r["attempt"] = 2.into());
        let t2 = h.trigger.handle_bytes(&rerun, None).await.unwrap();
        assert!(t2.submitted_now, "{vendor}");
        assert_eq!(h.sim.sim.control.runs_created(vendor), 2, "{vendor}");
        h.executions.wait(&t2.key().execution_name()).await.unwrap();
        let second: Manifest =
            serde_json::from_slice(&manifest_of(&h, t2.key()).await.1.unwrap()).unwrap();
        assert_eq!(second.state, RunState::Succeeded, "{vendor}");
    }
    assert!(h.dead_letters.sent().is_empty());
}

/// Case 7, timeout: an execution that reaches the state machine's `TimeoutSeconds` cancels its
/// vendor run the same way, and the manifest says it timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_execution_cancels_the_vendor_run() {
    let h = Harness::start_with(HarnessOptions {
        execution_timeout_seconds: Some(900),
        ..HarnessOptions::default()
    })
    .await;
    let vendor = Amc;
    endless(&h, vendor);
    let t = h
        .trigger
        .handle_bytes(&example_request(vendor, "timeout-1"), None)
        .await
        .unwrap();
    let execution = h.executions.wait(&t.key().execution_name()).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::TimedOut);
    let (handle, manifest) = manifest_of(&h, t.key()).await;
    let manifest: Manifest = serde_json::from_slice(&manifest.unwrap()).unwrap();
    assert_eq!(manifest.state, RunState::Cancelled);
    assert_eq!(
        manifest.attribution,
        Some(runbridge_core::Attribution::Platform)
    );
    let reason = manifest.reason.unwrap();
    assert!(
        reason.contains("TIMED_OUT") && reason.contains("cancelled"),
        "{reason}"
    );
    assert_eq!(vendor_state(&h, &handle).await, RunState::Cancelled);
    assert_eq!(cancel_calls(&h, vendor), 1);
    assert_eq!(h.events.published().len(), 1);
}

/// Case 7, a cancel the vendor keeps refusing for now (503): the stop handler fails, so the
/// event is retried (Lambda's two asynchronous retries) and then dead-lettered with the
/// execution's name, the key; no manifest claims a cancel that did not happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_keeps_failing_ends_in_the_dlq_naming_the_key() {
    let h = Harness::start().await;
    let vendor = Carto;
    endless(&h, vendor);
    let t = h
        .trigger
        .handle_bytes(&example_request(vendor, "stop-503"), None)
        .await
        .unwrap();
    h.sim.sim.faults.inject(FaultRule::new(
        vendor,
        Some("DELETE"),
        "/job/",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        1_000,
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.cancel(t.key()).unwrap());
    h.executions.wait(&t.key().execution_name()).await.unwrap();
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (event, reason) = &letters[0];
    assert!(
        event.contains(&format!("\"name\":\"{}\"", t.key())),
        "{event}"
    );
    assert!(
        reason.error.contains("503") || reason.error.contains("navailable"),
        "{reason:?}"
    );
    assert!(
        manifest_of(&h, t.key()).await.1.is_none(),
        "no CANCELLED manifest"
    );
    assert!(h.events.published().is_empty());
    assert!(h.stops.handled().is_empty());
}

/// Case 7, a lost event: the stop handler wrote the CANCELLED manifest, but `PutEvents` failed
/// on all three tries (the handling and its two retries), so the status change went to the dead
/// letters and nothing announced the manifest. A redelivery of the request finds the stopped
/// execution and announces it; a further redelivery finds the announcement recorded and
/// publishes nothing more. Nothing is submitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_announces_a_stopped_runs_manifest_whose_event_was_lost() {
    let failures = Arc::new(AtomicU32::new(0));
    let failing = failures.clone();
    let h = Harness::start_with(HarnessOptions {
        wrap_events: Some(Box::new(move |inner| {
            Arc::new(FailingEvents {
                inner,
                failures: failing,
            })
        })),
        ..HarnessOptions::default()
    })
    .await;
    let vendor = Amperity;
    endless(&h, vendor);
    let body = example_request(vendor, "lost-event-1");
    let t = h.trigger.handle_bytes(&body, None).await.unwrap();
    failures.store(3, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.cancel(t.key()).unwrap());
    h.executions.wait(&t.key().execution_name()).await.unwrap();
    assert_eq!(failures.load(Ordering::SeqCst), 0, "three publishes failed");
    assert_eq!(h.dead_letters.sent().len(), 1, "the stop was dead-lettered");
    let (_, manifest) = manifest_of(&h, t.key()).await;
    let manifest: Manifest =
        serde_json::from_slice(&manifest.expect("CANCELLED manifest")).unwrap();
    assert_eq!(manifest.state, RunState::Cancelled);
    assert!(h.events.published().is_empty(), "not announced yet");

    let again = h.trigger.handle_bytes(&body, None).await.unwrap();
    assert_eq!(again.execution, StartOutcome::AlreadyStarted);
    assert!(!again.submitted_now);
    let published = h.events.published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].event_id, format!("{}#1", t.key()));
    assert_eq!(published[0].state, RunState::Cancelled);

    h.trigger.handle_bytes(&body, None).await.unwrap();
    assert_eq!(h.events.published().len(), 1, "announced once it worked");
    assert_eq!(h.sim.sim.control.runs_created(vendor), 1);
}

/// Two deliveries reconcile the same stale claim (a crash after the vendor accepted the run,
/// before the record). The first records the run and starts the execution, whose collect fails
/// on our side and records `collect_failed`; the second, which read the claim before the first
/// recorded, finds the run recorded and takes the stored entry instead of overwriting it — so
/// `collect_failed` stays, and it starts the recovery execution, which collects (found by the
/// lifecycle model: the overwrite erased the failure and every later delivery found the failed
/// execution).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconciler_keeps_the_collect_failure_the_first_runs_execution_recorded() {
    let refusing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = refusing.clone();
    let h = Harness::start_with(HarnessOptions {
        claim_lease: time::Duration::seconds(1),
        wrap_sink: Some(Box::new(move |inner| {
            Arc::new(RefusingSink {
                inner,
                refusing: flag,
            })
        })),
        ..HarnessOptions::default()
    })
    .await;
    let vendor = Amperity;
    let body = example_request(vendor, "two-reconcilers-1");
    let key = Harness::key_for(vendor, "two-reconcilers-1");
    let crashing = h.trigger_with(
        Arc::new(LedgerDouble::crashing_record(h.ledger.clone())),
        h.executions.clone(),
    );
    crashing.handle_bytes(&body, None).await.unwrap_err();
    let stale = h.ledger.get(&key).await.unwrap().unwrap();
    assert!(stale.run().is_none());
    tokio::time::sleep(Duration::from_millis(20)).await; // past the lease (simulated second)

    let first = h.trigger.handle_bytes(&body, None).await.unwrap();
    assert!(!first.submitted_now, "reconciled");
    h.executions.wait(&key.execution_name()).await.unwrap();
    let failed = h.ledger.get(&key).await.unwrap().unwrap();
    assert_eq!(failed.collect_failure().map(|f| f.count), Some(1));

    refusing.store(false, Ordering::SeqCst);
    let second = h.trigger_with(
        // Its claim answers the entry as it was before the first delivery recorded the run.
        Arc::new(
            LedgerDouble::around(h.ledger.clone())
                .at(LedgerOp::Claim, LedgerFault::StaleClaim(Box::new(stale))),
        ),
        h.executions.clone(),
    );
    let t = second.handle_bytes(&body, None).await.unwrap();
    assert_eq!(t.vendor_run_id(), first.vendor_run_id());
    assert_eq!(t.execution, StartOutcome::Started, "the recovery execution");
    let entry = h.ledger.get(&key).await.unwrap().unwrap();
    assert_eq!(entry.collect_failure().map(|f| f.count), Some(1), "kept");
    let recovery = recovery_execution_name(&key, 1).unwrap();
    h.executions.wait(&recovery).await.unwrap();
    let (_, manifest) = manifest_of(&h, &key).await;
    let manifest: Manifest = serde_json::from_slice(&manifest.expect("collected")).unwrap();
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(h.sim.sim.control.runs_created(vendor), 1);
}

/// Case 7, edges: a stopped execution whose key has no ledger entry, or only a claim without a
/// vendor run id (a submitter at work), cancels nothing and writes nothing; the claim is left
/// for its lease (releasing it could double the run being created); a name that is no key is
/// ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_without_a_recorded_vendor_run_cancels_nothing_and_keeps_the_claim() {
    let h = Harness::start().await;
    let stop = |name: &str| ExecutionStopped {
        name: name.to_owned(),
        status: StopStatus::Aborted,
        execution_arn: None,
        error: None,
        cause: None,
    };
    let none = execution_stopped(&h.stops.stopper, stop("carto-nothing-1"))
        .await
        .unwrap();
    assert!(matches!(none, StopHandled::NoVendorRun { .. }), "{none:?}");

    let body = example_request(Carto, "claimed-1");
    let request = runbridge_core::RunRequest::from_json(&body).unwrap();
    let key = Harness::key_for(Carto, "claimed-1");
    let now = time::OffsetDateTime::now_utc();
    h.ledger
        .claim(LedgerEntry::claimed(
            key.clone(),
            request.resolve(now),
            runbridge_core::Fingerprint::of(&request),
            now,
            now + runbridge_core::LEGACY_CLAIM_LEASE,
        ))
        .await
        .unwrap();
    let claimed = execution_stopped(&h.stops.stopper, stop(key.as_str()))
        .await
        .unwrap();
    assert!(
        matches!(&claimed, StopHandled::NoVendorRun { detail, .. } if detail.contains("lease")),
        "{claimed:?}"
    );
    assert!(
        h.ledger.get(&key).await.unwrap().is_some(),
        "the claim stays"
    );
    let other = execution_stopped(&h.stops.stopper, stop("someone-elses-run"))
        .await
        .unwrap();
    assert!(matches!(other, StopHandled::Ignored { .. }), "{other:?}");
    assert_eq!(h.sim.sim.control.requests("carto.cancel"), 0);
    assert!(h.events.published().is_empty());
}

/// A run of a named profile is cancelled with that profile's account: the EU instance refuses
/// the default account's token, so a cancel sent with the default client would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_named_profile_run_cancels_it_with_that_profiles_account() {
    let h = Harness::start().await;
    endless(&h, Amc);
    let mut r: serde_json::Value =
        serde_json::from_slice(&example_request(Amc, "stop-eu-1")).unwrap();
    r["profile"] = harness::AMC_EU.into();
    r["instance_id"] = harness::AMC_EU_INSTANCE.into();
    let t = h
        .trigger
        .handle_bytes(&serde_json::to_vec(&r).unwrap(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.cancel(t.key()).unwrap(), "the execution was running");
    h.executions.wait(&t.key().execution_name()).await.unwrap();
    let (handle, manifest) = manifest_of(&h, t.key()).await;
    let manifest: Manifest = serde_json::from_slice(&manifest.expect("a manifest")).unwrap();
    assert_eq!(manifest.state, RunState::Cancelled);
    assert_eq!(manifest.profile, harness::AMC_EU);
    let reason = manifest.reason.unwrap();
    assert!(
        reason.contains("cancelled") && !reason.contains("failed"),
        "{reason}"
    );
    assert_eq!(vendor_state(&h, &handle).await, RunState::Cancelled);
}

/// Case 1b: a submit the vendor refused for good at the trigger (its answer blames the request:
/// a 400, an unknown flow) ends where everyone can see it, as any failure the customer caused:
/// a FAILED manifest and a `Run Failed` event agreeing on `customer` and on the vendor's words,
/// a `RunsFailed` count split by that attribution, and the error (the DLQ's reason) saying the
/// same; the key is released, so the corrected request resent with the same `request_id` runs,
/// and its own end replaces the refusal's manifest and is announced under its own event id.
/// AMC submits at admission (its profile limits runs at once): its refusal is pinned in
/// `attribution.rs` and `shared/handlers/tests/handlers/admit.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submit_ends_failed_in_every_view_and_the_corrected_resend_runs() {
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    runbridge_handlers::metrics::set_sink(Some(Arc::new(move |line: &str| {
        sink.lock().unwrap().push(line.to_owned())
    })));
    let h = Harness::start().await;
    for vendor in [Amperity, Adobe, Carto] {
        let id = "refused-for-good";
        let key = Harness::key_for(vendor, id);
        let refused = match vendor {
            // Adobe's doc: an unknown flow id is a 400.
            Adobe => body(vendor, id, |r| {
                r["flow_id"] = "9f1a2b3c-0000-4000-8000-0000000000ff".into()
            }),
            _ => {
                h.fault_submits(
                    vendor,
                    Fault::Status {
                        status: 400,
                        retry_after: None,
                    },
                    1,
                );
                example_request(vendor, id)
            }
        };
        let err = h.trigger.handle_bytes(&refused, None).await.unwrap_err();
        assert!(!err.is_retryable(), "{vendor}: {err}");
        assert_eq!(err.attribution(), runbridge_core::Attribution::Customer);
        assert_eq!(h.sim.sim.control.runs_created(vendor), 0, "{vendor}");

        // The manifest, beside where the run would have landed, and its event.
        let event = h
            .events
            .published()
            .into_iter()
            .find(|e| e.key == key.as_str())
            .unwrap_or_else(|| panic!("{vendor}: no Run Failed event"));
        assert_eq!(event.detail_type(), runbridge_core::RUN_FAILED);
        assert_eq!(event.state, RunState::Failed);
        assert_eq!(
            event.attribution,
            Some(runbridge_core::Attribution::Customer)
        );
        assert!(event.vendor_run_id.is_empty(), "{vendor}: nothing created");
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(h.out.path().join(&event.manifest_key)).unwrap())
                .unwrap();
        assert_eq!(RunOutcome::of(&manifest, event.manifest_key.clone()), event);
        let reason = manifest.reason.clone().unwrap();
        assert!(
            reason.contains(&err.to_string()),
            "{vendor}: the manifest says what the error says: {reason} / {err}"
        );
        assert!(
            reason.contains("resend it with the same request_id"),
            "{reason}"
        );
        let failed: Vec<serde_json::Value> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|d: &serde_json::Value| {
                d["key"] == key.as_str() && d.get("RunsFailed").is_some()
            })
            .collect();
        assert_eq!(failed.len(), 1, "{vendor}: one RunsFailed");
        assert_eq!(failed[0]["Attribution"], "customer", "{}", failed[0]);
        assert_eq!(failed[0]["Vendor"], vendor.as_str());
        let ledger_file = h.out.path().join("_ledger").join(format!("{key}.json"));
        assert!(!ledger_file.exists(), "{vendor}: the claim was released");

        // The corrected request, same request_id: it runs, and its end is its own.
        let triggered = h
            .trigger
            .handle_bytes(&example_request(vendor, id), None)
            .await
            .unwrap_or_else(|e| panic!("{vendor}: the corrected resend is refused: {e}"));
        assert!(triggered.submitted_now, "{vendor}");
        let manifest = h.run_to_end_for(vendor, id).await;
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
        let events: Vec<_> = h
            .events
            .published()
            .into_iter()
            .filter(|e| e.key == key.as_str())
            .collect();
        assert_eq!(events.len(), 2, "{vendor}: {events:?}");
        assert_eq!(events[1].state, RunState::Succeeded);
        assert_eq!(events[1].event_id, format!("{key}#1"));
        assert_ne!(
            events[0].event_id, events[1].event_id,
            "{vendor}: the run's event is no duplicate of the refusal's"
        );
    }
    runbridge_handlers::metrics::set_sink(None);
}
