//! The run requests written into `infra/template.yaml` (the example schedule's input and the
//! example `send-message` output) are valid, so a deployer who copies them gets a run, not a DLQ
//! message. The rule for stopped executions matches what the stop handler reads.

use runbridge_core::RunRequest;

fn template() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap()
}

/// The JSON on the line after `marker` (YAML folded scalars keep it on one line).
fn json_after(text: &str, marker: &str) -> serde_json::Value {
    let mut lines = text.lines().skip_while(|l| !l.contains(marker));
    lines
        .next()
        .unwrap_or_else(|| panic!("{marker} not in the template"));
    let line = lines
        .next()
        .expect("a line after the marker")
        .trim()
        .trim_matches('\'');
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn the_example_schedule_input_is_a_valid_scheduler_wrapper() {
    let input = json_after(&template(), "Input: >-");
    assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");
    RunRequest::from_value(input["request"].clone()).unwrap();
}

#[test]
fn the_example_sqs_message_is_a_valid_request() {
    let body = json_after(&template(), "aws sqs send-message");
    RunRequest::from_value(body).unwrap();
}

/// The stack's rule for stopped executions sends exactly what the stop handler acts on: Step
/// Functions' status changes (its source and detail-type constants), ABORTED and TIMED_OUT, of
/// this stack's state machine, to the trigger function, with a dead-letter queue.
#[test]
fn the_stopped_execution_rule_matches_what_the_stop_handler_reads() {
    use runbridge_handlers::stopped::{StopStatus, STATES_SOURCE, STATUS_CHANGE_DETAIL_TYPE};
    let text = template();
    let rule: String = text
        .lines()
        .skip_while(|l| !l.starts_with("  ExecutionStoppedRule:"))
        .skip(1)
        .take_while(|l| !l.starts_with("  ") || l.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        format!("source: [{STATES_SOURCE}]"),
        format!("detail-type: [{STATUS_CHANGE_DETAIL_TYPE}]"),
        format!(
            "status: [{}, {}, {}]",
            StopStatus::Aborted.as_str(),
            StopStatus::TimedOut.as_str(),
            StopStatus::Failed.as_str()
        ),
        "stateMachineArn: [!Ref RunStateMachine]".to_owned(),
        "Arn: !GetAtt TriggerFunction.Arn".to_owned(),
        "Arn: !GetAtt RunRequestDeadLetterQueue.Arn".to_owned(),
    ] {
        assert!(
            rule.contains(&needle),
            "ExecutionStoppedRule lacks {needle:?}:\n{rule}"
        );
    }
    assert!(
        text.contains("SourceArn: !GetAtt ExecutionStoppedRule.Arn"),
        "the trigger's permission for the rule"
    );
}
