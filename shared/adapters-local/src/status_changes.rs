//! [`StopHandler`]: the local twin of the deployed cancel path. Step Functions sends an
//! execution's ABORTED / TIMED_OUT status change to EventBridge, whose rule invokes the trigger
//! function asynchronously; Lambda retries a failed invocation twice and then sends the event to
//! the dead-letter queue (the function's `EventInvokeConfig`). Here the same event goes to the
//! same handler (`runbridge_handlers::stopped`) with the same retries, and ends in
//! [`MemoryDeadLetters`] when they run out.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runbridge_asl::WaitClock;
use runbridge_handlers::stopped::{handle_status_change, StopHandled, Stopper};
use runbridge_handlers::{DeadLetterReason, DeadLetters};

use crate::{MemoryDeadLetters, StatusChanges};

/// Retries after the first attempt: the trigger function's `EventInvokeConfig`
/// `MaximumRetryAttempts` in `infra/template.yaml`.
pub const STOP_EVENT_RETRIES: u32 = 2;

/// Seconds before each retry (on the deployment's wait clock). Lambda waits about a minute,
/// then two, between asynchronous retries.
pub const STOP_EVENT_RETRY_SECONDS: [f64; 2] = [60.0, 120.0];

/// Hands status-change events to the stop handler, retrying and dead-lettering like Lambda's
/// asynchronous invocation.
pub struct StopHandler {
    /// The handler and its ports (vendors, ledger, the finish protocol's sink and events).
    pub stopper: Arc<Stopper>,
    /// Where an event goes when its retries run out.
    pub dead_letters: Arc<MemoryDeadLetters>,
    /// How retries wait.
    pub clock: Arc<dyn WaitClock>,
    handled: Mutex<Vec<StopHandled>>,
}

impl StopHandler {
    /// Delivers status changes to `stopper`.
    pub fn new(
        stopper: Arc<Stopper>,
        dead_letters: Arc<MemoryDeadLetters>,
        clock: Arc<dyn WaitClock>,
    ) -> Self {
        Self {
            stopper,
            dead_letters,
            clock,
            handled: Mutex::new(Vec::new()),
        }
    }

    /// What each delivered event came to, in order (dead-lettered ones are not here).
    pub fn handled(&self) -> Vec<StopHandled> {
        self.handled.lock().expect("stop handler lock").clone()
    }
}

#[async_trait]
impl StatusChanges for StopHandler {
    async fn deliver(&self, event: serde_json::Value) {
        let mut attempt = 0;
        loop {
            match handle_status_change(&self.stopper, &event).await {
                Ok(done) => {
                    tracing::info!(?done, "status change handled");
                    self.handled.lock().expect("stop handler lock").push(done);
                    return;
                }
                Err(e) if attempt < STOP_EVENT_RETRIES => {
                    tracing::warn!(error = %e, attempt, "status change failed; retrying");
                    self.clock
                        .sleep(STOP_EVENT_RETRY_SECONDS[attempt as usize])
                        .await;
                    attempt += 1;
                }
                Err(e) => {
                    let reason = DeadLetterReason {
                        error: e.to_string(),
                        ..DeadLetterReason::default()
                    };
                    if let Err(dlq) = self.dead_letters.send(&event.to_string(), &reason).await {
                        tracing::error!(error = %dlq, "could not dead-letter a status change");
                    }
                    return;
                }
            }
        }
    }
}
