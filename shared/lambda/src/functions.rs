//! The three functions, wired to AWS from the environment once per cold start.
//!
//! Everything expensive (SDK clients, connection pools) is built in `from_env` and reused by
//! every invocation. Vendor clients come from the [`Secrets`] port (Secrets Manager), which re-reads the secret at
//! most once per TTL; the handler structs themselves are a few `Arc` clones per invocation.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use runbridge_adapters_aws::{AwsEnv, AwsError};
use runbridge_core::{BackoffPolicy, OffsetDateTime, ResultLayout};
use runbridge_handlers::collect::{CollectOptions, Collector};
use runbridge_handlers::finish::Finisher;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{
    Callbacks, Events, Executions, History, Ledger, ResultSink, Slots,
};
use runbridge_handlers::stopped::Stopper;
use runbridge_handlers::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_handlers::{Clock, DeadLetters, Secrets, SystemClock};
use serde_json::Value;
use tracing::Instrument;

use crate::{handle_collect, handle_function_event, handle_poll, FunctionError};

/// The trigger function: SQS, EventBridge and Scheduler events, and the status changes of
/// stopped executions (whose vendor runs it cancels, so it writes manifests and run events too).
pub struct TriggerFunction {
    secrets: Arc<dyn Secrets>,
    ledger: Arc<dyn Ledger>,
    executions: Arc<dyn Executions>,
    dlq: Arc<dyn DeadLetters>,
    slots: Arc<dyn Slots>,
    callbacks: Arc<dyn Callbacks>,
    sink: Arc<dyn ResultSink>,
    events: Arc<dyn Events>,
    layout: ResultLayout,
    clock: Arc<dyn Clock>,
    policy: BackoffPolicy,
}

impl TriggerFunction {
    /// Builds the function from `RESULTS_BUCKET`, `RESULTS_PREFIX`, `LEDGER_PREFIX`,
    /// `STATE_MACHINE_ARN`, `VENDOR_SECRET_ARN`, `DEAD_LETTER_QUEUE_URL` and `EVENT_BUS_NAME`;
    /// `RATE_BUDGET_TABLE` where set (every function talking to vendors reads it).
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            secrets: Arc::new(env.vendor_settings()?.with_rate_budget(env.rate_budget())),
            ledger: Arc::new(env.ledger()?),
            executions: Arc::new(env.executions()?),
            dlq: Arc::new(env.dead_letters()?),
            slots: Arc::new(env.slots()?),
            callbacks: Arc::new(env.callbacks()),
            sink: Arc::new(env.results_sink()?),
            events: Arc::new(env.events()?),
            layout: env.result_layout()?,
            clock: Arc::new(SystemClock),
            policy: BackoffPolicy::default(),
        })
    }

    /// Handles one invocation, its log lines in the invocation's span; the context's deadline
    /// bounds the ledger claims' leases.
    /// The payload is taken as text: a request inside it (an EventBridge `detail`, a Scheduler
    /// `request`) is read from its own text, so its numbers reach the vendor as written.
    pub async fn invoke(
        &self,
        event: LambdaEvent<Box<serde_json::value::RawValue>>,
    ) -> Result<Value, FunctionError> {
        let span = crate::observe::invocation_span(&event.context);
        // The context's deadline is in milliseconds since the epoch.
        let deadline = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(event.context.deadline) * 1_000_000,
        )
        .ok();
        self.handle_until(event.payload.get(), deadline)
            .instrument(span)
            .await
    }

    /// Handles one invocation's payload, with no known deadline (the default claim lease).
    pub async fn handle(&self, event: Value) -> Result<Value, FunctionError> {
        self.handle_until(&event.to_string(), None).await
    }

    /// Handles one invocation's payload (its text); `deadline` is the Lambda context's
    /// deadline, which bounds the claims' leases (see `Trigger::deadline`).
    pub async fn handle_until(
        &self,
        event: &str,
        deadline: Option<OffsetDateTime>,
    ) -> Result<Value, FunctionError> {
        let vendors = self.secrets.vendors().await?;
        // The stop handler's collector, and the trigger's announcer of a redelivered run's
        // unannounced manifest: the same results bucket and event bus as collect.
        let finisher = Arc::new(self.finisher());
        let stops = Stopper {
            vendors: vendors.clone(),
            ledger: self.ledger.clone(),
            finisher: finisher.clone(),
        };
        let trigger = Trigger {
            vendors,
            ledger: self.ledger.clone(),
            executions: self.executions.clone(),
            clock: self.clock.clone(),
            policy: self.policy,
            claim_lease: DEFAULT_CLAIM_LEASE,
            deadline,
            announcer: Some(finisher),
        };
        handle_function_event(&trigger, &stops, self.dlq.as_ref(), event).await
    }

    /// The finish protocol over this function's results bucket and event bus (the same as
    /// collect's).
    fn finisher(&self) -> Finisher {
        Finisher {
            sink: self.sink.clone(),
            events: self.events.clone(),
            layout: self.layout.clone(),
            clock: self.clock.clone(),
            slots: self.slots.clone(),
            callbacks: self.callbacks.clone(),
        }
    }
}

/// Runs `work` with its vendor calls ending [`runbridge_vendors::http::VENDOR_CALL_MARGIN`]
/// before the context's deadline (milliseconds since the epoch; see
/// [`runbridge_vendors::http::within_invocation`]). A call cut off there is a retryable error (a
/// poll reads it as "wait", Step Functions retries a collect), returned while the function still
/// runs instead of a Lambda timeout. Without a deadline in the context (0), the calls keep only
/// their own timeouts.
async fn within_invocation<F: std::future::Future>(deadline_ms: u64, work: F) -> F::Output {
    let deadline = (deadline_ms != 0)
        .then(|| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(deadline_ms) * 1_000_000).ok()
        })
        .flatten();
    runbridge_vendors::http::within_invocation(deadline, work).await
}

/// The poll task.
pub struct PollFunction {
    secrets: Arc<dyn Secrets>,
    ledger: Arc<dyn Ledger>,
    slots: Arc<dyn Slots>,
    callbacks: Arc<dyn Callbacks>,
    history: Arc<dyn History>,
    clock: Arc<dyn Clock>,
    policy: BackoffPolicy,
}

impl PollFunction {
    /// Builds the function from `VENDOR_SECRET_ARN`, `RESULTS_BUCKET` and `LEDGER_PREFIX` (the
    /// run's request is read from its ledger entry).
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            secrets: Arc::new(env.vendor_settings()?.with_rate_budget(env.rate_budget())),
            ledger: Arc::new(env.ledger()?),
            slots: Arc::new(env.slots()?),
            callbacks: Arc::new(env.callbacks()),
            history: Arc::new(env.history()?),
            clock: Arc::new(SystemClock),
            policy: BackoffPolicy::default(),
        })
    }

    /// Handles one invocation, its log lines in the invocation's span; its vendor calls end
    /// before the invocation's deadline (see
    /// [`runbridge_vendors::http::within_invocation`]).
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let span = crate::observe::invocation_span(&event.context);
        within_invocation(event.context.deadline, self.handle(event.payload))
            .instrument(span)
            .await
    }

    /// Handles one invocation's payload.
    pub async fn handle(&self, payload: Value) -> Result<Value, FunctionError> {
        let poller = Poller {
            vendors: self.secrets.vendors().await?,
            clock: self.clock.clone(),
            policy: self.policy,
            ledger: self.ledger.clone(),
            slots: self.slots.clone(),
            callbacks: self.callbacks.clone(),
            history: self.history.clone(),
        };
        handle_poll(&poller, payload).await
    }
}

/// The collect task.
pub struct CollectFunction {
    secrets: Arc<dyn Secrets>,
    ledger: Arc<dyn Ledger>,
    history: Arc<dyn History>,
    finisher: Arc<Finisher>,
    options: CollectOptions,
}

impl CollectFunction {
    /// Builds the function from `RESULTS_BUCKET`, `RESULTS_PREFIX`, `LEDGER_PREFIX`, `EVENT_BUS_NAME`,
    /// `VENDOR_SECRET_ARN` and `MANIFEST_SHA256`.
    pub fn from_env(env: &AwsEnv) -> Result<Self, AwsError> {
        Ok(Self {
            secrets: Arc::new(env.vendor_settings()?.with_rate_budget(env.rate_budget())),
            ledger: Arc::new(env.ledger()?),
            history: Arc::new(env.history()?),
            finisher: Arc::new(Finisher {
                sink: Arc::new(env.results_sink()?),
                events: Arc::new(env.events()?),
                layout: env.result_layout()?,
                clock: Arc::new(SystemClock),
                slots: Arc::new(env.slots()?),
                callbacks: Arc::new(env.callbacks()),
            }),
            options: env.collect_options()?,
        })
    }

    /// Handles one invocation, its log lines in the invocation's span; its vendor calls end
    /// before the invocation's deadline (see
    /// [`runbridge_vendors::http::within_invocation`]).
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let span = crate::observe::invocation_span(&event.context);
        within_invocation(event.context.deadline, self.handle(event.payload))
            .instrument(span)
            .await
    }

    /// Handles one invocation's payload.
    pub async fn handle(&self, payload: Value) -> Result<Value, FunctionError> {
        let collector = Collector {
            vendors: self.secrets.vendors().await?,
            ledger: self.ledger.clone(),
            history: self.history.clone(),
            finisher: self.finisher.clone(),
            options: self.options,
        };
        handle_collect(&collector, payload).await
    }
}
