//! handle_poll / handle_collect: payloads that break the state machine contract are
//! `NonRetryable`, and the error type reaches Lambda's `errorType`.

use std::sync::Arc;

use lambda_runtime::Diagnostic;
use runbridge_core::{BackoffPolicy, ConcurrencyLimit, IdempotencyKey, OffsetDateTime, SlotHold};
use runbridge_handlers::poll::Poller;
use runbridge_handlers::ports::{Renewal, SlotLease, Slots};
use runbridge_handlers::{HandlerError, SystemClock};
use runbridge_lambda::{handle_poll, FunctionError};
use runbridge_test_support::doubles::LedgerDouble;
use runbridge_vendors::Vendors;
use serde_json::json;

/// Slots the step must not reach: a payload without a handle takes, renews and releases none.
struct UntouchedSlots;

#[async_trait::async_trait]
impl Slots for UntouchedSlots {
    async fn acquire(
        &self,
        _: &ConcurrencyLimit,
        _: &IdempotencyKey,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<Option<SlotLease>, HandlerError> {
        panic!("a payload without a handle takes no slot")
    }
    async fn renew(
        &self,
        _: &SlotHold,
        _: &IdempotencyKey,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<Renewal, HandlerError> {
        panic!("a payload without a handle renews no slot")
    }
    async fn release(&self, _: &SlotHold, _: &IdempotencyKey) -> Result<(), HandlerError> {
        panic!("a payload without a handle releases no slot")
    }
    async fn holders(
        &self,
        _: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, HandlerError> {
        panic!("a payload without a handle lists no slot")
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
