//! EventBridgeEvents: events land on the bus (routed to SQS by a rule), rejections are errors.

use runbridge_adapters_aws::EventBridgeEvents;
use runbridge_core::RunState;
use runbridge_handlers::{Events, RunEvent};

use super::util::{moto, unique};

fn event() -> RunEvent {
    RunEvent {
        detail_type: "Run Completed".into(),
        key: "amperity-req-7".into(),
        vendor: "amperity".into(),
        vendor_run_id: "run-7".into(),
        state: RunState::Succeeded,
        reason: None,
        attribution: None,
        manifest_key: "runbridge/vendor=amperity/date=2026-11-26/run=amperity-req-7/manifest.json"
            .into(),
        files: 2,
        bytes: 1234,
    }
}

#[tokio::test]
async fn put_events_reaches_a_rule_target() {
    let Some(moto) = moto("put_events_reaches_a_rule_target").await else {
        return;
    };
    let eb = aws_sdk_eventbridge::Client::new(&moto.sdk);
    let bus = unique("rb-bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let queue = moto.queue().await;
    let rule = unique("rb-rule");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["runbridge"], "detail-type": ["Run Completed"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(moto.queue_arn(&queue).await)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    EventBridgeEvents::new(eb, &bus)
        .publish(&event())
        .await
        .unwrap();

    let messages = moto.receive(&queue).await;
    assert_eq!(messages.len(), 1, "the rule must deliver exactly one event");
    let delivered: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(delivered["source"], "runbridge");
    assert_eq!(delivered["detail-type"], "Run Completed");
    let detail: RunEvent = serde_json::from_value(delivered["detail"].clone()).unwrap();
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
