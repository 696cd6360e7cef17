//! SfnExecutions: one execution per name; a duplicate start is recognised, a conflicting one
//! refused; a parked execution is woken once by SendTaskSuccess/SendTaskFailure, and a token no
//! task waits on answers Gone.

use std::time::Duration;

use runbridge_adapters_aws::{SfnCallbacks, SfnExecutions};
use runbridge_handlers::ports::{Callbacks, Executions, StartOutcome, Wake};

use runbridge_test_support::{moto, own_moto, unique, Moto};

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

/// moto's setting for a Step Functions that really runs state machines. It holds for a whole
/// server, so these tests start their own.
const EXECUTING: &str = r#"{"stepfunctions": {"execute_state_machine": true}}"#;

/// A machine that parks in `Park` (`sqs:sendMessage.waitForTaskToken`: the message to `queue`
/// carries the token) until woken; the news lands in `$.woken`.
async fn parking_machine(moto: &Moto, queue: &str) -> String {
    let definition = serde_json::json!({
        "StartAt": "Park",
        "States": {"Park": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": queue,
                "MessageBody": {"task_token.$": "$$.Task.Token"}
            },
            "TimeoutSeconds": 120,
            "ResultPath": "$.woken",
            "End": true
        }}
    });
    aws_sdk_sfn::Client::new(&moto.sdk)
        .create_state_machine()
        .name(unique("rb-park"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/runbridge-state-machine")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn
}

/// The token of the next parked task, from its message.
async fn parked_token(moto: &Moto, queue: &str) -> String {
    for _ in 0..30 {
        if let Some(message) = moto.receive(queue).await.first() {
            let body: serde_json::Value =
                serde_json::from_str(message.body().expect("a body")).unwrap();
            return body["task_token"].as_str().expect("a token").to_owned();
        }
    }
    panic!("no task parked within 30 s");
}

/// The execution's status and output once it has ended.
async fn ended(sfn: &aws_sdk_sfn::Client, arn: &str) -> (String, Option<serde_json::Value>) {
    for _ in 0..100 {
        let out = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if out.status().as_str() != "RUNNING" {
            let output = out.output().map(|o| serde_json::from_str(o).unwrap());
            return (out.status().as_str().to_owned(), output);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{arn} still running after 10 s");
}

#[tokio::test]
async fn a_parked_execution_is_woken_once_and_its_token_is_gone_afterwards() {
    let Some(own) = own_moto(
        "a_parked_execution_is_woken_once_and_its_token_is_gone_afterwards",
        EXECUTING,
    )
    .await
    else {
        return;
    };
    let moto = &own.moto;
    let queue = moto.queue().await;
    let arn = parking_machine(moto, &queue).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk);
    let executions = SfnExecutions::new(sfn.clone(), &arn);
    let callbacks = SfnCallbacks::new(sfn.clone());

    executions
        .start("parked-1", serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let token = parked_token(moto, &queue).await;
    assert_eq!(
        callbacks
            .send_task_success(&token, serde_json::json!({"slot": 2}))
            .await
            .unwrap(),
        Wake::Delivered
    );
    let (status, output) = ended(&sfn, &executions.execution_arn("parked-1")).await;
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(
        output,
        Some(serde_json::json!({"n": 1, "woken": {"slot": 2}}))
    );
    // Step Functions answers TaskTimedOut for a closed task; moto answers InvalidToken. Either
    // way the news was not delivered.
    assert_eq!(
        callbacks
            .send_task_success(&token, serde_json::json!({"slot": 3}))
            .await
            .unwrap(),
        Wake::Gone
    );
    for made_up in ["not-a-token", "AAAAKgAAAAIAAAAAAAAAAQ"] {
        assert_eq!(
            callbacks
                .send_task_success(made_up, serde_json::json!({}))
                .await
                .unwrap(),
            Wake::Gone
        );
        assert_eq!(
            callbacks
                .send_task_failure(made_up, "Slot.Revoked", "no such task")
                .await
                .unwrap(),
            Wake::Gone
        );
    }
}

#[tokio::test]
async fn send_task_failure_fails_the_parked_task_with_the_error_given() {
    let Some(own) = own_moto(
        "send_task_failure_fails_the_parked_task_with_the_error_given",
        EXECUTING,
    )
    .await
    else {
        return;
    };
    let moto = &own.moto;
    let queue = moto.queue().await;
    let arn = parking_machine(moto, &queue).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk);
    let executions = SfnExecutions::new(sfn.clone(), &arn);
    let callbacks = SfnCallbacks::new(sfn.clone());

    executions
        .start("refused-1", serde_json::json!({"n": 2}))
        .await
        .unwrap();
    let token = parked_token(moto, &queue).await;
    assert_eq!(
        callbacks
            .send_task_failure(&token, "Slot.Refused", "the vendor said no")
            .await
            .unwrap(),
        Wake::Delivered
    );
    let execution_arn = executions.execution_arn("refused-1");
    let (status, _) = ended(&sfn, &execution_arn).await;
    assert_eq!(status, "FAILED");
    let described = sfn
        .describe_execution()
        .execution_arn(&execution_arn)
        .send()
        .await
        .unwrap();
    // moto 5.2.5 passes the error on but drops the cause.
    assert_eq!(described.error(), Some("Slot.Refused"));
}
