//! [`DlqSender`]: requests that can never succeed go to the dead-letter queue at once, with
//! the reason attached.
//!
//! Without it an invalid request would be received, fail and become visible again five times
//! (the queue's `maxReceiveCount`) before SQS moved it to the DLQ, with nothing saying why. The
//! trigger instead sends it to the DLQ itself, with the reason in message attributes an operator
//! (or a redrive tool) can read, and reports the original message as processed.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use runbridge_handlers::{DeadLetterReason, DeadLetters, HandlerError};

use crate::error::{sdk_error, AwsError};

/// Attribute naming the offending field (a JSON path such as `time_window.start`), when known.
pub const ATTR_FIELD: &str = "runbridge-error-field";
/// Attribute naming the rule the field broke, when known.
pub const ATTR_RULE: &str = "runbridge-error-rule";
/// Attribute with the whole error message.
pub const ATTR_ERROR: &str = "runbridge-error";
/// Attribute saying who caused the failure (`customer`, `platform`), as the error says.
pub const ATTR_ATTRIBUTION: &str = "runbridge-error-attribution";
/// Attribute with the SQS message id of the original message, when it came from SQS.
pub const ATTR_SOURCE_MESSAGE_ID: &str = "runbridge-source-message-id";

/// Sends to one dead-letter queue.
#[derive(Debug, Clone)]
pub struct DlqSender {
    client: Client,
    queue_url: String,
}

impl DlqSender {
    /// A sender to the queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends `body` unchanged, with `reason` as message attributes. Returns the new message id.
    pub async fn send(&self, body: &str, reason: &DeadLetterReason) -> Result<String, AwsError> {
        let attributes: HashMap<String, MessageAttributeValue> = [
            (ATTR_ERROR, Some(reason.error.as_str())),
            (ATTR_FIELD, reason.field.as_deref()),
            (ATTR_RULE, reason.rule.as_deref()),
            (ATTR_SOURCE_MESSAGE_ID, reason.source_message_id.as_deref()),
            (ATTR_ATTRIBUTION, reason.attribution.map(|a| a.as_str())),
        ]
        .into_iter()
        // SQS refuses empty attribute values.
        .filter_map(|(name, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| (name.to_owned(), string_attribute(v)))
        })
        .collect();
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            // SQS refuses an empty body; an empty request is still worth keeping with its reason.
            .message_body(if body.is_empty() { "(empty)" } else { body })
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| sdk_error("sqs", "SendMessage", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl DeadLetters for DlqSender {
    async fn send(&self, body: &str, reason: &DeadLetterReason) -> Result<String, HandlerError> {
        DlqSender::send(self, body, reason)
            .await
            .map_err(|e| e.into_handler("dlq"))
    }
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    // A reason quotes errors, and errors may quote a vendor's echo: redacted before the cap, so
    // no credential is cut in half. Attribute values are limited with the body to 256 KiB;
    // reasons are short, but cap them.
    let value: String = runbridge_core::redact::redact(value)
        .chars()
        .take(4_096)
        .collect();
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}
