//! The deployed definition on two engines: `infra/statemachine.asl.json` (with the template's
//! substitutions, as `deployed_stack.rs` shows the stack deploys it) executed by moto's Step
//! Functions (the ASL interpreter LocalStack wrote; `execute_state_machine`) and by `shared/asl`,
//! each given the same Lambda answers in the same order. The states entered and the input each
//! was entered with, the payload of every Lambda task, the final status, output, error and cause
//! must be equal: a differential test of our interpreter against one nobody here wrote.
//!
//! The answers are scripted (moto's Lambda without Docker answers invocations from a queue,
//! `/moto-api/static/lambda-simple/response`; `scripts/moto_server.py` lets an answer be a
//! function error, so Retry and Catch run on moto too):
//! - `scenarios.rs`: hand-written answers — a run that succeeds after a second poll, a vendor
//!   failure recorded by RecordFailure, a poll's retryable Lambda error retried, a collect's
//!   customer error and a poll's unexpected error caught and recorded, an operator's stop while
//!   the execution waits, and a queued run parked on its task token (the Lambda callback
//!   integration), woken with SendTaskSuccess, admitted and run to its end;
//! - `replayed.rs`: each vendor's happy path as the real handlers answered it on the simulators.
//!
//! moto 5.2.5 notes: the executing backend does not see state machines CloudFormation created
//! (so the machine is created here with CreateStateMachine). One difference found, moto's: it
//! drops StopExecution's error and cause, which Step Functions records and shared/asl keeps (see
//! the stop scenario).

mod engines;
mod replayed;
mod scenarios;

use std::collections::HashMap;

use runbridge_asl::StateMachine;
use runbridge_test_support::template::repository_root;
use runbridge_test_support::{own_moto, unique};

use engines::{on_moto, on_ours, COLLECT_ARN, POLL_ARN};
use scenarios::{Scenario, STOP_CAUSE, STOP_ERROR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_definition_runs_the_same_on_moto_and_on_shared_asl() {
    const TEST: &str = "the_deployed_definition_runs_the_same_on_moto_and_on_shared_asl";
    let Some(own) = own_moto(
        TEST,
        r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#,
    )
    .await
    else {
        return;
    };
    let asl =
        std::fs::read_to_string(repository_root().join("infra/statemachine.asl.json")).unwrap();
    let substitutions: HashMap<String, String> = [
        ("PollFunctionArn".to_owned(), POLL_ARN.to_owned()),
        ("CollectFunctionArn".to_owned(), COLLECT_ARN.to_owned()),
    ]
    .into();
    let mut deployed = asl.clone();
    for (k, v) in &substitutions {
        deployed = deployed.replace(&format!("${{{k}}}"), v);
    }
    let ours = StateMachine::from_json(&asl, &substitutions).expect("our parse");
    let sfn = aws_sdk_sfn::Client::new(&own.moto.sdk);
    let machine = sfn
        .create_state_machine()
        .name(unique("rb-diff"))
        .definition(&deployed)
        .role_arn("arn:aws:iam::123456789012:role/rb-diff-RunStateMachineRole")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn()
        .to_owned();

    let mut scenarios: Vec<Scenario> = scenarios::scripted();
    for recorded in replayed::happy_paths().await {
        // The replay takes the local run's path: the answers, not the waits, decide it.
        let replay = on_ours(&ours, &recorded.scenario).await;
        assert_eq!(
            replay.states(),
            recorded.entered,
            "{}: the replay left the recorded run's path",
            recorded.scenario.name
        );
        scenarios.push(recorded.scenario);
    }

    let mut differences = Vec::new();
    for scenario in &scenarios {
        let mut theirs = on_moto(&own, &sfn, &machine, scenario).await;
        let mut ours = on_ours(&ours, scenario).await;
        assert_eq!(
            theirs.status, scenario.status,
            "{}: {theirs:?}",
            scenario.name
        );
        if scenario.admission.is_some() {
            for state in ["WaitForSlot", "Admit", "Collect"] {
                assert!(theirs.states().contains(&state), "{theirs:?}");
            }
        }
        if scenario.answers.iter().any(|a| a["errorType"].is_string()) {
            assert!(
                theirs.states().contains(&"Poll") || theirs.states().contains(&"Collect"),
                "{theirs:?}"
            );
        }
        if scenario.stopped {
            // Known difference, moto's: StopExecution's error and cause are recorded by Step
            // Functions (DescribeExecution and the ExecutionAborted event's details carry them;
            // runbridge's stop handler reads them from the status-change event), and shared/asl
            // keeps them; moto 5.2.5 drops them (none on DescribeExecution, empty strings on the
            // ExecutionAborted event). Checked here so a moto that keeps them shows up.
            assert_eq!(
                (theirs.error.as_deref(), theirs.cause.as_deref()),
                (None, None),
                "moto now keeps StopExecution's error and cause: compare them"
            );
            assert_eq!(ours.error.as_deref(), Some(STOP_ERROR));
            assert_eq!(ours.cause.as_deref(), Some(STOP_CAUSE));
            (ours.error, ours.cause) = (None, None);
        }
        // A task token is each engine's own opaque string: compare that there is one.
        for payloads in [&mut theirs.payloads, &mut ours.payloads] {
            for payload in payloads.iter_mut() {
                if payload["task_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
                {
                    payload["task_token"] = "(a task token)".into();
                }
            }
        }
        if ours != theirs {
            differences.push(format!(
                "{}: {}",
                scenario.name,
                first_difference(&theirs, &ours)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "the engines differ:\n{}",
        differences.join("\n")
    );
}

/// Where two outcomes first differ, short enough to read.
fn first_difference(theirs: &engines::Outcome, ours: &engines::Outcome) -> String {
    if theirs.states() != ours.states() {
        return format!(
            "states entered\n  moto: {:?}\n  ours: {:?}",
            theirs.states(),
            ours.states()
        );
    }
    for (i, (t, o)) in theirs.entered.iter().zip(&ours.entered).enumerate() {
        if t != o {
            return format!(
                "input of state #{i} {}\n  moto: {}\n  ours: {}",
                t.0, t.1, o.1
            );
        }
    }
    if theirs.payloads != ours.payloads {
        return format!(
            "task payloads\n  moto: {:?}\n  ours: {:?}",
            theirs.payloads, ours.payloads
        );
    }
    format!(
        "end\n  moto: {} {:?} {:?} {:?}\n  ours: {} {:?} {:?} {:?}",
        theirs.status,
        theirs.output,
        theirs.error,
        theirs.cause,
        ours.status,
        ours.output,
        ours.error,
        ours.cause
    )
}
