//! Amperity simulator — being written; registered so the workspace builds meanwhile.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use runbridge_core::VendorKind;

use super::SimVendor;
use crate::Sim;

/// Registry entry.
pub const SIM: SimVendor = SimVendor {
    kind: VendorKind::Amperity,
    router,
    error,
    settings,
};

fn router(_sim: Arc<Sim>) -> Router {
    Router::new()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"message": message}))).into_response()
}

fn settings(_base: &str) -> Vec<(String, String)> {
    Vec::new()
}
