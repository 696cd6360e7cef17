//! The stop handler: a stopped execution's vendor run is cancelled and the run ends CANCELLED,
//! whatever state its key was in.

use runbridge_core::{Attribution, KeyState, LedgerEntry, Manifest, RunState, VendorKind};
use runbridge_handlers::finish::Ending;
use runbridge_handlers::stopped::{execution_stopped, ExecutionStopped, StopHandled, StopStatus};
use runbridge_handlers::HandlerError;

use super::support::Ctx;

const AMC: VendorKind = VendorKind::Amc;

fn stop(entry: &LedgerEntry, status: StopStatus) -> ExecutionStopped {
    ExecutionStopped {
        name: entry.key.execution_name(),
        status,
        execution_arn: None,
        error: Some("runbridge.Cancelled".into()),
        cause: Some("cancelled by an operator".into()),
    }
}

/// The manifest of `entry`'s run, if written.
fn manifest(ctx: &Ctx, entry: &LedgerEntry) -> Option<Manifest> {
    let handle = entry.handle()?;
    let key = ctx.finisher().layout.paths(&handle).manifest();
    ctx.sink
        .object(&key)
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

/// A queued AMC run that took a slot and whose admission submitted it to the vendor (the
/// simulator): its entry, recorded.
async fn submitted_run(ctx: &Ctx, request_id: &str) -> LedgerEntry {
    let mut entry = ctx.queued(AMC, request_id, |_| {});
    ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);
    let run = ctx.submit_behind_the_ledger(&entry).await;
    ctx.recorded(&mut entry, &run);
    entry
}

#[tokio::test]
async fn a_submitted_run_is_cancelled_at_the_vendor_and_ends_cancelled() {
    let ctx = Ctx::start().await;
    let entry = submitted_run(&ctx, "stop-1").await;
    let run_id = entry.run().unwrap().vendor_run_id.clone();

    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    let StopHandled::Cancelled {
        vendor_run_id,
        cancel,
        manifest_key,
        ..
    } = &handled
    else {
        panic!("{handled:?}")
    };
    assert_eq!(vendor_run_id, &run_id);
    assert!(cancel.contains("cancelled"), "{cancel}");
    assert_eq!(ctx.calls("amc.cancel"), 1);
    let written = manifest(&ctx, &entry).expect("a CANCELLED manifest");
    assert_eq!(written.state, RunState::Cancelled);
    assert_eq!(
        written.attribution,
        Some(Attribution::Customer),
        "an operator's stop"
    );
    assert!(
        written
            .reason
            .as_deref()
            .unwrap()
            .contains("cancelled by an operator"),
        "{:?}",
        written.reason
    );
    let published = ctx.events.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].state, RunState::Cancelled);
    assert_eq!(&published[0].manifest_key, manifest_key);
    assert!(ctx.slots.all().is_empty(), "the slot is given back");
}

#[tokio::test]
async fn a_timed_out_execution_is_the_platforms_to_answer_for() {
    let ctx = Ctx::start().await;
    let entry = submitted_run(&ctx, "stop-2").await;
    execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::TimedOut))
        .await
        .unwrap();
    let written = manifest(&ctx, &entry).unwrap();
    assert_eq!(written.state, RunState::Cancelled);
    assert_eq!(written.attribution, Some(Attribution::Platform));
    assert!(written.reason.unwrap().contains("timed out"));
}

#[tokio::test]
async fn a_queued_run_ends_cancelled_with_nothing_submitted() {
    let ctx = Ctx::start().await;
    let mut entry = ctx.queued(AMC, "stop-queued-1", |_| {});
    ctx.take_slot(&mut entry).await;
    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    let StopHandled::Cancelled {
        vendor_run_id,
        cancel,
        ..
    } = &handled
    else {
        panic!("{handled:?}")
    };
    assert_eq!(vendor_run_id, "");
    assert!(cancel.contains("nothing had been submitted"), "{cancel}");
    assert_eq!(manifest(&ctx, &entry).unwrap().state, RunState::Cancelled);
    assert_eq!(ctx.events.published().len(), 1);
    assert_eq!(ctx.runs_created(AMC), 0);
    assert_eq!(ctx.calls("amc.cancel"), 0);
    assert!(ctx.slots.all().is_empty(), "the slot is given back");
}

#[tokio::test]
async fn a_run_an_admission_in_flight_made_is_recorded_then_cancelled() {
    let ctx = Ctx::start().await;
    let mut entry = ctx.queued(AMC, "stop-admitting-1", |_| {});
    ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);
    let made = ctx.submit_behind_the_ledger(&entry).await;

    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    assert!(
        matches!(&handled, StopHandled::Cancelled { vendor_run_id, .. } if *vendor_run_id == made.vendor_run_id),
        "{handled:?}"
    );
    let stored = ctx.stored(&entry.key).unwrap();
    assert_eq!(
        stored.run().map(|r| r.vendor_run_id.as_str()),
        Some(made.vendor_run_id.as_str()),
        "recorded"
    );
    assert_eq!(ctx.calls("amc.cancel"), 1);
    assert_eq!(manifest(&ctx, &stored).unwrap().state, RunState::Cancelled);
    assert!(ctx.slots.all().is_empty());
}

#[tokio::test]
async fn an_admission_in_flight_with_no_run_found_is_settled_after_its_time() {
    let ctx = Ctx::start().await;
    let mut entry = ctx.queued(AMC, "stop-admitting-2", |_| {});
    ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);

    // The submit may still land: the stop is retried later.
    let err = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Transient(_)), "{err}");
    assert!(err.is_retryable());
    assert_eq!(ctx.stored(&entry.key), Some(entry.clone()), "unchanged");
    assert!(manifest(&ctx, &entry).is_none());
    assert!(ctx.events.published().is_empty());

    // Past it, nothing was made: the run ends CANCELLED without one.
    ctx.advance(61.0);
    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    assert!(
        matches!(&handled, StopHandled::Cancelled { vendor_run_id, .. } if vendor_run_id.is_empty()),
        "{handled:?}"
    );
    let stored = ctx.stored(&entry.key).unwrap();
    assert!(
        matches!(stored.state, KeyState::Queued(_)),
        "{:?}",
        stored.state
    );
    assert_eq!(manifest(&ctx, &entry).unwrap().state, RunState::Cancelled);
    assert_eq!(ctx.runs_created(AMC), 0);
    assert!(ctx.slots.all().is_empty());
}

#[tokio::test]
async fn a_claim_without_a_run_is_left_to_its_lease() {
    let ctx = Ctx::start().await;
    let entry = ctx.claimed(VendorKind::Amperity, "stop-claimed-1");
    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    assert!(
        matches!(&handled, StopHandled::NoVendorRun { key, .. } if *key == entry.key.to_string()),
        "{handled:?}"
    );
    assert_eq!(ctx.stored(&entry.key), Some(entry), "the claim stays");
    assert!(ctx.sink.keys().is_empty(), "nothing written");
    assert!(ctx.events.published().is_empty());
}

#[tokio::test]
async fn a_run_with_a_manifest_is_already_finished() {
    let ctx = Ctx::start().await;
    let entry = submitted_run(&ctx, "stop-finished-1").await;
    let handle = entry.handle().unwrap();
    let finisher = ctx.finisher();
    let ending = Ending {
        state: RunState::Succeeded,
        reason: None,
        attribution: None,
        files: Vec::new(),
    };
    let outcome = finisher
        .finish(&handle, ending, entry.slot().map(|s| s.scope.as_str()), 0.0)
        .await
        .unwrap();

    let handled = execution_stopped(&ctx.stopper(), stop(&entry, StopStatus::Aborted))
        .await
        .unwrap();
    assert_eq!(
        handled,
        StopHandled::AlreadyFinished {
            key: entry.key.to_string(),
            manifest_key: outcome.manifest_key,
            announced_now: false,
        }
    );
    assert_eq!(ctx.calls("amc.cancel"), 0, "nothing cancelled");
    assert_eq!(manifest(&ctx, &entry).unwrap().state, RunState::Succeeded);
    assert_eq!(ctx.events.published().len(), 1, "announced once");
}
