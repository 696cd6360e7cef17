//! Input and output processing in spec order: InputPath → Parameters → task → ResultPath →
//! OutputPath, the context object, and the Pass state.

use super::support::{clock, machine, FakeInvoker};
use runbridge_asl::{names, ExecutionStatus, TaskFailure};
use serde_json::{json, Value};

fn echo() -> FakeInvoker {
    FakeInvoker::new(|_, input, _| Ok(input.clone()))
}

fn task_then_end(task: Value) -> Value {
    json!({"StartAt": "T", "States": {"T": task}})
}

#[tokio::test]
async fn parameters_resolve_paths_and_the_context_object() {
    let sm = machine(task_then_end(json!({
        "Type": "Task",
        "Resource": "poll",
        "InputPath": "$.run",
        "Parameters": {
            "execution.$": "$$.Execution.Name",
            "execution_id.$": "$$.Execution.Id",
            "started.$": "$$.Execution.StartTime",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
            "original.$": "$$.Execution.Input.note",
            "handle.$": "$.handle",
            "first_file.$": "$.files[0]['name']",
            "literal": "$.not.a.path",
            "nested": [{"id.$": "$.handle.id"}, 7]
        },
        "ResultPath": null,
        "End": true
    })))
    .with_name("runbridge");
    let tasks = echo();
    let input = json!({
        "note": "top",
        "run": {
            "handle": {"id": "h-1"},
            "files": [{"name": "a.csv"}]
        }
    });
    let exec = sm.execute("exec-42", input.clone(), &tasks, &clock()).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        tasks.inputs_to("poll"),
        vec![json!({
            "execution": "exec-42",
            "execution_id": "arn:aws:states:local:000000000000:execution:runbridge:exec-42",
            "started": "2024-05-01T12:00:00Z",
            "state": "T",
            "entered": "2024-05-01T12:00:00Z",
            "original": "top",
            "handle": {"id": "h-1"},
            "first_file": "a.csv",
            "literal": "$.not.a.path",
            "nested": [{"id": "h-1"}, 7]
        })]
    );
    // ResultPath null: the output is the raw input, untouched by InputPath.
    assert_eq!(exec.output, Some(input));
}

#[tokio::test]
async fn result_path_and_output_path_apply_in_order() {
    let sm = machine(task_then_end(json!({
        "Type": "Task",
        "Resource": "lambda",
        "ResultPath": "$.res.inner",
        "OutputPath": "$.res",
        "End": true
    })));
    let tasks = FakeInvoker::new(|_, _, _| Ok(json!({"value": "v", "code": 200})));
    let exec = sm
        .execute(
            "x",
            json!({"keep": true, "res": {"other": 1}}),
            &tasks,
            &clock(),
        )
        .await;
    assert_eq!(
        exec.output,
        Some(json!({"other": 1, "inner": {"value": "v", "code": 200}}))
    );
}

#[tokio::test]
async fn result_path_creates_missing_objects_and_dollar_replaces() {
    let sm = machine(json!({
        "StartAt": "Merge",
        "States": {
            "Merge": {"Type": "Task", "Resource": "r", "ResultPath": "$.a.b.c", "Next": "Replace"},
            "Replace": {"Type": "Task", "Resource": "r", "ResultPath": "$", "End": true}
        }
    }));
    let tasks = FakeInvoker::new(|_, _, i| Ok(json!({"call": i})));
    let exec = sm.execute("x", json!({"x": 1}), &tasks, &clock()).await;
    assert_eq!(exec.output, Some(json!({"call": 1})));
    assert_eq!(
        tasks.inputs_to("r")[1],
        json!({"x": 1, "a": {"b": {"c": {"call": 0}}}})
    );
}

#[tokio::test]
async fn null_input_and_output_paths_give_empty_objects() {
    let sm = machine(json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "r", "InputPath": null, "Next": "B"},
            "B": {"Type": "Pass", "OutputPath": null, "End": true}
        }
    }));
    let tasks = echo();
    let exec = sm
        .execute("x", json!({"big": "input"}), &tasks, &clock())
        .await;
    assert_eq!(tasks.inputs_to("r"), vec![json!({})]);
    assert_eq!(exec.output, Some(json!({})));
}

#[tokio::test]
async fn missing_input_path_is_states_runtime() {
    let sm = machine(json!({
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "InputPath": "$.absent",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}],
                "End": true
            },
            "Recover": {"Type": "Succeed"}
        }
    }));
    let tasks = echo();
    let exec = sm
        .execute("x", json!({"present": 1}), &tasks, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::RUNTIME));
    assert!(exec.cause.unwrap().contains("$.absent"));
    assert!(tasks.calls().is_empty(), "the task never runs");
}

#[tokio::test]
async fn missing_parameters_path_is_states_runtime_naming_the_field() {
    let sm = machine(json!({
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"param1.$": "$.missing"}, "End": true}}
    }));
    let exec = sm.execute("x", json!({"test": 1}), &echo(), &clock()).await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::RUNTIME));
    let cause = exec.cause.unwrap();
    assert!(
        cause.contains("'$.missing'") && cause.contains("'param1.$'"),
        "{cause}"
    );
}

#[tokio::test]
async fn pass_state_result_parameters_and_result_path() {
    let sm = machine(json!({
        "StartAt": "Inject",
        "States": {
            "Inject": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.injected", "Next": "Reshape"},
            "Reshape": {
                "Type": "Pass",
                "Parameters": {"n.$": "$.injected.n", "base.$": "$.base", "name.$": "$$.State.Name"},
                "ResultPath": "$.reshaped",
                "Next": "Select"
            },
            "Select": {"Type": "Pass", "InputPath": "$.reshaped", "End": true}
        }
    }));
    let exec = sm
        .execute("x", json!({"base": 41}), &echo(), &clock())
        .await;
    assert_eq!(
        exec.output,
        Some(json!({"n": 1, "base": 41, "name": "Reshape"}))
    );
    assert_eq!(exec.transitions, 3);
}

#[tokio::test]
async fn task_failure_details_reach_the_history_and_execution() {
    let sm = machine(task_then_end(
        json!({"Type": "Task", "Resource": "r", "End": true}),
    ));
    let tasks = FakeInvoker::new(|_, _, _| {
        Err(TaskFailure::new(
            "Vendor.Unauthorized",
            "{\"errorMessage\":\"token expired\"}",
        ))
    });
    let exec = sm.execute("x", json!({}), &tasks, &clock()).await;
    assert_eq!(exec.error.as_deref(), Some("Vendor.Unauthorized"));
    assert_eq!(
        exec.cause.as_deref(),
        Some("{\"errorMessage\":\"token expired\"}")
    );
}

#[tokio::test]
async fn oversized_payload_fails_with_data_limit_exceeded() {
    let sm = machine(json!({
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Succeed"}
        }
    }));
    let tasks = FakeInvoker::new(|_, _, _| Ok(json!({"blob": "x".repeat(300 * 1024)})));
    let exec = sm.execute("x", json!({}), &tasks, &clock()).await;
    assert_eq!(exec.status, ExecutionStatus::Failed, "not catchable");
    assert_eq!(exec.error.as_deref(), Some(names::DATA_LIMIT_EXCEEDED));
}

#[tokio::test]
async fn execute_future_is_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let sm = machine(task_then_end(
        json!({"Type": "Task", "Resource": "r", "End": true}),
    ));
    let tasks = echo();
    let clock = clock();
    let exec = assert_send(sm.execute("x", json!({"a": 1}), &tasks, &clock)).await;
    assert_eq!(exec.output, Some(json!({"a": 1})));
}
