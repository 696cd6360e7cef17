//! [`DirSink`]: results in a local directory, in exactly the S3 layout.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use runbridge_handlers::ports::{ObjectChecksum, PartWriter, ResultSink, StagedObject};
use runbridge_handlers::HandlerError;
use tokio::io::AsyncWriteExt;

pub(crate) fn io_error(port: &'static str, e: std::io::Error) -> HandlerError {
    HandlerError::port(port, e, true)
}

/// Results in a local directory, with the same keys as in S3. Files are written to a hidden
/// temporary name beside their final one (`.NAME.N.partial`), synced when finished, and renamed
/// into place when published, so a reader never sees a partial file.
#[derive(Debug, Clone)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory results land in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, HandlerError> {
        // Keys are built from validated components; refuse anything else rather than trust it.
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            || key.starts_with('/')
        {
            return Err(HandlerError::port(
                "sink",
                format!("refusing unsafe key {key:?}"),
                false,
            ));
        }
        Ok(self.root.join(key))
    }
}

struct DirPart {
    tmp: PathBuf,
    dest: PathBuf,
    file: tokio::fs::File,
}

async fn temp_for(dest: &Path) -> Result<(PathBuf, tokio::fs::File), HandlerError> {
    let dir = dest.parent().expect("keys have a parent");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_error("sink", e))?;
    let name = dest
        .file_name()
        .expect("keys have a file name")
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.partial",
        std::process::id() as u64 ^ rand_suffix()
    ));
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io_error("sink", e))?;
    Ok((tmp, file))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[async_trait]
impl PartWriter for DirPart {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.file
            .write_all(&chunk)
            .await
            .map_err(|e| io_error("sink", e))
    }
    async fn finish(
        mut self: Box<Self>,
        _checksum: ObjectChecksum,
    ) -> Result<Box<dyn StagedObject>, HandlerError> {
        // A file system has no checksum to hand over; the manifest carries it.
        let synced = async {
            self.file.flush().await?;
            self.file.sync_all().await
        };
        if let Err(e) = synced.await {
            let _ = tokio::fs::remove_file(&self.tmp).await;
            return Err(io_error("sink", e));
        }
        Ok(Box::new(DirStaged {
            tmp: self.tmp,
            dest: self.dest,
        }))
    }
    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

/// A synced temporary file waiting to be renamed into place.
struct DirStaged {
    tmp: PathBuf,
    dest: PathBuf,
}

#[async_trait]
impl StagedObject for DirStaged {
    async fn publish(self: Box<Self>) -> Result<(), HandlerError> {
        if let Err(e) = tokio::fs::rename(&self.tmp, &self.dest).await {
            // As S3 does after a refused completion: nothing of the object is kept.
            let _ = tokio::fs::remove_file(&self.tmp).await;
            return Err(io_error("sink", e));
        }
        Ok(())
    }
    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[async_trait]
impl ResultSink for DirSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        let dest = self.path(key)?;
        let (tmp, file) = temp_for(&dest).await?;
        Ok(Box::new(DirPart { tmp, dest, file }))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        let mut part = self.create(key).await?;
        let checksum = ObjectChecksum::of(&body);
        part.write(body).await?;
        part.finish(checksum).await?.publish().await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("sink", e)),
        }
    }
}
