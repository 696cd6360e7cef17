//! The list of vendors, as data: which vendors exist and how each is built.
//!
//! **Adding a vendor = one folder + one registry line**: write `src/<vendor>/` (its `mod.rs`
//! exposes `ENTRY`, a [`VendorEntry`]) and add `crate::<vendor>::ENTRY` to [`VENDORS`]. Vendor
//! modules never import this module; it imports them.

use std::collections::BTreeMap;
use std::sync::Arc;

use runbridge_core::{
    scope_segment, ConcurrencyLimit, ResolvedRequest, RunRequest, ValidationError, VendorKind,
    DEFAULT_PROFILE,
};

use crate::download::DownloadPolicy;
use crate::http::RetryConfig;
use crate::rate::{InProcessBudget, RateBudget};
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
/// A profile's concurrency limit hangs off the same (vendor, profile) key
/// ([`Vendors::concurrency_limit`]).
#[derive(Clone)]
pub struct Vendors {
    clients: BTreeMap<(VendorKind, String), Result<Arc<dyn Vendor>, VendorError>>,
    /// Runs at once per (vendor, profile), where limited: the setting `max_concurrent`, else the
    /// vendor's known limit ([`VendorEntry::max_concurrent`]).
    limits: BTreeMap<(VendorKind, String), u32>,
}

/// The setting that sets (or, with `0`, lifts) a profile's limit of runs at once.
pub const MAX_CONCURRENT_SETTING: &str = "max_concurrent";

/// The settings every vendor's profile reads besides its client's own
/// ([`VendorEntry::settings`]): its limit of runs at once, and its download policy's.
pub const COMMON_SETTINGS: [&str; 4] = [
    MAX_CONCURRENT_SETTING,
    DownloadPolicy::SETTINGS[0],
    DownloadPolicy::SETTINGS[1],
    DownloadPolicy::SETTINGS[2],
];

/// The keys a profile of `entry`'s vendor reads: its client's and the common ones.
fn settings_of(entry: &VendorEntry) -> Vec<&'static str> {
    entry
        .settings
        .iter()
        .copied()
        .chain(COMMON_SETTINGS)
        .collect()
}

/// Every setting a deployment reads, as `<vendor>.<key>` (what docs/SETTINGS.md lists).
pub fn all_settings() -> std::collections::BTreeSet<String> {
    VENDORS
        .iter()
        .flat_map(|entry| {
            settings_of(entry)
                .into_iter()
                .map(move |key| format!("{}.{key}", entry.kind))
        })
        .collect()
}

/// A profile's limit: its `max_concurrent` setting (`0`: none), else the vendor's default.
fn limit_of(entry: &VendorEntry, settings: &Settings) -> Result<Option<u32>, VendorError> {
    match settings.plain(entry.kind, MAX_CONCURRENT_SETTING) {
        None => Ok(entry.max_concurrent),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(VendorError::Config {
                vendor: entry.kind,
                setting: format!("{}.{MAX_CONCURRENT_SETTING}", entry.kind),
                message: format!("must be a whole number of runs (0: no limit), got {text:?}"),
            }),
        },
    }
}

fn entry_of(kind: VendorKind) -> Option<&'static VendorEntry> {
    VENDORS.iter().find(|e| e.kind == kind)
}

impl Vendors {
    /// Builds every registered vendor's default profile, and every named profile, from
    /// `settings`; rate-limited requests take their turn from the process's budget
    /// ([`InProcessBudget::process`]).
    pub fn from_settings(settings: &Settings, retry: &RetryConfig) -> Self {
        Self::from_settings_with_budget(settings, retry, &InProcessBudget::process())
    }

    /// [`Self::from_settings`], rate-limited requests taking their turn from `budget` (a
    /// deployed stack's budget shared by all its environments).
    pub fn from_settings_with_budget(
        settings: &Settings,
        retry: &RetryConfig,
        budget: &Arc<dyn RateBudget>,
    ) -> Self {
        let mut vendors = Self {
            clients: BTreeMap::new(),
            limits: BTreeMap::new(),
        };
        for entry in &VENDORS {
            vendors.add(entry, DEFAULT_PROFILE, settings, retry, budget);
        }
        for (name, profile) in settings.profiles() {
            if let Some(entry) = entry_of(profile.vendor) {
                vendors.add(entry, name, &profile.settings, retry, budget);
            }
        }
        vendors
    }

    fn add(
        &mut self,
        entry: &VendorEntry,
        profile: &str,
        settings: &Settings,
        retry: &RetryConfig,
        budget: &Arc<dyn RateBudget>,
    ) {
        let key = (entry.kind, profile.to_owned());
        // Only the declared keys may be read: a read of another is a bug the tests catch.
        let settings = &settings.declared(entry.kind, settings_of(entry));
        let client = limit_of(entry, settings).and_then(|limit| {
            if let Some(limit) = limit {
                self.limits.insert(key.clone(), limit);
            }
            (entry.build)(settings, retry, budget)
        });
        self.clients.insert(key, client);
    }

    /// Only the given clients, as their vendors' default profiles (tests, custom embeddings).
    pub fn from_clients(clients: impl IntoIterator<Item = Arc<dyn Vendor>>) -> Self {
        Self::from_profile_clients(clients.into_iter().map(|c| (DEFAULT_PROFILE.to_owned(), c)))
    }

    /// Only the given clients, each under the named profile of its vendor.
    pub fn from_profile_clients(
        clients: impl IntoIterator<Item = (String, Arc<dyn Vendor>)>,
    ) -> Self {
        let clients: BTreeMap<_, _> = clients
            .into_iter()
            .map(|(profile, c)| ((c.kind(), profile), Ok(c)))
            .collect();
        let limits = clients
            .keys()
            .filter_map(|key| Some((key.clone(), entry_of(key.0)?.max_concurrent?)))
            .collect();
        Self { clients, limits }
    }

    /// The same clients with `limit` runs at once for (`kind`, `profile`) (`None`: no limit).
    pub fn with_limit(mut self, kind: VendorKind, profile: &str, limit: Option<u32>) -> Self {
        let key = (kind, profile.to_owned());
        match limit {
            Some(n) => self.limits.insert(key, n),
            None => self.limits.remove(&key),
        };
        self
    }

    /// The concurrency limit `request`'s run counts against, if its profile has one: such a run
    /// waits for a free slot (in the state machine) before it is submitted. The scope is
    /// `<vendor>.<profile>`, plus the vendor's own finer scope (an AMC instance).
    pub fn concurrency_limit(&self, request: &ResolvedRequest) -> Option<ConcurrencyLimit> {
        let key = (request.vendor(), request.profile().to_owned());
        let limit = *self.limits.get(&key)?;
        let client = self.clients.get(&key)?.as_ref().ok()?;
        let mut scope = format!("{}.{}", key.0, scope_segment(&key.1));
        if let Some(finer) = client.concurrency_scope(request) {
            scope = format!("{scope}.{}", scope_segment(&finer));
        }
        Some(ConcurrencyLimit { scope, limit })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A client built by the registry reads only what its entry declares (debug builds: every
    /// test build), so `VendorEntry::settings` cannot fall behind the reading code.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "amc.undeclared is read but not declared")]
    fn a_client_cannot_read_a_setting_its_entry_does_not_declare() {
        fn build(
            settings: &Settings,
            _: &RetryConfig,
            _: &Arc<dyn RateBudget>,
        ) -> Result<Arc<dyn Vendor>, VendorError> {
            let _ = settings.plain(VendorKind::Amc, "region");
            let _ = settings.plain(VendorKind::Amc, MAX_CONCURRENT_SETTING);
            let _ = settings.plain(VendorKind::Amc, "undeclared");
            unreachable!("the read above panics")
        }
        let entry = VendorEntry {
            kind: VendorKind::Amc,
            build,
            max_concurrent: None,
            settings: &["region"],
        };
        Vendors::from_clients([]).add(
            &entry,
            DEFAULT_PROFILE,
            &Settings::new(),
            &RetryConfig::fast(),
            &InProcessBudget::process(),
        );
    }

    #[test]
    fn every_vendor_reads_its_own_settings_and_the_common_ones() {
        let all = all_settings();
        for entry in VENDORS {
            for key in entry.settings.iter().chain(&COMMON_SETTINGS) {
                assert!(all.contains(&format!("{}.{key}", entry.kind)), "{key}");
            }
        }
        assert!(all.contains("carto.api_token"));
        assert!(all.contains("amperity.max_concurrent"));
    }
}
