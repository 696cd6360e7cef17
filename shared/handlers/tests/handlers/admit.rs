//! The admit step: a queued run waits for a slot, and is submitted once it holds one.

use runbridge_core::{Attribution, IdempotencyKey, KeyState, VendorKind};
use runbridge_handlers::Slots;
use runbridge_sim::Fault;
use time::Duration;

use super::support::{admit_input, Ctx};

const AMC: VendorKind = VendorKind::Amc;

/// A context whose AMC profile allows one run at once.
async fn one_slot() -> Ctx {
    Ctx::start().await.with_amc_limit(1)
}

#[tokio::test]
async fn with_no_free_slot_the_run_waits_and_the_vendor_is_not_called() {
    let ctx = one_slot().await;
    let entry = ctx.queued(AMC, "no-slot-1", |_| {});
    let limit = ctx.vendors.concurrency_limit(&entry.request).unwrap();
    let other = IdempotencyKey::from_string("amc-other".into());
    let now = ctx.now();
    ctx.slots
        .acquire(&limit, &other, now, now + Duration::hours(1))
        .await
        .unwrap()
        .expect("the one slot");

    let out = ctx.admitter().admit(admit_input(&entry, 0)).await.unwrap();
    assert!(out.queued && !out.failed, "{out:?}");
    assert_eq!(out.waits, 1);
    assert!(out.wait_seconds >= 10, "{out:?}");
    assert_eq!(out.handle.vendor_run_id, None);
    assert_eq!(ctx.stored(&entry.key), Some(entry), "unchanged");
    assert_eq!(ctx.runs_created(AMC), 0);
    let renewal = ctx
        .slots
        .renew(
            &runbridge_core::SlotHold {
                scope: limit.scope,
                slot: 0,
            },
            &other,
            now,
            now + Duration::hours(1),
        )
        .await
        .unwrap();
    assert!(renewal.wanted, "the holder learns that a run waits");
}

#[tokio::test]
async fn a_free_slot_is_taken_and_the_run_submitted() {
    let ctx = one_slot().await;
    let entry = ctx.queued(AMC, "admitted-1", |_| {});
    let out = ctx.admitter().admit(admit_input(&entry, 2)).await.unwrap();
    assert!(!out.queued && !out.failed, "{out:?}");
    assert_eq!(out.waits, 2, "an admission is not a wait");
    let stored = ctx.stored(&entry.key).unwrap();
    let KeyState::Submitted {
        run,
        queue: Some(queue),
    } = &stored.state
    else {
        panic!("{:?}", stored.state)
    };
    assert_eq!(out.handle.vendor_run_id.as_ref(), Some(&run.vendor_run_id));
    assert_eq!(out.handle.submitted_at, run.submitted_at);
    let hold = queue.slot.clone().expect("the run holds its slot");
    assert_eq!(ctx.slots.holder(&hold.scope, hold.slot), Some(entry.key));
    assert_eq!(ctx.runs_created(AMC), 1);
}

#[tokio::test]
async fn the_vendors_own_concurrency_refusal_is_a_wait_that_keeps_the_slot() {
    let ctx = one_slot().await;
    let entry = ctx.queued(AMC, "vendor-full-1", |_| {});
    ctx.fault_submits(
        AMC,
        Fault::Status {
            status: 429,
            retry_after: Some(120),
        },
        1,
    );
    let out = ctx.admitter().admit(admit_input(&entry, 0)).await.unwrap();
    assert!(out.queued && !out.failed, "{out:?}");
    assert!(out.wait_seconds >= 10, "{out:?}");
    let stored = ctx.stored(&entry.key).unwrap();
    let KeyState::Queued(queue) = &stored.state else {
        panic!("{:?}", stored.state)
    };
    assert_eq!(queue.vendor_full, 1);
    let hold = queue.slot.clone().expect("the slot is kept");
    assert_eq!(
        ctx.slots.holder(&hold.scope, hold.slot),
        Some(entry.key.clone())
    );
    assert_eq!(ctx.runs_created(AMC), 0);

    // The next attempt, with the vendor's room back, submits under the same slot.
    let out = ctx.admitter().admit(admit_input(&stored, 1)).await.unwrap();
    assert!(!out.queued && !out.failed, "{out:?}");
    assert_eq!(ctx.stored(&entry.key).unwrap().slot(), Some(&hold));
    assert_eq!(ctx.runs_created(AMC), 1);
}

#[tokio::test]
async fn a_definite_refusal_fails_the_run_with_its_reason_and_frees_the_slot() {
    let ctx = one_slot().await;
    let entry = ctx.queued(AMC, "refused-1", |_| {});
    ctx.fault_submits(
        AMC,
        Fault::Answer {
            status: 400,
            body: r#"{"message":"sql_query: syntax error"}"#.into(),
        },
        1,
    );
    let out = ctx.admitter().admit(admit_input(&entry, 0)).await.unwrap();
    assert!(out.failed && !out.queued, "{out:?}");
    let reason = out.reason.as_deref().unwrap();
    assert!(reason.contains("the submit was refused"), "{reason}");
    assert_eq!(out.attribution, Some(Attribution::Customer));
    let stored = ctx.stored(&entry.key).unwrap();
    assert!(
        matches!(&stored.state, KeyState::Queued(q) if q.slot.is_none()),
        "{:?}",
        stored.state
    );
    assert!(ctx.slots.all().is_empty(), "the slot is free again");
    assert_eq!(ctx.runs_created(AMC), 0);
}

#[tokio::test]
async fn a_deadline_passed_while_waiting_fails_the_run_and_frees_its_slot() {
    let ctx = one_slot().await;
    let mut entry = ctx.queued(AMC, "late-1", |r| r["deadline_seconds"] = 600.into());
    ctx.take_slot(&mut entry).await;
    ctx.advance(601.0);
    let out = ctx.admitter().admit(admit_input(&entry, 7)).await.unwrap();
    assert!(out.failed && !out.queued, "{out:?}");
    let reason = out.reason.as_deref().unwrap();
    assert!(reason.contains("no submit was possible"), "{reason}");
    assert_eq!(out.attribution, Some(Attribution::Platform));
    assert_eq!(ctx.stored(&entry.key).unwrap().slot(), None);
    assert!(ctx.slots.all().is_empty(), "the slot is free again");
    assert_eq!(ctx.runs_created(AMC), 0, "nothing submitted");
}

#[tokio::test]
async fn an_admission_in_flight_is_waited_out_then_reconciled() {
    let ctx = one_slot().await;
    let mut entry = ctx.queued(AMC, "in-flight-1", |_| {});
    ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);
    // The earlier admission's submit reached the vendor; its answer was lost.
    let lost = ctx.submit_behind_the_ledger(&entry).await;

    let out = ctx.admitter().admit(admit_input(&entry, 3)).await.unwrap();
    assert!(out.queued && !out.failed, "{out:?}");
    assert!(
        (55..=60).contains(&out.wait_seconds),
        "waits out the in-flight time: {out:?}"
    );
    assert_eq!(ctx.calls("amc.list"), 0, "the vendor is not asked yet");
    assert_eq!(ctx.stored(&entry.key), Some(entry.clone()));

    ctx.advance(61.0);
    let out = ctx.admitter().admit(admit_input(&entry, 4)).await.unwrap();
    assert!(!out.queued && !out.failed, "{out:?}");
    assert_eq!(out.handle.vendor_run_id, Some(lost.vendor_run_id));
    assert!(ctx.calls("amc.list") >= 1, "found by asking the vendor");
    assert_eq!(ctx.runs_created(AMC), 1, "not submitted again");
    assert!(ctx.stored(&entry.key).unwrap().slot().is_some());
}

#[tokio::test]
async fn an_admission_in_flight_that_made_nothing_is_submitted_after_its_time() {
    let ctx = one_slot().await;
    let mut entry = ctx.queued(AMC, "in-flight-2", |_| {});
    ctx.take_slot(&mut entry).await;
    ctx.admitting(&mut entry, 60);
    ctx.advance(61.0);
    let out = ctx.admitter().admit(admit_input(&entry, 1)).await.unwrap();
    assert!(!out.queued && !out.failed, "{out:?}");
    assert!(ctx.calls("amc.list") >= 1, "asked before submitting");
    assert_eq!(ctx.runs_created(AMC), 1);
    assert!(ctx.stored(&entry.key).unwrap().run().is_some());
}
