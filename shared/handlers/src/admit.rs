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

use runbridge_core::{Attribution, BackoffPolicy, HandleRef, OffsetDateTime, RunHandle};
use runbridge_vendors::{VendorError, Vendors};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::ports::{Ledger, LedgerEntry, Queued, Slots};
use crate::trigger::{
    adopt_submitted, is_definite_refusal, record_run, DEFAULT_CLAIM_LEASE, LEASE_SLACK,
};
use crate::{Clock, HandlerError};

/// The wait between admit attempts of a queued run: 10 s at first, growing with the time queued
/// (a tenth of it), at most a minute, so a freed slot is taken within a minute of its release.
pub const QUEUE_POLICY: BackoffPolicy = BackoffPolicy {
    min_wait_seconds: 10,
    max_wait_seconds: 60,
    age_fraction: 0.1,
};

/// How long a slot is leased beyond the wait before the run's next poll: a poll renews it, so
/// only a run whose polls stopped (a crashed or lost execution) loses it, this long after.
pub const SLOT_LEASE_MARGIN: Duration = Duration::minutes(30);

/// The execution input of a queued run, and what every `Admit` answers: the state machine's
/// `IsAdmitted` choice reads `failed` and `queued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmitOutput {
    /// The run: while queued, without a vendor run id, dated from when it joined the queue.
    pub handle: HandleRef,
    /// Still waiting for a slot.
    pub queued: bool,
    /// Ended without a vendor run (the vendor refused it, or no slot freed before its deadline).
    pub failed: bool,
    /// Admit attempts so far (drives the wait).
    pub waits: u32,
    /// Seconds until the next `Admit` (queued) or the first poll (admitted).
    pub wait_seconds: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whose fault a failure was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// The admit task's payload: the queued run's handle and its attempts so far.
#[derive(Debug, Clone, Deserialize)]
pub struct AdmitInput {
    /// The run (its key names the ledger entry).
    pub handle: HandleRef,
    /// Attempts so far.
    #[serde(default)]
    pub waits: u32,
}

/// The handle a queued run's execution carries until it is admitted: no vendor run id, dated
/// from when it joined the queue (its deadline counts from there).
pub fn queued_handle(entry: &LedgerEntry, queued: &Queued) -> RunHandle {
    RunHandle::new(
        entry.key.clone(),
        entry.request.clone(),
        String::new(),
        queued.since,
    )
}

/// The execution input the trigger starts a queued run with: the first `Admit` comes at once.
pub fn queued_input(entry: &LedgerEntry, queued: &Queued) -> AdmitOutput {
    AdmitOutput {
        handle: queued_handle(entry, queued).reference(),
        queued: true,
        failed: false,
        waits: 0,
        wait_seconds: 0,
        reason: None,
        attribution: None,
    }
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
        if entry.submitted.is_some() {
            // An earlier attempt submitted and recorded the run, then its answer was lost.
            return self.admitted(&entry, input.waits, now);
        }
        let Some(mut queued) = entry.queued.clone() else {
            return Err(HandlerError::BadInput(format!(
                "{key} is not queued: its ledger entry has no queue record"
            )));
        };
        let waiting = queued_handle(&entry, &queued);
        let waits = input.waits + 1;
        let wait = |seconds: u64| AdmitOutput {
            handle: waiting.reference(),
            queued: true,
            failed: false,
            waits,
            wait_seconds: seconds.max(1),
            reason: None,
            attribution: None,
        };
        let limit = self.vendors.concurrency_limit(&entry.request);

        // A submit of an earlier attempt may be in flight: wait it out, then ask the vendor.
        if let Some(until) = queued.submitting_until {
            if now < until {
                return Ok(wait((until - now).whole_seconds().max(1) as u64));
            }
        } else if now >= waiting.deadline_at {
            // Nothing is in flight, so nothing exists at the vendor: the run ends here.
            let reason = format!(
                "no submit was possible in {} s of waiting for {} (the run's deadline): {}",
                (now - queued.since).whole_seconds(),
                limit.as_ref().map_or("a slot", |l| l.scope.as_str()),
                if queued.vendor_full > 0 {
                    format!(
                        "the vendor refused {} submits for its own concurrency limit",
                        queued.vendor_full
                    )
                } else {
                    "no slot freed".to_owned()
                }
            );
            if let Some(hold) = queued.slot.take() {
                self.slots.release(&hold, &key).await?;
                entry.queued = Some(queued);
                self.ledger.record_submitted(&entry).await?;
            }
            return Ok(failed(&waiting, waits, reason, Attribution::Platform));
        }

        // Take (or keep) a slot.
        if let Some(limit) = &limit {
            let until =
                now + Duration::seconds(QUEUE_POLICY.max_wait_seconds as i64) + SLOT_LEASE_MARGIN;
            let kept = match &queued.slot {
                Some(hold) => self.slots.renew(hold, &key, now, until).await?.held,
                None => false,
            };
            if !kept {
                match self.slots.acquire(limit, &key, now, until).await? {
                    Some(lease) => {
                        tracing::info!(scope = %lease.hold.scope, slot = lease.hold.slot, "took a concurrency slot");
                        queued.slot = Some(lease.hold);
                    }
                    None if queued.submitting_until.is_none() => {
                        tracing::info!(scope = %limit.scope, limit = limit.limit, waits, "no free slot; waiting");
                        let age = (now - queued.since).whole_seconds().max(0) as u64;
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
        if queued.submitting_until.is_some() {
            if !vendor.can_reconcile(&entry.request) {
                return Err(HandlerError::Unreconcilable(format!(
                    "an earlier admit of {key} may have started a {} run, which the {} API cannot \
                     confirm or deny; check the vendor for it and rerun with a new attempt if \
                     there is none",
                    entry.request.vendor(),
                    entry.request.vendor()
                )));
            }
            // The slot this admit holds is recorded with the run it finds.
            entry.queued = Some(queued.clone());
            if adopt_submitted(self.ledger.as_ref(), vendor.as_ref(), &mut entry, now).await? {
                return self.admitted(&entry, input.waits, now);
            }
        }

        // Record that a submit may be in flight, then submit. The claim time moves to now: the
        // reconciliation window of a later attempt starts here, not when the request queued.
        queued.submitting_until = Some(match self.deadline {
            Some(d) => d + LEASE_SLACK,
            None => now + DEFAULT_CLAIM_LEASE,
        });
        entry.claimed_at = now;
        entry.queued = Some(queued.clone());
        self.ledger.record_submitted(&entry).await?;
        match vendor.submit(&entry.request, &key).await {
            Ok(run) => {
                record_run(self.ledger.as_ref(), &mut entry, run, self.clock.now()).await?;
                let submitted = self.admitted(&entry, input.waits, self.clock.now());
                if let Ok(out) = &submitted {
                    let handle = out.handle.clone().with_request(entry.request.clone());
                    if let Ok(handle) = handle {
                        crate::metrics::run_submitted(&handle, self.clock.now());
                    }
                }
                submitted
            }
            Err(VendorError::Throttled {
                retry_after_seconds,
                message,
                ..
            }) => {
                // The vendor's own count is full (runs outside runbridge share it): nothing was
                // created, keep the slot and try again.
                tracing::warn!(%message, "the vendor refused the submit for its concurrency limit; waiting");
                queued.submitting_until = None;
                queued.vendor_full += 1;
                entry.queued = Some(queued);
                self.ledger.record_submitted(&entry).await?;
                let age = (now - entry.queued.as_ref().map_or(now, |q| q.since)).whole_seconds();
                let next = QUEUE_POLICY.next_wait(age.max(0) as u64, retry_after_seconds, u64::MAX);
                Ok(wait(next))
            }
            Err(e) if is_definite_refusal(&e) => {
                tracing::warn!(error = %e, "submit definitely refused; the run fails");
                if let Some(hold) = queued.slot.take() {
                    self.slots.release(&hold, &key).await?;
                }
                queued.submitting_until = None;
                entry.queued = Some(queued);
                self.ledger.record_submitted(&entry).await?;
                let attribution = e.attribution();
                Ok(failed(
                    &waiting,
                    waits,
                    format!("the submit was refused: {e}"),
                    attribution,
                ))
            }
            // Unknown outcome, or a retryable failure after the retries: `submitting_until`
            // stays, so the next attempt reconciles before submitting again.
            Err(e) => Err(e.into()),
        }
    }

    /// The answer for a run the vendor accepted: its handle and the first poll's wait.
    fn admitted(
        &self,
        entry: &LedgerEntry,
        waits: u32,
        now: OffsetDateTime,
    ) -> Result<AdmitOutput, HandlerError> {
        let handle = entry.handle().expect("a submitted entry has a handle");
        let policy = handle.request.backoff(self.policy);
        let wait = policy.next_wait(0, None, handle.remaining_seconds(now));
        Ok(AdmitOutput {
            handle: handle.reference(),
            queued: false,
            failed: false,
            waits,
            wait_seconds: wait,
            reason: None,
            attribution: None,
        })
    }
}

fn failed(handle: &RunHandle, waits: u32, reason: String, attribution: Attribution) -> AdmitOutput {
    AdmitOutput {
        handle: handle.reference(),
        queued: false,
        failed: true,
        waits,
        wait_seconds: 0,
        reason: Some(runbridge_core::cut_text(
            &reason,
            runbridge_core::MAX_REASON_BYTES,
        )),
        attribution: Some(attribution),
    }
}

/// Whether `key`'s entry says it waits for (or holds) a slot and has no vendor run yet.
pub fn is_queued(entry: &LedgerEntry) -> bool {
    entry.queued.is_some() && entry.submitted.is_none()
}
