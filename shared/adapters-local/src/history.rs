//! [`DirHistory`]: each workflow's [`DurationHistory`] as one JSON file, `{dir}/{workflow}.json`.

use std::path::PathBuf;

use async_trait::async_trait;
use runbridge_core::DurationHistory;
use runbridge_handlers::ports::History;
use runbridge_handlers::HandlerError;

use crate::sink::io_error;

/// Workflow durations in a directory.
#[derive(Debug, Clone)]
pub struct DirHistory {
    dir: PathBuf,
}

impl DirHistory {
    /// Durations under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file of `workflow`'s durations.
    pub fn path(&self, workflow: &str) -> PathBuf {
        self.dir.join(format!("{workflow}.json"))
    }
}

#[async_trait]
impl History for DirHistory {
    async fn read(&self, workflow: &str) -> Result<DurationHistory, HandlerError> {
        match tokio::fs::read(self.path(workflow)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                HandlerError::port("history", format!("{workflow} is unreadable: {e}"), false)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DurationHistory::default()),
            Err(e) => Err(io_error("history", e)),
        }
    }

    async fn write(&self, workflow: &str, history: &DurationHistory) -> Result<(), HandlerError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error("history", e))?;
        let tmp = self.dir.join(format!(".{workflow}.json.tmp"));
        let body = serde_json::to_vec(history).expect("durations serialise");
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("history", e))?;
        tokio::fs::rename(&tmp, self.path(workflow))
            .await
            .map_err(|e| io_error("history", e))
    }
}
