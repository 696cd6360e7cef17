//! The checked-in JSON Schema is the one the types generate.

#[test]
fn checked_in_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&runbridge::request_schema()).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/run-request.schema.json"
    );
    let checked_in = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        checked_in.trim(),
        generated.trim(),
        "schema/run-request.schema.json is stale: run `cargo run -p runbridge -- schema > schema/run-request.schema.json`"
    );
}

/// The output contract: `manifest.json` and the event detail have checked-in schemas that match
/// the types, and what a sandbox run writes validates against them.
#[test]
fn checked_in_output_schemas_match_the_types() {
    for (generated, file, of) in [
        (
            runbridge::manifest_schema(),
            "manifest.schema.json",
            "manifest",
        ),
        (
            runbridge::event_detail_schema(),
            "run-event-detail.schema.json",
            "event",
        ),
    ] {
        let path = format!("{}/../schema/{file}", env!("CARGO_MANIFEST_DIR"));
        let checked_in = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            checked_in.trim(),
            serde_json::to_string_pretty(&generated).unwrap().trim(),
            "schema/{file} is stale: run `cargo run -p runbridge -- schema {of} > schema/{file}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_run_writes_documents_that_match_the_output_schemas() {
    use std::sync::Arc;

    use runbridge::sandbox::{Quiet, Sandbox, SandboxOptions};

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
    let (_, request) = runbridge::examples::DEMO
        .iter()
        .find(|(name, _)| name.contains("amc"))
        .expect("an AMC example");
    let run = sandbox.run(request.as_bytes()).await.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run.manifest).unwrap()).unwrap();
    let manifest_schema = jsonschema::validator_for(&runbridge::manifest_schema()).unwrap();
    if let Some(e) = manifest_schema.iter_errors(&manifest).next() {
        panic!("manifest: {e} at {}", e.instance_path());
    }
    let parsed: runbridge_core::Manifest = serde_json::from_value(manifest.clone()).unwrap();
    let detail = serde_json::to_value(runbridge_core::RunOutcome::of(&parsed, "k")).unwrap();
    let event_schema = jsonschema::validator_for(&runbridge::event_detail_schema()).unwrap();
    if let Some(e) = event_schema.iter_errors(&detail).next() {
        panic!("event detail: {e} at {}", e.instance_path());
    }
    // `rows` counts the header record: every AMC part has a header and data.
    for file in manifest["files"].as_array().unwrap() {
        assert!(file["rows"].as_u64().unwrap() >= 2, "{file}");
    }
    // A document that breaks the contract is refused (the check can fail).
    let mut broken = manifest.clone();
    broken["state"] = "DONE".into();
    assert!(!manifest_schema.is_valid(&broken));
}
