//! What every AMC route shares: the media type and `{code, details}` error shape, the refusal
//! type handlers return, the auth and header checks, JSON body and field-type checks, boolean
//! query flags, and the Login with Amazon token endpoint.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawForm, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::{Shared, VENDOR};
use crate::auth::{self, AuthPolicy};
use crate::Sim;

pub(super) const MEDIA_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";

const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::FORBIDDEN,
    error,
};

/// AMC's error response.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"code": status.as_u16().to_string(), "details": message});
    (
        status,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// A refusal on its way to becoming a response (kept small: a `Response` is not).
pub(super) enum ApiError {
    /// AMC's `{code, details}` answer.
    Amc { status: StatusCode, details: String },
    /// An answer already built by the shared checks.
    Built(Box<Response>),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Amc { status, details } => error(status, &details),
            Self::Built(response) => *response,
        }
    }
}

pub(super) fn reject(status: StatusCode, details: impl Into<String>) -> ApiError {
    ApiError::Amc {
        status,
        details: details.into(),
    }
}

pub(super) fn bad_request(details: impl Into<String>) -> ApiError {
    reject(StatusCode::BAD_REQUEST, details)
}

pub(super) fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

pub(super) async fn token(State(state): Shared, RawForm(form): RawForm) -> Response {
    let fields = std::str::from_utf8(&form)
        .ok()
        .and_then(auth::form_fields)
        .unwrap_or_default();
    auth::token_endpoint(&state.sim, VENDOR, &fields, "refresh_token")
}

/// Auth and the headers every call on `instance` needs. The token must be of the account the
/// instance belongs to: an NA credential set cannot reach an EU instance (AMC answers 403).
pub(super) fn check_headers(
    sim: &Sim,
    headers: &HeaderMap,
    instance: &str,
) -> Result<(), ApiError> {
    let built = |r: Response| ApiError::Built(Box::new(r));
    auth::check_bearer(sim, VENDOR, headers, AUTH).map_err(built)?;
    let client_id =
        auth::require_header(headers, "Amazon-Advertising-API-ClientId", error).map_err(built)?;
    let account = auth::token_account(sim, headers);
    if client_id != auth::client_id_of(VENDOR, &account) {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            "Amazon-Advertising-API-ClientId does not match the access token's client",
        ));
    }
    if !auth::owns(sim, VENDOR, headers, instance) {
        return Err(reject(
            StatusCode::FORBIDDEN,
            format!("The access token is not authorized for instance {instance}"),
        ));
    }
    auth::require_header(headers, "Amazon-Advertising-API-AdvertiserId", error).map_err(built)?;
    auth::require_header(headers, "Amazon-Advertising-API-MarketplaceId", error).map_err(built)?;
    if let Some(accept) = headers.get(header::ACCEPT) {
        let accept = accept.to_str().unwrap_or_default();
        let acceptable = accept
            .split(',')
            .map(|m| m.split(';').next().unwrap_or_default().trim())
            .any(|m| matches!(m, MEDIA_TYPE | "application/json" | "application/*" | "*/*"));
        if !acceptable {
            return Err(reject(
                StatusCode::NOT_ACCEPTABLE,
                format!("Cannot produce {accept}; use {MEDIA_TYPE}"),
            ));
        }
    }
    Ok(())
}

/// Parses a JSON object body after checking its media type.
pub(super) fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Map<String, Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media != MEDIA_TYPE && media != "application/json" {
        return Err(reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Content-Type `{content_type}`; send {MEDIA_TYPE}"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("Request body must be a JSON object")),
        Err(e) => Err(bad_request(format!("Malformed request body: {e}"))),
    }
}

/// JSON types the create request uses.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Bool,
    Str,
    Int,
    Object,
    StrArray,
    ObjArray,
}

fn check_type(field: &str, value: &Value, kind: Kind) -> Result<(), ApiError> {
    let (ok, expected) = match kind {
        Kind::Bool => (value.is_boolean(), "a boolean"),
        Kind::Str => (value.is_string(), "a string"),
        Kind::Int => (value.is_i64() || value.is_u64(), "an integer"),
        Kind::Object => (value.is_object(), "an object"),
        Kind::StrArray => (
            value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "an array of strings",
        ),
        Kind::ObjArray => (
            value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_object)),
            "an array of objects",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(bad_request(format!(
            "Invalid type for field \"{field}\": expected {expected}"
        )))
    }
}

/// Rejects fields not in `known` and values of the wrong type.
pub(super) fn check_fields(
    prefix: &str,
    map: &Map<String, Value>,
    known: &[(&str, Kind)],
) -> Result<(), ApiError> {
    for (name, value) in map {
        let path = format!("{prefix}{name}");
        let Some((_, kind)) = known.iter().find(|(k, _)| k == name) else {
            return Err(bad_request(format!("Unrecognized field \"{path}\"")));
        };
        if !value.is_null() {
            check_type(&path, value, *kind)?;
        }
    }
    Ok(())
}

pub(super) fn check_enum(
    field: &str,
    value: Option<&Value>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match value.and_then(Value::as_str) {
        Some(v) if !allowed.contains(&v) => Err(bad_request(format!(
            "Invalid value for field \"{field}\": `{v}` is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

pub(super) fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(bad_request(format!(
            "Invalid value for parameter \"{name}\": `{v}` is not true or false"
        ))),
    }
}
