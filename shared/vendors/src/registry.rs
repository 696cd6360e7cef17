//! The list of vendors, as data: which vendors exist and how each is built.
//!
//! **Adding a vendor = one folder + one registry line**: write `src/<vendor>/` (its `mod.rs`
//! exposes `ENTRY`, a [`VendorEntry`]) and add `crate::<vendor>::ENTRY` to [`VENDORS`]. Vendor
//! modules never import this module; it imports them.

use std::collections::BTreeMap;
use std::sync::Arc;

use runbridge_core::{RunRequest, ValidationError, VendorKind, DEFAULT_PROFILE};

use crate::http::RetryConfig;
use crate::{Settings, Vendor, VendorError};

// Kept at their old path for callers that named them here.
pub use crate::vendor::{BuildVendor, VendorEntry};

/// Every vendor runbridge knows.
pub const VENDORS: [VendorEntry; 4] = [
    crate::amc::ENTRY,
    crate::amperity::ENTRY,
    crate::adobe::ENTRY,
    crate::carto::ENTRY,
];

/// The vendor clients of one deployment: one per (vendor, profile). Each vendor's `default`
/// profile is built from its own settings keys, each named profile from its own settings, so
/// every client holds its own OAuth token cache and HTTP settings: two accounts of one vendor
/// never share a token. A client whose settings are missing is kept as its configuration error,
/// reported when a request for it arrives, so one unconfigured account does not stop the others.
/// (A per-profile limit, such as a concurrency cap, hangs off the same (vendor, profile) key.)
#[derive(Clone)]
pub struct Vendors {
    clients: BTreeMap<(VendorKind, String), Result<Arc<dyn Vendor>, VendorError>>,
}

impl Vendors {
    /// Builds every registered vendor's default profile, and every named profile, from
    /// `settings`.
    pub fn from_settings(settings: &Settings, retry: &RetryConfig) -> Self {
        let mut clients: BTreeMap<_, _> = VENDORS
            .iter()
            .map(|e| {
                (
                    (e.kind, DEFAULT_PROFILE.to_owned()),
                    (e.build)(settings, retry),
                )
            })
            .collect();
        for (name, profile) in settings.profiles() {
            let Some(entry) = VENDORS.iter().find(|e| e.kind == profile.vendor) else {
                continue;
            };
            clients.insert(
                (profile.vendor, name.clone()),
                (entry.build)(&profile.settings, retry),
            );
        }
        Self { clients }
    }

    /// Only the given clients, as their vendors' default profiles (tests, custom embeddings).
    pub fn from_clients(clients: impl IntoIterator<Item = Arc<dyn Vendor>>) -> Self {
        Self::from_profile_clients(clients.into_iter().map(|c| (DEFAULT_PROFILE.to_owned(), c)))
    }

    /// Only the given clients, each under the named profile of its vendor.
    pub fn from_profile_clients(
        clients: impl IntoIterator<Item = (String, Arc<dyn Vendor>)>,
    ) -> Self {
        Self {
            clients: clients
                .into_iter()
                .map(|(profile, c)| ((c.kind(), profile), Ok(c)))
                .collect(),
        }
    }

    /// The default profile's client for `kind`.
    pub fn get(&self, kind: VendorKind) -> Result<Arc<dyn Vendor>, VendorError> {
        self.get_profile(kind, DEFAULT_PROFILE)
    }

    /// The client of profile `profile` of `kind`.
    pub fn get_profile(
        &self,
        kind: VendorKind,
        profile: &str,
    ) -> Result<Arc<dyn Vendor>, VendorError> {
        match self.clients.get(&(kind, profile.to_owned())) {
            Some(Ok(c)) => Ok(c.clone()),
            Some(Err(e)) => Err(e.clone()),
            None if profile == DEFAULT_PROFILE => Err(VendorError::Config {
                vendor: kind,
                setting: kind.to_string(),
                message: "is not enabled".into(),
            }),
            // Only reached when a profile disappeared from the settings after its run started
            // (the trigger refuses unknown profiles with `check_profile`).
            None => Err(VendorError::Config {
                vendor: kind,
                setting: format!("profiles.{profile}"),
                message: "is not configured".into(),
            }),
        }
    }

    /// The client for `request`: its vendor, under its profile.
    pub fn for_request(&self, request: &RunRequest) -> Result<Arc<dyn Vendor>, VendorError> {
        self.get_profile(request.vendor(), request.profile())
    }

    /// Checks that `request`'s profile exists and belongs to its vendor, naming the field
    /// `profile` otherwise (a bad request, never retried).
    pub fn check_profile(&self, request: &RunRequest) -> Result<(), ValidationError> {
        crate::settings::check_profile(request, |name| {
            self.clients
                .keys()
                .find(|(_, p)| p == name)
                .map(|(kind, _)| *kind)
        })
    }

    /// The (vendor, profile) pairs this deployment has clients (or configuration errors) for.
    pub fn profiles(&self) -> impl Iterator<Item = (VendorKind, &str)> {
        self.clients.keys().map(|(k, p)| (*k, p.as_str()))
    }
}
