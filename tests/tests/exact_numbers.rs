//! One strict parse for every entry point (issue 25): AMC `parameter_values` written as
//! `123456789012345678901234567890`, `1E2`, `-0` and `0.10` reach the vendor simulator exactly as
//! written, whichever way the request enters runbridge, and a duplicate key is refused naming the
//! field. The seven entry points:
//!
//! 1. an SQS message whose body is the request;
//! 2. an EventBridge event (direct invoke), the request its `detail`;
//! 3. an EventBridge Scheduler payload (direct invoke), the request its `request`;
//! 4. the same Scheduler wrapper delivered through the queue;
//! 5. `runbridge submit` (the file's text is the queue message);
//! 6. `runbridge run --sandbox` (the request straight into the local handlers);
//! 7. `runbridge backfill` (each window's request, made from the template);
//!
//! and `runbridge rerun` (the stored request sent again as the next attempt). The bytes are those
//! the simulator received (its raw request text, not a re-parse); what the CLI sends to the queue
//! is delivered to the trigger as the queue would.

use std::sync::Arc;

use runbridge::ops::commands::backfill::{plan, Backfill};
use runbridge::ops::commands::read_requests;
use runbridge::ops::commands::rerun::next_attempt;
use runbridge::sandbox::{Quiet, Sandbox, SandboxOptions};
use runbridge_adapters_local::MemoryDeadLetters;
use runbridge_core::VendorKind;
use runbridge_handlers::Ledger;
use runbridge_lambda::handle_trigger_text;
use runbridge_sim::SimHandle;
use runbridge_system_tests::harness::Harness;
use serde_json::{json, Value};

/// The parameters as a request writes them.
const PARAMETERS: &str =
    r#"{"big":123456789012345678901234567890,"exp":1E2,"negzero":-0,"frac":0.10,"neg":-17}"#;

/// What the create body must hold for them: AMC parameter values are strings of the digits
/// written.
const ON_THE_WIRE: [&str; 5] = [
    r#""big":"123456789012345678901234567890""#,
    r#""exp":"1E2""#,
    r#""negzero":"-0""#,
    r#""frac":"0.10""#,
    r#""neg":"-17""#,
];

/// An AMC request with `request_id` `id` and the parameters `parameters` (text), over an
/// explicit window or, with `relative`, the previous day.
fn amc(id: &str, parameters: &str, relative: bool) -> String {
    let window = if relative {
        r#""relative_window":"previous_day""#
    } else {
        r#""time_window_start":"2026-11-26T00:00:00Z","time_window_end":"2026-11-27T00:00:00Z""#
    };
    format!(
        r#"{{"vendor":"amc","request_id":"{id}","instance_id":"amcabc123def","advertiser_id":"ENTITY1ABCDEFGH","marketplace_id":"ATVPDKIKX0DER","sql_query":"SELECT 1","time_window_type":"EXPLICIT",{window},"parameter_values":{parameters}}}"#
    )
}

/// The request with a duplicate parameter key.
const DUPLICATE: &str = r#"{"a":1,"a":2}"#;

fn sqs_event(body: &str) -> Value {
    json!({"Records": [{
        "eventSource": "aws:sqs",
        "messageId": "m-1",
        "body": body,
        "attributes": {"SentTimestamp": "1795765200000"}
    }]})
}

fn eventbridge_event(request: &str) -> String {
    format!(
        r#"{{"version":"0","id":"e-1","detail-type":"Run Requested","source":"acme.schedules","account":"123456789012","time":"2026-11-27T06:00:00Z","region":"us-east-1","resources":[],"detail":{request}}}"#
    )
}

fn scheduler_wrapper(request: &str) -> String {
    format!(r#"{{"request":{request},"scheduled_time":"2026-11-27T06:00:00Z"}}"#)
}

/// The create bodies AMC received after the first `seen` exchanges.
fn creates_since(sim: &SimHandle, seen: usize) -> Vec<String> {
    sim.sim
        .recorder
        .exchanges()
        .into_iter()
        .skip(seen)
        .filter(|e| {
            e.vendor == VendorKind::Amc
                && e.method == "POST"
                && e.path.ends_with("/workflowExecutions")
        })
        .map(|e| e.request_text)
        .collect()
}

fn assert_exact(path: &str, creates: &[String]) {
    assert_eq!(
        creates.len(),
        1,
        "{path}: one create expected, got {creates:?}"
    );
    for exact in ON_THE_WIRE {
        assert!(
            creates[0].contains(exact),
            "{path}: {exact} not in the create body {}",
            creates[0]
        );
    }
}

/// Runs `deliver` (one entry point) and checks the one AMC create it caused.
async fn through(h: &Harness, path: &str, deliver: impl std::future::Future<Output = ()>) {
    let seen = h.sim.sim.recorder.exchanges().len();
    deliver.await;
    assert_exact(path, &creates_since(&h.sim, seen));
}

/// Delivers a queue message's body to the trigger as the request queue's event source does.
async fn via_queue(h: &Harness, dlq: &MemoryDeadLetters, body: &str) {
    let answer = handle_trigger_text(&h.trigger, dlq, &sqs_event(body).to_string())
        .await
        .expect("the batch is handled");
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
}

/// Delivers a direct invocation's payload (its text, as the Lambda runtime hands it over).
async fn direct(h: &Harness, dlq: &MemoryDeadLetters, payload: &str) -> Value {
    handle_trigger_text(&h.trigger, dlq, payload)
        .await
        .expect("the event is handled")
}

/// Runs `body` on a runtime whose threads have room for the trigger's futures (a debug build
/// of the whole path, from the event to the vendor call, overflows a test thread's 2 MiB).
fn on_a_large_stack<F>(body: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    const STACK: usize = 64 << 20;
    let thread = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(STACK)
                .enable_all()
                .build()
                .unwrap()
                .block_on(body())
        })
        .unwrap();
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn numbers_reach_the_vendor_as_written_on_every_entry_point() {
    on_a_large_stack(every_entry_point);
}

async fn every_entry_point() {
    let h = Harness::start().await;
    h.sim.sim.recorder.enable();
    let dlq = MemoryDeadLetters::default();
    let files = tempfile::tempdir().unwrap();

    // 1. SQS body.
    let sqs = amc("exact-sqs", PARAMETERS, false);
    through(&h, "sqs", via_queue(&h, &dlq, &sqs)).await;

    // 2. EventBridge detail, direct invoke.
    through(&h, "eventbridge", async {
        let outcome = direct(
            &h,
            &dlq,
            &eventbridge_event(&amc("exact-eb", PARAMETERS, false)),
        )
        .await;
        assert_eq!(outcome["outcome"], "triggered", "{outcome}");
    })
    .await;

    // 3. Scheduler request, direct invoke.
    through(&h, "scheduler", async {
        let outcome = direct(
            &h,
            &dlq,
            &scheduler_wrapper(&amc("exact-sched", PARAMETERS, true)),
        )
        .await;
        assert_eq!(outcome["outcome"], "triggered", "{outcome}");
    })
    .await;

    // 4. Scheduler request through the queue.
    let wrapper = scheduler_wrapper(&amc("exact-sched-sqs", PARAMETERS, true));
    through(&h, "scheduler via sqs", via_queue(&h, &dlq, &wrapper)).await;

    // 5. `submit`: the file's text is the message, unchanged.
    let file = files.path().join("submit.json");
    let text = amc("exact-submit", PARAMETERS, false);
    std::fs::write(&file, &text).unwrap();
    let read = read_requests(std::slice::from_ref(&file)).expect("submit accepts the file");
    assert_eq!(read[0].2, text, "submit sends the file as written");
    through(&h, "submit", via_queue(&h, &dlq, &read[0].2)).await;

    // 7. `backfill`: the window's request, made from the template.
    let template = files.path().join("template.json");
    std::fs::write(&template, amc("exact-backfill", PARAMETERS, true)).unwrap();
    let day = time::macros::date!(2026 - 11 - 20);
    let windows = plan(&Backfill {
        request: template.clone(),
        from: day,
        to: day,
        every: None,
        rate: 1.0,
        dry_run: true,
    })
    .expect("backfill accepts the template");
    assert_eq!(windows.len(), 1);
    // The message `backfill` sends for a window: its request's JSON.
    let body = serde_json::to_string(&windows[0].1).unwrap();
    through(&h, "backfill", via_queue(&h, &dlq, &body)).await;

    // `rerun`: the request stored for the SQS run, sent again as attempt 2.
    let key = Harness::key_for(VendorKind::Amc, "exact-sqs");
    let entry = h
        .ledger
        .get(&key)
        .await
        .unwrap()
        .expect("the first run's entry");
    let (_, body) = next_attempt(key.as_str(), entry.request.request()).expect("a next attempt");
    through(&h, "rerun", via_queue(&h, &dlq, &body)).await;

    assert!(
        dlq.sent().is_empty(),
        "nothing dead-lettered: {:?}",
        dlq.sent()
    );

    // Duplicate keys are refused on each trigger path, naming the field.
    let duplicate = |id: &str, relative| amc(id, DUPLICATE, relative);
    let seen = h.sim.sim.recorder.exchanges().len();
    via_queue(&h, &dlq, &duplicate("dup-sqs", false)).await;
    direct(&h, &dlq, &eventbridge_event(&duplicate("dup-eb", false))).await;
    direct(&h, &dlq, &scheduler_wrapper(&duplicate("dup-sched", true))).await;
    via_queue(
        &h,
        &dlq,
        &scheduler_wrapper(&duplicate("dup-sched-sqs", true)),
    )
    .await;
    let letters = dlq.sent();
    assert_eq!(letters.len(), 4, "{letters:?}");
    for (_, reason) in &letters {
        assert_eq!(
            reason.field.as_deref(),
            Some("parameter_values.a"),
            "{reason:?}"
        );
        assert!(reason.error.contains("duplicate key"), "{reason:?}");
    }
    assert!(
        creates_since(&h.sim, seen).is_empty(),
        "a refused request reached AMC"
    );

    // ... and by the command line.
    std::fs::write(&file, duplicate("dup-submit", false)).unwrap();
    let e = read_requests(std::slice::from_ref(&file)).expect_err("submit refuses it");
    assert_eq!(e.field.as_deref(), Some("parameter_values.a"), "{e:?}");
    std::fs::write(&template, duplicate("dup-backfill", true)).unwrap();
    let e = plan(&Backfill {
        request: template,
        from: day,
        to: day,
        every: None,
        rate: 1.0,
        dry_run: true,
    })
    .expect_err("backfill refuses it");
    assert_eq!(e.field.as_deref(), Some("parameter_values.a"), "{e:?}");
}

/// 6. `run --sandbox`: the request into the local handlers on the sandbox's own simulators.
#[test]
fn numbers_reach_the_sandbox_simulator_as_written() {
    on_a_large_stack(sandbox_run);
}

async fn sandbox_run() {
    let out = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::simulated(
        &SandboxOptions {
            out: out.path().to_owned(),
            speed: 1_000.0,
        },
        Arc::new(Quiet),
    )
    .await
    .unwrap();
    let sim = sandbox.sim.as_ref().expect("simulated");
    sim.sim.recorder.enable();
    let summary = sandbox
        .run(amc("exact-run", PARAMETERS, false).as_bytes())
        .await
        .expect("the run ends");
    println!("{summary:?}");
    assert_exact("run --sandbox", &creates_since(sim, 0));

    let e = sandbox
        .run(amc("dup-run", DUPLICATE, false).as_bytes())
        .await
        .expect_err("a duplicate key is refused");
    assert!(e.to_string().contains("parameter_values.a"), "{e:#}");
    assert_eq!(
        creates_since(sim, 0).len(),
        1,
        "a refused request reached AMC"
    );
}
