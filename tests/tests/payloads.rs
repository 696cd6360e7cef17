//! Bounded execution payloads (issue 10, case 5): the execution carries a reference to the run,
//! never the request, so every state's input and output stays under
//! [`EXECUTION_PAYLOAD_BUDGET`] however large the request and however long the run. The local
//! ASL interpreter enforces Step Functions' 256 KiB quota itself (`States.DataLimitExceeded`),
//! so a payload that would fail in AWS fails here too.
//!
//! Last recorded (`45138da`, when the run reference replaced the request in the execution): the
//! largest state input, output or task parameter of a run of each vendor's largest valid
//! request, polled every 10 s through 6 simulated hours, was under 1 KiB against the 32 KiB
//! budget. The test prints each vendor's largest payload and where it occurred.

use runbridge_system_tests::harness;

use harness::{example_request, Harness};
use runbridge_asl::{Execution, ExecutionStatus};
use runbridge_core::request::{MAX_REQUEST_BYTES, MAX_SQL_CHARS};
use runbridge_core::{Manifest, RunRequest, RunState, VendorKind, EXECUTION_PAYLOAD_BUDGET};
use runbridge_handlers::Ledger;
use runbridge_sim::RunScript;
use serde_json::{json, Value};
use VendorKind::{Adobe, Amc, Amperity, Carto};

/// A valid request of `vendor` whose document is exactly `target` bytes: its free-text fields
/// (AMC and CARTO SQL, an export query, parameters) filled as far as validation allows, the rest
/// JSON whitespace (Amperity and Adobe requests have no field that can grow: their largest
/// resolved request is small, their largest document is padding).
fn request_of_size(vendor: VendorKind, request_id: &str, target: usize, edit: &Value) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(&example_request(vendor, request_id)).unwrap();
    for (k, v) in edit.as_object().unwrap() {
        r[k] = v.clone();
    }
    // A long literal keeps the SQL one valid statement for both vendors' rules.
    let sql = |head: &str, budget: usize| {
        let pad = budget.saturating_sub(head.len() + 12);
        format!("{head} '{}' AS pad", "x".repeat(pad))
    };
    let params_field = match vendor {
        Amc => {
            r["sql_query"] = sql("SELECT advertiser,", MAX_SQL_CHARS).into();
            Some("parameter_values")
        }
        Carto => {
            r["query"] = sql("SELECT", MAX_SQL_CHARS).into();
            r["export_query"] = sql("SELECT", MAX_SQL_CHARS).into();
            Some("query_parameters")
        }
        Amperity | Adobe => None,
    };
    if let Some(field) = params_field {
        // Parameters of 1 KiB each until the next one would not fit.
        let mut params = serde_json::Map::new();
        for i in 0.. {
            params.insert(format!("p{i:05}"), json!("v".repeat(1_000)));
            r[field] = Value::Object(params.clone());
            if serde_json::to_vec(&r).unwrap().len() + 64 > target {
                params.remove(&format!("p{i:05}"));
                r[field] = Value::Object(params);
                break;
            }
        }
    }
    let mut doc = serde_json::to_vec(&r).unwrap();
    assert!(
        doc.len() <= target,
        "{vendor}: {} bytes before padding",
        doc.len()
    );
    // Whitespace before the closing brace: the same request, `target` bytes long.
    let close = doc.pop().unwrap();
    doc.resize(target - 1, b' ');
    doc.push(close);
    assert_eq!(doc.len(), target);
    RunRequest::from_json(&doc)
        .and_then(|req| req.validate().map(|()| req))
        .unwrap_or_else(|e| panic!("{vendor}: a {target}-byte request must be valid: {e}"));
    doc
}

/// Every payload of the execution (its input, each state's input and output, each task's
/// parameters and result, its output): the largest, in bytes.
fn largest_payload(execution: &Execution) -> (usize, String) {
    let mut largest = (0, String::new());
    for event in &execution.history {
        let kind = serde_json::to_value(&event.kind).unwrap();
        for field in ["input", "output", "parameters"] {
            if let Some(v) = kind.get(field) {
                let size = serde_json::to_vec(v).unwrap().len();
                if size > largest.0 {
                    largest = (
                        size,
                        format!("{} {field} of {:?}", kind["type"], event.state),
                    );
                }
            }
        }
    }
    largest
}

/// Runs `body` to its end; returns the execution and the manifest.
async fn run(
    h: &Harness,
    vendor: VendorKind,
    request_id: &str,
    body: &[u8],
) -> (Execution, Manifest) {
    let triggered = h
        .trigger
        .handle_bytes(body, None)
        .await
        .unwrap_or_else(|e| panic!("{vendor}: trigger: {e}"));
    let execution = h
        .executions
        .wait(&triggered.key().execution_name())
        .await
        .expect("execution started");
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{vendor}: {:?} {:?}",
        execution.error,
        execution.cause
    );
    let manifest = h.run_to_end_for(vendor, request_id).await;
    (execution, manifest)
}

/// The largest valid request of each vendor through a 6-hour run polled every 10 s (the
/// request's own poll policy; 6 h of simulated time pass in about 11 s): every payload stays
/// under the budget, the run ends with its manifest, which carries the whole request read from
/// the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_request_of_each_vendor_through_six_hours_of_polls_stays_under_the_budget() {
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        h.sim.sim.control.set_default_script(
            vendor,
            RunScript {
                queue_seconds: 60.0,
                run_seconds: 6.0 * 3_600.0,
                rows: 100,
                ..RunScript::default()
            },
        );
    }
    let edit = json!({
        "deadline_seconds": 8 * 3_600,
        "poll": {"first_seconds": 10, "factor": 0.0, "max_seconds": 10},
    });
    let runs = VendorKind::ALL.map(|vendor| {
        let id = format!("largest-{vendor}");
        let body = request_of_size(vendor, &id, MAX_REQUEST_BYTES - 1, &edit);
        (vendor, id, body)
    });
    let results = futures::future::join_all(
        runs.iter()
            .map(|(vendor, id, body)| run(&h, *vendor, id, body)),
    )
    .await;
    for ((vendor, id, body), (execution, manifest)) in runs.iter().zip(results) {
        let (size, at) = largest_payload(&execution);
        println!(
            "{vendor}: request {} bytes, {} polls, {} history events, largest payload {size} bytes ({at})",
            body.len(),
            manifest.polls,
            execution.history.len(),
        );
        assert!(
            size <= EXECUTION_PAYLOAD_BUDGET,
            "{vendor}: {at} is {size} bytes, over the {EXECUTION_PAYLOAD_BUDGET}-byte budget"
        );
        assert_eq!(manifest.state, RunState::Succeeded, "{vendor}");
        // Polls cost real time (an HTTP call, a ledger read; Amperity's 10 requests/s), so
        // fewer than the policy's 2,160 happen while 6 simulated hours pass in ~11 s.
        assert!(
            manifest.polls >= 50,
            "{vendor}: a 6-hour run polled every 10 s is polled often, not {} times",
            manifest.polls
        );
        // `submitted_at` is when the run id was recorded, after the vendor created the run: on a
        // loaded machine that is some real milliseconds (simulated minutes at 2,000×) later.
        assert!(
            manifest.finished_at - manifest.submitted_at
                >= time::Duration::hours(6) - time::Duration::minutes(5),
            "{vendor}: the run lasted 6 hours ({} → {})",
            manifest.submitted_at,
            manifest.finished_at
        );
        let entry = h
            .ledger
            .get(&Harness::key_for(*vendor, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(manifest.request, entry.request, "{vendor}");
        let stored = serde_json::to_vec(&entry.request).unwrap().len();
        if matches!(vendor, Amc | Carto) {
            assert!(
                stored > 200_000,
                "{vendor}: the stored request is {stored} bytes"
            );
        }
    }
}

/// Case 5: a 262,000-byte CARTO request used to fail with `States.DataLimitExceeded` after the
/// job was created, a 261,800-byte one at the first Poll; both now complete with a manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carto_requests_of_262000_and_261800_bytes_complete_with_their_manifests() {
    let h = Harness::start().await;
    for size in [262_000, 261_800] {
        let id = format!("case5-{size}");
        let body = request_of_size(Carto, &id, size, &json!({}));
        let (execution, manifest) = run(&h, Carto, &id, &body).await;
        assert_eq!(manifest.state, RunState::Succeeded, "{size}");
        assert_eq!(manifest.files.len(), 1, "{size}");
        let (largest, at) = largest_payload(&execution);
        assert!(
            largest <= EXECUTION_PAYLOAD_BUDGET,
            "{size}: {at} is {largest} bytes"
        );
    }
    assert_eq!(
        h.sim.sim.control.runs_created(Carto),
        2,
        "one job per request"
    );
}
