//! EventBridge events and Scheduler payloads: the request, the schedule time, the dead letters.

use runbridge_adapters_aws::{ATTR_FIELD, ATTR_SOURCE_MESSAGE_ID};
use runbridge_core::{IdempotencyKey, OffsetDateTime, RunRequest};
use runbridge_lambda::{handle_trigger_event, TriggerOutcome};
use serde_json::{json, Value};

use super::doubles::{attribute, TriggerRig};
use runbridge_test_support::moto;

fn fixture(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

/// The key and resolved request the trigger must derive from `request` scheduled at `at`.
fn expected(
    request: &Value,
    at: Option<OffsetDateTime>,
    anchor: OffsetDateTime,
) -> (String, Value) {
    let resolved = RunRequest::from_value(request.clone())
        .unwrap()
        .resolve(anchor);
    (
        IdempotencyKey::for_request(&resolved, at).to_string(),
        serde_json::to_value(&resolved).unwrap(),
    )
}

fn triggered_key(outcome: &Value) -> String {
    match serde_json::from_value::<TriggerOutcome>(outcome.clone()).unwrap() {
        TriggerOutcome::Triggered { key, .. } => key,
        other => panic!("expected a triggered run, got {other:?}"),
    }
}

/// The request as the key's ledger entry keeps it (the execution carries only a reference).
async fn stored_request(rig: &TriggerRig, key: &str) -> serde_json::Value {
    let entry = rig
        .trigger
        .ledger
        .get(&runbridge_core::IdempotencyKey::from_string(key.to_owned()))
        .await
        .unwrap()
        .expect("ledger entry");
    serde_json::to_value(entry.request).unwrap()
}

#[tokio::test]
async fn an_eventbridge_event_runs_its_detail_anchored_at_its_time() {
    let Some(moto) = moto("an_eventbridge_event_runs_its_detail_anchored_at_its_time").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let event = fixture(include_bytes!("../fixtures/eventbridge_run_requested.json"));
    let at = time("2026-11-26T06:00:00Z");
    let (key, resolved) = expected(&event["detail"], Some(at), at);

    let outcome = handle_trigger_event(&rig.trigger, &rig.dlq, event.clone())
        .await
        .unwrap();
    assert_eq!(triggered_key(&outcome), key);
    let input = rig.execution_input(&key).await.expect("execution started");
    assert!(input["handle"].get("request").is_none(), "{input}");
    assert_eq!(
        stored_request(&rig, &key).await,
        resolved,
        "the relative window is resolved against the event time"
    );
    assert_eq!(resolved["range_from"], json!("2026-11-25T00:00:00Z"));

    // EventBridge delivers at least once: the same event again is the same run.
    let again = handle_trigger_event(&rig.trigger, &rig.dlq, event)
        .await
        .unwrap();
    assert_eq!(again["submitted_now"], json!(false));
    assert_eq!(rig.vendor.submits(), 1);
}

#[tokio::test]
async fn a_bare_scheduler_request_runs_under_its_request_id() {
    let Some(moto) = moto("a_bare_scheduler_request_runs_under_its_request_id").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let outcome = handle_trigger_event(
        &rig.trigger,
        &rig.dlq,
        fixture(include_bytes!("../fixtures/scheduler_request.json")),
    )
    .await
    .unwrap();
    assert_eq!(triggered_key(&outcome), "amperity-fixture-scheduled-1");
    assert_eq!(outcome["submitted_now"], json!(true));
    assert_eq!(outcome["execution_started"], json!(true));
}

#[tokio::test]
async fn a_scheduler_wrapper_anchors_the_run_at_the_scheduled_time() {
    let Some(moto) = moto("a_scheduler_wrapper_anchors_the_run_at_the_scheduled_time").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let payload = fixture(include_bytes!("../fixtures/scheduler_wrapper.json"));
    let at = time("2026-11-26T06:00:00Z");
    let (key, resolved) = expected(&payload["request"], Some(at), at);

    let outcome = handle_trigger_event(&rig.trigger, &rig.dlq, payload)
        .await
        .unwrap();
    assert_eq!(triggered_key(&outcome), key);
    assert_eq!(
        rig.execution_input(&key).await.unwrap()["handle"]["key"],
        key
    );
    assert_eq!(stored_request(&rig, &key).await, resolved);
}

#[tokio::test]
async fn an_unusable_scheduler_payload_is_dead_lettered() {
    let Some(moto) = moto("an_unusable_scheduler_payload_is_dead_lettered").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let payload = fixture(include_bytes!(
        "../fixtures/scheduler_wrapper_bad_time.json"
    ));

    let outcome = handle_trigger_event(&rig.trigger, &rig.dlq, payload.clone())
        .await
        .unwrap();
    assert_eq!(outcome["outcome"], json!("dead_lettered"), "{outcome}");
    let letters = rig.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        attribute(&letters[0], ATTR_FIELD).as_deref(),
        Some("scheduled_time")
    );
    assert_eq!(attribute(&letters[0], ATTR_SOURCE_MESSAGE_ID), None);
    assert_eq!(
        serde_json::from_str::<Value>(letters[0].body().unwrap()).unwrap(),
        payload
    );
    assert_eq!(rig.vendor.submits(), 0);
}

#[tokio::test]
async fn a_retryable_failure_of_an_event_is_a_retryable_error() {
    let Some(moto) = moto("a_retryable_failure_of_an_event_is_a_retryable_error").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let mut event = fixture(include_bytes!("../fixtures/eventbridge_run_requested.json"));
    event["detail"]["request_id"] = json!("flaky-1");

    let err = handle_trigger_event(&rig.trigger, &rig.dlq, event)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(
        rig.dead_letters().await.is_empty(),
        "a retryable failure is not dead-lettered"
    );
}

#[tokio::test]
async fn records_from_another_source_are_refused() {
    let Some(moto) = moto("records_from_another_source_are_refused").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let event = json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]});
    let err = handle_trigger_event(&rig.trigger, &rig.dlq, event)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryable");
}
