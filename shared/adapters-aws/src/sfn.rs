//! [`SfnExecutions`]: the poll loop's executions in Step Functions.
//!
//! The execution name is the run's idempotency key, so a redelivered request cannot start a
//! second poll loop. Step Functions answers `StartExecution` with the same name and the same
//! input as a *running* execution with that execution (not an error); with the name of a closed
//! execution, or with another input, it fails with `ExecutionAlreadyExists`. In that case the
//! existing execution's input is read back (`DescribeExecution`): the same input means this is a
//! redelivery of a run already watched ([`StartOutcome::AlreadyStarted`]); another input means two
//! different runs map to one key, which retrying cannot fix.
//!
//! [`SfnCallbacks`] wakes a parked execution (a `.waitForTaskToken` task) with `SendTaskSuccess`
//! or `SendTaskFailure`; it needs no state machine ARN, so the functions the state machine
//! invokes can use it. Step Functions answers `TaskDoesNotExist`, `TaskTimedOut` or `InvalidToken`
//! when no task waits on the token (answered already, timed out, execution ended, or never
//! issued): that is [`Wake::Gone`], not an error. Any other failure is classified as every call
//! is (see [`crate::error`]).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::Client;
use runbridge_handlers::ports::{Callbacks, Executions, StartOutcome, Wake};
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

/// Wakes executions parked on a task token.
#[derive(Debug, Clone)]
pub struct SfnCallbacks {
    client: Client,
}

impl SfnCallbacks {
    /// Callbacks through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn send_task_success_inner(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, AwsError> {
        let sent = self
            .client
            .send_task_success()
            .task_token(task_token)
            .output(output.to_string())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Wake::Delivered),
            Err(e) if e.as_service_error().is_some_and(success_found_no_task) => Ok(Wake::Gone),
            Err(e) => Err(sdk_error("states", "SendTaskSuccess", e)),
        }
    }

    async fn send_task_failure_inner(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, AwsError> {
        let sent = self
            .client
            .send_task_failure()
            .task_token(task_token)
            .error(error)
            .cause(cause)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Wake::Delivered),
            Err(e) if e.as_service_error().is_some_and(failure_found_no_task) => Ok(Wake::Gone),
            Err(e) => Err(sdk_error("states", "SendTaskFailure", e)),
        }
    }
}

/// Whether `SendTaskSuccess` failed because no task waits on the token.
fn success_found_no_task(e: &SendTaskSuccessError) -> bool {
    matches!(
        e,
        SendTaskSuccessError::TaskDoesNotExist(_)
            | SendTaskSuccessError::TaskTimedOut(_)
            | SendTaskSuccessError::InvalidToken(_)
    )
}

/// Whether `SendTaskFailure` failed because no task waits on the token.
fn failure_found_no_task(e: &SendTaskFailureError) -> bool {
    matches!(
        e,
        SendTaskFailureError::TaskDoesNotExist(_)
            | SendTaskFailureError::TaskTimedOut(_)
            | SendTaskFailureError::InvalidToken(_)
    )
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

#[async_trait]
impl Callbacks for SfnCallbacks {
    async fn send_task_success(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, HandlerError> {
        self.send_task_success_inner(task_token, output)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, HandlerError> {
        self.send_task_failure_inner(task_token, error, cause)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::error::{InvalidOutput, InvalidToken, TaskDoesNotExist, TaskTimedOut};

    /// The three answers that mean "no task waits on this token" are Gone for both calls;
    /// anything else (a bad output, an unknown code) is an error. moto answers only
    /// `InvalidToken`, so the other two are checked on the SDK's own error values here.
    #[test]
    fn the_no_task_answers_are_gone_and_nothing_else_is() {
        let gone = [
            SendTaskSuccessError::TaskDoesNotExist(TaskDoesNotExist::builder().build()),
            SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().build()),
            SendTaskSuccessError::InvalidToken(InvalidToken::builder().build()),
        ];
        assert!(gone.iter().all(success_found_no_task));
        assert!(!success_found_no_task(
            &SendTaskSuccessError::InvalidOutput(InvalidOutput::builder().build())
        ));
        assert!(!success_found_no_task(&SendTaskSuccessError::unhandled(
            "ThrottlingException"
        )));
        let gone = [
            SendTaskFailureError::TaskDoesNotExist(TaskDoesNotExist::builder().build()),
            SendTaskFailureError::TaskTimedOut(TaskTimedOut::builder().build()),
            SendTaskFailureError::InvalidToken(InvalidToken::builder().build()),
        ];
        assert!(gone.iter().all(failure_found_no_task));
        assert!(!failure_found_no_task(&SendTaskFailureError::unhandled(
            "ServiceUnavailable"
        )));
    }
}
