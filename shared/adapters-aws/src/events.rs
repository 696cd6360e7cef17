//! [`EventBridgeEvents`]: `Run Completed` / `Run Failed` on an EventBridge bus.
//!
//! `PutEvents` succeeds as a call even when an entry is rejected; the rejection is in the
//! answer (`FailedEntryCount`, the entry's `ErrorCode`), so it is checked: an event that did not
//! land fails the collect step (which Step Functions retries) instead of vanishing.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use runbridge_core::RunOutcome;
use runbridge_handlers::{Events, HandlerError};

use crate::error::{sdk_error, AwsError};

/// The `source` of every runbridge event (rules match on it).
pub const EVENT_SOURCE: &str = "runbridge";

const PORT: &str = "events";

/// Entry error codes that a later attempt may get past.
const TRANSIENT_ENTRY_CODES: &[&str] = &["InternalFailure", "ThrottlingException"];

/// Publishes run events to one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    /// Events on `bus` (a name or ARN; `default` for the account's default bus).
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    async fn publish_inner(&self, event: &RunOutcome) -> Result<(), AwsError> {
        let detail = serde_json::to_string(event).expect("run events serialise");
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(event.detail_type())
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| sdk_error("events", "PutEvents", e))?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let failed = out.entries().iter().find(|e| e.error_code().is_some());
        let code = failed.and_then(|e| e.error_code()).unwrap_or("unknown");
        let message = failed
            .and_then(|e| e.error_message())
            .unwrap_or("no message");
        Err(AwsError::Rejected {
            service: "events",
            message: format!(
                "{} event for {} rejected by bus {}: {code}: {message}",
                event.detail_type(),
                event.key,
                self.bus
            ),
            retryable: TRANSIENT_ENTRY_CODES.contains(&code),
        })
    }
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn publish(&self, event: &RunOutcome) -> Result<(), HandlerError> {
        self.publish_inner(event)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}
