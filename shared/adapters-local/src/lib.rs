//! Local adapters: a directory [`ResultSink`], a directory [`Ledger`], a logging [`Events`], and
//! [`LocalExecutions`], which runs the deployed state machine definition
//! ([`STATE_MACHINE_ASL`]) with the ASL interpreter, invoking the poll and collect handlers
//! in-process where Step Functions would invoke the Lambdas.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use runbridge_asl::{Execution, StateMachine, TaskFailure, TaskInvoker, WaitClock};
use runbridge_core::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use runbridge_handlers::collect::{CollectInput, Collector};
use runbridge_handlers::poll::{PollInput, Poller};
use runbridge_handlers::ports::{
    Claim, Events, Executions, Ledger, LedgerEntry, PartWriter, ResultSink, RunEvent, StartOutcome,
};
use runbridge_handlers::{Clock, HandlerError};

/// The state machine Step Functions runs, compiled in from `infra/`.
pub const STATE_MACHINE_ASL: &str = include_str!("../../../infra/statemachine.asl.json");

/// Resource ARN the local runner substitutes for `${PollFunctionArn}`.
pub const LOCAL_POLL_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-poll";
/// Resource ARN the local runner substitutes for `${CollectFunctionArn}`.
pub const LOCAL_COLLECT_ARN: &str = "arn:aws:lambda:local:000000000000:function:runbridge-collect";

fn io_error(port: &'static str, e: std::io::Error) -> HandlerError {
    HandlerError::port(port, e, true)
}

/// Results in a local directory, with the same keys as in S3. Files are written to a hidden
/// temporary name and renamed into place, so a reader never sees a partial file.
#[derive(Debug, Clone)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory results land in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, HandlerError> {
        // Keys are built from validated components; refuse anything else rather than trust it.
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            || key.starts_with('/')
        {
            return Err(HandlerError::port(
                "sink",
                format!("refusing unsafe key {key:?}"),
                false,
            ));
        }
        Ok(self.root.join(key))
    }
}

struct DirPart {
    tmp: PathBuf,
    dest: PathBuf,
    file: tokio::fs::File,
}

async fn temp_for(dest: &Path) -> Result<(PathBuf, tokio::fs::File), HandlerError> {
    let dir = dest.parent().expect("keys have a parent");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_error("sink", e))?;
    let name = dest
        .file_name()
        .expect("keys have a file name")
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.partial",
        std::process::id() as u64 ^ rand_suffix()
    ));
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io_error("sink", e))?;
    Ok((tmp, file))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[async_trait]
impl PartWriter for DirPart {
    async fn write(&mut self, chunk: Bytes) -> Result<(), HandlerError> {
        self.file
            .write_all(&chunk)
            .await
            .map_err(|e| io_error("sink", e))
    }
    async fn finish(mut self: Box<Self>) -> Result<(), HandlerError> {
        self.file.flush().await.map_err(|e| io_error("sink", e))?;
        self.file
            .sync_all()
            .await
            .map_err(|e| io_error("sink", e))?;
        tokio::fs::rename(&self.tmp, &self.dest)
            .await
            .map_err(|e| io_error("sink", e))
    }
    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[async_trait]
impl ResultSink for DirSink {
    async fn create(&self, key: &str) -> Result<Box<dyn PartWriter>, HandlerError> {
        let dest = self.path(key)?;
        let (tmp, file) = temp_for(&dest).await?;
        Ok(Box::new(DirPart { tmp, dest, file }))
    }

    async fn publish(&self, from: &str, to: &str) -> Result<(), HandlerError> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        tokio::fs::create_dir_all(to.parent().expect("keys have a parent"))
            .await
            .map_err(|e| io_error("sink", e))?;
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| io_error("sink", e))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), HandlerError> {
        let mut part = self.create(key).await?;
        part.write(body).await?;
        part.finish().await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, HandlerError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("sink", e)),
        }
    }
}

/// A ledger of one JSON file per key in a directory; claims use create-new, which the OS makes
/// atomic, so concurrent deliveries (even from several processes) claim a key once.
#[derive(Debug, Clone)]
pub struct DirLedger {
    dir: PathBuf,
}

impl DirLedger {
    /// A ledger in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

#[async_trait]
impl Ledger for DirLedger {
    async fn claim(&self, entry: LedgerEntry) -> Result<Claim, HandlerError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error("ledger", e))?;
        let path = self.path(entry.key.as_str());
        let body = serde_json::to_vec(&entry).expect("ledger entries serialise");
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(mut f) => {
                f.write_all(&body)
                    .await
                    .map_err(|e| io_error("ledger", e))?;
                f.sync_all().await.map_err(|e| io_error("ledger", e))?;
                Ok(Claim::New(entry))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // The winner may be mid-write: an empty or partial file reads as "in progress".
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| io_error("ledger", e))?;
                match serde_json::from_slice::<LedgerEntry>(&bytes) {
                    Ok(existing) => Ok(Claim::Existing(existing)),
                    Err(_) => Ok(Claim::Existing(LedgerEntry {
                        submitted: None,
                        ..entry
                    })),
                }
            }
            Err(e) => Err(io_error("ledger", e)),
        }
    }

    async fn record_submitted(&self, entry: &LedgerEntry) -> Result<(), HandlerError> {
        let path = self.path(entry.key.as_str());
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec(entry).expect("ledger entries serialise");
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("ledger", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("ledger", e))
    }
}

/// Events kept in memory and logged.
#[derive(Debug, Default)]
pub struct LogEvents {
    events: Mutex<Vec<RunEvent>>,
}

impl LogEvents {
    /// Everything published so far.
    pub fn published(&self) -> Vec<RunEvent> {
        self.events.lock().expect("events lock").clone()
    }
}

#[async_trait]
impl Events for LogEvents {
    async fn publish(&self, event: &RunEvent) -> Result<(), HandlerError> {
        tracing::info!(detail_type = %event.detail_type, key = %event.key, state = %event.state, "run event");
        self.events.lock().expect("events lock").push(event.clone());
        Ok(())
    }
}

/// Wait states that pass `speed` times faster than real time, reading the handlers' clock.
pub struct ScaledWaitClock {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// The clock the handlers use.
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl WaitClock for ScaledWaitClock {
    async fn sleep(&self, seconds: f64) {
        tokio::time::sleep(std::time::Duration::from_secs_f64(
            (seconds / self.speed).max(0.0),
        ))
        .await;
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// Invokes the poll and collect handlers where the definition names their Lambda ARNs.
pub struct HandlerTasks {
    /// The poll handler.
    pub poller: Arc<Poller>,
    /// The collect handler.
    pub collector: Arc<Collector>,
}

fn task_error(e: HandlerError) -> TaskFailure {
    TaskFailure {
        error: e.error_type().to_owned(),
        cause: e.to_string(),
    }
}

#[async_trait]
impl TaskInvoker for HandlerTasks {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        let bad = |e: serde_json::Error| task_error(HandlerError::BadInput(e.to_string()));
        match resource {
            LOCAL_POLL_ARN => {
                let input: PollInput = serde_json::from_value(input).map_err(bad)?;
                let out = self.poller.poll(input).await.map_err(task_error)?;
                Ok(serde_json::to_value(out).expect("poll output serialises"))
            }
            LOCAL_COLLECT_ARN => {
                let input: CollectInput = serde_json::from_value(input).map_err(bad)?;
                let out = self.collector.collect(input).await.map_err(task_error)?;
                Ok(serde_json::to_value(out).expect("collect output serialises"))
            }
            other => Err(TaskFailure {
                error: "States.TaskFailed".into(),
                cause: format!("no local handler for {other}"),
            }),
        }
    }
}

struct Started {
    input: serde_json::Value,
    task: Option<tokio::task::JoinHandle<Execution>>,
    result: Option<Execution>,
}

/// Step Functions, locally: each execution runs [`STATE_MACHINE_ASL`] in a task. Starting a name
/// twice with the same input is a no-op, with another input an error, as in Step Functions.
pub struct LocalExecutions {
    machine: Arc<StateMachine>,
    tasks: Arc<dyn TaskInvoker>,
    clock: Arc<dyn WaitClock>,
    started: Mutex<HashMap<String, Started>>,
}

impl LocalExecutions {
    /// Executions of the deployed definition, invoking `tasks` (normally [`HandlerTasks`]),
    /// waiting on `clock`.
    pub fn new(
        tasks: Arc<dyn TaskInvoker>,
        clock: Arc<dyn WaitClock>,
    ) -> Result<Self, HandlerError> {
        let subs = HashMap::from([
            ("PollFunctionArn".to_owned(), LOCAL_POLL_ARN.to_owned()),
            (
                "CollectFunctionArn".to_owned(),
                LOCAL_COLLECT_ARN.to_owned(),
            ),
        ]);
        let machine = StateMachine::from_json(STATE_MACHINE_ASL, &subs).map_err(|e| {
            HandlerError::port(
                "executions",
                format!("state machine definition: {e}"),
                false,
            )
        })?;
        Ok(Self {
            machine: Arc::new(machine),
            tasks,
            clock,
            started: Mutex::new(HashMap::new()),
        })
    }

    /// Names of all started executions.
    pub fn names(&self) -> Vec<String> {
        self.started
            .lock()
            .expect("executions lock")
            .keys()
            .cloned()
            .collect()
    }

    /// The input execution `name` was started with.
    pub fn input(&self, name: &str) -> Option<serde_json::Value> {
        self.started
            .lock()
            .expect("executions lock")
            .get(name)
            .map(|e| e.input.clone())
    }

    /// Waits for execution `name` to end and returns it (None if never started).
    pub async fn wait(&self, name: &str) -> Option<Execution> {
        let task = {
            let mut started = self.started.lock().expect("executions lock");
            let entry = started.get_mut(name)?;
            if let Some(done) = &entry.result {
                return Some(done.clone());
            }
            entry.task.take()
        };
        let execution = match task {
            Some(t) => t.await.expect("execution task does not panic"),
            // Another caller is awaiting it; poll until it stores the result.
            None => loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if let Some(done) = self
                    .started
                    .lock()
                    .expect("executions lock")
                    .get(name)
                    .and_then(|e| e.result.clone())
                {
                    break done;
                }
            },
        };
        self.started
            .lock()
            .expect("executions lock")
            .get_mut(name)?
            .result = Some(execution.clone());
        Some(execution)
    }
}

#[async_trait]
impl Executions for LocalExecutions {
    async fn start(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<StartOutcome, HandlerError> {
        let mut started = self.started.lock().expect("executions lock");
        if let Some(existing) = started.get(name) {
            return if existing.input == input {
                Ok(StartOutcome::AlreadyStarted)
            } else {
                Err(HandlerError::port(
                    "executions",
                    format!("ExecutionAlreadyExists: {name} with a different input"),
                    false,
                ))
            };
        }
        let (machine, tasks, clock) =
            (self.machine.clone(), self.tasks.clone(), self.clock.clone());
        let (name_owned, run_input) = (name.to_owned(), input.clone());
        let task = tokio::spawn(async move {
            machine
                .execute(&name_owned, run_input, tasks.as_ref(), clock.as_ref())
                .await
        });
        started.insert(
            name.to_owned(),
            Started {
                input,
                task: Some(task),
                result: None,
            },
        );
        Ok(StartOutcome::Started)
    }
}
