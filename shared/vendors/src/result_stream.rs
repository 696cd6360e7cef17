//! What a vendor hands over for one result file ([`crate::Vendor::open_result`]): the bytes as a
//! stream, the length announced for them and the digest the source promises, so that whoever
//! lands the file checks it without knowing which vendor or store served it. How a response
//! becomes one — which answers are errors, and which source promises which digest (S3's ETag,
//! [`s3_etag_md5`]) — is decided here, in the vendor layer.

use std::fmt;

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use runbridge_core::VendorKind;
use tokio::time::Instant;

use crate::download::{self, DownloadPolicy};
use crate::http::{describe, HttpClient, MinRate, RetryConfig};
use crate::{ResultFile, VendorError};

/// One result file, opened: read [`ResultStream::body`] to its end, then check the bytes against
/// [`ResultStream::length`] and [`ResultStream::expected`].
pub struct ResultStream {
    /// The file's bytes. An error ends the download (a broken connection, a stall longer than
    /// the client's idle timeout, a drip below its minimum rate; the message names the timeout
    /// that fired): it is retryable, a new download may succeed.
    pub body: BoxStream<'static, Result<Bytes, VendorError>>,
    /// The size announced for the file (the response's `Content-Length`, else the vendor's
    /// listing), which the bytes received must match.
    pub length: Option<u64>,
    /// The digest the source promises for the bytes, when it promises one.
    pub expected: Option<ExpectedDigest>,
}

/// A digest the source of a download promises its bytes have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedDigest {
    /// The MD5 of the bytes (an S3 object's ETag, see [`s3_etag_md5`]).
    Md5([u8; 16]),
}

impl fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultStream")
            .field("length", &self.length)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ResultStream {
    /// The stream of a successful download `response` of `file` from `vendor`, held to the idle
    /// timeout and minimum rate of `limits`.
    pub fn from_response(
        vendor: VendorKind,
        file: &ResultFile,
        response: reqwest::Response,
        limits: &RetryConfig,
    ) -> Self {
        let length = response.content_length().or(file.size_hint);
        let headers = response.headers();
        let expected = s3_etag_md5(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .map(ExpectedDigest::Md5);
        let idle = limits.idle_timeout;
        let body = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| VendorError::Unavailable {
                vendor,
                status: None,
                // reqwest's own read timeout is the idle timeout: say so.
                message: if e.is_timeout() {
                    format!(
                        "timed out: no data for {} s (idle timeout): {}",
                        idle.as_secs_f64(),
                        describe(&e)
                    )
                } else {
                    describe(&e)
                },
            })
        });
        let body = watched(
            body,
            vendor,
            file.name.clone(),
            limits.idle_timeout,
            limits.min_download_rate,
        )
        .boxed();
        Self {
            body,
            length,
            expected,
        }
    }

    /// The whole body in memory (tests, small files): no length or digest check.
    pub async fn bytes(mut self) -> Result<Bytes, VendorError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.body.next().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(all.into())
    }
}

/// `body` failing when no chunk arrives for `idle` (the idle timeout) or when a whole
/// `min_rate.per` passes with fewer than `min_rate.bytes` (the minimum-rate timeout): a source
/// that drips a byte every few seconds never trips the idle timer, so without the rate it could
/// hold a collect until its Lambda dies. The error names the timeout that fired.
pub fn watched<S>(
    body: S,
    vendor: VendorKind,
    name: String,
    idle: Duration,
    min_rate: MinRate,
) -> impl Stream<Item = Result<Bytes, VendorError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, VendorError>> + Send + 'static,
{
    struct Watch<S> {
        body: std::pin::Pin<Box<S>>,
        last_chunk: Instant,
        window_start: Instant,
        window_bytes: u64,
        total: u64,
        done: bool,
    }
    let now = Instant::now();
    let state = Watch {
        body: Box::pin(body),
        last_chunk: now,
        window_start: now,
        window_bytes: 0,
        total: 0,
        done: false,
    };
    let timed_out = move |message: String| VendorError::Unavailable {
        vendor,
        status: None,
        message: format!("download of {name} timed out: {message}"),
    };
    futures::stream::unfold(state, move |mut w| {
        let timed_out = timed_out.clone();
        async move {
            if w.done {
                return None;
            }
            loop {
                let idle_deadline = w.last_chunk.checked_add(idle).unwrap_or_else(far_future);
                let window_end = w
                    .window_start
                    .checked_add(min_rate.per)
                    .unwrap_or_else(far_future);
                let deadline = idle_deadline.min(window_end);
                match tokio::time::timeout_at(deadline, w.body.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        let now = Instant::now();
                        w.last_chunk = now;
                        w.total += chunk.len() as u64;
                        w.window_bytes += chunk.len() as u64;
                        return Some((Ok(chunk), w));
                    }
                    Ok(Some(Err(e))) => {
                        w.done = true;
                        return Some((Err(e), w));
                    }
                    Ok(None) => return None,
                    Err(_) if Instant::now() >= idle_deadline => {
                        w.done = true;
                        let error = timed_out(format!(
                            "no data for {} s after {} bytes (idle timeout)",
                            idle.as_secs_f64(),
                            w.total
                        ));
                        return Some((Err(error), w));
                    }
                    Err(_) if w.window_bytes < min_rate.bytes => {
                        w.done = true;
                        let error = timed_out(format!(
                            "{} bytes in the last {} s, below the minimum of {} bytes per {} s \
                             (minimum-rate timeout; {} bytes in all)",
                            w.window_bytes,
                            min_rate.per.as_secs_f64(),
                            min_rate.bytes,
                            min_rate.per.as_secs_f64(),
                            w.total
                        ));
                        return Some((Err(error), w));
                    }
                    Err(_) => {
                        // The interval ended at or above the rate: the next one starts.
                        w.window_start = Instant::now();
                        w.window_bytes = 0;
                    }
                }
            }
        }
    })
}

/// An instant no timer reaches (about 30 years ahead), for deadlines too far to represent.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Opens `file` under `policy` ([`download::open`]: `bearer` goes to the first host only), for a
/// vendor whose download answers carry no error shape of their own: any answer but a success is
/// [`VendorError::Unavailable`] (retryable: an expired presigned URL is replaced by the next
/// listing).
pub async fn open(
    http: &HttpClient,
    policy: &DownloadPolicy,
    file: &ResultFile,
    bearer: Option<&str>,
) -> Result<ResultStream, VendorError> {
    let vendor = http.vendor();
    let response = download::open(http, policy, file, bearer).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(VendorError::Unavailable {
            vendor,
            status: Some(status.as_u16()),
            message: format!("download of {} answered {status}", file.name),
        });
    }
    Ok(ResultStream::from_response(
        vendor,
        file,
        response,
        http.retry_config(),
    ))
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

#[cfg(test)]
mod tests {
    use super::s3_etag_md5;

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
}
