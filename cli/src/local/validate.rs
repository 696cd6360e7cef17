//! `validate`: checks request files as the trigger would ([`crate::validate_request`]); every
//! file is reported, even after one that cannot be read.

use std::path::PathBuf;

use serde_json::json;

use crate::exit::CliError;
use crate::output::Output;

/// `validate FILE…`: one line (one JSON row) per file; exit code 2 when any is invalid.
pub fn validate(files: &[PathBuf]) -> Output {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut bad = 0;
    for file in files {
        let label = file.display().to_string();
        let checked = crate::input::read_request(file)
            .map_err(CliError::from)
            .and_then(|body| crate::validate_request(&body).map_err(|e| e.of(&label)));
        match checked {
            Ok(request) => {
                lines.push(format!("{label}: ok ({})", request.vendor()));
                rows.push(json!({"file": label, "ok": true, "vendor": request.vendor()}));
            }
            Err(e) => {
                bad += 1;
                lines.push(e.message.clone());
                rows.push(
                    json!({"file": label, "ok": false, "error": e.message, "field": e.field}),
                );
            }
        }
    }
    let failure = (bad > 0)
        .then(|| CliError::invalid(format!("{bad} of {} request(s) invalid", files.len())));
    Output::ok(json!(rows), lines.join("\n")).failing(failure)
}
