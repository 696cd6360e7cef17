//! The EMF output of a sandbox run (all four vendors on the simulators), captured and
//! validated against the EMF specification: the structure by `schema/emf.schema.json`, the
//! member references by `emf::check_references`.

use std::sync::{Arc, Mutex};

use runbridge::sandbox::{Quiet, Sandbox, SandboxOptions};
use runbridge_core::emf::check_references;
use serde_json::Value;

/// The EU AMC account's instance (`examples/amc-eu.json`), which only its profile may use.
const EU_INSTANCE: &str = "amceu0123456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_run_emits_valid_emf_for_every_vendor() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    runbridge_handlers::metrics::set_sink(Some(Arc::new(move |line: &str| {
        sink.lock().unwrap().push(line.to_owned())
    })));
    let out = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::simulated(
        &SandboxOptions {
            out: out.path().to_path_buf(),
            speed: 400.0,
        },
        Arc::new(Quiet),
    )
    .await
    .unwrap();
    // One throttled status call of CARTO, which the client retries: a VendorThrottles count.
    // And one of the EU AMC account (its instance is in the path), counted under its profile.
    let faults = &sandbox.sim.as_ref().unwrap().sim.faults;
    for (vendor, path) in [
        (runbridge_core::VendorKind::Carto, ""),
        (runbridge_core::VendorKind::Amc, EU_INSTANCE),
    ] {
        faults.inject(runbridge_sim::FaultRule::new(
            vendor,
            Some("GET"),
            path,
            runbridge_sim::Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            1,
        ));
    }
    for run in futures::future::join_all(
        runbridge::examples::DEMO
            .iter()
            .map(|(_, r)| sandbox.run(r.as_bytes())),
    )
    .await
    {
        run.expect("run completes");
    }
    runbridge_handlers::metrics::set_sink(None);

    let schema: Value = serde_json::from_str(include_str!("../../schema/emf.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let lines = lines.lock().unwrap().clone();
    let docs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    for doc in &docs {
        if let Some(e) = validator.iter_errors(doc).next() {
            panic!("{e} at {} in {doc}", e.instance_path());
        }
        check_references(doc).unwrap_or_else(|e| panic!("{e} in {doc}"));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "runbridge"
        );
    }
    for vendor in ["amc", "amperity", "adobe", "carto"] {
        let of_vendor: Vec<&Value> = docs.iter().filter(|d| d["Vendor"] == vendor).collect();
        for metric in [
            "RunsSubmitted",
            "RunsSucceeded",
            "PollsPerRun",
            "DetectionLagSeconds",
        ] {
            assert!(
                of_vendor.iter().any(|d| d.get(metric).is_some()),
                "{vendor}: no {metric} in {lines:#?}"
            );
        }
        // One submit per example of the vendor (AMC and Amperity also run a named profile),
        // each split by its profile.
        let examples: Vec<&str> = runbridge::examples::DEMO
            .iter()
            .filter(|(name, _)| name.split('-').next() == Some(vendor))
            .map(|(_, r)| *r)
            .collect();
        let submits: Vec<&&Value> = of_vendor
            .iter()
            .filter(|d| d.get("RunsSubmitted").is_some())
            .collect();
        assert_eq!(
            submits.len(),
            examples.len(),
            "{vendor}: one submit per run"
        );
        let mut profiles: Vec<&str> = submits
            .iter()
            .map(|d| d["Profile"].as_str().expect("a Profile dimension"))
            .collect();
        profiles.sort_unstable();
        let mut expected: Vec<String> = examples
            .iter()
            .map(|r| {
                runbridge_core::RunRequest::from_json(r.as_bytes())
                    .unwrap()
                    .profile()
                    .to_owned()
            })
            .collect();
        expected.sort_unstable();
        assert_eq!(profiles, expected, "{vendor}");
    }
    let throttles = |vendor: &str, profile: Option<&str>| -> f64 {
        docs.iter()
            .filter(|d| d["Vendor"] == vendor)
            .filter(|d| profile.is_none_or(|p| d["Profile"] == p))
            .filter_map(|d| d["VendorThrottles"].as_f64())
            .sum()
    };
    assert_eq!(throttles("carto", None), 1.0, "{lines:#?}");
    assert_eq!(throttles("carto", Some("default")), 1.0, "{lines:#?}");
    // The EU account's throttle is its profile's, not the other AMC account's.
    let eu_profile = runbridge::sandbox::DEMO_PROFILES
        .iter()
        .find(|p| p.resource == EU_INSTANCE)
        .unwrap()
        .name;
    assert_eq!(throttles("amc", None), 1.0, "{lines:#?}");
    assert_eq!(throttles("amc", Some(eu_profile)), 1.0, "{lines:#?}");
    for doc in docs.iter().filter(|d| d.get("VendorThrottles").is_some()) {
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Vendor"], ["Vendor", "Profile"]]),
            "{doc}"
        );
    }
    let amc = docs
        .iter()
        .find(|d| d["Vendor"] == "amc" && d.get("RunsSucceeded").is_some())
        .unwrap();
    assert!(amc["CollectBytes"].as_f64().unwrap() > 0.0, "{amc}");
    assert!(amc["CollectMBps"].as_f64().unwrap() > 0.0, "{amc}");
    assert!(amc["CollectSeconds"].as_f64().unwrap() > 0.0, "{amc}");
    assert!(amc["DetectionLagSeconds"].as_f64().unwrap() >= 0.0, "{amc}");
}
