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
            // Empty until the first poll: every entry is a state the vendor itself reported
            // ("scheduled", "PENDING", …), never a label of runbridge's own.
            timeline: Vec::new(),
            last_unfinished_at: None,
        }
    }

    /// Starts the timeline with the vendor's own state in its submit answer (Amperity
    /// `scheduled`, Adobe `queued`, AMC `PENDING`): a run just accepted is pending. Without one
    /// the timeline starts at the first poll.
    pub fn submitted_as(mut self, vendor_state: Option<&str>) -> Self {
        if let Some(state) = vendor_state.filter(|s| !s.is_empty()) {
            if self.timeline.is_empty() {
                self.timeline.push(StateChange {
                    state: RunState::Pending,
                    vendor_state: state.to_owned(),
                    at: self.submitted_at,
                });
            }
        }
        self
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

    /// Seconds left before the deadline at `now`, rounded up: 0 exactly when the deadline has
    /// passed (`now >= deadline_at`, compared at full precision), so 0.9 s left is 1, not 0, and a
    /// 60 s deadline is never acted on at 59.1 s.
    pub fn remaining_seconds(&self, now: OffsetDateTime) -> u64 {
        if self.past_deadline(now) {
            return 0;
        }
        let left = self.deadline_at - now;
        let whole = left.whole_seconds();
        let rounded_up = if left > Duration::seconds(whole) {
            whole + 1
        } else {
            whole
        };
        rounded_up.max(1) as u64
    }

    /// Whether the deadline has passed at `now` (full precision).
    pub fn past_deadline(&self, now: OffsetDateTime) -> bool {
        now >= self.deadline_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunRequest;

    fn handle(deadline_seconds: u64) -> RunHandle {
        let doc = serde_json::json!({
            "vendor": "carto", "request_id": "deadline-test", "connection": "carto_dw",
            "query": "SELECT 1", "deadline_seconds": deadline_seconds
        });
        let request = RunRequest::from_json(doc.to_string().as_bytes()).expect("request parses");
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let resolved = request.resolve(at);
        let key = IdempotencyKey::for_request(&resolved, None);
        RunHandle::new(key, resolved, "run-1".into(), at)
    }

    #[test]
    fn the_first_timeline_entry_is_the_vendors_own_state() {
        let mut h = handle(60);
        assert!(h.timeline.is_empty());
        assert_eq!(h.last_state(), RunState::Pending);
        let at = h.submitted_at + Duration::seconds(5);
        h.record(&RunStatus::new(RunState::Pending, "scheduled"), at);
        assert_eq!(h.timeline.len(), 1);
        assert_eq!(h.timeline[0].vendor_state, "scheduled");
        h.record(&RunStatus::new(RunState::Pending, "scheduled"), at);
        assert_eq!(h.timeline.len(), 1, "only changes are recorded");
    }

    #[test]
    fn the_deadline_is_compared_at_full_precision() {
        let h = handle(60);
        let at = |s: f64| h.submitted_at + Duration::seconds_f64(s);
        assert!(!h.past_deadline(at(59.1)));
        assert_eq!(h.remaining_seconds(at(59.1)), 1, "0.9 s left is not 0");
        assert_eq!(h.remaining_seconds(at(59.999)), 1);
        assert_eq!(h.remaining_seconds(at(58.0)), 2);
        assert!(h.past_deadline(at(60.0)));
        assert_eq!(h.remaining_seconds(at(60.0)), 0);
        assert_eq!(h.remaining_seconds(at(61.5)), 0);
    }
}
