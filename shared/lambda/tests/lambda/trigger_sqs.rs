//! handle_sqs: exact batch item failures, dead letters with reasons, one submit per key.

use std::collections::BTreeSet;

use aws_lambda_events::event::sqs::SqsEvent;
use runbridge_adapters_aws::{ATTR_ATTRIBUTION, ATTR_ERROR, ATTR_FIELD, ATTR_SOURCE_MESSAGE_ID};
use runbridge_core::{Fingerprint, IdempotencyKey, RunRequest};
use runbridge_lambda::{handle_sqs, handle_trigger_event};
use serde_json::json;

use super::doubles::{attribute, TriggerRig};
use runbridge_test_support::{moto, unique};

const SENT_MS: &str = "1764223200000"; // 2025-11-27T06:00:00Z

fn batch(messages: &[(&str, String)]) -> SqsEvent {
    let records: Vec<_> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {"SentTimestamp": SENT_MS, "ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:runbridge-requests", "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn request(id: &str) -> String {
    json!({"vendor": "amperity", "request_id": id, "tenant": "acme", "config_id": "cg-0001", "run_mode": "full"}).to_string()
}

/// Sends `messages` as one batch, requires that none is failed back to SQS (each is dead-lettered
/// instead), and returns the fields the dead letters so far name, sorted.
async fn dead_lettered_fields(rig: &TriggerRig, messages: &[(&str, String)]) -> Vec<String> {
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(messages)).await;
    assert!(
        failures(&response).is_empty(),
        "dead-lettered, not retried: {response:?}"
    );
    let mut fields: Vec<_> = rig
        .dead_letters()
        .await
        .iter()
        .filter_map(|m| attribute(m, ATTR_FIELD))
        .collect();
    fields.sort();
    fields
}

/// Sends `envelope` (a Scheduler wrapper or an EventBridge event) as message `id` and checks the
/// run it started: `request` resolved at the envelope's `time_member`, not at when the message
/// was sent, and submitted once.
async fn runs_at_the_envelopes_time(
    rig: &TriggerRig,
    id: &str,
    envelope: &serde_json::Value,
    request: &str,
    time_member: &str,
) {
    let at = time::OffsetDateTime::parse(
        envelope[time_member].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let resolved = RunRequest::from_value(envelope[request].clone())
        .unwrap()
        .resolve(at);
    let key = IdempotencyKey::for_request(&resolved, Some(at));
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&[(id, envelope.to_string())])).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let entry = rig
        .trigger
        .ledger
        .get(&key)
        .await
        .unwrap()
        .expect("the envelope's run");
    assert_eq!(
        serde_json::to_value(&entry.request).unwrap(),
        serde_json::to_value(&resolved).unwrap(),
        "resolved against the envelope's {time_member}, not the message's SentTimestamp"
    );
    assert_eq!(rig.vendor.submits(), 1);
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn good_messages_trigger_once_per_key_and_report_no_failures() {
    let Some(moto) = moto("good_messages_trigger_once_per_key_and_report_no_failures").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let (a, b) = (unique("a"), unique("b"));

    let response = handle_sqs(
        &rig.trigger,
        &rig.dlq,
        batch(&[("m1", request(&a)), ("m2", request(&b))]),
    )
    .await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(rig.vendor.submits(), 2);
    for id in [&a, &b] {
        let input = rig
            .execution_input(&format!("amperity-{id}"))
            .await
            .expect("execution started");
        // The execution carries a reference; the request is in the key's ledger entry.
        assert!(input["handle"].get("request").is_none(), "{input}");
        let key = IdempotencyKey::from_string(format!("amperity-{id}"));
        assert_eq!(input["handle"]["key"], json!(key.as_str()));
        let entry = rig.trigger.ledger.get(&key).await.unwrap().unwrap();
        assert_eq!(entry.request.request_id.as_deref(), Some(id.as_str()));
    }

    // A redelivery of the first request: handled, nothing submitted again.
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&[("m1-again", request(&a))])).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(
        rig.vendor.submits(),
        2,
        "a redelivery must not submit again"
    );
    assert!(rig.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_unknown_or_foreign_profile_is_dead_lettered_naming_the_field() {
    let Some(moto) = moto("an_unknown_or_foreign_profile_is_dead_lettered_naming_the_field").await
    else {
        return;
    };
    let mut rig = TriggerRig::new(moto).await;
    // Two accounts of one vendor: each its own client, so the submit counts tell them apart.
    let tenant_b = std::sync::Arc::new(super::doubles::CountingVendor::default());
    rig.trigger.vendors = runbridge_vendors::Vendors::from_profile_clients([
        (
            "default".to_owned(),
            rig.vendor.clone() as std::sync::Arc<dyn runbridge_vendors::Vendor>,
        ),
        ("tenant-b".to_owned(), tenant_b.clone() as _),
    ]);
    let amperity = |id: &str, profile: &str| {
        json!({"vendor": "amperity", "request_id": id, "profile": profile, "tenant": "acme", "config_id": "cg-0001", "run_mode": "full"}).to_string()
    };
    let foreign =
        json!({"vendor": "carto", "profile": "tenant-b", "connection": "c", "query": "SELECT 1"})
            .to_string();
    let good_id = unique("b");
    let good = amperity(&good_id, "tenant-b");
    let messages = [
        ("unknown", amperity(&unique("u"), "nope")),
        ("foreign", foreign),
        ("good", good.clone()),
    ];
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&messages)).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(rig.vendor.submits(), 0, "the default account was not used");
    assert_eq!(
        tenant_b.submits(),
        1,
        "the named profile's client submitted"
    );
    let letters = rig.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (source, says) in [
        ("unknown", "no profile `nope`"),
        ("foreign", "is for amperity, not carto"),
    ] {
        let letter = letters
            .iter()
            .find(|m| attribute(m, ATTR_SOURCE_MESSAGE_ID).as_deref() == Some(source))
            .expect("dead-lettered");
        assert_eq!(attribute(letter, ATTR_FIELD).as_deref(), Some("profile"));
        let error = attribute(letter, ATTR_ERROR).unwrap_or_default();
        assert!(error.contains(says), "{source}: {error}");
    }
    // The accepted run's key carries its profile, not the default key of its request_id.
    let key = IdempotencyKey::for_request(
        &RunRequest::from_json(good.as_bytes())
            .unwrap()
            .resolve(time::OffsetDateTime::now_utc()),
        None,
    );
    assert!(key.as_str().starts_with("amperity.tenant-b."), "{key}");
    let input = rig
        .execution_input(key.as_str())
        .await
        .expect("the named profile's execution started");
    // The execution carries a reference (the request stays in the ledger): its key is the
    // profile's.
    assert_eq!(input["handle"]["key"], json!(key.as_str()));
    assert!(rig
        .execution_input(&format!("amperity-{good_id}"))
        .await
        .is_none());
}

#[tokio::test]
async fn invalid_and_refused_messages_are_dead_lettered_with_the_field_not_failed() {
    let Some(moto) =
        moto("invalid_and_refused_messages_are_dead_lettered_with_the_field_not_failed").await
    else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let missing_tenant = json!({"vendor": "amperity", "config_id": "cg-0001"}).to_string();
    let expected_field = RunRequest::from_json(missing_tenant.as_bytes())
        .unwrap_err()
        .field;
    let messages = [
        ("bad-1", missing_tenant.clone()),
        ("bad-2", "{not json".to_owned()),
        ("bad-3", request(&unique("refused"))),
    ];

    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&messages)).await;
    assert!(
        failures(&response).is_empty(),
        "dead-lettered messages are handled, not failures: {response:?}"
    );
    assert_eq!(rig.vendor.submits(), 0);

    let letters = rig.dead_letters().await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    let by_source = |id: &str| {
        letters
            .iter()
            .find(|m| attribute(m, ATTR_SOURCE_MESSAGE_ID).as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(
        by_source("bad-1").body(),
        Some(missing_tenant.as_str()),
        "the original body is kept"
    );
    assert_eq!(
        attribute(by_source("bad-1"), ATTR_FIELD),
        Some(expected_field.clone())
    );
    assert!(
        expected_field.contains("tenant"),
        "the field names what is missing: {expected_field}"
    );
    assert_eq!(
        attribute(by_source("bad-2"), ATTR_FIELD).as_deref(),
        Some("$")
    );
    assert_eq!(
        attribute(by_source("bad-3"), ATTR_FIELD).as_deref(),
        Some("config_id"),
        "the vendor's blamed field"
    );
    // Who caused it, as the error says: the request, every time.
    for id in ["bad-1", "bad-2", "bad-3"] {
        assert_eq!(
            attribute(by_source(id), ATTR_ATTRIBUTION).as_deref(),
            Some("customer"),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_mixed_batch_fails_exactly_the_retryable_and_panicking_messages() {
    let Some(moto) = moto("a_mixed_batch_fails_exactly_the_retryable_and_panicking_messages").await
    else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let messages = [
        ("good", request(&unique("ok"))),
        ("invalid", json!({"vendor": "nobody"}).to_string()),
        ("flaky", request(&unique("flaky"))),
        ("panics", request(&unique("panic"))),
        ("good-2", request(&unique("ok"))),
    ];

    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&messages)).await;
    assert_eq!(
        failures(&response),
        BTreeSet::from(["flaky".to_owned(), "panics".to_owned()])
    );
    assert_eq!(rig.vendor.submits(), 2);
    let letters = rig.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        attribute(&letters[0], ATTR_SOURCE_MESSAGE_ID).as_deref(),
        Some("invalid")
    );
    assert_eq!(
        attribute(&letters[0], ATTR_FIELD).as_deref(),
        Some("vendor")
    );
}

#[tokio::test]
async fn an_sqs_fixture_is_dispatched_as_a_batch() {
    let Some(moto) = moto("an_sqs_fixture_is_dispatched_as_a_batch").await else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let event: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/sqs_batch.json")).unwrap();

    let response = handle_trigger_event(&rig.trigger, &rig.dlq, event)
        .await
        .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(rig.vendor.submits(), 1);
    assert!(rig
        .execution_input("amperity-fixture-sqs-1")
        .await
        .is_some());
    let letters = rig.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        attribute(&letters[0], ATTR_FIELD).as_deref(),
        Some("run_mode")
    );
}

/// Issue 10 on S3 and SQS: a definitely refused submit deletes its S3 claim at once, and the
/// same request_id with another body is dead-lettered as a KeyConflict naming both fingerprints.
#[tokio::test]
async fn a_refused_submit_releases_its_s3_claim_and_a_changed_body_is_a_dead_lettered_key_conflict()
{
    let Some(moto) = moto(
        "a_refused_submit_releases_its_s3_claim_and_a_changed_body_is_a_dead_lettered_key_conflict",
    )
    .await
    else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let refused = unique("refused");
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&[("r1", request(&refused))])).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let key = IdempotencyKey::from_string(format!("amperity-{refused}"));
    assert_eq!(
        rig.trigger.ledger.get(&key).await.unwrap(),
        None,
        "the refused claim was released"
    );

    let id = unique("conflict");
    let first = request(&id);
    let changed = json!({"vendor": "amperity", "request_id": id, "tenant": "acme", "config_id": "cg-0002", "run_mode": "full"}).to_string();
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&[("c1", first.clone())])).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let response = handle_sqs(&rig.trigger, &rig.dlq, batch(&[("c2", changed.clone())])).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(rig.vendor.submits(), 1, "the changed body started nothing");
    let letters = rig.dead_letters().await;
    let letter = letters
        .iter()
        .find(|m| attribute(m, ATTR_SOURCE_MESSAGE_ID).as_deref() == Some("c2"))
        .expect("the conflicting message is dead-lettered");
    let error = attribute(letter, ATTR_ERROR).unwrap_or_default();
    let fp = |body: &str| Fingerprint::of(&RunRequest::from_json(body.as_bytes()).unwrap());
    assert!(
        error.contains("KeyConflict")
            && error.contains(fp(&first).as_str())
            && error.contains(fp(&changed).as_str()),
        "{error}"
    );
    assert_eq!(letter.body(), Some(changed.as_str()), "the body is kept");
}

/// Issue 10: one hung vendor call fails only its own message, within the invocation's remaining
/// time; the other messages of the batch are triggered.
#[tokio::test]
async fn a_hung_vendor_fails_only_its_own_message_within_the_remaining_time() {
    let Some(moto) =
        moto("a_hung_vendor_fails_only_its_own_message_within_the_remaining_time").await
    else {
        return;
    };
    let mut rig = TriggerRig::new(moto).await;
    // 8 s left: each message gets 3 s (the batch response keeps 5 s).
    rig.trigger.deadline =
        Some(runbridge_core::OffsetDateTime::now_utc() + time::Duration::seconds(8));
    let started = std::time::Instant::now();
    let response = handle_sqs(
        &rig.trigger,
        &rig.dlq,
        batch(&[
            ("hung", request(&unique("hang"))),
            ("ok", request(&unique("ok"))),
        ]),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failures(&response), BTreeSet::from(["hung".to_owned()]));
    assert_eq!(rig.vendor.submits(), 1, "the other message was triggered");
    assert!(rig.dead_letters().await.is_empty());
}

/// The stack's schedules send their wrapper to the queue: the run is the one the schedule would
/// have started invoking the trigger directly (anchored at `scheduled_time`, not at when the
/// message was sent), and a wrapper that cannot be used is dead-lettered naming the field.
#[tokio::test]
async fn a_schedule_delivered_through_the_queue_is_anchored_at_its_scheduled_time() {
    let Some(moto) =
        moto("a_schedule_delivered_through_the_queue_is_anchored_at_its_scheduled_time").await
    else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let wrapper: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/scheduler_wrapper.json")).unwrap();
    runs_at_the_envelopes_time(&rig, "s1", &wrapper, "request", "scheduled_time").await;

    let mut late = wrapper.clone();
    late["scheduled_time"] = json!("yesterday at six");
    let mut extra = wrapper.clone();
    extra["schedule"] = json!("nightly");
    // Two `request`s in the wrapper: which one the schedule meant cannot be known.
    let two_requests = format!(
        r#"{{"request": {}, "scheduled_time": {}, "request": {{"vendor": "carto"}}}}"#,
        wrapper["request"], wrapper["scheduled_time"]
    );
    let fields = dead_lettered_fields(
        &rig,
        &[
            ("s2", late.to_string()),
            ("s3", extra.to_string()),
            ("s4", two_requests),
        ],
    )
    .await;
    assert_eq!(fields, ["request", "schedule", "scheduled_time"]);
    assert_eq!(rig.vendor.submits(), 1);
}

/// The stack's EventBridge rule sends the whole event to the queue: its `detail` is the run the
/// rule would have started invoking the trigger directly (anchored at the event's `time`), read
/// from the raw text (a duplicate key is refused, not silently resolved), and an event that
/// cannot be used is dead-lettered naming the field.
#[tokio::test]
async fn an_eventbridge_event_delivered_through_the_queue_runs_its_detail_at_its_time() {
    let Some(moto) =
        moto("an_eventbridge_event_delivered_through_the_queue_runs_its_detail_at_its_time").await
    else {
        return;
    };
    let rig = TriggerRig::new(moto).await;
    let event: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/eventbridge_run_requested.json"))
            .unwrap();
    runs_at_the_envelopes_time(&rig, "e1", &event, "detail", "time").await;
    // The same event invoking the trigger directly (a rule outside the stack) is the same run.
    let direct = handle_trigger_event(&rig.trigger, &rig.dlq, event.clone())
        .await
        .unwrap();
    assert_eq!(direct["submitted_now"], json!(false));
    assert_eq!(rig.vendor.submits(), 1);

    let mut late = event.clone();
    late["time"] = json!("yesterday at six");
    let mut empty = event.clone();
    empty.as_object_mut().unwrap().remove("detail");
    let detail = r#"{"vendor": "amperity", "tenant": "acme", "tenant": "other", "config_id": "cg-0000000000000000"}"#;
    let twice = format!(
        r#"{{"version": "0", "id": "e4", "detail-type": "Run Requested", "source": "acme.marketing", "time": "2026-11-26T06:00:00Z", "detail": {detail}}}"#
    );
    // Two `detail`s in the envelope: which is the request cannot be known.
    let two_details = format!(
        r#"{{"version": "0", "id": "e5", "detail-type": "Run Requested", "source": "acme.marketing", "time": "2026-11-26T06:00:00Z", "detail": {}, "detail": {{"vendor": "carto"}}}}"#,
        event["detail"]
    );
    let fields = dead_lettered_fields(
        &rig,
        &[
            ("e2", late.to_string()),
            ("e3", empty.to_string()),
            ("e4", twice),
            ("e5", two_details),
        ],
    )
    .await;
    assert_eq!(fields, ["detail", "detail", "tenant", "time"]);
    assert_eq!(rig.vendor.submits(), 1);
}
