//! The collect handler: lands a finished run's results and announces the outcome.
//!
//! Each result file streams from the vendor into the sink under the staging prefix (bounded
//! memory; size, CSV records and SHA-256 computed on the way), is checked against the announced
//! size (and, for an S3 object whose ETag is its MD5, against that digest — see
//! [`s3_etag_md5`]), and only then published under its final key. The manifest is written last, so whoever
//! sees it sees complete files. A run that already has a manifest is not collected again.

use std::sync::Arc;

use futures::StreamExt;
use md5::Md5;
use runbridge_core::{
    Attribution, Manifest, ManifestFile, ResultLayout, ResultPaths, RunHandle, RunState,
};
use runbridge_vendors::{ResultFile, ResultsAvailability, RunRef, Vendor, Vendors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ports::{Events, ResultSink, RunEvent};
use crate::{Clock, HandlerError};

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

/// The collect state's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectOutput {
    /// Key of the manifest.
    pub manifest_key: String,
    /// Files published.
    pub files: usize,
    /// Bytes published.
    pub bytes: u64,
    /// CSV records published (headers included).
    pub rows: u64,
    /// Final state.
    pub state: RunState,
}

/// The collect handler's dependencies.
pub struct Collector {
    /// Vendor clients.
    pub vendors: Vendors,
    /// Where results land.
    pub sink: Arc<dyn ResultSink>,
    /// Where outcomes are announced.
    pub events: Arc<dyn Events>,
    /// Key layout.
    pub layout: ResultLayout,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl Collector {
    /// Collects (or records the failure of) one run.
    pub async fn collect(&self, input: CollectInput) -> Result<CollectOutput, HandlerError> {
        let handle = &input.handle;
        let paths = self.layout.paths(handle);
        let manifest_key = paths.manifest();
        if let Some(existing) = self.sink.get(&manifest_key).await? {
            // A retry after the manifest was written: the work is done, announce nothing twice.
            let manifest: Manifest = serde_json::from_slice(&existing).map_err(|e| {
                HandlerError::port("sink", format!("existing manifest unreadable: {e}"), false)
            })?;
            tracing::info!(%manifest_key, "manifest already present; nothing to do");
            return Ok(output(&manifest, manifest_key));
        }
        let (state, reason, attribution, files) = match input.outcome {
            Outcome::Failed => (
                handle
                    .last_state()
                    .is_final()
                    .then(|| handle.last_state())
                    .filter(|s| *s != RunState::Succeeded)
                    .unwrap_or(RunState::Failed),
                Some(input.reason.clone().unwrap_or_else(|| "run failed".into())),
                Some(input.attribution.unwrap_or(Attribution::Platform)),
                Vec::new(),
            ),
            Outcome::Succeeded => (
                RunState::Succeeded,
                None,
                None,
                self.land_files(handle, &paths).await?,
            ),
        };
        let manifest = Manifest::new(handle, state, reason, attribution, files, self.clock.now());
        let body = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
        self.sink.put(&manifest_key, body.into()).await?;
        let out = output(&manifest, manifest_key);
        self.events
            .publish(&RunEvent {
                detail_type: if state == RunState::Succeeded {
                    "Run Completed"
                } else {
                    "Run Failed"
                }
                .into(),
                key: handle.key.to_string(),
                vendor: handle.vendor().to_string(),
                vendor_run_id: handle.vendor_run_id.clone(),
                state,
                reason: manifest.reason.clone(),
                attribution: manifest.attribution,
                manifest_key: out.manifest_key.clone(),
                files: out.files,
                bytes: out.bytes,
            })
            .await?;
        Ok(out)
    }

    async fn land_files(
        &self,
        handle: &RunHandle,
        paths: &ResultPaths,
    ) -> Result<Vec<ManifestFile>, HandlerError> {
        let vendor = self.vendors.get(handle.vendor())?;
        let run = RunRef {
            request: &handle.request,
            vendor_run_id: &handle.vendor_run_id,
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
        let mut staged = Vec::with_capacity(files.len());
        for (index, file) in files.iter().enumerate() {
            let staging_key = paths.staging_part(index);
            let mut landed = self
                .stream_file(vendor.as_ref(), file, &staging_key)
                .await?;
            landed.key = paths.part(index);
            staged.push((staging_key, landed));
        }
        // Publish only when every file landed whole: a failure above leaves nothing visible.
        let mut out = Vec::with_capacity(staged.len());
        for (staging_key, landed) in staged {
            self.sink.publish(&staging_key, &landed.key).await?;
            out.push(landed);
        }
        Ok(out)
    }

    async fn stream_file(
        &self,
        vendor: &dyn Vendor,
        file: &ResultFile,
        key: &str,
    ) -> Result<ManifestFile, HandlerError> {
        let response = vendor.open_result(file).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(HandlerError::Transient(format!(
                "download of {} answered {status}",
                file.name
            )));
        }
        let announced = response.content_length().or(file.size_hint);
        let expected_md5 = s3_etag_md5(|name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let mut md5 = expected_md5.map(|_| Md5::new());
        let mut writer = self.sink.create(key).await?;
        let mut hasher = Sha256::new();
        let mut rows = RowCounter::default();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
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
            hasher.update(&chunk);
            if let Some(md5) = md5.as_mut() {
                md5.update(&chunk);
            }
            rows.feed(&chunk);
            size += chunk.len() as u64;
            if let Err(e) = writer.write(chunk).await {
                writer.abort().await;
                return Err(e);
            }
        }
        if let Some(expected) = announced.filter(|n| *n != size) {
            writer.abort().await;
            return Err(HandlerError::Transient(format!(
                "download of {} has {size} bytes, {expected} announced",
                file.name
            )));
        }
        if let (Some(expected), Some(md5)) = (expected_md5, md5) {
            let actual: [u8; 16] = md5.finalize().into();
            if actual != expected {
                writer.abort().await;
                return Err(HandlerError::Transient(format!(
                    "download of {} does not match its ETag: MD5 {} received, {} stored",
                    file.name,
                    hex::encode(actual),
                    hex::encode(expected)
                )));
            }
        }
        writer.finish().await?;
        tracing::info!(file = %file.name, size, rows = rows.records(), verified_md5 = expected_md5.is_some(), "file staged");
        Ok(ManifestFile {
            key: key.to_owned(),
            size_bytes: size,
            rows: rows.records(),
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// The MD5 an S3 object's ETag promises, when it promises one; `header` reads a response header.
///
/// S3 documents that the ETag of an object uploaded in one part and stored unencrypted or with
/// SSE-S3 is the hex MD5 of its bytes, and that it is not for multipart uploads (`"…-N"`) nor for
/// SSE-KMS, DSSE-KMS or SSE-C objects, which GET announces with `x-amz-server-side-encryption`
/// or `x-amz-server-side-encryption-customer-algorithm`. Only responses S3 served (they carry
/// `x-amz-request-id`) are held to this: another server's ETag is an opaque version tag.
/// Verification needs no extra request or header, so it also works on presigned URLs.
pub fn s3_etag_md5(header: impl Fn(&str) -> Option<String>) -> Option<[u8; 16]> {
    header("x-amz-request-id")?;
    if header("x-amz-server-side-encryption-customer-algorithm").is_some() {
        return None;
    }
    if header("x-amz-server-side-encryption")
        .is_some_and(|sse| sse.trim().to_ascii_lowercase().starts_with("aws:kms"))
    {
        return None;
    }
    let etag = header("etag")?;
    let hex_digest = etag.trim().strip_prefix('"')?.strip_suffix('"')?;
    if hex_digest.len() != 32 {
        return None;
    }
    hex::decode(hex_digest).ok()?.try_into().ok()
}

fn output(manifest: &Manifest, manifest_key: String) -> CollectOutput {
    CollectOutput {
        manifest_key,
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        rows: manifest.files.iter().map(|f| f.rows).sum(),
        state: manifest.state,
    }
}

/// Counts CSV records in a byte stream with constant memory, honouring quoted fields (a newline
/// inside quotes does not end a record).
pub struct RowCounter {
    reader: csv_core::Reader,
    records: u64,
    field_scratch: Vec<u8>,
    ends_scratch: Vec<usize>,
}

impl Default for RowCounter {
    fn default() -> Self {
        Self {
            reader: csv_core::Reader::new(),
            records: 0,
            field_scratch: vec![0; 64 * 1024],
            ends_scratch: vec![0; 1024],
        }
    }
}

impl RowCounter {
    /// Feeds the next bytes.
    pub fn feed(&mut self, mut input: &[u8]) {
        use csv_core::ReadRecordResult::*;
        loop {
            let (result, consumed, _, _) =
                self.reader
                    .read_record(input, &mut self.field_scratch, &mut self.ends_scratch);
            input = &input[consumed..];
            match result {
                // Field bytes are not needed: reuse the scratch buffers and go on.
                InputEmpty => break,
                OutputFull | OutputEndsFull => continue,
                Record => self.records += 1,
                End => break,
            }
        }
    }

    /// Records seen, counting a final record without a trailing newline.
    pub fn records(&mut self) -> u64 {
        let (result, _, _, _) =
            self.reader
                .read_record(&[], &mut self.field_scratch, &mut self.ends_scratch);
        if matches!(result, csv_core::ReadRecordResult::Record) {
            self.records += 1;
        }
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::{s3_etag_md5, RowCounter};

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn only_a_single_part_unencrypted_s3_etag_is_taken_as_md5() {
        let md5 = "9e107d9d372bb6826bd81d3542a419d6";
        let etag = format!("\"{md5}\"");
        let s3 = [
            ("x-amz-request-id", "4442587FB7D0A2F9"),
            ("etag", etag.as_str()),
        ];
        assert_eq!(
            s3_etag_md5(headers(&s3)).map(hex::encode).as_deref(),
            Some(md5)
        );
        let sse_s3 = [s3[0], s3[1], ("x-amz-server-side-encryption", "AES256")];
        assert!(
            s3_etag_md5(headers(&sse_s3)).is_some(),
            "SSE-S3 keeps MD5 ETags"
        );
        for (what, pairs) in [
            ("not S3", vec![("etag", etag.as_str())]),
            (
                "multipart",
                vec![s3[0], ("etag", "\"9e107d9d372bb6826bd81d3542a419d6-3\"")],
            ),
            (
                "weak",
                vec![s3[0], ("etag", "W/\"9e107d9d372bb6826bd81d3542a419d6\"")],
            ),
            ("unquoted", vec![s3[0], ("etag", md5)]),
            (
                "not hex",
                vec![s3[0], ("etag", "\"zz107d9d372bb6826bd81d3542a419d6\"")],
            ),
            (
                "SSE-KMS",
                vec![s3[0], s3[1], ("x-amz-server-side-encryption", "aws:kms")],
            ),
            (
                "DSSE-KMS",
                vec![
                    s3[0],
                    s3[1],
                    ("x-amz-server-side-encryption", "aws:kms:dsse"),
                ],
            ),
            (
                "SSE-C",
                vec![
                    s3[0],
                    s3[1],
                    ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ],
            ),
        ] {
            assert_eq!(s3_etag_md5(headers(&pairs)), None, "{what}");
        }
    }

    fn count(chunks: &[&[u8]]) -> u64 {
        let mut c = RowCounter::default();
        for chunk in chunks {
            c.feed(chunk);
        }
        c.records()
    }

    #[test]
    fn counts_records_across_chunks_and_quotes() {
        assert_eq!(count(&[b"a,b\n1,2\n"]), 2);
        assert_eq!(count(&[b"a,b\n1,\"x\ny\"\n"]), 2, "newline inside quotes");
        assert_eq!(
            count(&[b"a,b\n1,\"x", b"\ny\"\n3,4"]),
            3,
            "split chunks, no trailing newline"
        );
        assert_eq!(count(&[b""]), 0);
    }
}
