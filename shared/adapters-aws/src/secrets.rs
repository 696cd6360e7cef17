//! [`SecretsSettings`]: vendor settings from a Secrets Manager secret, cached for warm Lambdas.
//!
//! The secret is a JSON document in the shape [`Settings::merge_json`] reads
//! (`{"amc": {"client_id": "…"}}` or `{"amc.client_id": "…"}`), merged over the settings taken
//! from the environment. A warm Lambda reuses what it read for [`DEFAULT_SETTINGS_TTL`] instead
//! of calling Secrets Manager on every invocation, and keeps its vendor clients (with their
//! cached OAuth tokens) for as long as the secret's version does not change; a rotated secret
//! is picked up within one TTL. Values are never logged: [`Settings`] redacts them and errors
//! name keys only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use runbridge_handlers::{HandlerError, Secrets};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::rate::{InProcessBudget, RateBudget};
use runbridge_vendors::{Settings, Vendors};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{sdk_error, AwsError};

/// How long settings read from the secret are reused.
pub const DEFAULT_SETTINGS_TTL: Duration = Duration::from_secs(5 * 60);

/// Vendor settings and clients built from one version of the secret.
#[derive(Clone)]
pub struct VendorConfig {
    /// The merged settings (environment, then the secret).
    pub settings: Arc<Settings>,
    /// Vendor clients built from them.
    pub vendors: Vendors,
    /// The secret's version id.
    pub version: String,
}

struct Cached {
    fetched_at: Instant,
    config: VendorConfig,
}

/// Reads vendor settings from a secret, at most once per TTL.
pub struct SecretsSettings {
    client: Client,
    secret_id: String,
    ttl: Duration,
    base: Settings,
    retry: RetryConfig,
    /// Where the vendor clients' rate-limited requests take their turn.
    rate_budget: Arc<dyn RateBudget>,
    // A tokio mutex held across the fetch: concurrent callers wait for one fetch, not N.
    cache: Mutex<Option<Cached>>,
}

impl SecretsSettings {
    /// Settings from secret `secret_id` (name or ARN) over empty base settings, cached for
    /// [`DEFAULT_SETTINGS_TTL`], with the default vendor retry configuration.
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            ttl: DEFAULT_SETTINGS_TTL,
            base: Settings::new(),
            retry: RetryConfig::default(),
            rate_budget: InProcessBudget::process(),
            cache: Mutex::new(None),
        }
    }

    /// Reuse a read secret for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Settings the secret is merged over (normally [`Settings::from_env`]).
    pub fn with_base(mut self, base: Settings) -> Self {
        self.base = base;
        self
    }

    /// The rate budget the vendor clients take their requests from (the process's own until
    /// set).
    pub fn with_rate_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.rate_budget = budget;
        self
    }

    /// The retry configuration of the vendor clients.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The current settings and vendor clients, read from Secrets Manager only when the cached
    /// copy is older than the TTL.
    pub async fn current(&self) -> Result<VendorConfig, AwsError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.fetched_at.elapsed() < self.ttl) {
            return Ok(cached.config.clone());
        }
        let (version, settings) = self.fetch().await?;
        let config = match cache.take() {
            // Same version: keep the clients and the tokens they hold.
            Some(old) if old.config.version == version => old.config,
            _ => {
                tracing::info!(secret = %self.secret_id, %version, "vendor settings loaded");
                let vendors =
                    Vendors::from_settings_with_budget(&settings, &self.retry, &self.rate_budget);
                VendorConfig {
                    settings: Arc::new(settings),
                    vendors,
                    version,
                }
            }
        };
        *cache = Some(Cached {
            fetched_at: Instant::now(),
            config: config.clone(),
        });
        Ok(config)
    }

    /// The current settings (see [`SecretsSettings::current`]).
    pub async fn settings(&self) -> Result<Arc<Settings>, AwsError> {
        Ok(self.current().await?.settings)
    }

    /// The current vendor clients (see [`SecretsSettings::current`]).
    pub async fn vendors(&self) -> Result<Vendors, AwsError> {
        Ok(self.current().await?.vendors)
    }

    async fn fetch(&self) -> Result<(String, Settings), AwsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager", "GetSecretValue", e))?;
        let text = out.secret_string().ok_or_else(|| {
            AwsError::Config(format!(
                "secret {} has no string value (binary secrets are not supported)",
                self.secret_id
            ))
        })?;
        let mut settings = self.base.clone();
        settings
            .merge_json(text)
            .map_err(|e| AwsError::Config(format!("secret {}: {e}", self.secret_id)))?;
        let version = out.version_id().unwrap_or("unversioned").to_owned();
        Ok((version, settings))
    }
}

#[async_trait]
impl Secrets for SecretsSettings {
    async fn vendors(&self) -> Result<Vendors, HandlerError> {
        SecretsSettings::vendors(self)
            .await
            .map_err(|e| e.into_handler("settings"))
    }
}
