//! The dead-letter queue: what each message is, and a redrive that only ever resends requests.
//!
//! The DLQ holds five shapes:
//!
//! | shape | body | how to tell | redrive |
//! | --- | --- | --- | --- |
//! | `rejected` | the request as received | `runbridge-error` attribute (the trigger's own) | never: it broke a rule; fix it and `submit` |
//! | `request` | the request as sent | no attributes, body is a request | resent as is |
//! | `lambda-failure` | a Lambda OnFailure record | `requestContext` + `requestPayload` | the request inside `requestPayload` (an EventBridge event's `detail`, a schedule's `request`), never the record |
//! | `event` | an EventBridge event (the rule's DLQ) | `detail-type` + `detail` | the `detail` |
//! | `schedule` | a schedule's input | `request` + `scheduled_time` | the `request` |
//! | `stop` | a stopped execution's status change (`aws.states`), bare or in a Lambda OnFailure record | `source` `aws.states` | never: its vendor cancel kept failing; cancel the run at the vendor (docs/RUNBOOK.md) |
//!
//! A request taken out of its delivery loses the time that anchored its relative window, so it
//! is resolved against that time (the event's `time`, the `scheduled_time`, the message's
//! `SentTimestamp`) before it is resent. Only a request with a `request_id` is resent: its key is the same as the first
//! delivery's, so the ledger keeps a run from starting twice; without one, the key would hash the
//! new send time, and a redrive could start a second run. Those stay, with the reason.

use runbridge_core::{IdempotencyKey, RunRequest};
use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Ops;
use crate::exit::CliError;
use crate::output::Output;

/// The shape of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// The trigger rejected it, with its reason attached.
    Rejected,
    /// A request SQS moved here after repeated failures.
    Request,
    /// A Lambda OnFailure record of an asynchronous trigger invocation.
    LambdaFailure,
    /// An EventBridge event the rule could not deliver.
    Event,
    /// An EventBridge Scheduler input the schedule could not deliver.
    Schedule,
    /// The status change of a stopped or timed-out execution whose vendor cancel kept failing.
    Stop,
    /// Anything else.
    Unknown,
}

/// What redrive would do with one dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The shape.
    pub shape: Shape,
    /// The request to resend (anchored, explicit windows), when it may be resent.
    pub request: Option<Value>,
    /// Its key.
    pub key: Option<String>,
    /// Why it stays, when it does.
    pub keep_because: Option<String>,
}

fn parse_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v?.as_str()?, &Rfc3339).ok()
}

/// Classifies one dead letter and decides what redrive does with it. `sent_at` is the message's
/// `SentTimestamp` (kept when SQS moves a message to its DLQ): the anchor of a plain request's
/// relative window, as the trigger used it.
pub fn plan(body: &str, rejected_reason: Option<&str>, sent_at: Option<OffsetDateTime>) -> Plan {
    let keep = |shape, why: String| Plan {
        shape,
        request: None,
        key: None,
        keep_because: Some(why),
    };
    if let Some(reason) = rejected_reason {
        return keep(
            Shape::Rejected,
            format!("the trigger rejected it ({reason}); fix the request and submit it"),
        );
    }
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        return keep(Shape::Unknown, "the body is not JSON".into());
    };
    let stop = [Some(&doc), doc.get("requestPayload")]
        .into_iter()
        .flatten()
        .find(|d| d.get("source").and_then(Value::as_str) == Some("aws.states"));
    if let Some(stop) = stop {
        let name = stop["detail"]["name"].as_str().unwrap_or("?");
        let status = stop["detail"]["status"].as_str().unwrap_or("?");
        return Plan {
            key: IdempotencyKey::from_execution_name(name)
                .ok()
                .map(|key| key.to_string()),
            ..keep(
                Shape::Stop,
                format!(
                    "execution {name} ended {status} and cancelling its vendor run kept failing: \
                     check the run at the vendor and cancel it there (docs/RUNBOOK.md)"
                ),
            )
        };
    }
    // Where the request sits in the body: it is read from the body's own text there, by the
    // strict parse every request gets, so its numbers are resent as written.
    let (shape, at, anchor): (Shape, Option<&[&str]>, _) = if doc.get("requestContext").is_some() {
        let payload = doc.get("requestPayload").cloned().unwrap_or(Value::Null);
        if payload.get("detail-type").is_some() {
            let anchor = parse_time(payload.get("time"));
            (
                Shape::LambdaFailure,
                Some(&["requestPayload", "detail"]),
                anchor,
            )
        } else if payload.get("request").is_some() {
            let anchor = parse_time(payload.get("scheduled_time"));
            (
                Shape::LambdaFailure,
                Some(&["requestPayload", "request"]),
                anchor,
            )
        } else {
            (Shape::LambdaFailure, None, None)
        }
    } else if doc.get("detail-type").is_some() {
        (Shape::Event, Some(&["detail"]), parse_time(doc.get("time")))
    } else if doc.get("request").is_some() && doc.get("vendor").is_none() {
        (
            Shape::Schedule,
            Some(&["request"]),
            parse_time(doc.get("scheduled_time")),
        )
    } else if doc.get("vendor").is_some() {
        (Shape::Request, Some(&[]), sent_at)
    } else {
        return keep(Shape::Unknown, "not a shape runbridge writes".into());
    };
    let Some(request) = at.and_then(|path| runbridge_core::request::raw_member(body, path)) else {
        return keep(shape, "it holds no run request".into());
    };
    let parsed = match RunRequest::from_json(request.as_bytes()) {
        Ok(r) => r,
        Err(e) => return keep(shape, format!("its request is invalid: {e}")),
    };
    if parsed.request_id.is_none() {
        return keep(
            shape,
            "its request has no request_id, so a resend could start a second run; add one and submit it".into(),
        );
    }
    if parsed.has_relative_window() && anchor.is_none() {
        return keep(
            shape,
            "its relative window lost the time that anchored it".into(),
        );
    }
    let request: RunRequest = match anchor {
        Some(t) => parsed.resolve(t).into(),
        None => parsed,
    };
    let key = IdempotencyKey::for_request(&request.resolve(OffsetDateTime::now_utc()), None);
    Plan {
        shape,
        request: Some(serde_json::to_value(&request).expect("requests serialise")),
        key: Some(key.to_string()),
        keep_because: None,
    }
}

/// `dlq redrive` (and, with `dry_run`, `dlq list`): classifies up to `max` dead letters; resends
/// the requests it may and deletes those messages; leaves every other one where it is.
pub async fn redrive(ops: &Ops, max: usize, dry_run: bool) -> Result<Output, CliError> {
    let messages = ops.receive_dead_letters(max).await?;
    let mut rows = Vec::new();
    let mut text = String::new();
    let (mut resent, mut kept) = (0, 0);
    for m in &messages {
        let p = plan(&m.body, m.rejected_reason.as_deref(), m.sent_at);
        let action = match (&p.request, dry_run) {
            (Some(_), true) => "would resend",
            (Some(request), false) => {
                ops.send_request(&request.to_string()).await?;
                ops.delete_dead_letter(&m.receipt_handle).await?;
                resent += 1;
                "resent"
            }
            (None, _) => {
                kept += 1;
                "kept"
            }
        };
        let caused_by = m
            .attribution
            .as_deref()
            .map(|who| format!(" [caused by: {who}]"))
            .unwrap_or_default();
        text.push_str(&format!(
            "{action:<12} {:<14} {} {}{caused_by}\n",
            serde_json::to_value(p.shape)
                .unwrap()
                .as_str()
                .unwrap_or_default(),
            m.message_id,
            p.key.clone().or(p.keep_because.clone()).unwrap_or_default()
        ));
        rows.push(serde_json::json!({
            "message_id": m.message_id,
            "action": action.replace(' ', "_"),
            "attribution": m.attribution,
            "plan": p,
        }));
    }
    text.push_str(&format!(
        "{} dead letter(s): {resent} resent, {kept} kept{}",
        messages.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    ));
    Ok(Output::ok(Value::Array(rows), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = r#"{"vendor":"amperity","request_id":"d-1","tenant":"acme","config_id":"cg-1","relative_window":"previous_day"}"#;

    #[test]
    fn a_lambda_failure_record_resends_its_request_never_itself() {
        let event = format!(
            r#"{{"version":"0","id":"e","detail-type":"Run Requested","source":"runbridge.requests","time":"2026-11-27T06:00:00Z","detail":{REQ}}}"#
        );
        let record = format!(
            r#"{{"version":"1.0","timestamp":"2026-11-27T06:01:00Z","requestContext":{{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:t","condition":"RetriesExhausted","approximateInvokeCount":3}},"requestPayload":{event},"responseContext":{{"statusCode":200,"functionError":"Unhandled"}},"responsePayload":{{"errorType":"Retryable"}}}}"#
        );
        let p = plan(&record, None, None);
        assert_eq!(p.shape, Shape::LambdaFailure);
        let request = p.request.unwrap();
        assert!(request.get("requestContext").is_none());
        assert_eq!(
            request["range_from"], "2026-11-26T00:00:00Z",
            "anchored at the event time"
        );
        assert_eq!(p.key.as_deref(), Some("amperity-d-1"));
        let from_rule = plan(&event, None, None);
        assert_eq!(from_rule.shape, Shape::Event);
        assert_eq!(from_rule.request, Some(request));
    }

    #[test]
    fn rejected_unidentified_and_foreign_messages_stay() {
        assert_eq!(
            plan(REQ, Some("invalid request"), None).shape,
            Shape::Rejected
        );
        assert!(plan(REQ, Some("x"), None).request.is_none());
        let no_id = r#"{"vendor":"carto","connection":"c","query":"SELECT 1"}"#;
        assert!(plan(no_id, None, None)
            .keep_because
            .unwrap()
            .contains("request_id"));
        assert_eq!(plan("not json", None, None).shape, Shape::Unknown);
        assert_eq!(plan(r#"{"hello":1}"#, None, None).shape, Shape::Unknown);
        let schedule = format!(r#"{{"request":{REQ},"scheduled_time":"2026-11-27T06:00:00Z"}}"#);
        let p = plan(&schedule, None, None);
        assert_eq!(p.shape, Shape::Schedule);
        assert_eq!(p.request.unwrap()["range_from"], "2026-11-26T00:00:00Z");
        let sent = OffsetDateTime::parse("2026-11-27T06:00:00Z", &Rfc3339).ok();
        let plain = plan(REQ, None, sent);
        assert_eq!(plain.shape, Shape::Request);
        assert_eq!(
            plain.request.unwrap()["range_from"],
            "2026-11-26T00:00:00Z",
            "anchored at the first send"
        );
        assert!(plan(REQ, None, None)
            .keep_because
            .unwrap()
            .contains("anchored"));
    }

    /// A dead letter's request is resent with its numbers as written, whatever wraps it.
    #[test]
    fn a_redriven_request_keeps_its_numbers_as_written() {
        let amc = r#"{"vendor":"amc","request_id":"d-2","instance_id":"amcabc123def","advertiser_id":"ENTITY1ABC","marketplace_id":"ATVPDKIKX0DER","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY","parameter_values":{"big":123456789012345678901234567890,"e":1E2,"z":-0,"f":0.10}}"#;
        let event = format!(
            r#"{{"version":"0","id":"e","detail-type":"Run Requested","source":"s","time":"2026-11-27T06:00:00Z","detail":{amc}}}"#
        );
        let schedule = format!(r#"{{"request":{amc},"scheduled_time":"2026-11-27T06:00:00Z"}}"#);
        for body in [amc.to_owned(), event, schedule] {
            let resent = plan(&body, None, None)
                .request
                .unwrap_or_else(|| panic!("resent: {body}"))
                .to_string();
            for exact in [
                r#""big":"123456789012345678901234567890""#,
                r#""e":"1E2""#,
                r#""z":"-0""#,
                r#""f":"0.10""#,
            ] {
                assert!(resent.contains(exact), "{exact} not in {resent}");
            }
        }
    }

    #[test]
    fn a_stopped_executions_status_change_stays_naming_its_key() {
        let event = r#"{"version":"0","id":"e","detail-type":"Step Functions Execution Status Change","source":"aws.states","time":"2026-11-27T06:00:00Z","detail":{"name":"amc-stop-1=2","status":"ABORTED","executionArn":"arn:aws:states:us-east-1:1:execution:m:amc-stop-1=2"}}"#;
        let record = format!(
            r#"{{"version":"1.0","requestContext":{{"requestId":"r","condition":"RetriesExhausted"}},"requestPayload":{event},"responsePayload":{{"errorType":"Retryable"}}}}"#
        );
        for body in [event.to_owned(), record] {
            let p = plan(&body, None, None);
            assert_eq!(p.shape, Shape::Stop, "{body}");
            assert_eq!(p.request, None, "never resent as a request");
            assert_eq!(p.key.as_deref(), Some("amc-stop-1"));
            assert!(p.keep_because.unwrap().contains("cancel it there"));
        }
    }
}
