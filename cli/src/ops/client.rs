//! [`Ops`]: the SDK clients of one deployed stack, and each AWS call the operator commands make
//! as one small function (so tests drive them against moto one by one). Ledger entries are read
//! through the ledger port ([`S3Ledger`]) as typed [`LedgerEntry`] values; execution documents
//! as typed [`StepDocument`]s.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::ExecutionStatus;
use runbridge_adapters_aws::env::AwsTimeouts;
use runbridge_adapters_aws::{AwsEnv, S3Ledger};
use runbridge_adapters_local::OPERATOR_STOP_ERROR;
use runbridge_core::{
    HandleRef, IdempotencyKey, LedgerEntry, Manifest, ResultLayout, RunHandle, RunOutcome,
};
use runbridge_handlers::ports::Ledger;
use serde::{Deserialize, Serialize};

use super::stack::{Stack, StackSelector};
use crate::exit::{CliError, Exit};

/// Where the operator commands connect: the stack (`--stack` or `RUNBRIDGE_STACK`) and the AWS
/// profile and region of the command line.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--stack NAME`.
    pub stack: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
}

mod ledger_keys;

/// The SDK clients of one stack.
#[derive(Debug, Clone)]
pub struct Ops {
    /// The resolved stack.
    pub stack: Stack,
    sqs: aws_sdk_sqs::Client,
    sfn: aws_sdk_sfn::Client,
    s3: aws_sdk_s3::Client,
}

/// One execution, as ListExecutions and DescribeExecution report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// Its name: the run key.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it stopped (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// The error it failed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The cause of that error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Its input document.
    #[serde(skip)]
    pub input: Option<String>,
    /// Its output document (a finished execution).
    #[serde(skip)]
    pub output: Option<String>,
    /// Start time.
    #[serde(skip)]
    pub started: time::OffsetDateTime,
}

/// One message received from the dead-letter queue (invisible to others for a while).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The SQS message id.
    pub message_id: String,
    /// The handle that deletes it.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// The trigger's `runbridge-error` attribute, when it put the message there itself.
    pub rejected_reason: Option<String>,
    /// Who caused that error (`runbridge-error-attribution`: `customer`, `platform`), as the
    /// manifest, event and metric of the same failure say.
    pub attribution: Option<String>,
    /// When the message was first sent (`SentTimestamp`).
    pub sent_at: Option<time::OffsetDateTime>,
}

/// What `status` reads from a state's input or output: the run's handle reference, and the wait
/// before the next step (the execution input, a poll's or an admission's answer). Other fields
/// are the steps' own business.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepDocument {
    /// The run as the execution knows it.
    pub handle: HandleRef,
    /// Seconds until the next poll (or admission attempt).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// The latest state-machine document of an execution that carries a handle, and when it was
/// produced.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestStep {
    /// The document.
    pub step: StepDocument,
    /// When it was produced.
    pub at: time::OffsetDateTime,
}

/// Maps an SDK error to an AWS error, or to "not found" for the given codes.
pub fn sdk_error<E, R>(operation: &str, not_found: &[&str], err: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::TimeoutError(_) = &err {
        // The SDK's own text ("timeout error") does not say which bound fired or what to try.
        return CliError::aws(format!(
            "{operation} timed out: no answer from AWS within the operation timeout ({})",
            DisplayErrorContext(&err)
        ));
    }
    let code = err.code().map(str::to_owned);
    if code.as_deref().is_some_and(|c| not_found.contains(&c)) {
        return CliError::not_found(format!(
            "{operation}: {}",
            err.message().unwrap_or("does not exist")
        ));
    }
    let detail = match (&code, err.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => DisplayErrorContext(&err).to_string(),
    };
    CliError::aws(format!("{operation} failed: {detail}"))
}

fn rfc3339(t: &aws_sdk_sfn::primitives::DateTime) -> String {
    t.fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

/// An SDK time as a `time` value (to the nanosecond).
pub fn to_time(t: &aws_sdk_sfn::primitives::DateTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The SDK configuration from the standard chain, with `--profile` and `--region` applied and
/// every call bounded by the functions' [`AwsTimeouts`].
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> SdkConfig {
    sdk_config_within(profile, region, AwsTimeouts::default()).await
}

/// [`sdk_config`] with every call bounded by `timeouts` (connect, attempt, operation).
pub async fn sdk_config_within(
    profile: Option<&str>,
    region: Option<&str>,
    timeouts: AwsTimeouts,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(runbridge_adapters_aws::env::https_client())
        .timeout_config(timeouts.config());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// The outputs of CloudFormation stack `name`.
pub async fn stack_outputs(
    sdk: &SdkConfig,
    name: &str,
) -> Result<BTreeMap<String, String>, CliError> {
    let out = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            // CloudFormation answers a missing stack with a ValidationError "does not exist".
            let missing = e.message().is_some_and(|m| m.contains("does not exist"));
            if missing {
                CliError::not_found(format!("stack {name} does not exist"))
            } else {
                sdk_error("cloudformation DescribeStacks", &[], e)
            }
        })?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| CliError::not_found(format!("stack {name} does not exist")))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

impl Ops {
    /// Clients for the stack `target` names, with the SDK configuration of its profile and region.
    pub async fn connect_to(target: &Target) -> Result<Self, CliError> {
        let sdk = sdk_config(target.profile.as_deref(), target.region.as_deref()).await;
        Self::connect(&sdk, &StackSelector::from_env(target.stack.clone())).await
    }

    /// Clients for the stack `selector` names, on `sdk`.
    pub async fn connect(sdk: &SdkConfig, selector: &StackSelector) -> Result<Self, CliError> {
        let outputs = match &selector.stack {
            Some(name) => stack_outputs(sdk, name).await?,
            None => BTreeMap::new(),
        };
        let stack = Stack::new(selector.stack.clone(), outputs, &selector.vars);
        Ok(Self::new(sdk, stack))
    }

    /// Clients for an already resolved stack.
    pub fn new(sdk: &SdkConfig, stack: Stack) -> Self {
        // AwsEnv decides path-style S3 addressing for an emulator endpoint, as the functions do.
        let env = AwsEnv::new(sdk.clone(), std::env::vars());
        Self {
            stack,
            sqs: aws_sdk_sqs::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            s3: env.s3_client(),
        }
    }

    /// Sends one request document to the request queue; returns the message id.
    pub async fn send_request(&self, body: &str) -> Result<String, CliError> {
        let out = self
            .sqs
            .send_message()
            .queue_url(self.stack.queue_url()?)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    "sqs SendMessage",
                    &[
                        "AWS.SimpleQueueService.NonExistentQueue",
                        "QueueDoesNotExist",
                    ],
                    e,
                )
            })?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    /// Receives up to `max` dead letters. They stay invisible for five minutes, then return to
    /// the queue unless deleted, so a dry run changes nothing for long.
    pub async fn receive_dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, CliError> {
        let url = self.stack.get("RunRequestDeadLetterQueueUrl")?.to_owned();
        let mut out = Vec::new();
        while out.len() < max {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages((max - out.len()).min(10) as i32)
                .visibility_timeout(300)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
                )
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        "sqs ReceiveMessage",
                        &["AWS.SimpleQueueService.NonExistentQueue"],
                        e,
                    )
                })?;
            let messages = batch.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let attribute = |name: &str| {
                    m.message_attributes()
                        .and_then(|a| a.get(name))
                        .and_then(|v| v.string_value())
                        .map(str::to_owned)
                };
                let rejected_reason = attribute(runbridge_adapters_aws::ATTR_ERROR);
                let attribution = attribute(runbridge_adapters_aws::ATTR_ATTRIBUTION);
                let sent_at = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)
                    })
                    .and_then(|v| v.parse::<i128>().ok())
                    .and_then(|ms| {
                        time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
                    });
                out.push(DeadLetter {
                    sent_at,
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    rejected_reason,
                    attribution,
                });
            }
        }
        Ok(out)
    }

    /// Deletes a dead letter (after its request was resent).
    pub async fn delete_dead_letter(&self, receipt_handle: &str) -> Result<(), CliError> {
        self.sqs
            .delete_message()
            .queue_url(self.stack.get("RunRequestDeadLetterQueueUrl")?)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sdk_error("sqs DeleteMessage", &[], e))?;
        Ok(())
    }

    /// The execution ARN of run `key` (`arn:…:stateMachine:M` → `arn:…:execution:M:key`).
    pub fn execution_arn(&self, key: &str) -> Result<String, CliError> {
        Ok(format!(
            "{}:{key}",
            self.stack
                .state_machine_arn()?
                .replacen(":stateMachine:", ":execution:", 1)
        ))
    }

    /// The execution of run `key`, `None` when there is none.
    pub async fn describe_execution(&self, key: &str) -> Result<Option<Execution>, CliError> {
        let arn = self.execution_arn(key)?;
        let out = match self
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let error = sdk_error("states DescribeExecution", &["ExecutionDoesNotExist"], e);
                return match error.exit {
                    Exit::NotFound => Ok(None),
                    _ => Err(error),
                };
            }
        };
        Ok(Some(Execution {
            name: out.name().unwrap_or(key).to_owned(),
            arn,
            status: out.status().as_str().to_owned(),
            started_at: rfc3339(out.start_date()),
            stopped_at: out.stop_date().map(rfc3339),
            error: out.error().map(str::to_owned).filter(|s| !s.is_empty()),
            cause: out.cause().map(str::to_owned).filter(|s| !s.is_empty()),
            input: out.input().map(str::to_owned),
            output: out.output().map(str::to_owned),
            started: to_time(out.start_date()),
        }))
    }

    /// The latest document of the execution that carries a run handle: the last step's answer
    /// in its history, else its input (nothing answered yet, or a history that cannot be read).
    /// `None` when neither carries one.
    pub async fn latest_step(&self, execution: &Execution) -> Option<LatestStep> {
        if let Some(latest) = self.latest_step_in_history(&execution.arn).await {
            return Some(latest);
        }
        let step = serde_json::from_str(execution.input.as_deref()?).ok()?;
        Some(LatestStep {
            step,
            at: execution.started,
        })
    }

    async fn latest_step_in_history(&self, arn: &str) -> Option<LatestStep> {
        let out = self
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(100)
            .include_execution_data(true)
            .send()
            .await
            .ok()?;
        out.events().iter().find_map(|event| {
            let text = event
                .state_exited_event_details()
                .and_then(|d| d.output())
                .or_else(|| {
                    event
                        .lambda_function_succeeded_event_details()
                        .and_then(|d| d.output())
                })
                .or_else(|| {
                    event
                        .execution_started_event_details()
                        .and_then(|d| d.input())
                })?;
            Some(LatestStep {
                step: serde_json::from_str(text).ok()?,
                at: to_time(event.timestamp()),
            })
        })
    }

    /// Executions of the state machine, newest first, optionally of one status, stopping at the
    /// first one started before `since_epoch`.
    pub async fn list_executions(
        &self,
        status: Option<ExecutionStatus>,
        since_epoch: Option<i64>,
    ) -> Result<Vec<Execution>, CliError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sfn
                .list_executions()
                .state_machine_arn(self.stack.state_machine_arn()?)
                .set_status_filter(status.clone())
                .set_next_token(token.clone())
                .max_results(1000)
                .send()
                .await
                .map_err(|e| {
                    sdk_error("states ListExecutions", &["StateMachineDoesNotExist"], e)
                })?;
            let mut older = false;
            for e in out.executions() {
                if since_epoch.is_some_and(|s| e.start_date().secs() < s) {
                    older = true;
                    continue;
                }
                all.push(Execution {
                    name: e.name().to_owned(),
                    arn: e.execution_arn().to_owned(),
                    status: e.status().as_str().to_owned(),
                    started_at: rfc3339(e.start_date()),
                    stopped_at: e.stop_date().map(rfc3339),
                    error: None,
                    cause: None,
                    input: None,
                    output: None,
                    started: to_time(e.start_date()),
                });
            }
            token = out.next_token().map(str::to_owned);
            // ListExecutions answers newest first: past `since`, later pages are older still.
            if token.is_none() || older {
                break;
            }
        }
        Ok(all)
    }

    /// Stops execution `arn` with an operator's error and cause.
    pub async fn stop_execution(&self, arn: &str, cause: &str) -> Result<(), CliError> {
        self.sfn
            .stop_execution()
            .execution_arn(arn)
            .error(OPERATOR_STOP_ERROR)
            .cause(cause)
            .send()
            .await
            .map_err(|e| sdk_error("states StopExecution", &["ExecutionDoesNotExist"], e))?;
        Ok(())
    }

    /// The ledger, through its port: the adapter the functions use, so the CLI reads entries
    /// exactly as they do.
    fn ledger(&self) -> Result<S3Ledger, CliError> {
        Ok(S3Ledger::new(
            self.s3.clone(),
            self.stack.bucket()?,
            &self.stack.ledger_prefix(),
        ))
    }

    /// The object key of run `key`'s ledger entry.
    pub fn ledger_object_key(&self, key: &str) -> String {
        S3Ledger::new(
            self.s3.clone(),
            self.stack.bucket().unwrap_or_default(),
            &self.stack.ledger_prefix(),
        )
        .object_key(key)
    }

    /// A small object of the results bucket, `None` when absent.
    pub async fn get_object(&self, object_key: &str) -> Result<Option<Vec<u8>>, CliError> {
        let out = self
            .s3
            .get_object()
            .bucket(self.stack.bucket()?)
            .key(object_key)
            .send()
            .await;
        match out {
            Ok(out) => {
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| CliError::aws(format!("s3 GetObject {object_key}: {e}")))?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) => {
                let error = sdk_error("s3 GetObject", &["NoSuchKey", "NotFound"], e);
                match error.exit {
                    Exit::NotFound => Ok(None),
                    _ => Err(error),
                }
            }
        }
    }

    /// Run `key`'s ledger entry, `None` when the key was never claimed.
    pub async fn ledger_entry(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<LedgerEntry>, CliError> {
        self.ledger()?
            .get(key)
            .await
            .map_err(|e| CliError::aws(format!("reading the ledger entry of {key}: {e}")))
    }

    /// The outcome of the run `handle` names, once its manifest exists.
    pub async fn manifest(&self, handle: &RunHandle) -> Result<Option<RunOutcome>, CliError> {
        let layout = ResultLayout::new(self.stack.results_prefix())
            .map_err(|e| CliError::invalid(format!("results prefix: {e}")))?;
        let manifest_key = layout.paths(handle).manifest();
        let Some(bytes) = self.get_object(&manifest_key).await? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| CliError::aws(format!("manifest {manifest_key} is unreadable: {e}")))?;
        // A manifest is the end of the vendor run it names: the one there may be a refused
        // submit's, which the run of the corrected resend (same key) replaces when it ends.
        if manifest.vendor_run_id != handle.vendor_run_id_or_empty() {
            return Ok(None);
        }
        Ok(Some(RunOutcome::of(&manifest, manifest_key)))
    }

    /// The latest announced ending of `key`, found from the key alone (its announcement record
    /// names the manifest): what is left of a key whose claim was released because the vendor
    /// refused its submit. `None` when nothing was announced.
    pub async fn announced_ending(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<RunOutcome>, CliError> {
        let layout = ResultLayout::new(self.stack.results_prefix())
            .map_err(|e| CliError::invalid(format!("results prefix: {e}")))?;
        let record_key = format!(
            "{}{}",
            layout.marker_prefix(key),
            runbridge_core::ANNOUNCED_NAME
        );
        let Some(record) = self.get_object(&record_key).await? else {
            return Ok(None);
        };
        let manifest_key = serde_json::from_slice::<serde_json::Value>(&record)
            .ok()
            .and_then(|r| r["manifest_key"].as_str().map(str::to_owned));
        let Some(manifest_key) = manifest_key else {
            return Ok(None);
        };
        let Some(bytes) = self.get_object(&manifest_key).await? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| CliError::aws(format!("manifest {manifest_key} is unreadable: {e}")))?;
        Ok(Some(RunOutcome::of(&manifest, manifest_key)))
    }
}
