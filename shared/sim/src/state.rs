//! The state every vendor simulator shares ([`Sim`]): settings, the simulated clock, injected
//! faults, run scripts and counters, issued tokens, the exchange recorder, and the signed,
//! expiring download URLs of result files.
//!
//! It knows no vendor: the vendors' routes take it as their state, and `server.rs` mounts them
//! (through the registry) beside the routes that serve files and the admin routes.

use std::sync::{Arc, OnceLock};

use runbridge_core::VendorKind;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::record::Recorder;
use crate::{csvgen, Control, Faults, RunScript, SimClock, Tokens};

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Lifetime of issued access tokens, in simulated seconds.
    pub token_ttl_seconds: u64,
    /// Lifetime of download URLs, in simulated seconds.
    pub download_url_ttl_seconds: u64,
    /// The script of runs when none is queued.
    pub default_script: RunScript,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            speed: 1.0,
            token_ttl_seconds: 3_600,
            download_url_ttl_seconds: 3_600,
            default_script: RunScript::default(),
        }
    }
}

/// Shared state of all vendor simulators.
#[derive(Debug)]
pub struct Sim {
    /// Settings.
    pub config: SimConfig,
    /// Simulated time.
    pub clock: SimClock,
    /// Injected faults (shared with the fault middleware).
    pub faults: Arc<Faults>,
    /// Run scripts and counters.
    pub control: Control,
    /// Issued tokens.
    pub tokens: Tokens,
    /// Recorded JSON exchanges (off until enabled; shared with the recording middleware).
    pub recorder: Arc<Recorder>,
    base_url: OnceLock<String>,
    signing_key: String,
    /// ETags of served files by `(seed, rows)`: computing one is a pass over the whole file.
    file_etags: std::sync::Mutex<std::collections::HashMap<(u64, u64), String>>,
    /// Result files written out in advance, by row count (see [`Sim::prebuild`]).
    prebuilt: std::sync::Mutex<std::collections::HashMap<u64, Prebuilt>>,
}

/// A result file generated once into a file, served from it (the page cache) instead of being
/// generated again on every download.
#[derive(Debug, Clone)]
struct Prebuilt {
    seed: u64,
    path: std::path::PathBuf,
}

impl Sim {
    /// A simulator with `config`; serve it with [`crate::SimHandle::start`] or [`Sim::router`].
    pub fn new(config: SimConfig) -> Arc<Self> {
        let clock = SimClock::new(config.speed);
        let control = Control::default();
        for vendor in VendorKind::ALL {
            control.set_default_script(vendor, config.default_script.clone());
        }
        Arc::new(Self {
            config,
            clock,
            faults: Default::default(),
            control,
            tokens: Tokens::default(),
            recorder: Default::default(),
            base_url: OnceLock::new(),
            signing_key: uuid::Uuid::new_v4().to_string(),
            file_etags: Default::default(),
            prebuilt: Default::default(),
        })
    }

    /// Generates the result file of `rows` rows (seed `seed`) into `path` once, with its ETag,
    /// and from then on serves every AMC result file of `rows` rows from it: all runs of that
    /// size share these bytes (their download URLs name this seed). For benchmarks, whose
    /// download leg must measure transport rather than CSV generation. Blocking; call it before
    /// serving.
    pub fn prebuild(&self, seed: u64, rows: u64, path: &std::path::Path) -> std::io::Result<()> {
        use md5::Digest as _;
        use std::io::Write as _;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        let mut md5 = md5::Md5::new();
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(csvgen::HEADER.as_bytes());
        for i in 0..rows {
            csvgen::write_row(&mut buf, seed, i);
            if buf.len() >= (1 << 20) - csvgen::ROW_LEN {
                md5.update(&buf);
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        md5.update(&buf);
        out.write_all(&buf)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let etag = format!("\"{}\"", hex::encode(md5.finalize()));
        self.file_etags
            .lock()
            .expect("etags lock")
            .insert((seed, rows), etag);
        self.prebuilt.lock().expect("prebuilt lock").insert(
            rows,
            Prebuilt {
                seed,
                path: path.to_owned(),
            },
        );
        Ok(())
    }

    /// The seed of the prebuilt file of `rows` rows, if there is one.
    pub(crate) fn prebuilt_seed(&self, rows: u64) -> Option<u64> {
        self.prebuilt
            .lock()
            .expect("prebuilt lock")
            .get(&rows)
            .map(|p| p.seed)
    }

    pub(crate) fn prebuilt_path(&self, seed: u64, rows: u64) -> Option<std::path::PathBuf> {
        self.prebuilt
            .lock()
            .expect("prebuilt lock")
            .get(&rows)
            .filter(|p| p.seed == seed)
            .map(|p| p.path.clone())
    }

    /// The URL clients reach the simulator at, e.g. `http://127.0.0.1:41234` (set when served).
    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1")
    }

    /// Records the URL the simulator is served at.
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    /// A signed, expiring download URL for part `name` of `run` holding `rows` rows of seed `seed`.
    pub fn download_url(
        &self,
        vendor: VendorKind,
        run: &str,
        name: &str,
        rows: u64,
        seed: u64,
    ) -> String {
        let expires =
            (self.clock.now().unix_timestamp() as u64) + self.config.download_url_ttl_seconds;
        let file = SignedFile {
            vendor,
            run,
            name,
            rows,
            seed,
            expires,
        };
        let sig = self.sign(&file);
        format!("{}/__sim/files/{vendor}/{run}/{name}?rows={rows}&seed={seed}&expires={expires}&sig={sig}", self.base_url())
    }

    /// The signature of a download URL: a keyed hash of everything it names.
    pub(crate) fn sign(&self, f: &SignedFile<'_>) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.signing_key, f.vendor, f.run, f.name, f.rows, f.seed, f.expires
        ));
        hex::encode(&h.finalize()[..16])
    }

    /// The quoted ETag S3 would give the file of `rows` rows of seed `seed`: the hex MD5 of its
    /// bytes, as for a single-part object stored unencrypted or with SSE-S3.
    pub(crate) async fn file_etag(&self, seed: u64, rows: u64) -> String {
        if let Some(etag) = self
            .file_etags
            .lock()
            .expect("etags lock")
            .get(&(seed, rows))
        {
            return etag.clone();
        }
        // Hashing a large file is CPU work: keep it off the async workers.
        let digest = tokio::task::spawn_blocking(move || csvgen::md5(seed, rows))
            .await
            .expect("hashing does not panic");
        let etag = format!("\"{}\"", hex::encode(digest));
        self.file_etags
            .lock()
            .expect("etags lock")
            .insert((seed, rows), etag.clone());
        etag
    }

    /// A stable seed for a run's part, so the same run always yields the same bytes.
    pub fn seed_for(run: &str, part: u32) -> u64 {
        let d = Sha256::digest(format!("{run}/{part}"));
        u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
    }
}

/// What a download URL names: part `name` of `run`, `rows` rows of seed `seed`, valid until
/// `expires` (simulated unix seconds).
pub(crate) struct SignedFile<'a> {
    pub(crate) vendor: VendorKind,
    pub(crate) run: &'a str,
    pub(crate) name: &'a str,
    pub(crate) rows: u64,
    pub(crate) seed: u64,
    pub(crate) expires: u64,
}

/// The simulators' time, for handlers that share it through an `Arc<Sim>`.
impl runbridge_core::Clock for Sim {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
