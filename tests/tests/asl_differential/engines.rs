//! Running one scenario on each engine: moto's Step Functions (LocalStack's interpreter) and
//! `shared/asl`, and what each reports of the execution.

use std::time::Duration;

use async_trait::async_trait;
use runbridge_asl::{
    Execution, HistoryEventKind, InstantClock, RealClock, StateMachine, StopRequest, TaskFailure,
    TaskInvoker,
};
use runbridge_test_support::{unique, OwnMoto};
use serde_json::{json, Value};

use crate::scenarios::{Scenario, STOP_CAUSE, STOP_ERROR};

pub const POLL_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rb-diff-PollFunction";
pub const COLLECT_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:rb-diff-CollectFunction";

/// What both engines report of an execution.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Each state entered, with the input it was entered with.
    pub entered: Vec<(String, Value)>,
    /// The payload of each Lambda task scheduled, in order.
    pub payloads: Vec<Value>,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Outcome {
    pub fn states(&self) -> Vec<&str> {
        self.entered.iter().map(|(s, _)| s.as_str()).collect()
    }
}

/// Answers each task with the next scripted answer, as moto's Lambda does; an answer with
/// `errorType` fails the task as Lambda reports a function error: the error is its type, the
/// cause its payload.
pub struct Scripted(std::sync::Mutex<Vec<Value>>);

impl Scripted {
    pub fn new(answers: &[Value]) -> Self {
        Self(std::sync::Mutex::new(answers.to_vec()))
    }
}

#[async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(&self, resource: &str, _input: Value) -> Result<Value, TaskFailure> {
        assert!([POLL_ARN, COLLECT_ARN].contains(&resource), "{resource}");
        let mut answers = self.0.lock().unwrap();
        assert!(!answers.is_empty(), "more tasks than scripted answers");
        let answer = answers.remove(0);
        match answer["errorType"].as_str() {
            Some(error) => Err(TaskFailure {
                error: error.to_owned(),
                cause: answer.to_string(),
            }),
            None => Ok(answer),
        }
    }
}

/// The task token of the execution's parked callback task, from the task's scheduled
/// parameters in moto's history.
async fn parked_token(sfn: &aws_sdk_sfn::Client, execution: &str) -> String {
    for _ in 0..100 {
        let history = sfn
            .get_execution_history()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        for event in history.events() {
            if let Some(details) = event.task_scheduled_event_details() {
                let parameters: Value = serde_json::from_str(details.parameters()).unwrap();
                if let Some(token) = parameters["Payload"]["task_token"].as_str() {
                    return token.to_owned();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{execution}: no parked task");
}

/// The scenario on moto's engine, in the state machine `machine`.
pub async fn on_moto(
    own: &OwnMoto,
    sfn: &aws_sdk_sfn::Client,
    machine: &str,
    scenario: &Scenario,
) -> Outcome {
    own.post(
        "/moto-api/static/lambda-simple/response",
        &json!({"results": scenario.answers.iter().map(Value::to_string).collect::<Vec<_>>(),
            "region": "us-east-1"})
        .to_string(),
    );
    let arn = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(unique("diff"))
        .input(scenario.input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned();
    if let Some(admission) = &scenario.admission {
        let token = parked_token(sfn, &arn).await;
        sfn.send_task_success()
            .task_token(token)
            .output(admission.to_string())
            .send()
            .await
            .unwrap();
    }
    if scenario.stopped {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sfn.stop_execution()
            .execution_arn(&arn)
            .error(STOP_ERROR)
            .cause(STOP_CAUSE)
            .send()
            .await
            .unwrap();
    }
    let mut described = None;
    // A retried error waits its (jittered) interval in real time on moto.
    for _ in 0..300 {
        let d = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            described = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let described = described.unwrap_or_else(|| panic!("{}: still running", scenario.name));
    let history = sfn
        .get_execution_history()
        .execution_arn(&arn)
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    Outcome {
        entered: history
            .events()
            .iter()
            .filter_map(|e| e.state_entered_event_details())
            .map(|d| (d.name().to_owned(), d.input().map(json).unwrap_or_default()))
            .collect(),
        // A Task naming a function ARN is scheduled as LambdaFunctionScheduled (its input), the
        // Lambda integration as TaskScheduled (its parameters' Payload).
        payloads: history
            .events()
            .iter()
            .filter_map(|e| {
                e.lambda_function_scheduled_event_details()
                    .and_then(|d| d.input())
                    .map(json)
                    .or_else(|| {
                        e.task_scheduled_event_details()
                            .map(|d| json(d.parameters())["Payload"].clone())
                    })
            })
            .collect(),
        status: described.status().as_str().to_owned(),
        output: described.output().map(json),
        error: described.error().map(str::to_owned),
        cause: described.cause().map(str::to_owned),
    }
}

/// The scenario on `shared/asl`.
pub async fn on_ours(ours: &StateMachine, scenario: &Scenario) -> Outcome {
    let tasks = Scripted::new(&scenario.answers);
    let execution = if scenario.stopped {
        // Real time here, so the wait is still under way when the stop arrives.
        let stop = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            StopRequest {
                error: Some(STOP_ERROR.into()),
                cause: Some(STOP_CAUSE.into()),
            }
        };
        ours.execute_stoppable("diff", scenario.input.clone(), &tasks, &RealClock, stop)
            .await
    } else {
        // A parked task's timeout (park_seconds) runs on the clock: real time while it waits
        // to be woken, virtual otherwise.
        let (instant, real) = (InstantClock::starting_now(), RealClock);
        let clock: &dyn runbridge_asl::WaitClock = if scenario.admission.is_some() {
            &real
        } else {
            &instant
        };
        let run = ours.execute("diff", scenario.input.clone(), &tasks, clock);
        let wake = async {
            let Some(admission) = &scenario.admission else {
                return;
            };
            for _ in 0..500 {
                if let Some(token) = ours.task_tokens().waiting().first() {
                    ours.task_tokens()
                        .send_task_success(token, admission.clone())
                        .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no task parked");
        };
        tokio::join!(run, wake).0
    };
    outcome(&execution)
}

fn outcome(execution: &Execution) -> Outcome {
    Outcome {
        entered: execution
            .history
            .iter()
            .filter_map(|e| match &e.kind {
                HistoryEventKind::StateEntered { input, .. } => {
                    Some((e.state.clone().unwrap_or_default(), input.clone()))
                }
                _ => None,
            })
            .collect(),
        payloads: execution
            .history
            .iter()
            .filter_map(|e| match &e.kind {
                HistoryEventKind::TaskScheduled {
                    resource,
                    parameters,
                    ..
                } => Some(if resource.starts_with("arn:aws:states:::lambda:invoke") {
                    parameters["Payload"].clone()
                } else {
                    parameters.clone()
                }),
                _ => None,
            })
            .collect(),
        status: format!("{:?}", execution.status).to_uppercase(),
        output: execution.output.clone(),
        error: execution.error.clone(),
        cause: execution.cause.clone(),
    }
}
