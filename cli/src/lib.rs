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

/// The variable with the CLI's log filter (default `warn`).
pub const LOG_VAR: &str = "RUNBRIDGE_LOG";

/// The variables the CLI itself reads (the operator commands' stack variables are in
/// [`ops::stack`]; the AWS SDK reads the standard `AWS_*` ones): what `docs/SETTINGS.md` lists
/// for the command line.
pub const ENV_VARS: [&str; 3] = [
    LOG_VAR,
    report::NO_COLOR_VAR,
    runbridge_vendors::settings::PROFILES_ENV,
];

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

/// Parses and validates a request as the trigger does, including its `profile` when this machine
/// knows the profiles: with `RUNBRIDGE_PROFILES` set, a named profile must be in that file and
/// belong to the request's vendor (the trigger's rule, [`runbridge_vendors::Settings::check_profile`]).
/// Without it only the deployment knows its profiles, so the trigger alone checks the name.
pub fn validate_request(body: &[u8]) -> Result<runbridge_core::RunRequest, String> {
    let request = runbridge_core::RunRequest::from_json(body).map_err(|e| e.to_string())?;
    if request.profile.is_some()
        && std::env::var_os(runbridge_vendors::settings::PROFILES_ENV).is_some()
    {
        let settings = runbridge_vendors::Settings::local()?;
        settings
            .check_profile(&request)
            .map_err(|e| e.to_string())?;
    }
    Ok(request)
}
