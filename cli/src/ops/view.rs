//! [`RunView`]: what `status` and `list` say about one run, built in one place
//! ([`RunView::build`]) from what AWS holds about it: the key's ledger entry (its
//! [`KeyState`](runbridge_core::KeyState), the request, the recorded vendor run), the execution
//! named after the key, the latest handle the execution carried, and the manifest once the run
//! finished.

use runbridge_core::{
    Attribution, HandleRef, IdempotencyKey, LedgerEntry, RunHandle, RunOutcome, VendorKind,
};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::client::{Execution, LatestStep};

/// One run, as the operator commands show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    /// The run key (in `list`, an execution shows its own name: a collect recovery's is
    /// `<key>=<n>`).
    pub key: String,
    /// Where the run is: the manifest's final state (`succeeded`, `failed`, `cancelled`) once
    /// it exists; else `queued` (waiting for a concurrency slot, nothing submitted) or the
    /// execution's (`running`, `failed`, `aborted`, …); else, without an execution, the key's
    /// state in the ledger.
    pub state: String,
    /// The key's state in the ledger ([`runbridge_core::KeyState::name`]: `claimed`, `queued`,
    /// `admitting`, `submitted`, `collect_failed`); `None` without a ledger entry.
    pub key_state: Option<&'static str>,
    /// The vendor; `None` only for an execution whose name is no run key (not runbridge's).
    pub vendor: Option<VendorKind>,
    /// The credential profile the run uses (`default` unless the request names one); `None`
    /// when the request is unknown (no ledger entry).
    pub profile: Option<String>,
    /// The request's attempt (1 unless a rerun).
    pub attempt: u32,
    /// The vendor's run id; `None` while nothing is submitted (see `queued`).
    pub vendor_run_id: Option<String>,
    /// The run waits for a concurrency slot of its profile: nothing is submitted yet.
    pub queued: bool,
    /// When the key was claimed (or an admission last started a submit).
    pub claimed_at: Option<String>,
    /// When the vendor accepted the run (a queued run: when it joined the queue).
    pub submitted_at: Option<String>,
    /// When runbridge gives up on it.
    pub deadline_at: Option<String>,
    /// Status calls made so far, as the execution's latest step or the manifest says.
    pub polls: Option<u32>,
    /// The vendor's last state seen.
    pub vendor_state: Option<String>,
    /// When the next status call (or admission attempt) is due, for a running execution.
    pub next_poll_at: Option<String>,
    /// When the run is expected to end and how that was predicted (from its workflow's
    /// earlier runs, read at its first poll); `None` without enough history, when polls are at
    /// most ten minutes apart instead.
    pub predicted_end: Option<PredictedEnd>,
    /// Why the run did not succeed (the manifest's reason, a collect failure's, or the
    /// execution's error and cause).
    pub reason: Option<String>,
    /// Who caused that: `customer` (the request or configuration) or `platform` (the vendor,
    /// the network, runbridge).
    pub attribution: Option<Attribution>,
    /// The Step Functions execution.
    pub execution: Option<Execution>,
    /// The manifest's summary, once the run finished.
    pub manifest: Option<RunOutcome>,
}

/// A run's predicted end, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictedEnd {
    /// The median end of the workflow's earlier runs (RFC 3339).
    pub at: String,
    /// The earliest and latest usual ends (RFC 3339).
    pub earliest: String,
    /// See `earliest`.
    pub latest: String,
    /// The earlier runs it rests on.
    pub from_runs: u32,
}

/// What [`RunView::build`] reads; every part may be missing.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The name shown: the key, or the execution's name.
    pub name: &'a str,
    /// The key, when the name is one (parsed from the operator's argument or the execution's
    /// name).
    pub key: Option<&'a IdempotencyKey>,
    /// The key's ledger entry.
    pub entry: Option<&'a LedgerEntry>,
    /// The execution named after the key (or a collect recovery's).
    pub execution: Option<&'a Execution>,
    /// The latest document of the execution that carried the run's handle.
    pub latest: Option<&'a LatestStep>,
    /// The run's manifest.
    pub manifest: Option<&'a RunOutcome>,
}

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

/// The run's handle: the execution's latest reference (its polls and timeline are the newest)
/// made whole with the ledger entry's request (the execution never carries the request), else
/// the ledger entry's own. `None` without a ledger entry, or for a bare claim.
pub fn handle_of(entry: Option<&LedgerEntry>, latest: Option<&LatestStep>) -> Option<RunHandle> {
    let entry = entry?;
    latest
        .and_then(|l| {
            l.step
                .handle
                .clone()
                .with_request(entry.request.clone())
                .ok()
        })
        .or_else(|| entry.handle())
}

/// A finished execution's status in `status` and `list` words.
pub fn state_of_execution(status: &str) -> &'static str {
    match status {
        "RUNNING" => "running",
        "SUCCEEDED" => "succeeded",
        "FAILED" | "TIMED_OUT" => "failed",
        "ABORTED" => "aborted",
        "PENDING_REDRIVE" => "pending_redrive",
        _ => "unknown",
    }
}

impl RunView {
    /// The view of one run, from whatever of its sources exist.
    pub fn build(sources: Sources<'_>) -> Self {
        let Sources {
            name,
            key,
            entry,
            execution,
            latest,
            manifest,
        } = sources;
        let running = execution.is_some_and(|e| e.status == "RUNNING");
        let reference: Option<HandleRef> = latest
            .map(|l| l.step.handle.clone())
            .or_else(|| entry.and_then(|e| e.handle()).map(|h| h.reference()));
        let waiting = entry.is_some_and(LedgerEntry::is_waiting);
        let state = if let Some(m) = manifest {
            m.state.as_str().to_ascii_lowercase()
        } else if waiting && (running || execution.is_none()) {
            "queued".to_owned()
        } else if let Some(e) = execution {
            state_of_execution(&e.status).to_owned()
        } else {
            entry.map_or("unknown", |e| e.state.name()).to_owned()
        };
        let vendor_run_id = reference
            .as_ref()
            .and_then(|r| r.vendor_run_id.clone())
            .or_else(|| entry.and_then(|e| e.run()).map(|r| r.vendor_run_id.clone()));
        let collect_failure = entry.and_then(LedgerEntry::collect_failure);
        let reason = manifest
            .and_then(|m| m.reason.clone())
            .or_else(|| collect_failure.map(|f| f.reason.clone()))
            .or_else(|| execution.and_then(execution_reason));
        let attribution = manifest
            .and_then(|m| m.attribution)
            .or_else(|| collect_failure.and_then(|f| f.attribution));
        let next_poll_at = latest.filter(|_| running).and_then(|l| {
            let wait = l.step.wait_seconds?;
            rfc3339(l.at + time::Duration::seconds(wait as i64))
        });
        Self {
            key: name.to_owned(),
            state,
            key_state: entry.map(|e| e.state.name()),
            vendor: reference
                .as_ref()
                .map(|r| r.vendor)
                .or_else(|| key.map(IdempotencyKey::vendor)),
            profile: entry.map(|e| e.request.profile().to_owned()),
            attempt: entry.map_or_else(
                || reference.as_ref().map_or(1, |r| r.attempt),
                |e| e.request.attempt(),
            ),
            queued: waiting && vendor_run_id.is_none(),
            vendor_run_id,
            claimed_at: entry.and_then(|e| rfc3339(e.claimed_at)),
            submitted_at: reference.as_ref().and_then(|r| rfc3339(r.submitted_at)),
            deadline_at: reference.as_ref().and_then(|r| rfc3339(r.deadline_at)),
            polls: manifest
                .map(|m| m.polls)
                .or_else(|| latest.map(|l| l.step.handle.polls)),
            vendor_state: reference
                .as_ref()
                .and_then(|r| r.timeline.last())
                .map(|c| c.vendor_state.clone()),
            next_poll_at,
            predicted_end: reference.as_ref().and_then(|r| {
                let p = r.prediction?;
                let at = |s: u64| rfc3339(r.submitted_at + time::Duration::seconds(s as i64));
                Some(PredictedEnd {
                    at: at(p.median_seconds)?,
                    earliest: at(p.low_seconds)?,
                    latest: at(p.high_seconds)?,
                    from_runs: p.runs,
                })
            }),
            reason,
            attribution,
            execution: execution.cloned(),
            manifest: manifest.cloned(),
        }
    }

    /// Whether the run ended without success (`status` then exits 1).
    pub fn did_not_succeed(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "cancelled" | "aborted")
    }

    /// The view as `status` prints it for people: one `name value` line per known field.
    pub fn text(&self) -> String {
        let mut lines = Vec::new();
        let mut field = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                lines.push(format!("{name:<14} {v}"));
            }
        };
        field("key", Some(self.key.clone()));
        field("state", Some(self.state.clone()));
        field("key state", self.key_state.map(str::to_owned));
        field("vendor", self.vendor.map(|v| v.to_string()));
        field("profile", self.profile.clone());
        field(
            "vendor run id",
            self.vendor_run_id.clone().or_else(|| {
                self.queued
                    .then(|| "none yet: queued for a concurrency slot".to_owned())
            }),
        );
        field("attempt", Some(self.attempt.to_string()));
        field("claimed at", self.claimed_at.clone());
        field("submitted at", self.submitted_at.clone());
        field("deadline", self.deadline_at.clone());
        field(
            "execution",
            self.execution
                .as_ref()
                .map(|e| format!("{} ({})", e.status, e.arn)),
        );
        field("polls", self.polls.map(|p| p.to_string()));
        field("vendor state", self.vendor_state.clone());
        field("next poll", self.next_poll_at.clone());
        field(
            "predicted end",
            Some(match &self.predicted_end {
                Some(p) => format!(
                    "{} (usually {} to {}; the median of the workflow's last {} runs)",
                    p.at, p.earliest, p.latest, p.from_runs
                ),
                None => "not predicted (too few earlier runs of this workflow): polled at most \
                         ten minutes apart"
                    .to_owned(),
            })
            .filter(|_| self.vendor_run_id.is_some() && self.manifest.is_none()),
        );
        field(
            "manifest",
            self.manifest.as_ref().map(|m| {
                format!(
                    "{} files, {} bytes, {} rows incl. headers: {}",
                    m.files, m.bytes, m.rows, m.manifest_key
                )
            }),
        );
        field("reason", self.reason.clone());
        field("attribution", self.attribution.map(attribution_word));
        lines.join("\n")
    }
}

/// `customer` or `platform`, as the manifest writes it.
pub fn attribution_word(attribution: Attribution) -> String {
    serde_json::to_value(attribution)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn execution_reason(e: &Execution) -> Option<String> {
    match (&e.error, &e.cause) {
        (Some(err), Some(cause)) => Some(format!("{err}: {cause}")),
        (Some(err), None) => Some(err.clone()),
        (None, Some(cause)) => Some(cause.clone()),
        (None, None) => None,
    }
}
