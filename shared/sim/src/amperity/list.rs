//! `GET /api/workflow/runs`: the list route, its filters (creation and end windows with partial
//! timestamps, state, type), newest-first order, `next_token` paging bound to the filters, and
//! `with_total`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use super::api::bad_request;
use super::model::{run_state, workflow_json, Run, View};
use super::{QueryPairs, Shared, MAX_LIMIT};

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 100;
/// The query parameters the list route takes (besides `api_version`).
const LIST_PARAMS: [&str; 9] = [
    "created_from",
    "created_to",
    "ended_from",
    "ended_to",
    "state",
    "type",
    "limit",
    "next_token",
    "with_total",
];

pub(super) async fn list_runs(
    State(state): Shared,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, Response> {
    state.sim.control.count("amperity.list");
    let (tenant, query) = state.admit_request(&headers, query, &LIST_PARAMS)?;
    let filter = parse_list_query(&query)?;
    let now = state.sim.clock.now();
    let runs = state.runs.lock().expect("runs lock");
    let mut matching: Vec<(&Run, &'static str, Option<OffsetDateTime>)> = runs
        .values()
        .filter(|r| r.tenant == tenant)
        .filter_map(|r| {
            let (vendor_state, ended, _) = run_state(r, now);
            let wanted = in_window(
                r.scripted.created_at,
                filter.created_from,
                filter.created_to,
            ) && (filter.ended_from.is_none() && filter.ended_to.is_none()
                || ended.is_some_and(|e| in_window(e, filter.ended_from, filter.ended_to)))
                && filter
                    .state
                    .as_deref()
                    .is_none_or(|s| s == normalize_state(vendor_state))
                && filter.kind.as_deref().is_none_or(|k| k == r.config.kind);
            wanted.then_some((r, vendor_state, ended))
        })
        .collect();
    // Newest first; the id breaks ties so the order (and the page cursor) is total.
    let order_key = |r: &Run| (r.scripted.created_at.unix_timestamp_nanos(), r.id.clone());
    matching.sort_by_key(|(run, _, _)| std::cmp::Reverse(order_key(run)));
    let total = matching.len();
    let start = match &filter.after {
        None => 0,
        Some(cursor) => matching
            .iter()
            .position(|(r, _, _)| order_key(r) < *cursor)
            .unwrap_or(total),
    };
    let page: Vec<&Run> = matching
        .iter()
        .skip(start)
        // A server may answer fewer items than `limit` asks; only the token says "more".
        .take(
            state
                .sim
                .control
                .list_page_cap(super::VENDOR)
                .map_or(filter.limit, |cap| filter.limit.min(cap)),
        )
        .map(|(r, _, _)| *r)
        .collect();
    let mut body = Map::new();
    body.insert(
        "data".into(),
        Value::Array(
            page.iter()
                .map(|r| workflow_json(r, now, View::ListItem))
                .collect(),
        ),
    );
    if start + page.len() < total {
        if let Some(last) = page.last() {
            body.insert(
                "next_token".into(),
                json!(encode_token(
                    last.scripted.created_at,
                    &last.id,
                    &filter.fingerprint
                )),
            );
        }
    }
    if filter.with_total {
        body.insert("total".into(), json!(total));
    }
    Ok(Json(Value::Object(body)).into_response())
}

/// The list filters, parsed.
struct ListFilter {
    created_from: Option<OffsetDateTime>,
    created_to: Option<OffsetDateTime>,
    ended_from: Option<OffsetDateTime>,
    ended_to: Option<OffsetDateTime>,
    state: Option<String>,
    kind: Option<String>,
    limit: usize,
    with_total: bool,
    /// Identifies the filter set, so a page token is only accepted with the filters it came from.
    fingerprint: String,
    after: Option<(i128, String)>,
}

/// States compare case-insensitively, with `-`, `_` and spaces equivalent.
fn normalize_state(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', '_'], " ")
}

/// The filters of a list query whose parameter names were checked.
fn parse_list_query(query: &[(String, String)]) -> Result<ListFilter, Response> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let time = |name: &str| {
        get(name)
            .map(|v| parse_partial_timestamp(name, v))
            .transpose()
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad_request(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}; got {v}"
                )))
            }
        },
    };
    let with_total = match get("with_total") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "with_total must be true or false; got {other}"
            )))
        }
    };
    let mut filters: Vec<String> = query
        .iter()
        .filter(|(k, _)| {
            !["limit", "next_token", "with_total", "api_version"].contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    filters.sort();
    let fingerprint = hex::encode(&Sha256::digest(filters.join("&"))[..6]);
    let after = match get("next_token") {
        None => None,
        Some(token) => Some(
            decode_token(token, &fingerprint).ok_or_else(|| bad_request("Invalid next_token"))?,
        ),
    };
    Ok(ListFilter {
        created_from: time("created_from")?,
        created_to: time("created_to")?,
        ended_from: time("ended_from")?,
        ended_to: time("ended_to")?,
        state: get("state").map(normalize_state),
        kind: get("type").map(str::to_owned),
        limit,
        with_total,
        fingerprint,
        after,
    })
}

/// An ISO-8601 UTC timestamp, possibly partial: `2025`, `2025-04`, `2025-04-18`,
/// `2025-04-18T15`, `2025-04-18T15:33` (each meaning the start of that period), or a full
/// RFC 3339 timestamp.
fn parse_partial_timestamp(name: &str, value: &str) -> Result<OffsetDateTime, Response> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let invalid = || {
        bad_request(format!("{name} must be an ISO-8601 timestamp (UTC), e.g. 2025-04-18T00:00:00Z or 2025-04; got {value}"))
    };
    let trimmed = value.strip_suffix('Z').unwrap_or(value);
    let (date_part, time_part) = match trimmed.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (trimmed, None),
    };
    // Field `index` of `fields`: exactly `len` digits, or `absent` when there is no such field.
    let field = |fields: &[&str], index: usize, len: usize, absent: Option<u32>| {
        fields
            .get(index)
            .map_or(absent, |s| {
                (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            })
            .ok_or_else(invalid)
    };
    let date_fields: Vec<&str> = date_part.split('-').collect();
    let year = field(&date_fields, 0, 4, None)?;
    let month = field(&date_fields, 1, 2, Some(1))?;
    let day = field(&date_fields, 2, 2, Some(1))?;
    if date_fields.len() > 3 || (time_part.is_some() && date_fields.len() != 3) {
        return Err(invalid());
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| invalid())?;
    let time = match time_part {
        None => Time::MIDNIGHT,
        Some(t) => {
            let fields: Vec<&str> = t.split(':').collect();
            if fields.len() > 2 {
                return Err(invalid());
            }
            let hour = field(&fields, 0, 2, None)?;
            let minute = field(&fields, 1, 2, Some(0))?;
            Time::from_hms(hour as u8, minute as u8, 0).map_err(|_| invalid())?
        }
    };
    Ok(date.with_time(time).assume_utc())
}

/// Page tokens are opaque to clients: the hex of the last item's position and the filters.
fn encode_token(created: OffsetDateTime, id: &str, fingerprint: &str) -> String {
    hex::encode(format!(
        "{}|{id}|{fingerprint}",
        created.unix_timestamp_nanos()
    ))
}

fn decode_token(token: &str, fingerprint: &str) -> Option<(i128, String)> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let mut parts = text.splitn(3, '|');
    let nanos = parts.next()?.parse::<i128>().ok()?;
    let id = parts.next()?.to_owned();
    (parts.next()? == fingerprint).then_some((nanos, id))
}

fn in_window(t: OffsetDateTime, from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

#[cfg(test)]
mod tests {
    use super::super::model::timestamp;
    use super::*;

    #[test]
    fn partial_timestamps_mean_the_start_of_their_period() {
        let parse = |v: &str| {
            parse_partial_timestamp("created_from", v)
                .ok()
                .map(timestamp)
        };
        assert_eq!(parse("2025").as_deref(), Some("2025-01-01T00:00:00.000Z"));
        assert_eq!(
            parse("2025-04").as_deref(),
            Some("2025-04-01T00:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18").as_deref(),
            Some("2025-04-18T00:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15").as_deref(),
            Some("2025-04-18T15:00:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15:33Z").as_deref(),
            Some("2025-04-18T15:33:00.000Z")
        );
        assert_eq!(
            parse("2025-04-18T15:33:51.724Z").as_deref(),
            Some("2025-04-18T15:33:51.724Z")
        );
        for bad in [
            "25-04",
            "2025-4",
            "2025-13",
            "2025-02-30",
            "2025-04T10",
            "yesterday",
            "2025-04-18T25",
        ] {
            assert!(parse(bad).is_none(), "{bad} must be rejected");
        }
    }

    #[test]
    fn page_tokens_are_bound_to_their_filters() {
        let t = OffsetDateTime::now_utc();
        let token = encode_token(t, "wf-1", "abc");
        assert_eq!(
            decode_token(&token, "abc"),
            Some((t.unix_timestamp_nanos(), "wf-1".into()))
        );
        assert_eq!(decode_token(&token, "other"), None);
        assert_eq!(decode_token("zz", "abc"), None);
    }
}
