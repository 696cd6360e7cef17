//! The trigger function as the deployed stack runs it: the real template created in moto
//! (`runbridge_test_support::stack`), the function built from the environment moto's Lambda
//! service holds for the stack's TriggerFunction (what the Lambda runtime hands the process),
//! fed a message of the stack's request queue as its event source mapping delivers it. The run
//! is submitted to the vendor simulator, its key claimed in the stack's bucket, and its execution
//! started in the stack's state machine; the poll function built from its own environment polls it.

use runbridge_core::{IdempotencyKey, OffsetDateTime, RunRequest, VendorKind};
use runbridge_lambda::{PollFunction, TriggerFunction};
use runbridge_sim::{SimConfig, SimHandle};
use runbridge_test_support::stack::RealStack;
use runbridge_test_support::{moto, unique};
use serde_json::{json, Map, Value};

fn settings_object(pairs: Vec<(String, String)>, vendor: VendorKind) -> Map<String, Value> {
    let prefix = format!("{vendor}.");
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), Value::String(v))))
        .collect()
}

/// The function's environment variables as moto's Lambda service reports them, plus moto's
/// endpoint (which the real Lambda's process does not need).
fn function_env(
    moto: &runbridge_test_support::Moto,
    described: &Value,
    function: &str,
) -> runbridge_adapters_aws::AwsEnv {
    let vars: Vec<(String, String)> = described["created"][function]["described"]["Environment"]
        ["Variables"]
        .as_object()
        .unwrap_or_else(|| panic!("{function} has no environment"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    moto.env(&borrowed)
}

#[tokio::test]
async fn the_trigger_built_from_the_stacks_environment_starts_the_run_in_its_state_machine() {
    const TEST: &str =
        "the_trigger_built_from_the_stacks_environment_starts_the_run_in_its_state_machine";
    let Some(moto) = moto(TEST).await else {
        return;
    };
    let sim = SimHandle::start(SimConfig::default())
        .await
        .expect("simulator starts");
    // The vendor secret as an operator writes it, pointing at the simulators.
    let mut secret = Map::new();
    for vendor in [VendorKind::Amperity, VendorKind::Carto] {
        secret.insert(
            vendor.to_string(),
            Value::Object(settings_object(sim.client_settings(), vendor)),
        );
    }
    let secret_arn = aws_sdk_secretsmanager::Client::new(&moto.sdk)
        .create_secret()
        .name(unique("rb-deployed/vendors"))
        .secret_string(Value::Object(secret).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    let name = unique("rb-fn");
    let Some(stack) =
        RealStack::create(&moto, TEST, &name, &[("VendorSecretArn", &secret_arn)]).await
    else {
        return;
    };
    let described = stack.describe(TEST).await;
    let trigger_env = function_env(&moto, &described, "TriggerFunction");
    let trigger = TriggerFunction::from_env(&trigger_env).expect("trigger from its environment");

    // A request sent to the stack's queue, delivered as the event source mapping does.
    let queue_url = stack.output("RunRequestQueueUrl");
    let request = json!({"vendor": "amperity", "request_id": unique("deployed"), "tenant": "acme",
        "config_id": "cg-files01", "range_from": "2026-11-26T00:00:00Z",
        "range_to": "2026-11-27T00:00:00Z", "run_mode": "full"});
    moto.sqs()
        .send_message()
        .queue_url(queue_url)
        .message_body(request.to_string())
        .send()
        .await
        .unwrap();
    let messages = moto.receive(queue_url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let queue_arn = described["created"]["RunRequestQueue"]["described"]["QueueArn"]
        .as_str()
        .unwrap();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                "body": m.body(), "attributes": {"SentTimestamp": "1764136800000",
                "ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
        })
        .collect();
    let answer = trigger
        .handle(json!({ "Records": records }))
        .await
        .expect("the batch is handled");
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(sim.sim.control.runs_created(VendorKind::Amperity), 1);

    // The execution, named by the key, runs in the stack's state machine.
    let key = IdempotencyKey::for_request(
        &RunRequest::from_value(request.clone())
            .unwrap()
            .resolve(OffsetDateTime::now_utc()),
        None,
    );
    let state_machine = stack.output("StateMachineArn");
    let execution = aws_sdk_sfn::Client::new(&moto.sdk)
        .describe_execution()
        .execution_arn(
            state_machine.replacen(":stateMachine:", ":execution:", 1) + ":" + key.as_str(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("no execution {key} in {state_machine}: {e}"));
    assert_eq!(execution.state_machine_arn(), state_machine);
    assert_eq!(
        execution.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Running
    );
    let input: Value = serde_json::from_str(execution.input().unwrap()).unwrap();
    assert_eq!(input["handle"]["key"], json!(key.as_str()), "{input}");
    let run_id = input["handle"]["vendor_run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!run_id.is_empty(), "{input}");

    // The key's ledger entry is in the stack's bucket, under the stack's ledger prefix.
    let ledger_key = format!("{}{}.json", stack.output("LedgerPrefix"), key.as_str());
    assert!(
        runbridge_test_support::exists(&moto.s3(), stack.output("ResultsBucketName"), &ledger_key)
            .await,
        "no ledger entry {ledger_key}"
    );

    // The poll function, from its own environment, polls the run the execution carries.
    let poll = PollFunction::from_env(&function_env(&moto, &described, "PollFunction"))
        .expect("poll from its environment");
    let polled = poll
        .handle(json!({"handle": input["handle"], "step": "poll"}))
        .await
        .expect("polled");
    assert_eq!(polled["handle"]["vendor_run_id"], json!(run_id), "{polled}");
    assert_eq!(polled["failed"], json!(false), "{polled}");
}
