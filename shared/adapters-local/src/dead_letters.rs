//! [`MemoryDeadLetters`]: dead letters kept in memory and logged, where the deployed trigger
//! sends them to the SQS dead-letter queue.

use std::sync::Mutex;

use async_trait::async_trait;
use runbridge_core::redact::redacted;
use runbridge_handlers::{DeadLetterReason, DeadLetters, HandlerError};

/// Every dead letter sent, in order.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<(String, DeadLetterReason)>>,
}

impl MemoryDeadLetters {
    /// The bodies and reasons sent so far.
    pub fn sent(&self) -> Vec<(String, DeadLetterReason)> {
        self.letters.lock().expect("dead letters lock").clone()
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, body: &str, reason: &DeadLetterReason) -> Result<String, HandlerError> {
        let mut letters = self.letters.lock().expect("dead letters lock");
        // As the SQS sender does: the reason's text is redacted, the body kept as sent.
        let reason = DeadLetterReason {
            error: redacted(&reason.error),
            rule: reason.rule.as_deref().map(redacted),
            ..reason.clone()
        };
        tracing::warn!(error = %reason.error, field = reason.field.as_deref(), "request dead-lettered");
        letters.push((body.to_owned(), reason));
        Ok(format!("local-{}", letters.len()))
    }
}
