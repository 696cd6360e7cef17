//! `submit`: validates every request file, then sends each to the request queue and prints the
//! key the trigger will give it.

use std::path::PathBuf;

use runbridge_core::{IdempotencyKey, RunRequest};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::exit::CliError;
use crate::ops::Ops;
use crate::output::Output;

/// One request file read and validated: its label (the path as given), the request, the body.
pub type RequestFile = (String, RunRequest, String);

/// Reads and validates request files (all of them before anything is sent), with the checks
/// `validate` applies ([`crate::validate_request`]). Every bad file is reported, not only the
/// first: the error names each one (and the field of the first).
pub fn read_requests(files: &[PathBuf]) -> Result<Vec<RequestFile>, CliError> {
    if files.is_empty() {
        return Err(CliError::invalid("no request files given"));
    }
    let mut good = Vec::new();
    let mut bad: Vec<CliError> = Vec::new();
    for path in files {
        let label = path.display().to_string();
        let read = crate::input::read_request(path)
            .map_err(CliError::from)
            .and_then(|body| {
                let request = crate::validate_request(&body).map_err(|e| e.of(&label))?;
                let text = String::from_utf8(body).expect("from_json checked UTF-8");
                Ok((label, request, text))
            });
        match read {
            Ok(file) => good.push(file),
            Err(e) => bad.push(e),
        }
    }
    let Some(first) = bad.first() else {
        return Ok(good);
    };
    if bad.len() == 1 {
        return Err(bad.remove(0));
    }
    let lines: Vec<&str> = bad.iter().map(|e| e.message.as_str()).collect();
    Err(CliError {
        message: format!(
            "{} of {} request files are invalid; nothing was sent:\n{}",
            bad.len(),
            files.len(),
            lines.join("\n")
        ),
        ..first.clone()
    })
}

/// The key the trigger derives for `request`, when it can be known before sending: a request
/// with a `request_id` (without one, the key hashes the time SQS received the message).
pub fn predicted_key(request: &RunRequest) -> Option<String> {
    request.request_id.as_ref()?;
    let resolved = request.resolve(OffsetDateTime::now_utc());
    Some(IdempotencyKey::for_request(&resolved, None).to_string())
}

/// `submit`: validates every file, then sends each to the request queue.
pub async fn submit(ops: &Ops, files: &[PathBuf]) -> Result<Output, CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            path
        };
        let good = write(
            "good.json",
            r#"{"vendor":"amperity","tenant":"acme","config_id":"og-1"}"#,
        );
        let bad_tenant = write(
            "tenant.json",
            r#"{"vendor":"amperity","tenant":"acme-","config_id":"og-1"}"#,
        );
        let not_json = write("broken.json", "{");
        let missing = dir.path().join("missing.json");
        let e = read_requests(&[good.clone(), bad_tenant, not_json, missing]).unwrap_err();
        for name in ["tenant.json", "broken.json", "missing.json"] {
            assert!(
                e.message.contains(name),
                "{name} not reported: {}",
                e.message
            );
        }
        assert!(
            e.message.starts_with("3 of 4 request files"),
            "{}",
            e.message
        );
        assert_eq!(e.field.as_deref(), Some("tenant"));
        assert_eq!(read_requests(&[good]).unwrap().len(), 1);
    }
}
