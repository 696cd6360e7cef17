//! [`DirSlots`]: each concurrency scope's [`ScopeQueue`] as one JSON file, `{dir}/{scope}.json`.
//!
//! The version a write compares is the SHA-256 of the file's bytes. Reads and writes are made
//! under one lock of this process: the local deployment runs every handler in one process (the
//! sandbox, the tests), so that is what "shared by all functions" means here; the deployed
//! record ([`runbridge_adapters_aws::S3Slots`]-style conditional writes) needs no lock.

use std::path::PathBuf;

use async_trait::async_trait;
use runbridge_core::ScopeQueue;
use runbridge_handlers::ports::{Slots, StoredScope};
use runbridge_handlers::HandlerError;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::sink::io_error;

/// Scope records in a directory.
#[derive(Debug)]
pub struct DirSlots {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl DirSlots {
    /// Records under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    /// The file of `scope`'s record.
    pub fn path(&self, scope: &str) -> PathBuf {
        self.dir.join(format!("{scope}.json"))
    }

    async fn read_bytes(&self, scope: &str) -> Result<Option<Vec<u8>>, HandlerError> {
        match tokio::fs::read(self.path(scope)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("slots", e)),
        }
    }
}

fn version_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[async_trait]
impl Slots for DirSlots {
    async fn read(&self, scope: &str) -> Result<StoredScope, HandlerError> {
        let _guard = self.lock.lock().await;
        let Some(bytes) = self.read_bytes(scope).await? else {
            return Ok(StoredScope::default());
        };
        let queue = serde_json::from_slice(&bytes).map_err(|e| {
            HandlerError::port(
                "slots",
                format!("scope record {scope} is unreadable: {e}"),
                false,
            )
        })?;
        Ok(StoredScope {
            queue,
            version: Some(version_of(&bytes)),
        })
    }

    async fn write(
        &self,
        scope: &str,
        queue: &ScopeQueue,
        version: Option<&str>,
    ) -> Result<bool, HandlerError> {
        let _guard = self.lock.lock().await;
        let current = self.read_bytes(scope).await?;
        if current.as_deref().map(version_of).as_deref() != version {
            return Ok(false);
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error("slots", e))?;
        let path = self.path(scope);
        let tmp = self.dir.join(format!(".{scope}.json.tmp"));
        let body = serde_json::to_vec(queue).expect("scope records serialise");
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("slots", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("slots", e))?;
        Ok(true)
    }
}
