//! The run request: one JSON document, tagged by `vendor`, plus its validation.
//!
//! Parsing never panics and every rejection is a [`ValidationError`] naming the field (as a JSON
//! path) and the rule it broke. Shape errors come from serde (with `serde_path_to_error` for the
//! path); semantic rules (id prefixes, UTC timestamps, window order, SQL size, safe prefixes) are
//! checked in [`RunRequest::validate`].
//!
//! This module owns what every request shares: [`RunRequest`], [`VendorKind`], [`VendorSpec`] and
//! parsing; `checks.rs` the field rules the vendors reuse (ids, SQL, windows, key prefixes,
//! profile names). Each vendor's run struct, its enums and its own rules live in a file named
//! after it: [`amc`], [`amperity`], [`adobe`], [`carto`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{BackoffPolicy, ValidationError};

pub mod adobe;
pub mod amc;
pub mod amperity;
pub mod carto;
mod checks;
mod common;
pub mod schema;
pub mod sql;
mod strict;
pub use strict::{duplicate_top_level_key, raw_member};

use checks::check_id;
pub use checks::{check_prefix, check_profile_name};
use common::CommonFields;
pub use common::PollPolicy;

pub use adobe::AdobeRun;
pub use amc::{AmcRun, AmcTimeWindowType};
pub use amperity::{AmperityRun, AmperityRunMode};
pub use carto::CartoRun;

/// Largest accepted request document. SQS caps messages at 256 KiB; a request is far smaller.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Deepest nesting of a request document: the document itself is level 1, a `query_parameters`
/// value level 3. The ledger entry, the execution payload and the queue message wrap the request
/// in a few levels more, and serde_json reads at most 128: a deeper request could be accepted,
/// submitted to the vendor, and then not read back from the ledger.
pub const MAX_REQUEST_DEPTH: usize = 32;

/// The request fields every vendor shares (besides `vendor`), read before the vendor part.
pub const COMMON_FIELDS: [&str; 6] = [
    "request_id",
    "deadline_seconds",
    "output_prefix",
    "attempt",
    "poll",
    "profile",
];

/// The highest `attempt` a request may carry (keeps the key within the execution-name limit).
pub const MAX_ATTEMPT: u32 = 999;
/// The profile a request without `profile` uses: each vendor's own settings.
pub const DEFAULT_PROFILE: &str = "default";
/// Longest profile name. It appears in the idempotency key of a non-default profile
/// (`<vendor>.<profile>.<hash>`), which must stay within the 80-character execution name.
pub const MAX_PROFILE_CHARS: usize = 32;

/// Largest accepted SQL text (AMC and CARTO queries, CARTO export queries).
pub const MAX_SQL_CHARS: usize = 100_000;

/// The vendors runbridge speaks to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VendorKind {
    /// Amazon Marketing Cloud workflow executions.
    Amc,
    /// Amperity workflow runs.
    Amperity,
    /// Adobe Experience Platform Flow Service runs.
    Adobe,
    /// CARTO SQL job API.
    Carto,
}

impl VendorKind {
    /// Every vendor, in a stable order.
    pub const ALL: [VendorKind; 4] = [Self::Amc, Self::Amperity, Self::Adobe, Self::Carto];

    /// The tag used in requests, result keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amc => "amc",
            Self::Amperity => "amperity",
            Self::Adobe => "adobe",
            Self::Carto => "carto",
        }
    }

    /// How long a run may take before runbridge cancels it, when the request does not say.
    /// AMC's own execution timeout is 21,600 s; the others get a working day.
    pub fn default_deadline_seconds(self) -> u64 {
        match self {
            Self::Amc => 21_600 + 1_800,
            Self::Amperity | Self::Adobe => 12 * 3_600,
            Self::Carto => 6 * 3_600,
        }
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VendorKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("vendor", "must be one of amc, amperity, adobe, carto")
            })
    }
}

/// A request to start one workflow run at one vendor and land its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRequest {
    /// Caller-chosen id that makes redelivery safe: the same id never starts a second run.
    /// Letters, digits, `_`, `.`, `-`; at most 64 characters. Without it, the idempotency key is a
    /// hash of the request and the schedule time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds after submission when an unfinished run is cancelled and reported failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
    /// Extra key prefix under the configured results prefix, e.g. `marketing/daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<String>,
    /// Which attempt of this request this is: 1 (the default) for the first run, N for an
    /// explicit rerun. Part of the idempotency key and therefore of the result path, so attempts
    /// never overwrite each other. 1 to 999; `1` is stored as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 999))]
    pub attempt: Option<u32>,
    /// How often to poll this run, instead of the deployment's adaptive default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollPolicy>,
    /// The named credential profile (vendor account) to run under: its credentials, region or
    /// base URLs, download hosts and limits. Lower-case letters, digits and `-`, at most 32
    /// characters; must name a configured profile of this request's vendor. Absent (or
    /// `default`) is the vendor's own settings; `default` is stored as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// What to run, tagged by `vendor`.
    #[serde(flatten)]
    pub spec: VendorSpec,
}

/// The vendor-specific part of a request; the `vendor` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "vendor", rename_all = "lowercase")]
pub enum VendorSpec {
    /// Amazon Marketing Cloud workflow execution.
    Amc(AmcRun),
    /// Amperity workflow run.
    Amperity(AmperityRun),
    /// Adobe Experience Platform flow run.
    Adobe(AdobeRun),
    /// CARTO SQL job.
    Carto(CartoRun),
}

impl RunRequest {
    /// Parses and validates a request document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(ValidationError::new(
                "$",
                format!(
                    "request is {} bytes; the limit is {MAX_REQUEST_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let mut value = strict::parse(bytes)?;
        strict::exact_parameters(bytes, &mut value)?;
        let request = Self::from_value(value)?;
        request.check_round_trip()?;
        Ok(request)
    }

    /// Accepts only a request that reads back as itself from what runbridge stores and sends
    /// (the ledger entry, the execution payload and the queue message all hold its JSON): written
    /// out, read back through the same strict parse, within the size limit, equal.
    pub fn check_round_trip(&self) -> Result<(), ValidationError> {
        let refused = |why: String| {
            ValidationError::new(
                "$",
                format!("cannot be stored and read back unchanged ({why}); simplify the request"),
            )
        };
        let text = serde_json::to_vec(self).map_err(|e| refused(e.to_string()))?;
        if text.len() > MAX_REQUEST_BYTES {
            return Err(refused(format!(
                "{} bytes written out, over the {MAX_REQUEST_BYTES}-byte limit",
                text.len()
            )));
        }
        let mut value = strict::parse(&text).map_err(|e| refused(e.to_string()))?;
        strict::exact_parameters(&text, &mut value).map_err(|e| refused(e.to_string()))?;
        let back = Self::from_value(value).map_err(|e| refused(e.to_string()))?;
        if &back != self {
            return Err(refused("it reads back as a different request".into()));
        }
        Ok(())
    }

    /// Validates an already-parsed JSON value. A `serde_json::Value` has already rounded any
    /// number past `f64` and kept the last of duplicate keys: requests from outside are read
    /// from their text with [`RunRequest::from_json`] (an envelope's member with
    /// [`raw_member`]).
    pub fn from_value(value: serde_json::Value) -> Result<Self, ValidationError> {
        check_depth(&value, "$", 1)?;
        let serde_json::Value::Object(mut rest) = value else {
            return Err(ValidationError::new("$", "must be a JSON object"));
        };
        let vendor = match rest.remove("vendor") {
            None => {
                return Err(ValidationError::new(
                    "vendor",
                    "is required (amc, amperity, adobe or carto)",
                ))
            }
            Some(serde_json::Value::String(s)) => s.parse::<VendorKind>()?,
            Some(_) => {
                return Err(ValidationError::new(
                    "vendor",
                    "must be a string: amc, amperity, adobe or carto",
                ))
            }
        };
        // Common fields first, then the vendor part on its own, so that serde reports the path of
        // a bad vendor field (a flattened enum would lose it).
        let mut common = serde_json::Map::new();
        for name in COMMON_FIELDS {
            if let Some(v) = rest.remove(name) {
                common.insert(name.to_owned(), v);
            }
        }
        // `poll` is an object: serde would also read a struct from an array
        // (`[5, 0.5, 600]`), which the schema refuses and nobody means.
        if let Some(poll) = common.get("poll") {
            if !(poll.is_object() || poll.is_null()) {
                return Err(ValidationError::new(
                    "poll",
                    "must be an object with first_seconds, factor and max_seconds",
                ));
            }
        }
        let common: CommonFields = typed(serde_json::Value::Object(common))?;
        let rest = serde_json::Value::Object(rest);
        let spec = match vendor {
            VendorKind::Amc => VendorSpec::Amc(typed(rest)?),
            VendorKind::Amperity => VendorSpec::Amperity(typed(rest)?),
            VendorKind::Adobe => VendorSpec::Adobe(typed(rest)?),
            VendorKind::Carto => VendorSpec::Carto(typed(rest)?),
        };
        let request = RunRequest {
            request_id: common.request_id,
            deadline_seconds: common.deadline_seconds,
            output_prefix: common.output_prefix,
            // Attempt 1 is the default: stored as absent so `"attempt": 1` and no attempt are one
            // request (one key, one fingerprint).
            attempt: common.attempt.filter(|&a| a != 1),
            poll: common.poll,
            // Like attempt 1, the default profile is stored as absent: a request naming it is
            // the same request (same key, same fingerprint) as one that does not.
            profile: common.profile.filter(|p| p != DEFAULT_PROFILE),
            spec,
        };
        request.validate()?;
        Ok(request)
    }

    /// The attempt number (1 unless this is an explicit rerun).
    pub fn attempt(&self) -> u32 {
        self.attempt.unwrap_or(1)
    }

    /// The profile this request runs under ([`DEFAULT_PROFILE`] unless it names another).
    pub fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or(DEFAULT_PROFILE)
    }

    /// Which vendor this request is for.
    pub fn vendor(&self) -> VendorKind {
        match self.spec {
            VendorSpec::Amc(_) => VendorKind::Amc,
            VendorSpec::Amperity(_) => VendorKind::Amperity,
            VendorSpec::Adobe(_) => VendorKind::Adobe,
            VendorSpec::Carto(_) => VendorKind::Carto,
        }
    }

    /// The workflow this run is another run of (the same vendor, profile and workflow: AMC's
    /// instance and workflow id or normalised query, Amperity's tenant, group and run mode,
    /// Adobe's flow, CARTO's connection and queries), as a name for its stored durations:
    /// `<vendor>.<profile>.<24 hex digits>`. Windows and dates do not count: tonight's run of a
    /// workflow is predicted from last night's.
    pub fn workflow_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let identity = match &self.spec {
            VendorSpec::Amc(r) => r.workflow(),
            VendorSpec::Amperity(r) => r.workflow(),
            VendorSpec::Adobe(r) => r.workflow(),
            VendorSpec::Carto(r) => r.workflow(),
        };
        let digest = hex::encode(Sha256::digest(identity.as_bytes()));
        format!(
            "{}.{}.{}",
            self.vendor(),
            crate::scope_segment(self.profile()),
            &digest[..24]
        )
    }

    /// The run's own poll policy (its `poll`), if it has one.
    pub fn own_poll_policy(&self) -> Option<BackoffPolicy> {
        self.poll.map(|p| BackoffPolicy {
            min_wait_seconds: p.first_seconds,
            max_wait_seconds: p.max_seconds,
            age_fraction: p.factor,
        })
    }

    /// The poll wait policy of this run: its `poll` when given, else `default`.
    pub fn backoff(&self, default: BackoffPolicy) -> BackoffPolicy {
        self.poll.map_or(default, |p| BackoffPolicy {
            min_wait_seconds: p.first_seconds,
            max_wait_seconds: p.max_seconds,
            age_fraction: p.factor,
        })
    }

    /// The deadline in seconds after submission.
    pub fn deadline_seconds(&self) -> u64 {
        self.deadline_seconds
            .unwrap_or_else(|| self.vendor().default_deadline_seconds())
    }

    /// Checks every semantic rule; shape rules were checked by parsing.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(id) = &self.request_id {
            check_id("request_id", id, 64, "._-")?;
        }
        if let Some(d) = self.deadline_seconds {
            if !(60..=604_800).contains(&d) {
                return Err(ValidationError::new(
                    "deadline_seconds",
                    "must be between 60 and 604800 (7 days)",
                ));
            }
        }
        if let Some(prefix) = &self.output_prefix {
            check_prefix("output_prefix", prefix)?;
        }
        if let Some(a) = self.attempt {
            if !(1..=MAX_ATTEMPT).contains(&a) {
                return Err(ValidationError::new(
                    "attempt",
                    format!("must be between 1 and {MAX_ATTEMPT}"),
                ));
            }
        }
        if let Some(poll) = &self.poll {
            poll.validate()?;
        }
        if let Some(profile) = &self.profile {
            check_profile_name("profile", profile)?;
        }
        match &self.spec {
            VendorSpec::Amc(r) => r.validate(),
            VendorSpec::Amperity(r) => r.validate(),
            VendorSpec::Adobe(r) => r.validate(),
            VendorSpec::Carto(r) => r.validate(),
        }
    }

    /// Replaces any `relative_window` by the explicit window it means at `anchor` (the schedule
    /// time, or now), so a run handle always carries absolute times.
    pub fn resolve(&self, anchor: OffsetDateTime) -> ResolvedRequest {
        let mut out = self.clone();
        match &mut out.spec {
            VendorSpec::Amc(r) => r.resolve(anchor),
            VendorSpec::Amperity(r) => r.resolve(anchor),
            VendorSpec::Adobe(r) => r.resolve(anchor),
            VendorSpec::Carto(_) => {}
        }
        ResolvedRequest(out)
    }

    /// Whether the request names a relative window still to resolve.
    pub fn has_relative_window(&self) -> bool {
        match &self.spec {
            VendorSpec::Amc(r) => r.relative_window.is_some(),
            VendorSpec::Amperity(r) => r.relative_window.is_some(),
            VendorSpec::Adobe(r) => r.relative_window.is_some(),
            VendorSpec::Carto(_) => false,
        }
    }
}

/// A request after window resolution: explicit times only. It is what the key hashes, the ledger
/// stores, the run handle carries and a vendor client submits, so no vendor ever resolves a
/// window on its own clock. Only [`RunRequest::resolve`] makes one; reading one back (from the
/// ledger or a handle) refuses a relative window. It serialises exactly as the [`RunRequest`]
/// it wraps, which it derefs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RunRequest", into = "RunRequest")]
pub struct ResolvedRequest(RunRequest);

/// Described as the [`RunRequest`] it wraps (it serialises as one).
impl JsonSchema for ResolvedRequest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        RunRequest::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        RunRequest::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RunRequest::json_schema(generator)
    }
}

impl ResolvedRequest {
    /// The request.
    pub fn request(&self) -> &RunRequest {
        &self.0
    }
}

impl std::ops::Deref for ResolvedRequest {
    type Target = RunRequest;
    fn deref(&self) -> &RunRequest {
        &self.0
    }
}

impl TryFrom<RunRequest> for ResolvedRequest {
    type Error = ValidationError;
    fn try_from(request: RunRequest) -> Result<Self, ValidationError> {
        if request.has_relative_window() {
            return Err(ValidationError::new(
                "relative_window",
                "must be resolved into explicit times here",
            ));
        }
        Ok(Self(request))
    }
}

impl From<ResolvedRequest> for RunRequest {
    fn from(resolved: ResolvedRequest) -> Self {
        resolved.0
    }
}

/// Refuses a value nested deeper than [`MAX_REQUEST_DEPTH`], naming the first path too deep.
fn check_depth(value: &serde_json::Value, path: &str, depth: usize) -> Result<(), ValidationError> {
    let child = |key: &str| {
        if path == "$" {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let children: Vec<(String, &serde_json::Value)> = match value {
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| (child(k), v)).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        _ => return Ok(()),
    };
    for (at, v) in children {
        if depth >= MAX_REQUEST_DEPTH && (v.is_object() || v.is_array()) {
            return Err(ValidationError::new(
                at,
                format!(
                    "is nested too deep: a request may nest at most {MAX_REQUEST_DEPTH} levels of objects and arrays"
                ),
            ));
        }
        check_depth(v, &at, depth + 1)?;
    }
    Ok(())
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| shape_error(e.path().to_string(), e.inner()))
}

/// Turns a serde shape error into a field-naming validation error.
fn shape_error(path: String, err: &serde_json::Error) -> ValidationError {
    let msg = err.to_string();
    // serde reports a missing or unknown field at its parent's path; name the field itself.
    let quoted = msg.split('`').nth(1).map(str::to_owned);
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let rule = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if msg.starts_with("missing field") {
        if let Some(name) = quoted {
            return ValidationError::new(join(&name), "is required");
        }
    }
    if msg.starts_with("unknown field") {
        if let Some(name) = quoted {
            // serde_path_to_error already ends the path with the unknown field's name.
            let field = if path.ends_with(name.as_str()) {
                path
            } else {
                join(&name)
            };
            return ValidationError::new(field, "is not a known field for this vendor");
        }
    }
    let field = if path == "." || path.is_empty() {
        "$".to_owned()
    } else {
        path
    };
    ValidationError::new(field, rule)
}
