//! [`LocalDeployment`]: the handlers the Lambdas run, wired to local ports and watched by the
//! state machine definition Step Functions runs. The CLI sandbox, the system tests and the
//! benchmarks build it here, so there is one local wiring, as there is one AWS wiring.

use std::path::PathBuf;
use std::sync::Arc;

use runbridge_asl::{Execution, TaskInvoker, TaskTokens};
use runbridge_core::{
    BackoffPolicy, HandleRef, IdempotencyKey, Manifest, ResultLayout, RunHandle, SystemClock,
};
use runbridge_handlers::collect::{CollectOptions, Collector};
use runbridge_handlers::finish::Finisher;
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{
    Callbacks, Events, Executions, History, Ledger, ResultSink, Slots,
};
use runbridge_handlers::stopped::Stopper;
use runbridge_handlers::trigger::{Trigger, DEFAULT_CLAIM_LEASE};
use runbridge_handlers::{Clock, HandlerError};
use runbridge_vendors::Vendors;
use time::Duration;

use crate::{
    DirHistory, DirLedger, DirSink, DirSlots, LocalCallbacks, LocalExecutions, LogEvents,
    MemoryDeadLetters, ScaledWaitClock, StatusChanges, StepTasks, StopHandler,
};

/// The error an operator's stop (`runbridge cancel`) gives `StopExecution`.
pub const OPERATOR_STOP_ERROR: &str = "runbridge.Cancelled";
/// The cause an operator's stop gives `StopExecution`.
pub const OPERATOR_STOP_CAUSE: &str = "cancelled by an operator (runbridge cancel)";
/// The cause of a stop by Ctrl-C in `runbridge run`: the manifest says who stopped the run, and
/// it was no `runbridge cancel`.
pub const INTERRUPT_STOP_CAUSE: &str = "interrupted by Ctrl-C (runbridge run)";

/// Wraps the collector's result sink (to inject failures between collect's steps, to time it,
/// or to replace the directory with another sink).
pub type SinkWrapper = Box<dyn FnOnce(Arc<dyn ResultSink>) -> Arc<dyn ResultSink> + Send>;

/// Wraps the collector's event publisher (to make `PutEvents` fail).
pub type EventsWrapper = Box<dyn FnOnce(Arc<dyn Events>) -> Arc<dyn Events> + Send>;

/// Wraps how the handlers wake parked executions (to lose a wake-up).
pub type CallbacksWrapper = Box<dyn FnOnce(Arc<dyn Callbacks>) -> Arc<dyn Callbacks> + Send>;

/// Wraps the ledger the handlers use (to count its requests).
pub type LedgerWrapper = Box<dyn FnOnce(Arc<dyn Ledger>) -> Arc<dyn Ledger> + Send>;

/// Wraps the concurrency slots the handlers use (to count their requests, to watch admissions).
pub type SlotsWrapper = Box<dyn FnOnce(Arc<dyn Slots>) -> Arc<dyn Slots> + Send>;

/// Wraps the workflows' durations the handlers use (to count their requests).
pub type HistoryWrapper = Box<dyn FnOnce(Arc<dyn History>) -> Arc<dyn History> + Send>;

/// Wraps the handlers the state machine invokes (to observe polls or inject Lambda failures).
pub type TasksWrapper = Box<dyn FnOnce(Arc<dyn TaskInvoker>) -> Arc<dyn TaskInvoker> + Send>;

/// Wraps where the status changes of ended executions go (to lose a crashed run's stop event).
pub type StatusChangesWrapper =
    Box<dyn FnOnce(Arc<dyn StatusChanges>) -> Arc<dyn StatusChanges> + Send>;

/// What a local deployment is made of. [`LocalConfig::new`] gives the deployed defaults.
pub struct LocalConfig {
    /// The vendor clients (real APIs or the simulators).
    pub vendors: Vendors,
    /// The results directory, in the S3 layout.
    pub out: PathBuf,
    /// The ledger directory.
    pub ledger_dir: PathBuf,
    /// The handlers' clock (the system clock, or the simulators').
    pub clock: Arc<dyn Clock>,
    /// Simulated seconds per real second in Wait states (1 for real runs).
    pub speed: f64,
    /// The poll wait policy.
    pub policy: BackoffPolicy,
    /// The trigger's claim lease.
    pub claim_lease: Duration,
    /// Where results land under `out`.
    pub layout: ResultLayout,
    /// Wraps the directory sink the collector writes to.
    pub wrap_sink: Option<SinkWrapper>,
    /// Wraps the poll and collect handlers as the state machine invokes them.
    pub wrap_tasks: Option<TasksWrapper>,
    /// Wraps the collector's event publisher ([`LocalDeployment::events`] stays the inner log).
    pub wrap_events: Option<EventsWrapper>,
    /// Wraps how the handlers wake executions parked for a concurrency slot.
    pub wrap_callbacks: Option<CallbacksWrapper>,
    /// Wraps the ledger every handler uses ([`LocalDeployment::ledger`] stays the directory).
    pub wrap_ledger: Option<LedgerWrapper>,
    /// Wraps the slots every handler uses ([`LocalDeployment::slots`] stays the directory).
    pub wrap_slots: Option<SlotsWrapper>,
    /// Wraps the workflows' durations poll and collect use.
    pub wrap_history: Option<HistoryWrapper>,
    /// Wraps where ended executions' status changes go ([`LocalDeployment::stops`] stays the
    /// stop handler).
    pub wrap_status_changes: Option<StatusChangesWrapper>,
    /// Starts executions somewhere else instead of running the state machine (benchmarks of
    /// the trigger alone).
    pub executions: Option<Arc<dyn Executions>>,
    /// Replaces the state machine's execution `TimeoutSeconds` (tests of a timed-out execution;
    /// `None` keeps the deployed definition's).
    pub execution_timeout_seconds: Option<u64>,
    /// What collect computes (the deployed default: SHA-256 on).
    pub collect: CollectOptions,
}

impl LocalConfig {
    /// The deployed defaults: system clock, real-time waits, default policy, lease and layout.
    pub fn new(vendors: Vendors, out: impl Into<PathBuf>, ledger_dir: impl Into<PathBuf>) -> Self {
        Self {
            vendors,
            out: out.into(),
            ledger_dir: ledger_dir.into(),
            clock: Arc::new(SystemClock),
            speed: 1.0,
            policy: BackoffPolicy::default(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            layout: ResultLayout::default(),
            wrap_sink: None,
            wrap_tasks: None,
            wrap_events: None,
            wrap_callbacks: None,
            wrap_ledger: None,
            wrap_slots: None,
            wrap_history: None,
            wrap_status_changes: None,
            executions: None,
            execution_timeout_seconds: None,
            collect: CollectOptions::default(),
        }
    }
}

/// Where the local slots live, inside the ledger directory.
pub const SLOTS_DIR: &str = "slots";

/// Where the workflows' durations live, inside the ledger directory.
pub const HISTORY_DIR: &str = "history";

/// A runbridge deployment on this machine.
pub struct LocalDeployment {
    /// The trigger handler, starting [`LocalDeployment::executions`].
    pub trigger: Trigger,
    /// The poll handler.
    pub poller: Arc<Poller>,
    /// The collect handler.
    pub collector: Arc<Collector>,
    /// Step Functions, locally.
    pub executions: Arc<LocalExecutions>,
    /// The results directory (unwrapped).
    pub sink: Arc<DirSink>,
    /// The ledger (unwrapped: what [`LocalConfig::wrap_ledger`] wraps for the handlers).
    pub ledger: Arc<DirLedger>,
    /// The concurrency slots (in the ledger directory, under [`SLOTS_DIR`]; unwrapped).
    pub slots: Arc<DirSlots>,
    /// Published run events.
    pub events: Arc<LogEvents>,
    /// Dead-lettered requests, and status changes whose handling failed after its retries.
    pub dead_letters: Arc<MemoryDeadLetters>,
    /// The stop handler: what each stopped or timed-out execution's status change came to.
    pub stops: Arc<StopHandler>,
    /// Where results land.
    pub layout: ResultLayout,
}

impl LocalDeployment {
    /// Wires the handlers to the local ports.
    pub fn new(config: LocalConfig) -> Result<Self, HandlerError> {
        std::fs::create_dir_all(&config.out).map_err(|e| {
            HandlerError::port("sink", format!("{}: {e}", config.out.display()), false)
        })?;
        let LocalConfig {
            vendors,
            out,
            ledger_dir,
            clock,
            speed,
            policy,
            claim_lease,
            layout,
            wrap_sink,
            wrap_tasks,
            wrap_events,
            wrap_callbacks,
            wrap_ledger,
            wrap_slots,
            wrap_history,
            wrap_status_changes,
            executions: other_executions,
            execution_timeout_seconds,
            collect,
        } = config;
        let sink = Arc::new(DirSink::new(out));
        let mut collector_sink: Arc<dyn ResultSink> = sink.clone();
        if let Some(wrap) = wrap_sink {
            collector_sink = wrap(collector_sink);
        }
        let events = Arc::new(LogEvents::default());
        let mut collector_events: Arc<dyn Events> = events.clone();
        if let Some(wrap) = wrap_events {
            collector_events = wrap(collector_events);
        }
        let slots = Arc::new(DirSlots::new(ledger_dir.join(SLOTS_DIR)));
        let history = Arc::new(DirHistory::new(ledger_dir.join(HISTORY_DIR)));
        let ledger = Arc::new(DirLedger::new(ledger_dir));
        // What the handlers use: the directories, or wrappers around them.
        let wrapped_slots: Arc<dyn Slots> = match wrap_slots {
            Some(wrap) => wrap(slots.clone()),
            None => slots.clone(),
        };
        let history: Arc<dyn History> = match wrap_history {
            Some(wrap) => wrap(history),
            None => history,
        };
        let wrapped_ledger: Arc<dyn Ledger> = match wrap_ledger {
            Some(wrap) => wrap(ledger.clone()),
            None => ledger.clone(),
        };
        // The executions' task tokens, made first: the handlers the executions invoke wake them.
        let task_tokens = TaskTokens::new();
        let mut callbacks: Arc<dyn Callbacks> = Arc::new(LocalCallbacks::new(task_tokens.clone()));
        if let Some(wrap) = wrap_callbacks {
            callbacks = wrap(callbacks);
        }
        let poller = Arc::new(Poller {
            callbacks: callbacks.clone(),
            history: history.clone(),
            slots: wrapped_slots.clone(),
            vendors: vendors.clone(),
            clock: clock.clone(),
            policy,
            ledger: wrapped_ledger.clone(),
        });
        let finisher = Arc::new(Finisher {
            sink: collector_sink,
            events: collector_events,
            layout: layout.clone(),
            clock: clock.clone(),
            slots: wrapped_slots.clone(),
            callbacks,
        });
        let collector = Arc::new(Collector {
            history,
            vendors: vendors.clone(),
            ledger: wrapped_ledger.clone(),
            finisher: finisher.clone(),
            options: collect,
        });
        let mut tasks: Arc<dyn TaskInvoker> = Arc::new(StepTasks {
            poller: poller.clone(),
            collector: collector.clone(),
        });
        if let Some(wrap) = wrap_tasks {
            tasks = wrap(tasks);
        }
        let wait_clock = Arc::new(ScaledWaitClock {
            speed,
            clock: clock.clone(),
        });
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let stopper = Arc::new(Stopper {
            vendors: vendors.clone(),
            ledger: wrapped_ledger.clone(),
            finisher: finisher.clone(),
        });
        let stops = Arc::new(StopHandler::new(
            stopper,
            dead_letters.clone(),
            wait_clock.clone(),
        ));
        let status_changes: Arc<dyn StatusChanges> = match wrap_status_changes {
            Some(wrap) => wrap(stops.clone()),
            None => stops.clone(),
        };
        let mut local = LocalExecutions::new(tasks, wait_clock)?
            .with_task_tokens(task_tokens)
            .with_status_changes(status_changes);
        if let Some(seconds) = execution_timeout_seconds {
            local = local.with_timeout_seconds(Some(seconds));
        }
        let executions = Arc::new(local);
        let trigger = Trigger {
            vendors,
            ledger: wrapped_ledger.clone(),
            executions: other_executions.unwrap_or_else(|| executions.clone()),
            clock,
            policy,
            claim_lease,
            deadline: None,
            announcer: Some(finisher),
        };
        Ok(Self {
            trigger,
            poller,
            collector,
            executions,
            sink,
            ledger,
            slots,
            events,
            dead_letters,
            stops,
            layout,
        })
    }

    /// Stops the execution of `key` as `runbridge cancel` does deployed (`StopExecution` with
    /// an operator's error and cause); its status change then reaches the stop handler, which
    /// cancels the vendor run. `Ok(false)` when the execution had already ended.
    pub fn cancel(&self, key: &IdempotencyKey) -> Result<bool, HandlerError> {
        self.executions.stop(
            &key.execution_name(),
            Some(OPERATOR_STOP_ERROR),
            Some(OPERATOR_STOP_CAUSE),
        )
    }

    /// Stops the execution of `key` like [`LocalDeployment::cancel`], for a Ctrl-C in
    /// `runbridge run`: the same path, with its own cause ([`INTERRUPT_STOP_CAUSE`]).
    pub fn interrupt(&self, key: &IdempotencyKey) -> Result<bool, HandlerError> {
        self.executions.stop(
            &key.execution_name(),
            Some(OPERATOR_STOP_ERROR),
            Some(INTERRUPT_STOP_CAUSE),
        )
    }

    /// A trigger like [`LocalDeployment::trigger`] with other ledger and executions ports
    /// (wrappers that inject failures around the real ones).
    pub fn trigger_with(
        &self,
        ledger: Arc<dyn Ledger>,
        executions: Arc<dyn Executions>,
    ) -> Trigger {
        Trigger {
            vendors: self.trigger.vendors.clone(),
            ledger,
            executions,
            clock: self.trigger.clock.clone(),
            policy: self.trigger.policy,
            claim_lease: self.trigger.claim_lease,
            deadline: None,
            announcer: self.trigger.announcer.clone(),
        }
    }

    /// The handle the execution for `key` was started with: its reference, with the request
    /// from the ledger.
    pub async fn handle(&self, key: &IdempotencyKey) -> Option<RunHandle> {
        let input = self.executions.input(&key.execution_name())?;
        let reference: HandleRef = serde_json::from_value(input["handle"].clone()).ok()?;
        runbridge_handlers::steps::load_handle(self.ledger.as_ref(), reference)
            .await
            .ok()
    }

    /// Waits for the execution of `key` to end; returns it with the run's manifest, if written.
    pub async fn wait(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<(Execution, Option<Manifest>)>, HandlerError> {
        let Some(execution) = self.executions.wait(&key.execution_name()).await else {
            return Ok(None);
        };
        let Some(handle) = self.handle(key).await else {
            return Ok(Some((execution, None)));
        };
        let manifest = match self
            .sink
            .get(&self.layout.paths(&handle).manifest())
            .await?
        {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                HandlerError::port("sink", format!("unreadable manifest: {e}"), false)
            })?),
            None => None,
        };
        Ok(Some((execution, manifest)))
    }
}
