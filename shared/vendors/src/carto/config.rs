//! CARTO settings: the API base (region or self-hosted tenant) and which credential to use, a
//! long-lived API access token or an M2M OAuth client with CARTO's `audience`.

use super::VENDOR;
use crate::auth::TokenSource;
use crate::http::HttpClient;
use crate::{Settings, VendorError};

/// The US-East CARTO Cloud region; other regions and self-hosted tenants set `carto.api_base`.
pub const DEFAULT_API_BASE: &str = "https://gcp-us-east1.api.carto.com";
/// CARTO's OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://auth.carto.com/oauth/token";
/// The audience CARTO's token endpoint requires for API tokens.
pub const AUDIENCE: &str = "carto-cloud-native-api";

/// `carto.api_token` when set; otherwise the `client_id` + `client_secret` grant, whose missing
/// half is a configuration error naming it.
pub(super) fn token_source(
    settings: &Settings,
    http: &HttpClient,
) -> Result<TokenSource, VendorError> {
    Ok(match settings.secret(VENDOR, "api_token") {
        Some(token) => TokenSource::fixed(http.clone(), token),
        None => TokenSource::client_credentials(
            http.clone(),
            settings.plain_or(VENDOR, "token_url", DEFAULT_TOKEN_URL),
            settings.require_secret(VENDOR, "client_id")?,
            settings.require_secret(VENDOR, "client_secret")?,
            None,
        )
        .with_form_field("audience", AUDIENCE),
    })
}
