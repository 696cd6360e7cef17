//! The deployed cancel path through the trigger function: a Step Functions "Execution Status
//! Change" of a stopped execution, handed to `TriggerFunction` (built from the environment, its
//! vendor settings from Secrets Manager) against moto (S3 ledger, manifest and marker,
//! EventBridge, Step Functions) and the CARTO simulator's API.

use runbridge_adapters_aws::env::{
    DEAD_LETTER_QUEUE_URL, EVENT_BUS_NAME, LEDGER_PREFIX, RESULTS_BUCKET, RESULTS_PREFIX,
    STATE_MACHINE_ARN, VENDOR_SECRET_ARN,
};
use runbridge_core::{Manifest, RunState, VendorKind};
use runbridge_lambda::{TriggerFunction, TriggerOutcome};
use runbridge_sim::{Outcome, RunScript, SimConfig, SimHandle};
use serde_json::{json, Value};

use runbridge_test_support::{exists, moto, read, unique};

/// The vendor secret the stack reads, pointing at the simulators.
fn secret(sim: &SimHandle) -> String {
    let mut doc = serde_json::Map::new();
    for (k, v) in sim.client_settings() {
        let (vendor, setting) = k.split_once('.').unwrap();
        doc.entry(vendor)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(setting.to_owned(), Value::String(v));
    }
    Value::Object(doc).to_string()
}

#[tokio::test]
async fn the_trigger_function_cancels_the_vendor_run_of_a_stopped_execution_once() {
    let Some(moto) =
        moto("the_trigger_function_cancels_the_vendor_run_of_a_stopped_execution_once").await
    else {
        return;
    };
    let sim = SimHandle::start(SimConfig::default()).await.unwrap();
    sim.sim.control.push_script(
        VendorKind::Carto,
        RunScript {
            outcome: Outcome::NeverFinish,
            ..RunScript::default()
        },
    );
    let bucket = moto.bucket().await;
    let (bus, queue) = moto.bus_to_queue(r#"{"source": ["runbridge"]}"#).await;
    let state_machine = moto.state_machine().await;
    let dlq = moto.queue().await;
    let secret_arn = aws_sdk_secretsmanager::Client::new(&moto.sdk)
        .create_secret()
        .name(unique("rb-vendors"))
        .secret_string(secret(&sim))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let env = moto.env(&[
        (RESULTS_BUCKET, &bucket),
        (RESULTS_PREFIX, "runbridge"),
        (LEDGER_PREFIX, "runbridge/_ledger/"),
        (STATE_MACHINE_ARN, &state_machine),
        (EVENT_BUS_NAME, &bus),
        (VENDOR_SECRET_ARN, &secret_arn),
        (DEAD_LETTER_QUEUE_URL, &dlq),
    ]);
    let function = TriggerFunction::from_env(&env).unwrap();

    // A run submitted through the same function (a Scheduler payload): ledger entry in S3,
    // execution in Step Functions, job running at the simulator.
    let request = json!({
        "vendor": "carto", "request_id": unique("stop"), "connection": "carto_dw",
        "query": "CALL `p.d.proc`(@a)", "query_parameters": {"a": 1}
    });
    let triggered: TriggerOutcome =
        serde_json::from_value(function.handle(request).await.unwrap()).unwrap();
    let TriggerOutcome::Triggered {
        key, vendor_run_id, ..
    } = triggered
    else {
        panic!("not triggered: {triggered:?}");
    };

    // The status change Step Functions sends when `runbridge cancel` stops the execution.
    let execution_arn = format!(
        "{}:{key}",
        state_machine.replacen(":stateMachine:", ":execution:", 1)
    );
    let event = json!({
        "version": "0", "id": unique("ev"), "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "123456789012", "time": "2026-11-30T05:00:00Z",
        "region": "us-east-1", "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn, "stateMachineArn": state_machine, "name": key,
            "status": "ABORTED", "startDate": 1, "stopDate": 2, "input": "{}", "output": null,
            "error": "runbridge.Cancelled", "cause": "cancelled by an operator (runbridge cancel)"
        }
    });
    let handled = function.handle(event.clone()).await.unwrap();
    assert_eq!(handled["outcome"], "cancelled", "{handled}");
    assert_eq!(handled["vendor_run_id"], vendor_run_id.as_str());
    assert_eq!(sim.sim.control.requests("carto.cancel"), 1);

    let s3 = moto.s3();
    let manifest_key = handled["manifest_key"].as_str().unwrap();
    let manifest: Manifest =
        serde_json::from_slice(&read(&s3, &bucket, manifest_key).await).unwrap();
    assert_eq!(manifest.state, RunState::Cancelled);
    assert!(
        manifest.reason.as_deref().unwrap().contains("ABORTED"),
        "{:?}",
        manifest.reason
    );
    let marker = format!("runbridge/_runs/run={key}/announced.json");
    assert!(exists(&s3, &bucket, &marker).await, "announcement recorded");
    let events: Vec<Value> = moto
        .receive(&queue)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail-type"], "Run Failed");
    assert_eq!(events[0]["detail"]["state"], "CANCELLED");
    assert_eq!(events[0]["detail"]["event_id"], format!("{key}#1"));

    // EventBridge delivers at least once: the duplicate changes nothing.
    let again = function.handle(event).await.unwrap();
    assert_eq!(again["outcome"], "already_finished", "{again}");
    assert_eq!(again["announced_now"], false);
    assert_eq!(sim.sim.control.requests("carto.cancel"), 1);
    assert!(moto.receive(&queue).await.is_empty());
}
