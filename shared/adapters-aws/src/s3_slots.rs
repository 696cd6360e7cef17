//! [`S3Slots`]: concurrency slots as S3 objects, `{prefix}{scope}/{n}.json` holding
//! `{"holder", "until"}`.
//!
//! Every change is a conditional write, so concurrent functions cannot both take a slot:
//! - a free slot (no object) is taken with `PutObject` + `If-None-Match: *`;
//! - an expired lease is taken over, and a lease renewed, with `PutObject` + `If-Match: <etag>`
//!   of the object just read, so only one of two racing writers wins;
//! - a slot is given back with `DeleteObject` + `If-Match: <etag>`, so a holder whose lease ran
//!   out cannot delete the slot another run took meanwhile.
//!
//! An acquire that finds every slot held writes `{prefix}{scope}/wanted.json` (`{"at"}`), and a
//! renewal reads it: a holder polls eagerly while runs wait.
//!
//! A loser (`412 Precondition Failed`, or `409 ConditionalRequestConflict` when writes race)
//! tries the next slot. The slots live beside the ledger, in the results bucket, under the
//! ledger's prefix (`slots/`): nothing more to deploy.

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use runbridge_core::{
    ConcurrencyLimit, IdempotencyKey, OffsetDateTime, SlotHold, SlotRecord, WantedMark,
};
use runbridge_handlers::ports::{Renewal, SlotLease, Slots, WANTED_FRESH};
use runbridge_handlers::HandlerError;

use crate::error::{sdk_error, AwsError};

const PORT: &str = "slots";

/// Concurrency slots in `bucket` under `prefix`.
#[derive(Debug, Clone)]
pub struct S3Slots {
    client: Client,
    bucket: String,
    prefix: String,
}

/// How a conditional write ended.
enum Write {
    Done,
    Lost,
}

impl S3Slots {
    /// Slots in `bucket` under `prefix` (a `/` is added when missing).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: crate::s3_ledger::folder_prefix(prefix),
        }
    }

    fn wanted_key(&self, scope: &str) -> String {
        format!("{}{scope}/wanted.json", self.prefix)
    }

    async fn mark_wanted(&self, scope: &str, now: OffsetDateTime) -> Result<(), AwsError> {
        let body = serde_json::to_vec(&WantedMark { at: now }).expect("serialises");
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.wanted_key(scope))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("s3", "PutObject", e))
    }

    async fn wanted_since(&self, scope: &str) -> Result<Option<OffsetDateTime>, AwsError> {
        let key = self.wanted_key(scope);
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
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("s3", "GetObject", e)),
        };
        let Ok(body) = out.body.collect().await else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<WantedMark>(&body.into_bytes())
            .ok()
            .map(|w| w.at))
    }

    /// The object key of slot `n` of `scope`.
    pub fn object_key(&self, scope: &str, n: u32) -> String {
        format!("{}{scope}/{n}.json", self.prefix)
    }

    async fn read(&self, key: &str) -> Result<Option<(SlotRecord, String)>, AwsError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("s3", "GetObject", e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let body = out.body.collect().await.map_err(|e| AwsError::Call {
            service: "s3",
            operation: "GetObject",
            code: None,
            status: None,
            message: format!("reading slot {key}: {e}"),
            retryable: true,
        })?;
        let record =
            serde_json::from_slice(&body.into_bytes()).map_err(|e| AwsError::Rejected {
                service: "s3",
                message: format!("slot {key} is unreadable: {e}"),
                retryable: false,
            })?;
        Ok(Some((record, etag)))
    }

    /// Writes `record` to `key`: only if absent (`etag` `None`) or unchanged since read.
    async fn write(
        &self,
        key: &str,
        record: &SlotRecord,
        etag: Option<&str>,
    ) -> Result<Write, AwsError> {
        let body = serde_json::to_vec(record).expect("slot records serialise");
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let put = match etag {
            None => put.if_none_match("*"),
            Some(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(_) => Ok(Write::Done),
            Err(e) => lost_or(sdk_error("s3", "PutObject", e)),
        }
    }

    async fn acquire_inner(
        &self,
        limit: &ConcurrencyLimit,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<SlotLease>, AwsError> {
        let record = SlotRecord {
            holder: holder.clone(),
            until,
        };
        let lease = |slot| SlotLease {
            hold: SlotHold {
                scope: limit.scope.clone(),
                slot,
            },
            until,
        };
        for n in 0..limit.limit {
            let key = self.object_key(&limit.scope, n);
            if let Write::Done = self.write(&key, &record, None).await? {
                return Ok(Some(lease(n)));
            }
            let Some((held, etag)) = self.read(&key).await? else {
                // Given back between our write and our read: try it once more.
                if let Write::Done = self.write(&key, &record, None).await? {
                    return Ok(Some(lease(n)));
                }
                continue;
            };
            if held.holder == *holder || held.until <= now {
                if let Write::Done = self.write(&key, &record, Some(&etag)).await? {
                    if held.holder != *holder {
                        tracing::warn!(scope = %limit.scope, slot = n, previous = %held.holder, "took over a slot whose lease had run out");
                    }
                    return Ok(Some(lease(n)));
                }
            }
        }
        self.mark_wanted(&limit.scope, now).await?;
        Ok(None)
    }

    async fn renew_inner(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Renewal, AwsError> {
        let key = self.object_key(&hold.scope, hold.slot);
        let record = SlotRecord {
            holder: holder.clone(),
            until,
        };
        let held = match self.read(&key).await? {
            Some((held, etag)) if held.holder == *holder => {
                matches!(self.write(&key, &record, Some(&etag)).await?, Write::Done)
            }
            Some(_) => false,
            // Given back (or never written): hold it again if still free.
            None => matches!(self.write(&key, &record, None).await?, Write::Done),
        };
        let wanted = self
            .wanted_since(&hold.scope)
            .await?
            .is_some_and(|at| now - at <= WANTED_FRESH);
        Ok(Renewal { held, wanted })
    }

    async fn release_inner(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
    ) -> Result<(), AwsError> {
        let key = self.object_key(&hold.scope, hold.slot);
        let Some((held, etag)) = self.read(&key).await? else {
            return Ok(());
        };
        if held.holder != *holder {
            return Ok(());
        }
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Renewed or taken over since the read: no longer ours to give back.
            Err(e) => lost_or(sdk_error("s3", "DeleteObject", e)).map(|_| ()),
        }
    }

    async fn holders_inner(
        &self,
        scope: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, AwsError> {
        let prefix = format!("{}{scope}/", self.prefix);
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("s3", "ListObjectsV2", e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(n) = key
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(".json"))
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some((record, _)) = self.read(key).await? {
                    out.push((n, record.holder, record.until));
                }
            }
        }
        out.sort_by_key(|(n, _, _)| *n);
        Ok(out)
    }
}

/// A lost condition (`412`, or `409` when conditional writes race) is [`Write::Lost`]; any other
/// failure stays an error.
fn lost_or(e: AwsError) -> Result<Write, AwsError> {
    let lost = matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || matches!(
        &e,
        AwsError::Call {
            status: Some(412 | 409),
            ..
        }
    );
    if lost {
        Ok(Write::Lost)
    } else {
        Err(e)
    }
}

#[async_trait]
impl Slots for S3Slots {
    async fn acquire(
        &self,
        limit: &ConcurrencyLimit,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<SlotLease>, HandlerError> {
        self.acquire_inner(limit, holder, now, until)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn renew(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Renewal, HandlerError> {
        self.renew_inner(hold, holder, now, until)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn release(&self, hold: &SlotHold, holder: &IdempotencyKey) -> Result<(), HandlerError> {
        self.release_inner(hold, holder)
            .await
            .map_err(|e| e.into_handler(PORT))
    }

    async fn holders(
        &self,
        scope: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, HandlerError> {
        self.holders_inner(scope)
            .await
            .map_err(|e| e.into_handler(PORT))
    }
}
