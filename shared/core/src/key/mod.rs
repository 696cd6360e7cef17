//! The idempotency key: one key, one vendor run, one execution.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::window::format_utc;
use crate::ResolvedRequest;

mod parse;

pub use parse::{KeyError, MAX_KEY_CHARS};

/// Identifies one logical run across redeliveries: one key, one vendor run, one execution.
///
/// Two namespaces that can never meet (vendor names contain neither `-`, `.` nor `_`):
/// - `<vendor>-<request_id>` when the request has a `request_id`;
/// - `<vendor>.<hash>` otherwise: the first 32 hex digits of SHA-256 over the canonical resolved
///   request and the schedule time, so the same scheduled event delivered twice maps to one key
///   while tomorrow's run gets a new one.
///
/// An explicit rerun (`"attempt": N`, N > 1) writes the attempt after the vendor:
/// `<vendor>_<N>-<request_id>` / `<vendor>_<N>.<hash>` (the hash is the attempt-1 hash), so
/// attempt 1 keeps its key and each attempt has its own key, execution and result path.
///
/// A request under a named profile (not `default`) gets a third form,
/// `<head>.<profile>.<hash>`: 24 hex digits of SHA-256 over the profile and either the
/// `request_id` or the canonical request and schedule time. The profile must change the key (two
/// vendor accounts may well use the same `request_id`), yet a 64-character id, the longest head
/// and a 32-character profile do not fit the 80-character execution name side by side, so the id
/// is hashed. It cannot meet the other forms: `<head>.` is followed by exactly 32 hex digits in
/// the content form and by the profile name and a second `.` here. Requests of the `default`
/// profile keep the keys they always had.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of `request` scheduled at `schedule_time` (None for ad-hoc SQS requests without a
    /// request id: then only the request content identifies it).
    pub fn for_request(request: &ResolvedRequest, schedule_time: Option<OffsetDateTime>) -> Self {
        let vendor = request.vendor().as_str();
        let attempt = request.attempt();
        let head = if attempt > 1 {
            format!("{vendor}_{attempt}")
        } else {
            vendor.to_owned()
        };
        if let Some(profile) = request.profile.as_deref() {
            return Self::for_profile(request, &head, profile, schedule_time);
        }
        if let Some(id) = &request.request_id {
            return Self(format!("{head}-{id}"));
        }
        // serde_json writes struct fields in declaration order and maps (BTreeMap) sorted, so
        // this serialisation is canonical for a given request. The attempt is in the key's head,
        // not in the hash, so the attempts of one request share their hash.
        let mut first = request.request().clone();
        first.attempt = None;
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(&first).expect("a RunRequest always serialises"));
        if let Some(t) = schedule_time {
            hasher.update(b"\0schedule=");
            hasher.update(format_utc(t).as_bytes());
        }
        let digest = hex::encode(hasher.finalize());
        Self(format!("{head}.{}", &digest[..32]))
    }

    /// `<head>.<profile>.<hash>` (see the type's documentation).
    fn for_profile(
        request: &ResolvedRequest,
        head: &str,
        profile: &str,
        schedule_time: Option<OffsetDateTime>,
    ) -> Self {
        let mut hasher = Sha256::new();
        // Domain-separated: the profile, then either the id or the content, never ambiguous.
        hasher.update(b"runbridge-profile-key\0");
        hasher.update(profile.as_bytes());
        hasher.update(b"\0");
        if let Some(id) = &request.request_id {
            hasher.update(b"request_id\0");
            hasher.update(id.as_bytes());
        } else {
            let mut first = request.request().clone();
            first.attempt = None;
            hasher.update(b"content\0");
            hasher.update(serde_json::to_vec(&first).expect("a RunRequest always serialises"));
            if let Some(t) = schedule_time {
                hasher.update(b"\0schedule=");
                hasher.update(format_utc(t).as_bytes());
            }
        }
        let digest = hex::encode(hasher.finalize());
        Self(format!("{head}.{profile}.{}", &digest[..24]))
    }

    /// Wraps an existing key (read back from a handle or ledger) without checking it; text from
    /// anywhere else goes through [`IdempotencyKey::parse`].
    pub fn from_string(key: String) -> Self {
        Self(key)
    }

    /// The key text. At most 77 characters of `[A-Za-z0-9._-]`, so it is a valid Step Functions
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

/// The request a key was claimed for, as SHA-256 of the canonical request *as sent* (before
/// window resolution, so a redelivery on another day still matches). The ledger stores it with the
/// claim; a delivery of the same key with another fingerprint is a `KeyConflict`, never a reuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of `request`.
    pub fn of(request: &crate::RunRequest) -> Self {
        let mut canonical = request.clone();
        if canonical.attempt == Some(1) {
            canonical.attempt = None;
        }
        let digest =
            Sha256::digest(serde_json::to_vec(&canonical).expect("a RunRequest always serialises"));
        Self(format!("sha256:{}", hex::encode(digest)))
    }

    /// The text, `sha256:<64 hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
        assert!(monday.as_str().len() <= 80 && monday.as_str().starts_with("carto."));
    }

    #[test]
    fn request_ids_cannot_take_over_a_content_hash_key() {
        let a = request(r#"{"vendor":"carto","connection":"c","query":"SELECT 1"}"#);
        let hash_key = IdempotencyKey::for_request(&a, None);
        let digest = hash_key.as_str().trim_start_matches("carto.");
        for id in [
            digest.to_owned(),
            format!("x.{digest}"),
            format!("h.{digest}"),
        ] {
            let b = request(&format!(
                r#"{{"vendor":"carto","request_id":"{id}","connection":"c","query":"SELECT 2"}}"#
            ));
            assert_ne!(IdempotencyKey::for_request(&b, None), hash_key, "{id}");
        }
    }

    #[test]
    fn attempts_have_their_own_keys_and_fit_an_execution_name() {
        let longest_id = "i".repeat(64);
        let first = request(&format!(
            r#"{{"vendor":"amperity","request_id":"{longest_id}","tenant":"acme","config_id":"cg-files01"}}"#
        ));
        let explicit_one = request(&format!(
            r#"{{"vendor":"amperity","request_id":"{longest_id}","attempt":1,"tenant":"acme","config_id":"cg-files01"}}"#
        ));
        let last = request(&format!(
            r#"{{"vendor":"amperity","request_id":"{longest_id}","attempt":999,"tenant":"acme","config_id":"cg-files01"}}"#
        ));
        let k1 = IdempotencyKey::for_request(&first, None);
        assert_eq!(k1, IdempotencyKey::for_request(&explicit_one, None));
        assert_eq!(Fingerprint::of(&first), Fingerprint::of(&explicit_one));
        let k999 = IdempotencyKey::for_request(&last, None);
        assert_ne!(k1, k999);
        assert!(k999.as_str().starts_with("amperity_999-"));
        assert!(k999.as_str().len() <= 80, "{}", k999.as_str().len());
        // Hash keys: attempt 2 shares attempt 1's hash under its own head.
        let h1 = IdempotencyKey::for_request(
            &request(r#"{"vendor":"carto","connection":"c","query":"SELECT 1"}"#),
            None,
        );
        let h2 = IdempotencyKey::for_request(
            &request(r#"{"vendor":"carto","attempt":2,"connection":"c","query":"SELECT 1"}"#),
            None,
        );
        assert_eq!(h2.as_str(), h1.as_str().replacen("carto.", "carto_2.", 1));
    }

    #[test]
    fn a_changed_body_changes_the_fingerprint() {
        let a =
            request(r#"{"vendor":"carto","request_id":"n-1","connection":"c","query":"SELECT 1"}"#);
        let b =
            request(r#"{"vendor":"carto","request_id":"n-1","connection":"c","query":"SELECT 2"}"#);
        assert_eq!(
            IdempotencyKey::for_request(&a, None),
            IdempotencyKey::for_request(&b, None)
        );
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
    }

    #[test]
    fn a_named_profile_has_its_own_key_and_default_keeps_the_old_one() {
        let body = |profile: &str| {
            format!(
                r#"{{"vendor":"amc","request_id":"r-1",{profile}"instance_id":"amc1","advertiser_id":"a1","marketplace_id":"m1","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY"}}"#
            )
        };
        let plain = IdempotencyKey::for_request(&request(&body("")), None);
        let named_default = request(&body(r#""profile":"default","#));
        assert_eq!(
            plain.as_str(),
            "amc-r-1",
            "default-profile keys are unchanged"
        );
        assert_eq!(IdempotencyKey::for_request(&named_default, None), plain);
        assert_eq!(named_default.profile, None, "`default` is stored as absent");
        let eu = IdempotencyKey::for_request(&request(&body(r#""profile":"eu-agency1","#)), None);
        let na = IdempotencyKey::for_request(&request(&body(r#""profile":"na-agency1","#)), None);
        assert_ne!(eu, plain);
        assert_ne!(eu, na);
        assert!(eu.as_str().starts_with("amc.eu-agency1."), "{eu}");
        // Hash keys of a profile differ too, and differ from the default's content key.
        let content = |profile: &str| {
            request(&format!(
                r#"{{"vendor":"carto",{profile}"connection":"c","query":"SELECT 1"}}"#
            ))
        };
        let default_hash = IdempotencyKey::for_request(&content(""), None);
        let profile_hash = IdempotencyKey::for_request(&content(r#""profile":"p2","#), None);
        assert_ne!(default_hash, profile_hash);
        assert!(profile_hash.as_str().starts_with("carto.p2."));
    }

    #[test]
    fn the_longest_profile_key_fits_an_execution_name() {
        let id = "i".repeat(64);
        let profile = "p".repeat(crate::MAX_PROFILE_CHARS);
        let r = request(&format!(
            r#"{{"vendor":"amperity","request_id":"{id}","attempt":999,"profile":"{profile}","tenant":"acme","config_id":"cg-files01"}}"#
        ));
        let key = IdempotencyKey::for_request(&r, None);
        assert!(key.as_str().starts_with("amperity_999."), "{key}");
        assert!(
            key.as_str().len() <= 80,
            "{} characters",
            key.as_str().len()
        );
        assert!(key
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        // Attempts of one profile request share the hash under their own heads.
        let first = request(&format!(
            r#"{{"vendor":"amperity","request_id":"{id}","profile":"{profile}","tenant":"acme","config_id":"cg-files01"}}"#
        ));
        let k1 = IdempotencyKey::for_request(&first, None);
        assert_eq!(
            key.as_str(),
            k1.as_str().replacen("amperity.", "amperity_999.", 1)
        );
    }
}
