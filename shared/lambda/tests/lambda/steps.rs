//! handle_poll / handle_collect: payloads that break the state machine contract are
//! `NonRetryable`, and the error type reaches Lambda's `errorType`.

use std::sync::Arc;

use lambda_runtime::Diagnostic;
use runbridge_core::{BackoffPolicy, ScopeQueue};
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{Slots, StoredScope};
use runbridge_handlers::{HandlerError, SystemClock};
use runbridge_lambda::{handle_poll, FunctionError};
use runbridge_test_support::doubles::LedgerDouble;
use runbridge_vendors::Vendors;
use serde_json::json;

/// Slots the step must not reach: a payload without a handle reads and changes no scope.
struct UntouchedSlots;

#[async_trait::async_trait]
impl Slots for UntouchedSlots {
    async fn read(&self, _: &str) -> Result<StoredScope, HandlerError> {
        panic!("a payload without a handle reads no scope")
    }
    async fn write(&self, _: &str, _: &ScopeQueue, _: Option<&str>) -> Result<bool, HandlerError> {
        panic!("a payload without a handle changes no scope")
    }
}

#[tokio::test]
async fn a_poll_payload_without_a_handle_is_non_retryable() {
    let poller = Poller {
        vendors: Vendors::from_clients([]),
        clock: Arc::new(SystemClock),
        policy: BackoffPolicy::default(),
        // A payload without a handle is refused before the request is loaded.
        ledger: Arc::new(LedgerDouble::untouched(
            "a payload without a handle must be refused before the ledger is reached",
        )),
        slots: Arc::new(UntouchedSlots),
        callbacks: Arc::new(runbridge_test_support::memory::LocalCallbacks::default()),
        history: Arc::new(runbridge_test_support::memory::MemoryHistory::default()),
    };
    let err = handle_poll(&poller, json!({"wait_seconds": 5}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryable");
    let diagnostic: Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "NonRetryable");
    assert!(
        diagnostic.error_message.contains("handle"),
        "{}",
        diagnostic.error_message
    );
}

#[test]
fn error_types_are_the_names_the_state_machine_matches() {
    let asl = include_str!("../../../../infra/statemachine.asl.json");
    let retryable: Diagnostic = FunctionError(HandlerError::Transient("later".into())).into();
    assert_eq!(retryable.error_type, "Retryable");
    assert!(
        asl.contains("\"Retryable\""),
        "the ASL Retry clauses must match the name the functions use"
    );
    let port: Diagnostic = FunctionError(HandlerError::port("sink", "AccessDenied", false)).into();
    assert_eq!(port.error_type, "NonRetryable");
}
