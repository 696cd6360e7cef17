//! The optimized Lambda integration (`arn:aws:states:::lambda:invoke`): the invoker gets the
//! function and the payload, the result is the Invoke response, a function error fails the task
//! with the function's error type; and what the strict parse accepts and rejects of it and of the
//! Task timeouts.

use super::support::{clock, machine, task_events, FakeInvoker};
use runbridge_asl::{names, DefinitionError, ExecutionStatus, StateMachine, TaskFailure};
use serde_json::{json, Value};
use std::collections::HashMap;

const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:runbridge-poll";

fn invoke(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {"step": "poll", "handle.$": "$.handle"}
        },
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        task[k] = v.clone();
    }
    let mut definition = json!({"StartAt": "Invoke", "States": {"Invoke": task}});
    if definition["States"]["Invoke"].get("Catch").is_some() {
        definition["States"]["Handled"] = json!({"Type": "Succeed"});
    }
    definition
}

fn load(definition: Value) -> Result<StateMachine, DefinitionError> {
    StateMachine::from_json(&definition.to_string(), &HashMap::new())
}

#[tokio::test]
async fn the_function_gets_its_payload_and_the_result_is_the_invoke_response() {
    let sm = machine(invoke(json!({})));
    let tasks = FakeInvoker::new(|_, input, _| Ok(json!({"seen": input})));
    let exec = sm
        .execute("invoke", json!({"handle": {"id": 7}}), &tasks, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        tasks.calls(),
        vec![(
            FUNCTION.to_string(),
            json!({"step": "poll", "handle": {"id": 7}})
        )]
    );
    let output = exec.output.clone().unwrap();
    assert_eq!(
        output["Payload"],
        json!({"seen": {"step": "poll", "handle": {"id": 7}}})
    );
    assert_eq!(output["StatusCode"], 200);
    assert_eq!(output["ExecutedVersion"], "$LATEST");
    assert_eq!(output["SdkHttpMetadata"]["HttpStatusCode"], 200);
    assert!(output["SdkResponseMetadata"]["RequestId"].is_string());
    // A request-response task: nothing is submitted, and one transition per state.
    assert_eq!(
        task_events(&exec, "Invoke"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "StateExited"
        ]
    );
    assert_eq!(exec.transitions, 1);
}

#[tokio::test]
async fn a_dynamic_function_name_and_a_missing_payload_are_honoured() {
    let sm = machine(json!({
        "StartAt": "Invoke",
        "States": {"Invoke": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName.$": "$.function"},
            "OutputPath": "$.Payload",
            "End": true
        }}
    }));
    let tasks = FakeInvoker::new(|resource, input, _| Ok(json!({"to": resource, "got": input})));
    let exec = sm
        .execute("dynamic", json!({"function": "collect"}), &tasks, &clock())
        .await;
    assert_eq!(exec.output, Some(json!({"to": "collect", "got": {}})));

    // A FunctionName that is not a string is a runtime error.
    let exec = sm
        .execute("bad", json!({"function": 3}), &tasks, &clock())
        .await;
    assert_eq!(exec.error.as_deref(), Some(names::RUNTIME), "{exec:?}");
}

#[tokio::test]
async fn a_function_error_fails_the_task_with_its_error_type_for_retry_and_catch() {
    let sm = machine(invoke(json!({
        "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "Catch": [{"ErrorEquals": ["VendorDown"], "ResultPath": "$.error", "Next": "Handled"}]
    })));
    let tasks = FakeInvoker::new(|_, _, index| {
        Err(match index {
            0 => TaskFailure::new("Retryable", r#"{"errorMessage":"try again"}"#),
            _ => TaskFailure::new("VendorDown", r#"{"errorMessage":"down"}"#),
        })
    });
    let exec = sm
        .execute("fails", json!({"handle": {}}), &tasks, &clock())
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["error"],
        json!({"Error": "VendorDown", "Cause": r#"{"errorMessage":"down"}"#})
    );
    assert_eq!(
        task_events(&exec, "Invoke"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "RetryScheduled",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "CatchTaken",
            "StateExited"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_integration_timeout_records_task_timed_out() {
    struct Hung;
    #[async_trait::async_trait]
    impl runbridge_asl::TaskInvoker for Hung {
        async fn invoke(&self, _: &str, _: Value) -> Result<Value, TaskFailure> {
            std::future::pending().await
        }
    }
    let sm = machine(invoke(json!({"TimeoutSeconds": 5})));
    let exec = sm
        .execute("hung", json!({"handle": {}}), &Hung, &clock())
        .await;
    assert_eq!(exec.error.as_deref(), Some(names::TIMEOUT), "{exec:?}");
    assert_eq!(
        task_events(&exec, "Invoke"),
        vec![
            "StateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskTimedOut"
        ]
    );
}

#[test]
fn plain_resources_stay_plain_and_only_lambda_invoke_is_an_integration() {
    for resource in [
        FUNCTION,
        "arn:aws:states:us-east-1:123456789012:activity:review",
        "anything",
    ] {
        let definition = json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": resource, "End": true
        }}});
        assert!(load(definition).is_ok(), "{resource}");
    }
    for resource in [
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "arn:aws:states:::lambda:invoke.sync",
        "arn:aws:states:::states:startExecution",
    ] {
        let mut definition = invoke(json!({}));
        definition["States"]["Invoke"]["Resource"] = json!(resource);
        let err = load(definition).expect_err(resource);
        assert!(
            matches!(&err, DefinitionError::Unsupported { feature, .. } if feature.contains("service integration")),
            "{resource}: {err}"
        );
    }
}

#[test]
fn the_invoker_answers_to_the_function_a_lambda_integration_names() {
    let mut definition = invoke(json!({"Next": "Dynamic"}));
    definition["States"]["Invoke"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    definition["States"]["Dynamic"] = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName.$": "$.function"},
        "Next": "Plain"
    });
    definition["States"]["Plain"] = json!({"Type": "Task", "Resource": "collect", "End": true});
    assert_eq!(
        machine(definition).task_resources(),
        vec![FUNCTION, "collect"]
    );
}

#[test]
fn lambda_invoke_takes_a_function_name_and_a_payload_only() {
    let mut definition = invoke(json!({}));
    definition["States"]["Invoke"]["Parameters"]["Qualifier"] = json!("prod");
    let err = load(definition).unwrap_err();
    assert!(
        matches!(&err, DefinitionError::Unsupported { .. })
            && err.to_string().contains("Qualifier"),
        "{err}"
    );

    let mut definition = invoke(json!({}));
    definition["States"]["Invoke"]["Parameters"]
        .as_object_mut()
        .unwrap()
        .remove("FunctionName");
    let err = load(definition).unwrap_err();
    assert!(err.to_string().contains("FunctionName"), "{err}");

    let mut definition = invoke(json!({}));
    definition["States"]["Invoke"]
        .as_object_mut()
        .unwrap()
        .remove("Parameters");
    let err = load(definition).unwrap_err();
    assert!(err.to_string().contains("Parameters"), "{err}");
}

#[test]
fn task_timeout_and_heartbeat_fields_are_checked() {
    let cases = [
        (
            json!({"TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t"}),
            "mutually exclusive",
        ),
        (
            json!({"TimeoutSecondsPath": "not a path"}),
            "TimeoutSecondsPath",
        ),
        (json!({"TimeoutSeconds": 0}), "TimeoutSeconds"),
    ];
    for (fields, message) in cases {
        let err = load(invoke(fields.clone())).unwrap_err();
        assert!(
            matches!(err, DefinitionError::Invalid { .. }) && err.to_string().contains(message),
            "{fields}: {err}"
        );
    }
    // Heartbeats belong to callback tasks.
    for field in ["HeartbeatSeconds", "HeartbeatSecondsPath"] {
        let value = if field == "HeartbeatSeconds" {
            json!(5)
        } else {
            json!("$.beat")
        };
        let err = load(invoke(json!({ field: value }))).unwrap_err();
        assert!(
            matches!(err, DefinitionError::Unsupported { .. }) && err.to_string().contains(field),
            "{err}"
        );
    }
    let mut callback = invoke(json!({"TimeoutSeconds": 10, "HeartbeatSeconds": 10}));
    callback["States"]["Invoke"]["Resource"] =
        json!("arn:aws:states:::lambda:invoke.waitForTaskToken");
    let err = load(callback.clone()).unwrap_err();
    assert!(
        err.to_string().contains("smaller than TimeoutSeconds"),
        "{err}"
    );
    callback["States"]["Invoke"]["HeartbeatSeconds"] = json!(9);
    assert!(load(callback.clone()).is_ok());
    callback["States"]["Invoke"]["HeartbeatSecondsPath"] = json!("$.beat");
    let err = load(callback).unwrap_err();
    assert!(err.to_string().contains("mutually exclusive"), "{err}");
}
