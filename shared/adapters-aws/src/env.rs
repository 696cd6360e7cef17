//! The one place that builds every AWS adapter from the environment.
//!
//! | variable | used for |
//! | --- | --- |
//! | `RESULTS_BUCKET` | [`S3Sink`], [`S3Ledger`] |
//! | `RESULTS_PREFIX` | the [`ResultLayout`] root (may be empty) |
//! | `LEDGER_PREFIX` | where [`S3Ledger`] keeps its entries, and [`crate::S3Slots`] its slots (under `slots/`) |
//! | `STATE_MACHINE_ARN` | [`SfnExecutions`] (trigger only) |
//! | `EVENT_BUS_NAME` | [`EventBridgeEvents`] (collect only) |
//! | `VENDOR_SECRET_ARN` | [`SecretsSettings`]; `RUNBRIDGE_<VENDOR>_<SETTING>` variables are the base it merges over |
//! | `DEAD_LETTER_QUEUE_URL` | [`DlqSender`] (trigger only) |
//! | `RATE_BUDGET_TABLE` | [`DynamoRateBudget`], the vendor rate budget every environment shares (unset: each process's own) |
//! | `MANIFEST_SHA256` | [`CollectOptions::sha256`] (collect only; `true` unless `false`) |
//! | `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>` | an emulator such as moto; S3 then uses path-style addressing |
//!
//! Region and credentials come from the standard chain (`aws_config`), which on Lambda reads the
//! function's environment. A missing variable is reported by name when the adapter needing it is
//! built, so a function fails at cold start rather than on its first event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;
use runbridge_core::ResultLayout;
use runbridge_handlers::collect::CollectOptions;
use runbridge_vendors::rate::{InProcessBudget, RateBudget};
use runbridge_vendors::Settings;

use crate::{
    AwsError, DlqSender, DynamoRateBudget, EventBridgeEvents, S3Ledger, S3Sink, SecretsSettings,
    SfnExecutions,
};

/// Name of the results bucket variable.
pub const RESULTS_BUCKET: &str = "RESULTS_BUCKET";
/// Name of the results prefix variable.
pub const RESULTS_PREFIX: &str = "RESULTS_PREFIX";
/// Name of the ledger prefix variable.
pub const LEDGER_PREFIX: &str = "LEDGER_PREFIX";
/// Name of the state machine ARN variable.
pub const STATE_MACHINE_ARN: &str = "STATE_MACHINE_ARN";
/// Name of the event bus variable.
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
/// Name of the vendor secret variable.
pub const VENDOR_SECRET_ARN: &str = "VENDOR_SECRET_ARN";
/// Name of the dead-letter queue URL variable.
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
/// Name of the rate budget table variable.
pub const RATE_BUDGET_TABLE: &str = "RATE_BUDGET_TABLE";
/// Name of the variable that turns the manifest's SHA-256 off.
pub const MANIFEST_SHA256: &str = "MANIFEST_SHA256";

/// Every variable the adapters read ([`AwsEnv::var`], [`AwsEnv::var_or_empty`] read no other):
/// what `docs/SETTINGS.md` lists as the functions' environment, besides the log variables.
pub const FUNCTION_VARS: [&str; 9] = [
    RESULTS_BUCKET,
    RESULTS_PREFIX,
    LEDGER_PREFIX,
    STATE_MACHINE_ARN,
    EVENT_BUS_NAME,
    VENDOR_SECRET_ARN,
    DEAD_LETTER_QUEUE_URL,
    RATE_BUDGET_TABLE,
    MANIFEST_SHA256,
];

/// A variable read must be listed in [`FUNCTION_VARS`] (checked in debug builds: the tests).
fn declared(name: &str) {
    debug_assert!(
        FUNCTION_VARS.contains(&name),
        "{name} is read but not listed in FUNCTION_VARS (which docs/SETTINGS.md is checked against)"
    );
}

/// The SDK's HTTPS client on rustls with ring, the TLS stack the vendor clients already use,
/// so the functions link one crypto library, not two.
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The bounds of every AWS call the functions and the CLI make: an endpoint that accepts the
/// connection and never answers must not hold a function until it dies, or an operator command
/// for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Establishing a connection.
    pub connect: Duration,
    /// One attempt, from sending the request to its answer read (a timed-out attempt is retried).
    pub attempt: Duration,
    /// The whole operation, all attempts and the waits between them.
    pub operation: Duration,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        // Generous for the largest call made (a multipart part upload of collect), short
        // beside a function's 15-minute limit.
        Self {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(120),
            operation: Duration::from_secs(300),
        }
    }
}

impl AwsTimeouts {
    /// As the SDK's configuration.
    pub fn config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// The SDK configuration from the standard environment (region, credentials, `AWS_ENDPOINT_URL`),
/// every call bounded by [`AwsTimeouts::default`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(AwsTimeouts::default().config())
        .load()
        .await
}

/// The SDK configuration and the variables the adapters read.
#[derive(Debug, Clone)]
pub struct AwsEnv {
    sdk: SdkConfig,
    vars: BTreeMap<String, String>,
}

impl AwsEnv {
    /// The process environment.
    pub async fn from_env() -> Self {
        Self::new(load_sdk_config().await, std::env::vars())
    }

    /// An explicit configuration and variables (tests, embeddings).
    pub fn new(sdk: SdkConfig, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            sdk,
            vars: vars.into_iter().collect(),
        }
    }

    /// The SDK configuration.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// A required, non-empty variable (one of [`FUNCTION_VARS`]).
    pub fn var(&self, name: &str) -> Result<&str, AwsError> {
        declared(name);
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AwsError::Config(format!("environment variable {name} is not set")))
    }

    /// An optional variable (one of [`FUNCTION_VARS`]; empty when unset).
    pub fn var_or_empty(&self, name: &str) -> &str {
        declared(name);
        self.vars.get(name).map(String::as_str).unwrap_or_default()
    }

    /// Whether requests go to an endpoint other than AWS's (an emulator).
    pub fn endpoint_overridden(&self) -> bool {
        self.sdk.endpoint_url().is_some() || self.vars.contains_key("AWS_ENDPOINT_URL_S3")
    }

    /// An S3 client; path-style addressing when the endpoint is overridden, because emulators
    /// on `localhost` have no per-bucket host names.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.endpoint_overridden())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// What collect computes: `MANIFEST_SHA256` is `true` (the default when unset or empty)
    /// or `false`; anything else is refused by name, so a typo cannot silently change a
    /// manifest.
    pub fn collect_options(&self) -> Result<CollectOptions, AwsError> {
        let sha256 = match self.var_or_empty(MANIFEST_SHA256).trim() {
            "" | "true" => true,
            "false" => false,
            other => {
                return Err(AwsError::Config(format!(
                    "{MANIFEST_SHA256} must be true or false, not {other:?}"
                )))
            }
        };
        Ok(CollectOptions { sha256 })
    }

    /// The result sink in `RESULTS_BUCKET`.
    pub fn results_sink(&self) -> Result<S3Sink, AwsError> {
        Ok(S3Sink::new(self.s3_client(), self.var(RESULTS_BUCKET)?))
    }

    /// Where results land under `RESULTS_PREFIX`.
    pub fn result_layout(&self) -> Result<ResultLayout, AwsError> {
        ResultLayout::new(self.var_or_empty(RESULTS_PREFIX))
            .map_err(|e| AwsError::Config(format!("{RESULTS_PREFIX}: {e}")))
    }

    /// The ledger in `RESULTS_BUCKET` under `LEDGER_PREFIX`.
    pub fn ledger(&self) -> Result<S3Ledger, AwsError> {
        Ok(S3Ledger::new(
            self.s3_client(),
            self.var(RESULTS_BUCKET)?,
            self.var(LEDGER_PREFIX)?,
        ))
    }

    /// The concurrency slots in `RESULTS_BUCKET`, beside the ledger: `LEDGER_PREFIX` + `slots/`.
    pub fn slots(&self) -> Result<crate::S3Slots, AwsError> {
        let ledger = self.var(LEDGER_PREFIX)?;
        let prefix = format!("{}/slots/", ledger.trim_end_matches('/'));
        Ok(crate::S3Slots::new(
            self.s3_client(),
            self.var(RESULTS_BUCKET)?,
            &prefix,
        ))
    }

    /// Executions of `STATE_MACHINE_ARN`.
    pub fn executions(&self) -> Result<SfnExecutions, AwsError> {
        Ok(SfnExecutions::new(
            aws_sdk_sfn::Client::new(&self.sdk),
            self.var(STATE_MACHINE_ARN)?,
        ))
    }

    /// The workflows' durations in `RESULTS_BUCKET`, beside the ledger: `LEDGER_PREFIX` +
    /// `history/`.
    pub fn history(&self) -> Result<crate::S3History, AwsError> {
        let ledger = self.var(LEDGER_PREFIX)?;
        let prefix = format!("{}/history/", ledger.trim_end_matches('/'));
        Ok(crate::S3History::new(
            self.s3_client(),
            self.var(RESULTS_BUCKET)?,
            &prefix,
        ))
    }

    /// Wakes executions parked on a task token (no variable needed).
    pub fn callbacks(&self) -> crate::SfnCallbacks {
        crate::SfnCallbacks::new(aws_sdk_sfn::Client::new(&self.sdk))
    }

    /// Run events on `EVENT_BUS_NAME`.
    pub fn events(&self) -> Result<EventBridgeEvents, AwsError> {
        Ok(EventBridgeEvents::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            self.var(EVENT_BUS_NAME)?,
        ))
    }

    /// Vendor settings from `VENDOR_SECRET_ARN` over the `RUNBRIDGE_*` variables.
    pub fn vendor_settings(&self) -> Result<SecretsSettings, AwsError> {
        let base = Settings::from_env_vars(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(SecretsSettings::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            self.var(VENDOR_SECRET_ARN)?,
        )
        .with_base(base))
    }

    /// The vendor rate budget: the table `RATE_BUDGET_TABLE`, shared by every environment of
    /// the stack; when unset, the process's own (a sandbox or an embedding with one process).
    pub fn rate_budget(&self) -> Arc<dyn RateBudget> {
        match self.var_or_empty(RATE_BUDGET_TABLE) {
            "" => InProcessBudget::process(),
            table => Arc::new(DynamoRateBudget::new(
                aws_sdk_dynamodb::Client::new(&self.sdk),
                table,
            )),
        }
    }

    /// The dead-letter queue at `DEAD_LETTER_QUEUE_URL`.
    pub fn dead_letters(&self) -> Result<DlqSender, AwsError> {
        Ok(DlqSender::new(
            aws_sdk_sqs::Client::new(&self.sdk),
            self.var(DEAD_LETTER_QUEUE_URL)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> AwsEnv {
        AwsEnv::new(
            SdkConfig::builder().build(),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn the_manifest_sha256_is_on_unless_turned_off_and_a_typo_is_named() {
        assert!(env(&[]).collect_options().unwrap().sha256);
        assert!(
            env(&[(MANIFEST_SHA256, "")])
                .collect_options()
                .unwrap()
                .sha256
        );
        assert!(
            env(&[(MANIFEST_SHA256, "true")])
                .collect_options()
                .unwrap()
                .sha256
        );
        assert!(
            !env(&[(MANIFEST_SHA256, "false")])
                .collect_options()
                .unwrap()
                .sha256
        );
        let err = env(&[(MANIFEST_SHA256, "no")])
            .collect_options()
            .unwrap_err();
        assert!(err.to_string().contains(MANIFEST_SHA256), "{err}");
    }
}
