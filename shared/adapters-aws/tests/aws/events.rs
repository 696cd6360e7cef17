//! EventBridgeEvents: events land on the bus (routed to SQS by a rule), rejections are errors.

use runbridge_adapters_aws::EventBridgeEvents;
use runbridge_core::{RunOutcome, RunState, VendorKind};
use runbridge_handlers::Events;

use runbridge_test_support::{moto, unique};

fn event() -> RunOutcome {
    RunOutcome {
        event_id: "amperity-req-7#1".into(),
        key: "amperity-req-7".into(),
        attempt: 1,
        vendor: VendorKind::Amperity,
        profile: "default".into(),
        vendor_run_id: "run-7".into(),
        state: RunState::Succeeded,
        reason: None,
        attribution: None,
        manifest_key: "runbridge/vendor=amperity/date=2026-11-26/run=amperity-req-7/manifest.json"
            .into(),
        files: 2,
        bytes: 1234,
        rows: 40,
        polls: 3,
    }
}

#[tokio::test]
async fn put_events_reaches_a_rule_target() {
    let Some(moto) = moto("put_events_reaches_a_rule_target").await else {
        return;
    };
    let eb = aws_sdk_eventbridge::Client::new(&moto.sdk);
    let (bus, queue) = moto
        .bus_to_queue(r#"{"source": ["runbridge"], "detail-type": ["Run Completed"]}"#)
        .await;

    EventBridgeEvents::new(eb, &bus)
        .publish(&event())
        .await
        .unwrap();

    let messages = moto.receive(&queue).await;
    assert_eq!(messages.len(), 1, "the rule must deliver exactly one event");
    let delivered: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["source"], "runbridge");
    assert_eq!(delivered["detail-type"], "Run Completed");
    let detail: RunOutcome = serde_json::from_value(delivered["detail"].clone()).unwrap();
    assert_eq!(detail, event());
}

#[tokio::test]
async fn an_event_for_a_missing_bus_is_an_error() {
    let Some(moto) = moto("an_event_for_a_missing_bus_is_an_error").await else {
        return;
    };
    let events = EventBridgeEvents::new(
        aws_sdk_eventbridge::Client::new(&moto.sdk),
        unique("no-such-bus"),
    );
    let err = events.publish(&event()).await.unwrap_err();
    assert!(err.to_string().contains("events"), "{err}");
}
