//! What every Flow Service route shares: Adobe's two error shapes (the Platform gateway's
//! `{error_code, message}` and Flow Service's `FLOW-<code>-<status>` problem document), the
//! errors injected faults answer with, the gateway and sandbox header checks in the order Adobe
//! reports them, and the IMS token endpoint.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{Shared, ORG_ID, SANDBOXES, VENDOR};
use crate::auth::{self, AuthPolicy};
use crate::Sim;

/// The Platform gateway's error body.
fn gateway_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// Flow Service's error body for catalog code `code` (e.g. 1430) and `status`.
pub(super) fn flow_error(status: StatusCode, code: u16, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://ns.adobe.com/aep/errors/FLOW-{code}-{}", status.as_u16()),
        "title": title,
        "status": status.as_u16(),
        "report": {
            "detailed-message": detail,
            "request-id": uuid::Uuid::new_v4().to_string(),
        },
        "errorMessage": detail,
        "errorDetails": detail,
    });
    (status, Json(body)).into_response()
}

pub(super) fn invalid_request(detail: &str) -> Response {
    flow_error(StatusCode::BAD_REQUEST, 1100, "Invalid request", detail)
}

/// Errors for injected faults: the gateway throttles, Flow Service fails.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    match status.as_u16() {
        429 => gateway_error(status, "429001", "Too many requests"),
        500 => flow_error(
            status,
            1102,
            "Internal Error",
            "An internal error has occurred. Please try again.",
        ),
        503 => flow_error(
            status,
            1103,
            "Service Unavailable",
            "The service is temporarily unavailable. Please try again.",
        ),
        504 => flow_error(
            status,
            1104,
            "Gateway Timeout",
            "A gateway timeout has occurred. Please try again.",
        ),
        _ => flow_error(
            status,
            1100,
            status.canonical_reason().unwrap_or("Error"),
            message,
        ),
    }
}

/// Any bad bearer token (unknown, malformed or expired) is "not valid" at the gateway.
fn token_error(status: StatusCode, _message: &str) -> Response {
    gateway_error(status, "401013", "Oauth token is not valid")
}

pub(super) async fn token(State(state): Shared, body: Bytes) -> Response {
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(auth::form_fields)
        .unwrap_or_default();
    // IMS refuses a client-credentials grant without the scopes of the credential.
    if form.get("scope").is_none_or(|s| s.trim().is_empty()) {
        state.sim.control.count("adobe.token");
        return auth::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope parameter is required",
        );
    }
    auth::token_endpoint(&state.sim, VENDOR, &form, "client_credentials")
}

/// Checks the gateway headers and the sandbox, in the order Adobe reports them; returns the
/// sandbox name.
pub(super) fn check_headers(sim: &Sim, headers: &HeaderMap) -> Result<String, Response> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403010",
            "Oauth token is missing.",
        ));
    }
    let api_key = header_value(headers, "x-api-key")
        .ok_or_else(|| gateway_error(StatusCode::FORBIDDEN, "403000", "Api Key is required"))?;
    let policy = AuthPolicy {
        invalid: StatusCode::UNAUTHORIZED,
        expired: StatusCode::UNAUTHORIZED,
        error: token_error,
    };
    auth::check_bearer(sim, VENDOR, headers, policy)?;
    // Tokens are only issued to the simulator's client, so the key must be that client's id.
    if api_key != auth::client_id(VENDOR) {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403003",
            "Api Key is invalid",
        ));
    }
    let org = header_value(headers, "x-gw-ims-org-id")
        .ok_or_else(|| gateway_error(StatusCode::BAD_REQUEST, "400003", "Missing header"))?;
    if org != ORG_ID {
        return Err(gateway_error(
            StatusCode::FORBIDDEN,
            "403025",
            "Profile is not valid",
        ));
    }
    let sandbox = header_value(headers, "x-sandbox-name").ok_or_else(|| {
        flow_error(
            StatusCode::BAD_REQUEST,
            2105,
            "Header is missing",
            "The header x-sandbox-name is missing in the request. Please add the header in the request and try again.",
        )
    })?;
    if !SANDBOXES.contains(&sandbox) {
        return Err(flow_error(
            StatusCode::NOT_FOUND,
            2100,
            "Sandbox not found",
            &format!("The sandbox with the name '{sandbox}' could not be found. Please ensure that the sandbox name is correct and try again."),
        ));
    }
    Ok(sandbox.to_owned())
}

pub(super) fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}
