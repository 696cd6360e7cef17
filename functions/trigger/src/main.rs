//! The runbridge trigger Lambda function: see `runbridge_lambda::TriggerFunction`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use runbridge_lambda::{AwsEnv, OffsetDateTime, TriggerFunction};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = TriggerFunction::from_env(&AwsEnv::from_env().await)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        // The context's deadline (ms since the epoch) bounds the ledger claims' leases.
        let deadline = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(event.context.deadline) * 1_000_000,
        )
        .ok();
        function.handle_until(event.payload, deadline)
    }))
    .await
}
