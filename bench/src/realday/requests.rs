//! The real day's requests: one run request per [`RunSpec`], in the vendor's real request shape
//! (`examples/<vendor>.json`), each carrying a tag the simulator finds in its create request
//! (the run's script and its submit count hang on it), and the workload mapped onto the
//! simulators' catalogs.
//!
//! AMC and CARTO runs get a workflow of their own (the tag is in their SQL). Amperity and Adobe
//! runs name a configuration or flow from the simulator's small catalog, so the runs of one
//! Amperity tenant share one workflow, as do all Adobe runs: such runs take the history of the
//! first of them, and their durations are scaled by the ratio of the two workflows' medians, so
//! each run keeps how far it strays from its prediction. The model is given the same specs.

use std::collections::HashMap;

use runbridge_core::{OffsetDateTime, RunRequest, VendorKind};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::day::workload::{RunSpec, Vendor};

/// The simulator's file-based Adobe flow (`runbridge_sim::adobe::FILE_FLOW_ID`).
const ADOBE_FLOW: &str = runbridge_sim::adobe::FILE_FLOW_ID;
/// Every tag's window starts here plus its index in minutes (Amperity's and Adobe's tags).
const WINDOW_BASE_UNIX: i64 = 1_764_115_200; // 2025-11-26T00:00:00Z

/// One run of the real day.
#[derive(Debug, Clone)]
pub struct Planned {
    pub index: usize,
    pub spec: RunSpec,
    pub kind: VendorKind,
    /// The request as the trigger receives it.
    pub body: Vec<u8>,
    /// What only this run's create request contains.
    pub tag: String,
}

/// The AMC instance of account `n`.
pub fn amc_instance(n: usize) -> String {
    format!("amcday{n:03}")
}

fn utc(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("a valid time")
        .format(&Rfc3339)
        .expect("formats")
}

fn example(vendor: &str) -> Value {
    let path = format!("{}/../examples/{vendor}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("an example request")
}

/// The request of run `index` of `spec`, and its tag.
fn request(index: usize, spec: &RunSpec) -> (Value, String) {
    let id = format!("rbday-{index:04}");
    let quoted = format!("'{id}'");
    let window = WINDOW_BASE_UNIX + 60 * index as i64;
    match spec.vendor {
        Vendor::Amc => {
            let mut r = example("amc");
            r["instance_id"] = amc_instance(spec.account).into();
            r["sql_query"] = format!(
                "SELECT advertiser, campaign, SUM(impressions) AS impressions FROM dsp_impressions \
                 WHERE campaign <> {quoted} GROUP BY advertiser, campaign"
            )
            .into();
            r["request_id"] = id.into();
            (r, quoted)
        }
        Vendor::Carto => {
            let mut r = example("carto");
            r["query"] = format!(
                "SELECT * FROM `carto-dw-ac-jfjjof5m.workflows_temp.day_runs` WHERE run = {quoted}"
            )
            .into();
            r.as_object_mut()
                .expect("object")
                .remove("query_parameters");
            r["request_id"] = id.into();
            (r, quoted)
        }
        Vendor::Amperity => {
            let from = utc(window);
            let r = json!({
                "vendor": "amperity",
                "request_id": id,
                "tenant": format!("dayt{:03}", spec.account),
                "config_id": "cg-files01",
                "range_from": from,
                "range_to": utc(window + 86_400),
                "run_mode": "full",
            });
            (r, format!("\"{from}\""))
        }
        Vendor::Adobe => {
            let r = json!({
                "vendor": "adobe",
                "request_id": id,
                "flow_id": ADOBE_FLOW,
                "window_start": utc(window),
                "window_end": utc(window + 86_400),
            });
            (r, format!("\"{window}\""))
        }
    }
}

/// The workflow key the stack files `body`'s history under.
pub fn workflow_key(body: &[u8], now: OffsetDateTime) -> String {
    RunRequest::from_json(body)
        .expect("a valid request")
        .resolve(now)
        .workflow_key()
}

/// The day's requests for `specs`, the specs mapped onto the simulators' catalogs (see the
/// module docs): give the model the returned specs.
pub fn plan(specs: &[RunSpec], now: OffsetDateTime) -> Vec<Planned> {
    let mut lead_of: HashMap<String, RunSpec> = HashMap::new();
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let (request, tag) = request(index, spec);
            let body = serde_json::to_vec(&request).expect("serialises");
            let key = workflow_key(&body, now);
            let lead = lead_of.entry(key).or_insert_with(|| spec.clone()).clone();
            let mut spec = spec.clone();
            if let (Some(own), Some(shared)) = (spec.prediction, lead.prediction) {
                let scale = shared.median_seconds as f64 / own.median_seconds as f64;
                spec.duration = ((spec.duration as f64 * scale).round() as u64).max(1);
            }
            spec.prediction = lead.prediction;
            spec.history = lead.history;
            Planned {
                index,
                kind: spec.vendor.kind(),
                spec,
                body,
                tag,
            }
        })
        .collect()
}

/// The specs of `planned`, in order (what the model runs).
pub fn specs(planned: &[Planned]) -> Vec<RunSpec> {
    planned.iter().map(|p| p.spec.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day::workload::{generate, Intake, Workload};

    #[test]
    fn every_request_is_valid_and_tagged_and_shared_workflows_share_a_history() {
        let mut workload = Workload::issue(80, Intake::SqsBurst, 3);
        workload.amc_instances = 4;
        workload.amperity_tenants = 3;
        let now = OffsetDateTime::now_utc();
        let planned = plan(&generate(&workload), now);
        let mut by_key: HashMap<String, Vec<&Planned>> = HashMap::new();
        let tags: std::collections::HashSet<&str> =
            planned.iter().map(|p| p.tag.as_str()).collect();
        assert_eq!(tags.len(), planned.len(), "one tag per run");
        for p in &planned {
            // Adobe's tag is the window in unix seconds, as only the vendor's body has it.
            if p.spec.vendor != Vendor::Adobe {
                let text = String::from_utf8_lossy(&p.body);
                let tagged = planned
                    .iter()
                    .filter(|other| text.contains(other.tag.as_str()))
                    .count();
                assert_eq!(tagged, 1, "{} is found by its tag alone", p.index);
            }
            by_key
                .entry(workflow_key(&p.body, now))
                .or_default()
                .push(p);
        }
        for runs in by_key.values() {
            assert!(runs.iter().all(|r| r.spec.history == runs[0].spec.history));
        }
        assert!(by_key.len() < planned.len(), "Adobe's runs share a flow");
    }
}
