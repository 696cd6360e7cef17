//! The stored shape: optional fields, as every version wrote them. Read through
//! [`LedgerEntry`]'s `TryFrom`, which refuses a combination no version writes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CollectFailure, KeyState, LedgerEntry, QueuePlace, RecordedRun, LEGACY_CLAIM_LEASE};
use crate::{Fingerprint, FormatVersion, IdempotencyKey, ResolvedRequest, LEDGER_FORMAT};

#[derive(Serialize, Deserialize)]
pub(super) struct StoredEntry {
    #[serde(default)]
    format_version: FormatVersion<LEDGER_FORMAT>,
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
            format_version: FormatVersion,
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
