//! The `Vendor` contract every vendor module must keep, as one generic check (in the spirit of
//! `object_store`'s `integration.rs`): the trigger, poll and collect handlers rely on exactly
//! these behaviours, whatever the vendor.
//!
//! [`check_vendor_contract`] drives one vendor through a series of scripted runs on the
//! simulator and asserts, naming the vendor and the step on failure:
//!
//! 1. submit returns an id and creates exactly one run; `find_submitted` finds that run (or
//!    answers `Ok(None)` only for a vendor that documents the gap);
//! 2. status reads non-final, then — only once the simulated clock has passed the run's length —
//!    `Succeeded`; results are `Ready` with files that download to exactly the simulator's CSV
//!    bytes, or `NoFiles`;
//! 3. a scripted failure maps to `Failed` with a reason and an attribution;
//! 4. cancelling a running run answers `Requested` (and the run then ends `Cancelled`) or
//!    `Unsupported` (and the run goes on);
//! 5. tokens expiring mid-run are refreshed without the caller noticing;
//! 6. a burst of 503s on status is retried without the caller noticing.

#![allow(dead_code)]

use runbridge_core::{Attribution, ResolvedRequest, RunState, RunStatus, VendorKind};
use runbridge_sim::{csvgen, Fault, FaultRule, Outcome, RunScript, Sim};
use runbridge_vendors::{CancelOutcome, ResultsAvailability, RunRef, Vendor};

use serde_json::json;

use crate::util::{key, request, Harness};

/// Simulated seconds the clock jumps between polls.
const POLL_STEP_SECONDS: f64 = 20.0;
/// Polls before a run is declared stuck.
const MAX_POLLS: u32 = 400;
/// Rows per result file of the scripted runs (small: the contract is about behaviour, not size).
const ROWS: u64 = 250;
/// Result files per successful run, for vendors that produce files.
const FILES: u32 = 2;

/// Vendors whose module documents that `find_submitted` cannot find a run (and so always answers
/// `Ok(None)`): CARTO's create body carries nothing to match and its job list is undocumented
/// (see the module docs of `runbridge_vendors::carto`). Every other vendor must find the run.
pub fn documents_reconciliation_gap(kind: VendorKind) -> bool {
    matches!(kind, VendorKind::Carto)
}

/// Vendors whose API does not say whose fault a failed run is, so a failure may come without an
/// attribution (the poll handler then treats it as the platform's): AMC's `FAILED` carries only
/// `statusReason`; only `REJECTED` is attributed (see the module docs of `runbridge_vendors::amc`).
pub fn documents_unattributed_failures(kind: VendorKind) -> bool {
    matches!(kind, VendorKind::Amc)
}

/// What the contract run observed, for callers that check more (e.g. the OpenAPI test).
#[derive(Debug, Default)]
pub struct ContractObservations {
    /// Result files downloaded and compared.
    pub files_downloaded: usize,
    /// What cancel answered.
    pub cancel: Option<CancelOutcome>,
    /// Whether `find_submitted` found the run.
    pub found_submitted: bool,
}

/// A valid request per vendor, each of the kind that exercises the most of the contract (AMC and
/// CARTO with result files).
pub fn valid_request(kind: VendorKind) -> ResolvedRequest {
    request(match kind {
        VendorKind::Amc => json!({
            "vendor": "amc",
            "instance_id": "amcinstance01",
            "advertiser_id": "ENTITY1ABC",
            "marketplace_id": "ATVPDKIKX0DER",
            "sql_query": "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions GROUP BY campaign",
            "time_window_type": "EXPLICIT",
            "time_window_start": "2026-11-26T00:00:00Z",
            "time_window_end": "2026-11-27T00:00:00Z",
        }),
        VendorKind::Amperity => json!({
            "vendor": "amperity",
            "tenant": "acme",
            "config_id": "cg-files01",
            "range_from": "2026-11-26T00:00:00Z",
            "range_to": "2026-11-27T00:00:00Z",
            "run_mode": "full",
        }),
        VendorKind::Adobe => json!({
            "vendor": "adobe",
            "flow_id": runbridge_sim::adobe::FILE_FLOW_ID,
            "window_start": "2026-11-26T00:00:00Z",
            "window_end": "2026-11-27T00:00:00Z",
        }),
        VendorKind::Carto => json!({
            "vendor": "carto",
            "connection": "your_connection",
            "query": "CALL `carto-dw-ac-jfjjof5m.shared.workflow_clusters`(@number_of_clusters)",
            "query_parameters": {"number_of_clusters": 2},
            "export_query": "SELECT * FROM `carto-dw-ac-jfjjof5m.shared.stores_clustered`",
        }),
    })
}

fn run_ref<'a>(request: &'a ResolvedRequest, id: &'a str) -> RunRef<'a> {
    RunRef {
        request,
        vendor_run_id: id,
    }
}

fn script(outcome: Outcome, run_seconds: f64) -> RunScript {
    RunScript {
        outcome,
        queue_seconds: 5.0,
        run_seconds,
        rows: ROWS,
        files: FILES,
        publish_seconds: 0.0,
    }
}

async fn status(vendor: &dyn Vendor, request: &ResolvedRequest, id: &str, step: &str) -> RunStatus {
    vendor
        .status(run_ref(request, id))
        .await
        .unwrap_or_else(|e| panic!("{}: {step}: status failed: {e}", vendor.kind()))
}

/// Polls, advancing the simulated clock between polls, until the run is final.
async fn poll_until_final(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    id: &str,
    step: &str,
) -> RunStatus {
    for _ in 0..MAX_POLLS {
        let current = status(vendor, request, id, step).await;
        if current.state.is_final() {
            return current;
        }
        h.sim.sim.clock.advance(POLL_STEP_SECONDS);
    }
    panic!(
        "{}: {step}: run {id} never reached a final state",
        vendor.kind()
    )
}

/// Submits `request` once, asserting an id is returned and exactly one run is created.
async fn submit_one(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    step: &str,
) -> String {
    let kind = vendor.kind();
    let runs_before = h.runs_created(kind);
    let submitted = vendor
        .submit(request, &key(request))
        .await
        .unwrap_or_else(|e| panic!("{kind}: {step}: submit failed: {e}"));
    assert!(
        !submitted.vendor_run_id.trim().is_empty(),
        "{kind}: {step}: submit returned an empty run id"
    );
    assert_eq!(
        h.runs_created(kind),
        runs_before + 1,
        "{kind}: {step}: one submit must create exactly one vendor run"
    );
    submitted.vendor_run_id
}

/// Asserts the whole contract for `kind` with a valid `request`. `h` must be a fresh harness
/// (runs of earlier tests would be candidates for `find_submitted`).
pub async fn check_vendor_contract(
    h: &Harness,
    kind: VendorKind,
    request: ResolvedRequest,
) -> ContractObservations {
    let vendor = h.vendor(kind);
    let vendor = vendor.as_ref();
    assert_eq!(vendor.kind(), kind, "the registry returned another vendor");
    let mut seen = ContractObservations::default();

    succeeds_and_delivers(h, vendor, &request, &mut seen).await;
    failure_is_attributed(h, vendor, &request).await;
    seen.cancel = Some(cancel_of_a_running_run(h, vendor, &request).await);
    token_expiry_is_transparent(h, vendor, &request).await;
    status_survives_a_503_burst(h, vendor, &request).await;
    seen
}

async fn succeeds_and_delivers(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    seen: &mut ContractObservations,
) {
    let kind = vendor.kind();
    let step = "successful run";
    let run_script = script(Outcome::Succeed, 60.0);
    let run_length = run_script.queue_seconds + run_script.run_seconds;
    h.sim.sim.control.push_script(kind, run_script);
    // Whole seconds, a little early: vendors filter on creation times of second precision.
    let since = h.sim.sim.clock.now() - time::Duration::seconds(2);
    let id = submit_one(h, vendor, request, step).await;
    let submitted_at = h.sim.sim.clock.now();

    let found = vendor
        .find_submitted(request, &key(request), since.into())
        .await
        .unwrap_or_else(|e| panic!("{kind}: find_submitted failed: {e}"));
    match found {
        Some(run) => {
            assert_eq!(
                run.vendor_run_id, id,
                "{kind}: find_submitted found another run"
            );
            seen.found_submitted = true;
        }
        None => assert!(
            documents_reconciliation_gap(kind),
            "{kind}: find_submitted did not find the run just submitted, and the module does not \
             document that it cannot"
        ),
    }

    let first = status(vendor, request, &id, step).await;
    assert!(
        !first.state.is_final(),
        "{kind}: {step}: a run just submitted already reads final: {first:?}"
    );
    let last = poll_until_final(h, vendor, request, &id, step).await;
    assert_eq!(last.state, RunState::Succeeded, "{kind}: {step}: {last:?}");
    let elapsed = (h.sim.sim.clock.now() - submitted_at).as_seconds_f64();
    assert!(
        elapsed >= run_length,
        "{kind}: {step}: succeeded after {elapsed} simulated seconds, before the scripted \
         {run_length}: status does not follow the vendor's clock"
    );

    let files = loop {
        match vendor
            .results(run_ref(request, &id))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {step}: results failed: {e}"))
        {
            ResultsAvailability::Ready(files) => break files,
            ResultsAvailability::NoFiles => return,
            // Publishing is a wait, not a failure: let the clock run on.
            ResultsAvailability::NotYet { .. } => h.sim.sim.clock.advance(POLL_STEP_SECONDS),
        }
    };
    assert!(!files.is_empty(), "{kind}: {step}: Ready with no files");
    for (part, file) in files.iter().enumerate() {
        let download = vendor
            .open_result(file)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {step}: open_result({}) failed: {e}", file.name));
        let bytes = download
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{kind}: {step}: reading {} failed: {e}", file.name));
        let expected = csvgen::generate(Sim::seed_for(&id, part as u32), ROWS);
        assert!(
            bytes.as_ref() == expected.as_slice(),
            "{kind}: {step}: file {} ({} bytes) differs from the simulator's CSV ({} bytes)",
            file.name,
            bytes.len(),
            expected.len()
        );
        if let Some(size) = file.size_hint {
            assert_eq!(
                size,
                bytes.len() as u64,
                "{kind}: {step}: size hint of {}",
                file.name
            );
        }
        seen.files_downloaded += 1;
    }
}

async fn failure_is_attributed(h: &Harness, vendor: &dyn Vendor, request: &ResolvedRequest) {
    let kind = vendor.kind();
    let cases = [
        ("configuration failure", true, Attribution::Customer),
        ("platform failure", false, Attribution::Platform),
    ];
    for (label, customer, expected) in cases {
        let message = format!("conformance: scripted {label}");
        let outcome = Outcome::Fail {
            message: message.clone(),
            customer,
        };
        let attribution = scripted_failure(h, vendor, request, outcome, &message, label).await;
        let acceptable = attribution == Some(expected)
            || (attribution.is_none() && documents_unattributed_failures(kind));
        assert!(
            acceptable,
            "{kind}: {label}: attribution {attribution:?}, expected {expected:?}"
        );
    }
    // A run the vendor refuses after accepting it is always the request's fault.
    let message = "conformance: scripted rejection".to_owned();
    let outcome = Outcome::Reject {
        message: message.clone(),
    };
    let attribution = scripted_failure(h, vendor, request, outcome, &message, "rejection").await;
    assert_eq!(
        attribution,
        Some(Attribution::Customer),
        "{kind}: rejection: wrong attribution"
    );
}

/// Runs one scripted failure to its end; asserts `Failed` with the vendor's message as reason.
async fn scripted_failure(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
    outcome: Outcome,
    message: &str,
    step: &str,
) -> Option<Attribution> {
    let kind = vendor.kind();
    h.sim.sim.control.push_script(kind, script(outcome, 60.0));
    let id = submit_one(h, vendor, request, step).await;
    let last = poll_until_final(h, vendor, request, &id, step).await;
    assert_eq!(last.state, RunState::Failed, "{kind}: {step}: {last:?}");
    let reason = last.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains(message),
        "{kind}: {step}: the reason {reason:?} does not carry the vendor's message {message:?}"
    );
    last.attribution
}

async fn cancel_of_a_running_run(
    h: &Harness,
    vendor: &dyn Vendor,
    request: &ResolvedRequest,
) -> CancelOutcome {
    let kind = vendor.kind();
    let step = "cancel";
    h.sim
        .sim
        .control
        .push_script(kind, script(Outcome::NeverFinish, 3_600.0));
    let id = submit_one(h, vendor, request, step).await;
    // Past the queue: the run is executing when the cancel arrives.
    h.sim.sim.clock.advance(30.0);
    let before = status(vendor, request, &id, step).await;
    assert_eq!(
        before.state,
        RunState::Running,
        "{kind}: {step}: {before:?}"
    );
    let outcome = vendor
        .cancel(run_ref(request, &id))
        .await
        .unwrap_or_else(|e| panic!("{kind}: {step}: cancel failed: {e}"));
    match outcome {
        CancelOutcome::Requested => {
            let last = poll_until_final(h, vendor, request, &id, step).await;
            assert_eq!(last.state, RunState::Cancelled, "{kind}: {step}: {last:?}");
        }
        CancelOutcome::Unsupported => {
            // Nothing was stopped: the run must still read as running, not silently final.
            h.sim.sim.clock.advance(POLL_STEP_SECONDS);
            let after = status(vendor, request, &id, step).await;
            assert_eq!(after.state, RunState::Running, "{kind}: {step}: {after:?}");
        }
        CancelOutcome::AlreadyFinal => {
            panic!("{kind}: {step}: a running run was reported already final")
        }
    }
    outcome
}

async fn token_expiry_is_transparent(h: &Harness, vendor: &dyn Vendor, request: &ResolvedRequest) {
    let kind = vendor.kind();
    let step = "token expiry mid-run";
    h.sim
        .sim
        .control
        .push_script(kind, script(Outcome::Succeed, 60.0));
    let id = submit_one(h, vendor, request, step).await;
    let first = status(vendor, request, &id, step).await;
    assert!(!first.state.is_final(), "{kind}: {step}: {first:?}");
    let tokens_before = h.sim.sim.tokens.issued_count(kind);
    h.sim.sim.tokens.expire_all(kind, h.sim.sim.clock.now());
    let last = poll_until_final(h, vendor, request, &id, step).await;
    assert_eq!(last.state, RunState::Succeeded, "{kind}: {step}: {last:?}");
    assert!(
        h.sim.sim.tokens.issued_count(kind) > tokens_before,
        "{kind}: {step}: no new token was fetched after the old ones expired"
    );
}

async fn status_survives_a_503_burst(h: &Harness, vendor: &dyn Vendor, request: &ResolvedRequest) {
    let kind = vendor.kind();
    let step = "503 burst on status";
    h.sim
        .sim
        .control
        .push_script(kind, script(Outcome::Succeed, 60.0));
    let id = submit_one(h, vendor, request, step).await;
    // Every vendor's status path carries the run id; reads of it fail three times in a row.
    h.sim.sim.faults.inject(FaultRule::new(
        kind,
        Some("GET"),
        &id,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        3,
    ));
    let current = status(vendor, request, &id, step).await;
    assert!(!current.state.is_final(), "{kind}: {step}: {current:?}");
    assert_eq!(
        h.sim.sim.faults.take(kind, "GET", &id),
        None,
        "{kind}: {step}: the status read did not go through the injected 503s"
    );
    let last = poll_until_final(h, vendor, request, &id, step).await;
    assert_eq!(last.state, RunState::Succeeded, "{kind}: {step}: {last:?}");
}
