//! Reading vendors' JSON error bodies: the pieces every vendor's error mapping repeats.
//!
//! Each vendor module still decides which keys hold its message and which request fields its
//! messages may name; this module only does the reading, so the vendors cannot drift apart in
//! how a missing key, a non-JSON body or a non-string value is treated.

use serde_json::Value;

/// A response body parsed as JSON, or nothing when it is not JSON (a gateway's HTML page).
pub(crate) struct ErrorBody(Option<Value>);

impl ErrorBody {
    /// Parses `body`; a body that is not JSON yields no text for any key.
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(serde_json::from_slice(body).ok())
    }

    /// The first of `pointers` (JSON pointers such as `/details` or `/report/detailed-message`)
    /// that holds a string, redacted: a vendor's message may quote the request's credentials.
    pub(crate) fn text(&self, pointers: &[&str]) -> Option<String> {
        let value = self.0.as_ref()?;
        pointers
            .iter()
            .find_map(|p| value.pointer(p).and_then(Value::as_str))
            .map(|t| crate::http::redact(t).into_owned())
    }
}

/// The first of `fields` that `message` mentions: vendors whose error bodies name no field still
/// quote it in their message, and naming it tells the caller what to fix.
pub(crate) fn field_named_in<'a>(message: &str, fields: &[&'a str]) -> Option<&'a str> {
    fields.iter().copied().find(|f| message.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_string_among_the_keys() {
        let body = ErrorBody::parse(br#"{"code": 400, "message": "m", "report": {"d": "deep"}}"#);
        assert_eq!(body.text(&["/code", "/message"]).as_deref(), Some("m"));
        assert_eq!(
            body.text(&["/report/d", "/message"]).as_deref(),
            Some("deep")
        );
        assert_eq!(body.text(&["/missing"]), None);
        assert_eq!(ErrorBody::parse(b"<html>").text(&["/message"]), None);
        assert_eq!(
            ErrorBody::parse(br#"["message"]"#).text(&["/message"]),
            None
        );
    }

    #[test]
    fn names_the_first_field_mentioned() {
        assert_eq!(
            field_named_in("bad range_to", &["range_from", "range_to"]),
            Some("range_to")
        );
        assert_eq!(field_named_in("nothing", &["range_from"]), None);
    }
}
