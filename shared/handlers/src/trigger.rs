//! The trigger handler: one request in, at most one vendor run out, and the execution that
//! watches it.
//!
//! The request is validated, its key claimed and the run submitted once through the submission
//! protocol ([`crate::submission`]); a redelivery finds the claim and reuses the recorded run,
//! waits for a live claimant, or reconciles a stale claim with the vendor. A submit the vendor
//! refused for good releases the key and ends the request FAILED ([`end_refused`]). A request whose
//! profile limits runs at once is not submitted here: it is claimed as queued and its execution
//! waits for a slot (the admit step submits it). Either way the execution starts (or is found)
//! with the same input for the same key.

use std::sync::Arc;

use runbridge_core::{
    BackoffPolicy, Fingerprint, IdempotencyKey, KeyState, LedgerEntry, OffsetDateTime,
    ResolvedRequest, RunHandle, RunRequest, RunState,
};
use runbridge_vendors::Vendors;
use time::Duration;
use tracing::Instrument;

use crate::finish::{Ending, Finisher};
use crate::payload::{execution_input, within_budget};
use crate::ports::{Claim, Executions, Ledger, StartOutcome};
use crate::submission::{
    adopt_submitted, is_definite_refusal, lease_until, refused_reason, submit_claimed,
    unreconcilable,
};
pub use crate::submission::{DEFAULT_CLAIM_LEASE, LEASE_SLACK, VENDOR_CALL_MARGIN};
use crate::{Clock, HandlerError};

/// What the trigger did: the run it watches, and which part of that this call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    /// The run (key, resolved request, vendor run id), as the execution was started with it.
    pub handle: RunHandle,
    /// True when this call submitted the run; false when it found it already submitted.
    pub submitted_now: bool,
    /// Whether this call started the execution.
    pub execution: StartOutcome,
    /// True when the run waits in the state machine for a concurrency slot (the admit step
    /// submits it): nothing is submitted yet, and the handle has no vendor run id.
    pub queued: bool,
}

impl Triggered {
    /// The idempotency key (also the execution name).
    pub fn key(&self) -> &IdempotencyKey {
        &self.handle.key
    }

    /// The vendor's run id; `None` while the run waits for a concurrency slot.
    pub fn vendor_run_id(&self) -> Option<&str> {
        self.handle.vendor_run_id.as_deref()
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
    /// See [`DEFAULT_CLAIM_LEASE`]: the lease of a claim when [`Trigger::deadline`] is unknown.
    pub claim_lease: Duration,
    /// When this invocation will be stopped (a Lambda's deadline, wall-clock time), if known. A
    /// claim's lease is this plus [`LEASE_SLACK`], so a retry that comes after this invocation
    /// certainly ended can reconcile at once instead of waiting a fixed lease; and every vendor
    /// call (retries included) ends by this less [`VENDOR_CALL_MARGIN`]
    /// ([`runbridge_vendors::http::within_deadline`]): a submit cut off in flight is an unknown
    /// outcome (claim kept, reconciled later), one that could not be retried in time keeps the
    /// vendor's refusal.
    pub deadline: Option<OffsetDateTime>,
    /// Announces the final manifest of a run whose execution already exists
    /// ([`StartOutcome::AlreadyStarted`]) when no announcement was recorded
    /// ([`Finisher::finish_existing`]): a redelivery then repairs a lost event (the stop
    /// handler's or collect's `PutEvents` failing past their retries). `None`: a redelivery only
    /// finds the execution (a trigger without results-bucket and `PutEvents` access).
    pub announcer: Option<Arc<Finisher>>,
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
        // A profile this deployment does not have (or another vendor's) is a bad request like
        // any other: named, never retried, to the DLQ before the ledger is touched.
        self.vendors.check_profile(&request)?;
        let now = self.clock.now();
        let fingerprint = Fingerprint::of(&request);
        let lease_until = lease_until(self.deadline, now, self.claim_lease);
        let resolved = request.resolve(schedule_time.unwrap_or(now));
        // The key hashes the resolved request, so "yesterday" on two days is two runs.
        let key = IdempotencyKey::for_request(&resolved, schedule_time);
        let span = crate::span::run_span(&key, &resolved, None);
        let work = self
            .handle_keyed(key, resolved, now, fingerprint, lease_until)
            .instrument(span.clone());
        let (result, counts) = runbridge_vendors::http::counted(
            runbridge_vendors::http::within_invocation(self.deadline, work),
        )
        .await;
        if let Some(id) = result.as_ref().ok().and_then(Triggered::vendor_run_id) {
            span.record("vendor_run_id", id);
        }
        crate::metrics::vendor_call_counts(&counts, self.clock.now());
        result
    }

    async fn handle_keyed(
        &self,
        key: IdempotencyKey,
        resolved: ResolvedRequest,
        now: OffsetDateTime,
        fingerprint: Fingerprint,
        lease_until: OffsetDateTime,
    ) -> Result<Triggered, HandlerError> {
        let vendor = self.vendors.for_request(&resolved)?;
        // A profile with a limit of runs at once is submitted by the state machine once it holds
        // a slot, never here: the claim records it as queued.
        let claim = if self.vendors.concurrency_limit(&resolved).is_some() {
            LedgerEntry::queued(key.clone(), resolved, fingerprint.clone(), now)
        } else {
            LedgerEntry::claimed(key.clone(), resolved, fingerprint.clone(), now, lease_until)
        };
        let claim = self.ledger.claim(claim).await?;
        if let Claim::Existing(existing) = &claim {
            if let Some(stored) = existing.fingerprint.as_ref().filter(|f| **f != fingerprint) {
                return Err(HandlerError::KeyConflict {
                    key: key.to_string(),
                    stored: stored.to_string(),
                    received: fingerprint.to_string(),
                });
            }
        }
        let (mut entry, new) = match claim {
            Claim::New(entry) => (entry, true),
            Claim::Existing(entry) => (entry, false),
        };
        let submitted_now = match entry.state {
            KeyState::Queued(_) | KeyState::Admitting { .. } => {
                return self.start_queued(entry).await;
            }
            KeyState::Submitted { .. } | KeyState::CollectFailed { .. } => {
                tracing::info!("key already submitted; reusing the run");
                false
            }
            KeyState::Claimed { .. } if new => {
                tracing::info!("claimed key; submitting");
                self.submit(vendor.as_ref(), &mut entry).await?;
                true
            }
            KeyState::Claimed { lease_until } if now < lease_until => {
                return Err(HandlerError::port(
                    "ledger",
                    format!(
                        "key {key} is being submitted by another delivery (lease until \
                         {lease_until}); retry later"
                    ),
                    true,
                ));
            }
            KeyState::Claimed { .. } => {
                if !vendor.can_reconcile(&entry.request) {
                    let what = format!(
                        "an earlier delivery of {key}, which claimed it at {},",
                        entry.claimed_at
                    );
                    return Err(unreconcilable(
                        &entry,
                        &what,
                        "resend with a new request_id if there is none",
                    ));
                }
                tracing::warn!("stale claim without a run id; reconciling with the vendor");
                if adopt_submitted(self.ledger.as_ref(), vendor.as_ref(), &mut entry, now).await? {
                    false
                } else {
                    self.submit(vendor.as_ref(), &mut entry).await?;
                    true
                }
            }
        };
        let handle = entry.handle().expect("a recorded run has a handle");
        let input = match (entry.queue(), entry.collect_failure()) {
            // A queued run's execution started with its queued input; a redelivery after its
            // admission must find it with that same input.
            (Some(queue), None) => queued_execution_input(&RunHandle::queued(
                key.clone(),
                entry.request.clone(),
                queue.since,
            ))?,
            _ => execution_input(&handle, &self.policy)?,
        };
        // A collect that failed on our side ended the first execution without a manifest: this
        // delivery starts (or finds) the recovery execution, which polls the succeeded vendor run
        // and collects it. Nothing is submitted again.
        let name = match entry.collect_failure() {
            Some(failure) => {
                tracing::warn!(reason = %failure.reason, count = failure.count, "an earlier collect failed on our side; collecting again");
                recovery_execution_name(&key, failure.count)?
            }
            None => key.execution_name(),
        };
        tracing::Span::current().record("vendor_run_id", handle.vendor_run_id_or_empty());
        let execution = self.executions.start(&name, input).await?;
        tracing::info!(?execution, "watching run");
        if execution == StartOutcome::AlreadyStarted {
            self.announce_existing(&handle).await?;
        }
        if submitted_now {
            crate::metrics::run_submitted(&handle, self.clock.now());
        }
        Ok(Triggered {
            handle,
            submitted_now,
            execution,
            queued: false,
        })
    }

    /// Starts (or finds) the execution of a queued run: it waits for a slot and submits then.
    async fn start_queued(&self, entry: LedgerEntry) -> Result<Triggered, HandlerError> {
        let handle = entry.handle().expect("a waiting run has a handle");
        let input = queued_execution_input(&handle)?;
        let execution = self
            .executions
            .start(&entry.key.execution_name(), input)
            .await?;
        tracing::info!(?execution, "queued for a concurrency slot");
        Ok(Triggered {
            handle,
            submitted_now: false,
            execution,
            queued: true,
        })
    }

    /// Submits the claimed entry. A submit the vendor refused for good (its answer blames the
    /// request, the credentials or the permissions: only a change can make it pass) created
    /// nothing and released the key; the request still ends where everyone can see it, as any
    /// failure the customer caused: a FAILED manifest, a `Run Failed` event and a `RunsFailed`
    /// count, then the error (to the DLQ, or the CLI's exit code). The corrected request resent
    /// with the same key claims it afresh and runs; its own end replaces this manifest.
    async fn submit(
        &self,
        vendor: &dyn runbridge_vendors::Vendor,
        entry: &mut LedgerEntry,
    ) -> Result<(), HandlerError> {
        let submitted =
            submit_claimed(self.ledger.as_ref(), vendor, entry, || self.clock.now()).await;
        match submitted {
            Err(HandlerError::Vendor(e)) if is_definite_refusal(&e) && !e.is_retryable() => {
                self.end_refused(entry, &e).await?;
                Err(e.into())
            }
            other => other,
        }
    }

    /// Writes and announces the FAILED ending of a submit the vendor refused for good.
    async fn end_refused(
        &self,
        entry: &LedgerEntry,
        refusal: &runbridge_vendors::VendorError,
    ) -> Result<(), HandlerError> {
        let Some(finisher) = &self.announcer else {
            return Ok(());
        };
        end_refused(finisher, entry, refusal, self.clock.now()).await?;
        Ok(())
    }

    /// A redelivery found the execution already started (running, or ended: succeeded, failed,
    /// stopped): if the key's final manifest exists and no announcement was recorded, announce
    /// it now. A failure is retryable (`PutEvents`, S3), so the delivery comes again.
    async fn announce_existing(&self, handle: &RunHandle) -> Result<(), HandlerError> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        if let Some((outcome, true)) = announcer.finish_existing(handle).await? {
            tracing::warn!(manifest_key = %outcome.manifest_key, event_id = %outcome.event_id, "the run's manifest had no recorded announcement; announced it");
        }
        Ok(())
    }
}

/// Ends the request of `entry`, whose submit the vendor refused for good at `at`: its FAILED
/// manifest (no vendor run; the refusal's attribution and words, and what to do), announced and
/// counted as every ending is.
pub async fn end_refused(
    finisher: &Finisher,
    entry: &LedgerEntry,
    refusal: &runbridge_vendors::VendorError,
    at: OffsetDateTime,
) -> Result<runbridge_core::RunOutcome, HandlerError> {
    let handle = RunHandle::queued(entry.key.clone(), entry.request.clone(), at);
    let ending = Ending {
        state: RunState::Failed,
        reason: Some(refused_reason(refusal, true)),
        attribution: Some(refusal.attribution()),
        files: Vec::new(),
    };
    let outcome = finisher.finish(&handle, ending, None, 0.0).await?;
    tracing::warn!(manifest_key = %outcome.manifest_key, event_id = %outcome.event_id, "submit refused; the request ended FAILED");
    Ok(outcome)
}

/// The most recovery executions a key gets (one per collect that failed on our side).
pub const MAX_COLLECT_RECOVERIES: u32 = 99;

/// The name of the `n`-th recovery execution of `key`: `<key>=<n>`. `=` never occurs in a key,
/// so no key's own execution can take the name; the longest key (77 characters: `amperity_999-` and a 64-character request id) plus `=99`
/// stays within Step Functions' 80.
pub fn recovery_execution_name(key: &IdempotencyKey, n: u32) -> Result<String, HandlerError> {
    if n > MAX_COLLECT_RECOVERIES {
        return Err(HandlerError::CollectFailed(format!(
            "{key}: {n} collects failed on our side; not starting another recovery"
        )));
    }
    Ok(format!("{}={n}", key.execution_name()))
}

/// The state machine's input for a queued run ([`crate::queue::queued_input`]), within budget.
fn queued_execution_input(handle: &RunHandle) -> Result<serde_json::Value, HandlerError> {
    within_budget(
        "the execution input",
        crate::payload::encode(crate::queue::queued_input(handle)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::{OffsetDateTime, MAX_ATTEMPT};

    #[test]
    fn the_longest_key_and_its_last_recovery_fit_an_execution_name() {
        let request = RunRequest::from_value(serde_json::json!({
            "vendor": "amperity", "request_id": "i".repeat(64), "attempt": MAX_ATTEMPT,
            "tenant": "acme", "config_id": "cg-files01"
        }))
        .unwrap()
        .resolve(OffsetDateTime::UNIX_EPOCH);
        let key = IdempotencyKey::for_request(&request, None);
        let name = recovery_execution_name(&key, MAX_COLLECT_RECOVERIES).unwrap();
        assert!(name.len() <= 80, "{name} is {} characters", name.len());
        assert!(recovery_execution_name(&key, MAX_COLLECT_RECOVERIES + 1).is_err());
    }
}
