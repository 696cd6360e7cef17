use std::fmt;

use runbridge_core::redact::redact;
use runbridge_core::{Attribution, VendorKind};
use thiserror::Error;

/// Why a vendor call failed. Every variant says whose fault it is ([`VendorError::attribution`])
/// and whether trying again later can help ([`VendorError::is_retryable`]).
///
/// Messages quote vendors, and vendors echo what they were sent: `Display` and `Debug` pass every
/// message through [`runbridge_core::redact`], whichever path built it.
#[derive(Clone, Error)]
#[non_exhaustive]
pub enum VendorError {
    /// The vendor rejected the request as invalid (4xx other than auth and throttling).
    #[error("{vendor}: request rejected ({status}){}: {}", field.as_deref().map(|f| format!(" field `{f}`")).unwrap_or_default(), redact(message))]
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
    #[error("{vendor}: not authorised ({status}): {}", redact(message))]
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
    #[error("{vendor}: forbidden ({status}): {}", redact(message))]
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
    #[error("{vendor}: ambiguous: {} runs match ({}); refusing to guess which one this request started", candidates.len(), redact(&candidates.join(", ")))]
    Ambiguous {
        /// The vendor.
        vendor: VendorKind,
        /// The ids of every matching run.
        candidates: Vec<String>,
    },
    /// The run or resource does not exist.
    #[error("{vendor}: not found: {}", redact(message))]
    NotFound {
        /// The vendor.
        vendor: VendorKind,
        /// What was not found.
        message: String,
    },
    /// Throttled (429) or over a concurrency limit, after the retry budget.
    #[error("{vendor}: throttled{}: {}", retry_after_seconds.map(|s| format!(" (retry after {s} s)")).unwrap_or_default(), redact(message))]
    Throttled {
        /// The vendor.
        vendor: VendorKind,
        /// The vendor's Retry-After, in seconds.
        retry_after_seconds: Option<u64>,
        /// The vendor's message.
        message: String,
    },
    /// The vendor failed (5xx) or the network did, after the retry budget.
    #[error("{vendor}: unavailable: {}", redact(message))]
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
    #[error(
        "{vendor}: outcome unknown, the request may have been applied: {}",
        redact(message)
    )]
    OutcomeUnknown {
        /// The vendor.
        vendor: VendorKind,
        /// What happened.
        message: String,
    },
    /// The vendor answered something this client does not understand.
    #[error("{vendor}: unexpected response: {}", redact(message))]
    Protocol {
        /// The vendor.
        vendor: VendorKind,
        /// What was unexpected.
        message: String,
    },
    /// runbridge is configured wrongly for this vendor (a missing setting, a bad URL).
    #[error("{vendor}: configuration: `{setting}` {}", redact(message))]
    Config {
        /// The vendor.
        vendor: VendorKind,
        /// The setting at fault.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// A download URL broke the download policy (scheme, host allow-list, private address).
    #[error("{vendor}: download refused: {}", redact(message))]
    DownloadRefused {
        /// The vendor.
        vendor: VendorKind,
        /// Why.
        message: String,
    },
}

/// As derived, with every text redacted.
impl fmt::Debug for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |t: &str| redact(t).into_owned();
        match self {
            Self::Rejected {
                vendor,
                status,
                field,
                message,
            } => f
                .debug_struct("Rejected")
                .field("vendor", vendor)
                .field("status", status)
                .field("field", &field.as_deref().map(text))
                .field("message", &text(message))
                .finish(),
            Self::Unauthorized {
                vendor,
                status,
                message,
            } => f
                .debug_struct("Unauthorized")
                .field("vendor", vendor)
                .field("status", status)
                .field("message", &text(message))
                .finish(),
            Self::Forbidden {
                vendor,
                status,
                message,
            } => f
                .debug_struct("Forbidden")
                .field("vendor", vendor)
                .field("status", status)
                .field("message", &text(message))
                .finish(),
            Self::Ambiguous { vendor, candidates } => f
                .debug_struct("Ambiguous")
                .field("vendor", vendor)
                .field(
                    "candidates",
                    &candidates.iter().map(|c| text(c)).collect::<Vec<_>>(),
                )
                .finish(),
            Self::NotFound { vendor, message } => f
                .debug_struct("NotFound")
                .field("vendor", vendor)
                .field("message", &text(message))
                .finish(),
            Self::Throttled {
                vendor,
                retry_after_seconds,
                message,
            } => f
                .debug_struct("Throttled")
                .field("vendor", vendor)
                .field("retry_after_seconds", retry_after_seconds)
                .field("message", &text(message))
                .finish(),
            Self::Unavailable {
                vendor,
                status,
                message,
            } => f
                .debug_struct("Unavailable")
                .field("vendor", vendor)
                .field("status", status)
                .field("message", &text(message))
                .finish(),
            Self::OutcomeUnknown { vendor, message } => f
                .debug_struct("OutcomeUnknown")
                .field("vendor", vendor)
                .field("message", &text(message))
                .finish(),
            Self::Protocol { vendor, message } => f
                .debug_struct("Protocol")
                .field("vendor", vendor)
                .field("message", &text(message))
                .finish(),
            Self::Config {
                vendor,
                setting,
                message,
            } => f
                .debug_struct("Config")
                .field("vendor", vendor)
                .field("setting", setting)
                .field("message", &text(message))
                .finish(),
            Self::DownloadRefused { vendor, message } => f
                .debug_struct("DownloadRefused")
                .field("vendor", vendor)
                .field("message", &text(message))
                .finish(),
        }
    }
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
