//! [`DirLedger`]: the idempotency ledger as one JSON file per key in a directory.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use runbridge_core::IdempotencyKey;
use runbridge_handlers::ports::{Claim, Ledger, LedgerEntry};
use runbridge_handlers::HandlerError;
use tokio::io::AsyncWriteExt;

use crate::sink::io_error;

/// How long an unreadable (empty or partial) entry file is taken for a writer still at work.
/// Claims are written whole to a temporary file and then hard-linked into place, so this ledger
/// never leaves such a file itself; one can only come from an older version, a crash of the
/// machine before the data reached the disk, or a hand edit. After this grace it is removed and
/// the key claimed afresh, instead of reading as "claimed now" forever.
pub const UNREADABLE_ENTRY_GRACE: Duration = Duration::from_secs(60);

/// A ledger of one JSON file per key in a directory. A claim writes the whole entry to a unique
/// temporary file and hard-links it to the key's name: `link` fails if the name exists, so the
/// claim is atomic even across processes, and the name never points at a partial entry.
#[derive(Debug, Clone)]
pub struct DirLedger {
    dir: PathBuf,
    unreadable_grace: Duration,
}

impl DirLedger {
    /// A ledger in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            unreadable_grace: UNREADABLE_ENTRY_GRACE,
        }
    }

    /// The same ledger with another grace for unreadable entries (tests).
    pub fn with_unreadable_grace(mut self, grace: Duration) -> Self {
        self.unreadable_grace = grace;
        self
    }

    /// The entry file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn tmp_path(&self, key: &str) -> PathBuf {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir
            .join(format!(".{key}.{}.{seq}.tmp", std::process::id()))
    }

    async fn write_tmp(&self, key: &str, body: &[u8]) -> Result<PathBuf, HandlerError> {
        let tmp = self.tmp_path(key);
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_error("ledger", e))?;
        f.write_all(body).await.map_err(|e| io_error("ledger", e))?;
        f.sync_all().await.map_err(|e| io_error("ledger", e))?;
        Ok(tmp)
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
        // Two rounds at most: the second after removing an abandoned unreadable entry.
        for _ in 0..2 {
            let tmp = self.write_tmp(entry.key.as_str(), &body).await?;
            let linked = tokio::fs::hard_link(&tmp, &path).await;
            let _ = tokio::fs::remove_file(&tmp).await;
            match linked {
                Ok(()) => return Ok(Claim::New(entry)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error("ledger", e)),
            }
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => b,
                // Released between our link and our read: claim again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("ledger", e)),
            };
            if let Ok(existing) = serde_json::from_slice::<LedgerEntry>(&bytes) {
                return Ok(Claim::Existing(existing));
            }
            let age = tokio::fs::metadata(&path)
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            if age < self.unreadable_grace {
                return Err(HandlerError::port(
                    "ledger",
                    format!(
                        "entry {} is unreadable ({} bytes, {} s old); retry later",
                        path.display(),
                        bytes.len(),
                        age.as_secs()
                    ),
                    true,
                ));
            }
            tracing::warn!(path = %path.display(), len = bytes.len(), "removing an abandoned unreadable ledger entry");
            let _ = tokio::fs::remove_file(&path).await;
        }
        Err(HandlerError::port(
            "ledger",
            format!("claim of {} raced another writer; retry", path.display()),
            true,
        ))
    }

    async fn update(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        let path = self.path(entry.key.as_str());
        let body = serde_json::to_vec(entry).expect("ledger entries serialise");
        let tmp = self.write_tmp(entry.key.as_str(), &body).await?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("ledger", e))
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, HandlerError> {
        match tokio::fs::read(self.path(key.as_str())).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                HandlerError::port("ledger", format!("entry of {key} unreadable: {e}"), true)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("ledger", e)),
        }
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), HandlerError> {
        match tokio::fs::remove_file(self.path(key.as_str())).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("ledger", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbridge_core::{OffsetDateTime, RunRequest};

    fn entry(key: &str) -> LedgerEntry {
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"n-1","connection":"c","query":"SELECT 1"}"#,
        )
        .unwrap();
        LedgerEntry {
            key: IdempotencyKey::from_string(key.into()),
            fingerprint: Some(runbridge_core::Fingerprint::of(&request)),
            request: request.resolve(OffsetDateTime::UNIX_EPOCH),
            claimed_at: OffsetDateTime::UNIX_EPOCH,
            state: runbridge_core::KeyState::Claimed {
                lease_until: OffsetDateTime::UNIX_EPOCH,
            },
        }
    }

    #[tokio::test]
    async fn an_empty_or_partial_entry_does_not_hold_the_key_forever() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("carto-empty", &b""[..]),
            ("carto-partial", &b"{\"key\":\"ca"[..]),
        ] {
            let fresh = DirLedger::new(dir.path());
            std::fs::write(fresh.path(name), content).unwrap();
            // Young: someone may be writing it, retry later (retryably).
            let err = fresh.claim(entry(name)).await.unwrap_err();
            assert!(err.is_retryable(), "{err}");
            // Old: abandoned, the key is claimed afresh.
            let old = DirLedger::new(dir.path()).with_unreadable_grace(Duration::ZERO);
            assert!(matches!(
                old.claim(entry(name)).await.unwrap(),
                Claim::New(_)
            ));
            assert!(matches!(
                old.claim(entry(name)).await.unwrap(),
                Claim::Existing(_)
            ));
        }
    }

    #[tokio::test]
    async fn a_released_key_is_claimed_afresh_and_claims_stay_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = DirLedger::new(dir.path());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let ledger = ledger.clone();
                tokio::spawn(async move { ledger.claim(entry("carto-k")).await })
            })
            .collect();
        let mut claims = Vec::new();
        for t in tasks {
            claims.push(t.await.unwrap());
        }
        let new = claims
            .iter()
            .filter(|c| matches!(c, Ok(Claim::New(_))))
            .count();
        assert_eq!(new, 1, "{claims:?}");
        ledger
            .release(&IdempotencyKey::from_string("carto-k".into()))
            .await
            .unwrap();
        assert!(matches!(
            ledger.claim(entry("carto-k")).await.unwrap(),
            Claim::New(_)
        ));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
