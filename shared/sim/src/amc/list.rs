//! `GET …/workflowExecutions`: the list route, its filters (creation time, workflow, cancelled
//! executions), sort order and `nextToken` paging.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::api::{bad_request, check_headers, flag, ok, ApiError};
use super::model::{parse_amc_time, Execution};
use super::{AmcState, Shared};
use crate::RunPhase;

/// Default and largest page of the list operation.
const MAX_PAGE: usize = 100;

pub(super) async fn list(
    State(state): Shared,
    Path(instance): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    state.sim.control.count("amc.list");
    check_headers(&state.sim, &headers, &instance)?;
    Ok(ok(list_page(&state, &instance, &query)?))
}

fn list_page(
    state: &AmcState,
    instance: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let min = query
        .get("minCreationTime")
        .map(|v| parse_amc_time("minCreationTime", v))
        .transpose()?;
    let max = query
        .get("maxCreationTime")
        .map(|v| parse_amc_time("maxCreationTime", v))
        .transpose()?;
    let workflow_id = query.get("workflowId");
    if min.is_none() && workflow_id.is_none() {
        return Err(bad_request(
            "Either parameter \"minCreationTime\" or parameter \"workflowId\" is required",
        ));
    }
    if query.get("timeZone").is_some_and(|z| z != "UTC") {
        // Creation-time filters in other zones would need a zone database the simulator lacks.
        return Err(bad_request(
            "Invalid value for parameter \"timeZone\": the simulator supports UTC only",
        ));
    }
    let limit = match query.get("limit") {
        None => MAX_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(bad_request(format!(
                "Invalid value for parameter \"limit\": must be an integer from 1 to {MAX_PAGE}"
            )))
            }
        },
    };
    let ascending = flag(query, "sortAscending")?;
    let include_cancelled = flag(query, "includeCancelled")?;
    let include_workflow = flag(query, "includeWorkflow")?;
    let cursor = match query.get("nextToken") {
        None => None,
        Some(t) => Some(
            decode_cursor(t)
                .ok_or_else(|| bad_request("Invalid value for parameter \"nextToken\""))?,
        ),
    };
    let now = state.sim.clock.now();
    let executions = state.executions.lock().expect("amc lock");
    let mut selected: Vec<&Execution> = executions
        .values()
        .filter(|e| e.instance_id == instance)
        .filter(|e| min.is_none_or(|m| e.run.created_at >= m))
        .filter(|e| max.is_none_or(|m| e.run.created_at <= m))
        .filter(|e| workflow_id.is_none_or(|w| &e.workflow_id == w))
        .filter(|e| include_cancelled || !matches!(e.run.phase(now), RunPhase::Cancelled { .. }))
        .collect();
    let key = |e: &Execution| (e.run.created_at.unix_timestamp_nanos(), e.id.clone());
    selected.sort_by_key(|e| key(e));
    if !ascending {
        selected.reverse();
    }
    if let Some(cursor) = cursor {
        selected.retain(|e| {
            if ascending {
                key(e) > cursor
            } else {
                key(e) < cursor
            }
        });
    }
    let page: Vec<&Execution> = selected.iter().take(limit).copied().collect();
    let mut body = json!({"executions": page.iter().map(|e| e.view(now, include_workflow)).collect::<Vec<_>>()});
    if selected.len() > limit {
        if let Some(last) = page.last() {
            body["nextToken"] = encode_cursor(last).into();
        }
    }
    Ok(body)
}

/// A list cursor: the creation time and id of the last execution on the previous page.
fn encode_cursor(e: &Execution) -> String {
    hex::encode(format!(
        "{}|{}",
        e.run.created_at.unix_timestamp_nanos(),
        e.id
    ))
}

fn decode_cursor(token: &str) -> Option<(i128, String)> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (nanos, id) = text.split_once('|')?;
    Some((nanos.parse().ok()?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::Map;
    use time::{Duration, OffsetDateTime};

    use super::super::model::ExecutionParams;
    use super::*;
    use crate::ScriptedRun;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let e = Execution {
            id: "abc".into(),
            instance_id: "i".into(),
            run: ScriptedRun::new(
                OffsetDateTime::UNIX_EPOCH + Duration::seconds(5),
                crate::RunScript::default(),
            ),
            workflow_id: "w".into(),
            params: ExecutionParams {
                sql_query: None,
                window: None,
                time_zone: "UTC".into(),
                parameter_values: Map::new(),
                ignore_data_gaps: false,
                disable_aggregation_controls: false,
                timeout_seconds: 21_600,
            },
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&e)),
            Some((5_000_000_000, "abc".into()))
        );
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("no separator")), None);
    }
}
