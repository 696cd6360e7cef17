//! A run's lifecycle, as the idempotency ledger keeps it: one [`LedgerEntry`] per key, in one of
//! the states of [`KeyState`], changed only by the transitions below — methods of the entry that
//! refuse to start from the wrong state ([`IllegalTransition`]), so an entry can only hold a legal
//! combination. The handlers apply them and the ledger port stores the result. This is the one
//! place the lifecycle is explained; the README and `docs/RELIABILITY.md` point here.
//!
//! # States
//!
//! Every entry holds the key and the request as resolved when it was claimed: poll, collect and
//! the stop handler read the request from here on every invocation (the execution carries only a
//! `HandleRef`).
//!
//! | state | also holds | means |
//! |---|---|---|
//! | *(no entry)* | | the key is free: the next delivery claims it |
//! | `Claimed` | `lease_until` | the trigger owns the key and may be calling the vendor until `lease_until` |
//! | `Queued` | its [`QueuePlace`]: `since`, the slot it holds (if any), `vendor_full` | the profile limits runs at once: nothing is submitted, nothing in flight; the execution waits in `WaitForSlot` → `Admit` |
//! | `Admitting` | the place, `submitting_until` | an `Admit` holds a slot and may be calling the vendor until `submitting_until` |
//! | `Submitted` | the [`RecordedRun`] (id, `submitted_at`, the vendor's first state); the place, for a queued run (its slot, given back when the run ends) | the vendor accepted the run; the execution named after the key watches it |
//! | `CollectFailed` | the run, the place, and the [`CollectFailure`] (reason, `at`, `count`, attribution) | the vendor run succeeded, but collecting it failed on runbridge's side |
//!
//! *Finished* is not a state: a run is finished when its `manifest.json` exists (written last, by
//! collect, by the failure record or by the stop handler). The ledger does not duplicate it, and
//! the entry keeps the state it had. A queued run that ended FAILED without a vendor run (refused
//! at admission, or its deadline passed while it waited) stays `Queued` without a slot; its
//! execution has ended, so a redelivery finds that execution and starts nothing.
//!
//! # Transitions
//!
//! ```text
//!                  claimed                      record_submit
//!   (no entry) ───────────▶ Claimed ───────────────────────────────▶ Submitted
//!     │    ▲                 │  │ ▲                                    ▲     │
//!     │    └─────────────────┘  └─┘ unknown outcome: kept until        │     │ record_collect_failure
//!     │    release: the vendor      lease_until, then reconciled       │     ▼
//!     │    definitely refused                                          │  CollectFailed ◀──┐
//!     │ queued: a limited profile                                      │     │             │
//!     ▼                                                                │     └─failed again┘
//!   Queued ──start_submit (slot taken)──▶ Admitting ──record_submit────┘       (count + 1)
//!     ▲                                      │
//!     └── vendor_full / stop_waiting / ──────┘
//!         clear_submit
//! ```
//!
//! | transition | from → to | made by | when |
//! |---|---|---|---|
//! | [`LedgerEntry::claimed`] | none → `Claimed` | trigger | a delivery finds the key free (create-if-absent: S3 `If-None-Match: *`, a hard link locally) |
//! | [`LedgerEntry::queued`] | none → `Queued` | trigger | the same, for a profile with a limit of runs at once |
//! | [`LedgerEntry::record_submit`] | `Claimed` or `Admitting` → `Submitted` | trigger, `Admit`, stop handler | the vendor accepted the run, or `Vendor::find_submitted` found the one an unsettled submit made (recorded as submitted at the claim's time, so concurrent reconcilers write the same entry and start the same execution). The submission protocol writes it only when no run is recorded yet; otherwise the writer takes the stored entry whole |
//! | [`LedgerEntry::check_release`], then the port's `release` | `Claimed` → none | trigger | the vendor certainly created nothing (a 4xx on create, 429 or 503 after the retries, a connection refused or TLS failure before anything was sent, runbridge's own check before the call): the corrected resend claims the key afresh at once. If the delete fails, the claim expires with its lease. A refusal only a change can pass (a 4xx other than 429, a configuration error) also ends the request with a FAILED manifest and its event, which the corrected run's own ending replaces |
//! | [`LedgerEntry::take_slot`] | `Queued`/`Admitting` → the same, holding a slot | `Admit` | a slot of the run's scope was free |
//! | [`LedgerEntry::start_submit`] | `Queued` (or `Admitting`, to submit again after reconciling found nothing) → `Admitting` | `Admit` | it holds a slot and is about to submit; `claimed_at` moves to now, so a later reconciliation searches from here |
//! | [`LedgerEntry::vendor_full`] | `Admitting` → `Queued`, `vendor_full` + 1 | `Admit` | the vendor refused for its own concurrency limit (runs started outside runbridge share it); the run keeps its slot and waits |
//! | [`LedgerEntry::stop_waiting`] | `Queued`/`Admitting` → `Queued` without a slot | `Admit` | the vendor definitely refused the submit, or the deadline passed with nothing in flight: the slot is given back and the run ends FAILED |
//! | [`LedgerEntry::clear_submit`] | `Admitting` → `Queued` | stop handler | a stopped run's admission settled with nothing created (its in-flight time passed, the vendor lists no run) |
//! | [`LedgerEntry::record_collect_failure`] | `Submitted` → `CollectFailed`; `CollectFailed` → `CollectFailed`, `count` + 1 | the failure record (`RecordFailure`) | a collect error on runbridge's side of a succeeded vendor run |
//!
//! A submit whose outcome is unknown (a 5xx, a connection broken after the request left, an
//! unreadable answer, a call cut off at the invocation's deadline) changes nothing: the entry
//! stays `Claimed` or `Admitting`, and after `lease_until` or `submitting_until` the next delivery
//! or `Admit` asks the vendor before submitting again. Where the vendor cannot answer
//! (`Vendor::can_reconcile` false: CARTO; Amperity without a known workflow name) it fails with
//! `Unreconcilable` instead, and the entry stays as it is.
//!
//! Refused rather than written ([`IllegalTransition`]): any way back from `Submitted` or
//! `CollectFailed` to a state without a run; a second run recorded on a `Submitted` entry; a
//! release of anything but `Claimed`; a submit started from anything but a waiting state; a
//! collect failure on an entry with no run. A claim over an existing entry is not a transition:
//! the claim answers the entry it found.
//!
//! # Leases
//!
//! `lease_until` and `submitting_until` are the claiming invocation's deadline (the Lambda
//! context's) plus the trigger's `LEASE_SLACK` (30 s): after that the claimant is certainly gone,
//! so a retry may reconcile at once. Without a known deadline (the CLI, tests) it is the default
//! claim lease (5 minutes) after the claim; an entry written before leases existed reads as
//! [`LEGACY_CLAIM_LEASE`] after its claim.
//!
//! # What a delivery does with each state
//!
//! | the trigger's claim finds | it |
//! |---|---|
//! | nothing | claims the key; submits and records the run (or queues it), then starts the execution named after the key |
//! | an entry with another fingerprint | fails with `KeyConflict` (non-retryable, to the DLQ with both fingerprints); nothing is reused |
//! | `Claimed`, before `lease_until` | fails retryably: another delivery is submitting |
//! | `Claimed`, after `lease_until` | reconciles: records the run the vendor finds, submits if the vendor says there is none, or fails `Unreconcilable` / `Ambiguous` for an operator |
//! | `Queued` or `Admitting` | starts (or finds) the execution with its queued input; `Admit` owns the submit |
//! | `Submitted` | starts (or finds) the execution with the same name and input; if it already existed, announces the key's final manifest when no announcement was recorded |
//! | `CollectFailed` | starts (or finds) the recovery execution `<key>=<count>`, which polls the succeeded vendor run and collects it; nothing is submitted again |
//!
//! The stop handler, for a stopped or timed-out execution: `Submitted` or `CollectFailed` cancels
//! the vendor run and writes a CANCELLED manifest; `Queued` writes one with nothing submitted;
//! `Admitting` first asks the vendor (a run found is recorded, then cancelled; none found while
//! the submit may still land fails the stop retryably); `Claimed` is left alone, since a resend
//! could otherwise double the run being created, and its lease ends it.
//!
//! # Stored shape
//!
//! The stored JSON keeps the shape earlier versions wrote (optional `submitted`, `queued` with
//! `submitting_until`, `collect_failed`, `lease_until` fields, read through a private wire type):
//! entries of runs in flight read back after an upgrade, and a rollback reads what this version
//! wrote. A combination no version writes (a collect failure without a run) is refused on read.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{Attribution, Fingerprint, IdempotencyKey, ResolvedRequest, RunHandle, SlotHold};

/// How long a claim without a recorded lease (written before leases existed) is presumed to
/// belong to a live submitter: longer than the trigger Lambda's timeout.
pub const LEGACY_CLAIM_LEASE: Duration = Duration::minutes(5);

/// What the ledger knows about one key: the request it was claimed for and how far its run got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "wire::StoredEntry", into = "wire::StoredEntry")]
pub struct LedgerEntry {
    /// The key.
    pub key: IdempotencyKey,
    /// The request as resolved when the key was claimed.
    pub request: ResolvedRequest,
    /// The request as sent, hashed ([`Fingerprint::of`]): another body under this key is a key
    /// conflict. Absent in entries written before fingerprints existed (then not compared).
    pub fingerprint: Option<Fingerprint>,
    /// When the claim was made, or when an admission last started a submit: the lower bound of
    /// the vendor's runs a reconciliation lists.
    pub claimed_at: OffsetDateTime,
    /// How far the run got.
    pub state: KeyState,
}

/// The states of a key's run; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    /// A delivery is submitting, or crashed doing so.
    Claimed {
        /// Until when the claimant may still be submitting.
        lease_until: OffsetDateTime,
    },
    /// Waiting for a concurrency slot; nothing submitted, nothing in flight.
    Queued(QueuePlace),
    /// Holding (or having held) a slot, with a submit that may be in flight.
    Admitting {
        /// The run's place in its queue.
        queue: QueuePlace,
        /// Until when the admitting invocation may still be creating the vendor run.
        submitting_until: OffsetDateTime,
    },
    /// The vendor accepted the run.
    Submitted {
        /// The vendor run.
        run: RecordedRun,
        /// The queue it came through, for a profile with a limit of runs at once.
        queue: Option<QueuePlace>,
    },
    /// The vendor run succeeded; collecting it failed on runbridge's side.
    CollectFailed {
        /// The vendor run.
        run: RecordedRun,
        /// The latest failure, and how many there were.
        failure: CollectFailure,
        /// The queue it came through.
        queue: Option<QueuePlace>,
    },
}

/// A queued request's place, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePlace {
    /// When it joined the queue (the trigger's claim): its deadline counts from here.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The slot it holds, once it took one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotHold>,
    /// Times the vendor refused a submit for its own concurrency limit while runbridge's count
    /// had a free slot (runs started outside runbridge share the account).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vendor_full: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A vendor run recorded against a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRun {
    /// The vendor's run id.
    pub vendor_run_id: String,
    /// When the vendor accepted it (a reconciled run: when its key was claimed).
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// The vendor's own state in its answer (Amperity `scheduled`), when it said: the first
    /// timeline entry, kept so a redelivery starts the execution with the same input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_state: Option<String>,
}

/// A collect that failed on runbridge's side (the vendor run succeeded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectFailure {
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How many collects of this key failed so far: the recovery execution's number.
    pub count: u32,
    /// Whose fault it was, as the error said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// A transition asked of an entry in a state it does not start from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger entry {key}: cannot {transition} a run that is {state}")]
pub struct IllegalTransition {
    /// The key.
    pub key: String,
    /// The transition asked for.
    pub transition: &'static str,
    /// The state the entry was in ([`KeyState::name`]).
    pub state: &'static str,
}

impl KeyState {
    /// The state's name, as messages and the operator's views say it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claimed { .. } => "claimed",
            Self::Queued(_) => "queued",
            Self::Admitting { .. } => "admitting",
            Self::Submitted { .. } => "submitted",
            Self::CollectFailed { .. } => "collect_failed",
        }
    }
}

impl LedgerEntry {
    /// A claim by a delivery that submits at once, owned until `lease_until`.
    pub fn claimed(
        key: IdempotencyKey,
        request: ResolvedRequest,
        fingerprint: Fingerprint,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Self {
        Self {
            key,
            request,
            fingerprint: Some(fingerprint),
            claimed_at: now,
            state: KeyState::Claimed { lease_until },
        }
    }

    /// A claim that joins the queue of a profile with a limit of runs at once.
    pub fn queued(
        key: IdempotencyKey,
        request: ResolvedRequest,
        fingerprint: Fingerprint,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            key,
            request,
            fingerprint: Some(fingerprint),
            claimed_at: now,
            state: KeyState::Queued(QueuePlace {
                since: now,
                slot: None,
                vendor_full: 0,
            }),
        }
    }

    /// An entry whose run is already recorded (an import, a test's fixture): what a claim that
    /// submitted at once stores.
    pub fn submitted(
        key: IdempotencyKey,
        request: ResolvedRequest,
        fingerprint: Option<Fingerprint>,
        claimed_at: OffsetDateTime,
        run: RecordedRun,
    ) -> Self {
        Self {
            key,
            request,
            fingerprint,
            claimed_at,
            state: KeyState::Submitted { run, queue: None },
        }
    }

    fn illegal(&self, transition: &'static str) -> IllegalTransition {
        IllegalTransition {
            key: self.key.to_string(),
            transition,
            state: self.state.name(),
        }
    }

    /// The vendor run, once one is recorded.
    pub fn run(&self) -> Option<&RecordedRun> {
        match &self.state {
            KeyState::Submitted { run, .. } | KeyState::CollectFailed { run, .. } => Some(run),
            _ => None,
        }
    }

    /// The run's place in its queue, for a profile with a limit of runs at once.
    pub fn queue(&self) -> Option<&QueuePlace> {
        match &self.state {
            KeyState::Queued(queue) | KeyState::Admitting { queue, .. } => Some(queue),
            KeyState::Submitted { queue, .. } | KeyState::CollectFailed { queue, .. } => {
                queue.as_ref()
            }
            KeyState::Claimed { .. } => None,
        }
    }

    fn queue_mut(&mut self) -> Option<&mut QueuePlace> {
        match &mut self.state {
            KeyState::Queued(queue) | KeyState::Admitting { queue, .. } => Some(queue),
            KeyState::Submitted { queue, .. } | KeyState::CollectFailed { queue, .. } => {
                queue.as_mut()
            }
            KeyState::Claimed { .. } => None,
        }
    }

    /// The concurrency slot the run holds, if any.
    pub fn slot(&self) -> Option<&SlotHold> {
        self.queue().and_then(|q| q.slot.as_ref())
    }

    /// Whether the run waits for (or is being admitted to) a concurrency slot: no vendor run yet.
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, KeyState::Queued(_) | KeyState::Admitting { .. })
    }

    /// Until when a submit may be in flight: the claimant's lease, or an admission's.
    pub fn submitting_until(&self) -> Option<OffsetDateTime> {
        match self.state {
            KeyState::Claimed { lease_until } => Some(lease_until),
            KeyState::Admitting {
                submitting_until, ..
            } => Some(submitting_until),
            _ => None,
        }
    }

    /// The latest collect failure on runbridge's side, if any.
    pub fn collect_failure(&self) -> Option<&CollectFailure> {
        match &self.state {
            KeyState::CollectFailed { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// The run as its execution knows it: the one place a handle is built from an entry. A
    /// recorded run's handle dates from its submission and opens its timeline with the vendor's
    /// own answer; a waiting run's has no vendor run id and dates from when it joined the queue
    /// (its deadline counts from there). `None` for a bare claim: no execution watches it yet.
    pub fn handle(&self) -> Option<RunHandle> {
        if let Some(run) = self.run() {
            return Some(
                RunHandle::new(
                    self.key.clone(),
                    self.request.clone(),
                    run.vendor_run_id.clone(),
                    run.submitted_at,
                )
                .submitted_as(run.vendor_state.as_deref()),
            );
        }
        let queue = self.queue()?;
        Some(RunHandle::queued(
            self.key.clone(),
            self.request.clone(),
            queue.since,
        ))
    }

    /// Records the vendor run a claimant or an admission submitted (or found by reconciling).
    pub fn record_submit(&mut self, run: RecordedRun) -> Result<(), IllegalTransition> {
        let queue = match &self.state {
            KeyState::Claimed { .. } => None,
            KeyState::Admitting { queue, .. } => Some(queue.clone()),
            _ => return Err(self.illegal("record a submit of")),
        };
        self.state = KeyState::Submitted { run, queue };
        Ok(())
    }

    /// A queued run takes (or renews its hold of) a concurrency slot.
    pub fn take_slot(&mut self, hold: SlotHold) -> Result<(), IllegalTransition> {
        if !self.is_waiting() {
            return Err(self.illegal("give a slot to"));
        }
        if let Some(queue) = self.queue_mut() {
            queue.slot = Some(hold);
        }
        Ok(())
    }

    /// An admission is about to submit: a submit may be in flight until `until`. The claim time
    /// moves to `now`, so a later reconciliation lists the vendor's runs from here.
    pub fn start_submit(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<(), IllegalTransition> {
        let queue = match &self.state {
            KeyState::Queued(queue) | KeyState::Admitting { queue, .. } => queue.clone(),
            _ => return Err(self.illegal("start a submit of")),
        };
        self.claimed_at = now;
        self.state = KeyState::Admitting {
            queue,
            submitting_until: until,
        };
        Ok(())
    }

    /// The vendor refused the admission's submit for its own concurrency limit: nothing was
    /// created; the run keeps its slot and waits again.
    pub fn vendor_full(&mut self) -> Result<(), IllegalTransition> {
        let KeyState::Admitting { queue, .. } = &self.state else {
            return Err(self.illegal("count a vendor-full refusal of"));
        };
        let mut queue = queue.clone();
        queue.vendor_full += 1;
        self.state = KeyState::Queued(queue);
        Ok(())
    }

    /// An admission's submit is known to have created nothing (its in-flight time passed and the
    /// vendor lists no run): nothing is in flight any more; the run keeps its slot.
    pub fn clear_submit(&mut self) -> Result<(), IllegalTransition> {
        let KeyState::Admitting { queue, .. } = &self.state else {
            return Err(self.illegal("clear the submit of"));
        };
        self.state = KeyState::Queued(queue.clone());
        Ok(())
    }

    /// The run stops waiting without a vendor run: the vendor definitely refused the admission's
    /// submit, or its deadline passed with nothing in flight, or a stop found that nothing was
    /// created. Returns the slot it held, for the caller to give back.
    pub fn stop_waiting(&mut self) -> Result<Option<SlotHold>, IllegalTransition> {
        let mut queue = match &self.state {
            KeyState::Queued(queue) | KeyState::Admitting { queue, .. } => queue.clone(),
            _ => return Err(self.illegal("stop the wait of")),
        };
        let slot = queue.slot.take();
        self.state = KeyState::Queued(queue);
        Ok(slot)
    }

    /// Collecting the succeeded vendor run failed on runbridge's side.
    pub fn record_collect_failure(
        &mut self,
        reason: String,
        at: OffsetDateTime,
        attribution: Option<Attribution>,
    ) -> Result<(), IllegalTransition> {
        let (run, queue, count) = match &self.state {
            KeyState::Submitted { run, queue } => (run.clone(), queue.clone(), 1),
            KeyState::CollectFailed {
                run,
                queue,
                failure,
            } => (run.clone(), queue.clone(), failure.count + 1),
            _ => return Err(self.illegal("record a collect failure of")),
        };
        self.state = KeyState::CollectFailed {
            run,
            queue,
            failure: CollectFailure {
                reason: crate::redact::redacted(&reason),
                at,
                count,
                attribution,
            },
        };
        Ok(())
    }

    /// Whether the claim may be released (deleted): only a claim without a recorded run, whose
    /// submit the vendor definitely refused.
    pub fn check_release(&self) -> Result<(), IllegalTransition> {
        match self.state {
            KeyState::Claimed { .. } => Ok(()),
            _ => Err(self.illegal("release")),
        }
    }
}

mod wire;
