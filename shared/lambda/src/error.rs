//! The error a function returns to the Lambda runtime.

use lambda_runtime::Diagnostic;
use runbridge_adapters_aws::AwsError;
use runbridge_core::{cut_text, MAX_REASON_BYTES};
use runbridge_handlers::HandlerError;
use thiserror::Error;

/// A handler's failure as Lambda reports it: the Lambda `errorType` is
/// [`HandlerError::error_type`] (`Retryable`, `NonRetryable` or `InvalidRequest`), the name the
/// state machine's `Retry` and `Catch` clauses match, and `errorMessage` is the error's text.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct FunctionError(#[from] pub HandlerError);

impl FunctionError {
    /// The Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        self.0.error_type()
    }

    /// An AWS adapter failure of `port`.
    pub fn aws(port: &'static str, error: AwsError) -> Self {
        Self(error.into_handler(port))
    }

    /// An event that does not have the shape this function accepts.
    pub fn bad_input(message: impl std::fmt::Display) -> Self {
        Self(HandlerError::BadInput(message.to_string()))
    }
}

/// The message is cut to [`MAX_REASON_BYTES`]: Step Functions puts it into the state's input as
/// the caught error's `Cause`, which counts toward the execution payload budget (the log line
/// keeps it whole).
impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: cut_text(&e.to_string(), MAX_REASON_BYTES),
        }
    }
}
