//! The collect handler: lands a finished run's results and announces the outcome.
//!
//! Each result file streams from the vendor straight to its final key (bounded memory; size, CSV
//! records, CRC-64/NVME and SHA-256 computed on the way, in `digest` and `rows`) and stays
//! invisible (S3: an incomplete multipart upload) until it is checked against the announced size
//! and against the digest its source promised, if any: the vendor layer says what to expect
//! ([`runbridge_vendors::ResultStream`], e.g. an S3 ETag's MD5), collect checks it without
//! knowing why. Only when every file of the run is stored whole are they published (S3:
//! `CompleteMultipartUpload`, which checks the full-object CRC-64/NVME computed here against the
//! parts it received), and the manifest is written last, so whoever sees it sees complete files.
//! A failure before that aborts every staged file. A run that already has a manifest is not
//! collected again.

use std::sync::Arc;

use futures::StreamExt;
use runbridge_core::{Attribution, ManifestFile, ResultPaths, RunHandle, RunOutcome, RunState};
use runbridge_vendors::{ResultFile, ResultStream, ResultsAvailability, RunRef, Vendor, Vendors};
use serde::{Deserialize, Serialize};

use crate::finish::{Ending, Finisher};
use crate::ports::{Ledger, ObjectChecksum, StagedObject};
use crate::HandlerError;

mod digest;
mod rows;

pub use rows::RowCounter;

use digest::Digester;

/// How the run ended, as the state machine tells collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Collect the results.
    Succeeded,
    /// Record the failure (manifest without files) and announce it.
    Failed,
}

/// The collect state's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectInput {
    /// The run.
    pub handle: RunHandle,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whose fault a failure was.
    #[serde(default)]
    pub attribution: Option<Attribution>,
}

/// The collect handler's dependencies.
pub struct Collector {
    /// Vendor clients.
    pub vendors: Vendors,
    /// The idempotency ledger, where a collect that failed on our side is recorded.
    pub ledger: Arc<dyn Ledger>,
    /// Where results land and the run's end is written and announced.
    pub finisher: Arc<Finisher>,
    /// The workflows' durations: a collected run adds its own, for the next run's prediction.
    pub history: Arc<dyn crate::ports::History>,
    /// What collect computes beyond what it needs itself.
    pub options: CollectOptions,
}

/// What collect computes beyond what publishing safely needs (size, CSV records, the
/// CRC-64/NVME that S3 verifies, and MD5 where the source's ETag promises one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectOptions {
    /// Record each file's SHA-256 in the manifest. On by default, for readers that check files
    /// with `sha256sum`; it is the costliest digest after MD5 (about 0.5 CPU-seconds per GiB
    /// on the benchmark machine, see docs/BENCHMARKS.md), so a CPU-starved deployment may turn
    /// it off and rely on the manifest's S3-verified `crc64nvme`.
    pub sha256: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self { sha256: true }
    }
}

impl Collector {
    /// Collects (or records the failure of) one run.
    /// Its answer, the collect state's output, is the manifest's [`RunOutcome`].
    pub async fn collect(&self, input: CollectInput) -> Result<RunOutcome, HandlerError> {
        let started = std::time::Instant::now();
        let handle = &input.handle;
        let paths = self.finisher.layout.paths(handle);
        if let Some((outcome, _)) = self.finisher.finish_existing(handle).await? {
            return Ok(outcome);
        }
        let collect_failed =
            input.outcome == Outcome::Failed && handle.last_state() == RunState::Succeeded;
        if collect_failed && input.attribution != Some(Attribution::Customer) {
            // The vendor run succeeded; what failed was collecting it on our side (our download
            // policy, the sink, …), which a resend can repair. A FAILED manifest would claim the
            // run failed and block every later collect, so: no manifest, a record in the ledger,
            // and a failed execution.
            let reason = input
                .reason
                .clone()
                .unwrap_or_else(|| "collect failed".into());
            self.record_collect_failure(handle, &reason, input.attribution)
                .await?;
            return Err(HandlerError::CollectFailed(reason));
        }
        // A collect the customer's request made fail (the vendor refused the download or the
        // export: a query referencing a parameter it lacks, a permission the account lacks)
        // cannot be repaired by resending: the run ends FAILED with a manifest, an event and a
        // metric, like any other failure the customer caused.
        let reason = match (&input.reason, collect_failed) {
            (Some(r), true) => Some(format!(
                "the vendor run succeeded, but its results could not be collected: {r}"
            )),
            (r, _) => r.clone(),
        };
        let ending = match input.outcome {
            Outcome::Failed => Ending {
                state: handle
                    .last_state()
                    .is_final()
                    .then(|| handle.last_state())
                    .filter(|s| *s != RunState::Succeeded)
                    .unwrap_or(RunState::Failed),
                reason: Some(reason.unwrap_or_else(|| "run failed".into())),
                attribution: Some(input.attribution.unwrap_or(Attribution::Platform)),
                files: Vec::new(),
            },
            Outcome::Succeeded => Ending {
                state: RunState::Succeeded,
                reason: None,
                attribution: None,
                files: self.land_files(handle, &paths).await?,
            },
        };
        let succeeded = ending.state == RunState::Succeeded;
        // The step dispatcher gave the run's slot back before this call.
        let outcome = self
            .finisher
            .finish(handle, ending, None, started.elapsed().as_secs_f64())
            .await?;
        if succeeded {
            self.record_duration(handle).await;
        }
        Ok(outcome)
    }

    /// Adds the run's duration to its workflow's history. A failure is only logged: the next
    /// run is then predicted from one run fewer.
    async fn record_duration(&self, handle: &RunHandle) {
        let Some(seconds) = handle.duration_seconds() else {
            return;
        };
        let workflow = handle.request.workflow_key();
        let recorded = async {
            let mut history = self.history.read(&workflow).await?;
            history.record(seconds);
            self.history.write(&workflow, &history).await
        };
        match recorded.await {
            Ok(()) => tracing::info!(%workflow, seconds, "recorded the run's duration"),
            Err(e) => tracing::warn!(error = %e, %workflow, "could not record the run's duration"),
        }
    }

    async fn record_collect_failure(
        &self,
        handle: &RunHandle,
        reason: &str,
        attribution: Option<Attribution>,
    ) -> Result<(), HandlerError> {
        let Some(mut entry) = self.ledger.get(&handle.key).await? else {
            return Err(HandlerError::port(
                "ledger",
                format!(
                    "no ledger entry for {} to record the failed collect in",
                    handle.key
                ),
                false,
            ));
        };
        let at = self.finisher.clock.now();
        entry.record_collect_failure(reason.to_owned(), at, attribution)?;
        self.ledger.update(&entry).await
    }

    async fn land_files(
        &self,
        handle: &RunHandle,
        paths: &ResultPaths,
    ) -> Result<Vec<ManifestFile>, HandlerError> {
        let vendor = self.vendors.for_request(&handle.request)?;
        let Some(vendor_run_id) = handle.vendor_run_id.as_deref() else {
            return Err(HandlerError::BadInput(format!(
                "{} has no vendor run to collect",
                handle.key
            )));
        };
        let run = RunRef {
            request: &handle.request,
            vendor_run_id,
        };
        let files = match vendor.results(run).await? {
            ResultsAvailability::Ready(files) => files,
            ResultsAvailability::NoFiles => return Ok(Vec::new()),
            ResultsAvailability::NotYet { reason, .. } => {
                return Err(HandlerError::Transient(format!(
                    "results not downloadable yet: {reason}"
                )))
            }
        };
        // Every file stays staged (stored, invisible) until all of them are whole: a failure on
        // any file aborts the others, so nothing of this attempt becomes visible.
        let mut staged: Vec<(ManifestFile, Box<dyn StagedObject>)> =
            Vec::with_capacity(files.len());
        for (index, file) in files.iter().enumerate() {
            match self
                .stream_file(vendor.as_ref(), file, &paths.part(index))
                .await
            {
                Ok(done) => staged.push(done),
                Err(e) => {
                    abort_all(staged).await;
                    return Err(e);
                }
            }
        }
        // Publishing moves no bytes. A failure (or crash) part-way leaves published parts
        // without a manifest, which readers ignore and the retry overwrites.
        let mut out = Vec::with_capacity(staged.len());
        let mut pending = staged.into_iter();
        while let Some((landed, object)) = pending.next() {
            if let Err(e) = object.publish().await {
                abort_all(pending.collect()).await;
                return Err(e);
            }
            out.push(landed);
        }
        Ok(out)
    }

    async fn stream_file(
        &self,
        vendor: &dyn Vendor,
        file: &ResultFile,
        key: &str,
    ) -> Result<(ManifestFile, Box<dyn StagedObject>), HandlerError> {
        let ResultStream {
            mut body,
            length: announced,
            expected,
        } = vendor.open_result(file).await?;
        let mut writer = self.finisher.sink.create(key).await?;
        // Digests and records are computed on blocking workers fed through bounded channels,
        // so hashing overlaps the download and the upload instead of stalling them.
        let digester = Digester::spawn(self.options.sha256, expected);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    writer.abort().await;
                    return Err(HandlerError::Transient(format!(
                        "download of {} broke after {size} bytes: {e}",
                        file.name
                    )));
                }
            };
            size += chunk.len() as u64;
            // Cheap: `Bytes` clones share the buffer. Fails only if the worker died, which the
            // join below reports.
            digester.feed(&chunk).await;
            if let Err(e) = writer.write(chunk).await {
                writer.abort().await;
                return Err(e);
            }
        }
        let digests = match digester.finish().await {
            Ok(d) => d,
            Err(e) => {
                writer.abort().await;
                return Err(HandlerError::port(
                    "digest",
                    format!("digest worker failed: {e}"),
                    true,
                ));
            }
        };
        if let Some(announced) = announced.filter(|n| *n != size) {
            writer.abort().await;
            return Err(HandlerError::Transient(format!(
                "download of {} has {size} bytes, {announced} announced",
                file.name
            )));
        }
        // The only promise a source makes today is an S3 ETag's MD5, hence the wording.
        if let Some(mismatch) = expected.and_then(|e| digests.mismatch(e)) {
            writer.abort().await;
            return Err(HandlerError::Transient(format!(
                "download of {} does not match its ETag: {mismatch}",
                file.name
            )));
        }
        let checksum = ObjectChecksum {
            crc64nvme: digests.crc64nvme,
        };
        let staged = writer.finish(checksum).await?;
        tracing::info!(file = %file.name, size, rows = digests.rows, verified_digest = expected.is_some(), "file staged");
        Ok((
            ManifestFile {
                key: key.to_owned(),
                size_bytes: size,
                rows: digests.rows,
                crc64nvme: Some(checksum.crc64nvme_base64()),
                sha256: digests.sha256.map(hex::encode).unwrap_or_default(),
            },
            staged,
        ))
    }
}

async fn abort_all(staged: Vec<(ManifestFile, Box<dyn StagedObject>)>) {
    for (_, object) in staged {
        object.abort().await;
    }
}
