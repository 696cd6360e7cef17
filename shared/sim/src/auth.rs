//! What every vendor simulator checks before it acts, and the credentials it accepts: the
//! simulator's client ids, secrets and refresh tokens, the bearer-token check, required headers,
//! form bodies, and the OAuth 2 token endpoint each vendor mounts at its own path.
//!
//! Each vendor has two accounts ([`ACCOUNTS`]), each with its own credentials, as an agency has an
//! NA and an EU AMC instance, or two Amperity tenants with their own API keys. A token belongs to
//! the account whose credentials obtained it, and a resource (an AMC instance, an Amperity
//! tenant) belongs to one account ([`crate::Control::assign`]; unassigned ones to the default
//! account): a call with another account's token is refused as the vendor refuses it, so a
//! request run under the wrong profile fails at the simulator.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use runbridge_core::VendorKind;

use crate::{Sim, TokenCheck};

pub use crate::accounts::{
    client_id, client_id_of, client_secret, client_secret_of, refresh_token, refresh_token_of,
    ACCOUNTS, DEFAULT_ACCOUNT,
};

/// The account of the bearer token in `headers` (after [`check_bearer`] accepted it).
pub fn token_account(sim: &Sim, headers: &HeaderMap) -> String {
    bearer(headers.get(axum::http::header::AUTHORIZATION))
        .and_then(|t| sim.tokens.account(t))
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned())
}

/// Whether the token in `headers` belongs to the account that owns `resource` of `vendor`.
pub fn owns(sim: &Sim, vendor: VendorKind, headers: &HeaderMap, resource: &str) -> bool {
    token_account(sim, headers) == sim.control.owner(vendor, resource)
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
    // The client id names the account; its secret (and refresh token) must be that account's.
    let account = ACCOUNTS
        .into_iter()
        .find(|a| form.get("client_id") == Some(&client_id_of(vendor, a)));
    let Some(account) =
        account.filter(|a| form.get("client_secret") == Some(&client_secret_of(vendor, a)))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    if grant == "refresh_token"
        && form.get("refresh_token") != Some(&refresh_token_of(vendor, account))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is invalid",
        );
    }
    let ttl = sim.config.token_ttl_seconds;
    let token = sim.tokens.issue_for(vendor, account, sim.clock.now(), ttl);
    Json(serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": ttl}))
        .into_response()
}

/// The bearer token of an `Authorization` header value, if it is one.
pub(crate) fn bearer(value: Option<&axum::http::HeaderValue>) -> Option<&str> {
    let v = value?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
