//! The run handle: the small document that travels between Step Functions states.
//!
//! Step Functions caps a state's input at 256 KiB, so the handle carries ids and times, never
//! data; its state timeline only grows on a state change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{IdempotencyKey, ResolvedRequest, RunState, RunStatus, VendorKind};

/// Most state changes kept in a handle; vendors have fewer than this many states.
const MAX_TIMELINE: usize = 32;

/// One observed change of a run's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateChange {
    /// The common state.
    pub state: RunState,
    /// The vendor's own state.
    pub vendor_state: String,
    /// When runbridge first saw it (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
}

/// Everything needed to poll, cancel and collect one submitted run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHandle {
    /// The idempotency key; also the execution name and the `run=` key segment.
    pub key: IdempotencyKey,
    /// The request with relative windows resolved.
    pub request: ResolvedRequest,
    /// The vendor's id for the run.
    pub vendor_run_id: String,
    /// When the vendor accepted the run.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// When runbridge gives up and cancels.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline_at: OffsetDateTime,
    /// Status calls made so far.
    #[serde(default)]
    pub polls: u32,
    /// State changes seen so far, oldest first.
    #[serde(default)]
    pub timeline: Vec<StateChange>,
    /// The last poll that saw the run unfinished: the vendor ended it after this, so the time
    /// from here to the first final state seen bounds how late runbridge noticed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_unfinished_at: Option<OffsetDateTime>,
}

impl RunHandle {
    /// A handle for a run the vendor accepted at `submitted_at`.
    pub fn new(
        key: IdempotencyKey,
        request: ResolvedRequest,
        vendor_run_id: String,
        submitted_at: OffsetDateTime,
    ) -> Self {
        let deadline_at = submitted_at + Duration::seconds(request.deadline_seconds() as i64);
        Self {
            key,
            request,
            vendor_run_id,
            submitted_at,
            deadline_at,
            polls: 0,
            timeline: vec![StateChange {
                state: RunState::Pending,
                vendor_state: "submitted".into(),
                at: submitted_at,
            }],
            last_unfinished_at: None,
        }
    }

    /// The vendor of the run.
    pub fn vendor(&self) -> VendorKind {
        self.request.vendor()
    }

    /// The last state seen.
    pub fn last_state(&self) -> RunState {
        self.timeline.last().map_or(RunState::Pending, |c| c.state)
    }

    /// Records a poll and, when the state changed, the new state.
    pub fn record(&mut self, status: &RunStatus, at: OffsetDateTime) {
        self.polls += 1;
        if !status.state.is_final() {
            self.last_unfinished_at = Some(at);
        }
        let changed = self
            .timeline
            .last()
            .is_none_or(|c| c.state != status.state || c.vendor_state != status.vendor_state);
        if changed && self.timeline.len() < MAX_TIMELINE {
            self.timeline.push(StateChange {
                state: status.state,
                vendor_state: status.vendor_state.clone(),
                at,
            });
        }
    }

    /// Upper bound of the seconds between the vendor ending the run and runbridge seeing it:
    /// from the last poll that saw it unfinished (or the submission) to the first final state.
    pub fn detection_lag_seconds(&self) -> Option<f64> {
        let end = self.timeline.iter().find(|c| c.state.is_final())?.at;
        let before = self.last_unfinished_at.unwrap_or(self.submitted_at);
        Some((end - before).as_seconds_f64().max(0.0))
    }

    /// Seconds since submission at `now`.
    pub fn age_seconds(&self, now: OffsetDateTime) -> u64 {
        (now - self.submitted_at).whole_seconds().max(0) as u64
    }

    /// Seconds left before the deadline at `now` (0 when past it).
    pub fn remaining_seconds(&self, now: OffsetDateTime) -> u64 {
        (self.deadline_at - now).whole_seconds().max(0) as u64
    }
}
