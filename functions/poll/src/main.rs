//! The runbridge poll Lambda function: see `runbridge_lambda::PollFunction`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use runbridge_lambda::{AwsEnv, PollFunction};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    runbridge_lambda::observe::init();
    let function = PollFunction::from_env(&AwsEnv::from_env().await)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        function.invoke(event)
    }))
    .await
}
