//! Scenarios whose Lambda answers come from the real handlers: each vendor's example request run
//! end to end on the local deployment (the deployed definition, the handlers, the simulators),
//! every task's answer recorded in order. moto's Lambda cannot run the handlers without Docker,
//! so both engines are then given those recorded answers; the waits the handlers asked for are
//! cut to a second so moto (which really waits) finishes in seconds, which changes no path.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use runbridge_asl::{ExecutionStatus, HistoryEventKind, TaskFailure, TaskInvoker};
use runbridge_core::VendorKind;
use runbridge_system_tests::harness::{example_request, Harness, HarnessOptions};
use serde_json::{json, Value};

use crate::scenarios::Scenario;

/// Records every task's answer (an error as the Lambda error payload it would be).
struct Recorder {
    inner: Arc<dyn TaskInvoker>,
    answers: Arc<Mutex<Vec<Value>>>,
}

#[async_trait]
impl TaskInvoker for Recorder {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let answer = self.inner.invoke(resource, input).await;
        self.answers.lock().unwrap().push(match &answer {
            Ok(output) => output.clone(),
            Err(failure) => json!({"errorType": failure.error, "errorMessage": failure.cause}),
        });
        answer
    }
}

/// Every `wait_seconds` above one second, cut to one.
fn shorten_waits(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if name == "wait_seconds" && member.as_f64().is_some_and(|w| w > 1.0) {
                    *member = json!(1);
                } else {
                    shorten_waits(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(shorten_waits),
        _ => {}
    }
}

/// A vendor's happy path as the handlers answer it, and the states the local run entered.
pub struct Recorded {
    pub scenario: Scenario,
    pub entered: Vec<String>,
}

/// Runs `vendor`'s example request end to end on the local deployment and records its answers.
pub async fn happy_path(vendor: VendorKind) -> Recorded {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let recorded = answers.clone();
    let h = Harness::start_with(HarnessOptions {
        wrap_tasks: Some(Box::new(move |inner| {
            Arc::new(Recorder {
                inner,
                answers: recorded,
            })
        })),
        ..HarnessOptions::default()
    })
    .await;
    h.trigger
        .handle_bytes(&example_request(vendor, "diff"), None)
        .await
        .unwrap();
    h.run_to_end_for(vendor, "diff").await;
    let execution = h
        .executions
        .wait(&Harness::key_for(vendor, "diff").execution_name())
        .await
        .unwrap();
    assert_eq!(execution.status, ExecutionStatus::Succeeded, "{vendor}");
    let mut input = execution
        .history
        .iter()
        .find_map(|e| match &e.kind {
            HistoryEventKind::ExecutionStarted { input } => Some(input.clone()),
            _ => None,
        })
        .expect("an ExecutionStarted event");
    shorten_waits(&mut input);
    let mut answers = answers.lock().unwrap().clone();
    answers.iter_mut().for_each(shorten_waits);
    Recorded {
        scenario: Scenario {
            name: format!("{vendor}: the handlers' happy path on the simulators"),
            input,
            answers,
            stopped: false,
            admission: None,
            status: "SUCCEEDED",
        },
        entered: execution
            .states_entered()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Every vendor's happy path.
pub async fn happy_paths() -> Vec<Recorded> {
    let mut all = Vec::new();
    for vendor in VendorKind::ALL {
        all.push(happy_path(vendor).await);
    }
    all
}
