//! The three functions, wired to AWS from the environment once per cold start.
//!
//! Everything expensive (SDK clients, connection pools) is built in `from_env` and reused by
//! every invocation. Vendor clients come from [`SecretsSettings`], which re-reads the secret at
//! most once per TTL; the handler structs themselves are a few `Arc` clones per invocation.

use std::sync::Arc;

use runbridge_adapters_aws::{
    AwsEnv, AwsError, DlqSender, EventBridgeEvents, S3Ledger, S3Sink, SecretsSettings,
    SfnExecutions,
};
use runbridge_core::{BackoffPolicy, ResultLayout};
use runbridge_handlers::collect::Collector;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_handlers::{Clock, SystemClock};
use runbridge_vendors::Vendors;
use serde_json::Value;

use crate::{handle_collect, handle_poll, handle_trigger_event, FunctionError};

async fn vendors(settings: &SecretsSettings) -> Result<Vendors, FunctionError> {
    settings
        .vendors()
        .await
        .map_err(|e| FunctionError::aws("settings", e))
}

/// The trigger function: SQS, EventBridge and Scheduler events.
pub struct TriggerFunction {
    settings: SecretsSettings,
    ledger: Arc<S3Ledger>,
    executions: Arc<SfnExecutions>,
    dlq: DlqSender,
    clock: Arc<dyn Clock>,
    policy: BackoffPolicy,
}

impl TriggerFunction {
    /// Builds the function from `RESULTS_BUCKET`, `LEDGER_PREFIX`, `STATE_MACHINE_ARN`,
    /// `VENDOR_SECRET_ARN` and `DEAD_LETTER_QUEUE_URL`.
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            settings: env.vendor_settings()?,
            ledger: Arc::new(env.ledger()?),
            executions: Arc::new(env.executions()?),
            dlq: env.dead_letters()?,
            clock: Arc::new(SystemClock),
            policy: BackoffPolicy::default(),
        })
    }

    /// Handles one invocation's payload.
    pub async fn handle(&self, event: Value) -> Result<Value, FunctionError> {
        let trigger = Trigger {
            vendors: vendors(&self.settings).await?,
            ledger: self.ledger.clone(),
            executions: self.executions.clone(),
            clock: self.clock.clone(),
            policy: self.policy,
            claim_lease: DEFAULT_CLAIM_LEASE,
        };
        handle_trigger_event(&trigger, &self.dlq, event).await
    }
}

/// The poll task.
pub struct PollFunction {
    settings: SecretsSettings,
    clock: Arc<dyn Clock>,
    policy: BackoffPolicy,
}

impl PollFunction {
    /// Builds the function from `VENDOR_SECRET_ARN`.
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            settings: env.vendor_settings()?,
            clock: Arc::new(SystemClock),
            policy: BackoffPolicy::default(),
        })
    }

    /// Handles one invocation's payload.
    pub async fn handle(&self, payload: Value) -> Result<Value, FunctionError> {
        let poller = Poller {
            vendors: vendors(&self.settings).await?,
            clock: self.clock.clone(),
            policy: self.policy,
        };
        handle_poll(&poller, payload).await
    }
}

/// The collect task.
pub struct CollectFunction {
    settings: SecretsSettings,
    sink: Arc<S3Sink>,
    events: Arc<EventBridgeEvents>,
    layout: ResultLayout,
    clock: Arc<dyn Clock>,
}

impl CollectFunction {
    /// Builds the function from `RESULTS_BUCKET`, `RESULTS_PREFIX`, `EVENT_BUS_NAME` and
    /// `VENDOR_SECRET_ARN`.
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            settings: env.vendor_settings()?,
            sink: Arc::new(env.results_sink()?),
            events: Arc::new(env.events()?),
            layout: env.result_layout()?,
            clock: Arc::new(SystemClock),
        })
    }

    /// Handles one invocation's payload.
    pub async fn handle(&self, payload: Value) -> Result<Value, FunctionError> {
        let collector = Collector {
            vendors: vendors(&self.settings).await?,
            sink: self.sink.clone(),
            events: self.events.clone(),
            layout: self.layout.clone(),
            clock: self.clock.clone(),
        };
        handle_collect(&collector, payload).await
    }
}
