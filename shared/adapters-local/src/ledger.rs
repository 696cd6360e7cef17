//! [`DirLedger`]: the idempotency ledger as one JSON file per key in a directory.

use std::path::PathBuf;

use async_trait::async_trait;
use runbridge_handlers::ports::{Claim, Ledger, LedgerEntry};
use runbridge_handlers::HandlerError;
use tokio::io::AsyncWriteExt;

use crate::sink::io_error;

/// A ledger of one JSON file per key in a directory; claims use create-new, which the OS makes
/// atomic, so concurrent deliveries (even from several processes) claim a key once.
#[derive(Debug, Clone)]
pub struct DirLedger {
    dir: PathBuf,
}

impl DirLedger {
    /// A ledger in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

#[async_trait]
impl Ledger for DirLedger {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error("ledger", e))?;
        let path = self.path(entry.key.as_str());
        let body = serde_json::to_vec(&entry).expect("ledger entries serialise");
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(mut f) => {
                f.write_all(&body)
                    .await
                    .map_err(|e| io_error("ledger", e))?;
                f.sync_all().await.map_err(|e| io_error("ledger", e))?;
                Ok(Claim::New(entry))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // The winner may be mid-write: an empty or partial file reads as "in progress".
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| io_error("ledger", e))?;
                match serde_json::from_slice::<LedgerEntry>(&bytes) {
                    Ok(existing) => Ok(Claim::Existing(existing)),
                    Err(_) => Ok(Claim::Existing(LedgerEntry {
                        submitted: None,
                        ..entry
                    })),
                }
            }
            Err(e) => Err(io_error("ledger", e)),
        }
    }

    async fn record_submitted(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        let path = self.path(entry.key.as_str());
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec(entry).expect("ledger entries serialise");
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("ledger", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("ledger", e))
    }
}
