//! Choice rules (`Variable` + `BooleanEquals`, the one form the deployed definition uses): type
//! mismatches, missing variables, rule order, Default and the no-match error.

use super::support::{clock, machine, FakeInvoker};
use runbridge_asl::{names, ExecutionStatus};
use serde_json::{json, Value};

/// Runs a Choice with one rule (→ "Yes") and a Default (→ "No"); returns which was taken.
async fn decide(rule: Value, input: Value) -> Result<bool, String> {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    let sm = machine(json!({
        "StartAt": "Decide",
        "States": {
            "Decide": {"Type": "Choice", "Choices": [rule], "Default": "No"},
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Succeed"}
        }
    }));
    let exec = sm
        .execute(
            "c",
            input,
            &FakeInvoker::new(|_, _, _| Ok(json!({}))),
            &clock(),
        )
        .await;
    match exec.status {
        ExecutionStatus::Succeeded => Ok(exec.states_entered().contains(&"Yes")),
        _ => Err(exec.error.unwrap_or_default()),
    }
}

#[tokio::test]
async fn boolean_equals_matches_only_the_same_boolean() {
    let input = json!({"b": true, "f": false, "s": "true", "n": 1, "nothing": null});
    let cases = [
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (json!({"Variable": "$.b", "BooleanEquals": false}), false),
        (json!({"Variable": "$.f", "BooleanEquals": false}), true),
        // A value of another type is simply not equal.
        (json!({"Variable": "$.s", "BooleanEquals": true}), false),
        (json!({"Variable": "$.n", "BooleanEquals": true}), false),
        (
            json!({"Variable": "$.nothing", "BooleanEquals": false}),
            false,
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(
            decide(rule.clone(), input.clone()).await,
            Ok(expected),
            "{rule}"
        );
    }
}

#[tokio::test]
async fn missing_variable_is_states_runtime() {
    let result = decide(
        json!({"Variable": "$.absent", "BooleanEquals": true}),
        json!({}),
    )
    .await;
    assert_eq!(result, Err(names::RUNTIME.to_string()));
}

#[tokio::test]
async fn no_match_without_default_fails_with_no_choice_matched() {
    let sm = machine(json!({
        "StartAt": "Decide",
        "States": {
            "Decide": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "Yes"}]
            },
            "Yes": {"Type": "Succeed"}
        }
    }));
    let exec = sm
        .execute(
            "c",
            json!({"done": false}),
            &FakeInvoker::new(|_, _, _| Ok(json!({}))),
            &clock(),
        )
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some(names::NO_CHOICE_MATCHED));
}

#[tokio::test]
async fn first_matching_rule_wins_and_output_path_applies() {
    let sm = machine(json!({
        "StartAt": "Decide",
        "States": {
            "Decide": {
                "Type": "Choice",
                "InputPath": "$.status",
                "OutputPath": "$.code",
                "Choices": [
                    {"Variable": "$.ok", "BooleanEquals": true, "Next": "First"},
                    {"Variable": "$.ok", "BooleanEquals": true, "Next": "Second"}
                ]
            },
            "First": {"Type": "Succeed"},
            "Second": {"Type": "Succeed"}
        }
    }));
    let exec = sm
        .execute(
            "c",
            json!({"status": {"ok": true, "code": 5}}),
            &FakeInvoker::new(|_, _, _| Ok(json!({}))),
            &clock(),
        )
        .await;
    assert_eq!(exec.states_entered(), vec!["Decide", "First"]);
    assert_eq!(exec.output, Some(json!(5)));
}
