//! The exactly-once submission protocol, shared by the trigger (a claimed key), the admit step (a
//! queued run that took its slot) and the stop handler (a stop during an admission).
//!
//! Exactly-once rests on the [`Ledger`]: the key is claimed (or the admission recorded) before the
//! vendor is called and the vendor run recorded right after. A later attempt that finds a claim
//! or an admission without a run asks the vendor whether the run exists
//! ([`Vendor::find_submitted`]) before anything is submitted again ([`adopt_submitted`]). Where
//! the vendor cannot answer that ([`Vendor::can_reconcile`] is false, e.g. CARTO), nothing is
//! resubmitted: the request fails with [`HandlerError::Unreconcilable`] ([`unreconcilable`]) for
//! an operator, because a duplicate run is the one failure runbridge cannot undo. A submit the
//! vendor definitely refused ([`is_definite_refusal`]) created nothing, so its claim is released.

use runbridge_core::{LedgerEntry, OffsetDateTime, RecordedRun};
use runbridge_vendors::{ReconcileWindow, SubmittedRun, Vendor, VendorError};
use time::Duration;

use crate::ports::Ledger;
use crate::HandlerError;

/// How long a claim without a vendor run id is presumed to belong to a live submitter when the
/// submitter's own deadline is unknown. Longer than the trigger Lambda's timeout, so a claim
/// older than this is a crashed submitter's.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::minutes(5);

/// Added to the claimant's own deadline (the Lambda's remaining time) to make its lease: after
/// that the claimant is certainly gone, so a later delivery may reconcile.
pub const LEASE_SLACK: Duration = Duration::seconds(30);

/// Vendor calls stop this long before the invocation's deadline: what is left records the run
/// (or releases the claim) and starts the execution before the Lambda is stopped.
pub use runbridge_vendors::http::VENDOR_CALL_MARGIN;

/// Until when a submitter whose invocation ends at `deadline` (if known) may still be creating
/// the vendor run: that deadline plus [`LEASE_SLACK`], or `now` plus `default` when unknown.
pub fn lease_until(
    deadline: Option<OffsetDateTime>,
    now: OffsetDateTime,
    default: Duration,
) -> OffsetDateTime {
    match deadline {
        Some(d) => d + LEASE_SLACK,
        None => now + default,
    }
}

/// The error for a submit (`what`, naming the key) that may have created a vendor run the
/// vendor's API cannot confirm or deny: an operator checks the vendor, and `then` says what to
/// do after. The one wording of this message.
pub fn unreconcilable(entry: &LedgerEntry, what: &str, then: &str) -> HandlerError {
    let vendor = entry.request.vendor();
    HandlerError::Unreconcilable(format!(
        "{what} may have started a {vendor} run, which the {vendor} API cannot confirm or deny; \
         check the vendor for it and {then}"
    ))
}

/// Submits the claimed `entry` once and records the run. An unknown outcome is reconciled with
/// the vendor at once where its API can list runs (the claim stays otherwise, for the next
/// delivery after its lease); a definite refusal releases the claim, so a corrected resend (or
/// SQS's next delivery) claims the key afresh instead of waiting out a lease.
pub async fn submit_claimed(
    ledger: &dyn Ledger,
    vendor: &dyn Vendor,
    entry: &mut LedgerEntry,
    now: impl Fn() -> OffsetDateTime,
) -> Result<(), HandlerError> {
    match vendor.submit(&entry.request, &entry.key).await {
        Ok(run) => record_run(ledger, entry, run, now()).await,
        Err(VendorError::OutcomeUnknown {
            vendor: kind,
            message,
        }) if !vendor.can_reconcile(&entry.request) => Err(unreconcilable(
            entry,
            &format!("the {kind} submit of {} ({message})", entry.key),
            "resend with a new request_id if there is none",
        )),
        Err(VendorError::OutcomeUnknown {
            vendor: kind,
            message,
        }) => {
            tracing::warn!(%message, "submit outcome unknown; asking the vendor");
            match adopt_submitted(ledger, vendor, entry, now()).await {
                Ok(true) => Ok(()),
                // More than one run matches: an operator decides (non-retryable, DLQ).
                Err(HandlerError::Vendor(e @ VendorError::Ambiguous { .. })) => Err(e.into()),
                // The ledger failed recording what was found: the next delivery finds it again.
                Err(e @ HandlerError::Port { .. }) => Err(e),
                // Keep the claim: the next delivery after the lease reconciles again. Say how far
                // this one got, so the operator reading the error knows what was checked.
                Ok(false) => Err(VendorError::OutcomeUnknown {
                    vendor: kind,
                    message: format!(
                        "{message}; the {kind} API lists no run of this request since its claim \
                         (yet: a run created just now may appear later); the claim is kept, and \
                         a delivery after its lease asks again before submitting"
                    ),
                }
                .into()),
                Err(e) => Err(VendorError::OutcomeUnknown {
                    vendor: kind,
                    message: format!(
                        "{message}; asking the {kind} API whether the run exists did not settle \
                         it ({e}); the claim is kept, and a delivery after its lease asks again \
                         before submitting; if this persists, look for the run at the vendor \
                         and resend with a new request_id if there is none"
                    ),
                }
                .into()),
            }
        }
        Err(e) if is_definite_refusal(&e) => {
            tracing::info!(error = %e, "submit definitely refused; releasing the claim");
            release(ledger, entry).await;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The reason a submit refused for good ends with, in its manifest, event and message: the
/// vendor's words and what to do next. `same_key`: whether the corrected request may be resent
/// under the same key (the trigger released it), or needs a new `request_id` or `attempt` (a
/// refusal at admission: the key's execution has ended).
pub fn refused_reason(refusal: &VendorError, same_key: bool) -> String {
    let resend = if same_key {
        "resend it with the same request_id"
    } else {
        "resend it with a new request_id or the next attempt"
    };
    format!(
        "the submit was refused by the vendor, so nothing was created: {refusal}; fix the \
         request (or the account's access) and {resend}"
    )
}

/// Releases a claim whose submit was definitely refused. A failure is only logged: the claim
/// then expires with its lease.
async fn release(ledger: &dyn Ledger, entry: &LedgerEntry) {
    if let Err(e) = entry.check_release() {
        tracing::warn!(error = %e, "not releasing the claim");
        return;
    }
    if let Err(release) = ledger.release(&entry.key).await {
        tracing::warn!(error = %release, "could not release the claim; it expires with its lease");
    }
}

/// Records the vendor run in the key's entry, unless another delivery recorded one first (two
/// reconcilers of the same stale claim): then this delivery takes the stored entry whole instead
/// of overwriting it. Overwriting would erase what was written since — the other delivery's
/// execution may already have failed its collect and recorded it, and a blind write would take
/// that back, so every later delivery found that failed execution instead of starting the
/// recovery.
pub async fn record_run(
    ledger: &dyn Ledger,
    entry: &mut LedgerEntry,
    run: SubmittedRun,
    at: OffsetDateTime,
) -> Result<(), HandlerError> {
    if let Some(stored) = ledger.get(&entry.key).await? {
        if stored.run().is_some() && stored.fingerprint == entry.fingerprint {
            tracing::info!(vendor_run_id = ?stored.run().map(|r| &r.vendor_run_id), "another delivery recorded the run first; using its entry");
            *entry = stored;
            return Ok(());
        }
    }
    entry.record_submit(RecordedRun {
        vendor_run_id: run.vendor_run_id,
        submitted_at: at,
        vendor_state: run.vendor_state,
    })?;
    ledger.update(entry).await
}

/// Asks the vendor for the run an unsettled submit of `entry` may have created (listed from its
/// claim to `now`) and records the one it finds ([`record_run`]); whether there was one. The
/// trigger (a stale claim), the admit step (an in-flight record) and the stop handler (a stop
/// during an admission) all settle an unknown submit this way.
///
/// A found run is recorded as submitted at its claim's time (the submit followed the claim at
/// once), not at the time it was found, and without the listed state (not what the vendor
/// answered at submission, so the first poll opens the timeline): two deliveries reconciling the
/// same key at once then write the same entry and start the execution with the same input,
/// instead of the second one's `ExecutionAlreadyExists` with another input dead-lettering it.
pub async fn adopt_submitted(
    ledger: &dyn Ledger,
    vendor: &dyn Vendor,
    entry: &mut LedgerEntry,
    now: OffsetDateTime,
) -> Result<bool, HandlerError> {
    // From the claim (less a small clock skew) to now: never a run started before this request
    // was claimed (`runbridge_vendors::RECONCILE_CLOCK_SKEW`).
    let window = ReconcileWindow::after_claim(entry.claimed_at, now);
    let Some(found) = vendor
        .find_submitted(&entry.request, &entry.key, window)
        .await?
    else {
        return Ok(false);
    };
    let found = SubmittedRun {
        vendor_state: None,
        ..found
    };
    let at = entry.claimed_at;
    record_run(ledger, entry, found, at).await?;
    Ok(true)
}

/// Whether a failed submit certainly started no vendor run: the vendor answered with a refusal
/// (4xx incl. 401/403/404/429, or 503 — which the HTTP layer retries and reports as
/// `Throttled`/`Unavailable`), the connection was refused or TLS failed before a byte was sent
/// (`Unavailable` without a status: an unsafe request is only reported so when it was not sent),
/// or runbridge's configuration stopped the call. An `OutcomeUnknown` or an unreadable answer to
/// the create (`Protocol`) may hide a created run, so those keep the claim.
pub fn is_definite_refusal(e: &VendorError) -> bool {
    // A list of the definite ones, so a future variant keeps the claim until classified.
    matches!(
        e,
        VendorError::Rejected { .. }
            | VendorError::Unauthorized { .. }
            | VendorError::Forbidden { .. }
            | VendorError::NotFound { .. }
            | VendorError::Throttled { .. }
            | VendorError::Unavailable { .. }
            | VendorError::Config { .. }
            | VendorError::DownloadRefused { .. }
    )
}
