//! A run's lifecycle as the ledger keeps it: one [`LedgerEntry`] per idempotency key, whose
//! [`KeyState`] says how far the run got. This is the one place the lifecycle is explained; the
//! handlers apply its transitions and the ledger port stores the result.
//!
//! ```text
//!                 ┌─definite refusal─▶ released (the entry is deleted)
//!                 │
//!  Claimed{lease_until} ──submit accepted / reconciled──▶ Submitted{run}
//!                                                            │   ▲
//!  Queued{queue} ──start_submit──▶ Admitting{queue, until}   │   └─(recovery collects again)
//!    ▲   │ ▲                          │  │  │                │
//!    │   │ └──vendor full / refused / settled empty──┘  │  │ collect failed on our side
//!    │   └──give_up_waiting (deadline, no slot)         │  ▼
//!    │                            submit accepted ──────┘  CollectFailed{run, failure}
//!    └── (a queued request joins here)                  ──▶ Submitted{run, queue}
//! ```
//!
//! - **Claimed**: a delivery owns the key and is submitting (or crashed doing so). Until
//!   `lease_until` the claimant may still be at work, so another delivery retries later; after
//!   it, the vendor is asked whether the run exists before anything is submitted again.
//! - **Queued**: the request's profile limits runs at once (AMC: 10 per instance); nothing is
//!   submitted and nothing is in flight. The execution waits for a concurrency slot.
//! - **Admitting**: a queued run took its slot and a submit may be in flight until
//!   `submitting_until`; a later attempt asks the vendor before submitting again.
//! - **Submitted**: the vendor accepted the run; the execution watches it and collect ends it
//!   with the run's `manifest.json` (the ledger does not duplicate the manifest).
//! - **CollectFailed**: the vendor run succeeded but collecting it failed on runbridge's side; the
//!   next delivery of the request starts a recovery execution that collects it again.
//! - *released*: a claim whose submit the vendor definitely refused is deleted, so a corrected
//!   resend claims the key afresh; the refusal's reason travels in the error and the DLQ message.
//!
//! Each transition is a method of [`LedgerEntry`] that refuses to start from the wrong state
//! ([`IllegalTransition`]), so an entry can only hold a legal combination. The stored JSON keeps
//! the shape earlier versions wrote (optional `submitted`, `queued`, `collect_failed`,
//! `lease_until` fields): entries of runs in flight read back after an upgrade, and a rollback
//! reads what this version wrote.

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
                reason,
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

/// The stored shape: optional fields, as every version wrote them. Read through
/// [`LedgerEntry`]'s `TryFrom`, which refuses a combination no version writes.
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub(super) struct StoredEntry {
        key: IdempotencyKey,
        request: ResolvedRequest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<Fingerprint>,
        #[serde(with = "time::serde::rfc3339")]
        claimed_at: OffsetDateTime,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time::serde::rfc3339::option"
        )]
        lease_until: Option<OffsetDateTime>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        submitted: Option<RecordedRun>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collect_failed: Option<CollectFailure>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queued: Option<StoredQueue>,
    }

    #[derive(Serialize, Deserialize)]
    struct StoredQueue {
        #[serde(flatten)]
        place: QueuePlace,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time::serde::rfc3339::option"
        )]
        submitting_until: Option<OffsetDateTime>,
    }

    impl TryFrom<StoredEntry> for LedgerEntry {
        type Error = String;

        fn try_from(s: StoredEntry) -> Result<Self, String> {
            let queue = s.queued.as_ref().map(|q| q.place.clone());
            let state = match (s.submitted, s.collect_failed, s.queued) {
                (Some(run), Some(failure), _) => KeyState::CollectFailed {
                    run,
                    failure,
                    queue,
                },
                (Some(run), None, _) => KeyState::Submitted { run, queue },
                (None, Some(_), _) => {
                    return Err(format!(
                        "ledger entry {}: a collect failure without a submitted run",
                        s.key
                    ))
                }
                (None, None, Some(q)) => match q.submitting_until {
                    Some(submitting_until) => KeyState::Admitting {
                        queue: q.place,
                        submitting_until,
                    },
                    None => KeyState::Queued(q.place),
                },
                (None, None, None) => KeyState::Claimed {
                    lease_until: s.lease_until.unwrap_or(s.claimed_at + LEGACY_CLAIM_LEASE),
                },
            };
            Ok(LedgerEntry {
                key: s.key,
                request: s.request,
                fingerprint: s.fingerprint,
                claimed_at: s.claimed_at,
                state,
            })
        }
    }

    impl From<LedgerEntry> for StoredEntry {
        fn from(e: LedgerEntry) -> Self {
            let mut stored = StoredEntry {
                key: e.key,
                request: e.request,
                fingerprint: e.fingerprint,
                claimed_at: e.claimed_at,
                lease_until: None,
                submitted: None,
                collect_failed: None,
                queued: None,
            };
            let queued = |place: QueuePlace, submitting_until| StoredQueue {
                place,
                submitting_until,
            };
            match e.state {
                KeyState::Claimed { lease_until } => stored.lease_until = Some(lease_until),
                KeyState::Queued(place) => stored.queued = Some(queued(place, None)),
                KeyState::Admitting {
                    queue,
                    submitting_until,
                } => stored.queued = Some(queued(queue, Some(submitting_until))),
                KeyState::Submitted { run, queue } => {
                    stored.submitted = Some(run);
                    stored.queued = queue.map(|q| queued(q, None));
                }
                KeyState::CollectFailed {
                    run,
                    failure,
                    queue,
                } => {
                    stored.submitted = Some(run);
                    stored.collect_failed = Some(failure);
                    stored.queued = queue.map(|q| queued(q, None));
                }
            }
            stored
        }
    }
}
