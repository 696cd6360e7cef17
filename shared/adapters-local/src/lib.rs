//! Local implementations of the handlers' ports, and [`LocalDeployment`], the one place that
//! wires them to the handlers: the local twin of `runbridge_adapters_aws::AwsEnv`. The CLI's
//! sandbox, the system tests and the benchmarks all build their deployment here.
//!
//! | port | local implementation |
//! | --- | --- |
//! | `ResultSink` | [`DirSink`]: a directory in the S3 layout, files renamed into place |
//! | `Ledger` | [`DirLedger`]: one JSON file per key, claimed with create-new |
//! | `Executions` | [`LocalExecutions`]: the deployed ASL run by the interpreter |
//! | `Events` | [`LogEvents`]: kept in memory and logged |
//! | `Secrets` | [`EnvSecrets`]: `RUNBRIDGE_<VENDOR>_<SETTING>` variables |
//! | `DeadLetters` | [`MemoryDeadLetters`]: kept in memory and logged |
//!
//! A stopped or timed-out execution's status change goes to [`StopHandler`], the stop handler
//! with Lambda's asynchronous retries, as the deployed EventBridge rule sends it to the trigger.
//!
//! [`LocalConfig::on_simulators`] points a deployment at the vendor simulators: the one start-up
//! of the sandbox, the system tests and the benchmarks.
#![deny(missing_docs)]

mod dead_letters;
mod deployment;
mod events;
mod executions;
mod history;
mod ledger;
mod secrets;
mod simulated;
mod sink;
mod slots;
mod status_changes;

pub use dead_letters::MemoryDeadLetters;
pub use deployment::{
    CallbacksWrapper, EventsWrapper, HistoryWrapper, LedgerWrapper, LocalConfig, LocalDeployment,
    SinkWrapper, SlotsWrapper, StatusChangesWrapper, TasksWrapper, HISTORY_DIR,
    INTERRUPT_STOP_CAUSE, OPERATOR_STOP_CAUSE, OPERATOR_STOP_ERROR,
};
pub use events::LogEvents;
pub use executions::{
    LocalCallbacks, LocalExecutions, ScaledWaitClock, StatusChanges, StepTasks, LOCAL_COLLECT_ARN,
    LOCAL_POLL_ARN, LOCAL_STATE_MACHINE_ARN, STATE_MACHINE_ASL,
};
pub use history::DirHistory;
pub use ledger::DirLedger;
pub use secrets::EnvSecrets;
pub use simulated::{simulator_settings, SimProfile, Simulators};
pub use sink::DirSink;
pub use slots::DirSlots;
pub use status_changes::{StopHandler, STOP_EVENT_RETRIES, STOP_EVENT_RETRY_SECONDS};
