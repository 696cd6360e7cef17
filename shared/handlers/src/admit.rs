//! The admit handler: a queued request waits in the state machine for a concurrency slot, and
//! is submitted once it holds one.
//!
//! A profile with a limit of runs at once (AMC: 10 per instance, [`Vendors::concurrency_limit`])
//! is never submitted by the trigger: the trigger records the request as queued and starts the
//! execution at once, whose first states are `WaitForSlot` → `Admit`. Each `Admit` either takes a
//! slot ([`Slots`]) and submits, or answers how long to wait before trying again. Waiting makes
//! no vendor call, burns no retry and never reaches a dead-letter queue; it is bounded by the
//! run's own deadline (counted from when it joined the queue).
//!
//! Exactly-once holds as in the trigger: before the vendor is called the entry records that a
//! submit may be in flight (`submitting_until`); an admit that finds such a record waits it out
//! and then asks the vendor ([`Vendor::find_submitted`]) before submitting again. The vendor's
//! own concurrency refusal (runs started outside runbridge share the account) is a wait, not a
//! failure; any other definite refusal ends the run failed, with the vendor's reason in its
//! manifest and event, and frees the slot.

use std::sync::Arc;

use runbridge_core::{Attribution, BackoffPolicy, HandleRef, LedgerEntry, OffsetDateTime};
use runbridge_vendors::{VendorError, Vendors};
use serde::Deserialize;
use time::Duration;

use crate::ports::{Ledger, Slots};
pub use crate::queue::{AdmitOutput, QUEUE_POLICY, SLOT_LEASE_MARGIN};
use crate::submission::{
    adopt_submitted, is_definite_refusal, lease_until, record_run, unreconcilable,
    DEFAULT_CLAIM_LEASE,
};
use crate::{Clock, HandlerError};

/// The admit task's payload: the queued run's handle and its attempts so far.
#[derive(Debug, Clone, Deserialize)]
pub struct AdmitInput {
    /// The run (its key names the ledger entry).
    pub handle: HandleRef,
    /// Attempts so far.
    #[serde(default)]
    pub waits: u32,
}

/// The admit handler's dependencies (hosted by the poll function).
pub struct Admitter {
    /// Vendor clients.
    pub vendors: Vendors,
    /// The idempotency ledger, where the queued request is kept.
    pub ledger: Arc<dyn Ledger>,
    /// The concurrency slots.
    pub slots: Arc<dyn Slots>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The poll wait policy (the first poll's wait after the submit).
    pub policy: BackoffPolicy,
    /// When this invocation will be stopped, if known: bounds the in-flight submit's record.
    pub deadline: Option<OffsetDateTime>,
}

impl Admitter {
    /// One attempt to admit the queued run `input.handle` names.
    pub async fn admit(&self, input: AdmitInput) -> Result<AdmitOutput, HandlerError> {
        let key = input.handle.key.clone();
        let Some(mut entry) = self.ledger.get(&key).await? else {
            return Err(HandlerError::port(
                "ledger",
                format!("no ledger entry for queued run {key}"),
                false,
            ));
        };
        let now = self.clock.now();
        if entry.run().is_some() {
            // An earlier attempt submitted and recorded the run, then its answer was lost.
            return Ok(self.admitted(&entry, input.waits, now));
        }
        let (Some(queue), Some(waiting)) = (entry.queue().cloned(), entry.handle()) else {
            return Err(HandlerError::BadInput(format!(
                "{key} is not queued: its ledger entry is {}",
                entry.state.name()
            )));
        };
        let waits = input.waits + 1;
        let wait = |seconds: u64| AdmitOutput::wait(&waiting, waits, seconds);
        let limit = self.vendors.concurrency_limit(&entry.request);
        let in_flight = entry.submitting_until();

        // A submit of an earlier attempt may be in flight: wait it out, then ask the vendor.
        if let Some(until) = in_flight {
            if now < until {
                return Ok(wait((until - now).whole_seconds().max(1) as u64));
            }
        } else if now >= waiting.deadline_at {
            // Nothing is in flight, so nothing exists at the vendor: the run ends here.
            let reason = format!(
                "no submit was possible in {} s of waiting for {} (the run's deadline): {}",
                (now - queue.since).whole_seconds(),
                limit.as_ref().map_or("a slot", |l| l.scope.as_str()),
                if queue.vendor_full > 0 {
                    format!(
                        "the vendor refused {} submits for its own concurrency limit",
                        queue.vendor_full
                    )
                } else {
                    "no slot freed".to_owned()
                }
            );
            if let Some(hold) = entry.stop_waiting()? {
                self.slots.release(&hold, &key).await?;
                self.ledger.update(&entry).await?;
            }
            return Ok(AdmitOutput::failed(
                &waiting,
                waits,
                &reason,
                Attribution::Platform,
            ));
        }

        // Take (or keep) a slot.
        if let Some(limit) = &limit {
            let until =
                now + Duration::seconds(QUEUE_POLICY.max_wait_seconds as i64) + SLOT_LEASE_MARGIN;
            let kept = match &queue.slot {
                Some(hold) => self.slots.renew(hold, &key, now, until).await?.held,
                None => false,
            };
            if !kept {
                match self.slots.acquire(limit, &key, now, until).await? {
                    Some(lease) => {
                        tracing::info!(scope = %lease.hold.scope, slot = lease.hold.slot, "took a concurrency slot");
                        entry.take_slot(lease.hold)?;
                    }
                    None if in_flight.is_none() => {
                        tracing::info!(scope = %limit.scope, limit = limit.limit, waits, "no free slot; waiting");
                        let age = (now - queue.since).whole_seconds().max(0) as u64;
                        return Ok(wait(QUEUE_POLICY.next_wait(age, None, u64::MAX)));
                    }
                    // Lost the slot while a submit may have been made: find out first.
                    None => {
                        tracing::warn!(scope = %limit.scope, "slot lease lost during an unknown submit; reconciling")
                    }
                }
            }
        }

        let vendor = self.vendors.for_request(&entry.request)?;
        if in_flight.is_some() {
            if !vendor.can_reconcile(&entry.request) {
                return Err(unreconcilable(
                    &entry,
                    &format!("an earlier admit of {key}"),
                    "rerun with a new attempt if there is none",
                ));
            }
            // The slot this admit holds is recorded with the run it finds.
            if adopt_submitted(self.ledger.as_ref(), vendor.as_ref(), &mut entry, now).await? {
                return Ok(self.admitted(&entry, input.waits, now));
            }
        }

        // Record that a submit may be in flight, then submit. The claim time moves to now: the
        // reconciliation window of a later attempt starts here, not when the request queued.
        entry.start_submit(now, lease_until(self.deadline, now, DEFAULT_CLAIM_LEASE))?;
        self.ledger.update(&entry).await?;
        match vendor.submit(&entry.request, &key).await {
            Ok(run) => {
                record_run(self.ledger.as_ref(), &mut entry, run, self.clock.now()).await?;
                let admitted = self.admitted(&entry, input.waits, self.clock.now());
                if let Some(handle) = entry.handle() {
                    crate::metrics::run_submitted(&handle, self.clock.now());
                }
                Ok(admitted)
            }
            Err(VendorError::Throttled {
                retry_after_seconds,
                message,
                ..
            }) => {
                // The vendor's own count is full (runs outside runbridge share it): nothing was
                // created, keep the slot and try again.
                tracing::warn!(%message, "the vendor refused the submit for its concurrency limit; waiting");
                entry.vendor_full()?;
                self.ledger.update(&entry).await?;
                let age = (now - queue.since).whole_seconds();
                let next = QUEUE_POLICY.next_wait(age.max(0) as u64, retry_after_seconds, u64::MAX);
                Ok(wait(next))
            }
            Err(e) if is_definite_refusal(&e) => {
                tracing::warn!(error = %e, "submit definitely refused; the run fails");
                let slot = entry.stop_waiting()?;
                release_slot_strictly(self.slots.as_ref(), slot, &key).await?;
                self.ledger.update(&entry).await?;
                Ok(AdmitOutput::failed(
                    &waiting,
                    waits,
                    &format!("the submit was refused: {e}"),
                    e.attribution(),
                ))
            }
            // Unknown outcome, or a retryable failure after the retries: the entry stays
            // admitting, so the next attempt reconciles before submitting again.
            Err(e) => Err(e.into()),
        }
    }

    /// The answer for a run the vendor accepted: its handle and the first poll's wait.
    fn admitted(&self, entry: &LedgerEntry, waits: u32, now: OffsetDateTime) -> AdmitOutput {
        let handle = entry.handle().expect("a submitted entry has a handle");
        let policy = handle.request.backoff(self.policy);
        let wait = policy.next_wait(0, None, handle.remaining_seconds(now));
        AdmitOutput {
            queued: false,
            wait_seconds: wait,
            ..AdmitOutput::wait(&handle, waits, 0)
        }
    }
}

/// Gives back a slot before the entry records that the run no longer holds it: a failure fails
/// the attempt (retried), so the entry never forgets a slot that is still held.
async fn release_slot_strictly(
    slots: &dyn Slots,
    slot: Option<runbridge_core::SlotHold>,
    key: &runbridge_core::IdempotencyKey,
) -> Result<(), HandlerError> {
    match slot {
        Some(hold) => slots.release(&hold, key).await,
        None => Ok(()),
    }
}
