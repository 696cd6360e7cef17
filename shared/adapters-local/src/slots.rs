//! [`DirSlots`]: concurrency slots as one JSON file per slot, `{dir}/{scope}/{n}.json`.
//!
//! Changes are made under one lock of this process: the local deployment runs every handler in
//! one process (the sandbox, the tests), so that is what "shared by all functions" means here.
//! The deployed slots ([`runbridge_adapters_aws::S3Slots`]-style conditional writes) need no
//! lock.

use std::path::PathBuf;

use async_trait::async_trait;
use runbridge_core::{
    ConcurrencyLimit, IdempotencyKey, OffsetDateTime, SlotHold, SlotRecord, WantedMark,
};
use runbridge_handlers::ports::{Renewal, SlotLease, Slots, WANTED_FRESH};
use runbridge_handlers::HandlerError;
use tokio::sync::Mutex;

use crate::sink::io_error;

/// Slots in a directory.
#[derive(Debug)]
pub struct DirSlots {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl DirSlots {
    /// Slots under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    fn wanted_path(&self, scope: &str) -> PathBuf {
        self.dir.join(scope).join("wanted.mark")
    }

    fn path(&self, scope: &str, n: u32) -> PathBuf {
        self.dir.join(scope).join(format!("{n}.json"))
    }

    async fn read(&self, scope: &str, n: u32) -> Result<Option<SlotRecord>, HandlerError> {
        match tokio::fs::read(self.path(scope, n)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                HandlerError::port(
                    "slots",
                    format!("slot {scope}/{n} is unreadable: {e}"),
                    false,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("slots", e)),
        }
    }

    async fn write(&self, scope: &str, n: u32, record: &SlotRecord) -> Result<(), HandlerError> {
        let path = self.path(scope, n);
        let dir = path.parent().expect("a slot file has a directory");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error("slots", e))?;
        let tmp = dir.join(format!(".{n}.tmp"));
        let body = serde_json::to_vec(record).expect("slot records serialise");
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("slots", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("slots", e))
    }
}

#[async_trait]
impl Slots for DirSlots {
    async fn acquire(
        &self,
        limit: &ConcurrencyLimit,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<SlotLease>, HandlerError> {
        let _guard = self.lock.lock().await;
        for n in 0..limit.limit {
            let free = match self.read(&limit.scope, n).await? {
                None => true,
                Some(held) => held.holder == *holder || held.until <= now,
            };
            if free {
                let record = SlotRecord {
                    holder: holder.clone(),
                    until,
                };
                self.write(&limit.scope, n, &record).await?;
                return Ok(Some(SlotLease {
                    hold: SlotHold {
                        scope: limit.scope.clone(),
                        slot: n,
                    },
                    until,
                }));
            }
        }
        let mark = serde_json::to_vec(&WantedMark { at: now }).expect("serialises");
        let path = self.wanted_path(&limit.scope);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error("slots", e))?;
        }
        tokio::fs::write(path, mark)
            .await
            .map_err(|e| io_error("slots", e))?;
        Ok(None)
    }

    async fn renew(
        &self,
        hold: &SlotHold,
        holder: &IdempotencyKey,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Renewal, HandlerError> {
        let _guard = self.lock.lock().await;
        let held = match self.read(&hold.scope, hold.slot).await? {
            Some(held) if held.holder != *holder => false,
            _ => {
                let record = SlotRecord {
                    holder: holder.clone(),
                    until,
                };
                self.write(&hold.scope, hold.slot, &record).await?;
                true
            }
        };
        let wanted = match tokio::fs::read(self.wanted_path(&hold.scope)).await {
            Ok(bytes) => serde_json::from_slice::<WantedMark>(&bytes)
                .is_ok_and(|w| now - w.at <= WANTED_FRESH),
            Err(_) => false,
        };
        Ok(Renewal { held, wanted })
    }

    async fn release(&self, hold: &SlotHold, holder: &IdempotencyKey) -> Result<(), HandlerError> {
        let _guard = self.lock.lock().await;
        if let Some(held) = self.read(&hold.scope, hold.slot).await? {
            if held.holder == *holder {
                tokio::fs::remove_file(self.path(&hold.scope, hold.slot))
                    .await
                    .map_err(|e| io_error("slots", e))?;
            }
        }
        Ok(())
    }

    async fn holders(
        &self,
        scope: &str,
    ) -> Result<Vec<(u32, IdempotencyKey, OffsetDateTime)>, HandlerError> {
        let _guard = self.lock.lock().await;
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(self.dir.join(scope)).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error("slots", e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io_error("slots", e))?
        {
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(record) = self.read(scope, n).await? {
                out.push((n, record.holder, record.until));
            }
        }
        out.sort_by_key(|(n, _, _)| *n);
        Ok(out)
    }
}
