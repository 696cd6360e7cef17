//! Cancelling a run's vendor run when runbridge ends the run before the vendor did — a stopped,
//! timed-out or failed execution, a failure recorded while the vendor run still goes — and the
//! one wording of what the cancel did, which the manifest's reason carries.

use runbridge_core::RunHandle;
use runbridge_vendors::{CancelOutcome, RunRef, Vendors};

use crate::HandlerError;

/// Asks the vendor to cancel `handle`'s run; what happened, as a manifest's reason says it. A
/// cancel the vendor may accept later (a retryable error) is an error, so the caller's retry (the
/// event's, the task's) asks again rather than recording a cancel that did not happen.
pub async fn cancel_vendor_run(
    vendors: &Vendors,
    handle: &RunHandle,
) -> Result<String, HandlerError> {
    let Some(id) = handle.vendor_run_id.as_deref() else {
        return Ok("it was waiting for a concurrency slot: nothing had been submitted".to_owned());
    };
    let vendor = vendors.for_request(&handle.request)?;
    let run = RunRef {
        request: &handle.request,
        vendor_run_id: id,
    };
    Ok(match vendor.cancel(run).await {
        Ok(CancelOutcome::Requested) => format!("{} run {id} cancelled", handle.vendor()),
        Ok(CancelOutcome::AlreadyFinal) => format!(
            "{} run {id} had already ended; nothing to cancel",
            handle.vendor()
        ),
        Ok(CancelOutcome::Unsupported) => format!(
            "{} has no cancel; run {id} continues at the vendor",
            handle.vendor()
        ),
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "cancel failed; it will be asked again");
            return Err(e.into());
        }
        Err(e) => format!(
            "cancelling {} run {id} failed: {e}; it may continue at the vendor",
            handle.vendor()
        ),
    })
}
