//! The common run state set, a vendor status report, and what a poll decides.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The state every vendor state maps into. Vendor states are compared case-insensitively and an
/// unknown one maps to `Running` (non-final) so a new vendor state never ends a run by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Accepted by the vendor, not started (queued, scheduled).
    Pending,
    /// Started and not finished (including stopping, publishing).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully (failed, rejected, or past runbridge's deadline).
    Failed,
    /// Stopped before finishing.
    Cancelled,
}

impl RunState {
    /// Whether the run can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
    /// Upper-case name used in manifests and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose fault a failure is: the customer's (configuration, bad input — do not retry) or the
/// platform's (vendor outage, throttling, timeouts — usually transient).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Attribution {
    /// The request or configuration is wrong.
    Customer,
    /// The vendor or the network failed.
    Platform,
}

impl Attribution {
    /// The name manifests, events and messages use: `customer`, `platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Platform => "platform",
        }
    }
}

/// What a vendor said about a run at one poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The mapped common state.
    pub state: RunState,
    /// The vendor's own state string, kept for the manifest and logs.
    pub vendor_state: String,
    /// Why a run failed or was cancelled, in the vendor's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whose fault a failure was, where the vendor says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// A vendor hint of when to ask again (Retry-After, queue position), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl RunStatus {
    /// A status with only the states set.
    pub fn new(state: RunState, vendor_state: impl Into<String>) -> Self {
        Self {
            state,
            vendor_state: vendor_state.into(),
            reason: None,
            attribution: None,
            retry_after_seconds: None,
        }
    }
}
