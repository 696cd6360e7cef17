//! The admission handler: a queued request waits in the state machine for a concurrency slot,
//! and is submitted once it holds one.
//!
//! A profile with a limit of runs at once (AMC: 10 per instance, [`Vendors::concurrency_limit`])
//! is never submitted by the trigger: the trigger records the request as queued and starts the
//! execution at once, whose first states are `WaitForSlot` → `Admit`.
//! - `WaitForSlot` parks the execution on a task token; its Lambda call is
//!   [`Admitter::enqueue`], which puts the run in its scope's line (in arrival order) and, when a
//!   slot is free for it, wakes it at once. Otherwise whoever frees a slot wakes it
//!   ([`crate::queue`]). Waiting makes no vendor call, no poll and no storage read, burns no
//!   retry and never reaches a dead-letter queue; it is bounded by the run's own deadline
//!   (counted from when it joined the queue).
//! - `Admit` ([`Admitter::admit`]) checks that the run holds its slot and submits it.
//!
//! Exactly-once holds as in the trigger: before the vendor is called the entry records that a
//! submit may be in flight (`Admitting`); an admit that finds such a record waits it out and
//! then asks the vendor (`Vendor::find_submitted`) before submitting again. The vendor's own
//! concurrency refusal (runs started outside runbridge share the account) is a wait with the slot
//! kept, not a failure; any other definite refusal ends the run failed, with the vendor's reason
//! in its manifest and event, and hands the slot on.

use std::sync::Arc;

use runbridge_core::{
    Attribution, BackoffPolicy, ConcurrencyLimit, HandleRef, LedgerEntry, OffsetDateTime, SlotHold,
    ADMISSION_LEASE,
};
use runbridge_vendors::{VendorError, Vendors};
use serde::Deserialize;

use crate::ports::{Callbacks, Ledger, Slots, Wake};
use crate::queue::{change, release, wake, SLOT_LEASE_MARGIN};
pub use crate::queue::{AdmitOutput, QUEUE_POLICY};
use crate::submission::{
    adopt_submitted, is_definite_refusal, lease_until, record_run, refused_reason, unreconcilable,
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

/// The enqueue task's payload: the queued run and the token its execution waits on.
#[derive(Debug, Clone, Deserialize)]
pub struct EnqueueInput {
    /// The run.
    pub handle: HandleRef,
    /// The task token of the parked `WaitForSlot` task.
    pub task_token: String,
}

/// What an enqueue did (the Lambda's answer, for logs: a parked task ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enqueued {
    /// The run waits in its scope's line.
    Waiting,
    /// The run holds a slot (or needs none, or has its run already): woken at once.
    Admitted,
}

/// The admission handler's dependencies (hosted by the poll function).
pub struct Admitter {
    /// Vendor clients.
    pub vendors: Vendors,
    /// The idempotency ledger, where the queued request is kept.
    pub ledger: Arc<dyn Ledger>,
    /// The scopes' slots and lines.
    pub slots: Arc<dyn Slots>,
    /// Wakes parked executions.
    pub callbacks: Arc<dyn Callbacks>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The poll wait policy (the first poll's wait after the submit).
    pub policy: BackoffPolicy,
    /// When this invocation will be stopped, if known: bounds the in-flight submit's record.
    pub deadline: Option<OffsetDateTime>,
}

impl Admitter {
    async fn entry(&self, reference: &HandleRef) -> Result<LedgerEntry, HandlerError> {
        self.ledger.get(&reference.key).await?.ok_or_else(|| {
            HandlerError::port(
                "ledger",
                format!("no ledger entry for queued run {}", reference.key),
                false,
            )
        })
    }

    /// Puts the run in its scope's line with the token its execution waits on, and wakes it at
    /// once when it holds a slot: a free one, one given to it before (a lost wake-up), or none
    /// needed (its profile lost its limit, its run is already submitted, its deadline passed —
    /// `Admit` then says what happens).
    pub async fn enqueue(&self, input: EnqueueInput) -> Result<Enqueued, HandlerError> {
        let entry = self.entry(&input.handle).await?;
        let now = self.clock.now();
        let limit = self.vendors.concurrency_limit(&entry.request);
        let (Some(limit), Some(queue), None) = (limit, entry.queue(), entry.run()) else {
            return self.wake_self(&input.task_token, None).await;
        };
        if input.handle.past_deadline(now) {
            return self.wake_self(&input.task_token, None).await;
        }
        let key = &entry.key;
        let token = input.task_token.clone();
        let (admitted, held) = change(self.slots.as_ref(), &limit.scope, |q| {
            let admitted = q.ask(
                key,
                queue.since,
                Some(token.clone()),
                limit.limit,
                now,
                now + ADMISSION_LEASE,
            );
            (admitted, q.held_by(key).map(|h| h.slot))
        })
        .await?;
        // Those the change admitted include this run when a slot was free for it.
        wake(
            self.slots.as_ref(),
            self.callbacks.as_ref(),
            &limit.scope,
            admitted.iter().filter(|a| &a.key != key).cloned().collect(),
            now,
        )
        .await?;
        match held {
            Some(slot) => self.wake_self(&input.task_token, Some(slot)).await,
            None => {
                tracing::info!(scope = %limit.scope, "waiting for a concurrency slot");
                Ok(Enqueued::Waiting)
            }
        }
    }

    async fn wake_self(&self, token: &str, slot: Option<u32>) -> Result<Enqueued, HandlerError> {
        match self
            .callbacks
            .send_task_success(token, serde_json::json!({ "slot": slot }))
            .await?
        {
            Wake::Delivered => Ok(Enqueued::Admitted),
            // The execution stopped waiting (stopped, timed out): nothing to wake.
            Wake::Gone => Ok(Enqueued::Waiting),
        }
    }

    /// Takes up the slot the run was given (or, for an execution that polls for its slot, asks
    /// for one) and submits the run once.
    pub async fn admit(&self, input: AdmitInput) -> Result<AdmitOutput, HandlerError> {
        let mut entry = self.entry(&input.handle).await?;
        let key = entry.key.clone();
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
        let wait = |seconds: u64| AdmitOutput::wait(&waiting, waits, seconds, now);
        let limit = self.vendors.concurrency_limit(&entry.request);
        let in_flight = entry.submitting_until();

        // A submit of an earlier attempt may be in flight: wait it out, then ask the vendor.
        if let Some(until) = in_flight {
            if now < until {
                return Ok(AdmitOutput {
                    try_again: true,
                    ..wait((until - now).whole_seconds().max(1) as u64)
                });
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
            self.leave(&mut entry, limit.as_ref(), now).await?;
            return Ok(AdmitOutput::failed(
                &waiting,
                waits,
                &reason,
                Attribution::Platform,
            ));
        }

        // Take up the slot (or keep it).
        let mut slot_until = None;
        if let Some(limit) = &limit {
            match self.take_slot(&entry, limit, queue.since, now).await? {
                Some((hold, until)) => {
                    slot_until = Some(until);
                    if entry.slot() != Some(&hold) {
                        tracing::info!(scope = %hold.scope, slot = hold.slot, "holds a concurrency slot");
                        entry.take_slot(hold)?;
                    }
                }
                None if in_flight.is_none() => {
                    tracing::info!(scope = %limit.scope, limit = limit.limit, waits, "no slot for this run yet; waiting");
                    let age = (now - queue.since).whole_seconds().max(0) as u64;
                    return Ok(wait(QUEUE_POLICY.next_wait(age, None, u64::MAX)));
                }
                // Lost the slot while a submit may have been made: find out first.
                None => {
                    tracing::warn!(scope = %limit.scope, "slot lost during an unknown submit; reconciling")
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
                return Ok(self.admitted(&entry, input.waits, now).holding(slot_until));
            }
        }

        // Record that a submit may be in flight, then submit. The claim time moves to now: the
        // reconciliation window of a later attempt starts here, not when the request queued.
        entry.start_submit(now, lease_until(self.deadline, now, DEFAULT_CLAIM_LEASE))?;
        self.ledger.update(&entry).await?;
        match vendor.submit(&entry.request, &key).await {
            Ok(run) => {
                record_run(self.ledger.as_ref(), &mut entry, run, self.clock.now()).await?;
                let admitted = self
                    .admitted(&entry, input.waits, self.clock.now())
                    .holding(slot_until);
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
                // created; keep the slot and try again.
                tracing::warn!(%message, "the vendor refused the submit for its concurrency limit; waiting");
                entry.vendor_full()?;
                self.ledger.update(&entry).await?;
                let age = (now - queue.since).whole_seconds();
                let next = QUEUE_POLICY.next_wait(age.max(0) as u64, retry_after_seconds, u64::MAX);
                Ok(AdmitOutput {
                    try_again: true,
                    ..wait(next)
                })
            }
            Err(e) if is_definite_refusal(&e) => {
                tracing::warn!(error = %e, "submit definitely refused; the run fails");
                self.leave(&mut entry, limit.as_ref(), now).await?;
                Ok(AdmitOutput::failed(
                    &waiting,
                    waits,
                    &refused_reason(&e, false),
                    e.attribution(),
                ))
            }
            // Unknown outcome, or a retryable failure after the retries: the entry stays
            // admitting, so the next attempt reconciles before submitting again.
            Err(e) => Err(e.into()),
        }
    }

    /// The slot the run holds and when its lease ends, after making sure of it: a holder whose
    /// lease would end within [`SLOT_LEASE_MARGIN`] has it extended (one given a slot just now
    /// has [`ADMISSION_LEASE`]: its record is read, not written); a run not in the scope's record
    /// (its execution polls for its slot, or its place was lost) asks for one, which may admit it
    /// (and others, who are woken). `None`: it waits.
    async fn take_slot(
        &self,
        entry: &LedgerEntry,
        limit: &ConcurrencyLimit,
        arrived: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<(SlotHold, OffsetDateTime)>, HandlerError> {
        let key = &entry.key;
        let (admitted, hold) = change(self.slots.as_ref(), &limit.scope, |q| {
            let admitted = match q.held_by(key) {
                Some(holder) if holder.until >= now + SLOT_LEASE_MARGIN => Vec::new(),
                _ => q.ask(key, arrived, None, limit.limit, now, now + ADMISSION_LEASE),
            };
            let hold = q.hold_of(&limit.scope, key);
            (admitted, hold.zip(q.held_by(key).map(|h| h.until)))
        })
        .await?;
        let others = admitted.into_iter().filter(|a| &a.key != key).collect();
        wake(
            self.slots.as_ref(),
            self.callbacks.as_ref(),
            &limit.scope,
            others,
            now,
        )
        .await?;
        Ok(hold)
    }

    /// The run stops waiting without a vendor run: it leaves its scope's line or gives back its
    /// slot (the next waiter takes it), and the entry records that.
    async fn leave(
        &self,
        entry: &mut LedgerEntry,
        limit: Option<&ConcurrencyLimit>,
        now: OffsetDateTime,
    ) -> Result<(), HandlerError> {
        if let Some(limit) = limit {
            release(
                self.slots.as_ref(),
                self.callbacks.as_ref(),
                &limit.scope,
                &entry.key,
                now,
            )
            .await?;
        }
        let was_admitting = entry.submitting_until().is_some();
        if entry.stop_waiting()?.is_some() || was_admitting {
            self.ledger.update(entry).await?;
        }
        Ok(())
    }

    /// The answer for a run the vendor accepted: its handle and the first poll's wait.
    fn admitted(&self, entry: &LedgerEntry, waits: u32, now: OffsetDateTime) -> AdmitOutput {
        let handle = entry.handle().expect("a submitted entry has a handle");
        let wait = crate::payload::first_wait(&handle, &self.policy, now);
        AdmitOutput {
            queued: false,
            wait_seconds: wait,
            ..AdmitOutput::wait(&handle, waits, 0, now)
        }
    }
}
