//! The trigger handler: one request in, at most one vendor run out, and the execution that
//! watches it.
//!
//! Exactly-once rests on the [`Ledger`]: the key is claimed before the vendor is called and the
//! vendor run id recorded right after. A redelivery finds the claim and reuses the recorded run.
//! A claim without a run id means another delivery is submitting (or crashed while doing so):
//! while the claim's lease lasts the delivery is retried later; after it, the vendor is asked
//! whether the run exists ([`Vendor::find_submitted`]) before anything is submitted again. Where
//! the vendor cannot answer that ([`Vendor::can_reconcile`] is false, e.g. CARTO), nothing is
//! resubmitted: the request fails with [`HandlerError::Unreconcilable`] for an operator, because a
//! duplicate run is the one failure runbridge cannot undo.

use std::sync::Arc;

use runbridge_core::{BackoffPolicy, IdempotencyKey, OffsetDateTime, RunHandle, RunRequest};
use runbridge_vendors::{ReconcileWindow, SubmittedRun, Vendor, VendorError, Vendors};
use time::Duration;

use crate::ports::{Claim, Executions, Ledger, LedgerEntry, StartOutcome, Submitted};
use crate::{Clock, HandlerError};

/// How long a claim without a vendor run id is presumed to belong to a live submitter. Longer
/// than the trigger Lambda's timeout, so a claim older than this is a crashed submitter's.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::minutes(5);

/// What the trigger did: the run it watches, and which part of that this call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    /// The run (key, resolved request, vendor run id), as the execution was started with it.
    pub handle: RunHandle,
    /// True when this call submitted the run; false when it found it already submitted.
    pub submitted_now: bool,
    /// Whether this call started the execution.
    pub execution: StartOutcome,
}

impl Triggered {
    /// The idempotency key (also the execution name).
    pub fn key(&self) -> &IdempotencyKey {
        &self.handle.key
    }

    /// The vendor's run id.
    pub fn vendor_run_id(&self) -> &str {
        &self.handle.vendor_run_id
    }
}

/// The trigger's dependencies.
pub struct Trigger {
    /// Vendor clients.
    pub vendors: Vendors,
    /// The idempotency ledger.
    pub ledger: Arc<dyn Ledger>,
    /// Where executions start.
    pub executions: Arc<dyn Executions>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The poll wait policy (for the first wait).
    pub policy: BackoffPolicy,
    /// See [`DEFAULT_CLAIM_LEASE`].
    pub claim_lease: Duration,
}

impl Trigger {
    /// Handles a raw request document. `schedule_time` is when the schedule fired or the message
    /// was sent; it anchors relative windows and, without a `request_id`, the key.
    pub async fn handle_bytes(
        &self,
        body: &[u8],
        schedule_time: Option<OffsetDateTime>,
    ) -> Result<Triggered, HandlerError> {
        let request = RunRequest::from_json(body)?;
        self.handle(request, schedule_time).await
    }

    /// Handles a parsed request.
    pub async fn handle(
        &self,
        request: RunRequest,
        schedule_time: Option<OffsetDateTime>,
    ) -> Result<Triggered, HandlerError> {
        request.validate()?;
        let now = self.clock.now();
        let resolved = request.resolve(schedule_time.unwrap_or(now));
        // The key hashes the resolved request, so "yesterday" on two days is two runs.
        let key = IdempotencyKey::for_request(&resolved, schedule_time);
        let vendor = self.vendors.get(resolved.vendor())?;
        let span = tracing::info_span!("trigger", key = %key, vendor = %resolved.vendor());
        let _enter = span.enter();

        let claim = self
            .ledger
            .claim(LedgerEntry {
                key: key.clone(),
                request: resolved,
                claimed_at: now,
                submitted: None,
            })
            .await?;
        let (entry, submitted_now) = match claim {
            Claim::New(mut entry) => {
                tracing::info!("claimed key; submitting");
                self.submit(vendor.as_ref(), &mut entry).await?;
                (entry, true)
            }
            Claim::Existing(entry) if entry.submitted.is_some() => {
                tracing::info!("key already submitted; reusing the run");
                (entry, false)
            }
            Claim::Existing(mut entry) => {
                if now - entry.claimed_at < self.claim_lease {
                    return Err(HandlerError::port(
                        "ledger",
                        format!("key {key} is being submitted by another delivery; retry later"),
                        true,
                    ));
                }
                if !vendor.can_reconcile(&entry.request) {
                    return Err(HandlerError::Unreconcilable(format!(
                        "an earlier delivery of {key} claimed it at {} and may have started a {} run, \
                         which the {} API cannot confirm or deny; check the vendor for it and resend \
                         with a new request_id if there is none",
                        entry.claimed_at,
                        entry.request.vendor(),
                        entry.request.vendor()
                    )));
                }
                tracing::warn!("stale claim without a run id; reconciling with the vendor");
                match vendor
                    .find_submitted(
                        &entry.request,
                        &key,
                        ReconcileWindow::after_claim(entry.claimed_at, now),
                    )
                    .await?
                {
                    Some(found) => {
                        self.record(&mut entry, reconciled(found), now).await?;
                        (entry, false)
                    }
                    None => {
                        self.submit(vendor.as_ref(), &mut entry).await?;
                        (entry, true)
                    }
                }
            }
        };
        let submitted = entry.submitted.clone().expect("entry is submitted here");
        let handle = RunHandle::new(
            key.clone(),
            entry.request.clone(),
            submitted.vendor_run_id.clone(),
            submitted.submitted_at,
        )
        .submitted_as(submitted.vendor_state.as_deref());
        let input = execution_input(&handle, &self.policy);
        let execution = self.executions.start(&key.execution_name(), input).await?;
        tracing::info!(vendor_run_id = %submitted.vendor_run_id, ?execution, "watching run");
        Ok(Triggered {
            handle,
            submitted_now,
            execution,
        })
    }

    async fn submit(
        &self,
        vendor: &dyn Vendor,
        entry: &mut LedgerEntry,
    ) -> Result<(), HandlerError> {
        match vendor.submit(&entry.request, &entry.key).await {
            Ok(run) => self.record(entry, run, self.clock.now()).await,
            Err(VendorError::OutcomeUnknown {
                vendor: kind,
                message,
            }) if !vendor.can_reconcile(&entry.request) => {
                Err(HandlerError::Unreconcilable(format!(
                "the {kind} submit of {} may have started a run ({message}), and the {kind} API \
                 cannot confirm or deny it; check the vendor for it and resend with a new \
                 request_id if there is none",
                entry.key
            )))
            }
            Err(VendorError::OutcomeUnknown {
                vendor: kind,
                message,
            }) => {
                tracing::warn!(%message, "submit outcome unknown; asking the vendor");
                // From the claim (less a small clock skew) to now: never a run started before
                // this request was claimed (`runbridge_vendors::RECONCILE_CLOCK_SKEW`).
                let window = ReconcileWindow::after_claim(entry.claimed_at, self.clock.now());
                match vendor
                    .find_submitted(&entry.request, &entry.key, window)
                    .await
                {
                    Ok(Some(found)) => {
                        self.record(entry, reconciled(found), self.clock.now())
                            .await
                    }
                    // More than one run matches: an operator decides (non-retryable, DLQ).
                    Err(e @ VendorError::Ambiguous { .. }) => Err(e.into()),
                    // Keep the claim: the next delivery after the lease reconciles again.
                    Ok(None) | Err(_) => Err(VendorError::OutcomeUnknown {
                        vendor: kind,
                        message,
                    }
                    .into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record(
        &self,
        entry: &mut LedgerEntry,
        run: SubmittedRun,
        at: OffsetDateTime,
    ) -> Result<(), HandlerError> {
        entry.submitted = Some(Submitted {
            vendor_run_id: run.vendor_run_id,
            submitted_at: at,
            vendor_state: run.vendor_state,
        });
        self.ledger.record_submitted(entry).await
    }
}

/// A run found by reconciliation: its listed state is not what the vendor answered at
/// submission, so it does not open the timeline (the first poll does).
fn reconciled(found: SubmittedRun) -> SubmittedRun {
    SubmittedRun {
        vendor_state: None,
        ..found
    }
}

/// The state machine's input for a new run: the handle and the first wait.
pub fn execution_input(handle: &RunHandle, policy: &BackoffPolicy) -> serde_json::Value {
    let wait = policy.next_wait(0, None, handle.remaining_seconds(handle.submitted_at));
    serde_json::json!({ "handle": handle, "wait_seconds": wait })
}
