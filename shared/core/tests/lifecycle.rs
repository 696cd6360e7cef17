//! The ledger entry's lifecycle: every transition from every state, legal or refused, and every
//! state through its stored shape and back.

use runbridge_core::{
    Attribution, Fingerprint, IdempotencyKey, KeyState, LedgerEntry, OffsetDateTime, QueuePlace,
    RecordedRun, RunRequest, SlotHold,
};

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap()
}

fn request() -> RunRequest {
    RunRequest::from_json(
        br#"{"vendor":"amc","request_id":"life-1","instance_id":"amc1a2b3c4d","advertiser_id":"ENTITY1ABCDEFGH","marketplace_id":"ATVPDKIKX0DER","sql_query":"SELECT 1","time_window_type":"EXPLICIT","time_window_start":"2026-11-26T00:00:00Z","time_window_end":"2026-11-27T00:00:00Z"}"#,
    )
    .unwrap()
}

fn hold() -> SlotHold {
    SlotHold {
        scope: "amc.default.amc1a2b3c4d".into(),
        slot: 3,
    }
}

fn run() -> RecordedRun {
    RecordedRun {
        vendor_run_id: "exec-1".into(),
        submitted_at: at(5),
        vendor_state: Some("PENDING".into()),
    }
}

fn claimed() -> LedgerEntry {
    let r = request();
    let resolved = r.resolve(at(0));
    LedgerEntry::claimed(
        IdempotencyKey::for_request(&resolved, None),
        resolved,
        Fingerprint::of(&r),
        at(0),
        at(330),
    )
}

fn queued() -> LedgerEntry {
    let r = request();
    let resolved = r.resolve(at(0));
    LedgerEntry::queued(
        IdempotencyKey::for_request(&resolved, None),
        resolved,
        Fingerprint::of(&r),
        at(0),
    )
}

/// One entry in each state (and the sub-states that matter: a queued run with a slot, a
/// submitted run that came through the queue).
fn every_state() -> Vec<(&'static str, LedgerEntry)> {
    let mut holding = queued();
    holding.take_slot(hold()).unwrap();
    let mut admitting = holding.clone();
    admitting.start_submit(at(60), at(390)).unwrap();
    let mut submitted = claimed();
    submitted.record_submit(run()).unwrap();
    let mut queued_submitted = admitting.clone();
    queued_submitted.record_submit(run()).unwrap();
    let mut failed = submitted.clone();
    failed
        .record_collect_failure("sink refused".into(), at(900), None)
        .unwrap();
    vec![
        ("claimed", claimed()),
        ("queued", queued()),
        ("queued with a slot", holding),
        ("admitting", admitting),
        ("submitted", submitted),
        ("submitted after the queue", queued_submitted),
        ("collect failed", failed),
    ]
}

type Transition = (&'static str, fn(&mut LedgerEntry) -> bool);

/// Every transition, applied to a copy: whether it was allowed.
fn transitions() -> Vec<Transition> {
    vec![
        ("record_submit", |e| e.record_submit(run()).is_ok()),
        ("take_slot", |e| e.take_slot(hold()).is_ok()),
        ("start_submit", |e| e.start_submit(at(100), at(400)).is_ok()),
        ("vendor_full", |e| e.vendor_full().is_ok()),
        ("stop_waiting", |e| e.stop_waiting().is_ok()),
        ("clear_submit", |e| e.clear_submit().is_ok()),
        ("record_collect_failure", |e| {
            e.record_collect_failure("x".into(), at(1000), Some(Attribution::Customer))
                .is_ok()
        }),
        ("release", |e| e.check_release().is_ok()),
    ]
}

#[test]
fn each_transition_starts_only_from_its_states() {
    // Rows: the states of `every_state`; columns: the transitions of `transitions`.
    let allowed: [[bool; 8]; 7] = [
        // record, take_slot, start, full, stop, clear, collect_failure, release
        [true, false, false, false, false, false, false, true], // claimed
        [false, true, true, false, true, false, false, false],  // queued
        [false, true, true, false, true, false, false, false],  // queued with a slot
        [true, true, true, true, true, true, false, false],     // admitting
        [false, false, false, false, false, false, true, false], // submitted
        [false, false, false, false, false, false, true, false], // submitted after the queue
        [false, false, false, false, false, false, true, false], // collect failed
    ];
    for ((state, entry), row) in every_state().into_iter().zip(allowed) {
        for ((name, apply), expected) in transitions().into_iter().zip(row) {
            let mut copy = entry.clone();
            let ok = apply(&mut copy);
            assert_eq!(ok, expected, "{name} from {state}");
            if !ok {
                assert_eq!(copy, entry, "a refused {name} from {state} changes nothing");
            }
        }
    }
}

#[test]
fn the_transitions_carry_what_the_next_state_needs() {
    // A claimed run's submit records the run, with no queue.
    let mut e = claimed();
    e.record_submit(run()).unwrap();
    assert_eq!(e.run(), Some(&run()));
    assert_eq!(e.queue(), None);
    assert!(!e.is_waiting());

    // A queued run keeps its slot through the admission and after its submit (the final poll
    // gives it back); the admission moves the claim time to its start.
    let mut e = queued();
    assert!(e.is_waiting());
    assert_eq!(e.handle().unwrap().vendor_run_id, None, "nothing submitted");
    e.take_slot(hold()).unwrap();
    e.start_submit(at(60), at(390)).unwrap();
    assert_eq!(e.claimed_at, at(60));
    assert_eq!(e.submitting_until(), Some(at(390)));
    let admitting = e.clone();
    e.record_submit(run()).unwrap();
    assert_eq!(e.slot(), Some(&hold()));
    assert_eq!(e.queue().unwrap().since, at(0));
    let handle = e.handle().unwrap();
    assert_eq!(handle.vendor_run_id.as_deref(), Some("exec-1"));
    assert_eq!(handle.timeline[0].vendor_state, "PENDING");

    // The vendor's own limit: back to waiting, slot kept, counted.
    let mut full = admitting.clone();
    full.vendor_full().unwrap();
    assert!(
        matches!(&full.state, KeyState::Queued(q) if q.vendor_full == 1 && q.slot == Some(hold()))
    );
    // A refusal: waiting without the slot, which is handed back to the caller.
    let mut refused = admitting.clone();
    assert_eq!(refused.stop_waiting().unwrap(), Some(hold()));
    assert_eq!(refused.slot(), None);
    // A stop that found nothing created: waiting, slot kept for the stop to give back.
    let mut cleared = admitting;
    cleared.clear_submit().unwrap();
    assert_eq!(cleared.submitting_until(), None);
    assert_eq!(cleared.slot(), Some(&hold()));

    // Collect failures count up and keep the run.
    let mut e = claimed();
    e.record_submit(run()).unwrap();
    e.record_collect_failure("a".into(), at(10), None).unwrap();
    e.record_collect_failure("b".into(), at(20), Some(Attribution::Platform))
        .unwrap();
    let failure = e.collect_failure().unwrap();
    assert_eq!((failure.count, failure.reason.as_str()), (2, "b"));
    assert_eq!(e.run(), Some(&run()));
}

#[test]
fn every_state_reads_back_as_it_was_written() {
    for (state, entry) in every_state() {
        let json = serde_json::to_string(&entry).unwrap();
        let back: LedgerEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry, "{state}: {json}");
    }
}

#[test]
fn a_collect_failure_without_a_run_is_refused_on_read() {
    let mut json = serde_json::to_value(claimed()).unwrap();
    json["collect_failed"] = serde_json::json!({
        "reason": "x", "at": "2026-11-30T00:00:00Z", "count": 1
    });
    let err = serde_json::from_value::<LedgerEntry>(json).unwrap_err();
    assert!(err.to_string().contains("without a submitted run"), "{err}");
}

#[test]
fn a_queued_place_serialises_without_its_defaults() {
    let place = QueuePlace {
        since: at(0),
        slot: None,
        vendor_full: 0,
    };
    assert_eq!(
        serde_json::to_value(&place).unwrap(),
        serde_json::json!({"since": "2026-09-21T14:13:20Z"})
    );
}
