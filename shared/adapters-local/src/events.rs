//! [`LogEvents`]: run events kept in memory and logged, where EventBridge would publish them.

use std::sync::Mutex;

use async_trait::async_trait;
use runbridge_handlers::ports::{Events, RunEvent};
use runbridge_handlers::HandlerError;

/// Events kept in memory and logged.
#[derive(Debug, Default)]
pub struct LogEvents {
    events: Mutex<Vec<RunEvent>>,
}

impl LogEvents {
    /// Everything published so far.
    pub fn published(&self) -> Vec<RunEvent> {
        self.events.lock().expect("events lock").clone()
    }
}

#[async_trait]
impl Events for LogEvents {
    async fn publish(&self, event: &RunEvent) -> Result<(), HandlerError> {
        tracing::info!(detail_type = %event.detail_type, key = %event.key, state = %event.state, "run event");
        self.events.lock().expect("events lock").push(event.clone());
        Ok(())
    }
}
