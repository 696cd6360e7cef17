//! The run requests written into `infra/template.yaml` (the example schedule's input and the
//! example `send-message` output) are valid, so a deployer who copies them gets a run, not a DLQ
//! message.

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
