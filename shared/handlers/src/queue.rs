//! The concurrency queue's shared rules: how often a waiting run tries for a slot, how long a
//! slot is leased, and the payload a waiting execution carries. Used by the trigger (a queued
//! run's first input), the admit step and the poll step (renewing a holder's lease).

use runbridge_core::{
    Attribution, BackoffPolicy, HandleRef, IdempotencyKey, OffsetDateTime, RunHandle, SlotHold,
};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::ports::Slots;

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

impl AdmitOutput {
    /// Still waiting: the next attempt in `wait_seconds` (at least 1).
    pub fn wait(handle: &RunHandle, waits: u32, wait_seconds: u64) -> Self {
        Self {
            handle: handle.reference(),
            queued: true,
            failed: false,
            waits,
            wait_seconds: wait_seconds.max(1),
            reason: None,
            attribution: None,
        }
    }

    /// Ended without a vendor run.
    pub fn failed(handle: &RunHandle, waits: u32, reason: &str, attribution: Attribution) -> Self {
        Self {
            handle: handle.reference(),
            queued: false,
            failed: true,
            waits,
            wait_seconds: 0,
            reason: Some(runbridge_core::cut_text(
                reason,
                runbridge_core::MAX_REASON_BYTES,
            )),
            attribution: Some(attribution),
        }
    }
}

/// The execution input the trigger starts a queued run with (`handle`: the entry's waiting
/// handle): the first `Admit` comes at once.
pub fn queued_input(handle: &RunHandle) -> AdmitOutput {
    AdmitOutput {
        wait_seconds: 0,
        ..AdmitOutput::wait(handle, 0, 0)
    }
}

/// Extends the run's slot lease to `until`; true when runs wait for its scope. A failure is only
/// logged: the lease still runs to its old end, and the next poll renews again.
pub async fn renew_slot(
    slots: &dyn Slots,
    slot: Option<&SlotHold>,
    key: &IdempotencyKey,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> bool {
    let Some(hold) = slot else {
        return false;
    };
    match slots.renew(hold, key, now, until).await {
        Ok(renewal) => {
            if !renewal.held {
                tracing::warn!(scope = %hold.scope, slot = hold.slot, "the concurrency slot's lease had run out and another run took it");
            }
            renewal.wanted
        }
        Err(e) => {
            tracing::warn!(error = %e, scope = %hold.scope, "could not renew the concurrency slot's lease");
            false
        }
    }
}
