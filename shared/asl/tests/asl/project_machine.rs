//! The project's real state machine (infra/statemachine.asl.json), loaded exactly as deployed
//! with its DefinitionSubstitutions, and run against a fake poll/collect pair.

use super::support::{clock, FakeInvoker};
use runbridge_asl::{ExecutionStatus, StateMachine, TaskFailure};
use serde_json::json;
use std::collections::HashMap;

const POLL: &str = "arn:aws:lambda:local:000000000000:function:poll";
const COLLECT: &str = "arn:aws:lambda:local:000000000000:function:collect";

fn load() -> StateMachine {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/statemachine.asl.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let substitutions = HashMap::from([
        ("PollFunctionArn".to_string(), POLL.to_string()),
        ("CollectFunctionArn".to_string(), COLLECT.to_string()),
    ]);
    StateMachine::from_json(&text, &substitutions)
        .unwrap_or_else(|e| panic!("{path} must load in the local runner: {e}"))
}

#[test]
fn project_state_machine_parses_and_validates() {
    let sm = load();
    assert_eq!(sm.task_resources(), vec![COLLECT, POLL]);
}

#[tokio::test]
async fn project_state_machine_reaches_succeed_when_poll_reports_done() {
    let sm = load();
    // RUNNING twice, then done; collect answers with an object.
    let tasks = FakeInvoker::new(|resource, input, index| match resource {
        POLL => {
            let done = index >= 2;
            Ok(json!({
                "handle": input["handle"],
                "state": if done { "SUCCEEDED" } else { "RUNNING" },
                "done": done,
                "failed": false,
                "wait_seconds": 60,
                "reason": null
            }))
        }
        COLLECT => Ok(json!({"manifest": "s3://bucket/run=k/manifest.json", "files": 1})),
        other => Err(TaskFailure::new("Unknown", other)),
    });
    let clock = clock();
    let exec = sm
        .execute(
            "key-1",
            json!({"handle": {"key": "key-1", "vendor": "amc"}, "wait_seconds": 30}),
            &tasks,
            &clock,
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(tasks.inputs_to(POLL).len(), 3);
    assert_eq!(tasks.inputs_to(COLLECT).len(), 1);
    // Every poll gets the handle it is tracking.
    for input in tasks.inputs_to(POLL) {
        assert_eq!(input["handle"]["key"], json!("key-1"));
    }
    assert_eq!(clock.total_slept(), 30.0 + 60.0 + 60.0);
    let entered = exec.states_entered();
    assert_eq!(entered.last(), Some(&"RunSucceeded"));
    assert!(exec.output.unwrap().is_object());
}
