//! `POST /api/workflow/runs`: starting a run. The body is checked against `WorkflowRunRequest`
//! and the endpoint's rules (known configuration, courier-group-only fields, run mode, UTC window
//! bounds); the new run gets an id shaped like Amperity's `wf-<date>-<sequence>-<suffix>`.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time, UtcOffset};

use super::api::bad_request;
use super::model::{workflow_json, Run, View};
use super::{AmperitySim, QueryPairs, Shared, WorkflowConfig, CATALOG, VENDOR};
use crate::ScriptedRun;

pub(super) async fn start_run(
    State(state): Shared,
    headers: HeaderMap,
    query: QueryPairs,
    body: Bytes,
) -> Result<Response, Response> {
    state.sim.control.count("amperity.submit");
    let (tenant, _) = state.admit_request(&headers, query, &[])?;
    let config = validate_start(&body)?;
    let now = state.sim.clock.now();
    let script = state.sim.control.next_run_for(VENDOR, &body);
    let run = Run {
        id: state.new_run_id(now),
        tenant,
        config,
        scripted: ScriptedRun::new(now, script),
        starter: None,
    };
    let body = workflow_json(&run, now, View::Verbose);
    state
        .runs
        .lock()
        .expect("runs lock")
        .insert(run.id.clone(), run);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Checks a start body against `WorkflowRunRequest` (no unknown fields, `config_id` required)
/// and the endpoint's rules; returns the configuration to run.
fn validate_start(body: &[u8]) -> Result<WorkflowConfig, Response> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(bad_request("Request body must be a JSON object"));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["config_id", "range_from", "range_to", "run_mode"].contains(&k.as_str()))
    {
        return Err(bad_request(format!(
            "Unknown field in request body: {unknown}"
        )));
    }
    let text = |name: &str| -> Result<Option<&str>, Response> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad_request(format!("{name} must be a string"))),
        }
    };
    let config_id = text("config_id")?.ok_or_else(|| bad_request("config_id is required"))?;
    if !["cg-", "og-", "cc-"]
        .iter()
        .any(|p| config_id.starts_with(p))
    {
        return Err(bad_request(format!(
            "config_id {config_id} is not a courier group (cg-), orchestration group (og-) or campaign (cc-) id"
        )));
    }
    let config = CATALOG
        .iter()
        .find(|c| c.id == config_id)
        .copied()
        .ok_or_else(|| {
            bad_request(format!(
                "config_id {config_id}: workflow configuration not found"
            ))
        })?;
    let range_from = text("range_from")?;
    let range_to = text("range_to")?;
    let run_mode = text("run_mode")?;
    if !config.is_courier_group() {
        for (name, value) in [
            ("range_from", range_from),
            ("range_to", range_to),
            ("run_mode", run_mode),
        ] {
            if value.is_some() {
                return Err(bad_request(format!(
                    "{name} is only supported for courier groups"
                )));
            }
        }
    }
    if let Some(mode) = run_mode {
        if !["full", "refresh", "source"].contains(&mode) {
            return Err(bad_request(format!(
                "run_mode must be one of full, refresh, source; got {mode}"
            )));
        }
    }
    let from = range_from
        .map(|v| parse_range("range_from", v))
        .transpose()?;
    let to = range_to.map(|v| parse_range("range_to", v)).transpose()?;
    match (from, to) {
        (None, Some(_)) => {
            return Err(bad_request("range_from is required when range_to is given"))
        }
        (Some(from), Some(to)) if to <= from => {
            return Err(bad_request("range_to must be after range_from"))
        }
        _ => {}
    }
    if config.file_based && from.is_none() {
        return Err(bad_request(format!(
            "range_from is required: courier group {} pulls files from cloud storage",
            config.id
        )));
    }
    Ok(config)
}

/// A run window bound: ISO-8601 in UTC, a full timestamp or a date.
fn parse_range(name: &str, value: &str) -> Result<OffsetDateTime, Response> {
    if let Ok(date) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_utc());
    }
    // RFC 3339's `-00:00` says the offset is unknown, which is not UTC.
    if value.ends_with("-00:00") {
        return Err(bad_request(format!("{name} must be in UTC: {value}")));
    }
    match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(t) if t.offset() == UtcOffset::UTC => Ok(t),
        Ok(_) => Err(bad_request(format!("{name} must be in UTC: {value}"))),
        Err(_) => Err(bad_request(format!(
            "{name} must be an ISO-8601 timestamp in UTC: {value}"
        ))),
    }
}

impl AmperitySim {
    pub(super) fn new_run_id(&self, now: OffsetDateTime) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::SeqCst) % 100_000;
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(6)
            .collect();
        let date = now
            .format(format_description!("[year][month][day]"))
            .expect("date formats");
        format!("wf-{date}-{sequence:05}-{suffix}")
    }
}
