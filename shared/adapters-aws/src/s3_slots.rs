//! [`S3Slots`]: each concurrency scope's [`ScopeQueue`] as one S3 object,
//! `{prefix}{scope}.json`, changed with one conditional write.
//!
//! A read returns the object's ETag; a write is `PutObject` with `If-Match: <etag>` (or
//! `If-None-Match: *` when no object existed), so of two functions changing a scope at once only
//! one wins; the loser (`412 Precondition Failed`, or `409 ConditionalRequestConflict` when the
//! writes race) reads again and redoes its change. One object per scope makes an admission one
//! GET and one PUT, however many slots are held or runs wait. The records live beside the ledger,
//! in the results bucket, under the ledger's prefix (`slots/`): nothing more to deploy.

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use runbridge_core::ScopeQueue;
use runbridge_handlers::ports::{Slots, StoredScope};
use runbridge_handlers::HandlerError;

use crate::error::{sdk_error, AwsError};

const PORT: &str = "slots";

/// Concurrency scopes in `bucket` under `prefix`.
#[derive(Debug, Clone)]
pub struct S3Slots {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Slots {
    /// Scopes in `bucket` under `prefix` (a `/` is added when missing).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: crate::s3_ledger::folder_prefix(prefix),
        }
    }

    /// The object key of `scope`'s record.
    pub fn object_key(&self, scope: &str) -> String {
        format!("{}{scope}.json", self.prefix)
    }

    async fn read_inner(&self, scope: &str) -> Result<StoredScope, AwsError> {
        let key = self.object_key(scope);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(StoredScope::default())
            }
            Err(e) => return Err(sdk_error("s3", "GetObject", e)),
        };
        let version = out.e_tag().map(str::to_owned);
        let body = out.body.collect().await.map_err(|e| AwsError::Call {
            service: "s3",
            operation: "GetObject",
            code: None,
            status: None,
            message: format!("reading the body of {key}: {e}"),
            retryable: true,
        })?;
        let queue = serde_json::from_slice(&body.into_bytes()).map_err(|e| AwsError::Rejected {
            service: "s3",
            message: format!("scope record {key} is unreadable: {e}"),
            retryable: false,
        })?;
        Ok(StoredScope { queue, version })
    }

    async fn write_inner(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, AwsError> {
        let body = serde_json::to_vec(queue).expect("scope records serialise");
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(scope))
            .content_type("application/json")
            .body(ByteStream::from(body));
        let put = match version {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = sdk_error("s3", "PutObject", e);
                let lost = matches!(e.status(), Some(412 | 409))
                    || matches!(
                        e.code(),
                        Some("PreconditionFailed" | "ConditionalRequestConflict")
                    );
                if lost {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[async_trait]
impl Slots for S3Slots {
    async fn read(&self, scope: &str) -> Result<StoredScope, HandlerError> {
        self.read_inner(scope)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn write(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, HandlerError> {
        self.write_inner(scope, queue, version)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}
