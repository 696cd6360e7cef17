//! [`LogEvents`]: run events kept in memory and logged, where EventBridge would publish them.

use std::sync::Mutex;

use async_trait::async_trait;
use runbridge_core::RunOutcome;
use runbridge_handlers::ports::Events;
use runbridge_handlers::HandlerError;

/// Events kept in memory and logged.
#[derive(Debug, Default)]
pub struct LogEvents {
    events: Mutex<Vec<RunOutcome>>,
}

impl LogEvents {
    /// Everything published so far.
    pub fn published(&self) -> Vec<RunOutcome> {
        self.events.lock().expect("events lock").clone()
    }
}

#[async_trait]
impl Events for LogEvents {
    async fn publish(&self, event: &RunOutcome) -> Result<(), HandlerError> {
        // The whole detail, as EventBridge would carry it: the local deployment's event bus is
        // this log line (`RUNBRIDGE_LOG=info`).
        let detail = serde_json::to_string(event).unwrap_or_default();
        tracing::info!(detail_type = event.detail_type(), key = %event.key, state = %event.state, %detail, "run event");
        self.events.lock().expect("events lock").push(event.clone());
        Ok(())
    }
}
