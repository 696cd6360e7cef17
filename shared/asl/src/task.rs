//! Task states: one attempt (Parameters, the [`TaskInvoker`](crate::TaskInvoker) call bounded by
//! the execution deadline, ResultPath, OutputPath), then Retry (the first matching Retrier, its
//! backoff and jitter, billed as transitions) and Catch (the first matching Catcher, whose
//! ResultPath applies to the raw input). Terminal errors (`States.Runtime`,
//! `States.DataLimitExceeded`) skip both.

use crate::dataflow::{input_path, output_path, result_path};
use crate::definition::{error_matches, TaskState};
use crate::error::StateError;
use crate::execute::{Halt, Run, StateCtx, Step};
use crate::history::HistoryEventKind;
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

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
            if let Some(index) = task
                .retry
                .iter()
                .position(|r| error_matches(&r.error_equals, &err.error))
            {
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
                .find(|(_, c)| error_matches(&c.error_equals, &err.error))
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

    /// One attempt of a Task: Parameters, invoke (bounded by the execution deadline), ResultPath,
    /// OutputPath. The outer `Result` stops the execution; the inner one is the state's error,
    /// subject to Retry and Catch.
    async fn attempt(
        &mut self,
        task: &TaskState,
        raw: &Value,
        effective: &Value,
        ctx: &StateCtx<'_>,
    ) -> Result<Result<Value, StateError>, Halt> {
        let state_name = ctx.name;
        let context = self.context(ctx);
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
        self.record(
            Some(state_name),
            HistoryEventKind::TaskScheduled {
                resource: task.resource.clone(),
                parameters: parameters.clone(),
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
            retry_count = ctx.retry_count,
            "invoking task"
        );
        // The execution deadline is kept on the WaitClock; it also bounds the call (in tokio
        // time) so a hung handler cannot outlive the execution.
        let call = self.tasks.invoke(&task.resource, parameters);
        // The Task's own TimeoutSeconds: an attempt over it is a state error (States.Timeout).
        let call = async {
            match task.timeout_seconds {
                None => call.await,
                Some(limit) => tokio::time::timeout(Duration::from_secs(limit), call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(crate::TaskFailure::new(
                            crate::names::TIMEOUT,
                            format!("Task timed out after {limit} seconds"),
                        ))
                    }),
            }
        };
        let outcome = match self.remaining() {
            None => Some(call.await),
            Some(seconds) => tokio::time::timeout(Duration::from_secs_f64(seconds.max(0.0)), call)
                .await
                .ok(),
        };
        let result = match outcome {
            Some(Ok(result)) => result,
            Some(Err(failure)) => {
                self.record(
                    Some(state_name),
                    HistoryEventKind::TaskFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    },
                )?;
                return Ok(Err(StateError::new(failure.error, failure.cause)));
            }
            None => return Err(self.timed_out()),
        };
        self.record(
            Some(state_name),
            HistoryEventKind::TaskSucceeded {
                output: result.clone(),
            },
        )?;
        Ok(self.process_result(task, state_name, raw, result, &context))
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
