//! Waking a parked execution through the `Executions` port, locally: a tiny definition whose
//! Task waits for a task token (`lambda:invoke.waitForTaskToken`), run by [`LocalExecutions`].
//! Another caller's `send_task_success` lets its output flow on, and a second send on the same
//! token answers `Gone`; a wait past its `TimeoutSeconds` fails `States.Timeout` and its token
//! answers `Gone`; a stop while parked ends the execution ABORTED. Time is tokio's, paused: it
//! passes only while everything waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runbridge_adapters_local::LocalExecutions;
use runbridge_asl::{names, ExecutionStatus, StateMachine, TaskFailure, TaskInvoker, WaitClock};
use runbridge_core::OffsetDateTime;
use runbridge_handlers::ports::{Callbacks, Executions, StartOutcome, Wake};
use serde_json::{json, Value};

const ENQUEUE: &str = "arn:aws:lambda:local:000000000000:function:enqueue";

/// Parks in `Park` until woken (or `$.park_seconds` pass); the news lands in `$.woken`.
fn definition() -> String {
    json!({
        "StartAt": "Park",
        "States": {
            "Park": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": ENQUEUE,
                    "Payload": {"n.$": "$.n", "task_token.$": "$$.Task.Token"}
                },
                "TimeoutSecondsPath": "$.park_seconds",
                "ResultPath": "$.woken",
                "Next": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    })
    .to_string()
}

/// The function behind `Park`: notes the token it was given (as a queue would) and returns.
#[derive(Default)]
struct Enqueue {
    tokens: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TaskInvoker for Enqueue {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        assert_eq!(resource, ENQUEUE);
        let token = input["task_token"].as_str().expect("a token").to_owned();
        self.tokens.lock().unwrap().push(token);
        Ok(json!({"queued": input["n"]}))
    }
}

impl Enqueue {
    /// The first token given out, once there is one.
    async fn first_token(&self) -> String {
        loop {
            if let Some(token) = self.tokens.lock().unwrap().first() {
                return token.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Wait states and parked tasks on tokio's clock.
struct TokioClock {
    origin: tokio::time::Instant,
    start: OffsetDateTime,
}

#[async_trait::async_trait]
impl WaitClock for TokioClock {
    async fn sleep(&self, seconds: f64) {
        if seconds > 0.0 && seconds.is_finite() {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        }
    }
    fn now(&self) -> OffsetDateTime {
        self.start + self.origin.elapsed()
    }
}

fn executions() -> (Arc<LocalExecutions>, Arc<Enqueue>) {
    let machine = StateMachine::from_json(&definition(), &HashMap::new()).unwrap();
    let enqueue = Arc::new(Enqueue::default());
    let clock = Arc::new(TokioClock {
        origin: tokio::time::Instant::now(),
        start: OffsetDateTime::UNIX_EPOCH,
    });
    let local = LocalExecutions::from_machine(machine, enqueue.clone(), clock);
    (Arc::new(local), enqueue)
}

#[tokio::test(start_paused = true)]
async fn another_caller_wakes_a_parked_execution_once() {
    let (local, enqueue) = executions();
    let input = json!({"n": 1, "park_seconds": 600});
    assert_eq!(
        local.start("woken", input).await.unwrap(),
        StartOutcome::Started
    );
    let token = enqueue.first_token().await;
    tokio::time::sleep(Duration::from_secs(30)).await;

    // Whoever frees a slot holds only the port.
    let waker: Arc<dyn Callbacks> = Arc::new(local.callbacks());
    assert_eq!(
        waker
            .send_task_success(&token, json!({"slot": 4}))
            .await
            .unwrap(),
        Wake::Delivered
    );
    let execution = local.wait("woken").await.unwrap();
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{execution:?}"
    );
    assert_eq!(
        execution.output,
        Some(json!({"n": 1, "park_seconds": 600, "woken": {"slot": 4}}))
    );
    // The token answered once; it is gone for a second waker, whatever it sends.
    assert_eq!(
        waker
            .send_task_success(&token, json!({"slot": 5}))
            .await
            .unwrap(),
        Wake::Gone
    );
    assert_eq!(
        waker
            .send_task_failure(&token, "Slot.Revoked", "too late")
            .await
            .unwrap(),
        Wake::Gone
    );
    assert_eq!(
        waker.send_task_success("made-up", json!({})).await.unwrap(),
        Wake::Gone
    );
}

#[tokio::test(start_paused = true)]
async fn a_parked_task_past_its_timeout_fails_states_timeout_and_its_token_is_gone() {
    let (local, enqueue) = executions();
    local
        .start("forgotten", json!({"n": 2, "park_seconds": 60}))
        .await
        .unwrap();
    let execution = local.wait("forgotten").await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Failed, "{execution:?}");
    assert_eq!(execution.error.as_deref(), Some(names::TIMEOUT));
    assert_eq!(
        (execution.stop_time - execution.start_time).as_seconds_f64(),
        60.0
    );
    let token = enqueue.first_token().await;
    assert_eq!(
        local
            .callbacks()
            .send_task_success(&token, json!({"slot": 1}))
            .await
            .unwrap(),
        Wake::Gone
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_a_parked_execution_ends_it_aborted_and_its_token_is_gone() {
    let (local, enqueue) = executions();
    local
        .start("stopped", json!({"n": 3, "park_seconds": 600}))
        .await
        .unwrap();
    let token = enqueue.first_token().await;
    assert!(local
        .stop(
            "stopped",
            Some("runbridge.Cancelled"),
            Some("by an operator")
        )
        .unwrap());
    let execution = local.wait("stopped").await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Aborted, "{execution:?}");
    assert_eq!(execution.error.as_deref(), Some("runbridge.Cancelled"));
    assert_eq!(
        local
            .callbacks()
            .send_task_success(&token, json!({}))
            .await
            .unwrap(),
        Wake::Gone
    );
    assert!(local.task_tokens().waiting().is_empty());
}
