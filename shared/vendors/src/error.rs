use runbridge_core::{Attribution, VendorKind};
use thiserror::Error;

/// Why a vendor call failed. Every variant says whose fault it is ([`VendorError::attribution`])
/// and whether trying again later can help ([`VendorError::is_retryable`]).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum VendorError {
    /// The vendor rejected the request as invalid (4xx other than auth and throttling).
    #[error("{vendor}: request rejected ({status}){}: {message}", field.as_deref().map(|f| format!(" field `{f}`")).unwrap_or_default())]
    Rejected {
        /// The vendor.
        vendor: VendorKind,
        /// HTTP status.
        status: u16,
        /// The field the vendor blamed, where it says.
        field: Option<String>,
        /// The vendor's message.
        message: String,
    },
    /// Credentials are missing, wrong or lack permission (after one token refresh).
    #[error("{vendor}: not authorised ({status}): {message}")]
    Unauthorized {
        /// The vendor.
        vendor: VendorKind,
        /// HTTP status.
        status: u16,
        /// The vendor's message.
        message: String,
    },
    /// The credentials are valid but lack permission (403: sandbox, API key, org or tenant
    /// permissions). A new token cannot fix it, so nothing is refreshed or re-sent: the customer
    /// must grant the permission.
    #[error("{vendor}: forbidden ({status}): {message}")]
    Forbidden {
        /// The vendor.
        vendor: VendorKind,
        /// HTTP status.
        status: u16,
        /// The vendor's message.
        message: String,
    },
    /// Reconciliation found more than one run that matches every field the vendor echoes back:
    /// adopting either could watch a stranger's run, so runbridge refuses to guess and the request
    /// goes to an operator with the candidates.
    #[error("{vendor}: ambiguous: {} runs match ({}); refusing to guess which one this request started", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// The vendor.
        vendor: VendorKind,
        /// The ids of every matching run.
        candidates: Vec<String>,
    },
    /// The run or resource does not exist.
    #[error("{vendor}: not found: {message}")]
    NotFound {
        /// The vendor.
        vendor: VendorKind,
        /// What was not found.
        message: String,
    },
    /// Throttled (429) or over a concurrency limit, after the retry budget.
    #[error("{vendor}: throttled{}: {message}", retry_after_seconds.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    Throttled {
        /// The vendor.
        vendor: VendorKind,
        /// The vendor's Retry-After, in seconds.
        retry_after_seconds: Option<u64>,
        /// The vendor's message.
        message: String,
    },
    /// The vendor failed (5xx) or the network did, after the retry budget.
    #[error("{vendor}: unavailable: {message}")]
    Unavailable {
        /// The vendor.
        vendor: VendorKind,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// A request that changes state (a submit) may or may not have been applied: the connection
    /// broke or the vendor answered 5xx after receiving it. Never resend blindly; reconcile.
    #[error("{vendor}: outcome unknown, the request may have been applied: {message}")]
    OutcomeUnknown {
        /// The vendor.
        vendor: VendorKind,
        /// What happened.
        message: String,
    },
    /// The vendor answered something this client does not understand.
    #[error("{vendor}: unexpected response: {message}")]
    Protocol {
        /// The vendor.
        vendor: VendorKind,
        /// What was unexpected.
        message: String,
    },
    /// runbridge is configured wrongly for this vendor (a missing setting, a bad URL).
    #[error("{vendor}: configuration: `{setting}` {message}")]
    Config {
        /// The vendor.
        vendor: VendorKind,
        /// The setting at fault.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// A download URL broke the download policy (scheme, host allow-list, private address).
    #[error("{vendor}: download refused: {message}")]
    DownloadRefused {
        /// The vendor.
        vendor: VendorKind,
        /// Why.
        message: String,
    },
}

impl VendorError {
    /// A 2xx answer to a create that cannot be read (not JSON, wrong shape, no run id): the
    /// vendor may well have created the run, so the outcome is unknown (reconcile, never resend
    /// blindly) for every vendor. The message names where the answer broke, never what it said
    /// (a create answer can echo the caller's credentials).
    pub fn unreadable_create(
        vendor: VendorKind,
        what: &str,
        err: Option<&serde_json::Error>,
    ) -> Self {
        let at = err
            .map(|e| {
                format!(
                    " ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                )
            })
            .unwrap_or_default();
        Self::OutcomeUnknown {
            vendor,
            message: format!("the run may have been created but the answer {what}{at}"),
        }
    }

    /// Whose fault the failure is.
    pub fn attribution(&self) -> Attribution {
        match self {
            Self::Rejected { .. }
            | Self::Unauthorized { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::Config { .. } => Attribution::Customer,
            Self::Throttled { .. }
            | Self::Unavailable { .. }
            | Self::OutcomeUnknown { .. }
            | Self::Protocol { .. }
            | Self::Ambiguous { .. }
            | Self::DownloadRefused { .. } => Attribution::Platform,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Unavailable { .. } | Self::OutcomeUnknown { .. }
        )
    }

    /// The vendor.
    pub fn vendor(&self) -> VendorKind {
        match self {
            Self::Rejected { vendor, .. }
            | Self::Unauthorized { vendor, .. }
            | Self::Forbidden { vendor, .. }
            | Self::Ambiguous { vendor, .. }
            | Self::NotFound { vendor, .. }
            | Self::Throttled { vendor, .. }
            | Self::Unavailable { vendor, .. }
            | Self::OutcomeUnknown { vendor, .. }
            | Self::Protocol { vendor, .. }
            | Self::Config { vendor, .. }
            | Self::DownloadRefused { vendor, .. } => *vendor,
        }
    }

    /// A protocol error for a response body that did not parse.
    pub fn protocol(vendor: VendorKind, message: impl Into<String>) -> Self {
        Self::Protocol {
            vendor,
            message: message.into(),
        }
    }
}
