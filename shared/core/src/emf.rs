//! CloudWatch Embedded Metric Format (EMF) documents: one JSON object per log line, from which
//! CloudWatch Logs extracts metrics without any API call.
//!
//! A small writer rather than a crate: `metrics_cloudwatch_embedded` plugs EMF into the
//! `metrics` facade, which would route every count through a global recorder and flush on its
//! own schedule; runbridge emits a handful of metrics at known moments (a run submitted, a run
//! collected), so each moment writes one complete document. The structure follows the EMF
//! specification (`_aws.Timestamp` in epoch milliseconds, `_aws.CloudWatchMetrics[]` of
//! `{Namespace, Dimensions, Metrics}`, every referenced dimension a string member of the root and
//! every metric a number member); `schema/emf.schema.json` checks it in the tests.

use std::collections::BTreeMap;

use crate::redact::redacted;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// The CloudWatch namespace of runbridge's metrics.
pub const NAMESPACE: &str = "runbridge";

/// Most dimensions in one dimension set (the specification's limit).
pub const MAX_DIMENSIONS: usize = 30;
/// Most metrics in one directive (the specification's limit).
pub const MAX_METRICS: usize = 100;

/// The units runbridge uses (a subset of the specification's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// Megabytes per second.
    MegabytesPerSecond,
}

impl Unit {
    /// The unit's name in EMF.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Bytes => "Bytes",
            Self::MegabytesPerSecond => "Megabytes/Second",
        }
    }
}

/// One EMF document: dimensions, metrics and extra properties at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDoc {
    timestamp_ms: i64,
    dimensions: Vec<(String, String)>,
    extra_sets: Vec<Vec<String>>,
    metrics: Vec<(String, Unit, f64)>,
    properties: BTreeMap<String, Value>,
}

impl MetricDoc {
    /// An empty document at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self {
            timestamp_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
            dimensions: Vec::new(),
            extra_sets: Vec::new(),
            metrics: Vec::new(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds a dimension to the base dimension set (which holds every dimension added here).
    /// Values are redacted ([`crate::redact`]), as every string that reaches the document.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((name.to_owned(), redacted(value)));
        self
    }

    /// Adds a dimension that forms a second set: the base set plus this one, so the metric is
    /// both aggregated (by the base) and split (by this one).
    pub fn split_by(mut self, name: &str, value: &str) -> Self {
        let mut set: Vec<String> = self.dimensions.iter().map(|(n, _)| n.clone()).collect();
        set.push(name.to_owned());
        self.extra_sets.push(set);
        self.properties
            .insert(name.to_owned(), Value::String(redacted(value)));
        self
    }

    /// Also publishes the metrics without any dimension (an empty dimension set), for an alarm
    /// over all vendors.
    pub fn also_undimensioned(mut self) -> Self {
        self.extra_sets.push(Vec::new());
        self
    }

    /// Adds a metric value. Non-finite values are dropped (EMF numbers must be finite).
    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.push((name.to_owned(), unit, value));
        }
        self
    }

    /// Adds a property: searchable in Logs Insights, not a metric or dimension.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        let value = match value.into() {
            Value::String(s) => Value::String(redacted(&s)),
            other => other,
        };
        self.properties.insert(name.to_owned(), value);
        self
    }

    /// Whether the document has no metric.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The metric names.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(|(n, _, _)| n.as_str())
    }

    /// The EMF JSON document.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.properties {
            root.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        let mut sets = vec![self
            .dimensions
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>()];
        sets.extend(self.extra_sets.iter().cloned());
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }

    /// The document as one log line.
    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }
}

/// Checks the rules of the EMF specification a JSON Schema cannot express: every dimension a
/// directive names is a string member of the root, and every metric a number (or an array of
/// at most 100 numbers) member of it. Returns the first violation.
pub fn check_references(doc: &Value) -> Result<(), String> {
    let directives = doc
        .pointer("/_aws/CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no _aws.CloudWatchMetrics array")?;
    for d in directives {
        for set in d["Dimensions"].as_array().into_iter().flatten() {
            for name in set.as_array().into_iter().flatten() {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if !doc.get(name).is_some_and(Value::is_string) {
                    return Err(format!(
                        "dimension {name} is not a string member of the root"
                    ));
                }
            }
        }
        for m in d["Metrics"].as_array().into_iter().flatten() {
            let name = m["Name"].as_str().ok_or("a metric has no Name")?;
            let ok = match doc.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => {
                    values.len() <= 100 && values.iter().all(Value::is_number)
                }
                _ => false,
            };
            if !ok {
                return Err(format!("metric {name} is not a number member of the root"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_document_names_its_dimensions_and_metrics_at_the_root() {
        let doc = MetricDoc::new(datetime!(2026-11-27 06:00 UTC))
            .dimension("Vendor", "amc")
            .split_by("Attribution", "customer")
            .metric("RunsFailed", Unit::Count, 1.0)
            .metric("Bad", Unit::Seconds, f64::NAN)
            .property("key", "amc-x")
            .to_json();
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_759_200_000_i64);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Vendor"], ["Vendor", "Attribution"]])
        );
        assert_eq!(doc["Vendor"], "amc");
        assert_eq!(doc["RunsFailed"], 1.0);
        assert!(doc.get("Bad").is_none(), "non-finite values are dropped");
        check_references(&doc).unwrap();
        let mut broken = doc.clone();
        broken["Vendor"] = json!(3);
        assert!(check_references(&broken).is_err());
    }
}
