//! The simulator server: every vendor's routes from the registry, each behind the fault and
//! recording middleware, the route serving result files at their signed URLs, the admin routes
//! (`/__sim/…`), and [`SimHandle`], a server running on a port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbridge_core::VendorKind;
use serde::Deserialize;

use crate::faults::{apply, FaultLayerState};
use crate::state::SignedFile;
use crate::{accounts, csvgen, registry, FaultRule, RunScript, Sim, SimConfig};

/// Mounting the vendors: these need the registry, which the vendors' own modules (taking a
/// [`Sim`] as their state) are listed in, so they live here rather than beside the state.
impl Sim {
    /// Every vendor's routes (each behind the fault middleware) plus the admin routes.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut router = Router::new()
            .route("/__sim/faults", post(add_fault).delete(clear_faults))
            .route("/__sim/scripts/{vendor}", post(push_script))
            .route("/__sim/counters", get(counters))
            .route("/__sim/clock", post(clock))
            .route("/__sim/tokens/{vendor}/expire", post(expire_tokens))
            .with_state(self.clone());
        for entry in registry::ALL {
            let files = Router::new()
                .route(
                    &format!("/__sim/files/{}/{{run}}/{{name}}", entry.kind),
                    get(serve_file),
                )
                .with_state(self.clone());
            // Faults wrap the recorder, so recorded exchanges are what the vendor logic did.
            let vendor_routes = (entry.router)(self.clone())
                .merge(files)
                .layer(axum::middleware::from_fn_with_state(
                    (self.recorder.clone(), entry.kind),
                    crate::record::record,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    FaultLayerState {
                        faults: self.faults.clone(),
                        vendor: entry.kind,
                        error: entry.error,
                    },
                    apply,
                ));
            router = router.merge(vendor_routes);
        }
        router
    }

    /// Client settings (for `runbridge_vendors::Settings`) pointing every vendor at this
    /// simulator, with credentials it accepts.
    pub fn client_settings(&self) -> Vec<(String, String)> {
        let base = self.base_url();
        let mut out = Vec::new();
        for entry in registry::ALL {
            out.push((
                format!("{}.download_allow_loopback", entry.kind),
                "true".to_owned(),
            ));
            for (k, v) in (entry.settings)(base) {
                out.push((format!("{}.{k}", entry.kind), v));
            }
        }
        out
    }

    /// Client settings of `vendor`'s account `account` (one of [`crate::auth::ACCOUNTS`]), keyed
    /// `vendor.setting` like [`Sim::client_settings`]: the same endpoints, that account's
    /// credentials. What a named profile for the account holds.
    pub fn account_settings(&self, vendor: VendorKind, account: &str) -> Vec<(String, String)> {
        let prefix = format!("{vendor}.");
        self.client_settings()
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| {
                let v = match &k[prefix.len()..] {
                    "client_id" => accounts::client_id_of(vendor, account),
                    "client_secret" => accounts::client_secret_of(vendor, account),
                    "refresh_token" => accounts::refresh_token_of(vendor, account),
                    _ => v,
                };
                (k, v)
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct FileQuery {
    rows: u64,
    seed: u64,
    expires: u64,
    sig: String,
}

/// S3-style XML error, as a presigned S3 URL answers.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

async fn serve_file(
    State(sim): State<Arc<Sim>>,
    Path((run, name)): Path<(String, String)>,
    uri: axum::http::Uri,
    query: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let vendor = VendorKind::ALL
        .into_iter()
        .find(|v| uri.path().starts_with(&format!("/__sim/files/{v}/")))
        .expect("route is per vendor");
    let Ok(Query(q)) = query else {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Query-string authentication requires the Signature, Expires and AccessKeyId parameters");
    };
    let file = SignedFile {
        vendor,
        run: &run,
        name: &name,
        rows: q.rows,
        seed: q.seed,
        expires: q.expires,
    };
    if sim.sign(&file) != q.sig {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if (sim.clock.now().unix_timestamp() as u64) >= q.expires {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    sim.control.count(&format!("{vendor}.download"));
    // What a presigned S3 GET answers besides the body: the object's ETag (the MD5 of a
    // single-part object) and S3's request id and server name, by which clients recognise S3.
    let etag = sim.file_etag(q.seed, q.rows).await;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::CONTENT_LENGTH, csvgen::size(q.rows))
        .header(header::ETAG, etag)
        .header(header::SERVER, "AmazonS3")
        .header(
            "x-amz-request-id",
            &uuid::Uuid::new_v4().simple().to_string()[..16],
        )
        .body(match sim.prebuilt_path(q.seed, q.rows) {
            Some(path) => Body::from_stream(read_file(path)),
            None => Body::from_stream(csvgen::stream(q.seed, q.rows)),
        })
        .expect("valid response")
}

/// A file as a stream of 256 KiB chunks, read on a blocking thread a few chunks ahead.
fn read_file(
    path: std::path::PathBuf,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0; 256 * 1024];
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

async fn add_fault(State(sim): State<Arc<Sim>>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.faults.inject(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.faults.clear();
    StatusCode::NO_CONTENT
}

async fn push_script(
    State(sim): State<Arc<Sim>>,
    Path(vendor): Path<String>,
    Json(script): Json<RunScript>,
) -> Response {
    match vendor.parse::<VendorKind>() {
        Ok(v) => {
            sim.control.push_script(v, script);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

async fn counters(State(sim): State<Arc<Sim>>) -> Json<serde_json::Value> {
    let runs: BTreeMap<String, u64> = VendorKind::ALL
        .into_iter()
        .map(|v| (v.to_string(), sim.control.runs_created(v)))
        .collect();
    Json(
        serde_json::json!({ "runs_created": runs, "requests": sim.control.all_requests(), "now": sim.clock.now().unix_timestamp() }),
    )
}

#[derive(Deserialize)]
struct ClockChange {
    #[serde(default)]
    advance_seconds: Option<f64>,
    #[serde(default)]
    speed: Option<f64>,
}

async fn clock(State(sim): State<Arc<Sim>>, Json(change): Json<ClockChange>) -> StatusCode {
    if let Some(s) = change.advance_seconds {
        sim.clock.advance(s);
    }
    if let Some(s) = change.speed {
        sim.clock.set_speed(s);
    }
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): State<Arc<Sim>>, Path(vendor): Path<String>) -> Response {
    match vendor.parse::<VendorKind>() {
        Ok(v) => {
            sim.tokens.expire_all(v, sim.clock.now());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// A running simulator server.
pub struct SimHandle {
    /// The shared state (scripts, faults, counters, clock).
    pub sim: Arc<Sim>,
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// Starts a simulator on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a simulator on `addr`.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = Sim::new(config);
        sim.set_base_url(format!("http://{addr}"));
        let app = sim.router();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        Ok(Self {
            sim,
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client settings pointing at this simulator (see [`Sim::client_settings`]).
    pub fn client_settings(&self) -> Vec<(String, String)> {
        self.sim.client_settings()
    }

    /// See [`Sim::account_settings`].
    pub fn account_settings(&self, vendor: VendorKind, account: &str) -> Vec<(String, String)> {
        self.sim.account_settings(vendor, account)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
