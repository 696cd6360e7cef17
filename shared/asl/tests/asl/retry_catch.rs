//! Retry (intervals, backoff, caps, jitter, retrier selection) and Catch (ResultPath, terminal
//! errors that cannot be caught).

use super::support::{clock, machine, FakeInvoker};
use runbridge_asl::{names, ExecutionStatus, HistoryEventKind, TaskFailure};
use serde_json::{json, Value};

fn flaky(failures: usize, error: &'static str) -> FakeInvoker {
    FakeInvoker::new(move |_, input, index| {
        if index < failures {
            Err(TaskFailure::new(error, format!("attempt {index} failed")))
        } else {
            Ok(json!({"ok": true, "seen": input}))
        }
    })
}

/// A machine of one Task named "Call"; when it has a Catch, its target "Handled" is added.
fn single_task(task: Value) -> Value {
    let mut definition = json!({"StartAt": "Call", "States": {"Call": task}});
    if definition["States"]["Call"].get("Catch").is_some() {
        definition["States"]["Handled"] = json!({"Type": "Succeed"});
    }
    definition
}

#[tokio::test]
async fn backoff_intervals_are_exact_without_jitter() {
    let sm = machine(json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "vendor",
                "Parameters": {"retry.$": "$$.State.RetryCount"},
                "Retry": [{
                    "ErrorEquals": ["Vendor.Throttled"],
                    "IntervalSeconds": 2,
                    "BackoffRate": 3,
                    "MaxAttempts": 4,
                    "JitterStrategy": "NONE"
                }],
                "End": true
            }
        }
    }));
    let tasks = flaky(4, "Vendor.Throttled");
    let clock = clock();
    let exec = sm.execute("retry", json!({}), &tasks, &clock).await;

    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    // 2, 2×3, 2×9, 2×27.
    assert_eq!(clock.sleeps(), vec![2.0, 6.0, 18.0, 54.0]);
    // $$.State.RetryCount counts the attempts.
    let retry_counts: Vec<Value> = tasks
        .calls()
        .iter()
        .map(|(_, i)| i["retry"].clone())
        .collect();
    assert_eq!(
        retry_counts,
        vec![json!(0), json!(1), json!(2), json!(3), json!(4)]
    );
    // One state entered plus four retries.
    assert_eq!(exec.transitions, 5);
    let retries: Vec<(u32, f64)> = exec
        .history
        .iter()
        .filter_map(|e| match e.kind {
            HistoryEventKind::RetryScheduled {
                attempt,
                delay_seconds,
                ..
            } => Some((attempt, delay_seconds)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![(1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0)]);
}

#[tokio::test]
async fn defaults_are_one_second_doubling_three_attempts() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "End": true
    })));
    let tasks = flaky(usize::MAX, "Boom");
    let clock = clock();
    let exec = sm.execute("defaults", json!({}), &tasks, &clock).await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Boom"));
    assert_eq!(exec.cause.as_deref(), Some("attempt 3 failed"));
    assert_eq!(tasks.calls().len(), 4);
    assert_eq!(clock.sleeps(), vec![1.0, 2.0, 4.0]);
}

#[tokio::test]
async fn max_attempts_zero_never_retries_and_only_the_first_matching_retrier_applies() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "Retry": [
            {"ErrorEquals": ["Fatal"], "MaxAttempts": 0},
            {"ErrorEquals": ["Flaky"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
        ],
        "End": true
    })));

    let fatal = flaky(usize::MAX, "Fatal");
    let clock1 = clock();
    let exec = sm.execute("fatal", json!({}), &fatal, &clock1).await;
    assert_eq!(exec.error.as_deref(), Some("Fatal"));
    assert_eq!(fatal.calls().len(), 1, "MaxAttempts 0 means no retry");
    assert!(clock1.sleeps().is_empty());

    // Once the "Flaky" retrier is exhausted the States.ALL retrier is not consulted.
    let flaky_vendor = flaky(usize::MAX, "Flaky");
    let exec = sm
        .execute("flaky", json!({}), &flaky_vendor, &clock())
        .await;
    assert_eq!(exec.error.as_deref(), Some("Flaky"));
    assert_eq!(flaky_vendor.calls().len(), 2);

    let other = flaky(usize::MAX, "Other");
    sm.execute("other", json!({}), &other, &clock()).await;
    assert_eq!(other.calls().len(), 6);
}

#[tokio::test]
async fn full_jitter_stays_within_the_computed_backoff() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "Retry": [{
            "ErrorEquals": ["States.TaskFailed"],
            "IntervalSeconds": 10,
            "MaxAttempts": 3,
            "JitterStrategy": "FULL"
        }],
        "End": true
    })));
    let clock = clock();
    let exec = sm
        .execute("jitter", json!({}), &flaky(3, "Boom"), &clock)
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let sleeps = clock.sleeps();
    assert!(sleeps.len() <= 3);
    let bounds = [10.0, 20.0, 40.0];
    for (slept, bound) in sleeps.iter().zip(bounds) {
        assert!((0.0..=bound).contains(slept), "{slept} outside 0..={bound}");
    }
}

#[tokio::test]
async fn catch_to_fail_state_with_error_and_cause_paths() {
    let sm = machine(json!({
        "StartAt": "Collect",
        "States": {
            "Collect": {
                "Type": "Task",
                "Resource": "collect",
                "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report"}],
                "Next": "Done"
            },
            "Report": {
                "Type": "Pass",
                "Parameters": {
                    "original.$": "$.run",
                    "message.$": "$.error.Cause"
                },
                "ResultPath": "$.report",
                "Next": "Failed"
            },
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.report.message"},
            "Done": {"Type": "Succeed"}
        }
    }));
    let tasks = flaky(usize::MAX, "Retryable");
    let clock = clock();
    let exec = sm
        .execute("catch", json!({"run": "r9"}), &tasks, &clock)
        .await;

    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Retryable"));
    assert_eq!(exec.cause.as_deref(), Some("attempt 2 failed"));
    assert_eq!(tasks.calls().len(), 3);
    assert_eq!(clock.sleeps(), vec![1.0, 2.0]);
    assert_eq!(
        exec.states_entered(),
        vec!["Collect", "Report", "Failed"],
        "Catch goes to its Next"
    );
    // Report saw the raw input with the error merged in at $.error.
    let report_input = exec
        .history
        .iter()
        .find_map(|e| match (&e.kind, e.state.as_deref()) {
            (HistoryEventKind::StateEntered { input, .. }, Some("Report")) => Some(input.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        report_input,
        json!({"run": "r9", "error": {"Error": "Retryable", "Cause": "attempt 2 failed"}})
    );
    // 3 states entered + 2 retries.
    assert_eq!(exec.transitions, 5);
}

#[tokio::test]
async fn catch_result_path_defaults_to_the_error_object_and_skips_output_path() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "OutputPath": "$.never",
        "Catch": [{"ErrorEquals": ["Boom"], "Next": "Handled"}],
        "End": true
    })));
    let exec = sm
        .execute("c", json!({"in": 1}), &flaky(1, "Boom"), &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        exec.output,
        Some(json!({"Error": "Boom", "Cause": "attempt 0 failed"}))
    );
}

#[tokio::test]
async fn catch_result_path_null_keeps_the_input() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": null, "Next": "Handled"}],
        "End": true
    })));
    let exec = sm
        .execute("c", json!({"in": 1}), &flaky(1, "Boom"), &clock())
        .await;
    assert_eq!(exec.output, Some(json!({"in": 1})));
}

#[tokio::test]
async fn unmatched_error_fails_the_execution() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "Catch": [{"ErrorEquals": ["Other"], "Next": "Handled"}],
        "End": true
    })));
    let exec = sm
        .execute("u", json!({}), &flaky(1, "Boom"), &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Boom"));
    assert!(exec.output.is_none());
}

#[tokio::test]
async fn states_runtime_is_neither_retried_nor_caught() {
    // OutputPath selects nothing after a successful task: States.Runtime, which States.ALL does
    // not match.
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "OutputPath": "$.missing",
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
        "End": true
    })));
    let tasks = flaky(0, "unused");
    let exec = sm.execute("rt", json!({}), &tasks, &clock()).await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::RUNTIME));
    assert!(exec.cause.unwrap().contains("$.missing"));
    assert_eq!(tasks.calls().len(), 1);
}

#[tokio::test]
async fn result_path_match_failure_is_catchable() {
    let sm = machine(single_task(json!({
        "Type": "Task",
        "Resource": "vendor",
        "ResultPath": "$.name.inner",
        "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": "$.err", "Next": "Handled"}],
        "End": true
    })));
    let exec = sm
        .execute(
            "rp",
            json!({"name": "a string"}),
            &flaky(0, "unused"),
            &clock(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output.unwrap()["err"]["Error"],
        json!(names::RESULT_PATH_MATCH_FAILURE)
    );
}
