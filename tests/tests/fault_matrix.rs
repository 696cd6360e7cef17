//! The fault matrix: each vendor against the simulators, through the real handlers and the
//! deployed state machine (`DirSink`, `DirLedger`, `LocalExecutions`), one fault per case.
//!
//! Every case checks the same three things:
//! 1. no duplicate vendor run (`runs_created`); where a vendor cannot look a lost run up again
//!    (CARTO) the request stops for an operator instead of being resubmitted;
//! 2. the results directory holds complete files and the manifest listing them, or nothing: no
//!    `.partial` file, nothing left under `_staging/`, no part without a manifest that lists it
//!    with its size, SHA-256 and CRC-64/NVME, and every landed file is byte for byte what the vendor served;
//! 3. the final state and reason.
//!
//! Each test starts one deployment and runs the case for every vendor it applies to at once.
//! `docs/FAULT-MATRIX.md` is the table of these cases.

use runbridge_system_tests::harness;
use runbridge_test_support::doubles::{LedgerDouble, LedgerFault, LedgerOp};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use harness::{example_request, Harness, HarnessOptions, DEFAULT_ROWS};
use runbridge_adapters_local::{LocalExecutions, LOCAL_COLLECT_ARN, LOCAL_POLL_ARN};
use runbridge_asl::{Execution, ExecutionStatus, HistoryEventKind, TaskFailure, TaskInvoker};
use runbridge_core::{Manifest, RunState, VendorKind, MANIFEST_NAME};
use runbridge_handlers::collect::{CollectInput, Outcome as CollectOutcome};
use runbridge_handlers::ports::{ObjectChecksum, PartWriter, StagedObject, StartOutcome};
use runbridge_handlers::trigger::Triggered;
use runbridge_handlers::{Executions, HandlerError, ResultSink};
use runbridge_sim::{csvgen, Fault, FaultRule, Outcome, RunScript, Sim, SimConfig};
use runbridge_vendors::http::RetryConfig;
use sha2::{Digest, Sha256};
use VendorKind::{Adobe, Amc, Amperity, Carto};

/// Vendors whose runs produce result files: AMC's downloads and CARTO's export query (the CARTO
/// example request has one).
const WITH_FILES: [VendorKind; 2] = [Amc, Carto];

/// The trigger's claim lease in these tests, on the simulator clock. Thirty simulated minutes are
/// 0.9 s of real time at the harness speed, so a redelivery right after a failed trigger is surely
/// inside the lease; tests leave it by advancing the simulator clock past it.
const LEASE: time::Duration = time::Duration::minutes(30);

/// The vendor clients' whole-request timeout in these tests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

fn options() -> HarnessOptions {
    HarnessOptions {
        retry: RetryConfig {
            request_timeout: CLIENT_TIMEOUT,
            ..RetryConfig::fast()
        },
        claim_lease: LEASE,
        ..HarnessOptions::default()
    }
}

async fn start() -> Harness {
    Harness::start_with(options()).await
}

/// Path fragment of the status read (AMC's also matches `downloadUrls`, read after success).
fn status_path(vendor: VendorKind) -> &'static str {
    match vendor {
        Amc => "/workflowExecutions/",
        Amperity => "/workflow/runs/",
        Adobe => "/flowservice/runs/",
        Carto => "/job/",
    }
}

/// The method of a result download: CARTO's export is a `POST /query` (never cached).
fn download_method(vendor: VendorKind) -> &'static str {
    match vendor {
        Carto => "POST",
        _ => "GET",
    }
}

/// Path fragment of a result download, and the simulator's counter of served downloads.
fn download(vendor: VendorKind) -> (&'static str, &'static str) {
    match vendor {
        Amc => ("/__sim/files/", "amc.download"),
        Carto => ("/query", "carto.export"),
        other => panic!("{other} runs produce no file"),
    }
}

fn request_id(case: &str, vendor: VendorKind) -> String {
    format!("{case}-{vendor}")
}

fn files_per_run(vendor: VendorKind) -> usize {
    usize::from(WITH_FILES.contains(&vendor))
}

/// Runs `case` for every vendor in `vendors` at once.
async fn for_each<F, Fut>(vendors: &[VendorKind], case: F)
where
    F: Fn(VendorKind) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    join_all(vendors.iter().map(|&v| case(v))).await;
}

/// Delivers `vendor`'s example request for `case` (with a request id of its own) once.
async fn deliver(h: &Harness, vendor: VendorKind, case: &str) -> Result<Triggered, HandlerError> {
    h.trigger
        .handle_bytes(&example_request(vendor, &request_id(case, vendor)), None)
        .await
}

/// A delivery that the claim lease turns away: retryable, and no vendor call.
async fn assert_turned_away_during_lease(h: &Harness, vendor: VendorKind, case: &str) {
    let runs_before = h.sim.sim.control.runs_created(vendor);
    let err = deliver(h, vendor, case)
        .await
        .expect_err("a redelivery inside the lease waits");
    assert!(err.is_retryable(), "{vendor}: {err}");
    assert!(
        err.to_string().contains("being submitted"),
        "{vendor}: {err}"
    );
    assert_eq!(
        h.sim.sim.control.runs_created(vendor),
        runs_before,
        "{vendor}: no submit during the lease"
    );
}

fn pass_the_lease(h: &Harness) {
    h.sim.sim.clock.advance(LEASE.whole_seconds() as f64 + 1.0);
}

/// Waits for the run and checks the vendor-run count.
async fn finish(h: &Harness, vendor: VendorKind, case: &str, vendor_runs: u64) -> Manifest {
    let manifest = h.run_to_end_for(vendor, &request_id(case, vendor)).await;
    assert_eq!(
        h.sim.sim.control.runs_created(vendor),
        vendor_runs,
        "{vendor}: vendor runs"
    );
    manifest
}

async fn execution(h: &Harness, vendor: VendorKind, case: &str) -> Execution {
    let key = Harness::key_for(vendor, &request_id(case, vendor));
    h.executions
        .wait(&key.execution_name())
        .await
        .expect("execution started")
}

/// Waits the Poll state asked for, in order.
fn poll_waits(execution: &Execution) -> Vec<u64> {
    execution
        .history
        .iter()
        .filter(|e| e.state.as_deref() == Some("Poll"))
        .filter_map(|e| match &e.kind {
            HistoryEventKind::TaskSucceeded { output } => output["wait_seconds"].as_u64(),
            _ => None,
        })
        .collect()
}

/// Retries Step Functions scheduled for `state`.
fn retries(execution: &Execution, state: &str) -> usize {
    execution
        .history
        .iter()
        .filter(|e| e.state.as_deref() == Some(state))
        .filter(|e| matches!(e.kind, HistoryEventKind::RetryScheduled { .. }))
        .count()
}

/// A run that succeeded: its files are exactly what the vendor served, and one "Run Completed"
/// event announced it.
fn assert_succeeded(h: &Harness, manifest: &Manifest, files: usize) {
    let vendor = manifest.vendor;
    assert_eq!(
        manifest.state,
        RunState::Succeeded,
        "{vendor}: {:?}",
        manifest.reason
    );
    assert_eq!(manifest.reason, None, "{vendor}");
    assert_landed_as_served(h, manifest, files);
    assert_announced_once(h, manifest, "Run Completed");
}

fn assert_landed_as_served(h: &Harness, manifest: &Manifest, files: usize) {
    let vendor = manifest.vendor;
    assert_eq!(manifest.files.len(), files, "{vendor}: files");
    for (part, file) in manifest.files.iter().enumerate() {
        let landed = std::fs::read(h.out.path().join(&file.key)).unwrap();
        let served = csvgen::generate(
            Sim::seed_for(&manifest.vendor_run_id, part as u32),
            DEFAULT_ROWS,
        );
        assert!(
            landed == served,
            "{vendor}: {} ({} bytes) is not what the vendor served ({} bytes)",
            file.key,
            landed.len(),
            served.len()
        );
        assert_eq!(
            file.rows,
            DEFAULT_ROWS + 1,
            "{vendor}: rows with the header"
        );
    }
}

fn assert_announced_once(h: &Harness, manifest: &Manifest, detail_type: &str) {
    let events: Vec<_> = h
        .events
        .published()
        .into_iter()
        .filter(|e| e.key == manifest.key)
        .collect();
    assert_eq!(events.len(), 1, "{}: {events:?}", manifest.vendor);
    assert_eq!(events[0].detail_type(), detail_type, "{}", manifest.vendor);
}

/// Invariant 2 over the whole results directory: complete files and their manifest, or nothing.
/// Also checks that every injected fault happened, so no case passes by missing its fault.
fn assert_results_whole(h: &Harness) {
    assert_eq!(h.sim.sim.faults.pending(), 0, "injected faults not used");
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<String>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // The ledger and the runs' bookkeeping markers (announced, …) are not results.
            if relative == "_ledger" || relative == "_runs" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, files);
                continue;
            }
            assert!(!relative.ends_with(".partial"), "partial file {relative}");
            assert!(
                !relative.starts_with("_staging/"),
                "staging file left: {relative}"
            );
            let (parent, name) = relative.rsplit_once('/').unwrap_or(("", &relative));
            files
                .entry(parent.to_owned())
                .or_default()
                .push(name.to_owned());
        }
    }
    let mut dirs = BTreeMap::new();
    walk(h.out.path(), h.out.path(), &mut dirs);
    for (dir, names) in dirs {
        let parts: HashSet<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != MANIFEST_NAME)
            .collect();
        let manifest_path = h.out.path().join(&dir).join(MANIFEST_NAME);
        let Ok(bytes) = std::fs::read(&manifest_path) else {
            panic!("{dir}: files {parts:?} without a manifest");
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
        let listed: HashSet<&str> = manifest
            .files
            .iter()
            .map(|f| f.key.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(parts, listed, "{dir}: files on disk vs manifest");
        for file in &manifest.files {
            let landed = std::fs::read(h.out.path().join(&file.key)).unwrap();
            assert_eq!(landed.len() as u64, file.size_bytes, "{}", file.key);
            assert_eq!(
                hex::encode(Sha256::digest(&landed)),
                file.sha256,
                "{}",
                file.key
            );
            assert_eq!(
                file.crc64nvme.as_deref(),
                Some(ObjectChecksum::of(&landed).crc64nvme_base64().as_str()),
                "{}",
                file.key
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults on the status read: the poll loop waits them out.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_429_with_retry_after_is_waited_out_at_the_workflow_level() {
    const CASE: &str = "status-429";
    // Longer than the client's in-process Retry-After budget, so the Poll state answers it with
    // a Step Functions wait (free) rather than a sleeping Lambda.
    const RETRY_AFTER: u64 = 120;
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            h.sim.sim.faults.inject(FaultRule::new(
                vendor,
                Some("GET"),
                status_path(vendor),
                Fault::Status {
                    status: 429,
                    retry_after: Some(RETRY_AFTER),
                },
                1,
            ));
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
            let waits = poll_waits(&execution(h, vendor, CASE).await);
            // At least the Retry-After: the policy's own wait is longer when a loaded machine
            // lets the sped-up simulated clock age the run past ~140 s before its first poll.
            assert!(
                waits.first().is_some_and(|w| *w >= RETRY_AFTER),
                "{vendor}: the throttled poll waits the vendor's Retry-After: {waits:?}"
            );
        }
    })
    .await;
    assert_eq!(
        h.sim.sim.faults.pending(),
        0,
        "every injected 429 was answered"
    );
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500_and_503_burst_is_waited_out() {
    const CASE: &str = "status-5xx";
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            // Eight failures, all used (checked at the end): more than one poll's six in-process
            // attempts, so at least one Poll answers "vendor unavailable, wait" instead of a
            // state; reading that as a failure would fail the run.
            for status in [500, 503] {
                h.sim.sim.faults.inject(FaultRule::new(
                    vendor,
                    Some("GET"),
                    status_path(vendor),
                    Fault::Status {
                        status,
                        retry_after: None,
                    },
                    4,
                ));
            }
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_slower_than_the_client_timeout_is_retried() {
    const CASE: &str = "status-slow";
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            h.sim.sim.faults.inject(FaultRule::new(
                vendor,
                Some("GET"),
                status_path(vendor),
                Fault::Delay {
                    millis: CLIENT_TIMEOUT.as_millis() as u64 + 1_000,
                },
                1,
            ));
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_connection_drops_are_retried() {
    const CASE: &str = "status-drop";
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            h.sim.sim.faults.inject(FaultRule::new(
                vendor,
                Some("GET"),
                status_path(vendor),
                Fault::DropConnection,
                3,
            ));
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

// ---------------------------------------------------------------------------------------------
// Faults on the submit: the outcome is unknown, so the vendor is asked before anything is resent.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_submit_answer_is_reconciled_without_a_second_run() {
    const CASE: &str = "submit-lost";
    let h = start().await;
    for_each(&[Amc, Amperity, Adobe], |vendor| {
        let h = &h;
        async move {
            // The vendor creates the run, then the connection breaks before the answer.
            h.fault_submits(vendor, Fault::DropResponse, 1);
            let triggered = deliver(h, vendor, CASE)
                .await
                .unwrap_or_else(|e| panic!("{vendor}: reconciled in the same delivery: {e}"));
            assert!(triggered.submitted_now, "{vendor}");
            assert_eq!(triggered.execution, StartOutcome::Started);
            assert!(
                h.sim.sim.control.requests(&format!("{vendor}.list")) >= 1,
                "{vendor}: the runs were listed"
            );
            let again = deliver(h, vendor, CASE).await.unwrap();
            assert!(
                !again.submitted_now,
                "{vendor}: a redelivery reuses the run"
            );
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_eq!(
                Some(manifest.vendor_run_id.as_str()),
                triggered.vendor_run_id()
            );
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

/// The id of the run the last submit POST created, as the simulator answered it (the recorder
/// sits inside the fault layer, so a dropped answer is still recorded).
fn created_by_last_submit(h: &Harness, vendor: VendorKind) -> String {
    let exchange = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .rev()
        .find(|e| {
            e.vendor == vendor
                && e.method == "POST"
                && e.path.ends_with(harness::submit_path(vendor))
                && (200..300).contains(&e.status)
        })
        .unwrap_or_else(|| panic!("{vendor}: a submit was recorded"));
    let body = exchange.response.expect("a JSON answer");
    let id = match vendor {
        Amc => &body["workflowExecutionId"],
        Amperity => &body["id"],
        Adobe => &body["items"][0]["id"],
        Carto => panic!("CARTO runs are not reconciled"),
    };
    id.as_str()
        .unwrap_or_else(|| panic!("{vendor}: no id in {body}"))
        .to_owned()
}

/// Issue 15: a create whose answer is lost while a *similar* run exists — the same request
/// started 60 s before the claim (a schedule, yesterday's backfill, another tool with the same
/// key) and, at Amperity, a scheduler run of the same workflow right after the claim. The
/// trigger must watch the run its lost create made, never the stranger; the old 2-minute slack
/// and "earliest match wins" adopted the earlier run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_while_a_similar_run_exists_watches_the_run_created() {
    const CASE: &str = "submit-lost-similar";
    let h = start().await;
    h.sim.sim.recorder.enable();
    let mut settings = runbridge_vendors::Settings::new();
    for (k, v) in h.sim.client_settings() {
        settings.set(k, v);
    }
    let others = runbridge_vendors::Vendors::from_settings(&settings, &RetryConfig::fast());
    for vendor in [Amc, Amperity, Adobe] {
        // The similar run: the same resolved request, started by someone else 60 s earlier.
        let request = runbridge_core::RunRequest::from_json(&example_request(
            vendor,
            &request_id(CASE, vendor),
        ))
        .unwrap()
        .resolve(h.sim.sim.clock.now());
        let other = others.get(vendor).unwrap();
        let key = Harness::key_for(vendor, "someone-else");
        other.submit(&request, &key).await.unwrap();
    }
    h.sim.sim.clock.advance(60.0);
    let similar: HashMap<VendorKind, String> = [Amc, Amperity, Adobe]
        .into_iter()
        .map(|v| (v, created_by_last_submit(&h, v)))
        .collect();
    // At Amperity, the scheduler also starts the same workflow just after the claim.
    h.sim.sim.control.add_foreign_run(
        Amperity,
        runbridge_sim::ForeignRun {
            tenant: "acme".into(),
            config_id: "cg-files01".into(),
            created_at: h.sim.sim.clock.now() + time::Duration::milliseconds(500),
            starter: runbridge_sim::ForeignStarter::Scheduler,
        },
    );
    for_each(&[Amc, Amperity, Adobe], |vendor| {
        let h = &h;
        let similar = &similar;
        async move {
            h.fault_submits(vendor, Fault::DropResponse, 1);
            let triggered = deliver(h, vendor, CASE)
                .await
                .unwrap_or_else(|e| panic!("{vendor}: reconciled in the same delivery: {e}"));
            let created = created_by_last_submit(h, vendor);
            assert_ne!(created, similar[&vendor], "{vendor}");
            assert_eq!(
                triggered.vendor_run_id(),
                Some(created.as_str()),
                "{vendor}: the run watched is the run created, not the similar {}",
                similar[&vendor]
            );
            let manifest = finish(h, vendor, CASE, 2).await;
            assert_eq!(manifest.vendor_run_id, created, "{vendor}");
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

/// CARTO's job API cannot list jobs by anything runbridge sent (`can_reconcile` is false), so a
/// create whose answer was lost cannot be confirmed or denied. The trigger never resubmits it: the
/// first delivery fails `Unreconcilable` (non-retryable: the message goes to the DLQ for an
/// operator), a redelivery inside the lease is turned away retryably, and one after the lease is
/// refused the same way. No second job, nothing watched, nothing landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carto_lost_submit_answer_is_never_resubmitted_and_goes_to_an_operator() {
    const CASE: &str = "submit-lost";
    let h = start().await;
    h.fault_submits(Carto, Fault::DropResponse, 1);
    assert_unreconcilable(&deliver(&h, Carto, CASE).await.unwrap_err());
    assert_eq!(
        h.sim.sim.control.runs_created(Carto),
        1,
        "the job was created"
    );
    assert_turned_away_during_lease(&h, Carto, CASE).await;
    pass_the_lease(&h);
    assert_unreconcilable(&deliver(&h, Carto, CASE).await.unwrap_err());
    assert_eq!(
        h.sim.sim.control.runs_created(Carto),
        1,
        "never a second job"
    );
    assert!(h.executions.names().is_empty(), "nothing watched");
    assert_results_whole(&h);
}

/// The trigger's refusal to resubmit where the vendor cannot tell: not retryable, so SQS sends
/// the message to the DLQ with the reason.
fn assert_unreconcilable(err: &HandlerError) {
    assert!(matches!(err, HandlerError::Unreconcilable(_)), "{err}");
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
}

/// A 500 after the request was sent: the client cannot know whether the vendor acted (here it did
/// not). Vendors that list runs find none after the lease and submit once; CARTO cannot tell, so
/// the request goes to an operator rather than risk a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_answered_500_is_reconciled_then_submitted_once() {
    const CASE: &str = "submit-500";
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            h.fault_submits(
                vendor,
                Fault::Status {
                    status: 500,
                    retry_after: None,
                },
                1,
            );
            let err = deliver(h, vendor, CASE).await.unwrap_err();
            if vendor == Carto {
                assert_unreconcilable(&err);
            } else {
                assert_eq!(err.error_type(), "Retryable", "{vendor}: {err}");
                assert!(
                    err.to_string().contains("outcome unknown"),
                    "{vendor}: {err}"
                );
            }
            assert_eq!(h.sim.sim.control.runs_created(vendor), 0, "{vendor}");
            assert_turned_away_during_lease(h, vendor, CASE).await;
        }
    })
    .await;
    pass_the_lease(&h);
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            if vendor == Carto {
                assert_unreconcilable(&deliver(h, vendor, CASE).await.unwrap_err());
                assert_eq!(h.sim.sim.control.runs_created(vendor), 0, "{vendor}");
                return;
            }
            let triggered = deliver(h, vendor, CASE).await.unwrap();
            assert!(
                triggered.submitted_now,
                "{vendor}: nothing found, so submitted"
            );
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

// ---------------------------------------------------------------------------------------------
// Credentials and download URLs that expire.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_run_is_refreshed() {
    const CASE: &str = "token-expired";
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let issued = h.sim.sim.tokens.issued_count(vendor);
            h.sim.sim.tokens.expire_all(vendor, h.sim.sim.clock.now());
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
            assert!(
                h.sim.sim.tokens.issued_count(vendor) > issued,
                "{vendor}: a new token was fetched"
            );
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_download_url_is_replaced_by_a_fresh_one_on_retry() {
    const CASE: &str = "url-expired";
    // Presigned URLs valid 20 simulated minutes (0.6 s real); the first download is held up
    // longer than that, as a slow or throttled collect would be.
    let h = Harness::start_with(HarnessOptions {
        sim: SimConfig {
            download_url_ttl_seconds: 1_200,
            ..SimConfig::default()
        },
        ..options()
    })
    .await;
    let (path, served) = download(Amc);
    h.sim.sim.faults.inject(FaultRule::new(
        Amc,
        Some("GET"),
        path,
        Fault::Delay { millis: 2_000 },
        1,
    ));
    deliver(&h, Amc, CASE).await.unwrap();
    let manifest = finish(&h, Amc, CASE, 1).await;
    assert_succeeded(&h, &manifest, 1);
    assert_eq!(
        h.sim.sim.control.requests(served),
        1,
        "the expired URL served nothing"
    );
    assert!(
        retries(&execution(&h, Amc, CASE).await, "Collect") >= 1,
        "collect was retried"
    );
    assert_results_whole(&h);
}

/// AMC answers "unavailable for download" while it publishes a run's output, and CARTO's export
/// reads a table the job has not finished writing: a collect that comes too early (a redelivered
/// or premature task) fails retryably and writes nothing; the run then completes normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_not_yet_downloadable_are_a_retry_not_a_failure() {
    const CASE: &str = "not-published";
    let h = start().await;
    h.sim.sim.control.push_script(
        Amc,
        RunScript {
            queue_seconds: 10.0,
            run_seconds: 300.0,
            publish_seconds: 600.0,
            rows: DEFAULT_ROWS,
            ..RunScript::default()
        },
    );
    for_each(&WITH_FILES, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let early = h
                .collector
                .collect(CollectInput {
                    handle: h.handle_for(vendor, &request_id(CASE, vendor)).await,
                    outcome: CollectOutcome::Succeeded,
                    reason: None,
                    attribution: None,
                })
                .await
                .expect_err("nothing to collect yet");
            assert!(
                matches!(early, HandlerError::Transient(_)),
                "{vendor}: {early}"
            );
            assert_eq!(early.error_type(), "Retryable", "{vendor}");
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, 1);
        }
    })
    .await;
    let amc = finish(&h, Amc, CASE, 1).await;
    assert!(
        amc.timeline.iter().any(|c| c.vendor_state == "PUBLISHING"),
        "the poll loop waited through PUBLISHING: {:?}",
        amc.timeline
    );
    assert_results_whole(&h);
}

// ---------------------------------------------------------------------------------------------
// Broken downloads.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_download_is_caught_and_retried() {
    const CASE: &str = "truncated";
    let h = start().await;
    for_each(&WITH_FILES, |vendor| {
        let h = &h;
        async move {
            let (path, served) = download(vendor);
            h.sim.sim.faults.inject(FaultRule::new(
                vendor,
                Some(download_method(vendor)),
                path,
                Fault::TruncateBody { keep_bytes: 10_000 },
                1,
            ));
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, 1);
            assert_eq!(h.sim.sim.control.requests(served), 2, "{vendor}");
        }
    })
    .await;
    assert_results_whole(&h);
}

/// AMC's results are presigned S3 objects: the simulator's file route sends S3's ETag (the MD5 of
/// a single-part object), and collect checks it, so a body damaged on the way is refused and
/// downloaded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_s3_download_is_caught_by_its_etag_and_retried() {
    const CASE: &str = "corrupted";
    let h = start().await;
    let (path, served) = download(Amc);
    h.sim.sim.faults.inject(FaultRule::new(
        Amc,
        Some("GET"),
        path,
        Fault::CorruptBody,
        1,
    ));
    deliver(&h, Amc, CASE).await.unwrap();
    let manifest = finish(&h, Amc, CASE, 1).await;
    assert_succeeded(&h, &manifest, 1);
    assert_eq!(h.sim.sim.control.requests(served), 2);
    let execution = execution(&h, Amc, CASE).await;
    assert!(
        execution.history.iter().any(|e| matches!(
            &e.kind,
            HistoryEventKind::TaskFailed { cause, .. } if cause.contains("does not match its ETag")
        )),
        "the first collect refused the corrupted body"
    );
    assert_results_whole(&h);
}

/// CARTO's export endpoint sends no digest of its body, so damage that TLS would not catch (only
/// possible on plain HTTP, as against the simulator) is not detected: the file lands as served,
/// and the manifest's SHA-256 describes what landed. This documents the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_carto_export_lands_as_served_for_want_of_a_digest() {
    const CASE: &str = "corrupted";
    let h = start().await;
    let (path, served) = download(Carto);
    h.sim.sim.faults.inject(FaultRule::new(
        Carto,
        Some(download_method(Carto)),
        path,
        Fault::CorruptBody,
        1,
    ));
    deliver(&h, Carto, CASE).await.unwrap();
    let manifest = finish(&h, Carto, CASE, 1).await;
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(h.sim.sim.control.requests(served), 1, "no second download");
    let landed = std::fs::read(h.out.path().join(&manifest.files[0].key)).unwrap();
    let original = csvgen::generate(Sim::seed_for(&manifest.vendor_run_id, 0), DEFAULT_ROWS);
    assert_eq!(landed.len(), original.len());
    assert!(landed != original, "the damaged bytes landed");
    assert_results_whole(&h);
}

// ---------------------------------------------------------------------------------------------
// Runs that never finish.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_finishes_is_cancelled_at_its_deadline_where_the_api_allows() {
    const CASE: &str = "never-ends";
    const DEADLINE: u64 = 600;
    let h = start().await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            h.sim.sim.control.push_script(
                vendor,
                RunScript {
                    outcome: Outcome::NeverFinish,
                    ..RunScript::default()
                },
            );
            let mut request: serde_json::Value =
                serde_json::from_slice(&example_request(vendor, &request_id(CASE, vendor)))
                    .unwrap();
            request["deadline_seconds"] = DEADLINE.into();
            h.trigger
                .handle_bytes(&serde_json::to_vec(&request).unwrap(), None)
                .await
                .unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_eq!(manifest.state, RunState::Failed, "{vendor}");
            assert!(manifest.files.is_empty(), "{vendor}");
            assert_eq!(
                manifest.attribution,
                Some(runbridge_core::Attribution::Platform)
            );
            let reason = manifest.reason.clone().unwrap();
            assert!(
                reason.contains(&format!("deadline of {DEADLINE} s exceeded")),
                "{vendor}: {reason}"
            );
            // The one wording of a cancel (handlers' cancel.rs), as a stop says it too.
            let run_id = manifest.vendor_run_id.clone();
            let (cancel_counter, says) = match vendor {
                Amc => (Some("amc.cancel"), format!("amc run {run_id} cancelled")),
                Amperity => (
                    Some("amperity.stop"),
                    format!("amperity run {run_id} cancelled"),
                ),
                Carto => (
                    Some("carto.cancel"),
                    format!("carto run {run_id} cancelled"),
                ),
                Adobe => (
                    None,
                    format!("adobe has no cancel; run {run_id} continues at the vendor"),
                ),
            };
            assert!(reason.contains(&says), "{vendor}: {reason}");
            if let Some(counter) = cancel_counter {
                assert_eq!(h.sim.sim.control.requests(counter), 1, "{vendor}");
            }
            assert_announced_once(h, &manifest, "Run Failed");
        }
    })
    .await;
    assert_results_whole(&h);
}

// ---------------------------------------------------------------------------------------------
// Crashes at every step boundary, through wrapped ports, followed by the retry SQS or Step
// Functions makes. A crash is a retryable port failure at that point: the handler stops there.
// ---------------------------------------------------------------------------------------------

/// Remembers which keys already crashed once.
#[derive(Default, Clone)]
struct Once(Arc<Mutex<HashSet<String>>>);

impl Once {
    fn first_time(&self, key: &str) -> bool {
        self.0.lock().unwrap().insert(key.to_owned())
    }
}

fn crash(port: &'static str, at: &str) -> HandlerError {
    HandlerError::port(port, format!("injected crash {at}"), true)
}

/// Step Functions failing once per execution name, after the run was submitted and recorded.
struct CrashBeforeStarting {
    inner: Arc<LocalExecutions>,
    crashed: Once,
}

#[async_trait]
impl Executions for CrashBeforeStarting {
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError> {
        if self.crashed.first_time(name) {
            return Err(crash("executions", "before the execution started"));
        }
        self.inner.start(name, input).await
    }
}

/// Where a [`CrashingSink`] fails, once per object key.
#[derive(Clone, Copy)]
enum SinkCrash {
    /// A result file's upload, after its first bytes.
    MidUpload,
    /// Publishing (S3: completing the upload of) the part whose key the function picks.
    Publish(fn(&str) -> bool),
    /// Writing the manifest.
    Manifest,
}

struct CrashingSink {
    inner: Arc<dyn ResultSink>,
    at: SinkCrash,
    crashed: Once,
}

#[async_trait]
impl ResultSink for CrashingSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        let writer = self.inner.create(key).await?;
        match self.at {
            SinkCrash::MidUpload if self.crashed.first_time(key) => Ok(Box::new(CrashingWriter {
                inner: writer,
                writes: 0,
            })),
            SinkCrash::Publish(picks) if picks(key) => Ok(Box::new(CrashingPublish {
                inner: writer,
                key: key.to_owned(),
                crashed: self.crashed.clone(),
            })),
            _ => Ok(writer),
        }
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        if matches!(self.at, SinkCrash::Manifest)
            && key.ends_with(MANIFEST_NAME)
            && self.crashed.first_time(key)
        {
            return Err(crash("sink", "before the manifest was written"));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        self.inner.get(key).await
    }
}

/// Accepts the first chunk, then fails: at the second chunk, or at `finish` when the body came in
/// one chunk.
struct CrashingWriter {
    inner: Box<dyn PartWriter>,
    writes: usize,
}

#[async_trait]
impl PartWriter for CrashingWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.writes += 1;
        if self.writes > 1 {
            return Err(crash("sink", "in the middle of an upload"));
        }
        self.inner.write(chunk).await
    }
    async fn finish(
        self: Box<Self>,
        _checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        self.inner.abort().await;
        Err(crash("sink", "before an upload completed"))
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

/// Writes and stages normally, then fails once when the object is published.
struct CrashingPublish {
    inner: Box<dyn PartWriter>,
    key: String,
    crashed: Once,
}

#[async_trait]
impl PartWriter for CrashingPublish {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.inner.write(chunk).await
    }
    async fn finish(
        self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        let this = *self;
        let staged = this.inner.finish(checksum).await?;
        Ok(Box::new(CrashingStaged {
            inner: staged,
            key: this.key,
            crashed: this.crashed,
        }))
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

struct CrashingStaged {
    inner: Box<dyn StagedObject>,
    key: String,
    crashed: Once,
}

#[async_trait]
impl StagedObject for CrashingStaged {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        if self.crashed.first_time(&self.key) {
            // As a refused publish does (S3: a refused completion aborts the upload).
            self.inner.abort().await;
            return Err(crash("sink", "while publishing"));
        }
        self.inner.publish().await
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

fn crashing_sink(at: SinkCrash) -> HarnessOptions {
    HarnessOptions {
        wrap_sink: Some(Box::new(move |inner| {
            Arc::new(CrashingSink {
                inner,
                at,
                crashed: Once::default(),
            })
        })),
        ..options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_submit_before_recording_it_is_reconciled_after_the_lease() {
    const CASE: &str = "crash-record";
    let h = start().await;
    let trigger = h.trigger_with(
        // Recording crashes after the vendor accepted a run, before its id is recorded: once per
        // key.
        Arc::new(LedgerDouble::around(h.ledger.clone()).at(
            LedgerOp::Update,
            LedgerFault::CrashOncePerKey(
                "injected crash after the vendor submit, before recording it",
            ),
        )),
        h.executions.clone(),
    );
    for_each(&VendorKind::ALL, |vendor| {
        let (h, trigger) = (&h, &trigger);
        async move {
            let body = example_request(vendor, &request_id(CASE, vendor));
            let err = trigger.handle_bytes(&body, None).await.unwrap_err();
            assert_eq!(err.error_type(), "Retryable", "{vendor}: {err}");
            assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
            assert_turned_away_during_lease(h, vendor, CASE).await;
        }
    })
    .await;
    pass_the_lease(&h);
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            if vendor == Carto {
                // CARTO cannot find the job it lost track of: an operator decides (see
                // carto_lost_submit_answer_is_never_resubmitted_and_goes_to_an_operator).
                assert_unreconcilable(&deliver(h, vendor, CASE).await.unwrap_err());
                assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
                return;
            }
            let triggered = deliver(h, vendor, CASE).await.unwrap();
            assert!(
                !triggered.submitted_now,
                "{vendor}: the vendor's run was found"
            );
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_eq!(
                Some(manifest.vendor_run_id.as_str()),
                triggered.vendor_run_id()
            );
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_execution_starts_reuses_the_recorded_run() {
    const CASE: &str = "crash-start";
    let h = start().await;
    let trigger = h.trigger_with(
        h.ledger.clone(),
        Arc::new(CrashBeforeStarting {
            inner: h.executions.clone(),
            crashed: Once::default(),
        }),
    );
    for_each(&VendorKind::ALL, |vendor| {
        let (h, trigger) = (&h, &trigger);
        async move {
            let body = example_request(vendor, &request_id(CASE, vendor));
            let err = trigger.handle_bytes(&body, None).await.unwrap_err();
            assert_eq!(err.error_type(), "Retryable", "{vendor}: {err}");
            let retried = trigger.handle_bytes(&body, None).await.unwrap();
            assert!(
                !retried.submitted_now,
                "{vendor}: the recorded run is reused"
            );
            assert_eq!(retried.execution, StartOutcome::Started, "{vendor}");
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_upload_leaves_nothing_and_the_retry_lands_whole_files() {
    const CASE: &str = "crash-upload";
    let h = Harness::start_with(crashing_sink(SinkCrash::MidUpload)).await;
    for_each(&WITH_FILES, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, 1);
            assert_eq!(
                retries(&execution(h, vendor, CASE).await, "Collect"),
                1,
                "{vendor}"
            );
            assert_eq!(
                h.sim.sim.control.requests(download(vendor).1),
                2,
                "{vendor}"
            );
        }
    })
    .await;
    assert_results_whole(&h);
}

/// AMC with two result files crashes after publishing the first; CARTO while publishing its only
/// one. The retry lands and publishes everything again, then writes the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publishes_is_completed_by_the_retry() {
    const CASE: &str = "crash-publish";
    let h = Harness::start_with(crashing_sink(SinkCrash::Publish(|to| {
        (to.contains("vendor=amc/") && to.ends_with("part-00001.csv"))
            || (to.contains("vendor=carto/") && to.ends_with("part-00000.csv"))
    })))
    .await;
    h.sim.sim.control.push_script(
        Amc,
        RunScript {
            queue_seconds: 10.0,
            run_seconds: 300.0,
            rows: DEFAULT_ROWS,
            files: 2,
            ..RunScript::default()
        },
    );
    for_each(&WITH_FILES, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            let files = if vendor == Amc { 2 } else { 1 };
            assert_succeeded(h, &manifest, files);
            assert_eq!(
                retries(&execution(h, vendor, CASE).await, "Collect"),
                1,
                "{vendor}"
            );
        }
    })
    .await;
    assert_results_whole(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_manifest_is_retried_to_one_complete_result() {
    const CASE: &str = "crash-manifest";
    let h = Harness::start_with(crashing_sink(SinkCrash::Manifest)).await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            // Exactly one "Run Completed": the crashed attempt announced nothing.
            assert_succeeded(h, &manifest, files_per_run(vendor));
            assert_eq!(
                retries(&execution(h, vendor, CASE).await, "Collect"),
                1,
                "{vendor}"
            );
        }
    })
    .await;
    assert_results_whole(&h);
}

/// Lambda kills its handlers now and then (timeout, out of memory); Step Functions reports that as
/// `Lambda.Unknown`. This invoker kills each run's first Poll before it does anything and its
/// first Collect after it has done everything but answer: once per run key and resource.
struct KilledLambdas {
    inner: Arc<dyn TaskInvoker>,
    killed: Once,
}

#[async_trait]
impl TaskInvoker for KilledLambdas {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        let key = input["handle"]["key"].as_str().unwrap_or_default();
        let first = self.killed.first_time(&format!("{resource} {key}"));
        let killed = || TaskFailure {
            error: "Lambda.Unknown".into(),
            cause: "Task timed out after 900.00 seconds".into(),
        };
        match resource {
            LOCAL_POLL_ARN if first => Err(killed()),
            LOCAL_COLLECT_ARN if first => {
                self.inner.invoke(resource, input).await?;
                Err(killed())
            }
            _ => self.inner.invoke(resource, input).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_poll_and_collect_lambdas_are_retried_and_announce_once() {
    const CASE: &str = "lambda-killed";
    let h = Harness::start_with(HarnessOptions {
        wrap_tasks: Some(Box::new(|inner| {
            Arc::new(KilledLambdas {
                inner,
                killed: Once::default(),
            })
        })),
        ..options()
    })
    .await;
    for_each(&VendorKind::ALL, |vendor| {
        let h = &h;
        async move {
            deliver(h, vendor, CASE).await.unwrap();
            let manifest = finish(h, vendor, CASE, 1).await;
            assert_succeeded(h, &manifest, files_per_run(vendor));
            let execution = execution(h, vendor, CASE).await;
            assert_eq!(
                execution.status,
                ExecutionStatus::Succeeded,
                "{vendor}: {:?} {:?}",
                execution.error,
                execution.cause
            );
            assert_eq!(retries(&execution, "Poll"), 1, "{vendor}");
            assert_eq!(retries(&execution, "Collect"), 1, "{vendor}");
        }
    })
    .await;
    assert_results_whole(&h);
}
