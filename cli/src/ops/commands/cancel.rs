//! `cancel KEY`: stops the run's execution as an operator; the stack's stop handler then cancels
//! the vendor run and writes the CANCELLED manifest.

use runbridge_adapters_local::OPERATOR_STOP_CAUSE;
use serde_json::json;

use crate::exit::CliError;
use crate::ops::{run_key, Ops};
use crate::output::Output;

/// `cancel KEY`: stops the run's execution.
pub async fn cancel(ops: &Ops, key: &str) -> Result<Output, CliError> {
    run_key(key)?;
    let Some(exec) = ops.describe_execution(key).await? else {
        return Err(CliError::not_found(format!("no execution for key {key}")));
    };
    if exec.status != "RUNNING" {
        let text = format!("{key}: execution already {}; nothing to stop", exec.status);
        return Ok(Output::ok(
            json!({"key": key, "stopped": false, "status": exec.status}),
            text,
        ));
    }
    ops.stop_execution(&exec.arn, OPERATOR_STOP_CAUSE).await?;
    Ok(Output::ok(
        json!({"key": key, "stopped": true, "status": "ABORTED"}),
        format!(
            "{key}: execution stopped. The stop reaches the trigger function (the stack's \
             ExecutionStoppedRule), which cancels the vendor run (Adobe has no cancel: its run \
             continues) and writes a CANCELLED manifest; `runbridge status {key}` shows what the \
             cancel did (docs/RUNBOOK.md)."
        ),
    ))
}
