//! AWS implementations of the handlers' ports, and the one place that builds them from the
//! environment ([`env`]).
//!
//! | port | implementation | service |
//! | --- | --- | --- |
//! | `ResultSink` | [`S3Sink`] (streaming multipart uploads, bounded memory) | S3 |
//! | `Ledger` | [`S3Ledger`] (conditional writes) | S3 |
//! | `Executions` | [`SfnExecutions`] | Step Functions |
//! | `Callbacks` | [`SfnCallbacks`] | Step Functions (`SendTaskSuccess`/`SendTaskFailure`) |
//! | `Events` | [`EventBridgeEvents`] | EventBridge |
//! | `Secrets` | [`SecretsSettings`] (TTL cache) | Secrets Manager |
//! | `DeadLetters` | [`DlqSender`] | SQS |
//! | `RateBudget` (vendors) | [`DynamoRateBudget`] (seats per window, conditional updates) | DynamoDB |
//!
//! Every failure is an [`AwsError`], classified once as retryable or not and converted into the
//! handlers' `HandlerError` with the port's name.
#![deny(missing_docs)]

mod dlq;
mod dynamo_rate;
pub mod env;
mod error;
mod events;
mod s3_history;
mod s3_ledger;
mod s3_sink;
mod s3_slots;
mod secrets;
mod sfn;

pub use dlq::{
    DlqSender, ATTR_ATTRIBUTION, ATTR_ERROR, ATTR_FIELD, ATTR_RULE, ATTR_SOURCE_MESSAGE_ID,
};
pub use dynamo_rate::DynamoRateBudget;
pub use env::AwsEnv;
pub use error::AwsError;
pub use events::{EventBridgeEvents, EVENT_SOURCE};
/// Re-exported from the handlers, where the dead-letter port is defined.
pub use runbridge_handlers::DeadLetterReason;
pub use s3_history::S3History;
pub use s3_ledger::S3Ledger;
pub use s3_sink::{S3Sink, UploadConfig, MIN_PART_SIZE};
pub use s3_slots::S3Slots;
pub use secrets::{SecretsSettings, VendorConfig, DEFAULT_SETTINGS_TTL};
pub use sfn::{SfnCallbacks, SfnExecutions};
