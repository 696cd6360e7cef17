//! Errors of the AWS adapters and how they map into [`HandlerError`].
//!
//! The SDK already retries transient failures (standard retry mode, three attempts with
//! backoff) before an error reaches us. What is left is classified once, here: a failure that
//! may succeed later (throttling, 5xx, timeouts, network) is retryable, so the SQS message is
//! redelivered or the Step Functions `Retry` on `Retryable` fires; anything else (access denied,
//! a missing bucket, a conflicting execution) is not, because repeating it cannot help.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use runbridge_handlers::HandlerError;
use thiserror::Error;

/// Why an AWS adapter failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AwsError {
    /// An AWS API call failed.
    #[error("{service} {operation} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Call {
        /// The service, e.g. `s3`.
        service: &'static str,
        /// The operation, e.g. `PutObject`.
        operation: &'static str,
        /// The AWS error code, when the service answered one.
        code: Option<String>,
        /// HTTP status of the answer, when there was one.
        status: Option<u16>,
        /// What happened.
        message: String,
        /// Whether the same call may succeed later.
        retryable: bool,
    },
    /// The deployment is misconfigured (a missing environment variable, an unusable secret).
    #[error("configuration: {0}")]
    Config(String),
    /// A call succeeded but its answer says the operation did not (an EventBridge entry
    /// rejected, an execution name taken by another input, a stored document unreadable).
    #[error("{service}: {message}")]
    Rejected {
        /// The service.
        service: &'static str,
        /// What was rejected and why.
        message: String,
        /// Whether the same call may succeed later.
        retryable: bool,
    },
}

impl AwsError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Call { retryable, .. } | Self::Rejected { retryable, .. } => *retryable,
            Self::Config(_) => false,
        }
    }

    /// The AWS error code of a failed call.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of a failed call.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Call { status, .. } => *status,
            _ => None,
        }
    }

    /// Converts into the handlers' error, naming the port that failed.
    pub fn into_handler(self, port: &'static str) -> HandlerError {
        let retryable = self.is_retryable();
        HandlerError::port(port, self, retryable)
    }
}

/// Error codes that mean "too much, too fast" or "not now" whatever the HTTP status says.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ConditionalRequestConflict",
];

/// Classifies a failed SDK call. Generic over every service's operation error.
pub(crate) fn sdk_error<E>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, aws_smithy_runtime_api_http::HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message, retryable) = match &err {
        SdkError::ConstructionFailure(_) => (None, format!("{}", DisplayChain(&err)), false),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (None, format!("{}", DisplayChain(&err)), true)
        }
        SdkError::ServiceError(service_err) => {
            let e = service_err.err();
            let code = e.code().map(str::to_owned);
            let transient = status.is_some_and(|s| s >= 500 || s == 429)
                || code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c));
            let message = e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}", DisplayChain(e)));
            (code, message, transient)
        }
        _ => (None, format!("{}", DisplayChain(&err)), true),
    };
    AwsError::Call {
        service,
        operation,
        code,
        status,
        message,
        retryable,
    }
}

/// Re-exported under a private name: every SDK crate shares smithy's HTTP response type.
pub(crate) mod aws_smithy_runtime_api_http {
    pub use aws_sdk_s3::config::http::HttpResponse;
}

/// Displays an error with its sources, `a: b: c`: SDK errors put the useful part in a source.
struct DisplayChain<'a, E: ?Sized>(&'a E);

impl<E: std::error::Error + ?Sized> std::fmt::Display for DisplayChain<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
