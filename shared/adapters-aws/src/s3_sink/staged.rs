//! A staged object: every byte in S3, the multipart upload not completed, so nothing visible.
//! Publishing completes it, with the whole object's CRC-64/NVME and size for S3 to check;
//! aborting drops its parts.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use runbridge_handlers::{HandlerError, ObjectChecksum, StagedObject};

use super::{put_object, PORT};
use crate::error::{sdk_error, AwsError};

/// The whole object as its writer saw it.
pub(super) struct Whole {
    pub(super) checksum: ObjectChecksum,
    pub(super) size: u64,
}

pub(super) enum Staged {
    /// Nothing was written.
    Empty,
    /// Every part uploaded; the upload is not completed.
    Upload {
        upload_id: String,
        parts: Vec<CompletedPart>,
    },
}

/// An upload whose bytes are all in S3, waiting to be completed.
pub(super) struct StagedUpload {
    pub(super) client: Client,
    pub(super) bucket: Arc<str>,
    pub(super) key: String,
    pub(super) staged: Staged,
    pub(super) whole: Whole,
}

#[async_trait]
impl StagedObject for StagedUpload {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        let this = *self;
        let result = match this.staged {
            Staged::Empty => put_object(&this.client, &this.bucket, &this.key, Bytes::new()).await,
            Staged::Upload { upload_id, parts } => {
                let done = complete_upload(
                    &this.client,
                    &this.bucket,
                    &this.key,
                    &upload_id,
                    parts,
                    &this.whole,
                )
                .await;
                if done.is_err() {
                    // A refused completion (a checksum or size mismatch) would be refused again:
                    // drop the parts now rather than leave them to the lifecycle rule.
                    abort_upload(&this.client, &this.bucket, &this.key, &upload_id).await;
                }
                done
            }
        };
        result.map_err(|e| e.into_handler(PORT))
    }

    async fn abort(self: Box<Self>) {
        if let Staged::Upload { upload_id, .. } = &self.staged {
            abort_upload(&self.client, &self.bucket, &self.key, upload_id).await;
        }
    }
}

/// Completes an upload; S3 checks the parts against the whole object's checksum and size.
async fn complete_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    whole: &Whole,
) -> Result<(), AwsError> {
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        // S3 refuses the completion unless the parts add up to these: the bytes collect
        // downloaded and checked are the bytes stored.
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc64_nvme(whole.checksum.crc64nvme_base64())
        .mpu_object_size(whole.size as i64)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("s3", "CompleteMultipartUpload", e))?;
    Ok(())
}

/// Drops the parts of an upload (best effort: the lifecycle rule is the backstop).
pub(super) async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    if let Err(e) = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        // The lifecycle rule removes it within a day; nothing of it is visible meanwhile.
        let e = sdk_error("s3", "AbortMultipartUpload", e);
        tracing::warn!(%key, error = %e, "could not abort a multipart upload");
    }
}
