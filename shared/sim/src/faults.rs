//! Fault injection: rules matched against each request, applied before or after the handler.
//!
//! Faults before the handler model a vendor that never saw the request (429, 5xx, a connection
//! dropped on arrival, a slow answer); faults after it model a vendor that acted but whose answer
//! was lost or damaged (a dropped response, a truncated or corrupted body).

use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use runbridge_core::VendorKind;
use serde::{Deserialize, Serialize};

/// One kind of fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (and `Retry-After`) without handling the request.
    Status {
        /// HTTP status, e.g. 429, 500, 503.
        status: u16,
        /// `Retry-After` seconds.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long, then handle the request normally.
    Delay {
        /// Milliseconds of real time.
        millis: u64,
    },
    /// Close the connection without handling the request.
    DropConnection,
    /// Handle the request, then close the connection instead of answering.
    DropResponse,
    /// Handle the request, send the status and the first `keep_bytes` of the body, then break
    /// the connection.
    TruncateBody {
        /// Bytes delivered before the break.
        keep_bytes: u64,
    },
    /// Handle the request, send the status, the headers and the first `keep_bytes` of the body,
    /// then send nothing for `millis` of real time (a stalled download), then break the
    /// connection.
    StallBody {
        /// Bytes delivered before the stall.
        keep_bytes: u64,
        /// Milliseconds of silence.
        millis: u64,
    },
    /// Handle the request, send the status, the headers and the first `keep_bytes` of the body,
    /// then the rest one byte every `every_millis` of real time: a source that never goes quiet
    /// long enough to trip an idle timer, yet never finishes.
    DripBody {
        /// Bytes delivered at once.
        keep_bytes: u64,
        /// Milliseconds between two of the following bytes.
        every_millis: u64,
    },
    /// Handle the request and flip one bit in the body (same length, wrong bytes).
    CorruptBody,
    /// Answer with this status and body without handling the request (a gateway error page, a
    /// token endpoint echoing the request it refused).
    Answer {
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Answer with this status and a body that echoes the request received — its method, URL
    /// (query included), every header (`Authorization` included) and its body (a token form) —
    /// in `shape`, without handling it: a vendor or gateway quoting what it refused.
    Echo {
        /// HTTP status.
        status: u16,
        /// How the echo is wrapped.
        shape: EchoShape,
    },
    /// Handle the request, then answer its status with this body instead of the real one (a
    /// gateway's HTML page, a reply of the wrong shape): the request took effect, the answer is
    /// unreadable.
    ReplaceBody {
        /// The body sent instead.
        body: String,
    },
}

/// How an [`Fault::Echo`] wraps the request it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoShape {
    /// Plain text.
    Text,
    /// A JSON error object with the echo under every key vendors put a message in (`error`,
    /// `error_description`, `message`, `details`, `detail`, `title`, `errors[].message`, …).
    Json,
    /// As [`EchoShape::Json`], with every `/` escaped as `\/` (as some encoders write it).
    JsonEscapedSlashes,
    /// The echo URL-encoded, as a form value (`error_description=…`).
    UrlEncoded,
}

impl EchoShape {
    /// Every shape.
    pub const ALL: [EchoShape; 4] = [
        EchoShape::Text,
        EchoShape::Json,
        EchoShape::JsonEscapedSlashes,
        EchoShape::UrlEncoded,
    ];

    /// The body quoting `echo` in this shape.
    pub fn body(self, echo: &str) -> String {
        let json = || {
            serde_json::json!({
                "error": echo,
                "error_description": echo,
                "message": echo,
                "details": echo,
                "detail": echo,
                "title": echo,
                "error_code": echo,
                "type": echo,
                "errors": [{"message": echo, "detail": echo, "field": echo}],
                "report": {"detailed-message": echo, "message": echo},
                "field": echo,
            })
            .to_string()
        };
        match self {
            EchoShape::Text => echo.to_owned(),
            EchoShape::Json => json(),
            EchoShape::JsonEscapedSlashes => json().replace('/', "\\/"),
            EchoShape::UrlEncoded => format!(
                "error=invalid_request&error_description={}",
                form_encode(echo)
            ),
        }
    }
}

/// `text` as an `application/x-www-form-urlencoded` value.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text an echo quotes: the request line, every header and the body.
async fn echo_of(request: Request) -> String {
    let (parts, body) = request.into_parts();
    let mut text = format!("{} {}", parts.method, parts.uri);
    for (name, value) in &parts.headers {
        text.push_str(&format!(
            " {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    text.push_str(" body: ");
    text.push_str(&String::from_utf8_lossy(&body));
    text
}

/// When a fault applies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// Only requests to this vendor's routes; any vendor when absent.
    #[serde(default)]
    pub vendor: Option<VendorKind>,
    /// Only this HTTP method (upper case); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths containing this text; any path when empty.
    #[serde(default)]
    pub path_contains: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests it hits before it is used up.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// A rule hitting the next `times` requests to `vendor` whose path contains `path_contains`.
    pub fn new(
        vendor: VendorKind,
        method: Option<&str>,
        path_contains: &str,
        fault: Fault,
        times: u32,
    ) -> Self {
        Self {
            vendor: Some(vendor),
            method: method.map(str::to_owned),
            path_contains: path_contains.to_owned(),
            fault,
            times,
        }
    }
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    /// Adds a rule; rules are tried in insertion order.
    pub fn inject(&self, rule: FaultRule) {
        self.rules.lock().expect("faults lock").push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().expect("faults lock").clear();
    }

    /// Hits not yet used by any request, over all rules: zero once every injected fault
    /// happened, which tests check to know a fault was not silently missed.
    pub fn pending(&self) -> u32 {
        self.rules
            .lock()
            .expect("faults lock")
            .iter()
            .map(|r| r.times)
            .sum()
    }

    /// Takes the fault for a request, using up one hit of its rule.
    pub fn take(&self, vendor: VendorKind, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("faults lock");
        let index = rules.iter().position(|r| {
            r.times > 0
                && r.vendor.is_none_or(|v| v == vendor)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.contains(&r.path_contains)
        })?;
        let rule = &mut rules[index];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            rules.remove(index);
        }
        Some(fault)
    }
}

/// Per-vendor input of the fault middleware: the vendor and its error body shape.
#[derive(Clone)]
pub struct FaultLayerState {
    /// The simulator's injected faults.
    pub faults: std::sync::Arc<Faults>,
    /// The vendor whose routes these are.
    pub vendor: VendorKind,
    /// Builds the vendor's error response for an injected status.
    pub error: fn(StatusCode, &str) -> Response,
}

/// Ends the connection task without an answer: hyper closes the socket, as a crashed or
/// overloaded load balancer would. `resume_unwind` skips the panic hook, so nothing is printed.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("runbridge-sim: injected connection drop"))
}

/// The middleware applying [`Faults`] to a vendor's routes.
pub async fn apply(State(state): State<FaultLayerState>, request: Request, next: Next) -> Response {
    let fault = state.faults.take(
        state.vendor,
        request.method().as_str(),
        request.uri().path(),
    );
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    tracing::info!(vendor = %state.vendor, path = request.uri().path(), ?fault, "injecting fault");
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (state.error)(status, status.canonical_reason().unwrap_or("error"));
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            response
        }
        Fault::Delay { millis } => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            next.run(request).await
        }
        Fault::DropConnection => drop_connection(),
        Fault::DropResponse => {
            let _ = next.run(request).await;
            drop_connection()
        }
        Fault::TruncateBody { keep_bytes } => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let mut left = keep_bytes;
            let stream = body.into_data_stream().map(move |chunk| {
                let chunk = chunk.map_err(std::io::Error::other)?;
                if left == 0 {
                    return Err(std::io::Error::other("runbridge-sim: injected truncation"));
                }
                let take = (chunk.len() as u64).min(left);
                left -= take;
                Ok(chunk.slice(..take as usize))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
        Fault::StallBody { keep_bytes, millis } => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let mut left = keep_bytes;
            let prefix = body
                .into_data_stream()
                .map(move |chunk| {
                    chunk.map_err(std::io::Error::other).map(|chunk| {
                        let take = (chunk.len() as u64).min(left);
                        left -= take;
                        chunk.slice(..take as usize)
                    })
                })
                .take_while(|r| std::future::ready(!matches!(r, Ok(c) if c.is_empty())));
            let stall = futures::stream::once(async move {
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                Err(std::io::Error::other("runbridge-sim: injected stall"))
            });
            Response::from_parts(parts, Body::from_stream(prefix.chain(stall)))
        }
        Fault::Answer { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response
        }
        Fault::Echo { status, shape } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = Response::new(Body::from(shape.body(&echo_of(request).await)));
            *response.status_mut() = status;
            response
        }
        Fault::ReplaceBody { body } => {
            let response = next.run(request).await;
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        Fault::DripBody {
            keep_bytes,
            every_millis,
        } => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let keep = (keep_bytes as usize).min(bytes.len());
            let head = futures::stream::iter([Ok::<_, std::io::Error>(bytes.slice(..keep))]);
            let rest = bytes.slice(keep..);
            let drip = futures::stream::unfold(0usize, move |at| {
                let rest = rest.clone();
                async move {
                    if at >= rest.len() {
                        return None;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(every_millis)).await;
                    Some((Ok(rest.slice(at..at + 1)), at + 1))
                }
            });
            Response::from_parts(parts, Body::from_stream(head.chain(drip)))
        }
        Fault::CorruptBody => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let mut done = false;
            let stream = body.into_data_stream().map(move |chunk| {
                let chunk = chunk.map_err(std::io::Error::other)?;
                if done || chunk.is_empty() {
                    return Ok::<_, std::io::Error>(chunk);
                }
                done = true;
                let mut bytes = chunk.to_vec();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                Ok(bytes::Bytes::from(bytes))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}
