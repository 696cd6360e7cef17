//! Logs of the three functions: one JSON object per line, with the fields of every open span
//! flattened into it, so each line of an invocation carries the keys Lambda users know from
//! Powertools (`service`, `cold_start`, `function_request_id`, `xray_trace_id`, opened once per
//! invocation by [`invocation_span`]) and, inside a run's handler, the run's `key`, `vendor`,
//! `profile`, `vendor_run_id` and `attempt` (`runbridge_handlers::span::run_span`).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The variable naming the `service` of every line.
pub const SERVICE_NAME_VAR: &str = "POWERTOOLS_SERVICE_NAME";
/// The variables setting the log level, the first set wins.
pub const LOG_LEVEL_VARS: [&str; 2] = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"];
/// Every variable the logs read: what `docs/SETTINGS.md` lists beside the adapters' variables.
pub const LOG_VARS: [&str; 3] = [LOG_LEVEL_VARS[0], LOG_LEVEL_VARS[1], SERVICE_NAME_VAR];

/// The `service` of every line: `POWERTOOLS_SERVICE_NAME`, else `runbridge`.
pub fn service_name() -> String {
    std::env::var(SERVICE_NAME_VAR)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "runbridge".into())
}

static COLD: AtomicBool = AtomicBool::new(true);

/// The span of one invocation. `cold_start` is true for the first invocation of the process.
pub fn invocation_span(context: &lambda_runtime::Context) -> tracing::Span {
    let cold = COLD.swap(false, Ordering::Relaxed);
    tracing::info_span!(
        "invocation",
        service = %service_name(),
        function_name = %std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        cold_start = cold,
        function_request_id = %context.request_id,
        xray_trace_id = %context.xray_trace_id.as_deref().unwrap_or_default(),
    )
}

/// Installs the JSON log subscriber on standard output (what Lambda ships to CloudWatch Logs), filtered by `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`).
pub fn init() {
    let filter = std::env::var(LOG_LEVEL_VARS[0])
        .or_else(|_| std::env::var(LOG_LEVEL_VARS[1]))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            filter.to_ascii_lowercase(),
        ))
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
        // Log lines quote errors, and errors may quote a vendor's echo of a credential.
        .with_writer(|| runbridge_core::redact::RedactingWriter(std::io::stdout()))
        .init();
}

/// One JSON object per event: `timestamp`, `level`, `target`, every span's fields (outermost
/// first, inner ones win), then the event's own fields (`message` among them).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::String(now));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().into()),
        );
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().into()),
        );
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields.as_str()) {
                    line.extend(map);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use runbridge_core::{IdempotencyKey, RunRequest};
    use tracing::Instrument;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_line_of_an_invocation_carries_the_invocation_and_run_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let request = RunRequest::from_json(
            br#"{"vendor":"carto","request_id":"n-1","connection":"c","query":"SELECT 1"}"#,
        )
        .unwrap()
        .resolve(time::OffsetDateTime::now_utc());
        let key = IdempotencyKey::for_request(&request, None);
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        context.xray_trace_id = Some("Root=1-abc".into());
        for _ in 0..2 {
            // As in `invoke`: the handler opens the run span inside the invocation's.
            async {
                let run = runbridge_handlers::span::run_span(&key, &request, None);
                async {
                    tracing::info!("claimed");
                    tracing::Span::current().record("vendor_run_id", "job-7");
                    tracing::warn!(wait = 3, "polling again");
                }
                .instrument(run)
                .await
            }
            .instrument(invocation_span(&context))
            .await;
        }
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{text}");
        for line in &lines {
            for field in [
                "service",
                "cold_start",
                "function_request_id",
                "xray_trace_id",
                "key",
                "vendor",
                "profile",
                "attempt",
                "message",
            ] {
                assert!(line.get(field).is_some(), "{field} missing in {line}");
            }
            assert_eq!(line["key"], "carto-n-1");
            assert_eq!(line["profile"], "default");
            assert_eq!(line["function_request_id"], "req-1");
        }
        assert!(lines[0].get("vendor_run_id").is_none());
        assert_eq!(lines[1]["vendor_run_id"], "job-7");
        assert_eq!(lines[1]["wait"], 3);
        assert_eq!(lines[0]["cold_start"], true);
        assert_eq!(
            lines[2]["cold_start"], false,
            "only the first invocation is cold"
        );
    }
}
