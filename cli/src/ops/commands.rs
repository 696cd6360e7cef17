//! The operator commands: each composes [`Ops`] calls into an [`Output`] (text for people,
//! JSON for scripts) or an [`OpsError`] whose exit code says why it failed.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use runbridge_core::{
    HandleRef, IdempotencyKey, Manifest, ResultLayout, RunHandle, RunOutcome, RunRequest,
    VendorKind,
};
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use super::backfill::{self, Every};
use super::client::{Execution, Ops};
use super::OpsError;

/// What a command reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The `--json` document.
    pub json: Value,
    /// The text for people.
    pub text: String,
    /// Set when the command succeeded but reports a run that did not (exit code 1).
    pub run_failed: Option<String>,
}

impl Output {
    /// A successful report.
    pub fn ok_public(json: Value, text: String) -> Self {
        Self::ok(json, text)
    }

    fn ok(json: Value, text: String) -> Self {
        Self {
            json,
            text,
            run_failed: None,
        }
    }

    /// Prints the report on stdout; the error (exit code 1) for a failed run.
    pub fn finish(self, as_json: bool) -> Result<(), OpsError> {
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json).expect("JSON serialises")
            );
        } else {
            println!("{}", self.text.trim_end());
        }
        match self.run_failed {
            Some(why) => Err(OpsError::RunFailed(why)),
            None => Ok(()),
        }
    }
}

fn epoch_rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Reads and validates request files (all of them before anything is sent).
pub fn read_requests(
    files: &[std::path::PathBuf],
) -> Result<Vec<(String, RunRequest, String)>, OpsError> {
    if files.is_empty() {
        return Err(OpsError::Invalid("no request files given".into()));
    }
    files
        .iter()
        .map(|path| {
            let label = path.display().to_string();
            let body = std::fs::read(path)
                .map_err(|e| OpsError::Invalid(format!("{label}: cannot read: {e}")))?;
            let request = crate::validate_request(&body)
                .map_err(|e| OpsError::Invalid(format!("{label}: {e}")))?;
            let text = String::from_utf8(body).expect("from_json checked UTF-8");
            Ok((label, request, text))
        })
        .collect()
}

/// The key the trigger derives for `request`, when it can be known before sending: a request
/// with a `request_id` (without one, the key hashes the time SQS received the message).
pub fn predicted_key(request: &RunRequest) -> Option<String> {
    request.request_id.as_ref()?;
    let resolved = request.resolve(OffsetDateTime::now_utc());
    Some(IdempotencyKey::for_request(&resolved, None).to_string())
}

/// `submit`: validates every file, then sends each to the request queue.
pub async fn submit(ops: &Ops, files: &[std::path::PathBuf]) -> Result<Output, OpsError> {
    let requests = read_requests(files)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    for (label, request, body) in requests {
        let message_id = ops.send_request(&body).await?;
        let key = predicted_key(&request);
        text.push_str(&format!(
            "{label}: sent ({}) key {}\n",
            request.vendor(),
            key.as_deref()
                .unwrap_or("assigned by the trigger (no request_id; find it with `runbridge list --since 10m`)")
        ));
        rows.push(json!({"file": label, "vendor": request.vendor(), "key": key, "message_id": message_id}));
    }
    Ok(Output::ok(Value::Array(rows), text))
}

/// A run's state as `status` and `list` name it.
fn state_of_execution(status: &str) -> &'static str {
    match status {
        "RUNNING" => "running",
        "SUCCEEDED" => "succeeded",
        "FAILED" | "TIMED_OUT" => "failed",
        "ABORTED" => "aborted",
        "PENDING_REDRIVE" => "pending_redrive",
        _ => "unknown",
    }
}

/// Everything `status` knows about one run.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The key.
    pub key: String,
    /// `claimed`, `submitted`, `queued` (waiting for a concurrency slot, nothing submitted),
    /// `running`, `succeeded`, `failed`, `cancelled` or `aborted`.
    pub state: String,
    /// The vendor.
    pub vendor: Option<VendorKind>,
    /// The vendor's run id.
    pub vendor_run_id: Option<String>,
    /// When the key was claimed.
    pub claimed_at: Option<String>,
    /// When the vendor accepted the run.
    pub submitted_at: Option<String>,
    /// When runbridge gives up on it.
    pub deadline_at: Option<String>,
    /// Status calls made so far.
    pub polls: Option<u32>,
    /// The last vendor state seen.
    pub vendor_state: Option<String>,
    /// When the next status call is due (a running execution).
    pub next_poll_at: Option<String>,
    /// The Step Functions execution.
    pub execution: Option<Execution>,
    /// The manifest's summary, once collect wrote it.
    pub manifest: Option<RunOutcome>,
    /// Why the run did not succeed.
    pub reason: Option<String>,
    /// Whose fault that was (`customer`, `platform`), when known.
    pub attribution: Option<String>,
    /// The ledger entry's `attempt` (1 when absent).
    pub attempt: u64,
}

/// `status KEY`.
pub async fn status(ops: &Ops, key: &str) -> Result<Output, OpsError> {
    let run_key = super::run_key(key)?;
    let ledger = ops.ledger_entry(key).await?;
    let execution = ops.describe_execution(key).await?;
    if ledger.is_none() && execution.is_none() {
        return Err(OpsError::NotFound(format!(
            "no run with key {key}: no ledger entry and no execution"
        )));
    }
    // The handle: the latest one in the history, else the execution input, else the ledger's.
    let mut next_poll_at = None;
    let mut queued = false;
    let mut handle: Option<RunHandle> = None;
    if let Some(exec) = &execution {
        let latest = ops.latest_handle_document(&exec.arn).await;
        let (doc, at) = match latest {
            Some(l) => (Some(l.document), l.at),
            None => (
                exec.input
                    .as_deref()
                    .and_then(|i| serde_json::from_str::<Value>(i).ok()),
                exec.started,
            ),
        };
        if let Some(doc) = doc {
            handle = doc
                .get("handle")
                .and_then(|h| handle_from_reference(h, ledger.as_ref()?));
            if exec.status == "RUNNING" {
                queued = doc.get("queued").and_then(Value::as_bool) == Some(true);
                if let Some(wait) = doc.get("wait_seconds").and_then(Value::as_i64) {
                    next_poll_at = (at + time::Duration::seconds(wait)).format(&Rfc3339).ok();
                }
            }
        }
    }
    if handle.is_none() {
        handle = ledger.as_ref().and_then(handle_from_ledger);
    }
    let mut manifest = None;
    if let Some(h) = &handle {
        let layout = ResultLayout::new(ops.stack.results_prefix())
            .map_err(|e| OpsError::Invalid(format!("results prefix: {e}")))?;
        let manifest_key = layout.paths(h).manifest();
        if let Some(bytes) = ops.get_object(&manifest_key).await? {
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                OpsError::Aws(format!("manifest {manifest_key} is unreadable: {e}"))
            })?;
            manifest = Some(RunOutcome::of(&m, manifest_key));
        }
    }
    let state = if let Some(m) = &manifest {
        m.state.as_str().to_ascii_lowercase()
    } else if queued {
        "queued".to_owned()
    } else if let Some(e) = &execution {
        state_of_execution(&e.status).to_owned()
    } else if ledger
        .as_ref()
        .is_some_and(|l| l.get("submitted").is_some())
    {
        "submitted".to_owned()
    } else {
        "claimed".to_owned()
    };
    let reason = manifest
        .as_ref()
        .and_then(|m| m.reason.clone())
        .or_else(|| {
            execution.as_ref().and_then(|e| match (&e.error, &e.cause) {
                (Some(err), Some(cause)) => Some(format!("{err}: {cause}")),
                (Some(err), None) => Some(err.clone()),
                (None, Some(cause)) => Some(cause.clone()),
                (None, None) => None,
            })
        });
    let attribution = manifest.as_ref().and_then(|m| m.attribution).map(|a| {
        serde_json::to_value(a)
            .expect("serialises")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    let submitted = ledger.as_ref().and_then(|l| l.get("submitted"));
    let report = StatusReport {
        key: key.to_owned(),
        vendor: Some(handle.as_ref().map_or(run_key.vendor(), RunHandle::vendor)),
        vendor_run_id: handle
            .as_ref()
            .and_then(|h| h.vendor_run_id.clone())
            .or_else(|| {
                submitted
                    .and_then(|s| s.get("vendor_run_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
        claimed_at: ledger
            .as_ref()
            .and_then(|l| l.get("claimed_at"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        submitted_at: handle
            .as_ref()
            .and_then(|h| h.submitted_at.format(&Rfc3339).ok()),
        deadline_at: handle
            .as_ref()
            .and_then(|h| h.deadline_at.format(&Rfc3339).ok()),
        polls: manifest
            .as_ref()
            .map(|m| m.polls)
            .or(handle.as_ref().map(|h| h.polls)),
        vendor_state: handle
            .as_ref()
            .and_then(|h| h.timeline.last())
            .map(|c| c.vendor_state.clone()),
        next_poll_at,
        attempt: ledger
            .as_ref()
            .and_then(|l| l.pointer("/request/attempt"))
            .and_then(Value::as_u64)
            .unwrap_or(1),
        execution,
        manifest,
        reason,
        attribution,
        state,
    };
    let failed = matches!(report.state.as_str(), "failed" | "cancelled" | "aborted");
    let text = status_text(&report);
    let json = serde_json::to_value(&report).expect("reports serialise");
    Ok(Output {
        json,
        text,
        run_failed: failed.then(|| {
            format!(
                "run {key} {}{}",
                report.state,
                report
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        }),
    })
}

/// An execution's handle reference (`{"handle": …}` of its input or a state's output) made whole
/// with the request of the key's ledger entry: the execution does not carry the request.
fn handle_from_reference(reference: &Value, entry: &Value) -> Option<RunHandle> {
    let reference: HandleRef = serde_json::from_value(reference.clone()).ok()?;
    let request = serde_json::from_value(entry.get("request")?.clone()).ok()?;
    reference.with_request(request).ok()
}

fn handle_from_ledger(entry: &Value) -> Option<RunHandle> {
    let submitted = entry.get("submitted")?;
    let request = serde_json::from_value(entry.get("request")?.clone()).ok()?;
    let at = OffsetDateTime::parse(submitted.get("submitted_at")?.as_str()?, &Rfc3339).ok()?;
    Some(RunHandle::new(
        IdempotencyKey::from_string(entry.get("key")?.as_str()?.to_owned()),
        request,
        submitted.get("vendor_run_id")?.as_str()?.to_owned(),
        at,
    ))
}

fn status_text(r: &StatusReport) -> String {
    let mut lines = vec![
        format!("key            {}", r.key),
        format!("state          {}", r.state),
    ];
    let mut field = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            lines.push(format!("{name:<14} {v}"));
        }
    };
    field("vendor", r.vendor.map(|v| v.to_string()));
    field("vendor run id", r.vendor_run_id.clone());
    field("attempt", Some(r.attempt.to_string()));
    field("claimed at", r.claimed_at.clone());
    field("submitted at", r.submitted_at.clone());
    field("deadline", r.deadline_at.clone());
    field(
        "execution",
        r.execution
            .as_ref()
            .map(|e| format!("{} ({})", e.status, e.arn)),
    );
    field("polls", r.polls.map(|p| p.to_string()));
    field("vendor state", r.vendor_state.clone());
    field("next poll", r.next_poll_at.clone());
    field(
        "manifest",
        r.manifest.as_ref().map(|m| {
            format!(
                "{} files, {} bytes, {} rows incl. headers: {}",
                m.files, m.bytes, m.rows, m.manifest_key
            )
        }),
    );
    field("reason", r.reason.clone());
    field("attribution", r.attribution.clone());
    lines.join("\n")
}

/// `list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// Executions still running.
    Running,
    /// Executions that succeeded.
    Succeeded,
    /// Executions that failed or timed out.
    Failed,
    /// Executions stopped (cancelled).
    Aborted,
}

/// Parses a duration such as `90s`, `30m`, `24h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, OpsError> {
    let bad = || {
        OpsError::Invalid(format!(
            "--since `{text}`: must be a number and a unit s, m, h, d or w (e.g. 24h)"
        ))
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListRow {
    /// The key.
    pub key: String,
    /// The vendor (from the key).
    pub vendor: Option<VendorKind>,
    /// `running`, `succeeded`, `failed`, `aborted`; `claimed` for a ledger entry without an
    /// execution (the trigger claimed the key but never started the poll loop).
    pub state: String,
    /// When the execution started (or the ledger entry was last written).
    pub started_at: String,
    /// When it stopped.
    pub stopped_at: Option<String>,
}

/// `list`: executions (newest first) plus ledger entries that have none.
pub async fn list(
    ops: &Ops,
    state: Option<StateFilter>,
    vendor: Option<VendorKind>,
    since: Option<Duration>,
) -> Result<Output, OpsError> {
    let since_epoch =
        since.map(|d| OffsetDateTime::now_utc().unix_timestamp() - d.as_secs() as i64);
    let statuses: Vec<Option<ExecutionStatus>> = match state {
        None => vec![None],
        Some(StateFilter::Running) => vec![Some(ExecutionStatus::Running)],
        Some(StateFilter::Succeeded) => vec![Some(ExecutionStatus::Succeeded)],
        Some(StateFilter::Failed) => vec![
            Some(ExecutionStatus::Failed),
            Some(ExecutionStatus::TimedOut),
        ],
        Some(StateFilter::Aborted) => vec![Some(ExecutionStatus::Aborted)],
    };
    // An execution is named after its key (a collect recovery `<key>=<n>`); a ledger entry after
    // its key. A name that is no key (not runbridge's) has no vendor.
    let vendor_of = |name: &str| {
        IdempotencyKey::from_execution_name(name)
            .ok()
            .map(|key| key.vendor())
    };
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for status in statuses {
        for e in ops.list_executions(status, since_epoch).await? {
            seen.insert(e.name.clone());
            rows.push((
                e.started.unix_timestamp(),
                ListRow {
                    vendor: vendor_of(&e.name),
                    state: state_of_execution(&e.status).to_owned(),
                    key: e.name,
                    started_at: e.started_at,
                    stopped_at: e.stopped_at,
                },
            ));
        }
    }
    if state.is_none() {
        for (key, modified) in ops.ledger_keys(10_000).await? {
            if seen.contains(&key) || since_epoch.is_some_and(|s| modified < s) {
                continue;
            }
            rows.push((
                modified,
                ListRow {
                    vendor: vendor_of(&key),
                    state: "claimed".into(),
                    key,
                    started_at: epoch_rfc3339(modified),
                    stopped_at: None,
                },
            ));
        }
    }
    rows.retain(|(_, r)| vendor.is_none() || r.vendor == vendor);
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    let rows: Vec<ListRow> = rows.into_iter().map(|(_, r)| r).collect();
    let mut text = format!("{:<10} {:<9} {:<26} KEY\n", "STATE", "VENDOR", "STARTED");
    for r in &rows {
        text.push_str(&format!(
            "{:<10} {:<9} {:<26} {}\n",
            r.state,
            r.vendor.map_or("?", VendorKind::as_str),
            r.started_at,
            r.key
        ));
    }
    text.push_str(&format!("{} run(s)", rows.len()));
    Ok(Output::ok(
        serde_json::to_value(&rows).expect("rows serialise"),
        text,
    ))
}

/// `cancel KEY`: stops the run's execution.
pub async fn cancel(ops: &Ops, key: &str) -> Result<Output, OpsError> {
    super::run_key(key)?;
    let Some(exec) = ops.describe_execution(key).await? else {
        return Err(OpsError::NotFound(format!("no execution for key {key}")));
    };
    if exec.status != "RUNNING" {
        let text = format!("{key}: execution already {}; nothing to stop", exec.status);
        return Ok(Output::ok(
            json!({"key": key, "stopped": false, "status": exec.status}),
            text,
        ));
    }
    ops.stop_execution(&exec.arn, "cancelled by an operator (runbridge cancel)")
        .await?;
    Ok(Output::ok(
        json!({"key": key, "stopped": true, "status": "ABORTED"}),
        format!(
            "{key}: execution stopped. The stop reaches the trigger function (the stack's \
             ExecutionStoppedRule), which cancels the vendor run (Adobe has no cancel: its run \
             continues) and writes a CANCELLED manifest; `runbridge status {key}` shows what the \
             cancel did (docs/RUNBOOK.md)."
        ),
    ))
}

/// `rerun KEY`: re-sends the stored request with `attempt` one higher.
pub async fn rerun(ops: &Ops, key: &str) -> Result<Output, OpsError> {
    super::run_key(key)?;
    let Some(entry) = ops.ledger_entry(key).await? else {
        return Err(OpsError::NotFound(format!("no ledger entry for key {key}")));
    };
    if let Some(exec) = ops.describe_execution(key).await? {
        if exec.status == "RUNNING" {
            return Err(OpsError::Invalid(format!(
                "run {key} is still running; cancel it first (runbridge cancel {key})"
            )));
        }
    }
    let mut request = entry
        .get("request")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| OpsError::Aws(format!("ledger entry {key} holds no request")))?;
    let attempt = request.get("attempt").and_then(Value::as_u64).unwrap_or(1) + 1;
    request["attempt"] = json!(attempt);
    let parsed = RunRequest::from_value(request.clone()).map_err(|e| {
        if e.field == "attempt" || e.rule.contains("attempt") {
            OpsError::Invalid(format!(
                "this runbridge's request model has no `attempt` field yet ({e}); explicit \
                 reruns arrive with the run lifecycle change (attempt N is part of the key). \
                 Until then, send the request with a new request_id: `runbridge submit`."
            ))
        } else {
            OpsError::Invalid(format!("stored request of {key}: {e}"))
        }
    })?;
    let body = serde_json::to_string(&request).expect("JSON serialises");
    let message_id = ops.send_request(&body).await?;
    let new_key = predicted_key(&parsed);
    Ok(Output::ok(
        json!({"key": key, "attempt": attempt, "new_key": new_key, "message_id": message_id}),
        format!(
            "{key}: attempt {attempt} sent, key {}",
            new_key.as_deref().unwrap_or("assigned by the trigger")
        ),
    ))
}

/// `backfill` arguments.
#[derive(Debug, Clone)]
pub struct Backfill {
    /// The template request file.
    pub request: std::path::PathBuf,
    /// First day (inclusive).
    pub from: Date,
    /// Last day (inclusive).
    pub to: Date,
    /// The step; defaults to the request's `relative_window`.
    pub every: Option<Every>,
    /// Requests per second.
    pub rate: f64,
    /// Print the requests, send nothing.
    pub dry_run: bool,
}

/// `backfill`: one request per window; windows whose key the ledger already holds are skipped
/// (and the trigger would not start them twice anyway).
pub async fn backfill(ops: Option<&Ops>, args: &Backfill) -> Result<Output, OpsError> {
    let label = args.request.display().to_string();
    let body = std::fs::read(&args.request)
        .map_err(|e| OpsError::Invalid(format!("{label}: cannot read: {e}")))?;
    RunRequest::from_json(&body).map_err(|e| OpsError::Invalid(format!("{label}: {e}")))?;
    let template: Value = serde_json::from_slice(&body).expect("validated JSON");
    let every = backfill::step_of(&template, args.every)?;
    if !(args.rate > 0.0 && args.rate <= 100.0) {
        return Err(OpsError::Invalid(
            "--rate must be between 0 and 100 per second".into(),
        ));
    }
    let windows = backfill::windows(args.from, args.to, every)?;
    let requests: Vec<(backfill::Window, RunRequest)> = windows
        .into_iter()
        .map(|w| backfill::window_request(&template, &w).map(|r| (w, r)))
        .collect::<Result<_, _>>()?;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut rows = Vec::new();
    let mut text = String::new();
    let (mut sent, mut skipped) = (0, 0);
    for (i, (window, request)) in requests.iter().enumerate() {
        let key = predicted_key(request).expect("backfill requests have a request_id");
        let action = match ops {
            None => "would send",
            Some(_) if args.dry_run => "would send",
            Some(ops) => {
                if ops.ledger_entry(&key).await?.is_some() {
                    skipped += 1;
                    "exists"
                } else {
                    if i > 0 && sent > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    let body = serde_json::to_string(request).expect("JSON serialises");
                    ops.send_request(&body).await?;
                    sent += 1;
                    "sent"
                }
            }
        };
        text.push_str(&format!("{action:<10} {} {key}\n", window.label));
        rows.push(json!({
            "window": window.label,
            "from": window.start.to_string(),
            "to_exclusive": window.end.to_string(),
            "key": key,
            "action": action.replace(' ', "_"),
            "request": request,
        }));
    }
    text.push_str(&format!(
        "{} window(s): {sent} sent, {skipped} already claimed{}",
        rows.len(),
        if args.dry_run { " (dry run)" } else { "" }
    ));
    Ok(Output::ok(Value::Array(rows), text))
}
