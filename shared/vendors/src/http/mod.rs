//! HTTP machinery shared by every vendor module: one retry loop, one error mapping.
//!
//! The loop retries transient failures (429, 5xx, timeouts, broken connections) with jittered
//! exponential backoff, waiting at least as long as the vendor's `Retry-After`. What it retries
//! depends on [`Idempotency`]: a read may be repeated freely, but a submit is repeated only when
//! the vendor certainly did not act on it (connection refused, 429, 503); any other failure after
//! the bytes left is [`VendorError::OutcomeUnknown`], because a blind retry could start a second,
//! billable vendor run.
//!
//! This module holds the client and its public API; one file per concern beside it:
//! - `retry` — [`RetryConfig`], `Retry-After`, and the retry loop;
//! - `classify` — what an answer or a transport error means (retry, fail, or the caller's), and
//!   [`status_error`];
//! - `redact` — [`redact`]: no registered secret, presigned URL's query or bearer credential in
//!   any error text;
//! - `tls` — the one TLS configuration every client shares;
//! - [`deadline`] — the call deadline of an invocation ([`within_deadline`]);
//! - `counts` — throttles and submit retries of one invocation's work ([`counted`]).
//!
//! This module knows nothing of tokens: [`crate::auth`] builds on it (fetching tokens with
//! [`HttpClient::send_read`]) and adds [`HttpClient::send_authorized`], so the dependency runs
//! one way, auth → http.

mod classify;
mod counts;
pub mod deadline;
mod redact;
mod retry;
mod tls;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use runbridge_core::VendorKind;
use serde::de::DeserializeOwned;

pub(crate) use classify::describe;
pub use classify::status_error;
pub use counts::{counted, CallCounts};
pub use deadline::{within_deadline, within_invocation, VENDOR_CALL_MARGIN};
pub(crate) use redact::snippet;
pub use redact::{redact, redact_query_strings, register, register_url};
pub use retry::{retry_after, MinRate, RetryConfig};

use classify::with_vendor_message;
use retry::Attempt;

use crate::VendorError;

/// Whether a request may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, cancels and other requests whose repetition is harmless.
    Safe,
    /// Requests that create something (a run): never repeated once they may have arrived.
    Unsafe,
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl ApiResponse {
    /// Parses the body as JSON, naming the vendor in the error.
    pub fn json<T: DeserializeOwned>(&self, vendor: VendorKind) -> Result<T, VendorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            // serde quotes the offending value, which may be a signed URL: scrub it like the body.
            VendorError::protocol(
                vendor,
                format!(
                    "{} body did not parse: {}: {}",
                    self.status,
                    redact(&e.to_string()),
                    snippet(&self.body)
                ),
            )
        })
    }

    /// The response when its status is a success; otherwise the error `to_error` maps it to (each
    /// vendor module passes its own error-body mapping).
    pub fn success_or(
        self,
        to_error: impl FnOnce(&ApiResponse) -> VendorError,
    ) -> Result<Self, VendorError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(to_error(&self))
        }
    }

    /// The body as (lossy) text, truncated for messages.
    pub fn text_snippet(&self) -> String {
        snippet(&self.body)
    }

    /// `Retry-After` in seconds, if given.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        retry_after(&self.headers).map(|d| d.as_secs())
    }
}

/// An HTTP client bound to one vendor account (a credential profile), with its retry policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryConfig,
    vendor: VendorKind,
    /// The credential profile whose calls these are (its name only), for the throttle and retry
    /// counts ([`counted`]).
    profile: std::sync::Arc<str>,
    /// Taken from before every attempt (retries and token fetches included).
    rate: Option<crate::rate::RateGate>,
}

impl HttpClient {
    /// A client for `vendor`. Redirects are not followed: vendor APIs do not redirect, and
    /// downloads check every hop themselves (see [`crate::download`]).
    ///
    /// TLS trusts the bundled webpki roots and the platform's (`SSL_CERT_FILE` / `SSL_CERT_DIR`
    /// included, for corporate TLS-inspecting proxies); `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`
    /// are honoured.
    pub fn new(vendor: VendorKind, retry: RetryConfig) -> Result<Self, VendorError> {
        Self::build(vendor, retry, |b| b)
    }

    /// Like [`Self::new`], resolving host names through `resolver` (the download guard's
    /// [`crate::resolve::GuardedResolver`], which checks the addresses the connection uses).
    pub fn with_resolver<R: reqwest::dns::Resolve + 'static>(
        vendor: VendorKind,
        retry: RetryConfig,
        resolver: std::sync::Arc<R>,
    ) -> Result<Self, VendorError> {
        Self::build(vendor, retry, |b| b.dns_resolver(resolver))
    }

    fn build(
        vendor: VendorKind,
        retry: RetryConfig,
        extra: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, VendorError> {
        let tls = tls::shared_tls_config().map_err(|message| VendorError::Config {
            vendor,
            setting: "http".into(),
            message,
        })?;
        let builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(retry.connect_timeout)
            .read_timeout(retry.idle_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("runbridge/", env!("CARGO_PKG_VERSION")));
        let client = extra(builder).build().map_err(|e| VendorError::Config {
            vendor,
            setting: "http".into(),
            message: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(Self {
            client,
            retry,
            vendor,
            profile: runbridge_core::DEFAULT_PROFILE.into(),
            rate: None,
        })
    }

    /// This client (same connections) counting its throttles and submit retries under the
    /// credential profile `profile` (the vendor's `default` profile until set).
    pub fn for_profile(mut self, profile: &str) -> Self {
        self.profile = profile.into();
        self
    }

    /// The credential profile this client's calls are counted under.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// This client (same connections) with every attempt taking its turn from `rate` first.
    pub fn with_rate_limit(mut self, rate: crate::rate::RateGate) -> Self {
        self.rate = Some(rate);
        self
    }

    /// The vendor this client talks to.
    pub fn vendor(&self) -> VendorKind {
        self.vendor
    }

    /// The retry settings.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    /// The underlying client, for streaming downloads.
    pub fn raw(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request built by `build` and reads the whole body, retrying per `idempotency`.
    /// Returns every non-retryable response, 4xx included: the vendor module maps its error shape.
    pub async fn send_read<F>(
        &self,
        idempotency: Idempotency,
        build: F,
    ) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.send_read_keeping(idempotency, build, true).await
    }

    /// [`HttpClient::send_read`] for a credential endpoint (a token URL): no error it makes, and
    /// so no retry WARN line, ever carries the answer's body, which may echo the secret sent.
    pub async fn send_read_credential<F>(
        &self,
        idempotency: Idempotency,
        build: F,
    ) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.send_read_keeping(idempotency, build, false).await
    }

    async fn send_read_keeping<F>(
        &self,
        idempotency: Idempotency,
        build: F,
        keep_vendor_message: bool,
    ) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.retrying(idempotency, || async {
            let sent = build(&self.client)
                .timeout(self.retry.request_timeout)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => return self.classify_transport(idempotency, &e, false),
            };
            let status = response.status();
            let headers = response.headers().clone();
            if let Some(attempt) = self.classify_status(idempotency, status, &headers) {
                // Keep the vendor's own words (e.g. AMC's concurrency-limit message) in the error
                // the caller sees once retries are exhausted.
                let body = response.bytes().await.unwrap_or_default();
                if !keep_vendor_message {
                    return attempt;
                }
                return with_vendor_message(attempt, &body);
            }
            match response.bytes().await {
                Ok(body) => Attempt::Done(ApiResponse {
                    status,
                    headers,
                    body,
                }),
                // The vendor answered, so a submit was applied; only the body was lost.
                Err(e) => self.classify_transport(idempotency, &e, status.is_success()),
            }
        })
        .await
    }

    /// Sends a request and returns the response with its body unread (for streaming), retrying
    /// until headers arrive. Only for safe requests.
    pub async fn send_streaming<F>(&self, build: F) -> Result<reqwest::Response, VendorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    {
        self.retrying(Idempotency::Safe, || async {
            // The body is read later, chunk by chunk, under the client's idle timeout; here only
            // the wait for the headers is bounded.
            let sent = tokio::time::timeout(self.retry.request_timeout, build(&self.client).send());
            match sent.await {
                Ok(Ok(r)) => match self.classify_status(Idempotency::Safe, r.status(), r.headers())
                {
                    Some(attempt) => attempt,
                    None => Attempt::Done(r),
                },
                Ok(Err(e)) => self.classify_transport(Idempotency::Safe, &e, false),
                Err(_) => Attempt::Retry {
                    after: None,
                    error: VendorError::Unavailable {
                        vendor: self.vendor,
                        status: None,
                        message: format!(
                            "timed out: no response headers within {} s (first-byte timeout)",
                            self.retry.request_timeout.as_secs_f64()
                        ),
                    },
                },
            }
        })
        .await
    }
}
