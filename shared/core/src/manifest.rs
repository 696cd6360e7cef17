//! The run manifest, written last: whoever sees it can trust every file it lists.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    Attribution, Prediction, ResolvedRequest, RunHandle, RunState, StateChange, VendorKind,
};

/// File name of the manifest beside the parts.
pub const MANIFEST_NAME: &str = "manifest.json";

/// One published result file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestFile {
    /// Key (or relative path) of the published file.
    pub key: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// CSV records, including the header record: a file with a header and no data has 1.
    pub rows: u64,
    /// Lower-case hex SHA-256 of the bytes. Absent when the deployment turned it off
    /// (`ManifestSha256=false`; here it is then empty: the field stays a plain string so that
    /// readers written before it was optional still compile); `crc64nvme` is always there.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        description = "Lower-case hex SHA-256 of the bytes. Absent when the deployment turned it off (`ManifestSha256=false`); `crc64nvme` is always there."
    )]
    pub sha256: String,
    /// CRC-64/NVME of the bytes, base64 of its 8 big-endian bytes: the full-object checksum S3
    /// verified when the upload completed and returns as `x-amz-checksum-crc64nvme` (`GetObject`
    /// or `HeadObject` with checksum mode enabled). Absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
}

/// What one run did and produced.
/// The document `manifest.json` beside a run's parts (schema: `schema/manifest.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    /// Manifest format version.
    pub schema_version: u32,
    /// The idempotency key.
    pub key: String,
    /// The vendor.
    pub vendor: VendorKind,
    /// The credential profile (vendor account) the run used: `default` or the request's
    /// `profile`. Only its name: a profile's settings never reach a manifest.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// The vendor's run id.
    pub vendor_run_id: String,
    /// Final common state.
    pub state: RunState,
    /// Why the run did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whose fault a failure was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// The request as submitted (relative windows resolved).
    pub request: ResolvedRequest,
    /// When the vendor accepted the run (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub submitted_at: OffsetDateTime,
    /// When the manifest was written (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub finished_at: OffsetDateTime,
    /// Status calls made.
    pub polls: u32,
    /// State changes seen: the first 8 and the last 24 of a run that changed state more often.
    pub timeline: Vec<StateChange>,
    /// State changes left out of `timeline` between those.
    #[serde(default, skip_serializing_if = "crate::handle::is_zero")]
    pub timeline_dropped: u32,
    /// Published files, in part order. Empty for vendors that produce none.
    pub files: Vec<ManifestFile>,
    /// Upper bound of the seconds between the vendor ending the run and runbridge noticing it
    /// (from the last poll that saw it unfinished to the first that saw it end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_lag_seconds: Option<f64>,
    /// When the run was expected to end, predicted from its workflow's earlier runs; absent when
    /// there were too few of them (or the request set its own `poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
}

/// Manifests written before profiles existed were all of the default profile.
fn default_profile() -> String {
    crate::request::DEFAULT_PROFILE.to_owned()
}

impl Manifest {
    /// A manifest for `handle` ending in `state`.
    pub fn new(
        handle: &RunHandle,
        state: RunState,
        reason: Option<String>,
        attribution: Option<Attribution>,
        files: Vec<ManifestFile>,
        finished_at: OffsetDateTime,
    ) -> Self {
        Self {
            schema_version: 1,
            key: handle.key.as_str().to_owned(),
            vendor: handle.vendor(),
            profile: handle.request.profile().to_owned(),
            vendor_run_id: handle.vendor_run_id_or_empty().to_owned(),
            state,
            // A vendor's failure message or an error: foreign text, so never a credential.
            reason: reason.map(|r| crate::redact::redacted(&r)),
            attribution,
            request: handle.request.clone(),
            submitted_at: handle.submitted_at,
            finished_at,
            polls: handle.polls,
            timeline: handle.timeline.clone(),
            timeline_dropped: handle.timeline_dropped,
            detection_lag_seconds: handle.detection_lag_seconds(),
            prediction: handle.prediction,
            files,
        }
    }

    /// Total bytes over all files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size_bytes).sum()
    }
}
