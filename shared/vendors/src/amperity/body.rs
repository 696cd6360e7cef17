//! The `POST /workflow/runs` body (`WorkflowRunRequest`): `config_id`, and for courier groups
//! `range_from`, `range_to` and `run_mode`.

use runbridge_core::request::{AmperityRun, AmperityRunMode};
use runbridge_core::ResolvedRequest;
use runbridge_core::{format_utc, parse_utc};
use serde::Serialize;

use super::VENDOR;
use crate::spec::run_of;
use crate::VendorError;

/// The start request body (`WorkflowRunRequest`).
#[derive(Debug, Serialize)]
pub(super) struct StartBody<'a> {
    config_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_mode: Option<&'static str>,
}

/// The body for a run whose window is already resolved.
pub(super) fn start_body(run: &AmperityRun) -> StartBody<'_> {
    StartBody {
        config_id: &run.config_id,
        range_from: run.range_from.as_deref().map(canonical),
        range_to: run.range_to.as_deref().map(canonical),
        run_mode: run.run_mode.map(|m| match m {
            AmperityRunMode::Full => "full",
            AmperityRunMode::Refresh => "refresh",
            AmperityRunMode::Source => "source",
        }),
    }
}

/// One UTC form on the wire whatever the request wrote (a date, `+00:00`, lower-case `z`):
/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`. Validation already parsed the bound, so this cannot fail for a
/// validated request; an unparsable one is sent as written and refused by Amperity.
fn canonical(value: &str) -> String {
    parse_utc("range", value)
        .map(format_utc)
        .unwrap_or_else(|_| value.to_owned())
}

/// The JSON body `POST /workflow/runs` sends for `request`.
pub fn create_body(request: &ResolvedRequest) -> Result<serde_json::Value, VendorError> {
    let run: &AmperityRun = run_of(request)?;
    serde_json::to_value(start_body(run))
        .map_err(|e| VendorError::protocol(VENDOR, format!("cannot encode the start body: {e}")))
}
