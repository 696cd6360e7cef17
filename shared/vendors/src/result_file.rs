//! [`ResultFile`]: one downloadable result file, as a vendor announces it; a leaf that the
//! vendor trait, the download guard and the result stream all name.

use secrecy::SecretString;

/// One downloadable result file.
#[derive(Debug, Clone)]
pub struct ResultFile {
    /// A name for logs and manifests (never the URL: presigned URLs are credentials).
    pub name: String,
    /// Where to fetch it.
    pub url: SecretString,
    /// Size announced by the vendor, if any, checked against the bytes received.
    pub size_hint: Option<u64>,
    /// When set, the file is fetched with a `POST` of this JSON body instead of a `GET` (CARTO's
    /// `POST /query`: never cached, no URL-length limit).
    pub post_json: Option<serde_json::Value>,
}
