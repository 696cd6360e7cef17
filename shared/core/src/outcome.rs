//! [`RunOutcome`]: how a run ended, in brief. The collect step answers it, the `Run Completed` /
//! `Run Failed` event carries it, and the CLI's summary shows it; all three are views of the
//! [`Manifest`], which holds the same facts in full.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Attribution, Manifest, RunState, VendorKind};

/// EventBridge detail-type of a run that succeeded.
pub const RUN_COMPLETED: &str = "Run Completed";
/// EventBridge detail-type of a run that did not.
pub const RUN_FAILED: &str = "Run Failed";

/// How a run ended: the manifest's summary.
/// Also the `detail` of the `Run Completed` / `Run Failed` events (schema:
/// `schema/run-event-detail.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunOutcome {
    /// The event's id for consumers to dedupe on: `<key>#<attempt>`. Collect announces an
    /// outcome at least once (again after a failed or unrecorded `PutEvents`), always with this id.
    /// An ending without a vendor run (a submit the vendor refused, a run stopped or timed out
    /// while it waited) is `<key>#<attempt>@<ending, Unix milliseconds>`: a refused key may be
    /// resent, corrected, and run, and that run's event must not be taken for a duplicate.
    #[serde(default)]
    pub event_id: String,
    /// The idempotency key.
    pub key: String,
    /// The request's attempt (1 unless an explicit rerun); also in the key.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The vendor.
    pub vendor: VendorKind,
    /// The credential profile (vendor account) of the run: `default` or the request's `profile`.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// The vendor's run id.
    pub vendor_run_id: String,
    /// Final state.
    pub state: RunState,
    /// Why it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whose fault a failure was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// Where the manifest is.
    pub manifest_key: String,
    /// Files published.
    pub files: usize,
    /// Bytes published.
    pub bytes: u64,
    /// CSV records published (header records included).
    pub rows: u64,
    /// Status calls made.
    pub polls: u32,
}

fn first_attempt() -> u32 {
    1
}

/// Events announced before profiles existed were all of the default profile.
fn default_profile() -> String {
    crate::request::DEFAULT_PROFILE.to_owned()
}

impl RunOutcome {
    /// The event id of attempt `attempt` of `key`.
    pub fn event_id_of(key: &str, attempt: u32) -> String {
        format!("{key}#{attempt}")
    }

    /// The event id of the ending `manifest` records: [`RunOutcome::event_id_of`] for a vendor
    /// run; for an ending without one, that and the ending's time (see [`RunOutcome::event_id`]).
    pub fn event_id_of_manifest(manifest: &Manifest) -> String {
        let id = Self::event_id_of(&manifest.key, manifest.request.attempt());
        if manifest.vendor_run_id.is_empty() {
            let millis = manifest.finished_at.unix_timestamp_nanos() / 1_000_000;
            format!("{id}@{millis}")
        } else {
            id
        }
    }

    /// The outcome the manifest at `manifest_key` records.
    pub fn of(manifest: &Manifest, manifest_key: impl Into<String>) -> Self {
        let attempt = manifest.request.attempt();
        Self {
            event_id: Self::event_id_of_manifest(manifest),
            key: manifest.key.clone(),
            attempt,
            vendor: manifest.vendor,
            profile: manifest.profile.clone(),
            vendor_run_id: manifest.vendor_run_id.clone(),
            state: manifest.state,
            reason: manifest.reason.clone(),
            attribution: manifest.attribution,
            manifest_key: manifest_key.into(),
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            rows: manifest.files.iter().map(|f| f.rows).sum(),
            polls: manifest.polls,
        }
    }

    /// The EventBridge detail-type announcing it: [`RUN_COMPLETED`] or [`RUN_FAILED`].
    pub fn detail_type(&self) -> &'static str {
        if self.state == RunState::Succeeded {
            RUN_COMPLETED
        } else {
            RUN_FAILED
        }
    }
}
