//! [`S3Ledger`]: the idempotency ledger as one S3 object per key.
//!
//! A claim is `PutObject` with `If-None-Match: *`: S3 creates the object only if no object has
//! that key, and answers `412 Precondition Failed` otherwise, atomically, even for concurrent
//! writers. The loser reads the winner's entry and gets [`Claim::Existing`]. Recording the vendor
//! run overwrites the entry (only the claim's owner does that).
//!
//! Why S3 conditional writes and not a DynamoDB table:
//! - nothing more to deploy, secure and pay for: the results bucket (encrypted, TLS-only,
//!   public access blocked) already exists, and the ledger lives under `LEDGER_PREFIX` in it;
//! - S3 is strongly read-after-write consistent, so the loser of a claim reads the winner's
//!   entry, and a redelivery reads the recorded run id;
//! - the ledger's load is tiny (one claim and one update per run request).
//!
//! Limits, accepted here: there is no conditional *update* in this design (`record_submitted`
//! overwrites; only the claim owner writes it); S3 may answer `409 ConditionalRequestConflict`
//! when conditional writes to one key race, which is treated like a lost claim when the winner's
//! object is readable and as retryable otherwise; without `s3:ListBucket` a `GetObject` of a
//! missing key answers 403, so the ledger reads a key only after S3 said it exists.
//!
//! Retention and finding runs by day: the stack's lifecycle rule expires everything under the
//! ledger prefix `LedgerRetentionDays` after its last write (entries, their day index, idle
//! queue and history records), so the ledger stops growing and a resend within that window is
//! still recognised. Each new claim also writes an empty marker `{prefix}by-day/{date}/{key}`
//! (the claim's UTC date), so `runbridge list` reads the days it is asked about instead of every
//! key ever claimed.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use runbridge_core::IdempotencyKey;
use runbridge_handlers::ports::{Claim, Ledger, LedgerEntry};
use runbridge_handlers::HandlerError;

use crate::error::{sdk_error, AwsError};
use crate::s3_sink::{get_object, put_object};

const PORT: &str = "ledger";

/// The day index's folder under the ledger prefix.
pub const DAY_INDEX: &str = "by-day/";

/// `prefix` as a folder of keys: no leading `/`, one trailing `/` (empty for the bucket's root).
pub(crate) fn folder_prefix(prefix: &str) -> String {
    match prefix.trim_start_matches('/') {
        "" => String::new(),
        p if p.ends_with('/') => p.to_owned(),
        p => format!("{p}/"),
    }
}

/// The ledger under a prefix of a bucket: `{prefix}{key}.json`.
#[derive(Debug, Clone)]
pub struct S3Ledger {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Ledger {
    /// A ledger in `bucket` under `prefix` (a `/` is added when missing; empty for the root).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: folder_prefix(prefix),
        }
    }

    /// The object key of a ledger entry.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}{key}.json", self.prefix)
    }

    /// The folder of the day index: one folder per UTC date, one empty object per key claimed
    /// that day.
    pub fn day_index_prefix(&self) -> String {
        format!("{}{DAY_INDEX}", self.prefix)
    }

    /// The day index's marker of `key`, claimed on `day`.
    pub fn day_index_key(&self, key: &str, day: time::Date) -> String {
        format!("{}{day}/{key}", self.day_index_prefix())
    }

    /// Marks a new claim in the day index. Best effort: without its marker the run is whole and
    /// watched; only `list` of its day would not show it while it has no execution.
    async fn mark_day(&self, entry: &LedgerEntry) {
        let marker = self.day_index_key(entry.key.as_str(), entry.claimed_at.date());
        if let Err(e) = put_object(&self.client, &self.bucket, &marker, Vec::new().into()).await {
            tracing::warn!(error = %e, %marker, "could not write the ledger's day index marker");
        }
    }

    async fn claim_inner(&self, entry: LedgerEntry) -> Result<Claim, AwsError> {
        let object_key = self.object_key(entry.key.as_str());
        let body = serde_json::to_vec(&entry).expect("ledger entries serialise");
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        let lost = match put {
            Ok(_) => {
                self.mark_day(&entry).await;
                return Ok(Claim::New(entry));
            }
            Err(e) => sdk_error("s3", "PutObject", e),
        };
        let taken = lost.status() == Some(412) || lost.code() == Some("PreconditionFailed");
        let racing =
            lost.status() == Some(409) || lost.code() == Some("ConditionalRequestConflict");
        if !taken && !racing {
            return Err(lost);
        }
        match get_object(&self.client, &self.bucket, &object_key).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Claim::Existing)
                .map_err(|e| AwsError::Rejected {
                    service: "s3",
                    message: format!("ledger entry {object_key} is unreadable: {e}"),
                    retryable: false,
                }),
            // A racing writer that then failed: nobody holds the key; the next delivery claims it.
            None => Err(AwsError::Rejected {
                service: "s3",
                message: format!("claim of {object_key} raced another writer ({lost}); retry"),
                retryable: true,
            }),
        }
    }
}

#[async_trait]
impl Ledger for S3Ledger {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        self.claim_inner(entry)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        let body = serde_json::to_vec(entry).expect("ledger entries serialise");
        put_object(
            &self.client,
            &self.bucket,
            &self.object_key(entry.key.as_str()),
            body.into(),
        )
        .await
        .map_err(|e| e.into_handler(PORT))
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        let object_key = self.object_key(key.as_str());
        let bytes = get_object(&self.client, &self.bucket, &object_key)
            .await
            .map_err(|e| e.into_handler(PORT))?;
        bytes
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| {
                HandlerError::port(
                    PORT,
                    format!("ledger entry {object_key} is unreadable: {e}"),
                    false,
                )
            })
    }

    /// Deletes the entry: the next `If-None-Match: *` claim creates it afresh.
    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("s3", "DeleteObject", e).into_handler(PORT))
    }
}
