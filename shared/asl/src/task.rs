//! Task states: one attempt (its timeouts, a callback task's token in `$$.Task.Token`,
//! Parameters, the call in [`crate::callback`], ResultPath, OutputPath, and its history events),
//! then Retry (the first matching Retrier, its backoff and jitter, billed as transitions) and
//! Catch (the first matching Catcher, whose ResultPath applies to the raw input). Terminal errors
//! (`States.Runtime`, `States.DataLimitExceeded`) skip both. Each attempt of a callback task gets
//! a new token.

use crate::callback::{Call, Limits, Outcome};
use crate::dataflow::{input_path, output_path, result_path};
use crate::definition::{Integration, TaskState};
use crate::error::StateError;
use crate::execute::{Halt, Run, StateCtx, Step};
use crate::history::HistoryEventKind;
use rand::Rng;
use serde_json::{json, Value};

impl Run<'_> {
    /// A Task state: attempts, Retry, Catch.
    pub(crate) async fn task(
        &mut self,
        task: &TaskState,
        raw: &Value,
        mut ctx: StateCtx<'_>,
    ) -> Result<Step, Halt> {
        let state_name = ctx.name;
        // InputPath failures are States.Runtime, which no Retry or Catch handles.
        let effective = input_path(&task.io, raw, &self.context(&ctx))?;
        let mut retries_used = vec![0u64; task.retry.len()];
        loop {
            let err = match self.attempt(task, raw, &effective, &ctx).await? {
                Ok(output) => return Ok(Step::after(&task.transition, output)),
                Err(err) if err.is_terminal() => return Err(err.into()),
                Err(err) => err,
            };
            // Only the first Retrier whose ErrorEquals matches applies; once it is exhausted the
            // error goes to Catch, even if a later Retrier would also match.
            if let Some(index) = task.retry.iter().position(|r| err.matches(&r.error_equals)) {
                let retrier = &task.retry[index];
                if retries_used[index] < retrier.max_attempts {
                    let base = retrier.base_delay(retries_used[index]);
                    let delay = if retrier.full_jitter {
                        rand::rng().random_range(0.0..=base)
                    } else {
                        base
                    };
                    retries_used[index] += 1;
                    ctx.retry_count += 1;
                    // Step Functions bills each retry as a state transition.
                    self.transitions += 1;
                    tracing::debug!(
                        execution = self.execution_name,
                        state = state_name,
                        error = err.error.as_str(),
                        attempt = retries_used[index],
                        delay_seconds = delay,
                        "retrying task"
                    );
                    self.record(
                        Some(state_name),
                        HistoryEventKind::RetryScheduled {
                            error: err.error.clone(),
                            retrier: index,
                            attempt: retries_used[index] as u32,
                            delay_seconds: delay,
                        },
                    )?;
                    self.sleep(delay).await?;
                    continue;
                }
            }
            if let Some((index, catcher)) = task
                .catch
                .iter()
                .enumerate()
                .find(|(_, c)| err.matches(&c.error_equals))
            {
                tracing::debug!(
                    execution = self.execution_name,
                    state = state_name,
                    error = err.error.as_str(),
                    next = catcher.next.as_str(),
                    "caught error"
                );
                let error_output = json!({"Error": err.error, "Cause": err.cause});
                // The Catcher's ResultPath applies to the state's raw input; OutputPath does not
                // apply on this path.
                let output = result_path(catcher.result_path.as_ref(), raw, error_output)?;
                self.record(
                    Some(state_name),
                    HistoryEventKind::CatchTaken {
                        error: err.error,
                        catcher: index,
                        next: catcher.next.clone(),
                    },
                )?;
                return Ok(Step::Next(catcher.next.clone(), output));
            }
            return Err(err.into());
        }
    }

    /// One attempt of a Task: its timeouts, its token (callback tasks), Parameters, the call,
    /// ResultPath, OutputPath. The outer `Result` stops the execution; the inner one is the
    /// state's error, subject to Retry and Catch.
    async fn attempt(
        &mut self,
        task: &TaskState,
        raw: &Value,
        effective: &Value,
        ctx: &StateCtx<'_>,
    ) -> Result<Result<Value, StateError>, Halt> {
        let state_name = ctx.name;
        let mut context = self.context(ctx);
        let limits = match Limits::resolve(task, effective, &context) {
            Ok(limits) => limits,
            Err(e) => return Ok(Err(e)),
        };
        // The token is open from here until the attempt ends, however it ends (dropping it
        // closes it), so the function may answer for it before its invoke returns.
        let token = task
            .integration
            .waits_for_task_token()
            .then(|| self.machine.task_tokens.issue());
        if let Some((open, _)) = &token {
            context["Task"] = json!({"Token": open.token()});
        }
        let parameters = match &task.parameters {
            Some(t) => match t.evaluate(effective, &context) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            },
            None => effective.clone(),
        };
        if let Err(e) = self.check_size("input", state_name, &parameters) {
            return Ok(Err(e));
        }
        let call = match Call::new(task, parameters.clone()) {
            Ok(call) => call,
            Err(e) => return Ok(Err(e)),
        };
        self.record(
            Some(state_name),
            HistoryEventKind::TaskScheduled {
                resource: task.resource.clone(),
                parameters,
                timeout_seconds: limits.timeout,
                heartbeat_seconds: limits.heartbeat,
            },
        )?;
        self.record(
            Some(state_name),
            HistoryEventKind::TaskStarted {
                resource: task.resource.clone(),
            },
        )?;
        tracing::debug!(
            execution = self.execution_name,
            state = state_name,
            resource = task.resource.as_str(),
            target = call.target.as_str(),
            retry_count = ctx.retry_count,
            "invoking task"
        );
        let started = self.clock.now();
        let outcome = self
            .call(task, state_name, call, &limits, started, token)
            .await?;
        match outcome {
            Outcome::Succeeded(result) => {
                self.record(
                    Some(state_name),
                    HistoryEventKind::TaskSucceeded {
                        output: result.clone(),
                    },
                )?;
                Ok(self.process_result(task, state_name, raw, result, &context))
            }
            Outcome::Failed(failure) => {
                self.record(
                    Some(state_name),
                    HistoryEventKind::TaskFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    },
                )?;
                Ok(Err(StateError::new(failure.error, failure.cause)))
            }
            Outcome::TimedOut(err) => {
                let (error, cause) = (err.error.clone(), err.cause.clone());
                // Step Functions records TaskTimedOut for its integrations; a plain resource
                // keeps the TaskFailed this interpreter has always recorded for it.
                let kind = match task.integration {
                    Integration::Resource => HistoryEventKind::TaskFailed { error, cause },
                    Integration::LambdaInvoke { .. } => {
                        HistoryEventKind::TaskTimedOut { error, cause }
                    }
                };
                self.record(Some(state_name), kind)?;
                Ok(Err(err))
            }
        }
    }

    fn process_result(
        &self,
        task: &TaskState,
        state_name: &str,
        raw: &Value,
        result: Value,
        context: &Value,
    ) -> Result<Value, StateError> {
        self.check_size("task result", state_name, &result)?;
        let output = result_path(task.result_path.as_ref(), raw, result)?;
        output_path(&task.io, output, context)
    }
}
