//! Backfill windows: one request per day, week or month between two dates, both inclusive (as
//! Airflow's backfill), each with a `request_id` derived from the template and its window so that
//! repeating a backfill claims the same keys and starts nothing twice, while two templates never
//! share a key ([`base_id`]).
//!
//! The template request names a `relative_window` (`previous_day`, `previous_week`,
//! `previous_month`); each window's request is that template resolved at the window's end, which
//! is exactly how a schedule firing at that moment would have resolved it. The vendor-specific
//! window fields are thereby filled by the request model itself, not by this module.

use runbridge_core::{Fingerprint, RunRequest, VendorSpec};
use serde::Serialize;
use time::{Date, Month, OffsetDateTime, Time};

use crate::exit::CliError;

/// Most windows one backfill may produce.
pub const MAX_WINDOWS: usize = 1_000;

/// The backfill step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    /// UTC days.
    Day,
    /// Monday-to-Sunday UTC weeks.
    Week,
    /// UTC calendar months.
    Month,
}

impl Every {
    /// The `relative_window` a template request must have for this step.
    pub fn relative_window(self) -> &'static str {
        match self {
            Self::Day => "previous_day",
            Self::Week => "previous_week",
            Self::Month => "previous_month",
        }
    }

    fn from_relative_window(name: &str) -> Option<Self> {
        [Self::Day, Self::Week, Self::Month]
            .into_iter()
            .find(|e| e.relative_window() == name)
    }
}

/// One backfill window `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First day of the window.
    pub start: Date,
    /// The day after its last day.
    pub end: Date,
    /// The `request_id` suffix naming it (`2026-11-26`, `week-2026-11-23`, `2026-11`).
    pub label: String,
}

/// Parses `YYYY-MM-DD`, a year from 1 to 9999 (a window resolved near the calendar's ends would
/// step outside it).
pub fn parse_date(field: &str, text: &str) -> Result<Date, CliError> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|d| d.year() >= 1)
    .ok_or_else(|| {
        CliError::invalid(format!(
            "{field} `{text}`: must be a date YYYY-MM-DD from 0001-01-01 to 9999-12-31"
        ))
    })
}

/// The first of the month after `d`; `None` past the last representable date (9999-12-31).
fn first_of_next_month(d: Date) -> Option<Date> {
    let (y, m) = if d.month() == Month::December {
        (d.year().checked_add(1)?, Month::January)
    } else {
        (d.year(), d.month().next())
    };
    Date::from_calendar_date(y, m, 1).ok()
}

/// A window that would start or end outside the dates runbridge represents.
fn out_of_range(from: Date, to: Date) -> CliError {
    CliError::invalid(format!(
        "--from {from} / --to {to}: a window would start or end outside the representable dates          ({} to {}); choose dates inside them",
        Date::MIN,
        Date::MAX
    ))
}

/// The windows of `every` that overlap `[from, to]` (both inclusive), aligned to whole days,
/// Monday-based weeks or calendar months.
pub fn windows(from: Date, to: Date, every: Every) -> Result<Vec<Window>, CliError> {
    if to < from {
        return Err(CliError::invalid(format!(
            "--to {to} is before --from {from}"
        )));
    }
    // Dates from the command line may sit at the ends of the calendar (year 9999): every step
    // is checked, never a panic.
    let start = match every {
        Every::Day => Some(from),
        Every::Week => from.checked_sub(time::Duration::days(i64::from(
            from.weekday().number_days_from_monday(),
        ))),
        Every::Month => from.replace_day(1).ok(),
    };
    let mut start = start.ok_or_else(|| out_of_range(from, to))?;
    let mut out = Vec::new();
    while start <= to {
        let end = match every {
            Every::Day => start.checked_add(time::Duration::days(1)),
            Every::Week => start.checked_add(time::Duration::days(7)),
            Every::Month => first_of_next_month(start),
        }
        .ok_or_else(|| out_of_range(from, to))?;
        let label = match every {
            Every::Day => start.to_string(),
            Every::Week => format!("week-{start}"),
            Every::Month => format!("{}-{:02}", start.year(), start.month() as u8),
        };
        out.push(Window { start, end, label });
        if out.len() > MAX_WINDOWS {
            return Err(CliError::invalid(format!(
                "more than {MAX_WINDOWS} windows from {from} to {to}; split the backfill"
            )));
        }
        start = end;
    }
    Ok(out)
}

/// The step a template implies (its `relative_window`), checked against `--every` when given.
pub fn step_of(template: &serde_json::Value, every: Option<Every>) -> Result<Every, CliError> {
    let relative = template
        .get("relative_window")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            CliError::invalid(
                "backfill needs a request with `relative_window` (previous_day, previous_week or \
                 previous_month), not an absolute window: each window's request is that request \
                 resolved at the window's end (e.g. docs/examples/amperity-daily.json)",
            )
        })?;
    let implied = Every::from_relative_window(relative).ok_or_else(|| {
        CliError::invalid(format!(
            "`relative_window` {relative} cannot be backfilled; use previous_day, previous_week or previous_month"
        ))
    })?;
    match every {
        Some(e) if e != implied => Err(CliError::invalid(format!(
            "--every {} does not match the request's relative_window {relative} (use --every {})",
            e.relative_window().trim_start_matches("previous_"),
            implied.relative_window().trim_start_matches("previous_"),
        ))),
        _ => Ok(implied),
    }
}

/// Hex digits of the template's fingerprint in [`base_id`]: 48 bits, so two templates of one
/// vendor and profile sharing a key is out of reach.
const TEMPLATE_ID_HEX: usize = 12;

/// The `request_id` every window's id starts with: the template's own, else `backfill-` and the
/// first digits of its fingerprint (the request as written), so two templates without a
/// `request_id` (say two Amperity config ids) never share a key, while the same template run
/// again makes the same keys.
pub fn base_id(template: &RunRequest) -> String {
    match &template.request_id {
        Some(id) => id.clone(),
        None => {
            let fingerprint = Fingerprint::of(template);
            let digits = fingerprint.as_str().trim_start_matches("sha256:");
            format!("backfill-{}", &digits[..TEMPLATE_ID_HEX])
        }
    }
}

/// The request of one window: the template with `request_id` `{base}-{label}` ([`base_id`]),
/// resolved at the window's end, validated. The template is the request `validate` read from the
/// file (its numbers exact), never a re-parse of the file's text, so parameter values reach the
/// queue as written.
pub fn window_request(
    template: &RunRequest,
    base: &str,
    window: &Window,
) -> Result<RunRequest, CliError> {
    if matches!(template.spec, VendorSpec::Carto(_)) {
        return Err(CliError::invalid(
            "CARTO requests have no window to backfill",
        ));
    }
    let mut request = template.clone();
    request.request_id = Some(format!("{base}-{}", window.label));
    let anchor = OffsetDateTime::new_utc(window.end, Time::MIDNIGHT);
    let resolved: RunRequest = request.resolve(anchor).into();
    // The resolved document goes through the strict parse and validation the trigger applies to
    // the queue message it becomes.
    let body = serde_json::to_vec(&resolved).expect("requests serialise");
    RunRequest::from_json(&body)
        .map_err(|e| CliError::invalid(format!("window {}: {e}", window.label)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn days_are_inclusive_at_both_ends() {
        let w = windows(date!(2026 - 11 - 28), date!(2026 - 12 - 01), Every::Day).unwrap();
        let labels: Vec<_> = w.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(
            labels,
            ["2026-11-28", "2026-11-29", "2026-11-30", "2026-12-01"]
        );
        assert_eq!(w[3].end, date!(2026 - 12 - 02));
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-26 is a Thursday.
        let w = windows(date!(2026 - 11 - 26), date!(2026 - 12 - 07), Every::Week).unwrap();
        assert_eq!(
            w.iter().map(|w| (w.start, w.end)).collect::<Vec<_>>(),
            [
                (date!(2026 - 11 - 23), date!(2026 - 11 - 30)),
                (date!(2026 - 11 - 30), date!(2026 - 12 - 07)),
                (date!(2026 - 12 - 07), date!(2026 - 12 - 14)),
            ]
        );
        let m = windows(date!(2026 - 11 - 15), date!(2027 - 01 - 01), Every::Month).unwrap();
        assert_eq!(
            m.iter().map(|w| w.label.as_str()).collect::<Vec<_>>(),
            ["2026-11", "2026-12", "2027-01"]
        );
    }

    #[test]
    fn reversed_and_huge_ranges_are_refused() {
        assert!(windows(date!(2026 - 11 - 02), date!(2026 - 11 - 01), Every::Day).is_err());
        assert!(parse_date("--from", "-0001-01-01").is_err());
        assert!(parse_date("--from", "0000-12-31").is_err());
        assert!(parse_date("--to", "9999-12-31").is_ok());
        // The ends of the calendar are refused, not a panic.
        for every in [Every::Day, Every::Week, Every::Month] {
            let err = windows(date!(9999 - 12 - 30), date!(9999 - 12 - 31), every).unwrap_err();
            assert!(err.to_string().contains("representable"), "{err}");
        }
        assert_eq!(
            windows(date!(9999 - 12 - 29), date!(9999 - 12 - 30), Every::Day)
                .unwrap()
                .len(),
            2
        );
        assert!(windows(date!(2020 - 01 - 01), date!(2026 - 01 - 01), Every::Day).is_err());
    }

    #[test]
    fn templates_without_a_request_id_get_their_own_ids() {
        let template = |config: &str| {
            RunRequest::from_value(serde_json::json!({
                "vendor": "amperity", "tenant": "acme", "config_id": config,
                "relative_window": "previous_day"
            }))
            .unwrap()
        };
        let (a, b) = (base_id(&template("cg-1")), base_id(&template("cg-2")));
        assert_ne!(a, b);
        assert_eq!(
            a,
            base_id(&template("cg-1")),
            "the same template, the same ids"
        );
        assert!(
            a.starts_with("backfill-") && a.len() == "backfill-".len() + 12,
            "{a}"
        );
    }

    #[test]
    fn each_window_resolves_to_its_own_explicit_range_and_id() {
        let template: serde_json::Value = serde_json::from_str(
            r#"{"vendor":"amperity","request_id":"daily","tenant":"acme","config_id":"cg-1","relative_window":"previous_day"}"#,
        )
        .unwrap();
        assert_eq!(step_of(&template, None).unwrap(), Every::Day);
        assert!(step_of(&template, Some(Every::Week)).is_err());
        let w = &windows(date!(2026 - 11 - 26), date!(2026 - 11 - 26), Every::Day).unwrap()[0];
        let template = RunRequest::from_value(template).unwrap();
        let base = base_id(&template);
        assert_eq!(base, "daily");
        let r = window_request(&template, &base, w).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["request_id"], "daily-2026-11-26");
        assert!(json.get("relative_window").is_none(), "{json}");
        assert!(
            json.to_string().contains("2026-11-26"),
            "the window is the day itself: {json}"
        );
    }
}
