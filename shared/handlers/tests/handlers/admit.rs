//! The admit step: a queued run waits for a slot, and is submitted once it holds one.

use runbridge_core::{Attribution, KeyState, VendorKind};
use runbridge_handlers::admit::Enqueued;
use runbridge_handlers::queue::change;
use runbridge_sim::Fault;

use super::support::{admit_input, enqueue_input, Ctx};

const AMC: VendorKind = VendorKind::Amc;

/// A context whose AMC profile allows one run at once.
async fn one_slot() -> Ctx {
    Ctx::start().await.with_amc_limit(1)
}

#[tokio::test]
async fn with_no_free_slot_the_run_waits_and_the_vendor_is_not_called() {
    let ctx = one_slot().await;
    let holder = ctx.queued(AMC, "holder-1", |_| {});
    ctx.occupy(&holder, None).await.expect("the one slot");
    let entry = ctx.queued(AMC, "no-slot-1", |_| {});

    let out = ctx.admitter().admit(admit_input(&entry, 0)).await.unwrap();
    assert!(out.queued && !out.failed && !out.try_again, "{out:?}");
    assert_eq!(out.waits, 1);
    assert!(out.wait_seconds >= 10, "{out:?}");
    assert!(out.park_seconds >= 1, "{out:?}");
    assert_eq!(out.handle.vendor_run_id, None);
    assert_eq!(ctx.stored(&entry.key), Some(entry.clone()), "unchanged");
    assert_eq!(ctx.runs_created(AMC), 0);
    assert_eq!(ctx.scope(&entry).place_of(&entry.key), Some(0), "in line");
}

#[tokio::test]
async fn a_parked_run_with_a_free_slot_is_woken_at_once() {
    let ctx = one_slot().await;
    let entry = ctx.queued(AMC, "parked-free-1", |_| {});
    ctx.callbacks.park("tok-1");
    let enqueued = ctx
        .admitter()
        .enqueue(enqueue_input(&entry, "tok-1"))
        .await
        .unwrap();
    assert_eq!(enqueued, Enqueued::Admitted);
    assert_eq!(ctx.callbacks.woken(), vec!["tok-1".to_owned()]);
    assert!(ctx.scope(&entry).held_by(&entry.key).is_some());
    assert_eq!(
        ctx.runs_created(AMC),
        0,
        "the Admit step submits, not the enqueue"
    );
}

#[tokio::test]
async fn parked_runs_are_woken_in_arrival_order_as_slots_are_given_back() {
    let ctx = one_slot().await;
    let holder = ctx.queued(AMC, "holder-2", |_| {});
    ctx.occupy(&holder, None).await.expect("the one slot");
    // Three runs arrive 0, 1, 2 s apart and park in the opposite order.
    let mut waiters = Vec::new();
    for n in 0..3 {
        waiters.push(ctx.queued(AMC, &format!("waiter-{n}"), |_| {}));
        ctx.advance(1.0);
    }
    for (n, entry) in waiters.iter().enumerate().rev() {
        let token = format!("tok-{n}");
        ctx.callbacks.park(&token);
        let enqueued = ctx
            .admitter()
            .enqueue(enqueue_input(entry, &token))
            .await
            .unwrap();
        assert_eq!(enqueued, Enqueued::Waiting);
    }
    assert!(
        ctx.callbacks.woken().is_empty(),
        "nobody woken while the slot is held"
    );
    // Each release hands the slot to the oldest waiter, with one write.
    let finisher = ctx.finisher();
    let scope = ctx
        .vendors
        .concurrency_limit(&holder.request)
        .unwrap()
        .scope;
    finisher
        .release(Some(&scope), &holder.handle().unwrap())
        .await
        .unwrap();
    for (n, waiter) in waiters.iter().enumerate() {
        assert_eq!(
            ctx.callbacks.woken(),
            (0..=n).map(|i| format!("tok-{i}")).collect::<Vec<_>>()
        );
        finisher
            .release(Some(&scope), &waiter.handle().unwrap())
            .await
            .unwrap();
    }
    assert!(ctx.slots.all().is_empty(), "every slot given back");
}

#[tokio::test]
async fn a_waiter_whose_execution_stopped_is_skipped_and_the_next_one_woken() {
    let ctx = one_slot().await;
    let holder = ctx.queued(AMC, "holder-3", |_| {});
    ctx.occupy(&holder, None).await.expect("the one slot");
    let gone = ctx.queued(AMC, "gone-1", |_| {});
    ctx.advance(1.0);
    let next = ctx.queued(AMC, "next-1", |_| {});
    ctx.occupy(&gone, Some("tok-gone")).await;
    ctx.occupy(&next, Some("tok-next")).await;
    ctx.callbacks.abandon("tok-gone"); // its execution was stopped while parked
    let scope = ctx
        .vendors
        .concurrency_limit(&holder.request)
        .unwrap()
        .scope;
    ctx.finisher()
        .release(Some(&scope), &holder.handle().unwrap())
        .await
        .unwrap();
    assert_eq!(ctx.callbacks.woken(), vec!["tok-next".to_owned()]);
    let record = ctx.scope(&next);
    assert!(record.held_by(&next.key).is_some());
    assert!(record.held_by(&gone.key).is_none() && record.place_of(&gone.key).is_none());
}

#[tokio::test]
async fn a_lost_wake_up_is_recovered_when_the_park_times_out_and_the_run_asks_again() {
    let ctx = one_slot().await;
    let holder = ctx.queued(AMC, "holder-4", |_| {});
    ctx.occupy(&holder, None).await.expect("the one slot");
    let waiter = ctx.queued(AMC, "lost-1", |_| {});
    ctx.occupy(&waiter, Some("tok-first-park")).await;
    // The releaser gives the slot to the waiter and crashes before waking it.
    let scope = ctx
        .vendors
        .concurrency_limit(&holder.request)
        .unwrap()
        .scope;
    let now = ctx.now();
    change(ctx.slots.as_ref(), &scope, |q| {
        q.leave(&holder.key, now, now + runbridge_core::ADMISSION_LEASE)
    })
    .await
    .unwrap();
    assert!(ctx.callbacks.woken().is_empty());
    // The park times out (at most an hour); the retry parks again and asks: the slot is its own.
    ctx.advance(3_600.0);
    ctx.callbacks.abandon("tok-first-park");
    ctx.callbacks.park("tok-second-park");
    let enqueued = ctx
        .admitter()
        .enqueue(enqueue_input(&waiter, "tok-second-park"))
        .await
        .unwrap();
    assert_eq!(enqueued, Enqueued::Admitted);
    assert_eq!(ctx.callbacks.woken(), vec!["tok-second-park".to_owned()]);
    let out = ctx.admitter().admit(admit_input(&waiter, 0)).await.unwrap();
    assert!(!out.queued && !out.failed, "{out:?}");
    assert_eq!(ctx.runs_created(AMC), 1);
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
    assert_eq!(
        ctx.scope(&entry).held_by(&entry.key).map(|h| h.slot),
        Some(hold.slot)
    );
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
    assert!(out.queued && out.try_again && !out.failed, "{out:?}");
    assert!(out.wait_seconds >= 10, "{out:?}");
    let stored = ctx.stored(&entry.key).unwrap();
    let KeyState::Queued(queue) = &stored.state else {
        panic!("{:?}", stored.state)
    };
    assert_eq!(queue.vendor_full, 1);
    let hold = queue.slot.clone().expect("the slot is kept");
    assert_eq!(
        ctx.scope(&entry).held_by(&entry.key).map(|h| h.slot),
        Some(hold.slot)
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
    assert!(out.queued && out.try_again && !out.failed, "{out:?}");
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
