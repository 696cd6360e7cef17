//! The finish protocol: the manifest first, then the announcement and its record, then the slot.

use std::sync::Arc;

use runbridge_core::{
    Attribution, LedgerEntry, Manifest, RunHandle, RunOutcome, RunState, SlotHold, VendorKind,
};
use runbridge_handlers::finish::{Ending, Finisher};
use runbridge_test_support::doubles::FailingEvents;

use super::support::Ctx;

/// A queued AMC run holding a slot, admitted as `run-1`: its handle, entry and slot.
async fn admitted_run(ctx: &Ctx, request_id: &str) -> (RunHandle, LedgerEntry, SlotHold) {
    let mut entry = ctx.queued(VendorKind::Amc, request_id, |_| {});
    let hold = ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);
    let run = runbridge_vendors::SubmittedRun {
        vendor_run_id: "run-1".into(),
        vendor_state: None,
    };
    ctx.recorded(&mut entry, &run);
    (entry.handle().unwrap(), entry, hold)
}

fn failed(reason: &str) -> Ending {
    Ending {
        state: RunState::Failed,
        reason: Some(reason.into()),
        attribution: Some(Attribution::Customer),
        files: Vec::new(),
    }
}

fn manifest(ctx: &Ctx, key: &str) -> Manifest {
    serde_json::from_slice(&ctx.sink.object(key).expect("a manifest")).unwrap()
}

#[tokio::test]
async fn finish_writes_the_manifest_announces_it_records_that_and_gives_the_slot_back() {
    let ctx = Ctx::start().await;
    let (handle, _, hold) = admitted_run(&ctx, "finish-1").await;
    let finisher = ctx.finisher();
    let paths = finisher.layout.paths(&handle);

    let outcome = finisher
        .finish(&handle, failed("the query failed"), Some(&hold.scope), 1.5)
        .await
        .unwrap();

    let written = manifest(&ctx, &paths.manifest());
    assert_eq!(written.state, RunState::Failed);
    assert_eq!(written.reason.as_deref(), Some("the query failed"));
    assert_eq!(written.vendor_run_id, "run-1");
    assert_eq!(outcome, RunOutcome::of(&written, paths.manifest()));
    assert_eq!(ctx.events.published(), vec![outcome.clone()]);
    let record: serde_json::Value =
        serde_json::from_slice(&ctx.sink.object(&paths.announced()).expect("recorded")).unwrap();
    assert_eq!(record["event_id"], outcome.event_id.as_str());
    assert_eq!(record["detail_type"], "Run Failed");
    assert!(
        ctx.slots.record(&hold.scope).holders.is_empty(),
        "the slot is free again"
    );
}

#[tokio::test]
async fn an_announcement_that_failed_is_made_by_finish_existing_once() {
    let ctx = Ctx::start().await;
    let (handle, _, hold) = admitted_run(&ctx, "finish-2").await;
    let finisher = Finisher {
        events: Arc::new(FailingEvents::new(ctx.events.clone(), 1)),
        ..(*ctx.finisher()).clone()
    };
    let paths = finisher.layout.paths(&handle);

    let err = finisher
        .finish(&handle, failed("x"), Some(&hold.scope), 0.0)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        ctx.sink.object(&paths.manifest()).is_some(),
        "the manifest was written first"
    );
    assert!(
        ctx.sink.object(&paths.announced()).is_none(),
        "not recorded"
    );
    assert!(ctx.events.published().is_empty());
    assert_eq!(
        ctx.slots.record(&hold.scope).holders.len(),
        1,
        "the retry gives the slot back"
    );

    // The retry finds the manifest without the record: it announces, with the same outcome.
    let (outcome, announced_now) = finisher.finish_existing(&handle).await.unwrap().unwrap();
    assert!(announced_now);
    assert_eq!(ctx.events.published(), vec![outcome.clone()]);
    assert!(ctx.sink.object(&paths.announced()).is_some());
    assert_eq!(
        outcome,
        RunOutcome::of(&manifest(&ctx, &paths.manifest()), paths.manifest())
    );

    // Recorded now: a further retry announces nothing.
    let (again, announced_now) = finisher.finish_existing(&handle).await.unwrap().unwrap();
    assert!(!announced_now);
    assert_eq!(again, outcome);
    assert_eq!(ctx.events.published().len(), 1);
}

#[tokio::test]
async fn finish_existing_without_a_manifest_finds_nothing() {
    let ctx = Ctx::start().await;
    let (handle, _, _) = admitted_run(&ctx, "finish-3").await;
    let finisher = ctx.finisher();
    assert_eq!(finisher.finish_existing(&handle).await.unwrap(), None);
    assert!(ctx.events.published().is_empty());
    assert!(ctx.sink.keys().is_empty(), "nothing written");
}
