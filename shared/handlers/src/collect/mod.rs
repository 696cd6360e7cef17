//! The collect handler: lands a finished run's results and announces the outcome.
//!
//! Each result file streams from the vendor straight to its final key (bounded memory; size, CSV
//! records, CRC-64/NVME and SHA-256 computed on the way) and stays invisible (S3: an incomplete
//! multipart upload) until it is checked against the announced size (and, for an S3 object whose
//! ETag is its MD5, against that digest — see [`s3_etag_md5`]). Only when every file of the run
//! is stored whole are they published (S3: `CompleteMultipartUpload`, which checks the full-object
//! CRC-64/NVME computed here against the parts it received), and the manifest is written last,
//! so whoever sees it sees complete files. A failure before that aborts every staged file. A run
//! that already has a manifest is not collected again.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::Md5;
use runbridge_core::{
    Attribution, Manifest, ManifestFile, ResultLayout, ResultPaths, RunHandle, RunOutcome, RunState,
};
use runbridge_vendors::{ResultFile, ResultsAvailability, RunRef, Vendor, Vendors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ports::{CollectFailure, Events, Ledger, ObjectChecksum, ResultSink, StagedObject};
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

/// The collect handler's dependencies.
pub struct Collector {
    /// Vendor clients.
    pub vendors: Vendors,
    /// Where results land.
    pub sink: Arc<dyn ResultSink>,
    /// Where outcomes are announced.
    pub events: Arc<dyn Events>,
    /// The idempotency ledger, where a collect that failed on our side is recorded.
    pub ledger: Arc<dyn Ledger>,
    /// Key layout.
    pub layout: ResultLayout,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The concurrency slots: given back when the run ends, renewed by each poll.
    pub slots: Arc<dyn crate::ports::Slots>,
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
        let paths = self.layout.paths(handle);
        let manifest_key = paths.manifest();
        if let Some((outcome, _)) = self.finish_existing(&paths).await? {
            return Ok(outcome);
        }
        if input.outcome == Outcome::Failed && handle.last_state() == RunState::Succeeded {
            // The vendor run succeeded; what failed was collecting it (our download policy, the
            // sink, …). A FAILED manifest would claim the vendor run failed and block every
            // later collect, so: no manifest, a record in the ledger, and a failed execution.
            let reason = input
                .reason
                .clone()
                .unwrap_or_else(|| "collect failed".into());
            self.record_collect_failure(handle, &reason, input.attribution)
                .await?;
            return Err(HandlerError::CollectFailed(reason));
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
        let outcome = RunOutcome::of(&manifest, manifest_key);
        self.announce(&outcome, &paths).await?;
        // Metrics once, when this call wrote the manifest: a retry that finds it does not count
        // the run again.
        crate::metrics::run_finished(
            handle,
            &outcome,
            started.elapsed().as_secs_f64(),
            self.clock.now(),
        );
        Ok(outcome)
    }

    /// When the run's manifest is already written (a retry, a duplicate event): announces it
    /// if no announcement was recorded (the event is at least once, its `event_id` dedupes) and
    /// returns its outcome, with whether this call announced it. `None` when there is no
    /// manifest.
    pub(crate) async fn finish_existing(
        &self,
        paths: &ResultPaths,
    ) -> Result<Option<(RunOutcome, bool)>, HandlerError> {
        let manifest_key = paths.manifest();
        let Some(existing) = self.sink.get(&manifest_key).await? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&existing).map_err(|e| {
            HandlerError::port("sink", format!("existing manifest unreadable: {e}"), false)
        })?;
        let outcome = RunOutcome::of(&manifest, manifest_key);
        let announce = self.sink.get(&paths.announced()).await?.is_none();
        if announce {
            tracing::info!(manifest_key = %outcome.manifest_key, "manifest present but not announced; announcing");
            self.announce(&outcome, paths).await?;
        } else {
            tracing::info!(manifest_key = %outcome.manifest_key, "manifest already present and announced");
        }
        Ok(Some((outcome, announce)))
    }

    /// Publishes the outcome, then records that it did. A crash or a failed `PutEvents` in
    /// between leaves no record, so the retried step publishes again.
    pub(crate) async fn announce(
        &self,
        outcome: &RunOutcome,
        paths: &ResultPaths,
    ) -> Result<(), HandlerError> {
        self.events.publish(outcome).await?;
        let record = serde_json::json!({
            "event_id": outcome.event_id,
            "detail_type": outcome.detail_type(),
            "at": self
                .clock
                .now()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
        self.sink
            .put(
                &paths.announced(),
                serde_json::to_vec(&record).expect("json").into(),
            )
            .await
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
        let count = entry.collect_failed.as_ref().map_or(0, |f| f.count) + 1;
        entry.collect_failed = Some(CollectFailure {
            reason: reason.to_owned(),
            at: self.clock.now(),
            count,
            attribution,
        });
        self.ledger.record_submitted(&entry).await
    }

    async fn land_files(
        &self,
        handle: &RunHandle,
        paths: &ResultPaths,
    ) -> Result<Vec<ManifestFile>, HandlerError> {
        let vendor = self.vendors.for_request(&handle.request)?;
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
        let mut writer = self.sink.create(key).await?;
        // Digests and records are computed on blocking workers fed through bounded channels,
        // so hashing overlaps the download and the upload instead of stalling them.
        let digester = Digester::spawn(self.options.sha256, expected_md5.is_some());
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
        if let Some(expected) = announced.filter(|n| *n != size) {
            writer.abort().await;
            return Err(HandlerError::Transient(format!(
                "download of {} has {size} bytes, {expected} announced",
                file.name
            )));
        }
        if let (Some(expected), Some(actual)) = (expected_md5, digests.md5) {
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
        let checksum = ObjectChecksum {
            crc64nvme: digests.crc64nvme,
        };
        let staged = writer.finish(checksum).await?;
        tracing::info!(file = %file.name, size, rows = digests.rows, verified_md5 = expected_md5.is_some(), "file staged");
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

/// Chunks in flight between the download and the digest worker. Small on purpose: a chunk is a
/// slice of the HTTP client's read buffer (up to a few hundred KiB) and keeps that buffer alive,
/// so 64 queued chunks measured as +36 MiB of peak RSS whenever hashing fell behind.
const DIGEST_QUEUE: usize = 4;

/// What the digest worker computed over a whole file.
struct Digests {
    sha256: Option<[u8; 32]>,
    crc64nvme: u64,
    md5: Option<[u8; 16]>,
    rows: u64,
}

/// SHA-256 (when asked), CRC-64/NVME and the CSV record count on one blocking thread, and MD5
/// (when asked) on a second one: MD5 is the slowest of them (about a third of SHA-256's speed
/// with SHA extensions), and on one thread together they capped collect at the digests' combined
/// speed (`bash bench/collect-quick.sh`: `digest` vs `download`).
struct Digester {
    main: tokio::sync::mpsc::Sender<Bytes>,
    worker: tokio::task::JoinHandle<Digests>,
    md5: Option<(
        tokio::sync::mpsc::Sender<Bytes>,
        tokio::task::JoinHandle<[u8; 16]>,
    )>,
}

impl Digester {
    fn spawn(with_sha256: bool, with_md5: bool) -> Self {
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
    async fn feed(&self, chunk: &Bytes) {
        let _ = self.main.send(chunk.clone()).await;
        if let Some((tx, _)) = &self.md5 {
            let _ = tx.send(chunk.clone()).await;
        }
    }

    /// Ends the input and waits for the digests.
    async fn finish(self) -> Result<Digests, tokio::task::JoinError> {
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

/// Counts CSV records in a byte stream with constant memory, exactly as `csv-core`'s default
/// reader delimits them (the property test keeps it as the oracle): `,` separates fields, `\n`,
/// `\r` and `\r\n` end a record, blank lines are no records, a field that *starts* with `"` is
/// quoted until a `"` that is not doubled (`""`), and newlines inside it do not end the record; a
/// `"` elsewhere in a field is an ordinary byte. A last record without a newline counts.
///
/// It jumps from one interesting byte to the next with `memchr` (`"` inside quotes; `"`, `\n`,
/// `\r` outside), so ordinary bytes cost what a vectorised search costs, not a state transition.
#[derive(Debug, Default, Clone)]
pub struct RowCounter {
    records: u64,
    /// Some byte of the current record has been seen (false at the start of a record).
    in_record: bool,
    /// Inside a quoted field.
    in_quotes: bool,
    /// Inside a quoted field, the last byte was a `"` whose meaning the next byte decides.
    quote_pending: bool,
    /// The last byte of the previous chunk (decides whether a `"` at offset 0 starts a field).
    last: u8,
}

impl RowCounter {
    /// Feeds the next bytes.
    pub fn feed(&mut self, input: &[u8]) {
        let mut i = 0;
        let n = input.len();
        while i < n {
            if self.quote_pending {
                self.quote_pending = false;
                if input[i] == b'"' {
                    // `""`: a literal quote, still inside the quoted field.
                    i += 1;
                    continue;
                }
                // The quote closed the field; this byte is read outside quotes.
                self.in_quotes = false;
            }
            if self.in_quotes {
                match memchr::memchr(b'"', &input[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.quote_pending = true;
                    }
                    None => i = n,
                }
                continue;
            }
            match memchr::memchr3(b'"', b'\n', b'\r', &input[i..]) {
                None => {
                    self.in_record = true;
                    i = n;
                }
                Some(at) => {
                    let pos = i + at;
                    if at > 0 {
                        self.in_record = true;
                    }
                    if input[pos] == b'"' {
                        let prev = if pos > 0 { input[pos - 1] } else { self.last };
                        if !self.in_record || prev == b',' {
                            self.in_quotes = true;
                        }
                        self.in_record = true;
                    } else if self.in_record {
                        self.records += 1;
                        self.in_record = false;
                    }
                    i = pos + 1;
                }
            }
        }
        if let Some(&b) = input.last() {
            self.last = b;
        }
    }

    /// Records seen, counting a final record without a trailing newline.
    pub fn records(&self) -> u64 {
        self.records + u64::from(self.in_record)
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
        assert_eq!(
            count(&[b"a,\"x\"\"\ny\"\r\n\r\n\nb"]),
            2,
            "escaped quote, CRLF, blank lines"
        );
        assert_eq!(
            count(&[b"a\"b\nc\n"]),
            2,
            "a quote inside an unquoted field is literal"
        );
        assert_eq!(
            count(&[b"\"a\"", b"\"", b"\n\"\n"]),
            1,
            "escape split across chunks"
        );
    }

    /// csv-core's default reader, the oracle.
    fn csv_core_records(input: &[u8]) -> u64 {
        use csv_core::ReadRecordResult::*;
        let mut reader = csv_core::Reader::new();
        let (mut out, mut ends) = (vec![0; 1 << 16], vec![0; 1024]);
        let (mut records, mut rest) = (0, input);
        loop {
            let (result, consumed, _, _) = reader.read_record(rest, &mut out, &mut ends);
            rest = &rest[consumed..];
            match result {
                InputEmpty if rest.is_empty() => {
                    // End of input: let the reader flush a last record without a newline.
                    match reader.read_record(&[], &mut out, &mut ends).0 {
                        Record => records += 1,
                        _ => return records,
                    }
                }
                Record => records += 1,
                End => return records,
                _ => {}
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any mix of the bytes that matter, cut into chunks anywhere, counts as csv-core does.
        #[test]
        fn counts_like_csv_core(
            input in proptest::collection::vec(
                proptest::sample::select(b"a,\"\n\r ".to_vec()), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut counter = RowCounter::default();
            let mut from = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                counter.feed(&input[from..cut]);
                from = cut;
            }
            proptest::prop_assert_eq!(counter.records(), csv_core_records(&input));
        }

        /// RFC 4180 documents: quoted fields with newlines and `""`, CRLF or LF, blank lines,
        /// with or without a last newline.
        #[test]
        fn counts_rfc4180_like_csv_core(
            rows in proptest::collection::vec(proptest::collection::vec(
                (proptest::bool::ANY, "[a-z \"\n\r,]{0,6}"), 1..4), 0..8),
            crlf in proptest::bool::ANY,
            blank_lines in proptest::collection::vec(0usize..8, 0..3),
            last_newline in proptest::bool::ANY,
            chunk in 1usize..17,
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut doc = String::new();
            for (i, row) in rows.iter().enumerate() {
                let fields: Vec<String> = row.iter().map(|(quoted, text)| {
                    if *quoted || text.contains(['"', ',', '\n', '\r']) {
                        format!("\"{}\"", text.replace('"', "\"\""))
                    } else {
                        text.clone()
                    }
                }).collect();
                doc.push_str(&fields.join(","));
                if i + 1 < rows.len() || last_newline {
                    doc.push_str(eol);
                }
                if blank_lines.contains(&i) {
                    doc.push_str(eol);
                }
            }
            let mut counter = RowCounter::default();
            for piece in doc.as_bytes().chunks(chunk) {
                counter.feed(piece);
            }
            proptest::prop_assert_eq!(counter.records(), csv_core_records(doc.as_bytes()));
        }
    }
}
