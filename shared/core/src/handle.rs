//! The run handle and the reference to it that travels between Step Functions states.
//!
//! Step Functions caps a state's input and output at 256 KiB, so an execution never carries the
//! request (which alone may be 256 KiB): it carries a [`HandleRef`] — key, vendor, attempt, vendor
//! run id, times and a bounded timeline — and poll and collect load the request from the key's
//! ledger entry to rebuild the [`RunHandle`] they work with. A serialised [`HandleRef`] stays under
//! [`EXECUTION_PAYLOAD_BUDGET`] whatever the request and however long the run: the timeline keeps
//! its first [`TIMELINE_HEAD`] and last [`TIMELINE_TAIL`] changes (counting the dropped ones) and
//! each vendor state is cut to [`MAX_VENDOR_STATE_CHARS`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{
    FormatVersion, IdempotencyKey, Prediction, ResolvedRequest, RunState, RunStatus, VendorKind,
    PAYLOAD_FORMAT,
};

/// The most bytes of JSON runbridge puts into any state's input or output of the state machine
/// (the handle reference plus the step's small fields, a reason, a caught error): an eighth of
/// Step Functions' 256 KiB quota, whatever the request's size or the run's length. Enforced where
/// the payload is produced (the trigger's execution input, the poll and collect steps' outputs).
pub const EXECUTION_PAYLOAD_BUDGET: usize = 32 * 1024;

/// State changes kept from the start of a run's timeline.
pub const TIMELINE_HEAD: usize = 8;
/// State changes kept from the end of a run's timeline; the ones between are counted in
/// `timeline_dropped`.
pub const TIMELINE_TAIL: usize = 24;
/// A vendor state longer than this (in characters) is cut, with `…`.
pub const MAX_VENDOR_STATE_CHARS: usize = 120;
/// A reason (a vendor's failure message, an error) longer than this (in bytes) is cut where it
/// travels through the state machine; logs keep it whole.
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// `text` redacted ([`crate::redact`]: before the cut, so no secret is cut in half and left
/// partly) and cut to at most `max` bytes on a character boundary, marked with `…` when cut.
pub fn cut_text(text: &str, max: usize) -> String {
    let text = &*crate::redact::redact(text);
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

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

fn cut_vendor_state(state: &str) -> String {
    match state.char_indices().nth(MAX_VENDOR_STATE_CHARS) {
        Some((end, _)) => format!("{}…", &state[..end]),
        None => state.to_owned(),
    }
}

/// What an execution carries between states instead of a [`RunHandle`]: everything but the
/// request, which lives in the key's ledger entry. Small by construction (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandleRef {
    /// The payload's format ([`crate::format`]); absent in payloads of earlier versions.
    #[serde(default)]
    pub format_version: FormatVersion<PAYLOAD_FORMAT>,
    /// The idempotency key: the execution name, the `run=` key segment, and where poll and
    /// collect find the request in the ledger.
    pub key: IdempotencyKey,
    /// The vendor.
    pub vendor: VendorKind,
    /// The request's attempt (1 unless an explicit rerun); also in the key.
    pub attempt: u32,
    /// The vendor's id for the run; `None` while a queued run waits for a concurrency slot
    /// (nothing is submitted yet). Written as `""` then, the shape earlier versions wrote, so
    /// executions in flight read the same across an upgrade or a rollback.
    #[serde(with = "run_id")]
    pub vendor_run_id: Option<String>,
    /// When the vendor accepted the run (a queued run: when it joined the queue).
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// When runbridge gives up and cancels.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline_at: OffsetDateTime,
    /// Status calls made so far.
    #[serde(default)]
    pub polls: u32,
    /// State changes seen so far, oldest first: the first [`TIMELINE_HEAD`] and the last
    /// [`TIMELINE_TAIL`].
    #[serde(default)]
    pub timeline: Vec<StateChange>,
    /// State changes dropped between those.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeline_dropped: u32,
    /// The last poll that saw the run unfinished: the vendor ended it after this, so the time
    /// from here to the first final state seen bounds how late runbridge noticed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_unfinished_at: Option<OffsetDateTime>,
    /// When the run is expected to end, from its workflow's earlier runs (read at the first
    /// poll); `None` without history: then no run is polled more than ten minutes apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    /// When the run's concurrency slot lease ends, as the step that last stored it saw it: a
    /// lower bound (only the run's own steps change its lease, and only to extend it), so a poll
    /// reads the scope's record only when the lease would end too soon. `None`: not known (no
    /// slot, or an execution of an earlier version), and the poll reads the record.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub slot_until: Option<OffsetDateTime>,
    /// The run gave its concurrency slot back (the poll that saw its vendor run end), so the
    /// collect step after it need not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slot_released: bool,
}

/// serde's `skip_serializing_if` for counts that are usually zero (`timeline_dropped`).
pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `Option<String>` as a string that is empty for `None` (the wire shape of a vendor run id).
mod run_id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_deref().unwrap_or(""))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let id = String::deserialize(d)?;
        Ok((!id.is_empty()).then_some(id))
    }
}

/// Everything needed to poll, cancel and collect one run: its [`HandleRef`] and the request.
/// Never travels through the state machine whole (the request may be 256 KiB alone): only the
/// reference does. It dereferences to the reference, so `handle.key` reads as it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHandle {
    /// What the execution carries.
    #[serde(flatten)]
    pub reference: HandleRef,
    /// The request with relative windows resolved.
    pub request: ResolvedRequest,
}

impl std::ops::Deref for RunHandle {
    type Target = HandleRef;

    fn deref(&self) -> &HandleRef {
        &self.reference
    }
}

impl std::ops::DerefMut for RunHandle {
    fn deref_mut(&mut self) -> &mut HandleRef {
        &mut self.reference
    }
}

/// A ledger's request that does not belong to the reference it should complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored request of {key} is for {stored}, the execution's run is {expected}'s")]
pub struct RequestMismatch {
    /// The key.
    pub key: String,
    /// The vendor of the stored request.
    pub stored: VendorKind,
    /// The vendor of the reference.
    pub expected: VendorKind,
}

impl HandleRef {
    /// The full handle, with the request loaded from the key's ledger entry. Times, polls and
    /// the timeline are the reference's (the execution's), never recomputed from the request.
    pub fn with_request(self, request: ResolvedRequest) -> Result<RunHandle, RequestMismatch> {
        if request.vendor() != self.vendor {
            return Err(RequestMismatch {
                key: self.key.to_string(),
                stored: request.vendor(),
                expected: self.vendor,
            });
        }
        Ok(RunHandle {
            reference: self,
            request,
        })
    }

    /// The vendor run id, `""` while nothing is submitted (for logs and manifests).
    pub fn vendor_run_id_or_empty(&self) -> &str {
        self.vendor_run_id.as_deref().unwrap_or("")
    }

    /// The last state seen.
    pub fn last_state(&self) -> RunState {
        self.timeline.last().map_or(RunState::Pending, |c| c.state)
    }

    /// Records a poll and, when the state changed, the new state. The timeline keeps its first
    /// [`TIMELINE_HEAD`] and last [`TIMELINE_TAIL`] changes: a run that flips between states for
    /// hours keeps how it started and how it ended, and counts the rest in `timeline_dropped`.
    pub fn record(&mut self, status: &RunStatus, at: OffsetDateTime) {
        self.polls += 1;
        if !status.state.is_final() {
            self.last_unfinished_at = Some(at);
        }
        let vendor_state = cut_vendor_state(&status.vendor_state);
        let changed = self
            .timeline
            .last()
            .is_none_or(|c| c.state != status.state || c.vendor_state != vendor_state);
        if changed {
            self.timeline.push(StateChange {
                state: status.state,
                vendor_state,
                at,
            });
            if self.timeline.len() > TIMELINE_HEAD + TIMELINE_TAIL {
                self.timeline.remove(TIMELINE_HEAD);
                self.timeline_dropped += 1;
            }
        }
    }

    /// Seconds from submission to the vendor's end, as well as the polls tell it: the middle of
    /// the last poll that saw the run unfinished and the first that saw it end (wrong by at most
    /// half the detection lag). `None` before the end is seen.
    pub fn duration_seconds(&self) -> Option<u64> {
        let end = self.timeline.iter().find(|c| c.state.is_final())?.at;
        let before = self.last_unfinished_at.unwrap_or(self.submitted_at);
        let middle: OffsetDateTime = before + (end - before) / 2;
        Some((middle - self.submitted_at).whole_seconds().max(0) as u64)
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

impl RunHandle {
    /// The reference an execution carries for this handle.
    pub fn reference(&self) -> HandleRef {
        self.reference.clone()
    }

    /// A handle for a run the vendor accepted at `submitted_at`.
    pub fn new(
        key: IdempotencyKey,
        request: ResolvedRequest,
        vendor_run_id: String,
        submitted_at: OffsetDateTime,
    ) -> Self {
        Self::starting(key, request, Some(vendor_run_id), submitted_at)
    }

    /// A handle for a run waiting for a concurrency slot since `since`: nothing is submitted
    /// yet, and its deadline counts from when it joined the queue.
    pub fn queued(key: IdempotencyKey, request: ResolvedRequest, since: OffsetDateTime) -> Self {
        Self::starting(key, request, None, since)
    }

    fn starting(
        key: IdempotencyKey,
        request: ResolvedRequest,
        vendor_run_id: Option<String>,
        submitted_at: OffsetDateTime,
    ) -> Self {
        let deadline_at = submitted_at + Duration::seconds(request.deadline_seconds() as i64);
        Self {
            reference: HandleRef {
                format_version: FormatVersion,
                key,
                vendor: request.vendor(),
                attempt: request.attempt(),
                vendor_run_id,
                submitted_at,
                deadline_at,
                polls: 0,
                // Empty until the first poll: every entry is a state the vendor itself reported
                // ("scheduled", "PENDING", …), never a label of runbridge's own.
                timeline: Vec::new(),
                timeline_dropped: 0,
                last_unfinished_at: None,
                prediction: None,
                slot_until: None,
                slot_released: false,
            },
            request,
        }
    }

    /// Starts the timeline with the vendor's own state in its submit answer (Amperity
    /// `scheduled`, Adobe `queued`, AMC `PENDING`): a run just accepted is pending. Without one
    /// the timeline starts at the first poll.
    pub fn submitted_as(mut self, vendor_state: Option<&str>) -> Self {
        if let Some(state) = vendor_state.filter(|s| !s.is_empty()) {
            if self.timeline.is_empty() {
                let at = self.submitted_at;
                self.timeline.push(StateChange {
                    state: RunState::Pending,
                    vendor_state: cut_vendor_state(state),
                    at,
                });
            }
        }
        self
    }

    /// The vendor of the run.
    pub fn vendor(&self) -> VendorKind {
        self.reference.vendor
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
    fn the_timeline_keeps_its_head_and_tail_and_counts_the_rest() {
        let mut h = handle(60);
        let at = h.submitted_at;
        let long = "x".repeat(10_000);
        for i in 0..1_000u32 {
            let vendor_state = if i == 500 {
                long.clone()
            } else {
                format!("s{}", i % 2)
            };
            h.record(&RunStatus::new(RunState::Running, vendor_state), at);
        }
        assert_eq!(h.timeline.len(), TIMELINE_HEAD + TIMELINE_TAIL);
        assert_eq!(h.timeline_dropped as usize, 1_000 - h.timeline.len());
        assert_eq!(h.timeline[0].vendor_state, "s0");
        assert_eq!(h.timeline.last().unwrap().vendor_state, "s1");
        let r = h.reference();
        assert!(serde_json::to_vec(&r).unwrap().len() < EXECUTION_PAYLOAD_BUDGET / 2);
        let back = r.with_request(h.request.clone()).unwrap();
        assert_eq!(back, h);
        let mut long_state = handle(60);
        long_state.record(&RunStatus::new(RunState::Running, long), at);
        assert_eq!(
            long_state.timeline[0].vendor_state.chars().count(),
            MAX_VENDOR_STATE_CHARS + 1
        );
    }

    #[test]
    fn cut_text_keeps_char_boundaries() {
        assert_eq!(cut_text("abc", 3), "abc");
        let cut = cut_text(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
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
