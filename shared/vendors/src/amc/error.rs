//! AMC's error answers as [`VendorError`]s: `{"code": "...", "details": "..."}` (older gateways
//! answer `message`), mapped through [`http::status_error`] with a field named when `details`
//! quotes one; and request problems found before anything is sent.

use runbridge_core::ValidationError;

use super::VENDOR;
use crate::error_body::ErrorBody;
use crate::http::{self, ApiResponse};
use crate::VendorError;

/// AMC's error text: `details`, else `message`, else the status and the start of the body.
pub(super) fn error_message(response: &ApiResponse) -> String {
    ErrorBody::parse(&response.body)
        .text(&["/details", "/message"])
        .unwrap_or_else(|| {
            format!(
                "HTTP {}: {}",
                response.status.as_u16(),
                response.text_snippet()
            )
        })
}

/// Whether a `downloadUrls` refusal means "not published yet" ("Execution with ID … is
/// unavailable for download", a 4xx) rather than a failure.
pub(super) fn not_published_yet(response: &ApiResponse, message: &str) -> bool {
    response.status.is_client_error() && message.contains("unavailable for download")
}

/// The field an AMC message quotes, as in `Unrecognized field "foo"`.
pub(super) fn quoted_field(message: &str) -> Option<String> {
    let rest = &message[message.find("field \"")? + "field \"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Maps a non-success answer.
pub(super) fn api_error(response: &ApiResponse) -> VendorError {
    let message = error_message(response);
    let field = quoted_field(&message);
    http::status_error(VENDOR, response, message, field)
}

/// A request problem found before anything was sent.
pub(super) fn invalid(error: ValidationError) -> VendorError {
    VendorError::Rejected {
        vendor: VENDOR,
        status: 400,
        field: Some(error.field),
        message: format!("{} (rejected before sending)", error.rule),
    }
}
