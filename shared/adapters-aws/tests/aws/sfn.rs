//! SfnExecutions: one execution per name; a duplicate start is recognised, a conflicting one refused.

use std::time::Duration;

use runbridge_adapters_aws::SfnExecutions;
use runbridge_handlers::ports::{Executions, StartOutcome};

use runbridge_test_support::moto;

#[tokio::test]
async fn same_name_same_input_is_already_started_and_another_input_is_an_error() {
    let Some(moto) =
        moto("same_name_same_input_is_already_started_and_another_input_is_an_error").await
    else {
        return;
    };
    let arn = moto.state_machine().await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk);
    let executions = SfnExecutions::new(sfn.clone(), &arn);
    let input = serde_json::json!({"handle": {"key": "amperity-req-1"}, "wait_seconds": 15});

    assert_eq!(
        executions
            .start("amperity-req-1", input.clone())
            .await
            .unwrap(),
        StartOutcome::Started
    );
    let described = sfn
        .describe_execution()
        .execution_arn(executions.execution_arn("amperity-req-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(described.input().unwrap()).unwrap(),
        input
    );

    // A redelivery a moment later: Step Functions answers with the running execution.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        executions
            .start("amperity-req-1", input.clone())
            .await
            .unwrap(),
        StartOutcome::AlreadyStarted
    );

    let other = serde_json::json!({"handle": {"key": "amperity-req-1"}, "wait_seconds": 99});
    let err = executions.start("amperity-req-1", other).await.unwrap_err();
    assert!(
        !err.is_retryable(),
        "a conflicting input cannot be fixed by retrying: {err}"
    );
    assert!(err.to_string().contains("different input"), "{err}");

    // Once the execution is closed the name still belongs to it: same input is a redelivery.
    sfn.stop_execution()
        .execution_arn(executions.execution_arn("amperity-req-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.start("amperity-req-1", input).await.unwrap(),
        StartOutcome::AlreadyStarted
    );
}

#[tokio::test]
async fn a_missing_state_machine_is_not_retryable() {
    let Some(moto) = moto("a_missing_state_machine_is_not_retryable").await else {
        return;
    };
    let executions = SfnExecutions::new(
        aws_sdk_sfn::Client::new(&moto.sdk),
        "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist",
    );
    let err = executions
        .start("x", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}
