//! The `POST /workflow/runs` body (`WorkflowRunRequest`): `config_id`, and for courier groups
//! `range_from`, `range_to` and `run_mode`.

use std::borrow::Cow;

use runbridge_core::request::{AmperityRun, AmperityRunMode};
use runbridge_core::{OffsetDateTime, RunRequest};
use serde::Serialize;

use super::VENDOR;
use crate::spec::run_of;
use crate::VendorError;

/// The start request body (`WorkflowRunRequest`).
#[derive(Debug, Serialize)]
pub(super) struct StartBody<'a> {
    config_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_mode: Option<&'static str>,
}

/// `request` with a relative window resolved against now, as [`RunRequest::resolve`] documents
/// for requests without a schedule time; the trigger normally resolves it first.
pub(super) fn resolved_now(request: &RunRequest) -> Result<Cow<'_, RunRequest>, VendorError> {
    Ok(
        if run_of::<AmperityRun>(request)?.relative_window.is_some() {
            Cow::Owned(request.resolve(OffsetDateTime::now_utc()))
        } else {
            Cow::Borrowed(request)
        },
    )
}

/// The body for a run whose window is already resolved.
pub(super) fn start_body(run: &AmperityRun) -> StartBody<'_> {
    StartBody {
        config_id: &run.config_id,
        range_from: run.range_from.as_deref(),
        range_to: run.range_to.as_deref(),
        run_mode: run.run_mode.map(|m| match m {
            AmperityRunMode::Full => "full",
            AmperityRunMode::Refresh => "refresh",
            AmperityRunMode::Source => "source",
        }),
    }
}

/// The JSON body `POST /workflow/runs` sends for `request` (a relative window resolved now).
pub fn create_body(request: &RunRequest) -> Result<serde_json::Value, VendorError> {
    let request = resolved_now(request)?;
    let run: &AmperityRun = run_of(&request)?;
    serde_json::to_value(start_body(run))
        .map_err(|e| VendorError::protocol(VENDOR, format!("cannot encode the start body: {e}")))
}
