use thiserror::Error;

/// A request that cannot be run. `field` is the JSON path of the offending value (for example
/// `range_to` or `time_window.start`) and `rule` says what it broke, so the message alone tells an
/// operator what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid request: field `{field}`: {rule}")]
pub struct ValidationError {
    /// JSON path of the offending field; `$` for the document itself.
    pub field: String,
    /// The rule that was broken, in plain words.
    pub rule: String,
}

impl ValidationError {
    /// A new error for `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
