//! [`EnvSecrets`]: vendor settings from `RUNBRIDGE_<VENDOR>_<SETTING>` variables and the
//! profiles file `RUNBRIDGE_PROFILES` names, the local stand-in for the deployed Secrets Manager
//! secret.

use async_trait::async_trait;
use runbridge_handlers::{HandlerError, Secrets};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::{Settings, Vendors};

/// Vendor clients built once from settings read from the environment (or given).
#[derive(Clone)]
pub struct EnvSecrets {
    vendors: Vendors,
}

impl EnvSecrets {
    /// Clients from `RUNBRIDGE_<VENDOR>_<SETTING>` variables and the `RUNBRIDGE_PROFILES` file,
    /// with the default retries; an unreadable profiles file is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        Ok(Self::from_settings(
            &Settings::local()?,
            &RetryConfig::default(),
        ))
    }

    /// Clients from `settings` (for example the simulators' client settings).
    pub fn from_settings(settings: &Settings, retry: &RetryConfig) -> Self {
        Self {
            vendors: Vendors::from_settings(settings, retry),
        }
    }

    /// The clients.
    pub fn vendors(&self) -> &Vendors {
        &self.vendors
    }
}

#[async_trait]
impl Secrets for EnvSecrets {
    async fn vendors(&self) -> Result<Vendors, HandlerError> {
        Ok(self.vendors.clone())
    }
}
