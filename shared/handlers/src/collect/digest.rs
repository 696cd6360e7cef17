//! The digests of a result file, computed off the async runtime as it streams past: SHA-256 (when
//! asked), the CRC-64/NVME the sink verifies, the CSV record count ([`super::rows`]), and
//! whatever digest the source promised ([`ExpectedDigest`]), checked by [`Digests::mismatch`].

use bytes::Bytes;
use md5::Md5;
use runbridge_vendors::ExpectedDigest;
use sha2::{Digest, Sha256};

use super::rows::RowCounter;

/// Chunks in flight between the download and the digest worker. Small on purpose: a chunk is a
/// slice of the HTTP client's read buffer (up to a few hundred KiB) and keeps that buffer alive,
/// so 64 queued chunks measured as +36 MiB of peak RSS whenever hashing fell behind.
const DIGEST_QUEUE: usize = 4;

/// What the digest worker computed over a whole file.
pub(super) struct Digests {
    /// SHA-256, when asked for.
    pub sha256: Option<[u8; 32]>,
    /// CRC-64/NVME, which the sink checks what it stored against.
    pub crc64nvme: u64,
    /// MD5, when the source promised one.
    md5: Option<[u8; 16]>,
    /// CSV records.
    pub rows: u64,
}

/// SHA-256 (when asked), CRC-64/NVME and the CSV record count on one blocking thread, and MD5
/// (when the source promised one) on a second one: MD5 is the slowest of them (about a third of SHA-256's speed
/// with SHA extensions), and on one thread together they capped collect at the digests' combined
/// speed (`bash bench/collect-quick.sh`: `digest` vs `download`).
pub(super) struct Digester {
    main: tokio::sync::mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<Digests>,
    md5: Option<(
        tokio::sync::mpsc::Sender<Bytes>,
        tokio::task::JoinHandle<[u8; 16]>,
    )>,
}

impl Digester {
    /// Workers computing SHA-256 when `with_sha256`, and the digest `expected` names, if any.
    pub(super) fn spawn(with_sha256: bool, expected: Option<ExpectedDigest>) -> Self {
        let with_md5 = matches!(expected, Some(ExpectedDigest::Md5(_)));
        let (main, mut rx) = tokio::sync::mpsc::channel::<Bytes>(DIGEST_QUEUE);
        let worker = tokio::task::spawn_blocking(move || {
            let mut sha = with_sha256.then(Sha256::new);
            let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
            let mut rows = RowCounter::default();
            while let Some(chunk) = rx.blocking_recv() {
                if let Some(sha) = &mut sha {
                    sha.update(&chunk);
                }
                crc.update(&chunk);
                rows.feed(&chunk);
            }
            Digests {
                sha256: sha.map(|sha| sha.finalize().into()),
                crc64nvme: crc.finalize(),
                md5: None,
                rows: rows.records(),
            }
        });
        let md5 = with_md5.then(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(DIGEST_QUEUE);
            let worker = tokio::task::spawn_blocking(move || {
                // md-5 0.11 (digest 0.11; sha2 is still on 0.10): ~8 % faster than 0.10.
                use md5::Digest as _;
                let mut md5 = Md5::new();
                while let Some(chunk) = rx.blocking_recv() {
                    md5.update(&chunk);
                }
                md5.finalize().into()
            });
            (tx, worker)
        });
        Self { main, worker, md5 }
    }

    /// Hands a chunk to the workers (cheap: `Bytes` clones share the buffer), waiting while
    /// they are behind. A send fails only if a worker died, which [`Digester::finish`] reports.
    pub(super) async fn feed(&self, chunk: &Bytes) {
        let _ = self.main.send(chunk.clone()).await;
        if let Some((tx, _)) = &self.md5 {
            let _ = tx.send(chunk.clone()).await;
        }
    }

    /// Ends the input and waits for the digests.
    pub(super) async fn finish(self) -> Result<Digests, tokio::task::JoinError> {
        drop(self.main);
        let md5 = match self.md5 {
            Some((tx, worker)) => {
                drop(tx);
                Some(worker.await?)
            }
            None => None,
        };
        let mut digests = self.worker.await?;
        digests.md5 = md5;
        Ok(digests)
    }
}

impl Digests {
    /// How the bytes differ from the digest their source promised (`None`: they match).
    pub(super) fn mismatch(&self, expected: ExpectedDigest) -> Option<String> {
        match (expected, self.md5) {
            (ExpectedDigest::Md5(stored), Some(received)) => (received != stored).then(|| {
                format!(
                    "MD5 {} received, {} stored",
                    hex::encode(received),
                    hex::encode(stored)
                )
            }),
            // Not reached: the digester computes MD5 whenever one is expected.
            (ExpectedDigest::Md5(_), None) => Some("MD5 not computed".into()),
        }
    }
}
