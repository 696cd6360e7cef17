//! The runbridge trigger Lambda function: see `runbridge_lambda::TriggerFunction`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use runbridge_lambda::{AwsEnv, TriggerFunction};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    runbridge_lambda::observe::init();
    let function = TriggerFunction::from_env(&AwsEnv::from_env().await)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        function.invoke(event)
    }))
    .await
}
