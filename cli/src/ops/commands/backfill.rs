//! `backfill`: one request per window of a template request, each with its own `request_id`
//! (see [`crate::ops::backfill`] for the windows), sent at a bounded rate; windows whose key the
//! ledger already holds are skipped.

use std::path::PathBuf;
use std::time::Duration;

use runbridge_core::{IdempotencyKey, RunRequest};
use serde_json::{json, Value};
use time::Date;

use super::submit::predicted_key;
use crate::exit::CliError;
use crate::ops::backfill::{self, Every, Window};
use crate::ops::Ops;
use crate::output::Output;

/// `backfill` arguments.
#[derive(Debug, Clone)]
pub struct Backfill {
    /// The template request file.
    pub request: PathBuf,
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

/// The requests of a backfill, one per window, checked: the template as `validate` and `submit`
/// check a request (its profile included), the step, the rate and every window's request.
/// Nothing is sent; the command line calls this before connecting to a stack.
pub fn plan(args: &Backfill) -> Result<Vec<(Window, RunRequest)>, CliError> {
    let label = args.request.display().to_string();
    let body = crate::input::read_request(&args.request)?;
    let parsed = crate::validate_request(&body).map_err(|e| e.of(&label))?;
    // The step reads the template's `relative_window`; the windows' requests are made from the
    // validated request itself, whose numbers are exact (a re-parse of the text would round them).
    let template = serde_json::to_value(&parsed).expect("requests serialise");
    let every = backfill::step_of(&template, args.every).map_err(|e| e.of(&label))?;
    // At least one request every 1000 s: a smaller rate would wait past any useful bound.
    if !(args.rate >= 0.001 && args.rate <= 100.0) {
        return Err(CliError::invalid(
            "--rate must be between 0.001 and 100 per second",
        ));
    }
    let base = backfill::base_id(&parsed);
    backfill::windows(args.from, args.to, every)?
        .into_iter()
        .map(|w| backfill::window_request(&parsed, &base, &w).map(|r| (w, r)))
        .collect()
}

/// `backfill`: one request per window; windows whose key the ledger already holds are skipped
/// (and the trigger would not start them twice anyway). `ops` is `None` for a dry run without a
/// stack.
pub async fn backfill(ops: Option<&Ops>, args: &Backfill) -> Result<Output, CliError> {
    let requests = plan(args)?;
    let interval = Duration::try_from_secs_f64(1.0 / args.rate).unwrap_or(Duration::MAX);
    let mut rows = Vec::new();
    let mut text = String::new();
    let (mut sent, mut skipped) = (0, 0);
    for (window, request) in &requests {
        let key = predicted_key(request).expect("backfill requests have a request_id");
        let action = match ops {
            Some(ops) if !args.dry_run => {
                if ops
                    .ledger_entry(&IdempotencyKey::from_string(key.clone()))
                    .await?
                    .is_some()
                {
                    skipped += 1;
                    "exists"
                } else {
                    if sent > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    let body = serde_json::to_string(request).expect("requests serialise");
                    ops.send_request(&body).await?;
                    sent += 1;
                    "sent"
                }
            }
            _ => "would send",
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
