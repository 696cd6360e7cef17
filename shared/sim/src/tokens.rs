//! Access tokens issued by the simulated token endpoints, expiring on the simulated clock.

use std::collections::HashMap;
use std::sync::Mutex;

use runbridge_core::VendorKind;
use time::{Duration, OffsetDateTime};

use crate::accounts::DEFAULT_ACCOUNT;

/// What a presented token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Issued by this simulator for this vendor and not expired.
    Valid,
    /// Issued but past its lifetime.
    Expired,
    /// Never issued (or for another vendor).
    Unknown,
}

/// Issued tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    // token → (vendor, account it was issued to, expiry)
    issued: Mutex<HashMap<String, (VendorKind, String, OffsetDateTime)>>,
}

impl Tokens {
    /// Issues a token of `vendor`'s default account valid for `ttl` simulated seconds from `now`.
    pub fn issue(&self, vendor: VendorKind, now: OffsetDateTime, ttl_seconds: u64) -> String {
        self.issue_for(vendor, DEFAULT_ACCOUNT, now, ttl_seconds)
    }

    /// Issues a token of `vendor`'s account `account` (see [`crate::auth::ACCOUNTS`]).
    pub fn issue_for(
        &self,
        vendor: VendorKind,
        account: &str,
        now: OffsetDateTime,
        ttl_seconds: u64,
    ) -> String {
        let token = format!("sim-{vendor}-{}", uuid::Uuid::new_v4().simple());
        self.issued.lock().expect("tokens lock").insert(
            token.clone(),
            (
                vendor,
                account.to_owned(),
                now + Duration::seconds(ttl_seconds as i64),
            ),
        );
        token
    }

    /// The account a token was issued to.
    pub fn account(&self, token: &str) -> Option<String> {
        self.issued
            .lock()
            .expect("tokens lock")
            .get(token)
            .map(|(_, account, _)| account.clone())
    }

    /// How many tokens were issued to `vendor`'s account `account`.
    pub fn issued_count_for(&self, vendor: VendorKind, account: &str) -> usize {
        self.issued
            .lock()
            .expect("tokens lock")
            .values()
            .filter(|(v, a, _)| *v == vendor && a == account)
            .count()
    }

    /// Checks a presented token.
    pub fn check(&self, vendor: VendorKind, token: &str, now: OffsetDateTime) -> TokenCheck {
        match self.issued.lock().expect("tokens lock").get(token) {
            Some((v, _, expires)) if *v == vendor => {
                if now < *expires {
                    TokenCheck::Valid
                } else {
                    TokenCheck::Expired
                }
            }
            _ => TokenCheck::Unknown,
        }
    }

    /// Expires every token of `vendor` at once (the "expired token mid-run" fault).
    pub fn expire_all(&self, vendor: VendorKind, now: OffsetDateTime) {
        for (v, _, expires) in self.issued.lock().expect("tokens lock").values_mut() {
            if *v == vendor {
                *expires = now;
            }
        }
    }

    /// Every token issued so far (tests scan logs for them).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued
            .lock()
            .expect("tokens lock")
            .keys()
            .cloned()
            .collect()
    }

    /// How many tokens were issued for `vendor` (each is one token-endpoint call).
    pub fn issued_count(&self, vendor: VendorKind) -> usize {
        self.issued
            .lock()
            .expect("tokens lock")
            .values()
            .filter(|(v, _, _)| *v == vendor)
            .count()
    }
}
