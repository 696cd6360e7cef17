//! Callback tasks (`lambda:invoke.waitForTaskToken`): the function gets `$$.Task.Token`, the task
//! parks until `SendTaskSuccess`/`SendTaskFailure` arrives for that token (no transitions while
//! it waits), a token answers once and then reads as gone, and the task's `TimeoutSeconds`
//! (or `TimeoutSecondsPath`), its `HeartbeatSeconds`, a stop and the execution timeout all end
//! the wait. Time is tokio's, paused: it passes only while everything waits.

use super::support::{clock, machine, task_events, FakeInvoker, TokioClock, START};
use runbridge_asl::{
    names, ExecutionStatus, HistoryEventKind, SendTaskError, StopRequest, TaskFailure, TaskTokens,
};
use serde_json::{json, Value};
use std::time::Duration;

/// `Park` invokes `enqueue` with the handle and its token and waits; its answer lands in
/// `$.admitted`. `extra` adds fields to `Park`; a Catch goes to `Handled`.
fn park(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": "enqueue",
            "Payload": {"handle.$": "$.handle", "task_token.$": "$$.Task.Token"}
        },
        "ResultPath": "$.admitted",
        "Next": "Done"
    });
    for (k, v) in extra.as_object().unwrap() {
        task[k] = v.clone();
    }
    json!({
        "StartAt": "Park",
        "States": {
            "Park": task,
            "Done": {"Type": "Succeed"},
            "Handled": {"Type": "Succeed"}
        }
    })
}

/// A machine from [`park`] whose Catch (if any) is the only way to `Handled`; without one,
/// `Handled` is dropped so every state stays reachable.
fn parked_machine(extra: Value) -> runbridge_asl::StateMachine {
    let mut definition = park(extra);
    if definition["States"]["Park"].get("Catch").is_none() {
        definition["States"]
            .as_object_mut()
            .unwrap()
            .remove("Handled");
    }
    machine(definition)
}

/// The function behind `Park`: enqueues and returns at once.
fn enqueue() -> FakeInvoker {
    FakeInvoker::new(|_, _, _| Ok(json!({"queued": true})))
}

/// The token of the first task waiting that is not in `seen`, once there is one.
async fn next_waiting(tokens: &TaskTokens, seen: &[String]) -> String {
    loop {
        if let Some(token) = tokens.waiting().into_iter().find(|t| !seen.contains(t)) {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tokens the function was given, one per attempt.
fn tokens_given(tasks: &FakeInvoker) -> Vec<String> {
    tasks
        .inputs_to("enqueue")
        .iter()
        .map(|input| input["task_token"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_parked_task_waits_without_transitions_until_another_caller_sends_success() {
    let sm = parked_machine(json!({}));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    let waker = async {
        let token = next_waiting(&tokens, &[]).await;
        // Parked for an hour: no state entered, no retry, nothing billed.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(tokens.send_task_success(&token, json!({"slot": 3})), Ok(()));
        token
    };
    let clock = TokioClock::new();
    let (exec, token) = tokio::join!(
        sm.execute("parked", json!({"handle": {"key": "k1"}}), &tasks, &clock),
        waker
    );
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output,
        Some(json!({"handle": {"key": "k1"}, "admitted": {"slot": 3}}))
    );
    // The function got the payload with the task's token.
    assert_eq!(
        tasks.calls(),
        vec![(
            "enqueue".to_owned(),
            json!({"handle": {"key": "k1"}, "task_token": token})
        )]
    );
    assert_eq!(
        task_events(&exec, "Park"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "StateExited"
        ]
    );
    let submitted = exec
        .history
        .iter()
        .find_map(|e| match &e.kind {
            HistoryEventKind::TaskSubmitted { output } => Some(output.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(submitted["Payload"], json!({"queued": true}));
    assert_eq!(submitted["StatusCode"], 200);
    // Two states entered, however long the wait.
    assert_eq!(exec.transitions, 2);
    assert!((exec.stop_time - START).as_seconds_f64() >= 3600.0);
    // Delivered once; after that the token is gone, and other tokens never were.
    assert_eq!(
        tokens.send_task_success(&token, json!({"slot": 4})),
        Err(SendTaskError::TaskTimedOut)
    );
    assert_eq!(
        tokens.send_task_heartbeat(&token),
        Err(SendTaskError::TaskTimedOut)
    );
    assert_eq!(
        tokens.send_task_success("not-a-token", json!({})),
        Err(SendTaskError::InvalidToken)
    );
    let forged = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        tokens.send_task_failure(&forged, "E", "c"),
        Err(SendTaskError::TaskDoesNotExist)
    );
    assert!(tokens.waiting().is_empty());
}

#[tokio::test]
async fn the_function_may_answer_for_its_own_token_before_its_invoke_returns() {
    let sm = parked_machine(json!({"TimeoutSeconds": 60}));
    let tokens = sm.task_tokens().clone();
    let tasks = FakeInvoker::new(move |_, input, _| {
        let token = input["task_token"].as_str().unwrap();
        tokens.send_task_success(token, json!({"slot": 1})).unwrap();
        Ok(json!({"queued": false}))
    });
    // The answer is there before the task would park, so even virtual time that passes at once
    // does not time it out.
    let exec = sm
        .execute("admitted", json!({"handle": {}}), &tasks, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["admitted"],
        json!({"slot": 1})
    );
    // The task closed when the answer came: nothing was submitted to wait on.
    assert_eq!(
        task_events(&exec, "Park"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "StateExited"
        ]
    );
    assert_eq!(exec.transitions, 2);
}

#[tokio::test(start_paused = true)]
async fn send_task_failure_fails_the_task_for_retry_and_catch_and_each_attempt_has_its_own_token() {
    let sm = parked_machine(json!({
        "Retry": [{"ErrorEquals": ["Slot.Lost"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "Catch": [{"ErrorEquals": ["Slot.Refused"], "ResultPath": "$.error", "Next": "Handled"}]
    }));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    let waker = async {
        let first = next_waiting(&tokens, &[]).await;
        tokens
            .send_task_failure(&first, "Slot.Lost", "first")
            .unwrap();
        let second = next_waiting(&tokens, std::slice::from_ref(&first)).await;
        tokens
            .send_task_failure(&second, "Slot.Refused", "the vendor said no")
            .unwrap();
        vec![first, second]
    };
    let clock = TokioClock::new();
    let (exec, woken) = tokio::join!(
        sm.execute("refused", json!({"handle": {}}), &tasks, &clock),
        waker
    );
    assert_eq!(exec.states_entered(), vec!["Park", "Handled"], "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["error"],
        json!({"Error": "Slot.Refused", "Cause": "the vendor said no"})
    );
    assert_eq!(tokens_given(&tasks), woken);
    assert_ne!(woken[0], woken[1]);
    assert_eq!(
        task_events(&exec, "Park"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskFailed",
            "RetryScheduled",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskFailed",
            "CatchTaken",
            "StateExited"
        ]
    );
    // Two states entered and one retry.
    assert_eq!(exec.transitions, 3);
}

#[tokio::test]
async fn a_function_error_fails_the_task_with_its_error_type_and_closes_the_token() {
    let sm = parked_machine(json!({}));
    let tasks = FakeInvoker::new(|_, _, _| {
        Err(TaskFailure::new(
            "QueueUnavailable",
            r#"{"errorMessage":"no queue","errorType":"QueueUnavailable"}"#,
        ))
    });
    let exec = sm
        .execute("broken", json!({"handle": {}}), &tasks, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("QueueUnavailable"));
    assert_eq!(
        task_events(&exec, "Park"),
        vec!["StateEntered", "TaskScheduled", "TaskStarted", "TaskFailed"]
    );
    let token = &tokens_given(&tasks)[0];
    assert_eq!(
        sm.task_tokens().send_task_success(token, json!({})),
        Err(SendTaskError::TaskTimedOut)
    );
}

#[tokio::test(start_paused = true)]
async fn a_parked_task_times_out_after_its_timeout_seconds_path_and_a_retry_recovers_a_lost_wake_up(
) {
    let sm = parked_machine(json!({
        "TimeoutSecondsPath": "$.park_seconds",
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    }));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    // Nobody wakes the first attempt (its wake-up was lost); the retry's token is woken.
    let waker = async {
        let first = next_waiting(&tokens, &[]).await;
        let second = next_waiting(&tokens, std::slice::from_ref(&first)).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        tokens
            .send_task_success(&second, json!({"slot": 2}))
            .unwrap();
        first
    };
    let clock = TokioClock::new();
    let (exec, first) = tokio::join!(
        sm.execute(
            "lost",
            json!({"handle": {}, "park_seconds": 600}),
            &tasks,
            &clock
        ),
        waker
    );
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["admitted"],
        json!({"slot": 2})
    );
    assert_eq!(
        task_events(&exec, "Park"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskTimedOut",
            "RetryScheduled",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "StateExited"
        ]
    );
    let scheduled: Vec<Option<u64>> = exec
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            HistoryEventKind::TaskScheduled {
                timeout_seconds, ..
            } => Some(*timeout_seconds),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, vec![Some(600), Some(600)]);
    // 600 s parked, 1 s between attempts, 30 s parked.
    assert_eq!((exec.stop_time - START).as_seconds_f64().round(), 631.0);
    // The timed-out attempt's token answers gone.
    assert_eq!(
        tokens.send_task_success(&first, json!({})),
        Err(SendTaskError::TaskTimedOut)
    );
}

#[tokio::test(start_paused = true)]
async fn with_nobody_to_wake_it_a_parked_task_fails_states_timeout() {
    let sm = parked_machine(json!({"TimeoutSeconds": 300}));
    let tasks = enqueue();
    let exec = sm
        .execute(
            "forgotten",
            json!({"handle": {}}),
            &tasks,
            &TokioClock::new(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::TIMEOUT));
    assert_eq!((exec.stop_time - START).as_seconds_f64().round(), 300.0);
    let token = &tokens_given(&tasks)[0];
    assert_eq!(
        sm.task_tokens().send_task_success(token, json!({})),
        Err(SendTaskError::TaskTimedOut)
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_parked_task_alive_and_a_missed_one_is_a_heartbeat_timeout() {
    let sm = parked_machine(json!({
        "TimeoutSeconds": 3600,
        "HeartbeatSeconds": 60,
        "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "ResultPath": "$.error", "Next": "Handled"}]
    }));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    // Five beats 50 s apart carry the task past 60 s; then the answer.
    let beating = async {
        let token = next_waiting(&tokens, &[]).await;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            tokens.send_task_heartbeat(&token).unwrap();
        }
        tokens
            .send_task_success(&token, json!({"slot": 5}))
            .unwrap();
    };
    let clock = TokioClock::new();
    let (exec, ()) = tokio::join!(
        sm.execute("beating", json!({"handle": {}}), &tasks, &clock),
        beating
    );
    assert_eq!(exec.states_entered(), vec!["Park", "Done"], "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["admitted"],
        json!({"slot": 5})
    );
    // Heartbeats record nothing.
    assert_eq!(task_events(&exec, "Park").len(), 6);

    // Two beats, then silence: 60 s after the last one the task fails States.Timeout, which the
    // Catcher names as a heartbeat timeout.
    let tokens = sm.task_tokens().clone();
    let fading = async {
        let token = next_waiting(&tokens, &[]).await;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            tokens.send_task_heartbeat(&token).unwrap();
        }
    };
    let clock = TokioClock::new();
    let (exec, ()) = tokio::join!(
        sm.execute("fading", json!({"handle": {}}), &tasks, &clock),
        fading
    );
    assert_eq!(exec.states_entered(), vec!["Park", "Handled"], "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["error"]["Error"],
        names::TIMEOUT
    );
    assert_eq!((exec.stop_time - START).as_seconds_f64().round(), 160.0);
    assert!(task_events(&exec, "Park").contains(&"TaskTimedOut"));
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_catcher_does_not_catch_the_task_timeout() {
    let sm = parked_machine(json!({
        "TimeoutSeconds": 100,
        "HeartbeatSecondsPath": "$.beat_seconds",
        "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "ResultPath": "$.error", "Next": "Handled"}]
    }));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    let beating = async {
        let token = next_waiting(&tokens, &[]).await;
        while tokens.send_task_heartbeat(&token).is_ok() {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    };
    let clock = TokioClock::new();
    let (exec, ()) = tokio::join!(
        sm.execute(
            "slow",
            json!({"handle": {}, "beat_seconds": 60}),
            &tasks,
            &clock
        ),
        beating
    );
    assert_eq!(exec.status, ExecutionStatus::Failed, "{exec:?}");
    assert_eq!(exec.error.as_deref(), Some(names::TIMEOUT));
    assert_eq!((exec.stop_time - START).as_seconds_f64().round(), 100.0);
    let heartbeat = exec.history.iter().find_map(|e| match &e.kind {
        HistoryEventKind::TaskScheduled {
            heartbeat_seconds, ..
        } => *heartbeat_seconds,
        _ => None,
    });
    assert_eq!(heartbeat, Some(60));
}

#[tokio::test(start_paused = true)]
async fn stopping_a_parked_execution_aborts_it_and_its_token_answers_gone() {
    let sm = parked_machine(json!({}));
    let tasks = enqueue();
    let tokens = sm.task_tokens().clone();
    let stop = async {
        next_waiting(&tokens, &[]).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        StopRequest {
            error: Some("runbridge.Cancelled".into()),
            cause: Some("by an operator".into()),
        }
    };
    let exec = sm
        .execute_stoppable(
            "stopped",
            json!({"handle": {}}),
            &tasks,
            &TokioClock::new(),
            stop,
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Aborted, "{exec:?}");
    let token = &tokens_given(&tasks)[0];
    assert_eq!(
        tokens.send_task_success(token, json!({})),
        Err(SendTaskError::TaskTimedOut)
    );
    assert!(tokens.waiting().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_execution_timeout_ends_a_wait_and_closes_its_token() {
    let mut definition = park(json!({}));
    definition["TimeoutSeconds"] = json!(100);
    definition["States"]
        .as_object_mut()
        .unwrap()
        .remove("Handled");
    let sm = machine(definition);
    let tasks = enqueue();
    let exec = sm
        .execute("late", json!({"handle": {}}), &tasks, &TokioClock::new())
        .await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut, "{exec:?}");
    assert_eq!((exec.stop_time - START).as_seconds_f64().round(), 100.0);
    let token = &tokens_given(&tasks)[0];
    assert_eq!(
        sm.task_tokens().send_task_success(token, json!({})),
        Err(SendTaskError::TaskTimedOut)
    );
}

#[tokio::test]
async fn only_a_callback_task_has_a_token_and_a_bad_timeout_path_is_a_runtime_error() {
    let sm = machine(json!({
        "StartAt": "Plain",
        "States": {"Plain": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "Parameters": {"token.$": "$$.Task.Token"},
            "End": true
        }}
    }));
    let exec = sm
        .execute("no-token", json!({}), &enqueue(), &clock())
        .await;
    assert_eq!(exec.error.as_deref(), Some(names::RUNTIME), "{exec:?}");

    let sm = parked_machine(json!({"TimeoutSecondsPath": "$.park_seconds"}));
    for input in [
        json!({"handle": {}}),
        json!({"handle": {}, "park_seconds": 0}),
        json!({"handle": {}, "park_seconds": "soon"}),
    ] {
        let tasks = enqueue();
        let exec = sm.execute("bad", input.clone(), &tasks, &clock()).await;
        assert_eq!(exec.error.as_deref(), Some(names::RUNTIME), "{input}");
        assert!(tasks.calls().is_empty(), "nothing invoked for {input}");
        assert!(sm.task_tokens().waiting().is_empty());
    }
}

/// A function that answers for its own token, then keeps working and fails: the answer stands,
/// as Step Functions closed the task when it arrived.
struct AnswersThenFails {
    tokens: TaskTokens,
}

#[async_trait::async_trait]
impl runbridge_asl::TaskInvoker for AnswersThenFails {
    async fn invoke(&self, _: &str, input: Value) -> Result<Value, TaskFailure> {
        let token = input["task_token"].as_str().unwrap();
        self.tokens
            .send_task_success(token, json!({"slot": 9}))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        Err(TaskFailure::new("Late", "after answering"))
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_sent_during_the_invoke_stands_whatever_the_invoke_does_next() {
    let sm = parked_machine(json!({}));
    let tasks = AnswersThenFails {
        tokens: sm.task_tokens().clone(),
    };
    let exec = sm
        .execute(
            "answered",
            json!({"handle": {}}),
            &tasks,
            &TokioClock::new(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["admitted"],
        json!({"slot": 9})
    );
    assert_eq!(
        task_events(&exec, "Park"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "StateExited"
        ]
    );
}
