//! [`SfnExecutions`]: the poll loop's executions in Step Functions.
//!
//! The execution name is the run's idempotency key, so a redelivered request cannot start a
//! second poll loop. Step Functions answers `StartExecution` with the same name and the same
//! input as a *running* execution with that execution (not an error); with the name of a closed
//! execution, or with another input, it fails with `ExecutionAlreadyExists`. In that case the
//! existing execution's input is read back (`DescribeExecution`): the same input means this is a
//! redelivery of a run already watched ([`StartOutcome::AlreadyStarted`]); another input means two
//! different runs map to one key, which retrying cannot fix.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::Client;
use runbridge_handlers::ports::{Executions, StartOutcome};
use runbridge_handlers::HandlerError;

use crate::error::{sdk_error, AwsError};

const PORT: &str = "executions";

/// A start whose returned start date precedes the call by more than this found an execution
/// that was already running. Step Functions answers such a duplicate exactly like the original
/// start, so the date is the only sign; near-simultaneous duplicates both report
/// [`StartOutcome::Started`], which only affects logs.
const ALREADY_RUNNING_TOLERANCE: Duration = Duration::from_secs(1);

/// Starts executions of one state machine.
#[derive(Debug, Clone)]
pub struct SfnExecutions {
    client: Client,
    state_machine_arn: String,
}

impl SfnExecutions {
    /// Executions of `state_machine_arn`.
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The ARN of execution `name` of this state machine
    /// (`arn:…:stateMachine:M` → `arn:…:execution:M:name`).
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    async fn start_inner(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, AwsError> {
        let called_at = SystemTime::now();
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => {
                let started = SystemTime::try_from(*out.start_date()).unwrap_or(called_at);
                let earlier = called_at.duration_since(started).unwrap_or_default();
                Ok(if earlier > ALREADY_RUNNING_TOLERANCE {
                    StartOutcome::AlreadyStarted
                } else {
                    StartOutcome::Started
                })
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StartExecutionError::ExecutionAlreadyExists(_))
                ) =>
            {
                self.compare_existing(name, &input).await
            }
            Err(e) => Err(sdk_error("states", "StartExecution", e)),
        }
    }

    async fn compare_existing(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<StartOutcome, AwsError> {
        let existing = self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(name))
            .send()
            .await
            .map_err(|e| sdk_error("states", "DescribeExecution", e))?;
        let existing_input: Option<serde_json::Value> =
            existing.input().and_then(|s| serde_json::from_str(s).ok());
        if existing_input.as_ref() == Some(input) {
            Ok(StartOutcome::AlreadyStarted)
        } else {
            Err(AwsError::Rejected {
                service: "states",
                message: format!(
                    "ExecutionAlreadyExists: execution {name} ({}) was started with a different input",
                    existing.status().as_str()
                ),
                retryable: false,
            })
        }
    }
}

#[async_trait]
impl Executions for SfnExecutions {
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError> {
        self.start_inner(name, input)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}
