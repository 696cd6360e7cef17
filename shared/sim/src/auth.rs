//! What every vendor simulator checks before it acts, and the credentials it accepts: the
//! simulator's client ids, secrets and refresh tokens, the bearer-token check, required headers,
//! form bodies, and the OAuth 2 token endpoint each vendor mounts at its own path.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use runbridge_core::VendorKind;

use crate::tokens::bearer;
use crate::{Sim, TokenCheck};

/// Client id the simulator accepts for `vendor`.
pub fn client_id(vendor: VendorKind) -> String {
    format!("sim-{vendor}-client-id")
}

/// Client secret the simulator accepts for `vendor`.
pub fn client_secret(vendor: VendorKind) -> String {
    format!("sim-{vendor}-client-secret")
}

/// Refresh token the simulator accepts (Login with Amazon).
pub fn refresh_token(vendor: VendorKind) -> String {
    format!("sim-{vendor}-refresh-token")
}

/// How a vendor reacts to a bad bearer token.
#[derive(Clone, Copy)]
pub struct AuthPolicy {
    /// Status for a missing or unknown token.
    pub invalid: StatusCode,
    /// Status for an expired token.
    pub expired: StatusCode,
    /// The vendor's error response.
    pub error: fn(StatusCode, &str) -> Response,
}

/// Checks the `Authorization: Bearer` header.
pub fn check_bearer(
    sim: &Sim,
    vendor: VendorKind,
    headers: &HeaderMap,
    policy: AuthPolicy,
) -> Result<(), Response> {
    let Some(token) = bearer(headers.get(axum::http::header::AUTHORIZATION)) else {
        return Err((policy.error)(
            policy.invalid,
            "Missing or malformed Authorization header",
        ));
    };
    match sim.tokens.check(vendor, token, sim.clock.now()) {
        TokenCheck::Valid => Ok(()),
        TokenCheck::Expired => Err((policy.error)(
            policy.expired,
            "The access token has expired",
        )),
        TokenCheck::Unknown => Err((policy.error)(policy.invalid, "Invalid access token")),
    }
}

/// Checks that a required header is present and non-empty.
pub fn require_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    error: fn(StatusCode, &str) -> Response,
) -> Result<&'a str, Response> {
    match headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("Missing required header {name}"),
        )),
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, or `None` when it does not parse.
/// A form body is URL-encoded exactly like a query string, so axum's query decoder reads it.
pub fn form_fields(text: &str) -> Option<HashMap<String, String>> {
    format!("/?{text}")
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok())
        .map(|Query(fields)| fields)
}

/// An OAuth 2 error answer (RFC 6749 section 5.2).
pub fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// An OAuth 2 token endpoint (form-encoded, RFC 6749 error shape) accepting the simulator's
/// credentials for `vendor` with the given grant type.
pub fn token_endpoint(
    sim: &Sim,
    vendor: VendorKind,
    form: &HashMap<String, String>,
    grant: &str,
) -> Response {
    sim.control.count(&format!("{vendor}.token"));
    match form.get("grant_type").map(String::as_str) {
        Some(g) if g == grant => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is not supported",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    }
    if form.get("client_id") != Some(&client_id(vendor))
        || form.get("client_secret") != Some(&client_secret(vendor))
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if grant == "refresh_token" && form.get("refresh_token") != Some(&refresh_token(vendor)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is invalid",
        );
    }
    let ttl = sim.config.token_ttl_seconds;
    let token = sim.tokens.issue(vendor, sim.clock.now(), ttl);
    Json(serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": ttl}))
        .into_response()
}
