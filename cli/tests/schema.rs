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
