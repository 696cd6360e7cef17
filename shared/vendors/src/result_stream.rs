//! What a vendor hands over for one result file ([`crate::Vendor::open_result`]): the bytes as a
//! stream, the length announced for them and the digest the source promises, so that whoever
//! lands the file checks it without knowing which vendor or store served it. How a response
//! becomes one — which answers are errors, and which source promises which digest (S3's ETag,
//! [`s3_etag_md5`]) — is decided here, in the vendor layer.

use std::fmt;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use runbridge_core::VendorKind;

use crate::download::{self, DownloadPolicy};
use crate::http::{describe, HttpClient};
use crate::{ResultFile, VendorError};

/// One result file, opened: read [`ResultStream::body`] to its end, then check the bytes against
/// [`ResultStream::length`] and [`ResultStream::expected`].
pub struct ResultStream {
    /// The file's bytes. An error ends the download (a broken connection, a stall longer than
    /// the client's idle timeout): it is retryable, a new download may succeed.
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
    /// The stream of a successful download `response` of `file` from `vendor`.
    pub fn from_response(
        vendor: VendorKind,
        file: &ResultFile,
        response: reqwest::Response,
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
        let body = response
            .bytes_stream()
            .map(move |chunk| {
                chunk.map_err(|e| VendorError::Unavailable {
                    vendor,
                    status: None,
                    message: describe(&e),
                })
            })
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
    Ok(ResultStream::from_response(vendor, file, response))
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
