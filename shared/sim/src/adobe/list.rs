//! `GET /data/foundation/flowservice/runs`: the list route, its `property` filters (`flowId`,
//! `id`, `createdAt` with comparison operators), `orderby`, `limit` or `count`, and paging by
//! `continuationToken` in `_links.next.href`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{check_headers, flow_error};
use super::model::{millis, run_json, run_updated, Run};
use super::{Shared, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

struct Filter {
    field: &'static str,
    op: Op,
    value: String,
}

struct ListQuery {
    filters: Vec<Filter>,
    limit: usize,
    offset: usize,
    descending: bool,
    order_field: &'static str,
    count: bool,
    /// The query minus the continuation token, repeated in the next page's link.
    carry: Vec<(String, String)>,
}

pub(super) async fn list_runs(
    State(state): Shared,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    let sim = &state.sim;
    sim.control.count("adobe.list");
    let sandbox = check_headers(sim, &headers)?;
    let query = parse_list_query(&uri)?;
    let now = sim.clock.now();
    let runs = state.runs.lock().expect("adobe runs lock");
    let mut matching: Vec<&Run> = runs
        .values()
        .filter(|r| r.sandbox == sandbox && query.filters.iter().all(|f| matches(r, f)))
        .collect();
    matching.sort_by(|a, b| {
        let key = |r: &Run| {
            (
                if query.order_field == "updatedAt" {
                    run_updated(r, now)
                } else {
                    r.created_at
                },
                r.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    if query.descending {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|r| run_json(r, now))
        .collect();
    let next = query.offset + page.len();
    let mut body = json!({"items": page});
    if next < total {
        let mut params = query.carry.clone();
        params.push(("continuationToken".into(), continuation_token(next)));
        let qs: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
            .collect();
        body["_links"] = json!({"next": {"href": format!("/runs?{}", qs.join("&"))}});
    }
    if query.count {
        body["count"] = json!(total);
    }
    Ok(Json(body).into_response())
}

fn matches(run: &Run, f: &Filter) -> bool {
    let text = match f.field {
        "flowId" => Some(run.flow_id.as_str()),
        "id" => Some(run.id.as_str()),
        _ => None,
    };
    if let Some(t) = text {
        return (f.op == Op::Eq) == (t == f.value);
    }
    // Validated numeric when parsed.
    let wanted: i64 = f.value.parse().unwrap_or_default();
    let have = millis(run.created_at);
    match f.op {
        Op::Eq => have == wanted,
        Op::Ne => have != wanted,
        Op::Ge => have >= wanted,
        Op::Le => have <= wanted,
        Op::Gt => have > wanted,
        Op::Lt => have < wanted,
    }
}

fn query_error(code: u16, detail: &str) -> Response {
    flow_error(StatusCode::BAD_REQUEST, code, "Invalid request", detail)
}

fn parse_list_query(uri: &Uri) -> Result<ListQuery, Response> {
    let pairs = match uri.query() {
        None => Vec::new(),
        Some(_) => match Query::<Vec<(String, String)>>::try_from_uri(uri) {
            Ok(Query(p)) => p,
            Err(_) => {
                return Err(query_error(
                    1453,
                    "Invalid query value provided in query param.",
                ))
            }
        },
    };
    let mut q = ListQuery {
        filters: vec![],
        limit: DEFAULT_PAGE_SIZE,
        offset: 0,
        descending: false,
        order_field: "createdAt",
        count: false,
        carry: vec![],
    };
    let mut limit_given = false;
    for (name, value) in pairs {
        match name.as_str() {
            "property" => {
                for part in value.split(',').filter(|p| !p.is_empty()) {
                    q.filters.push(parse_filter(part)?);
                }
            }
            "limit" => {
                limit_given = true;
                q.limit = match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                    _ => {
                        return Err(query_error(
                            1452,
                            &format!("Invalid value {value} for field limit."),
                        ))
                    }
                };
            }
            "orderby" => {
                let (descending, field) = match value.strip_prefix('-') {
                    Some(f) => (true, f),
                    None => (false, value.strip_prefix('+').unwrap_or(&value)),
                };
                q.descending = descending;
                q.order_field = match field {
                    "createdAt" => "createdAt",
                    "updatedAt" => "updatedAt",
                    _ => return Err(query_error(1433, &format!("Incorrect field= #{field} passed in orderBy, example are +name, -name, name."))),
                };
            }
            "count" => {
                q.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(query_error(
                            1452,
                            &format!("Invalid value {value} for field count."),
                        ))
                    }
                };
            }
            "continuationToken" => {
                q.offset = parse_continuation_token(&value)
                    .ok_or_else(|| query_error(1453, &format!("Invalid query value continuationToken={value} provided in query param.")))?;
                continue;
            }
            other => {
                return Err(query_error(
                    1451,
                    &format!("Invalid params {other} provided in query params."),
                ))
            }
        }
        q.carry.push((name, value));
    }
    if limit_given && q.count {
        return Err(query_error(
            1401,
            "The limit and count parameters cannot be given together in the same request. Please provide either only the limit or the count parameter and try again.",
        ));
    }
    Ok(q)
}

fn parse_filter(text: &str) -> Result<Filter, Response> {
    // Two-character operators first, so `>=` is not read as `>`.
    const OPS: [(&str, Op); 6] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];
    let Some((at, token, op)) = OPS
        .iter()
        .filter_map(|(t, op)| text.find(t).map(|at| (at, *t, *op)))
        .min_by_key(|(at, t, _)| (*at, usize::MAX - t.len()))
    else {
        return Err(query_error(
            1453,
            &format!("Invalid query value {text} provided in query param."),
        ));
    };
    let (name, value) = (&text[..at], &text[at + token.len()..]);
    if value.is_empty() {
        return Err(query_error(
            1453,
            &format!("Invalid query value {text} provided in query param."),
        ));
    }
    let field = match name {
        "flowId" => "flowId",
        "id" => "id",
        "createdAt" => "createdAt",
        _ => {
            return Err(query_error(
                1449,
                &format!("Invalid field {name} in filter params."),
            ))
        }
    };
    if field != "createdAt" && !matches!(op, Op::Eq | Op::Ne) {
        return Err(query_error(
            1448,
            &format!("Operator {token} not supported for field {field}."),
        ));
    }
    if field == "createdAt" && value.parse::<i64>().is_err() {
        return Err(query_error(
            1452,
            &format!("Invalid value {value} for field createdAt."),
        ));
    }
    Ok(Filter {
        field,
        op,
        value: value.to_owned(),
    })
}

/// Opaque to clients; here the offset of the next page.
fn continuation_token(offset: usize) -> String {
    format!("ct{offset:08x}")
}

fn parse_continuation_token(token: &str) -> Option<usize> {
    let hex = token.strip_prefix("ct")?;
    (hex.len() == 8)
        .then(|| usize::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Percent-encodes a query value (filters hold `=`, `>` and `<`).
fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_operators_longest_first() {
        let f = parse_filter("createdAt>=1700000000000")
            .map_err(|_| ())
            .unwrap();
        assert_eq!(
            (f.field, f.op, f.value.as_str()),
            ("createdAt", Op::Ge, "1700000000000")
        );
        let f = parse_filter("flowId==abc").map_err(|_| ()).unwrap();
        assert_eq!((f.field, f.op), ("flowId", Op::Eq));
        assert!(parse_filter("flowId>=abc").is_err());
        assert!(parse_filter("state==enabled").is_err());
        assert!(parse_filter("flowId").is_err());
    }

    #[test]
    fn continuation_tokens_round_trip() {
        assert_eq!(parse_continuation_token(&continuation_token(40)), Some(40));
        assert_eq!(parse_continuation_token("garbage"), None);
    }
}
