//! The writer of one object: it buffers a part at a time and uploads full parts to the object's
//! final key as a multipart upload, at most `max_in_flight` at once (back-pressure on the
//! download). Finishing uploads the rest and stages the upload without completing it.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use runbridge_handlers::{HandlerError, ObjectChecksum, PartWriter, StagedObject};
use tokio::task::JoinSet;

use super::part_pool::PartPool;
use super::staged::{abort_upload, Staged, StagedUpload, Whole};
use super::{content_type, rejected, UploadConfig, MAX_PARTS, PORT};
use crate::error::{sdk_error, AwsError};

/// One object being streamed into S3. See the module documentation.
pub(super) struct S3Upload {
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
    /// A writer of `key`, nothing sent yet.
    pub(super) fn new(client: Client, bucket: Arc<str>, key: &str, config: UploadConfig) -> Self {
        Self {
            client,
            bucket,
            key: key.to_owned(),
            config,
            buffer: Vec::new(),
            pool: PartPool::new(config.part_size, config.max_in_flight + 1),
            upload_id: None,
            next_part: 1,
            size: 0,
            in_flight: JoinSet::new(),
            completed: Vec::new(),
        }
    }

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
