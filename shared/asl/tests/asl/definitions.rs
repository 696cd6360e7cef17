//! Loading: DefinitionSubstitutions and every validation rule, each error naming where it is.

use super::support::{clock, FakeInvoker};
use runbridge_asl::{DefinitionError, ExecutionStatus, StateMachine};
use serde_json::{json, Value};
use std::collections::HashMap;

fn load(definition: Value) -> Result<StateMachine, DefinitionError> {
    StateMachine::from_json(&definition.to_string(), &HashMap::new())
}

fn load_err(definition: Value) -> DefinitionError {
    load(definition).expect_err("definition should be rejected")
}

#[test]
fn missing_next_target_names_the_state_and_the_target() {
    let err = load_err(json!({
        "StartAt": "Poll",
        "States": {
            "Poll": {"Type": "Task", "Resource": "r", "Next": "Chek"},
            "Check": {"Type": "Succeed"}
        }
    }));
    assert_eq!(
        err,
        DefinitionError::MissingTarget {
            location: "state \"Poll\"".into(),
            field: "Next".into(),
            target: "Chek".into()
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("Poll") && message.contains("Chek"),
        "{message}"
    );
}

#[test]
fn missing_targets_in_choice_default_and_catch_are_found() {
    let err = load_err(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": true, "Next": "End"}], "Default": "Nowhere"},
            "End": {"Type": "Succeed"}
        }
    }));
    assert!(
        matches!(&err, DefinitionError::MissingTarget { field, target, .. } if field == "Default" && target == "Nowhere"),
        "{err}"
    );

    let err = load_err(json!({
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "r", "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]}
        }
    }));
    assert!(
        matches!(&err, DefinitionError::MissingTarget { field, .. } if field == "Catch[0].Next"),
        "{err}"
    );
}

#[test]
fn start_at_must_exist() {
    let err = load_err(json!({"StartAt": "Begin", "States": {"Start": {"Type": "Succeed"}}}));
    assert!(
        matches!(&err, DefinitionError::MissingTarget { field, .. } if field == "StartAt"),
        "{err}"
    );
}

#[test]
fn exactly_one_of_next_and_end() {
    let both = load_err(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "P", "End": true}}}),
    );
    assert!(both.to_string().contains("both Next and End"), "{both}");
    let neither = load_err(json!({"StartAt": "P", "States": {"P": {"Type": "Pass"}}}));
    assert!(neither.to_string().contains("state \"P\""), "{neither}");
    let end_false = load_err(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": false}}}),
    );
    assert!(matches!(end_false, DefinitionError::Invalid { .. }));
}

#[test]
fn terminal_and_choice_states_reject_next_and_end() {
    let err = load_err(json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "End": true}}}));
    assert!(
        err.to_string().contains("\"End\" is not supported here"),
        "{err}"
    );
    let err = load_err(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": true, "Next": "S"}], "Next": "S"},
            "S": {"Type": "Succeed"}
        }
    }));
    assert!(
        err.to_string().contains("\"Next\" is not supported here"),
        "{err}"
    );
}

#[test]
fn unknown_and_unsupported_state_types() {
    let err = load_err(json!({"StartAt": "X", "States": {"X": {"Type": "Teleport", "End": true}}}));
    assert!(
        err.to_string().contains("unknown state type \"Teleport\""),
        "{err}"
    );
    for kind in ["Parallel", "Map"] {
        let err = load_err(json!({"StartAt": "X", "States": {"X": {"Type": kind, "End": true}}}));
        assert!(matches!(err, DefinitionError::Unsupported { .. }), "{err}");
        assert!(
            err.to_string().contains("unsupported by the local runner"),
            "{err}"
        );
        assert!(err.to_string().contains(kind), "{err}");
    }
    let err = load_err(
        json!({"QueryLanguage": "JSONata", "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}),
    );
    assert!(matches!(err, DefinitionError::Unsupported { .. }), "{err}");
    let err = load_err(
        json!({"StartAt": "X", "States": {"X": {"Type": "Pass", "Assign": {"a": 1}, "End": true}}}),
    );
    assert!(matches!(err, DefinitionError::Unsupported { .. }), "{err}");
}

#[test]
fn misspelt_fields_are_rejected() {
    let err = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "ResultPth": "$.x", "End": true}}}),
    );
    assert!(err.to_string().contains("\"ResultPth\""), "{err}");
    let err = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["X"], "MaxAttemps": 2}]}}}),
    );
    assert!(err.to_string().contains("Retry[0]"), "{err}");
}

#[test]
fn retry_and_catch_rules() {
    let all_not_last = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}}}),
    );
    assert!(
        all_not_last.to_string().contains("must be the last"),
        "{all_not_last}"
    );
    let all_not_alone = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}}}),
    );
    assert!(
        all_not_alone.to_string().contains("alone"),
        "{all_not_alone}"
    );
    let bad_rate = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}}}),
    );
    assert!(bad_rate.to_string().contains("BackoffRate"), "{bad_rate}");
    let bad_jitter = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]}}}),
    );
    assert!(
        bad_jitter.to_string().contains("JitterStrategy"),
        "{bad_jitter}"
    );
    let empty = load_err(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
        "Catch": [{"ErrorEquals": [], "Next": "T"}]}}}),
    );
    assert!(empty.to_string().contains("ErrorEquals"), "{empty}");
}

#[test]
fn paths_templates_and_rules_are_checked_at_load() {
    let cases = [
        json!({"Type": "Pass", "InputPath": "$.items[*]", "End": true}),
        json!({"Type": "Pass", "ResultPath": "$$.State", "End": true}),
        json!({"Type": "Pass", "Parameters": {"a.$": "not a path"}, "End": true}),
        json!({"Type": "Wait", "Seconds": 5, "SecondsPath": "$.s", "End": true}),
        json!({"Type": "Wait", "Seconds": -1, "End": true}),
        json!({"Type": "Wait", "End": true}),
        json!({"Type": "Wait", "SecondsPath": "$.s[*]", "End": true}),
        json!({"Type": "Task", "Resource": "", "End": true}),
        json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}),
        json!({"Type": "Choice", "Choices": []}),
    ];
    for state in cases {
        let err = load(json!({"StartAt": "S", "States": {"S": state.clone()}}));
        assert!(err.is_err(), "should reject {state}");
        assert!(
            err.unwrap_err().to_string().contains("state \"S\""),
            "{state}"
        );
    }
}

#[test]
fn choice_rule_shapes() {
    let wrap = |rule: Value| {
        load(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "D"},
            "D": {"Type": "Succeed"}
        }}))
    };
    // No Next, a non-boolean literal, a bad path, no Variable, no operator, an extra operator,
    // a combinator.
    for rule in [
        json!({"Variable": "$.a", "BooleanEquals": true}),
        json!({"Variable": "$.a", "BooleanEquals": "true", "Next": "D"}),
        json!({"Variable": "a", "BooleanEquals": true, "Next": "D"}),
        json!({"BooleanEquals": true, "Next": "D"}),
        json!({"Variable": "$.a", "Next": "D"}),
        json!({"Variable": "$.a", "BooleanEquals": true, "StringEquals": "x", "Next": "D"}),
        json!({"And": [], "Next": "D"}),
    ] {
        let err = wrap(rule.clone()).expect_err("rule should be rejected");
        assert!(err.to_string().contains("Choices[0]"), "{rule}: {err}");
    }
}

#[test]
fn unreachable_states_are_rejected() {
    let err = load_err(json!({
        "StartAt": "A",
        "States": {"A": {"Type": "Succeed"}, "Orphan": {"Type": "Succeed"}}
    }));
    assert!(
        err.to_string().contains("Orphan") && err.to_string().contains("not reachable"),
        "{err}"
    );
}

#[test]
fn invalid_json_and_missing_fields() {
    assert!(matches!(
        StateMachine::from_json("{not json", &HashMap::new()),
        Err(DefinitionError::Json(_))
    ));
    let err = load_err(json!({"States": {"A": {"Type": "Succeed"}}}));
    assert!(err.to_string().contains("StartAt"), "{err}");
    let err = load_err(json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}}));
    assert!(err.to_string().contains("Resource"), "{err}");
}

#[tokio::test]
async fn substitutions_replace_placeholders_as_text() {
    let definition = r#"{
        "StartAt": "Poll",
        "TimeoutSeconds": ${ExecTimeout},
        "States": {
            "Poll": {"Type": "Task", "Resource": "${PollFunctionArn}", "Next": "Collect"},
            "Collect": {"Type": "Task", "Resource": "${CollectFunctionArn}", "Comment": "${PollFunctionArn} then ${CollectFunctionArn}", "End": true}
        }
    }"#;
    let subs = HashMap::from([
        (
            "PollFunctionArn".to_string(),
            "arn:aws:lambda:local:000000000000:function:poll".to_string(),
        ),
        (
            "CollectFunctionArn".to_string(),
            "arn:aws:lambda:local:000000000000:function:collect".to_string(),
        ),
        ("ExecTimeout".to_string(), "3600".to_string()),
        ("Unused".to_string(), "ignored".to_string()),
    ]);
    let sm = StateMachine::from_json(definition, &subs).unwrap();
    assert_eq!(sm.timeout_seconds(), Some(3600));
    assert_eq!(
        sm.task_resources(),
        vec![
            "arn:aws:lambda:local:000000000000:function:collect",
            "arn:aws:lambda:local:000000000000:function:poll"
        ]
    );
    let tasks = FakeInvoker::new(|_, _, _| Ok(json!({})));
    let exec = sm.execute("subs", json!({}), &tasks, &clock()).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let resources: Vec<String> = tasks.calls().into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        resources,
        vec![
            "arn:aws:lambda:local:000000000000:function:poll",
            "arn:aws:lambda:local:000000000000:function:collect"
        ]
    );

    let err = StateMachine::from_json(definition, &HashMap::new()).unwrap_err();
    assert!(
        matches!(err, DefinitionError::MissingSubstitution { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("${"), "{err}");
}
