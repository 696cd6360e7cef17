//! The field rules requests share: ids, SQL text, explicit windows, key prefixes and profile
//! names. Each vendor's own rules (in its file) are made of these; every rejection names the
//! field and the rule.

use super::{MAX_PROFILE_CHARS, MAX_SQL_CHARS};
use crate::reserved::reserved_segment;
use crate::window::{parse_utc, UtcRange};
use crate::ValidationError;

/// A profile name: it goes into idempotency keys, S3 keys (via the key), metrics dimensions and
/// secret documents, so it keeps to lower-case letters, digits and `-`. The same rule applies to
/// the names of configured profiles (`runbridge-vendors`' settings), so every configured profile
/// can be named by a request.
pub fn check_profile_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PROFILE_CHARS
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(ValidationError::new(
            field,
            format!(
                "must be 1 to {MAX_PROFILE_CHARS} lower-case letters, digits or `-`, starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_nonempty(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Ids go into URL paths, headers and S3 keys: keep them to a safe alphabet.
pub(super) fn check_id(
    field: &str,
    value: &str,
    max: usize,
    extra: &str,
) -> Result<(), ValidationError> {
    check_nonempty(field, value, max)?;
    let ok_first = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if !ok_first || !ok_rest {
        return Err(ValidationError::new(
            field,
            format!(
                "must start with a letter or digit and contain only letters, digits and `{extra}`"
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_sql(field: &str, sql: &str) -> Result<(), ValidationError> {
    check_nonempty(field, sql, MAX_SQL_CHARS)?;
    if sql.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// A key prefix made of safe segments: nothing can climb out of the configured results prefix.
pub fn check_prefix(field: &str, prefix: &str) -> Result<(), ValidationError> {
    check_nonempty(field, prefix, 200)?;
    for segment in prefix.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(ValidationError::new(
                field,
                "must be relative segments separated by single `/`, without `.` or `..`",
            ));
        }
        check_id(field, segment, 200, "._=-")?;
        if let Some(rule) = reserved_segment(segment) {
            return Err(ValidationError::new(field, rule));
        }
    }
    Ok(())
}

pub(super) fn check_window(
    start_field: &str,
    start: &Option<String>,
    end_field: &str,
    end: &Option<String>,
) -> Result<Option<UtcRange>, ValidationError> {
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ValidationError::new(
            end_field,
            format!("is required with `{start_field}`"),
        )),
        (None, Some(_)) => Err(ValidationError::new(
            start_field,
            format!("is required with `{end_field}`"),
        )),
        (Some(s), Some(e)) => {
            let start = parse_utc(start_field, s)?;
            let end = parse_utc(end_field, e)?;
            if end <= start {
                return Err(ValidationError::new(
                    end_field,
                    format!("must be after `{start_field}`"),
                ));
            }
            Ok(Some(UtcRange { start, end }))
        }
    }
}
