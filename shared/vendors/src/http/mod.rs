//! HTTP machinery shared by every vendor module: one retry loop, one error mapping.
//!
//! The loop retries transient failures (429, 5xx, timeouts, broken connections) with jittered
//! exponential backoff, waiting at least as long as the vendor's `Retry-After`. What it retries
//! depends on [`Idempotency`]: a read may be repeated freely, but a submit is repeated only when
//! the vendor certainly did not act on it (connection refused, 429, 503); any other failure after
//! the bytes left is [`VendorError::OutcomeUnknown`], because a blind retry could start a second,
//! billable vendor run.
//!
//! This module knows nothing of tokens: [`crate::auth`] builds on it (fetching tokens with
//! [`HttpClient::send_read`]) and adds [`HttpClient::send_authorized`], so the dependency runs
//! one way, auth → http.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use runbridge_core::VendorKind;
use serde::de::DeserializeOwned;

use crate::VendorError;

/// Retry and timeout settings; the defaults suit vendor control-plane APIs.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out in-process: the caller gets
    /// [`VendorError::Throttled`] and waits at the workflow level (a Step Functions Wait is free,
    /// a sleeping Lambda is not).
    pub max_retry_after: Duration,
    /// Whole-request timeout (connect, send, and for [`HttpClient::send_read`] the body).
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence between two reads of a response, headers or body chunks alike
    /// (reqwest's `read_timeout`, reset by every read): a download that sends its headers and
    /// then stalls fails after this instead of hanging collect until its Lambda times out.
    /// [`HttpClient::send_streaming`] also bounds the wait for headers by `request_timeout`.
    pub idle_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// Short delays for tests against the simulators.
    pub fn fast() -> Self {
        Self {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(2),
            ..Self::default()
        }
    }
}

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
                    redact_query_strings(&e.to_string()),
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

/// `text` with the query string of every URL in it replaced by `?…`: a presigned URL's query
/// (`X-Amz-Signature`, `X-Amz-Security-Token`, `sig=`) is a credential, and error text ends up in
/// logs, manifests and dead-letter messages.
pub fn redact_query_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_url(rest) {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.find(['?', '#']) {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

fn snippet(body: &[u8]) -> String {
    let text = redact_query_strings(&String::from_utf8_lossy(body));
    let mut s: String = text.chars().take(500).collect();
    if text.chars().count() > 500 {
        s.push('…');
    }
    s
}

/// Parses `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The TLS configuration every client of the process shares: the bundled webpki roots plus the
/// platform's (`SSL_CERT_FILE` / `SSL_CERT_DIR` included), offering HTTP/2 and HTTP/1.1.
///
/// Why once: reading the platform's root store costs tens of milliseconds per client, paid on
/// every client build (cold starts, and every test that builds a client) when reqwest loads it.
fn shared_tls_config() -> Result<rustls::ClientConfig, String> {
    static TLS: std::sync::OnceLock<Result<rustls::ClientConfig, String>> =
        std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Unreadable platform certificates are skipped, as reqwest does: the bundled roots remain.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot build TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .clone()
}

tokio::task_local! {
    /// See [`within_deadline`].
    static CALL_DEADLINE: tokio::time::Instant;
}

/// Runs `work` with every vendor HTTP call made inside it bounded by `deadline` (the invocation's
/// remaining time less a margin): no attempt starts, and no retry waits, past it, and an attempt
/// still in flight then is cut off. The error says "out of time" and keeps what is known:
///
/// - cut off in flight: a submit is [`VendorError::OutcomeUnknown`] (it may have been applied:
///   the trigger keeps the claim and reconciles), a read [`VendorError::Unavailable`];
/// - before a call or a retry was sent: the last answer stands (for a submit one the vendor
///   certainly did not act on, since only those are retried), or `Unavailable` without a status
///   when nothing was sent at all.
///
/// All of them are retryable. Calls outside such a scope are bounded only by their own timeouts.
pub async fn within_deadline<F: std::future::Future>(
    deadline: tokio::time::Instant,
    work: F,
) -> F::Output {
    CALL_DEADLINE.scope(deadline, work).await
}

fn call_deadline() -> Option<tokio::time::Instant> {
    CALL_DEADLINE.try_with(|d| *d).ok()
}

/// `error` (a retryable answer) marked as the last one before the deadline.
fn out_of_time_after(error: VendorError, attempts: u32) -> VendorError {
    let note =
        |message: String| format!("{message} (out of time for a retry after {attempts} attempts)");
    match error {
        VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message,
        } => VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message: note(message),
        },
        VendorError::Unavailable {
            vendor,
            status,
            message,
        } => VendorError::Unavailable {
            vendor,
            status,
            message: note(message),
        },
        other => other,
    }
}

/// An HTTP client bound to one vendor account (a credential profile), with its retry policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryConfig,
    vendor: VendorKind,
    /// The credential profile whose calls these are (its name only), for the throttle and retry
    /// counts ([`take_call_counts`]).
    profile: std::sync::Arc<str>,
    /// Waited on before every attempt (retries and token fetches included).
    rate: Option<std::sync::Arc<crate::rate::RateLimit>>,
}

enum Attempt<T> {
    Done(T),
    Retry {
        after: Option<Duration>,
        error: VendorError,
    },
    Fail(VendorError),
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
        let tls = shared_tls_config().map_err(|message| VendorError::Config {
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

    /// This client (same connections) with every attempt waiting on `rate` first.
    pub fn with_rate_limit(mut self, rate: std::sync::Arc<crate::rate::RateLimit>) -> Self {
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
                            "no response headers within {} s",
                            self.retry.request_timeout.as_secs_f64()
                        ),
                    },
                },
            }
        })
        .await
    }

    async fn retrying<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter()
            .build();
        let deadline = call_deadline();
        let mut attempts = 0u32;
        loop {
            let outcome = match deadline {
                None => {
                    if let Some(rate) = &self.rate {
                        rate.wait().await;
                    }
                    attempt().await
                }
                Some(deadline) => {
                    if let Some(rate) = &self.rate {
                        if tokio::time::timeout_at(deadline, rate.wait())
                            .await
                            .is_err()
                        {
                            return Err(self.out_of_time_unsent(attempts));
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(self.out_of_time_unsent(attempts));
                    }
                    match tokio::time::timeout_at(deadline, attempt()).await {
                        Ok(outcome) => outcome,
                        Err(_) => return Err(self.out_of_time_interrupted(idempotency)),
                    }
                }
            };
            attempts += 1;
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { after, error } => {
                    if after.is_some_and(|a| a > self.retry.max_retry_after) {
                        return Err(error);
                    }
                    let Some(backoff) = delays.next() else {
                        return Err(error);
                    };
                    let wait = after.map_or(backoff, |a| a.max(backoff));
                    if deadline.is_some_and(|d| tokio::time::Instant::now() + wait >= d) {
                        // No time for another attempt: the last answer stands. For a submit that
                        // is a refusal the vendor certainly did not act on (connection refused,
                        // 429, 503): only those are retried.
                        return Err(out_of_time_after(error, attempts));
                    }
                    if idempotency == Idempotency::Unsafe {
                        counters::add(self.vendor, &self.profile, |c| c.submit_retries += 1);
                    }
                    tracing::warn!(vendor = %self.vendor, ?idempotency, wait_ms = wait.as_millis() as u64, %error, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The deadline passed before a (first or next) attempt was sent: nothing was sent, so a
    /// submit certainly created nothing.
    fn out_of_time_unsent(&self, attempts: u32) -> VendorError {
        VendorError::Unavailable {
            vendor: self.vendor,
            status: None,
            message: format!(
                "out of time: the invocation's deadline came before the call was sent (after \
                 {attempts} attempts); nothing was sent"
            ),
        }
    }

    /// The deadline passed while an attempt was in flight: a submit may have been applied.
    fn out_of_time_interrupted(&self, idempotency: Idempotency) -> VendorError {
        let message =
            "out of time: the call was interrupted at the invocation's deadline".to_owned();
        match idempotency {
            Idempotency::Unsafe => VendorError::OutcomeUnknown {
                vendor: self.vendor,
                message,
            },
            Idempotency::Safe => VendorError::Unavailable {
                vendor: self.vendor,
                status: None,
                message,
            },
        }
    }

    /// `None` when the response is final for the caller to interpret.
    fn classify_status<T>(
        &self,
        idempotency: Idempotency,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Attempt<T>> {
        let vendor = self.vendor;
        let after = retry_after(headers);
        match status.as_u16() {
            429 => Some({
                counters::add(vendor, &self.profile, |c| c.throttles += 1);
                Attempt::Retry {
                    after,
                    error: VendorError::Throttled {
                        vendor,
                        retry_after_seconds: after.map(|d| d.as_secs()),
                        message: "429 Too Many Requests".into(),
                    },
                }
            }),
            // 503 means the vendor did not handle the request, so even a submit may be repeated.
            503 => Some(Attempt::Retry {
                after,
                error: VendorError::Unavailable {
                    vendor,
                    status: Some(503),
                    message: "503 Service Unavailable".into(),
                },
            }),
            code @ 500..=599 => {
                let error = VendorError::Unavailable {
                    vendor,
                    status: Some(code),
                    message: format!("HTTP {code}"),
                };
                Some(match idempotency {
                    Idempotency::Safe => Attempt::Retry { after, error },
                    Idempotency::Unsafe => Attempt::Fail(VendorError::OutcomeUnknown {
                        vendor,
                        message: format!("HTTP {code} after the request was sent"),
                    }),
                })
            }
            _ => None,
        }
    }

    fn classify_transport<T>(
        &self,
        idempotency: Idempotency,
        e: &reqwest::Error,
        answered: bool,
    ) -> Attempt<T> {
        let vendor = self.vendor;
        let message = describe(e);
        if let Some(error) = permanent_cause(vendor, e, &message) {
            return Attempt::Fail(error);
        }
        // A refused connection never reached the vendor; anything later might have.
        let not_sent = e.is_connect() && !answered;
        match idempotency {
            Idempotency::Safe => Attempt::Retry {
                after: None,
                error: VendorError::Unavailable {
                    vendor,
                    status: None,
                    message,
                },
            },
            Idempotency::Unsafe if not_sent => Attempt::Retry {
                after: None,
                error: VendorError::Unavailable {
                    vendor,
                    status: None,
                    message,
                },
            },
            Idempotency::Unsafe => Attempt::Fail(VendorError::OutcomeUnknown { vendor, message }),
        }
    }
}

fn with_vendor_message<T>(attempt: Attempt<T>, body: &[u8]) -> Attempt<T> {
    let said = snippet(body);
    if said.trim().is_empty() {
        return attempt;
    }
    let extend = |error: VendorError| match error {
        VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message,
        } => VendorError::Throttled {
            vendor,
            retry_after_seconds,
            message: format!("{message}: {said}"),
        },
        VendorError::Unavailable {
            vendor,
            status,
            message,
        } => VendorError::Unavailable {
            vendor,
            status,
            message: format!("{message}: {said}"),
        },
        VendorError::OutcomeUnknown { vendor, message } => VendorError::OutcomeUnknown {
            vendor,
            message: format!("{message}: {said}"),
        },
        other => other,
    };
    match attempt {
        Attempt::Retry { after, error } => Attempt::Retry {
            after,
            error: extend(error),
        },
        Attempt::Fail(error) => Attempt::Fail(extend(error)),
        done => done,
    }
}

/// A transport error without its URL (which may carry a presigned signature).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body broken"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    // The whole cause chain: the first source alone says "client error (Connect)" and hides
    // e.g. "invalid peer certificate: UnknownIssuer". reqwest's own message (the outermost) is
    // left out because it names the URL.
    let mut said: Vec<String> = Vec::new();
    for cause in causes(e).skip(1) {
        let text = cause.to_string();
        // io::Error displays its inner error, which the chain lists next: say it once.
        if !text.is_empty() && said.last() != Some(&text) {
            said.push(text);
        }
    }
    if let Some(hint) = certificate_error(e).map(certificate_hint) {
        said.push(hint.to_owned());
    }
    if said.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", said.join(": "))
    }
}

/// `e` and its sources, looking inside `io::Error`s (whose `source` skips the error they wrap).
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        Some(current)
    })
}

/// The TLS certificate error in `e`'s cause chain, if any.
fn certificate_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    causes(e).find_map(|c| {
        c.downcast_ref::<rustls::Error>().filter(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
    })
}

fn certificate_hint(e: &rustls::Error) -> &'static str {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "the server's certificate has an unknown issuer: trust its CA (SSL_CERT_FILE or the platform store), e.g. a corporate TLS-inspecting proxy's"
        }
        _ => "the server's certificate is not valid for this connection",
    }
}

/// A transport failure that trying again cannot fix: an untrusted or invalid certificate, or a
/// download host the address guard refused.
fn permanent_cause(vendor: VendorKind, e: &reqwest::Error, message: &str) -> Option<VendorError> {
    if let Some(refused) =
        causes(e).find_map(|c| c.downcast_ref::<crate::resolve::AddressRefused>())
    {
        return Some(VendorError::DownloadRefused {
            vendor,
            message: refused.to_string(),
        });
    }
    certificate_error(e).map(|_| VendorError::Config {
        vendor,
        setting: "tls".into(),
        message: format!("certificate not trusted: {message}"),
    })
}

/// Maps a non-success response to an error using only the status; vendor modules call this after
/// trying their own error shape, passing the message they extracted.
pub fn status_error(
    vendor: VendorKind,
    response: &ApiResponse,
    message: String,
    field: Option<String>,
) -> VendorError {
    let status = response.status.as_u16();
    match status {
        403 if vendor != VendorKind::Amc => VendorError::Forbidden {
            vendor,
            status,
            message,
        },
        401 | 403 => VendorError::Unauthorized {
            vendor,
            status,
            message,
        },
        404 => VendorError::NotFound { vendor, message },
        429 => VendorError::Throttled {
            vendor,
            retry_after_seconds: response.retry_after_seconds(),
            message,
        },
        500..=599 => VendorError::Unavailable {
            vendor,
            status: Some(status),
            message,
        },
        _ => VendorError::Rejected {
            vendor,
            status,
            field,
            message,
        },
    }
}

/// Per-process counts of vendor throttling and submit retries, by vendor and credential profile,
/// for the metrics the handlers emit ([`take_call_counts`]).
mod counters {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use runbridge_core::VendorKind;

    use super::CallCounts;

    /// Only touched on a 429 or a submit retry, so one lock costs nothing on the common path.
    pub static COUNTS: Mutex<BTreeMap<(VendorKind, String), CallCounts>> =
        Mutex::new(BTreeMap::new());

    pub fn add(vendor: VendorKind, profile: &str, count: impl FnOnce(&mut CallCounts)) {
        let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts
            .entry((vendor, profile.to_owned()))
            .or_insert_with(|| CallCounts {
                vendor,
                profile: profile.to_owned(),
                throttles: 0,
                submit_retries: 0,
            });
        count(entry);
    }
}

/// Throttling and retries of one vendor profile since the last [`take_call_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCounts {
    /// The vendor.
    pub vendor: VendorKind,
    /// The credential profile (its name: `default` or a named profile).
    pub profile: String,
    /// 429 answers received.
    pub throttles: u64,
    /// Submits (requests that create a run) sent again after a failure that proved the vendor
    /// did not act on them.
    pub submit_retries: u64,
}

/// The counts since the previous call, per (vendor, profile) with any, and resets them. A process
/// counts for all its invocations; each invocation takes what accrued during it.
pub fn take_call_counts() -> Vec<CallCounts> {
    let taken = std::mem::take(&mut *counters::COUNTS.lock().unwrap_or_else(|e| e.into_inner()));
    taken
        .into_values()
        .filter(|c| c.throttles + c.submit_retries > 0)
        .collect()
}
