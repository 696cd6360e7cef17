//! Runs in flight survive an upgrade: ledger entries and execution payloads written by an
//! earlier version (golden files under `tests/golden/<commit>/`, produced by that commit's code)
//! are read by this one, and what this version writes back is still readable by that one; a run
//! whose payload and ledger entry are in the previous format runs to its end on this version's
//! handlers; and this version's own golden files (`tests/golden/v1/`) keep every field.

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

/// Fields this version adds that the earlier version ignores when it reads them back (none of
/// its persisted shapes denies unknown fields): the documents' format version.
const ADDED_SINCE: [&str; 1] = ["format_version"];

/// `value` without the fields of [`ADDED_SINCE`], at any depth: what the earlier version reads.
fn as_the_earlier_version_reads(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !ADDED_SINCE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), as_the_earlier_version_reads(v)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(as_the_earlier_version_reads).collect())
        }
        other => other.clone(),
    }
}

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
        assert_eq!(
            new["format_version"], 1,
            "{file}: written in this version's format"
        );
        assert_written_back_within(&old, &as_the_earlier_version_reads(&new), file);
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
            as_the_earlier_version_reads(&serde_json::to_value(&reference).unwrap()),
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
            as_the_earlier_version_reads(&serde_json::to_value(&reference).unwrap()),
            old["handle"],
            "{file}"
        );
    }
    let queued: AdmitOutput =
        serde_json::from_value(golden("20045d5/payloads/queued-execution-input.json")).unwrap();
    assert!(queued.queued && !queued.failed);
}

// ---------------------------------------------------------------- this version's golden files --
//
// `tests/golden/v1/`: what this version writes, one file per variant of every shape it persists
// or passes between invocations (ledger entries in each state, execution payloads of each task,
// a scope's slot record, a workflow's duration history, manifests in each final state), written
// by `write_this_versions_golden_files` from the code itself (core's transitions; a real run of
// each kind on the local deployment for payloads and manifests). Every later version must read
// them and write every field back under its name with its value: renaming or reshaping a
// persisted field without a migration fails `golden_files_of_format_1_read_and_keep_every_field`.
// Regenerate only when a format version changes (then keep these under their commit's name):
//   RUNBRIDGE_WRITE_GOLDEN=1 cargo test -p runbridge-system-tests --test upgrade -- --ignored

mod this_version {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use runbridge_asl::{TaskFailure, TaskInvoker};
    use runbridge_core::{
        Attribution, DurationHistory, Fingerprint, HandleRef, IdempotencyKey, KeyState,
        LedgerEntry, Manifest, RecordedRun, RunRequest, RunState, ScopeQueue, SlotHold, VendorKind,
    };
    use runbridge_handlers::steps::{collect_step, poll_step};
    use runbridge_handlers::HandlerError;
    use runbridge_sim::{Outcome, RunScript};
    use runbridge_system_tests::harness::{
        carto_request, example_request, Harness, HarnessOptions,
    };
    use serde_json::Value;
    use time::macros::datetime;
    use time::Duration;

    const DIR: &str = "v1";

    fn path(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(DIR)
            .join(rel)
    }

    fn write(rel: &str, value: &Value) {
        let path = path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    }

    /// Every golden file of `kind` (a folder of `tests/golden/v1/`), by name without `.json`.
    fn read_all(kind: &str) -> BTreeMap<String, Value> {
        let dir = path(kind);
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            all.insert(name, serde_json::from_str(&text).unwrap());
        }
        assert!(!all.is_empty(), "no golden files in {dir:?}");
        all
    }

    /// Every field of `golden` is in `written`, under the same name, with the same value (fields
    /// `written` adds, a later version's additions, are allowed).
    fn assert_keeps_every_field(golden: &Value, written: &Value, at: &str) {
        match (golden, written) {
            (Value::Object(golden), Value::Object(written)) => {
                for (field, value) in golden {
                    let at = format!("{at}.{field}");
                    let Some(now) = written.get(field) else {
                        panic!("{at} was written by format 1 and is not written back now: renamed or dropped without a migration?");
                    };
                    assert_keeps_every_field(value, now, &at);
                }
            }
            (Value::Array(golden), Value::Array(written)) => {
                assert_eq!(golden.len(), written.len(), "{at}: length");
                for (i, (g, w)) in golden.iter().zip(written).enumerate() {
                    assert_keeps_every_field(g, w, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(golden, written, "{at}"),
        }
    }

    fn amc_entry(request_id: &str) -> LedgerEntry {
        let request = RunRequest::from_json(&example_request(VendorKind::Amc, request_id)).unwrap();
        let at = datetime!(2026-12-01 06:00 UTC);
        let resolved = request.resolve(at);
        LedgerEntry::queued(
            IdempotencyKey::for_request(&resolved, None),
            resolved,
            Fingerprint::of(&request),
            at,
        )
    }

    fn ledger_entries() -> Vec<(&'static str, LedgerEntry)> {
        let at = datetime!(2026-12-01 06:00 UTC);
        let hold = SlotHold {
            scope: "amc.default.amc1a2b3c4d".into(),
            slot: 3,
        };
        let run = RecordedRun {
            vendor_run_id: "amc-exec-7".into(),
            submitted_at: at + Duration::minutes(2),
            vendor_state: Some("PENDING".into()),
        };
        let queued = amc_entry("golden-queued");
        let mut claimed = amc_entry("golden-claimed");
        claimed.state = KeyState::Claimed {
            lease_until: at + Duration::seconds(90),
        };
        let mut holding = queued.clone();
        holding.take_slot(hold.clone()).unwrap();
        holding
            .start_submit(at + Duration::minutes(1), at + Duration::minutes(2))
            .unwrap();
        holding.vendor_full().unwrap();
        let mut admitting = queued.clone();
        admitting.take_slot(hold).unwrap();
        admitting
            .start_submit(at + Duration::minutes(1), at + Duration::minutes(2))
            .unwrap();
        let mut submitted = claimed.clone();
        submitted.record_submit(run.clone()).unwrap();
        let mut after_queue = admitting.clone();
        after_queue.record_submit(run).unwrap();
        let mut collect_failed = submitted.clone();
        collect_failed
            .record_collect_failure(
                "S3 refused the part".into(),
                at + Duration::hours(1),
                Some(Attribution::Platform),
            )
            .unwrap();
        let mut failed_after_queue = after_queue.clone();
        for n in 1..=2 {
            failed_after_queue
                .record_collect_failure(
                    format!("download cut off ({n})"),
                    at + Duration::hours(n),
                    None,
                )
                .unwrap();
        }
        vec![
            ("claimed", claimed),
            ("queued", queued),
            ("queued-holding-slot", holding),
            ("admitting", admitting),
            ("submitted", submitted),
            ("submitted-after-queue", after_queue),
            ("collect-failed", collect_failed),
            ("collect-failed-after-queue", failed_after_queue),
        ]
    }

    /// A scope with two holders and two runs in line: one parked on a task token, one of an
    /// earlier definition that asks again by itself (no token).
    fn scope_record() -> ScopeQueue {
        let at = datetime!(2026-12-01 06:00 UTC);
        let lease = Duration::minutes(20);
        let mut scope = ScopeQueue::default();
        for (n, key) in [
            "amc.default.aaa",
            "amc.default.bbb",
            "amc.default.ccc",
            "amc.default.ddd",
        ]
        .into_iter()
        .enumerate()
        {
            let arrived = at + Duration::seconds(n as i64);
            let token = (n == 2).then(|| "AAAAKgAAAAIAAAAAAAAAAQ==token-ccc".to_owned());
            scope.ask(
                &IdempotencyKey::from_string(key.into()),
                arrived,
                token,
                2,
                arrived,
                arrived + lease,
            );
        }
        assert_eq!((scope.holders.len(), scope.waiting.len()), (2, 2));
        scope
    }

    fn history() -> DurationHistory {
        let mut history = DurationHistory::default();
        for seconds in [612, 655, 701, 1_930] {
            history.record(seconds);
        }
        history
    }

    /// Records each task's payload as the state machine hands it over, by kind.
    struct Recorder {
        inner: Arc<dyn TaskInvoker>,
        seen: Arc<Mutex<BTreeMap<String, Value>>>,
    }

    #[async_trait]
    impl TaskInvoker for Recorder {
        async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
            let kind = match (input["step"].as_str(), input["outcome"].as_str()) {
                (Some("collect"), Some("failed")) => "record-failure-task".to_owned(),
                (Some(step), _) => format!("{step}-task"),
                (None, _) => "untagged-task".to_owned(),
            };
            self.seen
                .lock()
                .unwrap()
                .entry(kind)
                .or_insert_with(|| input.clone());
            self.inner.invoke(resource, input).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "writes tests/golden/v1/: RUNBRIDGE_WRITE_GOLDEN=1, only when a format changes"]
    async fn write_this_versions_golden_files() {
        assert!(
            std::env::var("RUNBRIDGE_WRITE_GOLDEN").is_ok(),
            "set RUNBRIDGE_WRITE_GOLDEN=1 to overwrite tests/golden/{DIR}/"
        );
        for (name, entry) in ledger_entries() {
            write(
                &format!("ledger/{name}.json"),
                &serde_json::to_value(&entry).unwrap(),
            );
        }
        write(
            "scope/two-holding-two-waiting.json",
            &serde_json::to_value(scope_record()).unwrap(),
        );
        write(
            "history/four-runs.json",
            &serde_json::to_value(history()).unwrap(),
        );

        // Real runs, one of each kind: the payloads every task got and the manifests written.
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let recorded = seen.clone();
        let h = Harness::start_with(HarnessOptions {
            amc_max_concurrent: Some(1),
            wrap_tasks: Some(Box::new(move |inner| {
                Arc::new(Recorder {
                    inner,
                    seen: recorded,
                })
            })),
            ..HarnessOptions::default()
        })
        .await;
        h.trigger
            .handle_bytes(&carto_request("golden-ok", true), None)
            .await
            .unwrap();
        let ok = h.run_to_end("golden-ok").await;
        assert_eq!(ok.state, RunState::Succeeded);
        h.sim.sim.control.push_script(
            VendorKind::Carto,
            RunScript {
                outcome: Outcome::Fail {
                    message: "Cannot coerce @a".into(),
                    customer: true,
                },
                ..RunScript::default()
            },
        );
        h.trigger
            .handle_bytes(&carto_request("golden-failed", true), None)
            .await
            .unwrap();
        let failed = h.run_to_end("golden-failed").await;
        assert_eq!(failed.state, RunState::Failed);
        // Two AMC runs on one slot: the second waits in line, parked on its task token.
        for id in ["golden-amc-1", "golden-amc-2"] {
            h.trigger
                .handle_bytes(&example_request(VendorKind::Amc, id), None)
                .await
                .unwrap();
        }
        let queued_input = h
            .executions
            .input(&Harness::key_for(VendorKind::Amc, "golden-amc-2").execution_name())
            .unwrap();
        assert_eq!(queued_input["queued"], true);
        for id in ["golden-amc-1", "golden-amc-2"] {
            assert_eq!(
                h.run_to_end_for(VendorKind::Amc, id).await.state,
                RunState::Succeeded
            );
        }
        // A run stopped by an operator.
        h.sim.sim.control.push_script(
            VendorKind::Amperity,
            RunScript {
                run_seconds: 1e9,
                ..RunScript::default()
            },
        );
        let stopped = h
            .trigger
            .handle_bytes(
                &example_request(VendorKind::Amperity, "golden-stopped"),
                None,
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(h.cancel(stopped.key()).unwrap());
        let cancelled = h
            .run_to_end_for(VendorKind::Amperity, "golden-stopped")
            .await;
        assert_eq!(cancelled.state, RunState::Cancelled);

        let started = h
            .executions
            .input(&Harness::key_for(VendorKind::Carto, "golden-ok").execution_name())
            .unwrap();
        write("payloads/execution-input.json", &started);
        write("payloads/queued-execution-input.json", &queued_input);
        for (kind, payload) in seen.lock().unwrap().iter() {
            write(&format!("payloads/{kind}.json"), payload);
        }
        for (name, manifest) in [
            ("succeeded", ok),
            ("failed", failed),
            ("cancelled", cancelled),
        ] {
            write(
                &format!("manifests/{name}.json"),
                &serde_json::to_value(manifest).unwrap(),
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn golden_files_of_format_1_read_and_keep_every_field() {
        // Ledger entries: each reads as its state and writes back every field.
        let expected_state: BTreeMap<&str, &str> = ledger_entries()
            .iter()
            .map(|(name, entry)| (*name, entry.state.name()))
            .collect();
        let ledger = read_all("ledger");
        assert_eq!(
            ledger.keys().map(String::as_str).collect::<Vec<_>>(),
            expected_state.keys().copied().collect::<Vec<_>>()
        );
        for (name, golden) in &ledger {
            let entry: LedgerEntry = serde_json::from_value(golden.clone())
                .unwrap_or_else(|e| panic!("ledger/{name}: unreadable now: {e}"));
            assert_eq!(
                entry.state.name(),
                expected_state[name.as_str()],
                "ledger/{name}"
            );
            assert_eq!(golden["format_version"], 1, "ledger/{name}");
            assert_keeps_every_field(
                golden,
                &serde_json::to_value(&entry).unwrap(),
                &format!("ledger/{name}"),
            );
        }

        for (name, golden) in read_all("scope") {
            let scope: ScopeQueue = serde_json::from_value(golden.clone())
                .unwrap_or_else(|e| panic!("scope/{name}: unreadable now: {e}"));
            assert_eq!(golden["format_version"], 1);
            assert!(scope.waiting.iter().any(|w| w.task_token.is_some()));
            assert!(scope.waiting.iter().any(|w| w.task_token.is_none()));
            assert_keeps_every_field(
                &golden,
                &serde_json::to_value(&scope).unwrap(),
                &format!("scope/{name}"),
            );
        }
        for (name, golden) in read_all("history") {
            let history: DurationHistory = serde_json::from_value(golden.clone())
                .unwrap_or_else(|e| panic!("history/{name}: unreadable now: {e}"));
            assert_eq!(golden["format_version"], 1);
            assert!(history.predict().is_some(), "history/{name}");
            assert_keeps_every_field(
                &golden,
                &serde_json::to_value(&history).unwrap(),
                &format!("history/{name}"),
            );
        }

        let manifests = read_all("manifests");
        assert_eq!(
            manifests.keys().collect::<Vec<_>>(),
            ["cancelled", "failed", "succeeded"]
        );
        for (name, golden) in &manifests {
            let manifest: Manifest = serde_json::from_value(golden.clone())
                .unwrap_or_else(|e| panic!("manifests/{name}: unreadable now: {e}"));
            assert_eq!(
                manifest.state.as_str().to_lowercase(),
                name.as_str(),
                "manifests/{name}"
            );
            assert_eq!(manifest.schema_version, 1);
            assert_keeps_every_field(
                golden,
                &serde_json::to_value(&manifest).unwrap(),
                &format!("manifests/{name}"),
            );
        }

        // Execution payloads: the handle every one carries keeps every field, and each task's
        // payload still decodes in its step (it gets as far as looking the run up in a ledger
        // that has never heard of it, instead of being refused as bad input).
        let payloads = read_all("payloads");
        for kind in [
            "execution-input",
            "queued-execution-input",
            "enqueue-task",
            "admit-task",
            "poll-task",
            "collect-task",
            "record-failure-task",
        ] {
            assert!(
                payloads.contains_key(kind),
                "payloads/{kind}.json is missing"
            );
        }
        let h = Harness::start().await;
        for (name, golden) in &payloads {
            let reference: HandleRef = serde_json::from_value(golden["handle"].clone())
                .unwrap_or_else(|e| panic!("payloads/{name}: handle unreadable now: {e}"));
            assert_eq!(golden["handle"]["format_version"], 1, "payloads/{name}");
            assert_keeps_every_field(
                &golden["handle"],
                &serde_json::to_value(&reference).unwrap(),
                &format!("payloads/{name}.handle"),
            );
            if !name.ends_with("-task") {
                continue;
            }
            let answer = if golden["step"] == "collect" {
                collect_step(&h.collector, golden.clone()).await
            } else {
                poll_step(&h.poller, golden.clone()).await
            };
            match answer {
                Err(HandlerError::BadInput(e)) => {
                    panic!("payloads/{name}: refused as bad input: {e}")
                }
                Err(e) => assert!(
                    e.to_string().contains("no ledger entry"),
                    "payloads/{name}: {e}"
                ),
                Ok(out) => panic!("payloads/{name}: answered {out} without its ledger entry"),
            }
        }
    }
}

// ------------------------------------------------ a run in flight across the upgrade, to its end --

/// Hands the run's first task what the previous version's trigger left behind: the execution's
/// payload and the key's ledger entry in the previous format (this version's additions, the
/// `format_version` fields, removed), as an execution started before the deploy reaches the new
/// functions. Every later task gets what this version's handlers answered.
struct StartedByThePreviousVersion {
    inner: std::sync::Arc<dyn runbridge_asl::TaskInvoker>,
    ledger_dir: std::sync::Arc<std::sync::OnceLock<PathBuf>>,
    first_input: std::sync::Mutex<Option<Value>>,
}

#[async_trait::async_trait]
impl runbridge_asl::TaskInvoker for StartedByThePreviousVersion {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
    ) -> Result<Value, runbridge_asl::TaskFailure> {
        let input = {
            let mut first = self.first_input.lock().unwrap();
            if first.is_some() {
                input
            } else {
                let old = as_the_earlier_version_reads(&input);
                let key = input["handle"]["key"].as_str().expect("a handle");
                let path = self.ledger_dir.get().unwrap().join(format!("{key}.json"));
                let entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                assert_eq!(
                    entry["format_version"], 1,
                    "written by this version's trigger"
                );
                std::fs::write(&path, as_the_earlier_version_reads(&entry).to_string()).unwrap();
                *first = Some(old.clone());
                old
            }
        };
        self.inner.invoke(resource, input).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_by_the_previous_format_runs_to_its_end_on_this_version() {
    use runbridge_core::{RunState, VendorKind};
    use runbridge_system_tests::harness::{example_request, Harness, HarnessOptions};

    let ledger_dir = std::sync::Arc::new(std::sync::OnceLock::new());
    let wrapper = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (dir, slot) = (ledger_dir.clone(), wrapper.clone());
    let h = Harness::start_with(HarnessOptions {
        wrap_tasks: Some(Box::new(move |inner| {
            let invoker = std::sync::Arc::new(StartedByThePreviousVersion {
                inner,
                ledger_dir: dir,
                first_input: std::sync::Mutex::new(None),
            });
            *slot.lock().unwrap() = Some(invoker.clone());
            invoker
        })),
        ..HarnessOptions::default()
    })
    .await;
    ledger_dir.set(h.out.path().join("_ledger")).unwrap();
    h.trigger
        .handle_bytes(
            &example_request(VendorKind::Amperity, "across-upgrade"),
            None,
        )
        .await
        .unwrap();
    let manifest = h
        .run_to_end_for(VendorKind::Amperity, "across-upgrade")
        .await;
    assert_eq!(manifest.state, RunState::Succeeded, "{manifest:?}");

    // The first task really got the previous version's payload: the same fields as the golden
    // execution input of 20045d5, no format version.
    let invoker = wrapper.lock().unwrap().clone().unwrap();
    let first = invoker.first_input.lock().unwrap().clone().unwrap();
    let fields = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        fields(&first["handle"]),
        fields(&golden("20045d5/payloads/execution-input.json")["handle"]),
        "{first}"
    );
}
