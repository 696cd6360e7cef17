//! Reading a key back from text (an operator's argument, an execution's name): which of the
//! forms [`IdempotencyKey::for_request`] makes it has, and so which vendor it names.

use super::IdempotencyKey;
use crate::{VendorKind, MAX_ATTEMPT};

/// The longest key: a key is a Step Functions execution name, which has at most 80 characters.
pub const MAX_KEY_CHARS: usize = 80;

impl IdempotencyKey {
    /// Reads a key, or says what makes the text no key: a key is a vendor's name, an optional
    /// `_<attempt>`, then `-` or `.` and the rest of one of the forms
    /// [`IdempotencyKey::for_request`] makes (see the type's documentation), at most
    /// [`MAX_KEY_CHARS`] letters, digits, `.`, `_` and `-`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        read(text)?;
        Ok(Self(text.to_owned()))
    }

    /// The key an execution is named after: its name, or a collect recovery's `<key>=<n>`.
    pub fn from_execution_name(name: &str) -> Result<Self, KeyError> {
        let key = match name.split_once('=') {
            Some((key, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => key,
            Some(_) => {
                return Err(KeyError::Malformed(
                    "a recovery execution's name ends in `=<number>`",
                ))
            }
            None => name,
        };
        Self::parse(key)
    }

    /// The vendor the key's run is at: the name the key starts with.
    ///
    /// # Panics
    /// If the key names no vendor, which only a key wrapped unchecked
    /// ([`IdempotencyKey::from_string`], or read from a damaged record) can do:
    /// [`IdempotencyKey::for_request`] and [`IdempotencyKey::parse`] make none.
    pub fn vendor(&self) -> VendorKind {
        vendor_of_head(&self.0).unwrap_or_else(|| {
            panic!(
                "key {:?} names no vendor: it was not made by for_request or parse",
                self.0
            )
        })
    }
}

/// What is wrong with a text read as a key ([`IdempotencyKey::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing at all.
    #[error("the key is empty")]
    Empty,
    /// More characters than an execution name may have.
    #[error(
        "the key is {chars} characters long; a key is a Step Functions execution name, at most {MAX_KEY_CHARS}"
    )]
    TooLong {
        /// How many characters the text has.
        chars: usize,
    },
    /// A character no key has (a `/`, a space, `=`…).
    #[error("the key contains {character:?}; a key has only letters, digits, `.`, `_` and `-`")]
    BadCharacter {
        /// The first such character.
        character: char,
    },
    /// The text does not start with a vendor's name.
    #[error(
        "the key starts with `{prefix}`, which is no vendor (a key starts with amc, amperity, adobe or carto)"
    )]
    UnknownVendor {
        /// What the text has where the vendor's name goes (up to the first `-`, `.` or `_`).
        prefix: String,
    },
    /// A vendor's name followed by something no key has.
    #[error("the key is not one runbridge makes: {0}")]
    Malformed(&'static str),
}

/// `text` split where the vendor's name ends: at the first `-`, `.` or `_` (no vendor name has
/// one).
fn split_head(text: &str) -> (&str, &str) {
    text.split_at(text.find(['-', '.', '_']).unwrap_or(text.len()))
}

/// The vendor named by the head of `text`.
fn vendor_of_head(text: &str) -> Option<VendorKind> {
    let (head, _) = split_head(text);
    VendorKind::ALL.into_iter().find(|v| v.as_str() == head)
}

/// Checks that `text` is a key (see [`IdempotencyKey::parse`]).
fn read(text: &str) -> Result<(), KeyError> {
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    let chars = text.chars().count();
    if chars > MAX_KEY_CHARS {
        return Err(KeyError::TooLong { chars });
    }
    if let Some(character) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
    {
        return Err(KeyError::BadCharacter { character });
    }
    let (head, mut rest) = split_head(text);
    if vendor_of_head(text).is_none() {
        return Err(KeyError::UnknownVendor {
            prefix: head.to_owned(),
        });
    }
    if let Some(after) = rest.strip_prefix('_') {
        let (digits, tail) = after.split_at(after.find(['-', '.']).unwrap_or(after.len()));
        let attempt = (!digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u32>().ok())
            .flatten();
        if !attempt.is_some_and(|a| (2..=MAX_ATTEMPT).contains(&a)) {
            return Err(KeyError::Malformed(
                "the attempt after `_` is a number from 2 to 999",
            ));
        }
        rest = tail;
    }
    // The rest (a request id, a hash, a profile and a hash) is not checked further: the
    // character set above already keeps a key a valid execution name and S3 key segment.
    let run_part = rest.strip_prefix(['-', '.']).ok_or(KeyError::Malformed(
        "the vendor (and `_<attempt>`) is followed by `-<request id>`, `.<hash>` or `.<profile>.<hash>`",
    ))?;
    if run_part.is_empty() {
        return Err(KeyError::Malformed(
            "nothing follows the vendor's `-` or `.`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResolvedRequest, RunRequest};
    use time::macros::datetime;

    /// A valid request of `vendor` with the given common fields.
    fn request_of(
        vendor: VendorKind,
        request_id: Option<&str>,
        attempt: Option<u32>,
        profile: Option<&str>,
    ) -> ResolvedRequest {
        let mut body = match vendor {
            VendorKind::Amc => {
                serde_json::json!({"instance_id":"amc1","advertiser_id":"a1","marketplace_id":"m1","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY"})
            }
            VendorKind::Amperity => serde_json::json!({"tenant":"acme","config_id":"cg-files01"}),
            VendorKind::Adobe => {
                serde_json::json!({"flow_id":"9f1a2b3c-0000-4000-8000-000000000001","window_start":"2026-11-26T00:00:00Z","window_end":"2026-11-27T00:00:00Z"})
            }
            VendorKind::Carto => serde_json::json!({"connection":"c","query":"SELECT 1"}),
        };
        body["vendor"] = vendor.as_str().into();
        if let Some(id) = request_id {
            body["request_id"] = id.into();
        }
        if let Some(a) = attempt {
            body["attempt"] = a.into();
        }
        if let Some(p) = profile {
            body["profile"] = p.into();
        }
        RunRequest::from_json(body.to_string().as_bytes())
            .unwrap()
            .resolve(datetime!(2026-11-23 06:00 UTC))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// Every key `for_request` makes reads back as itself, with the request's vendor, and so
        /// does each of its recovery executions' names.
        #[test]
        fn every_key_form_round_trips_with_its_vendor(
            vendor in proptest::sample::select(VendorKind::ALL.to_vec()),
            request_id in proptest::option::of("[A-Za-z0-9][A-Za-z0-9._-]{0,63}"),
            attempt in proptest::option::of(1u32..=crate::MAX_ATTEMPT),
            profile in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just("default".to_owned()),
                "[a-z0-9][a-z0-9-]{0,31}",
            ]),
            scheduled in proptest::prelude::any::<bool>(),
            recovery in 1u32..=99,
        ) {
            let r = request_of(vendor, request_id.as_deref(), attempt, profile.as_deref());
            let at = scheduled.then_some(datetime!(2026-11-23 06:00 UTC));
            let key = IdempotencyKey::for_request(&r, at);
            let parsed = IdempotencyKey::parse(key.as_str());
            proptest::prop_assert_eq!(parsed.as_ref(), Ok(&key));
            proptest::prop_assert_eq!(key.vendor(), vendor);
            let recovered = IdempotencyKey::from_execution_name(&format!("{key}={recovery}"));
            proptest::prop_assert_eq!(recovered, Ok(key.clone()));
            proptest::prop_assert_eq!(IdempotencyKey::from_execution_name(key.as_str()), Ok(key));
        }
    }

    #[test]
    fn each_key_form_names_its_vendor() {
        for (key, vendor) in [
            ("amc-r1", VendorKind::Amc),
            (
                "carto_2.0123456789abcdef0123456789abcdef",
                VendorKind::Carto,
            ),
            ("amc.0123456789abcdef0123456789abcdef", VendorKind::Amc),
            ("amc.eu-agency1.0123456789abcdef01234567", VendorKind::Amc),
            (
                "amperity_999.p2.0123456789abcdef01234567",
                VendorKind::Amperity,
            ),
            ("adobe-adobe-crm_ingest.2026", VendorKind::Adobe),
            ("amperity_999-x", VendorKind::Amperity),
            // A short hash as tests write keys: the rest is not checked beyond its characters.
            ("carto_2.ab12", VendorKind::Carto),
        ] {
            assert_eq!(
                IdempotencyKey::parse(key).map(|k| k.vendor()),
                Ok(vendor),
                "{key}"
            );
        }
    }

    #[test]
    fn a_text_that_is_no_key_is_refused_naming_the_problem() {
        let long = format!("amc-{}", "x".repeat(77));
        for (text, error) in [
            ("", KeyError::Empty),
            ("../x", KeyError::BadCharacter { character: '/' }),
            ("amc r1", KeyError::BadCharacter { character: ' ' }),
            ("amc-r1=2", KeyError::BadCharacter { character: '=' }),
            (long.as_str(), KeyError::TooLong { chars: 81 }),
            (
                "..",
                KeyError::UnknownVendor {
                    prefix: String::new(),
                },
            ),
            (
                "acme-r1",
                KeyError::UnknownVendor {
                    prefix: "acme".into(),
                },
            ),
            (
                "AMC-r1",
                KeyError::UnknownVendor {
                    prefix: "AMC".into(),
                },
            ),
        ] {
            assert_eq!(IdempotencyKey::parse(text), Err(error), "{text:?}");
        }
        for text in [
            "amc",
            "amc-",
            "amc.",
            "amc_2",
            "amc_1-r1",
            "amc_02-r1",
            "amc_1000-r1",
            "amc_x-r1",
            "amc__2-r1",
        ] {
            assert!(
                matches!(IdempotencyKey::parse(text), Err(KeyError::Malformed(_))),
                "{text:?}: {:?}",
                IdempotencyKey::parse(text)
            );
        }
        assert!(IdempotencyKey::from_execution_name("amc-r1=x").is_err());
        assert!(IdempotencyKey::from_execution_name("amc-r1=").is_err());
        let message = IdempotencyKey::parse("../x").unwrap_err().to_string();
        assert!(message.contains("'/'"), "{message}");
    }
}
