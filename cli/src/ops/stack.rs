//! Which deployed stack the operator commands talk to.
//!
//! `--stack NAME` (or `RUNBRIDGE_STACK`) reads the stack's CloudFormation outputs; without it,
//! each resource comes from its own variable. An explicit variable also overrides the output of
//! the same name, so one resource can be pointed elsewhere for a test.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::exit::CliError;

/// Output (and variable) names: `(output, variable, what)`.
pub const OUTPUTS: [(&str, &str, &str); 6] = [
    (
        "RunRequestQueueUrl",
        "RUNBRIDGE_QUEUE_URL",
        "the request queue (submit, rerun, backfill)",
    ),
    (
        "RunRequestDeadLetterQueueUrl",
        "RUNBRIDGE_DLQ_URL",
        "the dead-letter queue",
    ),
    (
        "ResultsBucketName",
        "RUNBRIDGE_RESULTS_BUCKET",
        "the results bucket (ledger, manifests)",
    ),
    (
        "ResultsPrefix",
        "RUNBRIDGE_RESULTS_PREFIX",
        "the results prefix in the bucket",
    ),
    (
        "LedgerPrefix",
        "RUNBRIDGE_LEDGER_PREFIX",
        "the ledger prefix in the bucket",
    ),
    (
        "StateMachineArn",
        "RUNBRIDGE_STATE_MACHINE_ARN",
        "the poll loop state machine (status, list, cancel)",
    ),
];

/// The variable naming the stack when `--stack` is not given.
pub const STACK_VAR: &str = "RUNBRIDGE_STACK";

/// How the stack is selected.
#[derive(Debug, Clone, Default)]
pub struct StackSelector {
    /// `--stack NAME`.
    pub stack: Option<String>,
    /// Explicit variables (`RUNBRIDGE_QUEUE_URL`, …), usually the process environment.
    pub vars: BTreeMap<String, String>,
}

impl StackSelector {
    /// `--stack` and the process environment.
    pub fn from_env(stack: Option<String>) -> Self {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RUNBRIDGE_"))
            .collect();
        let stack = stack.or_else(|| vars.get(STACK_VAR).cloned().filter(|s| !s.is_empty()));
        Self { stack, vars }
    }
}

/// The deployed resources, by output name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stack {
    /// The stack name, when selected by name.
    pub name: Option<String>,
    /// Output name → value (explicit variables already applied).
    pub outputs: BTreeMap<String, String>,
}

impl Stack {
    /// The stack from CloudFormation outputs (may be empty) with explicit variables on top.
    pub fn new(
        name: Option<String>,
        outputs: BTreeMap<String, String>,
        vars: &BTreeMap<String, String>,
    ) -> Self {
        let mut outputs = outputs;
        for (output, var, _) in OUTPUTS {
            if let Some(v) = vars.get(var).filter(|v| !v.is_empty()) {
                outputs.insert(output.to_owned(), v.clone());
            }
        }
        Self { name, outputs }
    }

    /// A required output, or an error naming both ways to provide it.
    pub fn get(&self, output: &str) -> Result<&str, CliError> {
        if let Some(v) = self.outputs.get(output).filter(|v| !v.is_empty()) {
            return Ok(v);
        }
        let var = OUTPUTS
            .iter()
            .find(|(o, _, _)| *o == output)
            .map_or("", |(_, v, _)| v);
        Err(match &self.name {
            Some(name) => CliError::not_found(format!(
                "stack {name} has no output {output} (deploy the current template, or set {var})"
            )),
            None => CliError::invalid(format!(
                "no stack selected: pass --stack NAME (or set {STACK_VAR}), or set {var}"
            )),
        })
    }

    /// The request queue URL.
    pub fn queue_url(&self) -> Result<&str, CliError> {
        self.get("RunRequestQueueUrl")
    }
    /// The state machine ARN.
    pub fn state_machine_arn(&self) -> Result<&str, CliError> {
        self.get("StateMachineArn")
    }
    /// The results bucket.
    pub fn bucket(&self) -> Result<&str, CliError> {
        self.get("ResultsBucketName")
    }
    /// The results prefix (may be empty).
    pub fn results_prefix(&self) -> &str {
        self.outputs.get("ResultsPrefix").map_or("", String::as_str)
    }
    /// The ledger prefix: the output, else `{results prefix}/_ledger/` as the template sets it.
    pub fn ledger_prefix(&self) -> String {
        match self.outputs.get("LedgerPrefix").filter(|v| !v.is_empty()) {
            Some(p) => p.clone(),
            None => format!("{}/_ledger/", self.results_prefix()),
        }
    }
}
