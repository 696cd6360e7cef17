//! AMC's limit of 10 running executions per instance, as a queue: requests beyond the limit wait
//! in the state machine (`WaitForSlot` → `Admit`) for a concurrency slot instead of being
//! refused by the vendor and retried into the dead-letter queue. Run on the local deployment
//! (the deployed state machine, the same handlers) against the AMC simulator, which refuses an
//! 11th active execution with 429 as AMC does.

use std::sync::Arc;

use runbridge_core::{KeyState, RunState, ScopeQueue, VendorKind};
use runbridge_handlers::ports::Ledger;
use runbridge_handlers::ports::{Callbacks, Wake};
use runbridge_handlers::queue::PARK_SECONDS_MAX;
use runbridge_handlers::HandlerError;
use runbridge_sim::{Fault, FaultRule, RunScript};
use runbridge_system_tests::harness::{
    example_request, Harness, HarnessOptions, AMC_EU, AMC_EU_INSTANCE,
};

/// The instance of `examples/amc.json`.
const INSTANCE: &str = "amcabc123def";
/// The simulated seconds each AMC run takes (queue + run).
const RUN_SECONDS: f64 = 600.0;

async fn harness(limit: u32) -> Harness {
    harness_with_runs_of(limit, RUN_SECONDS).await
}

async fn harness_with_runs_of(limit: u32, run_seconds: f64) -> Harness {
    let h = Harness::start_with(HarnessOptions {
        amc_max_concurrent: Some(limit),
        ..HarnessOptions::default()
    })
    .await;
    h.sim.sim.control.set_default_script(
        VendorKind::Amc,
        RunScript {
            queue_seconds: 0.0,
            run_seconds,
            rows: 100,
            ..RunScript::default()
        },
    );
    h
}

/// Waits (real time, at most 10 s) until the run of AMC `request_id` is submitted: it holds a
/// slot then, so a request triggered after it queues behind it.
async fn wait_submitted(h: &Harness, request_id: &str) {
    let key = Harness::key_for(VendorKind::Amc, request_id);
    for _ in 0..2_000 {
        let entry = h.ledger.get(&key).await.unwrap();
        if entry.is_some_and(|e| e.run().is_some()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{request_id} was never submitted");
}

/// Triggers AMC `request_id` (it queues) with the answer of its create, when its turn comes,
/// lost: AMC makes the run, the Admit cannot know.
async fn queue_with_its_create_answer_lost(h: &Harness, request_id: &str) {
    h.sim.sim.faults.inject(FaultRule::new(
        VendorKind::Amc,
        Some("POST"),
        "/workflowExecutions",
        Fault::DropResponse,
        1,
    ));
    let t = h
        .trigger
        .handle_bytes(&example_request(VendorKind::Amc, request_id), None)
        .await
        .unwrap();
    assert!(t.queued);
}

/// The slots still held and the runs still in line, from every scope record (should be none
/// once every run ended).
fn held_slots(h: &Harness) -> Vec<String> {
    let dir = h.out.path().join("_ledger").join("slots");
    let mut held = Vec::new();
    for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = file.file_name().to_string_lossy().into_owned();
        let Some(scope) = name.strip_suffix(".json") else {
            continue;
        };
        let record: ScopeQueue =
            serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
        held.extend(
            record
                .holders
                .iter()
                .map(|h| format!("{scope}: {} holds {}", h.key, h.slot)),
        );
        held.extend(
            record
                .waiting
                .iter()
                .map(|w| format!("{scope}: {} waits", w.key)),
        );
    }
    held
}

/// 50 AMC requests for one instance at once: every one completes, the instance never has more
/// than 10 executions active, AMC never refuses one, nothing is dead-lettered, and every slot is
/// given back. Prints the figures docs/BENCHMARKS.md reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_requests_for_one_instance_never_run_more_than_ten_at_once() {
    const RUNS: usize = 50;
    const LIMIT: u32 = 10;
    // Hour-long runs: at 2,000× an hour is 1.8 real seconds, long enough that a loaded machine's
    // real delays (each millisecond two simulated seconds) neither end a wave before the next
    // is admitted nor swamp the ratio to the ideal.
    const RUN_SECONDS: f64 = 3_600.0;
    let h = Arc::new(harness_with_runs_of(LIMIT, RUN_SECONDS).await);
    let started = h.sim.sim.clock.now();
    let mut triggers = Vec::new();
    for i in 0..RUNS {
        let h = h.clone();
        triggers.push(tokio::spawn(async move {
            let body = example_request(VendorKind::Amc, &format!("q-{i:02}"));
            h.trigger.handle_bytes(&body, None).await.unwrap()
        }));
    }
    let mut queued = 0;
    for t in triggers {
        let t = t.await.unwrap();
        assert!(
            t.vendor_run_id().is_none(),
            "the trigger never submits a limited run"
        );
        queued += usize::from(t.queued);
    }
    assert_eq!(
        queued, RUNS,
        "every AMC request of a limited profile is queued"
    );
    let mut last_end = started;
    for i in 0..RUNS {
        let manifest = h
            .run_to_end_for(VendorKind::Amc, &format!("q-{i:02}"))
            .await;
        assert_eq!(
            manifest.state,
            RunState::Succeeded,
            "q-{i:02}: {manifest:?}"
        );
        last_end = last_end.max(manifest.finished_at);
    }
    let control = &h.sim.sim.control;
    let max_active = control.max_observed(&format!("amc.active.{INSTANCE}"));
    let refused = control.requests("amc.create.over_limit");
    assert_eq!(
        control.runs_created(VendorKind::Amc),
        RUNS as u64,
        "one vendor run per request"
    );
    assert!(
        max_active <= u64::from(LIMIT),
        "{max_active} executions were active at once"
    );
    assert_eq!(
        max_active,
        u64::from(LIMIT),
        "the queue fills the instance's slots"
    );
    assert_eq!(
        refused, 0,
        "AMC refused {refused} creates for its concurrency limit"
    );
    assert!(
        h.dead_letters.sent().is_empty(),
        "{:?}",
        h.dead_letters.sent()
    );
    assert!(
        held_slots(&h).is_empty(),
        "slots still held: {:?}",
        held_slots(&h)
    );

    let total = (last_end - started).as_seconds_f64();
    let ideal = (RUNS as f64 / f64::from(LIMIT)).ceil() * RUN_SECONDS;
    println!("| runs | limit | max active at AMC | AMC 429s | dead letters | total (sim s) | ideal ⌈{RUNS}/{LIMIT}⌉ × {RUN_SECONDS} s | total ÷ ideal |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {RUNS} | {LIMIT} | {max_active} | {refused} | {} | {total:.0} | {ideal:.0} | {:.2} |",
        h.dead_letters.sent().len(),
        total / ideal
    );
    // Each wave waits for a poll to see the previous one end (at most a minute while runs wait)
    // and for a waiting run's next admit; at 2,000× every real millisecond of a loaded machine
    // is two simulated seconds more. bench/ measures the ratio at 100× (docs/BENCHMARKS.md).
    assert!(
        total >= ideal,
        "{total} s is faster than the limit allows ({ideal} s)"
    );
    assert!(
        total <= 3.0 * ideal,
        "{total} s against an ideal of {ideal} s"
    );
}

/// A queued run stopped before it got a slot ends CANCELLED with nothing submitted, and the
/// runs holding slots are untouched.
#[tokio::test]
async fn a_run_stopped_while_queued_is_cancelled_without_a_vendor_run() {
    let h = harness(1).await;
    let first = h
        .trigger
        .handle_bytes(&example_request(VendorKind::Amc, "holder"), None)
        .await
        .unwrap();
    wait_submitted(&h, "holder").await;
    let second = h
        .trigger
        .handle_bytes(&example_request(VendorKind::Amc, "waiter"), None)
        .await
        .unwrap();
    assert!(first.queued && second.queued);
    // Let the waiter try for the slot at least once.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        h.cancel(second.key()).unwrap(),
        "the waiter's execution was running"
    );
    let waiter = h.run_to_end_for(VendorKind::Amc, "waiter").await;
    assert_eq!(waiter.state, RunState::Cancelled, "{waiter:?}");
    assert!(waiter.vendor_run_id.is_empty(), "{waiter:?}");
    assert!(
        waiter
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("nothing had been submitted"),
        "{waiter:?}"
    );
    let holder = h.run_to_end_for(VendorKind::Amc, "holder").await;
    assert_eq!(holder.state, RunState::Succeeded);
    assert_eq!(h.sim.sim.control.runs_created(VendorKind::Amc), 1);
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// A run the vendor refuses when its turn comes ends FAILED with the vendor's reason, gives its
/// slot back, and the next queued run gets it.
#[tokio::test]
async fn a_run_refused_at_admission_fails_with_the_reason_and_frees_its_slot() {
    let h = harness(1).await;
    let mut bad: serde_json::Value =
        serde_json::from_slice(&example_request(VendorKind::Amc, "refused")).unwrap();
    // Valid to runbridge; AMC refuses it (403): the instance belongs to the other account.
    bad["instance_id"] = AMC_EU_INSTANCE.into();
    let refused = h
        .trigger
        .handle_bytes(&serde_json::to_vec(&bad).unwrap(), None)
        .await;
    let refused = match refused {
        Ok(t) => t,
        Err(e) => panic!("the request should pass runbridge's own validation: {e}"),
    };
    assert!(refused.queued);
    h.trigger
        .handle_bytes(&example_request(VendorKind::Amc, "next"), None)
        .await
        .unwrap();
    let manifest = h.run_to_end_for(VendorKind::Amc, "refused").await;
    assert_eq!(manifest.state, RunState::Failed, "{manifest:?}");
    let reason = manifest.reason.clone().unwrap_or_default();
    assert!(reason.contains("refused"), "{reason}");
    let next = h.run_to_end_for(VendorKind::Amc, "next").await;
    assert_eq!(next.state, RunState::Succeeded, "{next:?}");
    assert!(h.dead_letters.sent().is_empty());
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// Executions started outside runbridge fill the instance: the vendor's own 429 is a wait in the
/// queue (no failure, no dead letter), and the run starts once the instance has room.
#[tokio::test]
async fn an_instance_full_of_foreign_executions_is_waited_out() {
    let h = harness(10).await;
    // Nine runs outside runbridge's count plus ours exceed nothing; fill all ten with a longer
    // script so runbridge's first create is refused by AMC itself.
    let mut foreign = Vec::new();
    for i in 0..10 {
        let body = example_request(VendorKind::Amc, &format!("foreign-{i}"));
        let request = runbridge_core::RunRequest::from_json(&body)
            .unwrap()
            .resolve(h.sim.sim.clock.now());
        let key = runbridge_core::IdempotencyKey::for_request(&request, None);
        let vendor = h.trigger.vendors.for_request(&request).unwrap();
        foreign.push(vendor.submit(&request, &key).await.unwrap());
    }
    let t = h
        .trigger
        .handle_bytes(&example_request(VendorKind::Amc, "ours"), None)
        .await
        .unwrap();
    assert!(t.queued);
    let manifest = h.run_to_end_for(VendorKind::Amc, "ours").await;
    assert_eq!(manifest.state, RunState::Succeeded, "{manifest:?}");
    let control = &h.sim.sim.control;
    assert!(
        control.requests("amc.create.over_limit") >= 1,
        "AMC never refused: the test did not fill the instance"
    );
    assert_eq!(control.runs_created(VendorKind::Amc), 11);
    assert!(h.dead_letters.sent().is_empty());
    assert_eq!(foreign.len(), 10);
}

/// A queued run whose deadline passes before a slot frees ends FAILED (the platform's fault)
/// with nothing submitted, instead of waiting for ever.
#[tokio::test]
async fn a_run_that_waits_past_its_deadline_fails_without_a_vendor_run() {
    let h = harness(1).await;
    h.trigger
        .handle_bytes(&example_request(VendorKind::Amc, "long"), None)
        .await
        .unwrap();
    wait_submitted(&h, "long").await;
    let mut hurried: serde_json::Value =
        serde_json::from_slice(&example_request(VendorKind::Amc, "hurried")).unwrap();
    hurried["deadline_seconds"] = 120.into();
    let t = h
        .trigger
        .handle_bytes(&serde_json::to_vec(&hurried).unwrap(), None)
        .await
        .unwrap();
    assert!(t.queued);
    let manifest = h.run_to_end_for(VendorKind::Amc, "hurried").await;
    assert_eq!(manifest.state, RunState::Failed, "{manifest:?}");
    assert_eq!(
        manifest.attribution,
        Some(runbridge_core::Attribution::Platform)
    );
    assert!(manifest.vendor_run_id.is_empty(), "{manifest:?}");
    let reason = manifest.reason.clone().unwrap_or_default();
    assert!(reason.contains("no slot freed"), "{reason}");
    assert_eq!(
        h.run_to_end_for(VendorKind::Amc, "long").await.state,
        RunState::Succeeded
    );
    assert_eq!(h.sim.sim.control.runs_created(VendorKind::Amc), 1);
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// The create's answer is lost while the queued run is admitted: the vendor made the run, the
/// Admit cannot know. Its in-flight record makes the next Admit wait it out and then find the
/// run at the vendor instead of creating a second one.
#[tokio::test]
async fn a_lost_create_answer_at_admission_is_reconciled_without_a_second_run() {
    let h = harness(10).await;
    queue_with_its_create_answer_lost(&h, "lost").await;
    let manifest = h.run_to_end_for(VendorKind::Amc, "lost").await;
    assert_eq!(manifest.state, RunState::Succeeded, "{manifest:?}");
    let control = &h.sim.sim.control;
    assert_eq!(control.runs_created(VendorKind::Amc), 1, "one AMC run");
    assert!(control.requests("amc.list") >= 1, "the runs were listed");
    assert!(h.dead_letters.sent().is_empty());
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// A run stopped while its admission's submit is unknown (the create's answer lost: AMC made the
/// run, the ledger only says a submit may be in flight) is not left behind: the stop handler asks
/// AMC, finds the run, records and cancels it, and the run ends CANCELLED with that run's id,
/// its slot given back and nothing dead-lettered.
#[tokio::test]
async fn a_run_stopped_while_its_admission_is_unsettled_has_its_vendor_run_cancelled() {
    let h = harness(10).await;
    queue_with_its_create_answer_lost(&h, "unsettled").await;
    // Stop it in the window: AMC has the run, the ledger has only the in-flight record (the next
    // Admit waits that record out, minutes of simulated time, before it reconciles).
    let key = Harness::key_for(VendorKind::Amc, "unsettled");
    let mut in_window = false;
    for _ in 0..2_000 {
        let entry = h.ledger.get(&key).await.unwrap().unwrap();
        let unsettled = matches!(entry.state, KeyState::Admitting { .. });
        if unsettled && h.sim.sim.control.runs_created(VendorKind::Amc) == 1 {
            in_window = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(in_window, "the admission's submit never became unsettled");
    assert!(h.cancel(&key).unwrap(), "the execution was running");
    let manifest = h.run_to_end_for(VendorKind::Amc, "unsettled").await;
    assert_eq!(manifest.state, RunState::Cancelled, "{manifest:?}");
    assert!(!manifest.vendor_run_id.is_empty(), "{manifest:?}");
    let control = &h.sim.sim.control;
    assert_eq!(control.runs_created(VendorKind::Amc), 1, "one AMC run");
    assert!(
        control.requests("amc.cancel") >= 1,
        "AMC's run was cancelled"
    );
    assert!(
        h.dead_letters.sent().is_empty(),
        "{:?}",
        h.dead_letters.sent()
    );
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// Each profile's instance counts on its own: with one slot per instance, a run on the NA
/// instance (default profile) and one on the EU instance (the `amc-eu` profile, the other
/// account) both run at once, while a second NA run waits for the first.
#[tokio::test]
async fn each_instance_of_each_profile_has_its_own_slots() {
    let h = harness(1).await;
    let na = |id: &str| example_request(VendorKind::Amc, id);
    let mut eu: serde_json::Value =
        serde_json::from_slice(&example_request(VendorKind::Amc, "eu-1")).unwrap();
    eu["profile"] = AMC_EU.into();
    eu["instance_id"] = AMC_EU_INSTANCE.into();
    let eu_key = h
        .trigger
        .handle_bytes(&serde_json::to_vec(&eu).unwrap(), None)
        .await
        .unwrap()
        .key()
        .clone();
    h.trigger.handle_bytes(&na("na-1"), None).await.unwrap();
    wait_submitted(&h, "na-1").await;
    h.trigger.handle_bytes(&na("na-2"), None).await.unwrap();
    // The EU run does not wait for the NA slot.
    for _ in 0..2_000 {
        if h.ledger
            .get(&eu_key)
            .await
            .unwrap()
            .is_some_and(|e| e.run().is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let control = &h.sim.sim.control;
    assert_eq!(control.max_observed(&format!("amc.active.{INSTANCE}")), 1);
    assert_eq!(
        control.max_observed(&format!("amc.active.{AMC_EU_INSTANCE}")),
        1
    );
    let first_na = h.run_to_end_for(VendorKind::Amc, "na-1").await;
    let second_na = h.run_to_end_for(VendorKind::Amc, "na-2").await;
    assert!(
        second_na.submitted_at >= first_na.finished_at - time::Duration::minutes(2),
        "the second NA run started before the first ended: {} vs {}",
        second_na.submitted_at,
        first_na.finished_at
    );
    let eu_manifest = h.executions.wait(&eu_key.execution_name()).await.unwrap();
    assert_eq!(
        eu_manifest.status,
        runbridge_asl::ExecutionStatus::Succeeded,
        "{eu_manifest:?}"
    );
    let eu_entry = h.ledger.get(&eu_key).await.unwrap().unwrap();
    let eu_submitted = eu_entry.run().unwrap().submitted_at;
    assert!(
        eu_submitted < first_na.finished_at,
        "the EU run waited for the NA slot"
    );
    assert_eq!(control.runs_created(VendorKind::Amc), 3);
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// Loses the first `drop` wake-ups (a releaser that crashed after giving the slot away and before
/// `SendTaskSuccess`), then wakes as the deployment does.
#[derive(Default)]
struct LosingCallbacks {
    inner: std::sync::OnceLock<Arc<dyn Callbacks>>,
    drop: std::sync::atomic::AtomicU32,
    lost: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Callbacks for LosingCallbacks {
    async fn send_task_success(
        &self,
        task_token: &str,
        output: serde_json::Value,
    ) -> Result<Wake, HandlerError> {
        use std::sync::atomic::Ordering;
        if self
            .drop
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.lost.lock().unwrap().push(task_token.to_owned());
            return Err(HandlerError::Transient("crashed before the wake-up".into()));
        }
        let inner = self.inner.get().expect("wired");
        inner.send_task_success(task_token, output).await
    }

    async fn send_task_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<Wake, HandlerError> {
        let inner = self.inner.get().expect("wired");
        inner.send_task_failure(task_token, error, cause).await
    }
}

/// The wake-up of the run a slot was handed to is lost: the run's park times out (at most an
/// hour, simulated), it asks again, finds the slot its own, and completes; nothing doubles.
#[tokio::test]
async fn a_lost_wake_up_is_recovered_by_the_parks_timeout() {
    let losing = Arc::new(LosingCallbacks::default());
    let wrapper = losing.clone();
    let h = Harness::start_with(HarnessOptions {
        amc_max_concurrent: Some(1),
        wrap_callbacks: Some(Box::new(move |inner| {
            let _ = wrapper.inner.set(inner);
            wrapper as Arc<dyn Callbacks>
        })),
        ..HarnessOptions::default()
    })
    .await;
    h.sim.sim.control.set_default_script(
        VendorKind::Amc,
        RunScript {
            queue_seconds: 0.0,
            run_seconds: RUN_SECONDS,
            rows: 100,
            ..RunScript::default()
        },
    );
    h.trigger
        .handle_bytes(&example_request(VendorKind::Amc, "first"), None)
        .await
        .unwrap();
    wait_submitted(&h, "first").await;
    h.trigger
        .handle_bytes(&example_request(VendorKind::Amc, "second"), None)
        .await
        .unwrap();
    // The next wake-up (the first run's end handing its slot to the second) is lost.
    losing.drop.store(1, std::sync::atomic::Ordering::SeqCst);
    let first = h.run_to_end_for(VendorKind::Amc, "first").await;
    let second = h.run_to_end_for(VendorKind::Amc, "second").await;
    assert_eq!(first.state, RunState::Succeeded);
    assert_eq!(second.state, RunState::Succeeded, "{second:?}");
    assert_eq!(losing.lost.lock().unwrap().len(), 1, "a wake-up was lost");
    assert_eq!(h.sim.sim.control.runs_created(VendorKind::Amc), 2);
    let gap = (second.submitted_at - first.finished_at).as_seconds_f64();
    assert!(
        gap <= PARK_SECONDS_MAX as f64 + 120.0,
        "recovered within a park: {gap} s after the slot was freed"
    );
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}

/// A run stopped while it is parked in line ends CANCELLED with nothing submitted, and the slot
/// goes past it to the next run in line.
#[tokio::test]
async fn a_waiter_stopped_while_parked_ends_cancelled_and_its_place_is_skipped() {
    let h = harness(1).await;
    for id in ["holder", "stopped", "third"] {
        h.trigger
            .handle_bytes(&example_request(VendorKind::Amc, id), None)
            .await
            .unwrap();
        if id == "holder" {
            wait_submitted(&h, id).await;
        }
    }
    // Let both waiters park.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stopped = Harness::key_for(VendorKind::Amc, "stopped");
    assert!(h.cancel(&stopped).unwrap(), "parked, still running");
    let cancelled = h.run_to_end_for(VendorKind::Amc, "stopped").await;
    assert_eq!(cancelled.state, RunState::Cancelled, "{cancelled:?}");
    assert!(cancelled.vendor_run_id.is_empty());
    let third = h.run_to_end_for(VendorKind::Amc, "third").await;
    assert_eq!(third.state, RunState::Succeeded, "{third:?}");
    assert_eq!(h.sim.sim.control.runs_created(VendorKind::Amc), 2);
    assert!(held_slots(&h).is_empty(), "{:?}", held_slots(&h));
}
