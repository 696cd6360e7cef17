//! Choice rules: every operator family, `…Path` forms, type mismatches, And/Or/Not with
//! short-circuiting, missing variables and the no-match error.

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
async fn comparison_operators() {
    let input = json!({
        "s": "beta", "other": "beta", "n": 10, "f": 10.0, "low": 3, "b": true,
        "ts": "2024-05-01T12:00:00Z", "later": "2024-05-02T00:00:00+02:00",
        "file": "log-2024.txt", "nothing": null
    });
    let cases = [
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (json!({"Variable": "$.b", "BooleanEquals": false}), false),
        (json!({"Variable": "$.s", "StringEquals": "beta"}), true),
        (
            json!({"Variable": "$.s", "StringEqualsPath": "$.other"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringLessThan": "gamma"}), true),
        (
            json!({"Variable": "$.s", "StringGreaterThan": "gamma"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEquals": "beta"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEquals": "alpha"}),
            true,
        ),
        (
            json!({"Variable": "$.file", "StringMatches": "log-*.txt"}),
            true,
        ),
        (
            json!({"Variable": "$.file", "StringMatches": "log-*.csv"}),
            false,
        ),
        (json!({"Variable": "$.n", "NumericEquals": 10}), true),
        (json!({"Variable": "$.f", "NumericEquals": 10}), true),
        (json!({"Variable": "$.n", "NumericLessThan": 10}), false),
        (
            json!({"Variable": "$.n", "NumericLessThanEquals": 10}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericGreaterThan": 9.5}), true),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 11}),
            false,
        ),
        (
            json!({"Variable": "$.low", "NumericLessThanPath": "$.n"}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericEqualsPath": "$.f"}), true),
        (
            json!({"Variable": "$.ts", "TimestampLessThan": "2024-05-01T12:00:01Z"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampEquals": "2024-05-01T14:00:00+02:00"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampLessThanPath": "$.later"}),
            true,
        ),
        // Type mismatches are false, not errors.
        (json!({"Variable": "$.n", "StringEquals": "10"}), false),
        (json!({"Variable": "$.s", "NumericEquals": 10}), false),
        (json!({"Variable": "$.s", "BooleanEquals": true}), false),
        (
            json!({"Variable": "$.s", "TimestampEquals": "2024-05-01T12:00:00Z"}),
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
async fn type_test_operators() {
    let input =
        json!({"nothing": null, "n": 1.5, "s": "x", "b": false, "ts": "2024-01-01T00:00:00Z"});
    let cases = [
        (json!({"Variable": "$.nothing", "IsPresent": true}), true),
        (json!({"Variable": "$.absent", "IsPresent": true}), false),
        (json!({"Variable": "$.absent", "IsPresent": false}), true),
        (json!({"Variable": "$.nothing", "IsNull": true}), true),
        (json!({"Variable": "$.s", "IsNull": true}), false),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsNumeric": false}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.b", "IsBoolean": true}), true),
        (json!({"Variable": "$.n", "IsBoolean": true}), false),
        (json!({"Variable": "$.ts", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": true}), false),
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
async fn boolean_combinators() {
    let input = json!({"state": "RUNNING", "polls": 4});
    let running = json!({"Variable": "$.state", "StringEquals": "RUNNING"});
    let many = json!({"Variable": "$.polls", "NumericGreaterThan": 10});
    assert_eq!(
        decide(json!({"And": [running, many]}), input.clone()).await,
        Ok(false)
    );
    assert_eq!(
        decide(json!({"Or": [running, many]}), input.clone()).await,
        Ok(true)
    );
    assert_eq!(decide(json!({"Not": many}), input.clone()).await, Ok(true));
    assert_eq!(
        decide(json!({"Not": {"Or": [many, {"Not": running}]}}), input).await,
        Ok(true)
    );
}

#[tokio::test]
async fn and_short_circuits_so_is_present_guards_a_missing_variable() {
    let guarded = json!({"And": [
        {"Variable": "$.maybe", "IsPresent": true},
        {"Variable": "$.maybe", "StringEquals": "x"}
    ]});
    assert_eq!(decide(guarded.clone(), json!({})).await, Ok(false));
    assert_eq!(decide(guarded, json!({"maybe": "x"})).await, Ok(true));
}

#[tokio::test]
async fn missing_variable_is_states_runtime() {
    let result = decide(
        json!({"Variable": "$.absent", "StringEquals": "x"}),
        json!({}),
    )
    .await;
    assert_eq!(result, Err(names::RUNTIME.to_string()));
    let result = decide(
        json!({"Variable": "$.present", "StringEqualsPath": "$.absent"}),
        json!({"present": "x"}),
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
                    {"Variable": "$.code", "NumericGreaterThan": 0, "Next": "First"},
                    {"Variable": "$.code", "NumericGreaterThan": 1, "Next": "Second"}
                ]
            },
            "First": {"Type": "Succeed"},
            "Second": {"Type": "Succeed"}
        }
    }));
    let exec = sm
        .execute(
            "c",
            json!({"status": {"code": 5}}),
            &FakeInvoker::new(|_, _, _| Ok(json!({}))),
            &clock(),
        )
        .await;
    assert_eq!(exec.states_entered(), vec!["Decide", "First"]);
    assert_eq!(exec.output, Some(json!(5)));
}
