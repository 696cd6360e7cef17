//! A local deployment on the vendor simulators: the one start-up the CLI's sandbox, the system
//! tests and the benchmarks share ([`LocalConfig::on_simulators`]). The simulators are started by
//! the caller (each with its own speed and run scripts); this points the vendor clients at them
//! and, when they run in this process, takes their clock and speed.

use std::path::PathBuf;
use std::sync::Arc;

use runbridge_core::{Clock, ValidationError, VendorKind};
use runbridge_sim::SimHandle;
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, Vendors};

use crate::LocalConfig;

/// A named profile on one of the simulators' accounts: its settings hold that account's
/// credentials, and only that account may use `resource` (an AMC instance, an Amperity tenant),
/// so a run under another account's profile fails as it would at the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimProfile {
    /// The profile's name.
    pub name: &'static str,
    /// Its vendor.
    pub vendor: VendorKind,
    /// The instance or tenant only its account may use.
    pub resource: &'static str,
    /// The simulator account (one of [`runbridge_sim::auth::ACCOUNTS`]) whose credentials it
    /// holds.
    pub account: &'static str,
}

/// Where the simulators a deployment talks to run.
#[derive(Clone, Copy)]
pub enum Simulators<'a> {
    /// In this process: the handlers take their clock and the Wait states their speed, and the
    /// named `profiles` are set up on them.
    Here {
        /// The simulators.
        sim: &'a SimHandle,
        /// Named profiles, each on one of their accounts.
        profiles: &'a [SimProfile],
    },
    /// In another process (a `sim-serve`) whose client settings these are
    /// (`Sim::client_settings`): the system clock, real-time waits.
    Elsewhere(&'a [(String, String)]),
}

/// Vendor settings pointing every vendor's default profile at the simulators, plus their named
/// profiles (each given its resource on the simulators).
pub fn simulator_settings(simulators: Simulators<'_>) -> Result<Settings, ValidationError> {
    let mut settings = Settings::new();
    match simulators {
        Simulators::Here { sim, profiles } => {
            for (k, v) in sim.client_settings() {
                settings.set(k, v);
            }
            for profile in profiles {
                sim.sim
                    .control
                    .assign(profile.vendor, profile.resource, profile.account);
                let mut own = Settings::new();
                for (k, v) in sim.account_settings(profile.vendor, profile.account) {
                    own.set(k, v);
                }
                settings.set_profile(profile.name, profile.vendor, own)?;
            }
        }
        Simulators::Elsewhere(pairs) => {
            for (k, v) in pairs {
                settings.set(k.clone(), v.clone());
            }
        }
    }
    Ok(settings)
}

impl LocalConfig {
    /// A deployment on `simulators`: vendor clients built from [`simulator_settings`] with
    /// `retry`, results in `out`, the ledger in `ledger_dir`, and (simulators in this process)
    /// their clock and speed; the deployed defaults otherwise.
    pub fn on_simulators(
        simulators: Simulators<'_>,
        retry: &RetryConfig,
        out: impl Into<PathBuf>,
        ledger_dir: impl Into<PathBuf>,
    ) -> Result<Self, ValidationError> {
        let vendors = Vendors::from_settings(&simulator_settings(simulators)?, retry);
        let config = Self::new(vendors, out, ledger_dir);
        Ok(match simulators {
            Simulators::Here { sim, .. } => Self {
                clock: sim.sim.clone() as Arc<dyn Clock>,
                speed: sim.sim.config.speed,
                ..config
            },
            Simulators::Elsewhere(_) => config,
        })
    }
}
