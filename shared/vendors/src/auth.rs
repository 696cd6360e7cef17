//! Bearer tokens: fetched from an OAuth token endpoint, cached until shortly before they expire,
//! and dropped when the vendor rejects them so the next call fetches a fresh one.
//!
//! This module also owns [`HttpClient::send_authorized`] (a request with a token, refreshed once
//! on 401/403): it sits on top of [`crate::http`], which does not import this module back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use runbridge_core::VendorKind;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::http::{ApiResponse, HttpClient, Idempotency};
use crate::VendorError;

/// Refresh this long before the announced expiry, so a token never dies mid-request.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The longest a token is cached, whatever `expires_in` the endpoint announced (an answer of
/// `18446744073709551615` must neither overflow the clock nor pin a token for ever).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The longest OAuth `error` code kept in a message; a longer or odd one is dropped, since the
/// endpoint may have echoed the form into it.
const MAX_ERROR_CODE_CHARS: usize = 64;

#[derive(Debug)]
enum Grant {
    /// A long-lived token given by configuration (CARTO API access tokens).
    Static(SecretString),
    /// An OAuth token endpoint and the form fields to post to it.
    OAuth {
        token_url: String,
        form: Vec<(&'static str, SecretString)>,
        /// Headers the token request carries besides the form's (e.g. Amperity's tenant).
        headers: Vec<(&'static str, String)>,
    },
}

#[derive(Debug)]
struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// A source of bearer tokens for one vendor account.
#[derive(Debug)]
pub struct TokenSource {
    http: HttpClient,
    grant: Grant,
    cache: Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
    /// A rotated refresh token, where an endpoint sends one: a secret too.
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

/// How long a token answered with `expires_in` may be used before it is refreshed: the
/// announced lifetime (an hour when absent) capped at [`MAX_TOKEN_LIFETIME`], less a margin.
fn cache_for(expires_in: Option<u64>) -> Duration {
    let lifetime = Duration::from_secs(expires_in.unwrap_or(3_600)).min(MAX_TOKEN_LIFETIME);
    lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2))
}

/// An OAuth `error` code as the token endpoint sent it, when it is one (lower-case letters,
/// digits and `_`, at most [`MAX_ERROR_CODE_CHARS`]): anything else may be the echoed form.
fn oauth_error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|code| {
            code.len() <= MAX_ERROR_CODE_CHARS
                && code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .unwrap_or_default()
}

impl TokenSource {
    /// OAuth 2 client-credentials grant (Amperity, Adobe IMS, CARTO machine-to-machine).
    pub fn client_credentials(
        http: HttpClient,
        token_url: String,
        client_id: SecretString,
        client_secret: SecretString,
        scope: Option<String>,
    ) -> Self {
        crate::http::register(client_secret.expose_secret());
        let mut form = vec![
            ("grant_type", SecretString::from("client_credentials")),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        if let Some(scope) = scope {
            form.push(("scope", SecretString::from(scope)));
        }
        Self::oauth(http, token_url, form)
    }

    /// OAuth 2 refresh-token grant (Login with Amazon for AMC).
    pub fn refresh_token(
        http: HttpClient,
        token_url: String,
        client_id: SecretString,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        crate::http::register(client_secret.expose_secret());
        crate::http::register(refresh_token.expose_secret());
        let form = vec![
            ("grant_type", SecretString::from("refresh_token")),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        Self::oauth(http, token_url, form)
    }

    /// Adds a form field to an OAuth grant (e.g. CARTO's `audience`); no effect on a fixed token.
    pub fn with_form_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Grant::OAuth { form, .. } = &mut self.grant {
            form.push((name, SecretString::from(value.into())));
        }
        self
    }

    /// Adds a header to the token request of an OAuth grant (e.g. Amperity's
    /// `amperity-tenant`); no effect on a fixed token.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Grant::OAuth { headers, .. } = &mut self.grant {
            headers.push((name, value.into()));
        }
        self
    }

    /// A fixed token that is never refreshed.
    pub fn fixed(http: HttpClient, token: SecretString) -> Self {
        crate::http::register(token.expose_secret());
        Self {
            http,
            grant: Grant::Static(token),
            cache: Mutex::new(None),
        }
    }

    fn oauth(http: HttpClient, token_url: String, form: Vec<(&'static str, SecretString)>) -> Self {
        Self {
            http,
            grant: Grant::OAuth {
                token_url,
                form,
                headers: Vec::new(),
            },
            cache: Mutex::new(None),
        }
    }

    fn vendor(&self) -> VendorKind {
        self.http.vendor()
    }

    /// A valid token, fetching one when none is cached or the cached one is about to expire.
    /// Concurrent callers share one fetch.
    pub async fn token(&self) -> Result<SecretString, VendorError> {
        let (token_url, form, headers) = match &self.grant {
            Grant::Static(t) => return Ok(t.clone()),
            Grant::OAuth {
                token_url,
                form,
                headers,
            } => (token_url, form, headers),
        };
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let vendor = self.vendor();
        let response = self
            .http
            .send_read_credential(Idempotency::Safe, |c| {
                let fields: Vec<(&str, &str)> =
                    form.iter().map(|(k, v)| (*k, v.expose_secret())).collect();
                headers
                    .iter()
                    .fold(c.post(token_url.as_str()), |request, (name, value)| {
                        request.header(*name, value)
                    })
                    .form(&fields)
            })
            .await?;
        let (token, refresh_at) =
            read_token_answer(vendor, response.status, &response.body, Instant::now())?;
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// Forgets `stale` if it is still the cached token (another caller may already have
    /// replaced it).
    pub async fn invalidate(&self, stale: &SecretString) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == stale.expose_secret())
        {
            *cache = None;
        }
    }
}

// The authorised send lives here, not in `http`, so that `http` never depends on tokens.
impl HttpClient {
    /// Like [`Self::send_read`], with a bearer token from `tokens`. A rejected token refreshes
    /// once and repeats the request (the vendor did not act on an unauthorised request). Which
    /// statuses mean "rejected token" is the vendor's ([`token_rejected`]): 401 everywhere; 403
    /// only where the vendor documents it for an expired token (AMC). Elsewhere a 403 is a missing
    /// permission (Adobe's sandbox, API key or org; Amperity's tenant permissions) that no new
    /// token can fix: it is returned as is (the caller maps it to [`VendorError::Forbidden`]) and
    /// never re-sent, because re-sending a create is never free.
    pub async fn send_authorized<F>(
        &self,
        idempotency: Idempotency,
        tokens: &TokenSource,
        build: F,
    ) -> Result<ApiResponse, VendorError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync,
    {
        let token = tokens.token().await?;
        let first = self
            .send_read(idempotency, |c| build(c, token.expose_secret()))
            .await?;
        if !token_rejected(self.vendor(), first.status) {
            return Ok(first);
        }
        tracing::info!(vendor = %self.vendor(), status = first.status.as_u16(), "token rejected; refreshing once");
        tokens.invalidate(&token).await;
        let token = tokens.token().await?;
        self.send_read(idempotency, |c| build(c, token.expose_secret()))
            .await
    }
}

/// Reads a token endpoint's answer (`status`, `body`) received at `now`: the access token and
/// when to refresh it, or the error that says why not. Every secret in it is registered for
/// redaction; no answer, however hostile (an `expires_in` of `u64::MAX`, `1e400`, a negative or
/// a string), makes it panic.
fn read_token_answer(
    vendor: VendorKind,
    status: StatusCode,
    body: &[u8],
    now: Instant,
) -> Result<(SecretString, Instant), VendorError> {
    if !status.is_success() {
        // The token endpoint's message may echo the request; keep only the status and the
        // OAuth error code.
        let code = oauth_error_code(body);
        let refused = matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        let status = status.as_u16();
        return Err(if refused {
            VendorError::Unauthorized {
                vendor,
                status,
                message: format!("token endpoint refused the credentials {code}"),
            }
        } else {
            VendorError::Unavailable {
                vendor,
                status: Some(status),
                message: format!("token endpoint failed {code}"),
            }
        });
    }
    // Never `response.json`: its error quotes the body, and this body is the token itself.
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        VendorError::protocol(
            vendor,
            format!(
                "token endpoint answer did not parse ({:?} error at line {} column {}; body withheld, it holds credentials)",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    crate::http::register(parsed.access_token.expose_secret());
    if let Some(rotated) = &parsed.refresh_token {
        crate::http::register(rotated.expose_secret());
    }
    let refresh_at = now.checked_add(cache_for(parsed.expires_in)).unwrap_or(now);
    Ok((parsed.access_token, refresh_at))
}

/// Whether `status` from `vendor` means the bearer token was expired or invalid (so one refresh
/// can help). 401 always; 403 only for AMC, whose Ads API answers an expired token with 403.
pub fn token_rejected(vendor: VendorKind, status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && vendor == VendorKind::Amc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_expires_in_gives_a_bounded_cache_time() {
        assert_eq!(cache_for(None), Duration::from_secs(3_540));
        assert_eq!(cache_for(Some(0)), Duration::ZERO);
        assert_eq!(
            cache_for(Some(u64::MAX)),
            MAX_TOKEN_LIFETIME - EXPIRY_MARGIN
        );
        assert!(Instant::now()
            .checked_add(cache_for(Some(u64::MAX)))
            .is_some());
    }

    /// Token answers of any status and body — `expires_in` of any size, sign or type, tokens
    /// of any type, bodies that are not JSON — give a token refreshed within the cap, or an
    /// error; never a panic.
    #[test]
    fn any_token_answer_is_a_bounded_token_or_an_error() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let expires_in = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| f.to_string()),
            prop::sample::select(vec![
                "18446744073709551615",
                "18446744073709551616",
                "1e400",
                "-1",
                "-0",
                "3600.0",
                "null",
                "\"3600\"",
                "[]",
                "{}",
            ])
            .prop_map(str::to_owned),
            (1usize..300).prop_map(|n| "9".repeat(n)),
        ];
        let token = prop_oneof![
            "[A-Za-z0-9._~+/=-]{0,40}".prop_map(|t| format!("\"{t}\"")),
            prop::sample::select(vec!["null", "1", "[]", "{}", "\"\\ud800\""])
                .prop_map(str::to_owned),
        ];
        let answer = (token, proptest::option::of(expires_in), any::<bool>()).prop_map(
            |(token, expires, refresh)| {
                let mut members = vec![format!("\"access_token\":{token}")];
                if let Some(e) = expires {
                    members.push(format!("\"expires_in\":{e}"));
                }
                if refresh {
                    members.push("\"refresh_token\":\"r-1\"".to_owned());
                }
                format!("{{{}}}", members.join(",")).into_bytes()
            },
        );
        let body = prop_oneof![
            4 => answer,
            1 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => "[a-z_ =&]{0,40}".prop_map(|e| format!("{{\"error\":\"{e}\"}}").into_bytes()),
        ];
        let status = prop_oneof![
            3 => Just(200u16),
            1 => 100u16..600,
        ];
        let mut runner = TestRunner::new(Config {
            cases: 1_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(status, body), |(status, body)| {
                let status = StatusCode::from_u16(status).unwrap();
                let now = Instant::now();
                if let Ok((_, refresh_at)) = read_token_answer(VendorKind::Amc, status, &body, now)
                {
                    prop_assert!(status.is_success());
                    prop_assert!(refresh_at >= now && refresh_at <= now + MAX_TOKEN_LIFETIME);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_error_code_that_is_not_one_is_dropped() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant"}"#),
            "invalid_grant"
        );
        assert_eq!(
            oauth_error_code(br#"{"error":"client_secret=abc&refresh_token=xyz"}"#),
            ""
        );
        assert_eq!(oauth_error_code(b"not json"), "");
    }
}
