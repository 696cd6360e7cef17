//! The guard between `infra/` and this interpreter: every `infra/*.asl.json` must load under the
//! strict parse, which rejects any state type, field, Choice operator or intrinsic function the
//! interpreter does not implement. If a definition in `infra/` starts to use one,
//! `every_infra_definition_uses_only_what_the_interpreter_implements` fails and names it; the
//! other tests here apply such edits to the real definition and check the error names the
//! feature and the state.

use runbridge_asl::{DefinitionError, StateMachine};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// Every `*.asl.json` file in `infra/`, with its text.
fn infra_definitions() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra");
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, text)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.asl.json in {}", dir.display());
    out
}

/// A value for every `${Name}` placeholder in `text` (CloudFormation fills them at deploy time).
fn substitutions(text: &str) -> HashMap<String, String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .map(|name| {
            let value = format!("arn:aws:lambda:local:000000000000:function:{name}");
            (name, value)
        })
        .collect()
}

fn load(text: &str) -> Result<StateMachine, DefinitionError> {
    StateMachine::from_json(text, &substitutions(text))
}

/// The project's definition as JSON, to edit.
fn deployed() -> Value {
    let (path, text) = infra_definitions()
        .into_iter()
        .find(|(p, _)| p.ends_with("statemachine.asl.json"))
        .expect("infra/statemachine.asl.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The name of the first state of `state_type` in the deployed definition.
fn first_state(definition: &Value, state_type: &str) -> String {
    definition["States"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| s["Type"] == state_type)
        .map(|(name, _)| name.clone())
        .unwrap_or_else(|| panic!("the deployed definition has no {state_type} state"))
}

/// Loads an edited definition, which must be rejected; returns the error.
fn rejected(definition: &Value) -> DefinitionError {
    match load(&definition.to_string()) {
        Ok(_) => panic!("the edited definition should be rejected"),
        Err(e) => e,
    }
}

fn assert_unsupported(err: &DefinitionError, state: &str, feature: &str) {
    assert!(matches!(err, DefinitionError::Unsupported { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("state \"{state}\"")) && message.contains(feature),
        "the error should name state \"{state}\" and {feature}: {message}"
    );
}

#[test]
fn every_infra_definition_uses_only_what_the_interpreter_implements() {
    for (path, text) in infra_definitions() {
        if let Err(e) = load(&text) {
            panic!(
                "{} uses something the local ASL interpreter (shared/asl) does not implement, \
                 so `runbridge` cannot run it locally: {e}",
                path.display()
            );
        }
    }
}

#[test]
fn an_unsupported_or_misspelt_field_is_rejected_naming_it() {
    let mut definition = deployed();
    let task = first_state(&definition, "Task");
    definition["States"][&task]["HeartbeatSeconds"] = json!(30);
    assert_unsupported(&rejected(&definition), &task, "\"HeartbeatSeconds\"");

    // TimeoutSecondsPath is implemented, but not beside TimeoutSeconds.
    let mut definition = deployed();
    definition["States"][&task]["TimeoutSecondsPath"] = json!("$.t");
    let err = rejected(&definition);
    assert!(matches!(err, DefinitionError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("mutually exclusive"), "{err}");

    let mut definition = deployed();
    definition["States"][&task]["Credentials"] = json!({"RoleArn": "arn:aws:iam::1:role/x"});
    assert_unsupported(&rejected(&definition), &task, "\"Credentials\"");

    let mut definition = deployed();
    definition["States"][&task]["TimeoutSeconds"] = json!(0);
    assert!(matches!(
        rejected(&definition),
        DefinitionError::Invalid { .. }
    ));

    let mut definition = deployed();
    definition["States"][&task]["ResultSelector"] = json!({"a.$": "$.b"});
    assert_unsupported(&rejected(&definition), &task, "\"ResultSelector\"");

    let mut definition = deployed();
    let wait = first_state(&definition, "Wait");
    definition["States"][&wait]["Nxt"] = json!("Poll");
    let err = rejected(&definition);
    assert!(matches!(err, DefinitionError::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains("\"Nxt\"") && err.to_string().contains("supported: "),
        "{err}"
    );

    let mut definition = deployed();
    definition["QueryLanguage"] = json!("JSONata");
    let err = rejected(&definition);
    assert!(err.to_string().contains("QueryLanguage"), "{err}");
}

#[test]
fn an_unsupported_state_type_is_rejected_naming_it() {
    for state_type in ["Map", "Parallel"] {
        let mut definition = deployed();
        definition["States"]["Fanout"] = json!({"Type": state_type, "End": true});
        assert_unsupported(&rejected(&definition), "Fanout", state_type);
    }
    let mut definition = deployed();
    definition["States"]["Fanout"] = json!({"Type": "Teleport", "End": true});
    let err = rejected(&definition);
    assert!(
        err.to_string().contains("unknown state type \"Teleport\""),
        "{err}"
    );
}

#[test]
fn an_intrinsic_function_is_rejected_as_unsupported_naming_it() {
    let mut definition = deployed();
    let pass = first_state(&definition, "Pass");
    definition["States"][&pass]["Parameters"]["label.$"] =
        json!("States.Format('run {}', $.handle.key)");
    let err = rejected(&definition);
    assert_unsupported(&err, &pass, "intrinsic function States.Format");
    assert!(err.to_string().contains("label.$"), "{err}");

    let mut definition = deployed();
    let fail = first_state(&definition, "Fail");
    definition["States"][&fail]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "Type");
    definition["States"][&fail]["CausePath"] = json!("States.JsonToString($.error)");
    let err = rejected(&definition);
    assert_unsupported(&err, &fail, "intrinsic function States.JsonToString");
    assert!(err.to_string().contains("CausePath"), "{err}");
}

#[test]
fn an_unsupported_choice_operator_is_rejected_naming_it() {
    let mut definition = deployed();
    let choice = first_state(&definition, "Choice");
    let rule = &mut definition["States"][&choice]["Choices"][0];
    rule.as_object_mut().unwrap().remove("BooleanEquals");
    rule["StringEquals"] = json!("SUCCEEDED");
    assert_unsupported(&rejected(&definition), &choice, "StringEquals");
}

/// The parked wait issue 23 plans for `WaitForSlot` (a callback on the poll function, its
/// timeout from the input, a Retry on the timeout that recovers a lost wake-up) is within what
/// the interpreter runs.
#[test]
fn the_planned_callback_wait_for_a_slot_loads() {
    let mut definition = deployed();
    definition["States"]["WaitForSlot"] = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": "${PollFunctionArn}",
            "Payload": {"step": "enqueue", "handle.$": "$.handle", "task_token.$": "$$.Task.Token"}
        },
        "TimeoutSecondsPath": "$.park_seconds",
        "ResultPath": "$",
        "Retry": [{
            "ErrorEquals": ["States.Timeout"],
            "IntervalSeconds": 1,
            "MaxAttempts": 3,
            "BackoffRate": 1
        }],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DescribeError"}],
        "Next": "Admit"
    });
    let text = definition.to_string();
    let machine = load(&text).unwrap_or_else(|e| panic!("the planned WaitForSlot: {e}"));
    assert!(machine.state_names().contains(&"WaitForSlot"));
    assert!(machine
        .task_resources()
        .contains(&"arn:aws:lambda:local:000000000000:function:PollFunctionArn"));
}
