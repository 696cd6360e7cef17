//! [`S3History`]: each workflow's [`DurationHistory`] as one small S3 object,
//! `{prefix}{workflow}.json`, beside the ledger.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use runbridge_core::DurationHistory;
use runbridge_handlers::ports::History;
use runbridge_handlers::HandlerError;

use crate::s3_sink::{get_object, put_object};

const PORT: &str = "history";

/// Workflow durations in `bucket` under `prefix`.
#[derive(Debug, Clone)]
pub struct S3History {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3History {
    /// Durations in `bucket` under `prefix` (a `/` is added when missing).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: crate::s3_ledger::folder_prefix(prefix),
        }
    }

    /// The object key of `workflow`'s durations.
    pub fn object_key(&self, workflow: &str) -> String {
        format!("{}{workflow}.json", self.prefix)
    }
}

#[async_trait]
impl History for S3History {
    async fn read(&self, workflow: &str) -> Result<DurationHistory, HandlerError> {
        let key = self.object_key(workflow);
        let bytes = get_object(&self.client, &self.bucket, &key)
            .await
            .map_err(|e| e.into_handler(PORT))?;
        match bytes {
            None => Ok(DurationHistory::default()),
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| HandlerError::port(PORT, format!("{key} is unreadable: {e}"), false)),
        }
    }

    async fn write(&self, workflow: &str, history: &DurationHistory) -> Result<(), HandlerError> {
        let body = serde_json::to_vec(history).expect("durations serialise");
        put_object(
            &self.client,
            &self.bucket,
            &self.object_key(workflow),
            body.into(),
        )
        .await
        .map_err(|e| e.into_handler(PORT))
    }
}
