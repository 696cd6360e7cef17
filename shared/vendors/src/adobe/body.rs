//! The `POST /runs` body, as Adobe's on-demand ingestion tutorial shows it: `flowId` and
//! `params` (`startTime`, `windowStartTime`, `windowEndTime` as unix-second strings, and
//! `deltaColumn: {name}` only when the request has one). Reconciliation reuses the window reader
//! so it compares exactly the window a submit sends.

use runbridge_core::request::AdobeRun;
use runbridge_core::{OffsetDateTime, ResolvedRequest};
use serde_json::{json, Value};

use super::VENDOR;
use crate::spec::run_of;
use crate::VendorError;

/// The Adobe part of a request (its window already resolved by the trigger).
pub(super) fn adobe_run(request: &ResolvedRequest) -> Result<&AdobeRun, VendorError> {
    run_of::<AdobeRun>(request)
}

/// Unix seconds of a validated request time (RFC 3339 UTC or a bare date).
fn unix_seconds(field: &str, value: &str) -> Result<i64, VendorError> {
    // The one rule request validation applies (UTC, whole seconds, no leap second), so a bound
    // the client can send is exactly one validation accepts.
    runbridge_core::request::amc::check_whole_seconds(field, value)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| VendorError::Rejected {
            vendor: VENDOR,
            status: 0,
            field: Some(e.field),
            message: format!("{} (rejected before sending)", e.rule),
        })
}

/// The window of a resolved request, in unix seconds.
pub(super) fn window_seconds(run: &AdobeRun) -> Result<(i64, i64), VendorError> {
    match (&run.window_start, &run.window_end) {
        (Some(start), Some(end)) => Ok((
            unix_seconds("window_start", start)?,
            unix_seconds("window_end", end)?,
        )),
        _ => Err(VendorError::Rejected {
            vendor: VENDOR,
            status: 0,
            field: Some("window_start".into()),
            message: "a window is required".into(),
        }),
    }
}

/// The `POST /runs` body, as Adobe's on-demand ingestion tutorial shows it.
pub fn create_run_body(
    request: &ResolvedRequest,
    now: OffsetDateTime,
) -> Result<Value, VendorError> {
    let run = adobe_run(request)?;
    let start = match &run.start_time {
        Some(t) => unix_seconds("start_time", t)?,
        None => now.unix_timestamp(),
    };
    let (window_start, window_end) = window_seconds(run)?;
    let mut params = json!({
        "startTime": start.to_string(),
        "windowStartTime": window_start.to_string(),
        "windowEndTime": window_end.to_string(),
    });
    if let Some(column) = &run.delta_column {
        params["deltaColumn"] = json!({"name": column});
    }
    Ok(json!({"flowId": run.flow_id, "params": params}))
}
