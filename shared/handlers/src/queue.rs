//! The concurrency queue's shared protocol: how a scope's record ([`ScopeQueue`]) is changed
//! (read, change, one conditional write, again on a conflict), how admitted waiters are woken
//! (their task token), and how a run gives its slot back. Used by the enqueue and admit steps,
//! the poll step (a holder's lease; the final poll gives the slot back), collect's failure
//! record and the stop handler.
//!
//! A queued execution parks on a `.waitForTaskToken` task (`WaitForSlot`): the enqueue step
//! puts the run in its scope's line with the token and returns; nothing runs, polls or reads
//! while it waits. Whoever frees a slot hands it to the oldest waiter in the same write and
//! wakes it with `SendTaskSuccess`. A wake-up that is lost (the releaser crashed between the
//! write and the call) is recovered when the parked task's timeout (`park_seconds`, at most
//! [`PARK_SECONDS_MAX`]) passes: it asks again and finds the slot already its own.

use std::time::Duration as StdDuration;

use runbridge_core::{
    Admitted, Attribution, BackoffPolicy, HandleRef, IdempotencyKey, OffsetDateTime, RunHandle,
    ScopeQueue, ADMISSION_LEASE,
};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::ports::{Callbacks, Slots, Wake};
use crate::HandlerError;

/// The wait between admit attempts of a run whose vendor refused it for the vendor's own
/// concurrency limit (runs started outside runbridge share the account), and between the
/// attempts of an execution started by a definition that polled for its slot: 10 s at first,
/// growing with the time queued (a tenth of it), at most a minute.
pub const QUEUE_POLICY: BackoffPolicy = BackoffPolicy {
    min_wait_seconds: 10,
    max_wait_seconds: 60,
    age_fraction: 0.1,
};

/// The longest a parked execution waits before it asks again by itself: the bound on how late a
/// lost wake-up is noticed (shorter than [`ADMISSION_LEASE`], so the slot is still its own).
pub const PARK_SECONDS_MAX: u64 = 3_600;

/// A holder's lease runs at least this long past its next poll; a poll that finds it shorter
/// extends it by [`HOLDER_LEASE_EXTENSION`]. Only a run whose polls stopped (an execution that
/// died without giving its slot back) loses its slot, this long after.
pub const SLOT_LEASE_MARGIN: Duration = Duration::minutes(30);

/// How far a renewal extends a holder's lease beyond its next poll: long, so that most polls
/// find the lease long enough and write nothing.
pub const HOLDER_LEASE_EXTENSION: Duration = Duration::hours(3);

/// Conflicting writes a change of a scope's record survives before it fails retryably.
const CHANGE_ATTEMPTS: u32 = 30;

/// The execution input of a queued run, and what every `Admit` answers: the state machine's
/// `IsAdmitted` choice reads `failed`, `try_again` and `queued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmitOutput {
    /// The run: while queued, without a vendor run id, dated from when it joined the queue.
    pub handle: HandleRef,
    /// Still waiting for a slot (parks again, unless `try_again`).
    pub queued: bool,
    /// Try `Admit` again after `wait_seconds` without parking: the run holds its slot but the
    /// vendor refused the submit for its own concurrency limit, or a submit may be in flight.
    #[serde(default)]
    pub try_again: bool,
    /// Ended without a vendor run (the vendor refused it, or no slot freed before its deadline).
    pub failed: bool,
    /// Admit attempts so far.
    pub waits: u32,
    /// Seconds until the next `Admit` (queued) or the first poll (admitted).
    pub wait_seconds: u64,
    /// The longest the next park waits before asking again by itself (until the run's deadline,
    /// at most [`PARK_SECONDS_MAX`]).
    #[serde(default = "default_park_seconds")]
    pub park_seconds: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whose fault a failure was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// On a failure: nothing is left running at the vendor (the admission failed before a
    /// submit, or the vendor refused it), so recording the failure cancels nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<bool>,
}

fn default_park_seconds() -> u64 {
    PARK_SECONDS_MAX
}

/// How long a park of `handle` may last at `now`: until its deadline (a park that ends there
/// asks again and finds the deadline passed), at least a second, at most [`PARK_SECONDS_MAX`].
pub fn park_seconds(handle: &HandleRef, now: OffsetDateTime) -> u64 {
    handle.remaining_seconds(now).clamp(1, PARK_SECONDS_MAX)
}

impl AdmitOutput {
    /// Still waiting: parks again (or, for an execution that polls for its slot, the next attempt
    /// in `wait_seconds`).
    pub fn wait(handle: &RunHandle, waits: u32, wait_seconds: u64, now: OffsetDateTime) -> Self {
        Self {
            handle: handle.reference(),
            queued: true,
            try_again: false,
            failed: false,
            waits,
            wait_seconds: wait_seconds.max(1),
            park_seconds: park_seconds(handle, now),
            reason: None,
            attribution: None,
            settled: None,
        }
    }

    /// Ended without a vendor run.
    pub fn failed(handle: &RunHandle, waits: u32, reason: &str, attribution: Attribution) -> Self {
        Self {
            handle: handle.reference(),
            queued: false,
            try_again: false,
            failed: true,
            waits,
            wait_seconds: 0,
            park_seconds: 1,
            reason: Some(runbridge_core::cut_text(
                reason,
                runbridge_core::MAX_REASON_BYTES,
            )),
            attribution: Some(attribution),
            settled: Some(true),
        }
    }
}

impl AdmitOutput {
    /// The answer for a run admitted holding a slot whose lease ends at `slot_until` (carried
    /// in its handle, so its polls read the scope's record only near the lease's end).
    pub fn holding(mut self, slot_until: Option<OffsetDateTime>) -> Self {
        self.handle.slot_until = slot_until;
        self
    }
}

/// The execution input the trigger starts a queued run with (`handle`: the entry's waiting
/// handle): it parks for a slot at once.
pub fn queued_input(handle: &RunHandle) -> AdmitOutput {
    AdmitOutput {
        wait_seconds: 0,
        ..AdmitOutput::wait(handle, 0, 0, handle.submitted_at)
    }
}

/// Changes `scope`'s record with `f`: read, apply, one conditional write; on a conflict (another
/// function changed it first) again from the read. A change that leaves the record as it was
/// writes nothing. Returns what `f` returned on the attempt that was stored.
pub async fn change<T>(
    slots: &dyn Slots,
    scope: &str,
    mut f: impl FnMut(&mut ScopeQueue) -> T,
) -> Result<T, HandlerError> {
    for attempt in 0..CHANGE_ATTEMPTS {
        let stored = slots.read(scope).await?;
        let mut queue = stored.queue.clone();
        let out = f(&mut queue);
        if queue == stored.queue
            || slots
                .write(scope, &queue, stored.version.as_deref())
                .await?
        {
            return Ok(out);
        }
        // Spread the retries of writers that collided, so they do not collide again.
        let jitter = rand::random_range(1..=10u64) * u64::from(attempt + 1);
        tokio::time::sleep(StdDuration::from_millis(jitter)).await;
    }
    Err(HandlerError::port(
        "slots",
        format!("the record of {scope} changed under {CHANGE_ATTEMPTS} writes in a row; retry"),
        true,
    ))
}

/// What a waiter is told when it is given a slot (the parked task's output, at
/// `$.admission`).
fn admission(slot: u32) -> serde_json::Value {
    serde_json::json!({ "slot": slot })
}

/// Wakes the waiters a change admitted (those parked on a token; the others ask again by
/// themselves). A waiter whose execution no longer waits on that token (stopped) is taken out of
/// the line — unless it has parked again since on a new token (its park timed out just as the
/// slot came), which keeps what it was given, which may admit the next one, woken in turn. A wake-up that fails otherwise is only
/// logged: the waiter finds its slot when its park times out.
pub async fn wake(
    slots: &dyn Slots,
    callbacks: &dyn Callbacks,
    scope: &str,
    mut admitted: Vec<Admitted>,
    now: OffsetDateTime,
) -> Result<(), HandlerError> {
    while let Some(next) = admitted.pop() {
        let Some(token) = next.task_token else {
            continue;
        };
        match callbacks
            .send_task_success(&token, admission(next.slot))
            .await
        {
            Ok(Wake::Delivered) => {
                tracing::info!(%scope, waiter = %next.key, slot = next.slot, "handed the slot on")
            }
            Ok(Wake::Gone) => {
                tracing::info!(%scope, waiter = %next.key, "the waiter's execution no longer waits; skipping it");
                let more = change(slots, scope, |q| {
                    q.wake_failed(&next.key, &token, now, now + ADMISSION_LEASE)
                })
                .await?;
                admitted.extend(more);
            }
            Err(e) => {
                tracing::warn!(error = %e, %scope, waiter = %next.key, "could not wake the waiter; its park's timeout recovers it")
            }
        }
    }
    Ok(())
}

/// `key` gives back its slot in `scope`, or its place in the line, and the oldest waiters take
/// the freed slots at once.
pub async fn release(
    slots: &dyn Slots,
    callbacks: &dyn Callbacks,
    scope: &str,
    key: &IdempotencyKey,
    now: OffsetDateTime,
) -> Result<(), HandlerError> {
    let admitted = change(slots, scope, |q| q.leave(key, now, now + ADMISSION_LEASE)).await?;
    tracing::info!(%scope, admitted = admitted.len(), "gave the concurrency slot back");
    wake(slots, callbacks, scope, admitted, now).await
}

/// Whether a lease ending at `until` (as the run last stored it) still runs long enough past
/// its next poll at `next_poll`: then the poll need not read the scope's record.
pub fn lease_lasts(until: Option<OffsetDateTime>, next_poll: OffsetDateTime) -> bool {
    until.is_some_and(|until| until >= next_poll + SLOT_LEASE_MARGIN)
}

/// Keeps `key`'s lease in `scope` running past its next poll (`next_poll`); when it ends now, if
/// `key` still holds a slot. Writes only when the lease would end too soon.
pub async fn renew(
    slots: &dyn Slots,
    scope: &str,
    key: &IdempotencyKey,
    next_poll: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, HandlerError> {
    change(slots, scope, |q| {
        q.renew(
            key,
            next_poll + SLOT_LEASE_MARGIN,
            next_poll + HOLDER_LEASE_EXTENSION,
        )
    })
    .await
}
