//! The execution's `TimeoutSeconds`: measured on the WaitClock, bounding waits and retry
//! intervals, and (on the tokio clock) a task handler that never answers.

use super::support::{clock, machine, FakeInvoker, START};
use runbridge_asl::{
    names, ExecutionStatus, HistoryEventKind, InstantClock, TaskFailure, TaskInvoker,
};
use serde_json::{json, Value};
use std::time::Duration;

/// A handler that takes `seconds` of (tokio) time before answering.
struct Slow {
    seconds: u64,
}

#[async_trait::async_trait]
impl TaskInvoker for Slow {
    async fn invoke(&self, _resource: &str, input: Value) -> Result<Value, TaskFailure> {
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        Ok(input)
    }
}

fn slow_task() -> Value {
    json!({
        "StartAt": "Slow",
        "TimeoutSeconds": 5,
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "slow",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Succeed"}
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_execution_deadline_cuts_a_hung_task_short_and_no_catch_sees_it() {
    let sm = machine(slow_task());
    let exec = sm
        .execute("slow", json!({}), &Slow { seconds: 60 }, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut, "{exec:?}");
    assert_eq!(exec.error.as_deref(), Some(names::TIMEOUT));
    assert_eq!(exec.states_entered(), vec!["Slow"]);
}

#[tokio::test(start_paused = true)]
async fn a_task_within_the_execution_deadline_succeeds() {
    let sm = machine(slow_task());
    let exec = sm
        .execute("fast", json!({"a": 1}), &Slow { seconds: 4 }, &clock())
        .await;
    assert_eq!(exec.output, Some(json!({"a": 1})));
    assert_eq!(exec.states_entered(), vec!["Slow"]);
}

#[tokio::test]
async fn execution_timeout_is_measured_on_the_wait_clock() {
    let sm = machine(json!({
        "StartAt": "Wait",
        "TimeoutSeconds": 100,
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Poll"},
            "Poll": {"Type": "Task", "Resource": "poll", "Next": "Done?"},
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "Done"}],
                "Default": "Wait"
            },
            "Done": {"Type": "Succeed"}
        }
    }));
    let tasks = FakeInvoker::new(|_, _, _| Ok(json!({"done": false})));
    let clock = clock();
    let exec = sm.execute("late", json!({}), &tasks, &clock).await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
    assert_eq!(exec.error.as_deref(), Some(names::TIMEOUT));
    // Three full waits, then the fourth is cut off at the deadline.
    assert_eq!(clock.sleeps(), vec![30.0, 30.0, 30.0, 10.0]);
    assert_eq!(tasks.inputs_to("poll").len(), 3);
    assert!(matches!(
        exec.history.last().unwrap().kind,
        HistoryEventKind::ExecutionTimedOut { .. }
    ));
    assert_eq!((exec.stop_time - START).as_seconds_f64(), 100.0);
}

#[tokio::test]
async fn execution_timeout_cuts_a_retry_interval_short() {
    let sm = machine(json!({
        "StartAt": "T",
        "TimeoutSeconds": 10,
        "States": {"T": {"Type": "Task", "Resource": "r",
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 4, "MaxAttempts": 5}],
            "End": true}}
    }));
    let tasks = FakeInvoker::new(|_, _, _| Err(TaskFailure::new("Boom", "always")));
    let clock = clock();
    let exec = sm.execute("retry-late", json!({}), &tasks, &clock).await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
    // 4 s, then the 8 s interval is cut to the 6 s left.
    assert_eq!(clock.sleeps(), vec![4.0, 6.0]);
    assert_eq!(tasks.calls().len(), 2);
}

#[tokio::test]
async fn time_spent_elsewhere_counts_toward_the_execution_timeout() {
    // A handler that takes virtual time (as a simulator might) pushes the execution past its
    // deadline, noticed at the next state.
    struct Advancing<'a>(&'a InstantClock);
    #[async_trait::async_trait]
    impl TaskInvoker for Advancing<'_> {
        async fn invoke(&self, _: &str, input: Value) -> Result<Value, TaskFailure> {
            self.0.advance(50.0);
            Ok(input)
        }
    }
    let sm = machine(json!({
        "StartAt": "T",
        "TimeoutSeconds": 30,
        "States": {
            "T": {"Type": "Task", "Resource": "r", "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    }));
    let clock = clock();
    let exec = sm.execute("x", json!({}), &Advancing(&clock), &clock).await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
    assert_eq!(exec.states_entered(), vec!["T"]);
}

#[tokio::test]
async fn bad_seconds_path_value_is_states_runtime() {
    let sm = machine(json!({
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "SecondsPath": "$.wait", "End": true}}
    }));
    let tasks = FakeInvoker::new(|_, _, _| Ok(json!({})));
    for input in [json!({"wait": "ten"}), json!({"wait": -1}), json!({})] {
        let exec = sm.execute("w", input.clone(), &tasks, &clock()).await;
        assert_eq!(exec.error.as_deref(), Some(names::RUNTIME), "{input}");
    }
}

fn task_with_timeout(retry: bool) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "slow",
        "TimeoutSeconds": 10,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
        "End": true
    });
    if retry {
        task["Retry"] =
            json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2}]);
    }
    json!({
        "StartAt": "Slow",
        "States": {
            "Slow": task,
            "Caught": {"Type": "Pass", "End": true}
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_task_over_its_timeout_seconds_fails_with_states_timeout_which_catch_sees() {
    let sm = machine(task_with_timeout(false));
    let exec = sm
        .execute("hung", json!({}), &Slow { seconds: 3600 }, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    let output = exec.output.clone().unwrap();
    assert_eq!(output["error"]["Error"], names::TIMEOUT);
    assert!(output["error"]["Cause"]
        .as_str()
        .unwrap()
        .contains("10 seconds"));
    assert_eq!(exec.states_entered(), vec!["Slow", "Caught"]);
}

#[tokio::test(start_paused = true)]
async fn a_task_timeout_is_retried_like_any_error_and_a_fast_task_is_untouched() {
    let sm = machine(task_with_timeout(true));
    let exec = sm
        .execute("hung", json!({}), &Slow { seconds: 3600 }, &clock())
        .await;
    let attempts = exec
        .history
        .iter()
        .filter(|e| matches!(e.kind, HistoryEventKind::TaskScheduled { .. }))
        .count();
    assert_eq!(attempts, 3, "one attempt and two retries");
    let exec = sm
        .execute("fast", json!({"a": 1}), &Slow { seconds: 9 }, &clock())
        .await;
    assert_eq!(exec.output, Some(json!({"a": 1})));
}

/// `StopExecution`: a stop that arrives while a task is in flight ends the execution `Aborted`
/// with the stopper's error and cause, the task's later answer never counts, and the history
/// ends with `ExecutionAborted`.
#[tokio::test(start_paused = true)]
async fn a_stop_aborts_the_execution_wherever_it_is() {
    let sm = machine(slow_task());
    let stop = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        runbridge_asl::StopRequest {
            error: Some("runbridge.Cancelled".into()),
            cause: Some("by an operator".into()),
        }
    };
    let exec = sm
        .execute_stoppable("stopped", json!({}), &Slow { seconds: 4 }, &clock(), stop)
        .await;
    assert_eq!(exec.status, ExecutionStatus::Aborted, "{exec:?}");
    assert_eq!(exec.error.as_deref(), Some("runbridge.Cancelled"));
    assert_eq!(exec.cause.as_deref(), Some("by an operator"));
    assert_eq!(exec.output, None);
    assert!(matches!(
        exec.history.last().map(|e| &e.kind),
        Some(HistoryEventKind::ExecutionAborted { .. })
    ));
    // A stop that never comes changes nothing.
    let exec = sm
        .execute_stoppable(
            "not stopped",
            json!({"a": 1}),
            &Slow { seconds: 4 },
            &clock(),
            std::future::pending(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
}

/// `with_timeout_seconds` replaces the definition's execution timeout.
#[tokio::test(start_paused = true)]
async fn the_execution_timeout_can_be_replaced() {
    let sm = machine(slow_task()).with_timeout_seconds(Some(2));
    let exec = sm
        .execute("short", json!({}), &Slow { seconds: 4 }, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
    let sm = machine(slow_task()).with_timeout_seconds(None);
    let exec = sm
        .execute("none", json!({}), &Slow { seconds: 60 }, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
}
