//! The product's shape: Wait → Poll Task → Choice loop until the fake vendor says done, plus the
//! history quota that stops a loop which never ends.

use super::support::{clock, machine, FakeInvoker};
use runbridge_asl::{names, ExecutionStatus, HistoryEventKind, TaskFailure};
use serde_json::{json, Value};

fn poll_loop() -> Value {
    json!({
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Poll"},
            "Poll": {
                "Type": "Task",
                "Resource": "poll",
                "Parameters": {"handle.$": "$.handle"},
                "Next": "Done?"
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "Collect"}],
                "Default": "Wait"
            },
            "Collect": {
                "Type": "Task",
                "Resource": "collect",
                "Parameters": {"handle.$": "$.handle"},
                "ResultPath": "$.result",
                "Next": "Finished"
            },
            "Finished": {"Type": "Succeed"}
        }
    })
}

/// Poll reports RUNNING `running` times, then done; each answer carries the next wait, which the
/// Wait state reads through SecondsPath.
fn vendor(running: usize, waits: Vec<u64>) -> FakeInvoker {
    FakeInvoker::new(move |resource, input, index| match resource {
        "poll" => {
            let done = index >= running;
            Ok(json!({
                "handle": input["handle"],
                "state": if done { "SUCCEEDED" } else { "RUNNING" },
                "done": done,
                "failed": false,
                "wait_seconds": waits.get(index).copied().unwrap_or(60),
                "reason": null
            }))
        }
        "collect" => Ok(json!({"files": 2, "run": input["handle"]["id"]})),
        other => Err(TaskFailure::new("Unknown", other)),
    })
}

#[tokio::test]
async fn polls_until_done_then_collects() {
    let sm = machine(poll_loop());
    let tasks = vendor(3, vec![30, 60, 120, 240]);
    let clock = clock();
    let exec = sm
        .execute(
            "run-1",
            json!({"handle": {"id": "r1"}, "wait_seconds": 15}),
            &tasks,
            &clock,
        )
        .await;

    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    // Three RUNNING answers and the final done one.
    assert_eq!(tasks.inputs_to("poll").len(), 4);
    assert_eq!(
        tasks.inputs_to("collect"),
        vec![json!({"handle": {"id": "r1"}})]
    );
    // The first wait comes from the execution input, the rest from each poll's answer.
    assert_eq!(clock.sleeps(), vec![15.0, 30.0, 60.0, 120.0]);
    assert_eq!(clock.total_slept(), 225.0);
    assert_eq!(exec.times_entered("Wait"), 4);
    // (Wait + Poll + Choice) × 4, then Collect and Finished.
    assert_eq!(exec.transitions, 14);
    let output = exec.output.unwrap();
    assert_eq!(output["result"], json!({"files": 2, "run": "r1"}));
    assert_eq!(output["done"], json!(true));
    assert_eq!(
        (exec.stop_time - exec.start_time).as_seconds_f64(),
        225.0,
        "execution time is virtual time"
    );
}

#[tokio::test]
async fn history_records_states_and_tasks_in_order() {
    let sm = machine(poll_loop());
    let tasks = vendor(0, vec![]);
    let exec = sm
        .execute(
            "run-2",
            json!({"handle": {"id": "r2"}, "wait_seconds": 1}),
            &tasks,
            &clock(),
        )
        .await;
    let kinds: Vec<(Option<&str>, &str)> = exec
        .history
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                HistoryEventKind::ExecutionStarted { .. } => "ExecutionStarted",
                HistoryEventKind::StateEntered { .. } => "StateEntered",
                HistoryEventKind::StateExited { .. } => "StateExited",
                HistoryEventKind::TaskScheduled { .. } => "TaskScheduled",
                HistoryEventKind::TaskStarted { .. } => "TaskStarted",
                HistoryEventKind::TaskSucceeded { .. } => "TaskSucceeded",
                HistoryEventKind::ExecutionSucceeded { .. } => "ExecutionSucceeded",
                other => panic!("unexpected event {other:?}"),
            };
            (e.state.as_deref(), kind)
        })
        .collect();
    assert_eq!(
        &kinds[..8],
        &[
            (None, "ExecutionStarted"),
            (Some("Wait"), "StateEntered"),
            (Some("Wait"), "StateExited"),
            (Some("Poll"), "StateEntered"),
            (Some("Poll"), "TaskScheduled"),
            (Some("Poll"), "TaskStarted"),
            (Some("Poll"), "TaskSucceeded"),
            (Some("Poll"), "StateExited"),
        ]
    );
    assert_eq!(kinds.last(), Some(&(None, "ExecutionSucceeded")));
    let ids: Vec<u64> = exec.history.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=exec.history.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn endless_loop_stops_at_the_history_quota() {
    let sm = machine(poll_loop());
    // Never done.
    let tasks = vendor(usize::MAX, vec![]);
    let clock = clock();
    let exec = sm
        .execute(
            "forever",
            json!({"handle": {"id": "r3"}, "wait_seconds": 1}),
            &tasks,
            &clock,
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::HISTORY_LIMIT_EXCEEDED));
    assert!(
        exec.cause.as_deref().unwrap().contains("25000"),
        "{:?}",
        exec.cause
    );
    assert_eq!(exec.history.len(), 25_000);
    assert!(matches!(
        exec.history.last().unwrap().kind,
        HistoryEventKind::ExecutionFailed { .. }
    ));
    // 9 AWS-equivalent events per iteration (Wait 2, Task 5, Choice 2) after ExecutionStarted.
    let polls = tasks.inputs_to("poll").len();
    assert!((2_770..=2_778).contains(&polls), "polled {polls} times");
}

#[tokio::test]
async fn history_quota_can_be_lowered_and_stops_a_pass_loop() {
    let sm = machine(json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Next": "A"}
        }
    }))
    .with_max_history_events(100);
    let exec = sm
        .execute(
            "loop",
            json!({}),
            &FakeInvoker::new(|_, _, _| Ok(json!({}))),
            &clock(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::HISTORY_LIMIT_EXCEEDED));
    assert_eq!(exec.history.len(), 100);
    // ExecutionStarted + 49 × (entered, exited) = 99 events; the 50th entry would leave no room
    // for ExecutionFailed, so it is refused and not billed.
    assert_eq!(exec.transitions, 49);
}
