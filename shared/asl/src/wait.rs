//! Time inside an execution: the execution deadline (top-level `TimeoutSeconds`, measured on
//! the [`WaitClock`](crate::WaitClock)), sleeping without passing it, and how long a Wait state
//! waits (`Seconds` or `SecondsPath`).

use crate::dataflow::select;
use crate::definition::WaitFor;
use crate::error::StateError;
use crate::execute::{Halt, Run};
use serde_json::Value;

impl Run<'_> {
    pub(crate) fn timed_out(&self) -> Halt {
        Halt::TimedOut(format!(
            "The execution exceeded its TimeoutSeconds of {} seconds",
            self.machine.definition.timeout_seconds.unwrap_or_default()
        ))
    }

    pub(crate) fn remaining(&self) -> Option<f64> {
        self.deadline
            .map(|d| (d - self.clock.now()).as_seconds_f64())
    }

    /// Sleeps on the execution's clock, but never past the execution deadline: reaching it times
    /// the execution out, as the Step Functions timer would fire mid-wait.
    pub(crate) async fn sleep(&self, seconds: f64) -> Result<(), Halt> {
        if let Some(remaining) = self.remaining() {
            if seconds >= remaining {
                if remaining > 0.0 {
                    self.clock.sleep(remaining).await;
                }
                return Err(self.timed_out());
            }
        }
        if seconds > 0.0 {
            self.clock.sleep(seconds).await;
        }
        Ok(())
    }

    pub(crate) fn wait_seconds(
        &self,
        wait: &WaitFor,
        effective: &Value,
        context: &Value,
    ) -> Result<f64, StateError> {
        Ok(match wait {
            WaitFor::Seconds(s) => *s as f64,
            WaitFor::SecondsPath(path) => {
                let value = select(path, effective, context, "SecondsPath")?;
                value.as_u64().ok_or_else(|| {
                    StateError::runtime(format!(
                        "SecondsPath '{path}' must select a non-negative integer, got {value}"
                    ))
                })? as f64
            }
        })
    }
}
