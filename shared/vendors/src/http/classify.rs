//! What an answer or a transport failure means: retry it, fail for good, or hand it to the caller
//! ([`HttpClient`]'s attempts), and the status-only mapping of a final error answer
//! ([`status_error`]) the vendor modules fall back on. Transport errors are described by their
//! whole cause chain, without the URL, with a hint for certificate errors.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use runbridge_core::VendorKind;

use super::redact::snippet;
use super::retry::{retry_after, Attempt};
use super::{counts, ApiResponse, HttpClient, Idempotency};
use crate::VendorError;

impl HttpClient {
    /// `None` when the response is final for the caller to interpret.
    pub(super) fn classify_status<T>(
        &self,
        idempotency: Idempotency,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Attempt<T>> {
        let vendor = self.vendor;
        let after = retry_after(headers);
        match status.as_u16() {
            429 => Some({
                counts::add(vendor, &self.profile, |c| c.throttles += 1);
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

    /// A transport failure; `answered` when the vendor's headers had arrived.
    pub(super) fn classify_transport<T>(
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

/// `attempt`'s error with the vendor's own words from `body` appended.
pub(super) fn with_vendor_message<T>(attempt: Attempt<T>, body: &[u8]) -> Attempt<T> {
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
pub(crate) fn describe(e: &reqwest::Error) -> String {
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
