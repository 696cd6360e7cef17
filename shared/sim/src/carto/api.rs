//! What every CARTO route shares: the `{error, status}` error shape, the bearer check every route
//! but the token endpoint makes, and the Auth0 client-credentials token endpoint that needs
//! CARTO's audience.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{CartoSim, Shared, AUDIENCE, VENDOR};
use crate::auth::{self, AuthPolicy};

const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::UNAUTHORIZED,
    error,
};

/// CARTO's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}

pub(super) fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

impl CartoSim {
    /// Counts a request to `route` and checks its bearer token.
    pub(super) fn admit(&self, route: &str, headers: &HeaderMap) -> Result<(), Response> {
        self.sim.control.count(route);
        auth::check_bearer(&self.sim, VENDOR, headers, AUTH)
    }
}

/// `POST /oauth/token`: Auth0's client-credentials grant, which needs CARTO's audience.
pub(super) async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = std::str::from_utf8(&body).ok().and_then(auth::form_fields);
    let (true, Some(form)) = (is_form, form) else {
        state.sim.control.count("carto.token");
        return auth::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Expected an application/x-www-form-urlencoded body",
        );
    };
    match form.get("audience").map(String::as_str) {
        Some(AUDIENCE) => auth::token_endpoint(&state.sim, VENDOR, &form, "client_credentials"),
        Some(other) => {
            state.sim.control.count("carto.token");
            auth::oauth_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                &format!("Service not found: {other}"),
            )
        }
        None => {
            state.sim.control.count("carto.token");
            auth::oauth_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "No audience parameter was provided, and no default audience has been configured",
            )
        }
    }
}
