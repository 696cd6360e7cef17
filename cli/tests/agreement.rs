//! Every view of a failure the customer caused tells the same story, for every vendor and every
//! step that can fail (submit, poll, collect): `runbridge run --sandbox` is run as a user runs it,
//! with the simulators told (`--sim-setup`: their own fault and run-script knobs) to answer as
//! each vendor's documentation says it answers such a request. The manifest, the `Run Failed`
//! event (the local event bus is the `run event` log line), the `RunsFailed` metric (EMF,
//! `--metrics`), the exit code, the printed error and the `--json` report must all say
//! `customer` and the same reason.

use std::path::Path;
use std::process::{Command, Stdio};

use runbridge::exit::Exit;
use serde_json::{json, Value};

/// The step a failure happens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Submit,
    Poll,
    Collect,
}

/// One customer-caused failure: the request (an example with a changed field), the simulator
/// setup that makes the vendor answer as its doc says, and a text the reason must carry.
struct Case {
    vendor: &'static str,
    step: Step,
    edit: fn(&mut Value),
    setup: Value,
    says: &'static str,
}

/// The vendor answers `status` to the next requests of `method` (any when empty) to `path`: as
/// many as a client may send for one call (a 401 or 403 is tried again with a fresh token).
fn fault(vendor: &str, method: &str, path: &str, status: u16) -> Value {
    let mut rule = json!({
        "vendor": vendor, "path_contains": path,
        "fault": {"kind": "status", "status": status}, "times": 3
    });
    if !method.is_empty() {
        rule["method"] = method.into();
    }
    json!({ "faults": [rule] })
}

fn script(vendor: &str, outcome: Value) -> Value {
    json!({"scripts": {vendor: [{"outcome": outcome, "run_seconds": 30.0, "queue_seconds": 1.0}]}})
}

fn keep(_: &mut Value) {}

const SUBMIT_REFUSED: &str = "the submit was refused by the vendor";
const POLL_FAILED: &str = "the request is at fault";
const NOT_COLLECTED: &str = "could not be collected";

fn cases() -> Vec<Case> {
    let failed =
        |customer_words: &str| json!({"kind": "fail", "message": customer_words, "customer": true});
    vec![
        // AMC: a 400 on create (a query its doc says it refuses), a REJECTED execution (AMC
        // says "rejected" only for the request's fault), and a 403 on the download URLs (the
        // account may not read the instance's outputs).
        Case {
            vendor: "amc",
            step: Step::Submit,
            edit: keep,
            setup: fault("amc", "POST", "/workflowExecutions", 400),
            says: SUBMIT_REFUSED,
        },
        Case {
            vendor: "amc",
            step: Step::Poll,
            edit: keep,
            setup: script(
                "amc",
                json!({"kind": "reject", "message": format!("{POLL_FAILED}: unknown column")}),
            ),
            says: POLL_FAILED,
        },
        Case {
            vendor: "amc",
            step: Step::Collect,
            edit: keep,
            setup: fault("amc", "GET", "/downloadUrls", 403),
            says: NOT_COLLECTED,
        },
        // Amperity: a 400 on start (a config id its doc refuses), a run failed for its
        // configuration. Collect: Amperity runs produce no files, so collect calls nothing at
        // Amperity and cannot fail by the customer's request.
        Case {
            vendor: "amperity",
            step: Step::Submit,
            edit: keep,
            setup: fault("amperity", "POST", "/workflow/runs", 400),
            says: SUBMIT_REFUSED,
        },
        Case {
            vendor: "amperity",
            step: Step::Poll,
            edit: keep,
            setup: script("amperity", failed(&format!("{POLL_FAILED}: bad config"))),
            says: POLL_FAILED,
        },
        // Adobe: an unknown flow id is a 400 (the simulator knows the sandbox's flows, as Adobe
        // does), and a run failed by the flow's configuration. Collect: Adobe runs produce no
        // files either.
        Case {
            vendor: "adobe",
            step: Step::Submit,
            edit: |r| r["flow_id"] = "9f1a2b3c-0000-4000-8000-0000000000ff".into(),
            setup: json!({}),
            says: SUBMIT_REFUSED,
        },
        Case {
            vendor: "adobe",
            step: Step::Poll,
            edit: keep,
            setup: script("adobe", failed(&format!("{POLL_FAILED}: mapping"))),
            says: POLL_FAILED,
        },
        // CARTO: a 400 on the job (a statement its doc refuses), a job DONE with the
        // warehouse's `invalidQuery`, and the export query refused with a 400 (what only the
        // warehouse can judge: a table the account cannot read).
        Case {
            vendor: "carto",
            step: Step::Submit,
            edit: keep,
            setup: fault("carto", "POST", "/job", 400),
            says: SUBMIT_REFUSED,
        },
        Case {
            vendor: "carto",
            step: Step::Poll,
            edit: keep,
            setup: script("carto", failed(&format!("{POLL_FAILED}: invalidQuery"))),
            says: POLL_FAILED,
        },
        Case {
            vendor: "carto",
            step: Step::Collect,
            edit: keep,
            setup: fault("carto", "", "/query", 400),
            says: NOT_COLLECTED,
        },
    ]
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The failure metric documents of `key` in the EMF file.
fn failure_metrics(path: &Path, key: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|d| d["key"] == key && d.get("RunsFailed").is_some())
        .collect()
}

/// The details of the `run event` log lines (JSON logs on stderr).
fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "run event")
        .map(|l| serde_json::from_str(l["fields"]["detail"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_customer_caused_failure_says_customer_in_every_view_for_every_vendor_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut covered = Vec::new();
    for case in cases() {
        let label = format!("{} {:?}", case.vendor, case.step);
        let example = repo().join(format!("examples/{}.json", case.vendor));
        let mut request: Value =
            serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
        request["request_id"] = format!("agree-{:?}", case.step).to_lowercase().into();
        (case.edit)(&mut request);
        let name = format!("{}-{:?}", case.vendor, case.step);
        let request_file = dir.path().join(format!("{name}.json"));
        std::fs::write(&request_file, request.to_string()).unwrap();
        let setup_file = dir.path().join(format!("{name}.setup.json"));
        std::fs::write(&setup_file, case.setup.to_string()).unwrap();
        let metrics = dir.path().join(format!("{name}.emf"));
        let out = Command::new(env!("CARGO_BIN_EXE_runbridge"))
            .current_dir(repo())
            .env(
                "RUNBRIDGE_LOG",
                "warn,runbridge_adapters_local::events=info",
            )
            .env("NO_COLOR", "1")
            .env_remove("RUNBRIDGE_PROFILES")
            .stdin(Stdio::null())
            .args(["--json", "--log-format", "json", "--metrics"])
            .arg(&metrics)
            .args(["run", "--sandbox", "--speed", "4000", "--out"])
            .arg(dir.path().join(format!("out-{name}")))
            .arg("--sim-setup")
            .arg(&setup_file)
            .arg(&request_file)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        // The exit code.
        assert_eq!(
            out.status.code(),
            Some(i32::from(Exit::RunFailed.code())),
            "{label}\nstdout: {stdout}\nstderr: {stderr}"
        );
        // The report.
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{label}: {e}: {stdout}\n{stderr}"));
        let run = &report["runs"][0];
        assert_eq!(run["state"], "FAILED", "{label}: {run}");
        assert_eq!(run["attribution"], "customer", "{label}: {run}");
        let reason = run["reason"].as_str().unwrap_or_default().to_owned();
        assert!(reason.contains(case.says), "{label}: {reason}");
        let key = run["key"].as_str().unwrap();
        // The printed message.
        let error_line = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{label}: no error line: {stderr}"));
        assert_eq!(
            error_line,
            format!("error: run {key} ended FAILED: {reason}"),
            "{label}"
        );
        // The manifest.
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(run["manifest"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(manifest["state"], "FAILED", "{label}");
        assert_eq!(manifest["attribution"], "customer", "{label}");
        assert_eq!(manifest["reason"], reason.as_str(), "{label}");
        // The event.
        let events = events(&stderr);
        assert_eq!(events.len(), 1, "{label}: {stderr}");
        let event = &events[0];
        assert_eq!(event["event_id"], run["event_id"], "{label}");
        assert_eq!(event["state"], "FAILED", "{label}");
        assert_eq!(event["attribution"], "customer", "{label}");
        assert_eq!(event["reason"], reason.as_str(), "{label}");
        // The metric.
        let failed = failure_metrics(&metrics, key);
        assert_eq!(failed.len(), 1, "{label}: one RunsFailed");
        assert_eq!(
            failed[0]["Attribution"], "customer",
            "{label}: {}",
            failed[0]
        );
        assert_eq!(failed[0]["Vendor"], case.vendor, "{label}");
        covered.push((case.vendor, case.step));
    }
    // Each vendor's submit and poll; collect where the vendor has results to collect.
    for vendor in ["amc", "amperity", "adobe", "carto"] {
        for step in [Step::Submit, Step::Poll] {
            assert!(covered.contains(&(vendor, step)), "{vendor} {step:?}");
        }
    }
    for vendor in ["amc", "carto"] {
        assert!(covered.contains(&(vendor, Step::Collect)), "{vendor}");
    }
}
