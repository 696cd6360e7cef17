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

#[derive(Debug)]
enum Grant {
    /// A long-lived token given by configuration (CARTO API access tokens).
    Static(SecretString),
    /// An OAuth token endpoint and the form fields to post to it.
    OAuth {
        token_url: String,
        form: Vec<(&'static str, SecretString)>,
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

    /// A fixed token that is never refreshed.
    pub fn fixed(http: HttpClient, token: SecretString) -> Self {
        Self {
            http,
            grant: Grant::Static(token),
            cache: Mutex::new(None),
        }
    }

    fn oauth(http: HttpClient, token_url: String, form: Vec<(&'static str, SecretString)>) -> Self {
        Self {
            http,
            grant: Grant::OAuth { token_url, form },
            cache: Mutex::new(None),
        }
    }

    fn vendor(&self) -> VendorKind {
        self.http.vendor()
    }

    /// A valid token, fetching one when none is cached or the cached one is about to expire.
    /// Concurrent callers share one fetch.
    pub async fn token(&self) -> Result<SecretString, VendorError> {
        let (token_url, form) = match &self.grant {
            Grant::Static(t) => return Ok(t.clone()),
            Grant::OAuth { token_url, form } => (token_url, form),
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
                c.post(token_url.as_str()).form(&fields)
            })
            .await?;
        if !response.status.is_success() {
            // The token endpoint's message may echo the request; keep only the status and the
            // OAuth error code.
            let code = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let status = response.status.as_u16();
            return Err(
                if matches!(
                    response.status,
                    StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) {
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
                },
            );
        }
        // Never `response.json`: its error quotes the body, and this body is the token itself.
        let parsed: TokenResponse = serde_json::from_slice(&response.body).map_err(|e| {
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
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3_600));
        let refresh_at = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2));
        *cache = Some(Cached {
            token: parsed.access_token.clone(),
            refresh_at,
        });
        Ok(parsed.access_token)
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

/// Whether `status` from `vendor` means the bearer token was expired or invalid (so one refresh
/// can help). 401 always; 403 only for AMC, whose Ads API answers an expired token with 403.
pub fn token_rejected(vendor: VendorKind, status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && vendor == VendorKind::Amc)
}
