//! [`S3Sink`]: result files and manifests in S3, streamed with bounded memory, straight to their
//! final keys.
//!
//! A result file can be many gigabytes and the collect Lambda has 512 MiB, so nothing holds a
//! whole file. [`S3Sink::create`] returns a writer that buffers one part at a time and uploads
//! full parts as a multipart upload *to the file's final key* while the download goes on, with at
//! most [`UploadConfig::max_in_flight`] parts uploading at once: when that many are in flight the
//! writer waits for one to finish before it accepts more bytes, and the waiting propagates back
//! to the vendor download (back-pressure). Peak memory is about
//! `part_size × (max_in_flight + 1)`, whatever the file size: the part buffers come from a small
//! pool (`part_pool.rs`) and go back to it when their upload is done, so the same
//! `max_in_flight + 1` buffers carry the whole file instead of one fresh 8 MiB allocation per part
//! (which, freed on another worker thread, fragments the allocator's per-thread arenas and made
//! peak RSS grow with the file size).
//!
//! An incomplete multipart upload is never visible as an object, so finishing a writer uploads
//! the last part and stops there: the upload is *staged*. Publishing it is
//! `CompleteMultipartUpload`, which moves no bytes (the copy from a staging key that this
//! replaced wrote every byte a second time). Collect completes a run's uploads only when all its
//! files are whole.
//!
//! Checksums: every upload is a CRC-64/NVME `FULL_OBJECT` upload. The SDK computes each part's
//! CRC-64/NVME and S3 checks it on arrival (a part whose bytes do not match its checksum is
//! refused with `BadDigest`); at completion runbridge sends the whole object's CRC-64/NVME as the
//! collect handler computed it over the downloaded bytes, plus its size, and S3 refuses the
//! completion unless the parts combine to exactly that. The object then carries the checksum
//! (`x-amz-checksum-crc64nvme`), which the manifest records too.
//!
//! A writer that is dropped without publishing or aborting (a crashed Lambda) leaves an
//! incomplete multipart upload; the bucket's `abort-incomplete-multipart-uploads` lifecycle rule
//! removes it after a day, and it is never visible meanwhile.
//!
//! Here: the sink, its configuration and whole small objects (`PutObject`, `GetObject`);
//! `upload.rs` the writer of one object, `part_pool.rs` its part buffers, `staged.rs` the
//! staged upload that publishing completes.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::Client;
use bytes::Bytes;
use runbridge_handlers::{HandlerError, PartWriter, ResultSink};

use crate::error::{sdk_error, AwsError};

mod part_pool;
mod staged;
mod upload;

use upload::S3Upload;

/// S3's smallest part (except the last one of an upload).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part number.
const MAX_PARTS: i32 = 10_000;
/// The port name in handler errors.
const PORT: &str = "sink";

/// How objects are uploaded. Defaults: 8 MiB parts, 3 parts in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    /// Bytes per multipart part; at least [`MIN_PART_SIZE`].
    pub part_size: usize,
    /// Parts uploading at the same time; the writer waits when this many are in flight.
    pub max_in_flight: usize,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            max_in_flight: 3,
        }
    }
}

impl UploadConfig {
    /// Checks the limits S3 imposes.
    pub fn validate(&self) -> Result<(), AwsError> {
        if self.part_size < MIN_PART_SIZE {
            return Err(AwsError::Config(format!(
                "S3 parts must be at least {MIN_PART_SIZE} bytes"
            )));
        }
        if self.max_in_flight == 0 {
            return Err(AwsError::Config("max_in_flight must be at least 1".into()));
        }
        Ok(())
    }
}

/// Results in one S3 bucket. Keys are the layout's keys, used as they are.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: Arc<str>,
    config: UploadConfig,
}

impl S3Sink {
    /// A sink writing to `bucket` with the default [`UploadConfig`].
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into().into(),
            config: UploadConfig::default(),
        }
    }

    /// The same sink with another upload configuration.
    pub fn with_upload_config(mut self, config: UploadConfig) -> Result<Self, AwsError> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn rejected(message: impl Into<String>) -> AwsError {
    AwsError::Rejected {
        service: "s3",
        message: message.into(),
        retryable: true,
    }
}

/// A content type from the key's extension, so downloads from the console open sensibly.
fn content_type(key: &str) -> Option<&'static str> {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => Some("text/csv"),
        Some("json") => Some("application/json"),
        _ => None,
    }
}

#[async_trait]
impl ResultSink for S3Sink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(S3Upload::new(
            self.client.clone(),
            self.bucket.clone(),
            key,
            self.config,
        )))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        put_object(&self.client, &self.bucket, key, body)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        get_object(&self.client, &self.bucket, key)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}

pub(crate) async fn put_object(
    client: &Client,
    bucket: &str,
    key: &str,
    body: Bytes,
) -> Result<(), AwsError> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .set_content_type(content_type(key).map(str::to_owned))
        // The SDK computes the CRC-64/NVME of the body, S3 checks and stores it.
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| sdk_error("s3", "PutObject", e))?;
    Ok(())
}

/// Reads a whole (small) object; `None` when there is no such key.
pub(crate) async fn get_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Bytes>, AwsError> {
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
            return Ok(None)
        }
        Err(e) => return Err(sdk_error("s3", "GetObject", e)),
    };
    let body = out.body.collect().await.map_err(|e| AwsError::Call {
        service: "s3",
        operation: "GetObject",
        code: None,
        status: None,
        message: format!("reading the body of {key}: {e}"),
        retryable: true,
    })?;
    Ok(Some(body.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_limits() {
        assert!(UploadConfig::default().validate().is_ok());
        assert!(UploadConfig {
            part_size: MIN_PART_SIZE - 1,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(UploadConfig {
            max_in_flight: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
