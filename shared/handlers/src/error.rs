use runbridge_core::{Attribution, IllegalTransition, ValidationError};
use runbridge_vendors::VendorError;
use thiserror::Error;

/// The error names a handler failure carries to Step Functions (Lambda's `errorType`), which the
/// state machine's `Retry` and `Catch` clauses match. `infra/statemachine.asl.json` spells them
/// too; a test in [`crate::steps`] checks that the two agree.
pub mod error_names {
    /// Trying again can help: the state machine's `Retry` clauses match this name.
    pub const RETRYABLE: &str = "Retryable";
    /// Trying again cannot help.
    pub const NON_RETRYABLE: &str = "NonRetryable";
    /// Trying again cannot help, and the vendor blames the customer's side (a 403 permission
    /// error, a rejected request, a missing resource, a configuration error). The state machine
    /// catches it apart from [`NON_RETRYABLE`] so that the failure record's attribution comes
    /// from the error, not from a constant in the definition.
    pub const NON_RETRYABLE_CUSTOMER: &str = "NonRetryable.Customer";
    /// The request itself is invalid.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// Every name above.
    pub const ALL: [&str; 4] = [
        RETRYABLE,
        NON_RETRYABLE,
        NON_RETRYABLE_CUSTOMER,
        INVALID_REQUEST,
    ];
    /// The names whose failures are attributed to the customer (the state machine's customer
    /// catch lists exactly these).
    pub const CUSTOMER: [&str; 2] = [INVALID_REQUEST, NON_RETRYABLE_CUSTOMER];
}

/// Why a handler failed. [`HandlerError::error_type`] is the name Step Functions `Retry`/`Catch`
/// and SQS batch handling match on.
#[derive(Debug, Error)]
pub enum HandlerError {
    /// The request is invalid: never retry, send to the DLQ with this reason.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The vendor call failed.
    #[error(transparent)]
    Vendor(#[from] VendorError),
    /// A port (S3, the ledger, Step Functions, EventBridge) failed.
    #[error("{port}: {message}")]
    Port {
        /// Which port.
        port: &'static str,
        /// What happened.
        message: String,
        /// Whether trying again can help.
        retryable: bool,
    },
    /// Results are not downloadable yet, or a download came out wrong (size or checksum):
    /// retry the step.
    #[error("{0}")]
    Transient(String),
    /// An earlier submission may have started a vendor run that the vendor cannot confirm or
    /// deny: resubmitting could double it, so the request stops here for an operator.
    #[error("not resubmitting: {0}")]
    Unreconcilable(String),
    /// The key was claimed for another request body: same `request_id` (or attempt), different
    /// content. Never reused silently; an operator resends with a new `request_id` or attempt.
    #[error(
        "KeyConflict: key {key} was claimed for another request (fingerprint {stored}); this \
         request has fingerprint {received}: use a new request_id (or attempt) for a changed request"
    )]
    KeyConflict {
        /// The key.
        key: String,
        /// The fingerprint stored with the claim.
        stored: String,
        /// This delivery's fingerprint.
        received: String,
    },
    /// Collecting a vendor run that succeeded failed on runbridge's side (a download refused by
    /// our own policy, a sink that keeps failing): no final manifest is written, a marker records
    /// the reason, and the next delivery of the request (or a rerun) collects again.
    #[error("collect failed on our side (the vendor run succeeded; resend the request to collect it again): {0}")]
    CollectFailed(String),
    /// The input of a state was not what the state machine contract says.
    #[error("bad handler input: {0}")]
    BadInput(String),
    /// A step found the key's ledger entry in a state it cannot act on (an execution that does
    /// not match its entry): retrying cannot change it.
    #[error(transparent)]
    Lifecycle(#[from] IllegalTransition),
}

impl HandlerError {
    /// A port failure.
    pub fn port(port: &'static str, message: impl std::fmt::Display, retryable: bool) -> Self {
        Self::Port {
            port,
            message: message.to_string(),
            retryable,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_)
            | Self::BadInput(_)
            | Self::Unreconcilable(_)
            | Self::KeyConflict { .. }
            | Self::Lifecycle(_)
            | Self::CollectFailed(_) => false,
            Self::Vendor(e) => e.is_retryable(),
            Self::Port { retryable, .. } => *retryable,
            Self::Transient(_) => true,
        }
    }

    /// `Retryable`, `InvalidRequest`, `NonRetryable.Customer` or `NonRetryable`: the error name
    /// the state machine's Retry and Catch clauses match. A vendor error the vendor attributes to
    /// the customer is `NonRetryable.Customer`, so the attribution travels in the name.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => error_names::INVALID_REQUEST,
            _ if self.is_retryable() => error_names::RETRYABLE,
            Self::Vendor(e) if e.attribution() == Attribution::Customer => {
                error_names::NON_RETRYABLE_CUSTOMER
            }
            _ => error_names::NON_RETRYABLE,
        }
    }

    /// Whose fault it is.
    pub fn attribution(&self) -> Attribution {
        match self {
            Self::Invalid(_) | Self::BadInput(_) | Self::KeyConflict { .. } => {
                Attribution::Customer
            }
            Self::Vendor(e) => e.attribution(),
            Self::Port { .. }
            | Self::Transient(_)
            | Self::Unreconcilable(_)
            | Self::Lifecycle(_)
            | Self::CollectFailed(_) => Attribution::Platform,
        }
    }
}
