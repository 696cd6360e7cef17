//! Polls that learn each workflow's duration, on the local deployment and the Amperity
//! simulator: the durations are kept per workflow (two workflows of one tenant never mix), the
//! next run of a workflow is predicted from its own runs, and a run far longer than predicted is
//! still polled to its end, at most ten minutes late.

use runbridge_core::{DurationHistory, RunRequest, RunState, VendorKind};
use runbridge_sim::RunScript;
use runbridge_system_tests::harness::{example_request, Harness};

const AMPERITY: VendorKind = VendorKind::Amperity;
/// Simulated seconds a run of each workflow takes: long against the simulated seconds that each
/// real millisecond of processing adds at the harness's speed.
const SHORT: f64 = 2_000.0;
const LONG: f64 = 8_000.0;

/// Amperity's example with `request_id`, for courier group `config_id`.
fn request(request_id: &str, config_id: &str) -> Vec<u8> {
    let mut r: serde_json::Value =
        serde_json::from_slice(&example_request(AMPERITY, request_id)).unwrap();
    r["config_id"] = config_id.into();
    if config_id != "cg-files01" {
        // A window is for a file-based group only.
        let o = r.as_object_mut().unwrap();
        o.remove("range_from");
        o.remove("range_to");
    }
    serde_json::to_vec(&r).unwrap()
}

fn workflow_of(body: &[u8]) -> String {
    RunRequest::from_json(body)
        .unwrap()
        .resolve(time::OffsetDateTime::now_utc())
        .workflow_key()
}

/// Runs `request` to its end with runs of the simulator taking `seconds`.
async fn run(h: &Harness, id: &str, body: Vec<u8>, seconds: f64) -> runbridge_core::Manifest {
    h.sim.sim.control.set_default_script(
        AMPERITY,
        RunScript {
            queue_seconds: 0.0,
            run_seconds: seconds,
            rows: 10,
            ..RunScript::default()
        },
    );
    h.trigger.handle_bytes(&body, None).await.unwrap();
    h.run_to_end_for(AMPERITY, id).await
}

async fn history(h: &Harness, workflow: &str) -> DurationHistory {
    h.deployment.poller.history.read(workflow).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workflow_is_predicted_from_its_own_runs_and_an_overrun_is_still_watched() {
    let h = Harness::start().await;
    let short = request("short-0", "cg-files01");
    let long = request("long-0", "cg-db01");
    let (short_flow, long_flow) = (workflow_of(&short), workflow_of(&long));
    assert_ne!(
        short_flow, long_flow,
        "two groups of one tenant are two workflows"
    );
    // The same workflow, another night's window: one workflow.
    let mut other_night: serde_json::Value = serde_json::from_slice(&short).unwrap();
    other_night["range_from"] = "2026-11-27T00:00:00Z".into();
    other_night["range_to"] = "2026-11-28T00:00:00Z".into();
    assert_eq!(
        workflow_of(&serde_json::to_vec(&other_night).unwrap()),
        short_flow
    );

    for n in 0..3 {
        let id = format!("short-{n}");
        let m = run(&h, &id, request(&id, "cg-files01"), SHORT).await;
        assert_eq!(m.state, RunState::Succeeded);
        let id = format!("long-{n}");
        let m = run(&h, &id, request(&id, "cg-db01"), LONG).await;
        assert_eq!(m.state, RunState::Succeeded);
    }
    let short_runs = history(&h, &short_flow).await;
    let long_runs = history(&h, &long_flow).await;
    assert_eq!(short_runs.durations.len(), 3, "{short_runs:?}");
    assert_eq!(long_runs.durations.len(), 3, "{long_runs:?}");
    let short_median = short_runs.predict().unwrap().median_seconds;
    let long_median = long_runs.predict().unwrap().median_seconds;
    // Each run's end is known to within its polls (and, at this speed, the simulated seconds
    // each real millisecond of processing adds).
    assert!((1_700..=2_600).contains(&short_median), "{short_runs:?}");
    assert!((7_400..=9_000).contains(&long_median), "{long_runs:?}");

    // The fourth short run is predicted from the short runs only, and is noticed close to its
    // end: within the lag the prediction aims at (a minute for a five-minute workflow), plus the
    // simulated time a loaded machine adds at this speed.
    let m = run(&h, "short-3", request("short-3", "cg-files01"), 300.0).await;
    assert_eq!(m.state, RunState::Succeeded);
    let handle = h.handle_for(AMPERITY, "short-3").await;
    let predicted = m
        .prediction
        .expect("the manifest says how its end was predicted");
    assert_eq!(predicted.median_seconds, short_median);
    assert!(handle.polls <= 8, "{} polls", handle.polls);

    // A short-workflow run ten times longer than ever is polled to its end, at most ten
    // minutes late.
    let m = run(&h, "short-4", request("short-4", "cg-files01"), 3_000.0).await;
    assert_eq!(m.state, RunState::Succeeded);
    let lag = m.detection_lag_seconds.expect("a lag bound");
    assert!(lag <= 600.0 + 60.0, "{lag} s late");
}
