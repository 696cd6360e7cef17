//! AwsEnv: every adapter from variables; a missing variable is named.

use bytes::Bytes;
use runbridge_adapters_aws::env::{
    DEAD_LETTER_QUEUE_URL, EVENT_BUS_NAME, LEDGER_PREFIX, RESULTS_BUCKET, RESULTS_PREFIX,
    STATE_MACHINE_ARN, VENDOR_SECRET_ARN,
};
use runbridge_handlers::ResultSink;

use runbridge_test_support::moto;

#[tokio::test]
async fn adapters_build_from_the_environment_and_reach_the_endpoint() {
    let Some(moto) = moto("adapters_build_from_the_environment_and_reach_the_endpoint").await
    else {
        return;
    };
    let bucket = moto.bucket().await;
    let env = moto.env(&[
        (RESULTS_BUCKET, &bucket),
        (RESULTS_PREFIX, "runbridge"),
        (LEDGER_PREFIX, "runbridge/_ledger/"),
        (
            STATE_MACHINE_ARN,
            "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        ),
        (EVENT_BUS_NAME, "default"),
        (
            VENDOR_SECRET_ARN,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:v-AbCdEf",
        ),
        (DEAD_LETTER_QUEUE_URL, "http://localhost/q"),
    ]);
    assert!(env.endpoint_overridden());
    // Path-style addressing: with virtual-host style the bucket would be a host name that
    // does not resolve.
    let sink = env.results_sink().unwrap();
    sink.put("runbridge/x.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        sink.get("runbridge/x.json").await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    env.ledger().unwrap();
    env.executions().unwrap();
    env.events().unwrap();
    env.vendor_settings().unwrap();
    env.dead_letters().unwrap();
    let layout = env.result_layout().unwrap();
    assert_eq!(
        layout,
        runbridge_core::ResultLayout::new("runbridge").unwrap()
    );
}

#[tokio::test]
async fn a_missing_variable_is_named() {
    let Some(moto) = moto("a_missing_variable_is_named").await else {
        return;
    };
    let env = moto.env(&[(RESULTS_BUCKET, "b")]);
    let err = env.ledger().unwrap_err();
    assert!(err.to_string().contains(LEDGER_PREFIX), "{err}");
    assert!(env
        .executions()
        .unwrap_err()
        .to_string()
        .contains(STATE_MACHINE_ARN));
    assert!(env
        .dead_letters()
        .unwrap_err()
        .to_string()
        .contains(DEAD_LETTER_QUEUE_URL));
    assert!(moto
        .env(&[(RESULTS_PREFIX, "/bad//prefix")])
        .result_layout()
        .is_err());
}
