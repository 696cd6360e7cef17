//! UTC timestamps and time windows relative to a schedule time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use crate::ValidationError;

/// A window relative to the time a schedule fired, always in UTC and aligned to whole units, so
/// a nightly job asks for "yesterday" without computing dates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelativeWindow {
    /// The hour before the anchor's hour.
    PreviousHour,
    /// The UTC day before the anchor's day.
    PreviousDay,
    /// The seven UTC days (Monday to Sunday) before the anchor's week.
    PreviousWeek,
    /// The UTC calendar month before the anchor's month.
    PreviousMonth,
}

/// A half-open UTC interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcRange {
    /// Inclusive start.
    pub start: OffsetDateTime,
    /// Exclusive end.
    pub end: OffsetDateTime,
}

impl UtcRange {
    /// The start as RFC 3339 with `Z`.
    pub fn start_string(&self) -> String {
        format_utc(self.start)
    }
    /// The end as RFC 3339 with `Z`.
    pub fn end_string(&self) -> String {
        format_utc(self.end)
    }
}

impl RelativeWindow {
    /// The window this means at `anchor`.
    pub fn resolve(self, anchor: OffsetDateTime) -> UtcRange {
        let anchor = anchor.to_offset(UtcOffset::UTC);
        let day = anchor.date().midnight().assume_utc();
        match self {
            Self::PreviousHour => {
                let hour = day + Duration::hours(anchor.hour().into());
                UtcRange {
                    start: hour - Duration::hours(1),
                    end: hour,
                }
            }
            Self::PreviousDay => UtcRange {
                start: day - Duration::days(1),
                end: day,
            },
            Self::PreviousWeek => {
                let monday =
                    day - Duration::days(anchor.weekday().number_days_from_monday().into());
                UtcRange {
                    start: monday - Duration::days(7),
                    end: monday,
                }
            }
            Self::PreviousMonth => {
                let first = Date::from_calendar_date(anchor.year(), anchor.month(), 1)
                    .expect("day 1 exists in every month")
                    .midnight()
                    .assume_utc();
                let prev = first - Duration::days(1);
                let prev_first = Date::from_calendar_date(prev.year(), prev.month(), 1)
                    .expect("day 1 exists in every month")
                    .midnight()
                    .assume_utc();
                UtcRange {
                    start: prev_first,
                    end: first,
                }
            }
        }
    }
}

/// Formats a time as RFC 3339 in UTC with a `Z` suffix.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
}

/// Parses an ISO-8601 UTC timestamp: RFC 3339 ending in `Z` (or `+00:00`), or a bare date
/// `YYYY-MM-DD` meaning midnight UTC. Other offsets are rejected rather than converted, because
/// vendors interpret window bounds as UTC and a silent shift moves a day's data.
pub fn parse_utc(field: &str, value: &str) -> Result<OffsetDateTime, ValidationError> {
    if let Ok(date) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_utc());
    }
    // `23:59:60` names a leap second no vendor can take (`time` reads it as …59.999999999, so it
    // would reach the vendor as a different instant); `-00:00` is RFC 3339's "offset unknown",
    // which is not a UTC claim.
    if value.get(17..19) == Some("60") && value.as_bytes().get(16) == Some(&b':') {
        return Err(ValidationError::new(
            field,
            "must not name a leap second (`:60`); use `:59` or the next minute",
        ));
    }
    // RFC 3339 separates date and time with `T` (or `t`); the parser also takes a space or any
    // other character there, which the published schema, and so other tools, refuse.
    if value.len() > 10 && !matches!(value.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(ValidationError::new(
            field,
            "must separate the date and the time with `T`, as in 2026-11-26T00:00:00Z",
        ));
    }
    if value.ends_with("-00:00") {
        return Err(ValidationError::new(
            field,
            "must be in UTC (end with `Z`); `-00:00` means the offset is unknown",
        ));
    }
    match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(t) if t.offset() == UtcOffset::UTC => Ok(t),
        Ok(_) => Err(ValidationError::new(field, "must be in UTC (end with `Z`), not a local offset")),
        Err(_) => Err(ValidationError::new(
            field,
            "must be an ISO-8601 UTC timestamp such as 2026-11-26T00:00:00Z or a date such as 2026-11-26",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn previous_day_is_yesterday_in_utc() {
        let r = RelativeWindow::PreviousDay.resolve(datetime!(2026-11-27 02:15 +01:00));
        // 02:15+01:00 is 01:15Z on the 27th.
        assert_eq!(r.start_string(), "2026-11-26T00:00:00Z");
        assert_eq!(r.end_string(), "2026-11-27T00:00:00Z");
    }

    #[test]
    fn previous_month_crosses_years() {
        let r = RelativeWindow::PreviousMonth.resolve(datetime!(2026-01-15 10:00 UTC));
        assert_eq!(r.start_string(), "2025-12-01T00:00:00Z");
        assert_eq!(r.end_string(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn previous_week_starts_monday() {
        // 2026-11-27 is a Friday.
        let r = RelativeWindow::PreviousWeek.resolve(datetime!(2026-11-27 10:00 UTC));
        assert_eq!(r.start_string(), "2026-11-16T00:00:00Z");
        assert_eq!(r.end_string(), "2026-11-23T00:00:00Z");
    }

    #[test]
    fn previous_hour() {
        let r = RelativeWindow::PreviousHour.resolve(datetime!(2026-11-27 00:30 UTC));
        assert_eq!(r.start_string(), "2026-11-26T23:00:00Z");
    }

    #[test]
    fn non_utc_offsets_are_rejected_by_name() {
        let e = parse_utc("range_from", "2026-11-27T00:00:00+02:00").unwrap_err();
        assert_eq!(e.field, "range_from");
        assert!(e.rule.contains("UTC"));
        assert!(parse_utc("x", "2026-11-27T00:00:00Z").is_ok());
        assert!(parse_utc("x", "2026-11-27").is_ok());
        assert!(parse_utc("x", "yesterday").is_err());
    }

    #[test]
    fn leap_seconds_and_unknown_offsets_are_refused() {
        let e = parse_utc("range_to", "2026-12-31T23:59:60Z").unwrap_err();
        assert!(e.rule.contains("leap second"), "{e}");
        let e = parse_utc("range_to", "2026-11-27T00:00:00-00:00").unwrap_err();
        assert!(e.rule.contains("unknown"), "{e}");
        // Lower-case designators are RFC 3339 and mean the same instant: canonicalised, not refused.
        assert_eq!(
            format_utc(parse_utc("x", "2026-11-27t00:00:00z").unwrap()),
            "2026-11-27T00:00:00Z"
        );
    }
}
