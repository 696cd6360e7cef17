//! The idempotency key: one key, one vendor run, one execution.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::window::format_utc;
use crate::ResolvedRequest;

/// Identifies one logical run across redeliveries. It is the request's `request_id` when given,
/// else a hash of the canonical request and the schedule time, so the same scheduled event
/// delivered twice maps to one key while tomorrow's run gets a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of `request` scheduled at `schedule_time` (None for ad-hoc SQS requests without a
    /// request id: then only the request content identifies it).
    pub fn for_request(request: &ResolvedRequest, schedule_time: Option<OffsetDateTime>) -> Self {
        let vendor = request.vendor().as_str();
        if let Some(id) = &request.request_id {
            return Self(format!("{vendor}-{id}"));
        }
        // serde_json writes struct fields in declaration order and maps (BTreeMap) sorted, so
        // this serialisation is canonical for a given request.
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(request).expect("a RunRequest always serialises"));
        if let Some(t) = schedule_time {
            hasher.update(b"\0schedule=");
            hasher.update(format_utc(t).as_bytes());
        }
        let digest = hex::encode(hasher.finalize());
        Self(format!("{vendor}-{}", &digest[..32]))
    }

    /// Wraps an existing key (read back from a handle or ledger).
    pub fn from_string(key: String) -> Self {
        Self(key)
    }

    /// The key text. At most 73 characters of `[A-Za-z0-9._-]`, so it is a valid Step Functions
    /// execution name (80 characters, no spaces or `<>{}[]?*"#%\^|~`$&,;:/`) and S3 key segment.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Step Functions execution name for this key: the key itself, which already fits the
    /// name rules. Mapping characters (say `.` to `_`) would let two keys share one name.
    pub fn execution_name(&self) -> String {
        self.0.clone()
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn request(json: &str) -> ResolvedRequest {
        crate::RunRequest::from_json(json.as_bytes())
            .unwrap()
            .resolve(datetime!(2026-11-23 06:00 UTC))
    }

    #[test]
    fn request_id_wins_and_content_hash_is_stable() {
        let with_id =
            request(r#"{"vendor":"carto","request_id":"n-1","connection":"c","query":"SELECT 1"}"#);
        assert_eq!(
            IdempotencyKey::for_request(&with_id, None).as_str(),
            "carto-n-1"
        );
        let a = request(
            r#"{"vendor":"carto","connection":"c","query":"SELECT 1","query_parameters":{"b":1,"a":2}}"#,
        );
        let b = request(
            r#"{"query_parameters":{"a":2,"b":1},"query":"SELECT 1","connection":"c","vendor":"carto"}"#,
        );
        assert_eq!(
            IdempotencyKey::for_request(&a, None),
            IdempotencyKey::for_request(&b, None),
            "field order does not matter"
        );
        let monday = IdempotencyKey::for_request(&a, Some(datetime!(2026-11-23 06:00 UTC)));
        let tuesday = IdempotencyKey::for_request(&a, Some(datetime!(2026-11-24 06:00 UTC)));
        assert_ne!(monday, tuesday, "each schedule time is its own run");
        assert!(monday.as_str().len() <= 80 && monday.as_str().starts_with("carto-"));
    }
}
