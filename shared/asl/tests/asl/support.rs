//! Shared test helpers: a scriptable fake invoker, a fixed-start virtual clock, and loaders.

use runbridge_asl::{InstantClock, StateMachine, TaskFailure, TaskInvoker};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use time::macros::datetime;
use time::OffsetDateTime;

/// The virtual clock's start in every test.
pub const START: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

/// A clock reading [`START`].
pub fn clock() -> InstantClock {
    InstantClock::new(START)
}

/// Loads a definition given as a JSON value, with no substitutions.
pub fn machine(definition: Value) -> StateMachine {
    StateMachine::from_json(&definition.to_string(), &HashMap::new())
        .unwrap_or_else(|e| panic!("definition should load: {e}"))
}

type Handler = dyn Fn(&str, &Value, usize) -> Result<Value, TaskFailure> + Send + Sync;

/// An invoker driven by a closure `(resource, input, call_index) -> result` that records every
/// call.
pub struct FakeInvoker {
    handler: Box<Handler>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl FakeInvoker {
    pub fn new(
        handler: impl Fn(&str, &Value, usize) -> Result<Value, TaskFailure> + Send + Sync + 'static,
    ) -> Self {
        Self {
            handler: Box::new(handler),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// Inputs of the calls made to `resource`.
    pub fn inputs_to(&self, resource: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(r, _)| r == resource)
            .map(|(_, input)| input)
            .collect()
    }
}

#[async_trait::async_trait]
impl TaskInvoker for FakeInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((resource.to_string(), input.clone()));
            calls.iter().filter(|(r, _)| r == resource).count() - 1
        };
        (self.handler)(resource, &input, index)
    }
}
