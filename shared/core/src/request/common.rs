//! The fields every request shares, as read before the vendor part: [`CommonFields`], the
//! run's own [`PollPolicy`], and the whole-number reading of seconds and attempts (JSON, and so
//! JSON Schema's `integer`, does not tell `3600.0` from `3600`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::MAX_ATTEMPT;
use crate::ValidationError;

#[derive(Deserialize)]
pub(super) struct CommonFields {
    pub(super) request_id: Option<String>,
    #[serde(default, deserialize_with = "whole_seconds")]
    pub(super) deadline_seconds: Option<u64>,
    pub(super) output_prefix: Option<String>,
    #[serde(default, deserialize_with = "whole_attempt")]
    pub(super) attempt: Option<u32>,
    pub(super) poll: Option<PollPolicy>,
    pub(super) profile: Option<String>,
}

/// A run's own poll policy: the first wait, then `factor` × the run's age, between
/// `first_seconds` and `max_seconds`. Bounded so that no request can make runbridge poll a
/// vendor more than every 5 seconds or watch a run less than hourly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollPolicy {
    /// Wait before the first poll and the smallest wait, in seconds (5 to 3600).
    #[serde(deserialize_with = "whole_seconds_required")]
    #[schemars(range(min = 5, max = 3600))]
    pub first_seconds: u64,
    /// Wait as a fraction of the run's age (0 to 2; 0 polls every `first_seconds`).
    #[schemars(range(min = 0, max = 2))]
    pub factor: f64,
    /// The largest wait, in seconds (`first_seconds` to 3600).
    #[serde(deserialize_with = "whole_seconds_required")]
    #[schemars(range(min = 5, max = 3600))]
    pub max_seconds: u64,
}

impl PollPolicy {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(5..=3_600).contains(&self.first_seconds) {
            return Err(ValidationError::new(
                "poll.first_seconds",
                "must be between 5 and 3600",
            ));
        }
        if !(self.factor.is_finite() && (0.0..=2.0).contains(&self.factor)) {
            return Err(ValidationError::new(
                "poll.factor",
                "must be between 0 and 2",
            ));
        }
        if !(self.first_seconds..=3_600).contains(&self.max_seconds) {
            return Err(ValidationError::new(
                "poll.max_seconds",
                "must be between first_seconds and 3600",
            ));
        }
        Ok(())
    }
}

/// `deadline_seconds` is a whole number of seconds. JSON (and so JSON Schema's `integer`) does not
/// tell `3600.0` from `3600`, so neither does runbridge; `3600.5` is refused.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(value) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = value.as_u64() {
        return Ok(Some(n));
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) && f < 1e15 => {
            Ok(Some(f as u64))
        }
        _ => Err(D::Error::custom(format!(
            "must be a whole number of seconds, not {value}"
        ))),
    }
}

/// A whole number of seconds that must be given (`poll`'s), read as [`whole_seconds`] reads one.
fn whole_seconds_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::de::Error;
    whole_seconds(d)?.ok_or_else(|| D::Error::custom("must be a whole number of seconds"))
}

/// `attempt` is a whole number; like `deadline_seconds`, `2.0` is `2` (JSON Schema's `integer`
/// says so too).
fn whole_attempt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = whole_seconds(d)? else {
        return Ok(None);
    };
    u32::try_from(n)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("must be between 1 and {MAX_ATTEMPT}, not {n}")))
}
