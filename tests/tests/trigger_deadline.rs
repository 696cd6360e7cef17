//! The trigger's vendor calls end with the invocation's remaining time (issue 10, "the trigger's
//! retry budget bounded by its remaining time"): with a Lambda deadline, the HTTP retry loop
//! neither starts an attempt nor waits for a retry past the deadline less
//! `VENDOR_CALL_MARGIN`, and says what it knows — a refusal stays a refusal (the claim is
//! released), a submit cut off in flight stays unknown (the claim is kept and reconciled).

use runbridge_system_tests::harness;

use std::time::{Duration, Instant};

use harness::{example_request, Harness, HarnessOptions};
use runbridge_core::VendorKind;
use runbridge_handlers::trigger::{Trigger, VENDOR_CALL_MARGIN};
use runbridge_handlers::{HandlerError, Ledger};
use runbridge_sim::Fault;
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::VendorError;
use time::OffsetDateTime;
use VendorKind::{Amc, Carto};

/// The harness's trigger as a Lambda with `left` before its deadline for vendor calls.
fn trigger_with_time(h: &Harness, left: Duration) -> Trigger {
    let mut trigger = h.trigger_with(h.ledger.clone(), h.executions.clone());
    trigger.deadline = Some(OffsetDateTime::now_utc() + VENDOR_CALL_MARGIN + left);
    trigger
}

/// 503s on create with a retry budget of about 10 s: with 1 s left the trigger gives up within
/// the second, with the vendor's 503 (nothing was created, so the claim is released, and the
/// error is retryable); the next delivery submits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_submit_stops_retrying_at_the_deadline_and_releases_the_claim() {
    let h = Harness::start_with(HarnessOptions {
        retry: RetryConfig {
            min_delay: Duration::from_millis(600),
            max_delay: Duration::from_secs(3),
            ..RetryConfig::fast()
        },
        ..HarnessOptions::default()
    })
    .await;
    for vendor in [Amc, Carto] {
        let id = "deadline-503";
        h.fault_submits(
            vendor,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            1_000,
        );
        let body = example_request(vendor, id);
        let started = Instant::now();
        let err = trigger_with_time(&h, Duration::from_secs(1))
            .handle_bytes(&body, None)
            .await
            .expect_err("every create answers 503");
        let took = started.elapsed();
        println!("{vendor}: gave up after {took:?}: {err}");
        assert!(
            took < Duration::from_millis(2_500),
            "{vendor}: {took:?}, past the 1 s left"
        );
        assert!(err.is_retryable(), "{vendor}: {err}");
        assert!(
            matches!(&err, HandlerError::Vendor(VendorError::Unavailable { status: Some(503), message, .. }) if message.contains("out of time")),
            "{vendor}: {err:?}"
        );
        let key = Harness::key_for(vendor, id);
        assert_eq!(
            h.ledger.get(&key).await.unwrap(),
            None,
            "{vendor}: a refusal releases the claim"
        );
        assert_eq!(h.sim.sim.control.runs_created(vendor), 0, "{vendor}");

        h.sim.sim.faults.clear();
        h.trigger.handle_bytes(&body, None).await.unwrap();
        let manifest = h.run_to_end_for(vendor, id).await;
        assert_eq!(manifest.state, runbridge_core::RunState::Succeeded);
        assert_eq!(h.sim.sim.control.runs_created(vendor), 1, "{vendor}");
    }
}

/// A create that hangs past the deadline is cut off there and is an unknown outcome, never a
/// refusal: the claim is kept, and the next delivery reconciles — one AMC run, watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_cut_off_at_the_deadline_stays_unknown_and_is_reconciled_not_repeated() {
    let h = Harness::start().await;
    let id = "deadline-hang";
    h.fault_submits(Amc, Fault::Delay { millis: 3_000 }, 1);
    let body = example_request(Amc, id);
    let started = Instant::now();
    let err = trigger_with_time(&h, Duration::from_secs(1))
        .handle_bytes(&body, None)
        .await
        .expect_err("the create hangs past the deadline");
    let took = started.elapsed();
    println!("amc: cut off after {took:?}: {err}");
    assert!(took < Duration::from_millis(2_500), "{took:?}");
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            &err,
            HandlerError::Vendor(VendorError::OutcomeUnknown { .. })
        ),
        "an interrupted submit is unknown, not refused: {err:?}"
    );
    let key = Harness::key_for(Amc, id);
    let entry = h
        .ledger
        .get(&key)
        .await
        .unwrap()
        .expect("the claim is kept");
    assert!(entry.run().is_none());

    // Let the simulator finish the delayed create (or not), then deliver again: the lease of the
    // cut-off invocation is over, so the trigger asks AMC and watches what it finds.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    h.trigger.handle_bytes(&body, None).await.unwrap();
    let manifest = h.run_to_end_for(Amc, id).await;
    assert_eq!(manifest.state, runbridge_core::RunState::Succeeded);
    assert_eq!(
        h.sim.sim.control.runs_created(Amc),
        1,
        "one run, whether the cut-off create landed or not"
    );
}
