//! Keeping credentials out of error text: every response body quoted in an error passes through
//! [`runbridge_core::redact`] (registered secrets in any encoding, URL query strings, bearer
//! credentials, secret fields), because error text ends up in logs, manifests and dead-letter
//! messages. Credentials are registered where the vendor clients load or receive them
//! ([`register_url`] for download URLs).

pub use runbridge_core::redact::{redact, redact_query_strings, register, register_url};

/// A response body as (lossy) text for an error message: redacted (before the cut, so no secret
/// is cut in half and left partly), and cut at 500 characters.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = redact(&String::from_utf8_lossy(body)).into_owned();
    let mut s: String = text.chars().take(500).collect();
    if text.chars().count() > 500 {
        s.push('…');
    }
    s
}
