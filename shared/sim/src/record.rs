//! Records JSON exchanges (request and response bodies) so tests can check both directions
//! against the vendors' OpenAPI specs.

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::Response;
use runbridge_core::VendorKind;

/// Largest body kept in a record.
const MAX_BODY: usize = 1 << 20;

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The vendor whose route answered.
    pub vendor: VendorKind,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Request body parsed as JSON (None when empty or not JSON).
    pub request: Option<serde_json::Value>,
    /// Request body exactly as it arrived (lossy UTF-8): what the vendor would read, byte for
    /// byte, where `request` has been through a number-rounding parse.
    pub request_text: String,
    /// Response status.
    pub status: u16,
    /// Response body parsed as JSON (None when not JSON).
    pub response: Option<serde_json::Value>,
}

/// The recorded exchanges.
#[derive(Debug, Default)]
pub struct Recorder {
    enabled: std::sync::atomic::AtomicBool,
    log: Mutex<Vec<Exchange>>,
}

impl Recorder {
    /// Starts recording.
    pub fn enable(&self) {
        self.enabled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// Everything recorded so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().expect("recorder lock").clone()
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// Middleware recording JSON exchanges of one vendor's routes when recording is enabled.
pub async fn record(
    State((recorder, vendor)): State<(Arc<Recorder>, VendorKind)>,
    request: Request,
    next: Next,
) -> Response {
    if !recorder.enabled.load(std::sync::atomic::Ordering::SeqCst) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let req_json = serde_json::from_slice(&bytes).ok();
    let request_text = String::from_utf8_lossy(&bytes).into_owned();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (response, resp_json) = if is_json(response.headers()) {
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
        let json = serde_json::from_slice(&bytes).ok();
        (Response::from_parts(parts, Body::from(bytes)), json)
    } else {
        (response, None)
    };
    recorder.log.lock().expect("recorder lock").push(Exchange {
        vendor,
        method,
        path,
        query,
        request: req_json,
        request_text,
        status: response.status().as_u16(),
        response: resp_json,
    });
    response
}
