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
//! pool ([`PartPool`]) and go back to it when their upload is done, so the same
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

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use std::sync::Mutex;

use bytes::Bytes;
use runbridge_handlers::{HandlerError, ObjectChecksum, PartWriter, ResultSink, StagedObject};
use tokio::task::JoinSet;

use crate::error::{sdk_error, AwsError};

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

async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
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

#[async_trait]
impl ResultSink for S3Sink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            config: self.config,
            buffer: Vec::new(),
            pool: PartPool::new(self.config.part_size, self.config.max_in_flight + 1),
            upload_id: None,
            next_part: 1,
            size: 0,
            in_flight: JoinSet::new(),
            completed: Vec::new(),
        }))
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

/// Part buffers for one upload, reused: a full part is sent as a [`Bytes`] that owns its buffer
/// and puts it back here when the request has dropped it. Keeps at most `keep` idle buffers.
#[derive(Clone)]
struct PartPool {
    idle: Arc<Mutex<Vec<Vec<u8>>>>,
    capacity: usize,
    keep: usize,
}

impl PartPool {
    fn new(capacity: usize, keep: usize) -> Self {
        Self {
            idle: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            capacity,
            keep,
        }
    }

    /// An empty buffer of `capacity` bytes, reused when one is idle.
    fn take(&self) -> Vec<u8> {
        let reused = self.idle.lock().expect("pool lock").pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// The filled buffer as a part body that returns to the pool when dropped.
    fn seal(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(PooledPart {
            buffer,
            pool: self.clone(),
        })
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.keep && buffer.capacity() >= self.capacity {
            idle.push(buffer);
        }
    }
}

struct PooledPart {
    buffer: Vec<u8>,
    pool: PartPool,
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

/// One object being streamed into S3. See the module documentation.
struct S3Upload {
    client: Client,
    bucket: Arc<str>,
    key: String,
    config: UploadConfig,
    /// Bytes not yet sent, less than one part (a buffer from `pool`).
    buffer: Vec<u8>,
    pool: PartPool,
    /// Set when the first full part is ready.
    upload_id: Option<String>,
    next_part: i32,
    /// Bytes written so far.
    size: u64,
    in_flight: JoinSet<Result<CompletedPart, AwsError>>,
    completed: Vec<CompletedPart>,
}

impl S3Upload {
    async fn send_part(&mut self, body: Bytes) -> Result<(), AwsError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .client
                    .create_multipart_upload()
                    .bucket(&*self.bucket)
                    .key(&self.key)
                    .set_content_type(content_type(&self.key).map(str::to_owned))
                    .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                    .checksum_type(ChecksumType::FullObject)
                    .send()
                    .await
                    .map_err(|e| sdk_error("s3", "CreateMultipartUpload", e))?
                    .upload_id
                    .ok_or_else(|| rejected("CreateMultipartUpload answered no upload id"))?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        if self.next_part > MAX_PARTS {
            return Err(AwsError::Rejected {
                service: "s3",
                message: format!(
                    "{} exceeds {MAX_PARTS} parts of {} bytes",
                    self.key, self.config.part_size
                ),
                retryable: false,
            });
        }
        // Back-pressure: hold the caller until there is room for one more part.
        while self.in_flight.len() >= self.config.max_in_flight {
            self.join_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        self.in_flight.spawn(async move {
            let out = client
                .upload_part()
                .bucket(&*bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                // The SDK computes the part's CRC-64/NVME and S3 checks it on arrival.
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .body(ByteStream::from(body))
                .customize()
                // The checksum guards the bytes; a SHA-256 of every part for the signature
                // (what SigV4 does over plain http, e.g. a local endpoint) would only spend CPU.
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| sdk_error("s3", "UploadPart", e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme)
                .build())
        });
        Ok(())
    }

    /// Waits for one in-flight part; `Ok` when it uploaded (or none was in flight).
    async fn join_one(&mut self) -> Result<(), AwsError> {
        match self.in_flight.join_next().await {
            None => Ok(()),
            Some(Ok(Ok(part))) => {
                self.completed.push(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(join)) => Err(rejected(format!(
                "part upload task ended abnormally: {join}"
            ))),
        }
    }

    /// Uploads what is left and waits for every part; the upload stays incomplete (invisible).
    async fn stage(&mut self) -> Result<Staged, AwsError> {
        if self.upload_id.is_none() && self.buffer.is_empty() {
            // An empty object has no part to upload: it is put (atomically) when published.
            return Ok(Staged::Empty);
        }
        if !self.buffer.is_empty() {
            let last = self.pool.seal(std::mem::take(&mut self.buffer));
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let mut parts = std::mem::take(&mut self.completed);
        parts.sort_by_key(|p| p.part_number());
        Ok(Staged::Upload {
            upload_id: self.upload_id.clone().expect("a part was sent"),
            parts,
        })
    }

    async fn abort_upload(&mut self) {
        // Stop the part uploads first: a part landing after the abort would be billed and
        // kept until the lifecycle rule runs.
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        self.buffer = Vec::new();
        if let Some(upload_id) = self.upload_id.take() {
            abort_upload(&self.client, &self.bucket, &self.key, &upload_id).await;
        }
    }
}

#[async_trait]
impl PartWriter for S3Upload {
    async fn write(&mut self, mut chunk: Bytes) -> Result<(), HandlerError> {
        let part_size = self.config.part_size;
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            if self.buffer.capacity() == 0 {
                // Taken lazily: a small object (one `PutObject`) never holds a whole part.
                self.buffer = if self.upload_id.is_some() || chunk.len() >= part_size {
                    self.pool.take()
                } else {
                    Vec::with_capacity(chunk.len().max(64 * 1024))
                };
            }
            let take = (part_size - self.buffer.len()).min(chunk.len());
            if self.buffer.capacity() < self.buffer.len() + take {
                // Grown past a small object: move into a pooled part buffer.
                let mut pooled = self.pool.take();
                pooled.extend_from_slice(&self.buffer);
                self.buffer = pooled;
            }
            self.buffer.extend_from_slice(&chunk.split_to(take));
            if self.buffer.len() == part_size {
                let part = self.pool.seal(std::mem::take(&mut self.buffer));
                self.send_part(part)
                    .await
                    .map_err(|e| e.into_handler(PORT))?;
            }
        }
        Ok(())
    }

    async fn finish(
        mut self: Box<Self>,
        checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        match self.stage().await {
            Ok(staged) => Ok(Box::new(StagedUpload {
                client: self.client.clone(),
                bucket: self.bucket.clone(),
                key: std::mem::take(&mut self.key),
                staged,
                whole: Whole {
                    checksum,
                    size: self.size,
                },
            })),
            Err(e) => {
                self.abort_upload().await;
                Err(e.into_handler(PORT))
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_upload().await;
    }
}

/// The whole object as its writer saw it.
struct Whole {
    checksum: ObjectChecksum,
    size: u64,
}

enum Staged {
    /// Nothing was written.
    Empty,
    /// Every part uploaded; the upload is not completed.
    Upload {
        upload_id: String,
        parts: Vec<CompletedPart>,
    },
}

/// An upload whose bytes are all in S3, waiting to be completed.
struct StagedUpload {
    client: Client,
    bucket: Arc<str>,
    key: String,
    staged: Staged,
    whole: Whole,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_buffers_go_back_to_the_pool_and_are_reused() {
        let pool = PartPool::new(1024, 2);
        let mut first = pool.take();
        first.extend_from_slice(&[7; 1024]);
        let address = first.as_ptr();
        let body = pool.seal(first);
        assert_eq!(&body[..], &[7; 1024][..]);
        let clone = body.clone();
        drop(body);
        assert!(pool.idle.lock().unwrap().is_empty(), "still referenced");
        drop(clone);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert!(again.is_empty() && again.capacity() >= 1024);
        // At most `keep` idle buffers are kept.
        let parts: Vec<Bytes> = (0..4).map(|_| pool.seal(pool.take())).collect();
        drop(parts);
        assert_eq!(pool.idle.lock().unwrap().len(), 2);
    }

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
