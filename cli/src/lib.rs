//! The runbridge command line as a library, so tests drive exactly what the binary does.
//!
//! [`sandbox`] wires the real handlers to local ports (a results directory, a directory ledger,
//! the deployed state machine run by the local ASL interpreter) and either the embedded vendor
//! simulators or the real vendor APIs. [`examples`] holds the example requests and [`report`]
//! prints progress and the summary table.
#![deny(missing_docs)]

pub mod examples;
pub mod input;
pub mod ops;
pub mod report;
pub mod sandbox;

/// The JSON Schema of `manifest.json`, generated from the types.
pub fn manifest_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(runbridge_core::Manifest))
        .expect("schema serialises")
}

/// The JSON Schema of the `detail` of the `Run Completed` / `Run Failed` events.
pub fn event_detail_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(runbridge_core::RunOutcome))
        .expect("schema serialises")
}

/// The JSON Schema of a run request, generated from the types with the validator's constraints.
pub fn request_schema() -> serde_json::Value {
    runbridge_core::request::schema::request_schema()
}
