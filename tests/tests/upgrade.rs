//! Runs in flight survive an upgrade: ledger entries and execution payloads written by an
//! earlier version (golden files under `tests/golden/<commit>/`, produced by that commit's code)
//! are read by this one, and what this version writes back is still readable by that one.

use std::path::PathBuf;

use runbridge_core::{HandleRef, KeyState, LedgerEntry, SlotHold};
use runbridge_handlers::queue::AdmitOutput;
use serde_json::Value;

fn golden(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Top-level ledger fields the earlier version knew but wrote only in some states (an entry
/// written before leases had no `lease_until`; this version writes the lease it assumed).
const EARLIER_OPTIONAL_FIELDS: [&str; 1] = ["lease_until"];

/// Every field this version writes has the same value in the earlier version's document (the
/// earlier version reads this version's entries as it read its own; only fields that no longer
/// mean anything in the entry's state may be dropped). A renamed or reshaped field fails here.
fn assert_written_back_within(old: &Value, new: &Value, path: &str) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (field, value) in new {
                let at = format!("{path}.{field}");
                let Some(was) = old.get(field) else {
                    let top_level = !path.contains('.');
                    if top_level && EARLIER_OPTIONAL_FIELDS.contains(&field.as_str()) {
                        continue;
                    }
                    panic!("{at} is written now but was not by the earlier version");
                };
                assert_written_back_within(was, value, &at);
            }
        }
        _ => assert_eq!(old, new, "{path}"),
    }
}

#[test]
fn ledger_entries_of_the_previous_version_read_as_their_state_and_write_back_compatibly() {
    let slot = SlotHold {
        scope: "amc.default.amc1a2b3c4d".into(),
        slot: 3,
    };
    let cases: [(&str, &str); 9] = [
        ("claimed-legacy", "claimed"),
        ("claimed", "claimed"),
        ("submitted", "submitted"),
        ("collect-failed", "collect_failed"),
        ("queued", "queued"),
        ("queued-holding-slot", "queued"),
        ("admitting", "admitting"),
        ("submitted-after-queue", "submitted"),
        ("collect-failed-after-queue", "collect_failed"),
    ];
    for (file, state) in cases {
        let old = golden(&format!("20045d5/ledger/{file}.json"));
        let entry: LedgerEntry = serde_json::from_value(old.clone())
            .unwrap_or_else(|e| panic!("{file}: the previous version's entry unreadable: {e}"));
        assert_eq!(entry.state.name(), state, "{file}");
        let new = serde_json::to_value(&entry).unwrap();
        assert_written_back_within(&old, &new, file);
        let again: LedgerEntry = serde_json::from_value(new).unwrap();
        assert_eq!(again, entry, "{file}: round trip");
    }

    // What each state carries over.
    let read = |file: &str| -> LedgerEntry {
        serde_json::from_value(golden(&format!("20045d5/ledger/{file}.json"))).unwrap()
    };
    assert!(matches!(
        read("claimed-legacy").state,
        KeyState::Claimed { lease_until } if lease_until == read("claimed-legacy").claimed_at + runbridge_core::LEGACY_CLAIM_LEASE
    ));
    assert_eq!(read("queued-holding-slot").slot(), Some(&slot));
    assert_eq!(read("queued-holding-slot").queue().unwrap().vendor_full, 2);
    assert!(read("admitting").submitting_until().is_some());
    let after_queue = read("submitted-after-queue");
    assert_eq!(after_queue.slot(), Some(&slot), "the slot to give back");
    assert_eq!(after_queue.run().unwrap().vendor_run_id, "amc-exec-7");
    assert_eq!(read("collect-failed").collect_failure().unwrap().count, 2);
    assert_eq!(
        read("collect-failed-after-queue")
            .handle()
            .unwrap()
            .vendor_run_id
            .as_deref(),
        Some("amc-exec-7")
    );
}

#[test]
fn execution_payloads_of_the_previous_version_read_and_write_back_the_same() {
    for file in ["execution-input", "poll-task", "collect-task"] {
        let old = golden(&format!("20045d5/payloads/{file}.json"));
        let reference: HandleRef =
            serde_json::from_value(old["handle"].clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(reference.vendor_run_id.as_deref(), Some("run-42"), "{file}");
        assert_eq!(
            serde_json::to_value(&reference).unwrap(),
            old["handle"],
            "{file}: written back the same"
        );
    }
    for file in ["queued-execution-input", "admit-task"] {
        let old = golden(&format!("20045d5/payloads/{file}.json"));
        let reference: HandleRef = serde_json::from_value(old["handle"].clone()).unwrap();
        assert_eq!(
            reference.vendor_run_id, None,
            "{file}: queued, nothing submitted"
        );
        assert_eq!(
            serde_json::to_value(&reference).unwrap(),
            old["handle"],
            "{file}"
        );
    }
    let queued: AdmitOutput =
        serde_json::from_value(golden("20045d5/payloads/queued-execution-input.json")).unwrap();
    assert!(queued.queued && !queued.failed);
}
