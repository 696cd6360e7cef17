//! DlqSender: the original body with the reason as message attributes.

use runbridge_adapters_aws::{
    DeadLetterReason, DlqSender, ATTR_ATTRIBUTION, ATTR_ERROR, ATTR_FIELD, ATTR_RULE,
    ATTR_SOURCE_MESSAGE_ID,
};

use runbridge_test_support::moto;

#[tokio::test]
async fn dead_letters_carry_the_body_and_the_reason() {
    let Some(moto) = moto("dead_letters_carry_the_body_and_the_reason").await else {
        return;
    };
    let queue = moto.queue().await;
    let dlq = DlqSender::new(moto.sqs(), &queue);
    let body = r#"{"vendor":"amperity","tenant":""}"#;
    let reason = DeadLetterReason {
        error: "invalid request: field `tenant`: must not be empty".into(),
        field: Some("tenant".into()),
        rule: Some("must not be empty".into()),
        source_message_id: Some("m-1".into()),
        attribution: Some(runbridge_core::Attribution::Customer),
    };
    dlq.send(body, &reason).await.unwrap();
    // No field known: the attribute is left out rather than sent empty.
    dlq.send(
        "",
        &DeadLetterReason {
            error: "vendor said no".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let mut messages = moto.receive(&queue).await;
    if messages.len() < 2 {
        messages.extend(moto.receive(&queue).await);
    }
    assert_eq!(messages.len(), 2);
    let first = messages
        .iter()
        .find(|m| m.body() == Some(body))
        .expect("original body kept");
    let attr = |m: &aws_sdk_sqs::types::Message, name: &str| {
        m.message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    };
    assert_eq!(attr(first, ATTR_FIELD).as_deref(), Some("tenant"));
    assert_eq!(attr(first, ATTR_RULE).as_deref(), Some("must not be empty"));
    assert_eq!(attr(first, ATTR_SOURCE_MESSAGE_ID).as_deref(), Some("m-1"));
    assert!(attr(first, ATTR_ERROR).unwrap().contains("tenant"));
    assert_eq!(attr(first, ATTR_ATTRIBUTION).as_deref(), Some("customer"));
    let second = messages.iter().find(|m| m.body() != Some(body)).unwrap();
    assert_eq!(second.body(), Some("(empty)"));
    assert_eq!(attr(second, ATTR_FIELD), None);
    assert_eq!(attr(second, ATTR_ATTRIBUTION), None);
    assert_eq!(attr(second, ATTR_ERROR).as_deref(), Some("vendor said no"));
}
