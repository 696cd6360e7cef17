//! The scripted scenarios: an execution input, the Lambda answers in order (a JSON object with
//! `errorType` is a Lambda function error, as Lambda reports a handler's error), and what an
//! operator or a releaser does while it runs.

use serde_json::{json, Value};

/// One scenario: the execution's input, the Lambda answers in order, whether an operator stops
/// it (StopExecution while it waits) and the status it must end in.
pub struct Scenario {
    pub name: String,
    pub input: Value,
    pub answers: Vec<Value>,
    pub stopped: bool,
    /// What `SendTaskSuccess` answers the parked WaitForSlot task with (a queued run).
    pub admission: Option<Value>,
    pub status: &'static str,
}

pub const STOP_ERROR: &str = "runbridge.Cancelled";
pub const STOP_CAUSE: &str = "cancelled by an operator (runbridge cancel)";

/// A Lambda function error with this error type (what a handler's typed error becomes).
pub fn function_error(error_type: &str, message: &str) -> Value {
    json!({"errorType": error_type, "errorMessage": message})
}

fn handle(polls: u64) -> Value {
    json!({"key": "carto-diff", "vendor": "carto", "attempt": 1, "vendor_run_id": "job_1",
        "submitted_at": "2026-12-05T00:00:00Z", "deadline_at": "2026-12-05T06:00:00Z",
        "polls": polls, "timeline": []})
}

fn manifest() -> Value {
    json!({"manifest": "s3://results/runbridge/carto/manifest.json"})
}

pub fn scripted() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "succeeds after a second poll".into(),
            input: json!({"handle": handle(0), "wait_seconds": 1}),
            answers: vec![
                json!({"handle": handle(1), "done": false, "failed": false, "wait_seconds": 1}),
                json!({"handle": handle(2), "done": true, "failed": false, "wait_seconds": 0}),
                manifest(),
            ],
            stopped: false,
            admission: None,
            status: "SUCCEEDED",
        },
        Scenario {
            name: "the vendor run fails and the failure is recorded".into(),
            input: json!({"handle": handle(0), "wait_seconds": 1}),
            answers: vec![
                json!({"handle": handle(1), "done": false, "failed": true, "wait_seconds": 0,
                    "reason": "carto job failed: Cannot coerce @a", "attribution": "customer",
                    // What the poll answers with a failure it saw at the vendor.
                    "settled": true}),
                manifest(),
            ],
            stopped: false,
            admission: None,
            status: "FAILED",
        },
        Scenario {
            name: "a poll's retryable Lambda error is retried and the run succeeds".into(),
            input: json!({"handle": handle(0), "wait_seconds": 1}),
            answers: vec![
                function_error("Retryable", "carto answered 503 Service Unavailable"),
                json!({"handle": handle(1), "done": true, "failed": false, "wait_seconds": 0}),
                manifest(),
            ],
            stopped: false,
            admission: None,
            status: "SUCCEEDED",
        },
        Scenario {
            name: "a collect's customer error is caught and recorded as a failure".into(),
            input: json!({"handle": handle(0), "wait_seconds": 1}),
            answers: vec![
                json!({"handle": handle(1), "done": true, "failed": false, "wait_seconds": 0}),
                function_error(
                    "NonRetryable.Customer",
                    "carto refused the export: parameter @nope is not in query_parameters",
                ),
                manifest(),
            ],
            stopped: false,
            admission: None,
            status: "FAILED",
        },
        Scenario {
            name: "a poll's unexpected Lambda error is caught and recorded as a failure".into(),
            input: json!({"handle": handle(0), "wait_seconds": 1}),
            answers: vec![function_error("Fatal", "poll handler crashed"), manifest()],
            stopped: false,
            admission: None,
            status: "FAILED",
        },
        Scenario {
            name: "an operator stops the execution while it waits".into(),
            input: json!({"handle": handle(0), "wait_seconds": 600}),
            answers: vec![],
            stopped: true,
            admission: None,
            status: "ABORTED",
        },
        Scenario {
            name: "a queued run parks for its slot, is woken, admitted and succeeds".into(),
            input: json!({"handle": handle(0), "queued": true, "waits": 0, "wait_seconds": 0,
                "park_seconds": 60}),
            answers: vec![
                // The enqueue step's own answer (the callback task waits for its token).
                json!({"parked": true}),
                json!({"handle": handle(0), "queued": false, "failed": false,
                    "try_again": false, "wait_seconds": 1}),
                json!({"handle": handle(1), "done": true, "failed": false, "wait_seconds": 0}),
                manifest(),
            ],
            stopped: false,
            admission: Some(json!({"slot": "carto.default.bq"})),
            status: "SUCCEEDED",
        },
    ]
}
