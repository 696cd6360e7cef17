//! The operator commands against moto, on the real template (`infra/template.yaml` through the
//! SAM translator) created as a stack in moto's CloudFormation, selected by its name as an
//! operator selects a deployed stack. moto records the executions the commands start without
//! running them, so a started run stays RUNNING until a test stops it.

mod exit_table;

use std::path::PathBuf;
use std::time::Duration;

use runbridge::exit::Exit;
use runbridge::ops::commands::{self, Backfill, StateFilter};
use runbridge::ops::{Ops, StackSelector};
use runbridge::output::Output;
use runbridge_adapters_aws::S3Ledger;
use runbridge_core::{
    Attribution, IdempotencyKey, Manifest, ResultLayout, RunHandle, RunRequest, RunState,
};
use runbridge_handlers::ports::{KeyState, Ledger, LedgerEntry, QueuePlace, RecordedRun};
use runbridge_handlers::queue::queued_input;
use runbridge_test_support::moto::{moto, unique, Moto};
use runbridge_test_support::stack::RealStack;
use time::macros::{date, datetime};
use time::OffsetDateTime;

const EXIT_RUN_FAILED: u8 = Exit::RunFailed.code();
const EXIT_INVALID: u8 = Exit::InvalidInput.code();
const EXIT_NOT_FOUND: u8 = Exit::NotFound.code();
const EXIT_AWS: u8 = Exit::AwsError.code();

struct Deployed {
    moto: Moto,
    name: String,
    stack: RealStack,
    ops: Ops,
    dir: tempfile::TempDir,
}

/// A stack in moto's CloudFormation, and `Ops` connected to it by name.
async fn deployed(test: &str) -> Option<Deployed> {
    let moto = moto(test).await?;
    let name = unique("rb-ops");
    let stack = RealStack::create(&moto, test, &name, &[]).await?;
    let selector = StackSelector {
        stack: Some(name.clone()),
        vars: Default::default(),
    };
    let ops = Ops::connect(&moto.sdk, &selector).await.expect("connect");
    Some(Deployed {
        moto,
        name,
        stack,
        ops,
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Deployed {
    fn file(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    async fn queue_bodies(&self) -> Vec<serde_json::Value> {
        let url = self.ops.stack.queue_url().unwrap().to_owned();
        let mut all = Vec::new();
        loop {
            let batch = self.moto.receive(&url).await;
            if batch.is_empty() {
                return all;
            }
            all.extend(
                batch
                    .iter()
                    .map(|m| serde_json::from_str(m.body().unwrap()).unwrap()),
            );
        }
    }

    fn ledger(&self) -> S3Ledger {
        S3Ledger::new(
            self.moto.s3(),
            self.ops.stack.bucket().unwrap(),
            &self.ops.stack.ledger_prefix(),
        )
    }

    /// Claims `request`'s key and records a vendor run, as the trigger does; returns the handle.
    async fn claimed(&self, request: &str, run_id: Option<&str>) -> RunHandle {
        self.claimed_on(request, run_id, OffsetDateTime::now_utc())
            .await
    }

    /// [`Self::claimed`], as if the trigger had claimed the key at `claimed_at`.
    async fn claimed_on(
        &self,
        request: &str,
        run_id: Option<&str>,
        claimed_at: OffsetDateTime,
    ) -> RunHandle {
        let resolved = RunRequest::from_json(request.as_bytes())
            .unwrap()
            .resolve(datetime!(2026-11-27 06:00 UTC));
        let key = IdempotencyKey::for_request(&resolved, None);
        let mut entry = LedgerEntry {
            key: key.clone(),
            request: resolved.clone(),
            fingerprint: None,
            claimed_at,
            state: KeyState::Claimed {
                lease_until: claimed_at + runbridge_core::LEGACY_CLAIM_LEASE,
            },
        };
        self.ledger().claim(entry.clone()).await.unwrap();
        match run_id {
            Some(id) => {
                entry
                    .record_submit(RecordedRun {
                        vendor_run_id: id.to_owned(),
                        submitted_at: claimed_at,
                        vendor_state: None,
                    })
                    .unwrap();
                self.ledger().update(&entry).await.unwrap();
                RunHandle::new(key, resolved, id.to_owned(), claimed_at)
            }
            None => RunHandle::queued(key, resolved, claimed_at),
        }
    }

    /// Starts the execution named after the handle's key with the trigger's input.
    async fn started(&self, handle: &RunHandle, wait_seconds: u64) {
        aws_sdk_sfn::Client::new(&self.moto.sdk)
            .start_execution()
            .state_machine_arn(self.ops.stack.state_machine_arn().unwrap())
            .name(handle.key.as_str())
            .input(
                serde_json::json!({"handle": handle.reference(), "wait_seconds": wait_seconds})
                    .to_string(),
            )
            .send()
            .await
            .expect("start execution");
    }
}

const AMPERITY: &str = r#"{"vendor":"amperity","request_id":"daily-2026-11-26","tenant":"acme","config_id":"cg-files01","range_from":"2026-11-26T00:00:00Z","range_to":"2026-11-27T00:00:00Z"}"#;
const CARTO: &str =
    r#"{"vendor":"carto","request_id":"nightly-1","connection":"bq","query":"SELECT 1"}"#;

#[tokio::test]
async fn the_stack_is_selected_by_name_and_a_missing_one_is_not_found() {
    let Some(d) = deployed("the_stack_is_selected_by_name_and_a_missing_one_is_not_found").await
    else {
        return;
    };
    assert_eq!(d.ops.stack.name.as_deref(), Some(d.name.as_str()));
    // The resources the stack created, found through its outputs.
    assert_eq!(
        d.ops.stack.queue_url().unwrap(),
        d.stack.output("RunRequestQueueUrl")
    );
    assert!(d
        .ops
        .stack
        .queue_url()
        .unwrap()
        .contains(&format!("/{}-RunRequestQueue-", d.name)));
    assert_eq!(
        d.ops.stack.state_machine_arn().unwrap(),
        d.stack.output("StateMachineArn")
    );
    assert!(d
        .ops
        .stack
        .state_machine_arn()
        .unwrap()
        .contains(&format!(":stateMachine:{}-RunStateMachine-", d.name)));
    assert_eq!(
        d.ops.stack.bucket().unwrap(),
        d.stack.output("ResultsBucketName")
    );
    assert_eq!(d.ops.stack.ledger_prefix(), "runbridge/_ledger/");

    let missing = StackSelector {
        stack: Some(unique("rb-nope")),
        vars: Default::default(),
    };
    let err = Ops::connect(&d.moto.sdk, &missing).await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND, "{err}");

    // Without a stack, explicit variables select the resources; a missing one is named.
    let vars = [(
        "RUNBRIDGE_QUEUE_URL".to_owned(),
        d.ops.stack.queue_url().unwrap().to_owned(),
    )]
    .into_iter()
    .collect();
    let by_vars = Ops::connect(&d.moto.sdk, &StackSelector { stack: None, vars })
        .await
        .unwrap();
    assert_eq!(
        by_vars.stack.queue_url().unwrap(),
        d.ops.stack.queue_url().unwrap()
    );
    let err = by_vars.stack.state_machine_arn().unwrap_err();
    assert_eq!(err.exit_code(), EXIT_INVALID);
    assert!(
        err.to_string().contains("RUNBRIDGE_STATE_MACHINE_ARN"),
        "{err}"
    );
}

#[tokio::test]
async fn the_deployed_template_has_every_output_the_cli_reads() {
    let template = include_str!("../../infra/template.yaml");
    let outputs = &template[template.find("\nOutputs:").expect("an Outputs section")..];
    for (output, _, _) in runbridge::ops::stack::OUTPUTS {
        assert!(
            outputs.contains(&format!("\n  {output}:")),
            "infra/template.yaml has no output {output}"
        );
    }
    let Some(d) = deployed("the_deployed_template_has_every_output_the_cli_reads").await else {
        return;
    };
    for (output, _, _) in runbridge::ops::stack::OUTPUTS {
        assert!(
            !d.stack.output(output).is_empty(),
            "the created stack's output {output} is empty"
        );
    }
}

#[tokio::test]
async fn submit_validates_every_file_first_then_sends_each_and_prints_its_key() {
    let Some(d) =
        deployed("submit_validates_every_file_first_then_sends_each_and_prints_its_key").await
    else {
        return;
    };
    let good = [d.file("a.json", AMPERITY), d.file("c.json", CARTO)];
    let bad = d.file("bad.json", r#"{"vendor":"carto","connection":"bq"}"#);

    let err = commands::submit(&d.ops, &[good[0].clone(), bad])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_INVALID);
    assert!(
        err.to_string().contains("bad.json") && err.to_string().contains("`query`"),
        "{err}"
    );
    assert!(
        d.queue_bodies().await.is_empty(),
        "nothing is sent when one file is invalid"
    );

    let out = commands::submit(&d.ops, &good).await.unwrap();
    assert_eq!(out.json[0]["key"], "amperity-daily-2026-11-26");
    assert_eq!(out.json[1]["key"], "carto-nightly-1");
    assert!(
        out.text.contains("key amperity-daily-2026-11-26"),
        "{}",
        out.text
    );
    let mut ids: Vec<String> = d
        .queue_bodies()
        .await
        .iter()
        .map(|b| b["request_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["daily-2026-11-26", "nightly-1"]);
}

#[tokio::test]
async fn status_reads_the_ledger_the_execution_and_the_manifest() {
    let Some(d) = deployed("status_reads_the_ledger_the_execution_and_the_manifest").await else {
        return;
    };
    let err = commands::status(&d.ops, "amperity-nope").await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);

    // Claimed, never submitted: the ledger alone.
    let claimed = d.claimed(CARTO, None).await;
    let out = commands::status(&d.ops, claimed.key.as_str())
        .await
        .unwrap();
    assert_eq!(out.json["state"], "claimed");
    assert!(out.failure.is_none());

    // Submitted and polled by a running execution.
    let handle = d.claimed(AMPERITY, Some("wfr-123")).await;
    d.started(&handle, 45).await;
    let out = commands::status(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(out.json["state"], "running", "{}", out.json);
    assert_eq!(out.json["vendor"], "amperity");
    assert_eq!(out.json["vendor_run_id"], "wfr-123");
    assert_eq!(out.json["key_state"], "submitted");
    assert_eq!(out.json["profile"], "default");
    assert_eq!(out.json["attempt"], 1);
    assert_eq!(out.json["queued"], false);
    assert_eq!(out.json["polls"], 0);
    assert_eq!(out.json["execution"]["status"], "RUNNING");
    let next = OffsetDateTime::parse(
        out.json["next_poll_at"].as_str().expect("a next poll"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let started = OffsetDateTime::parse(
        out.json["execution"]["started_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((next - started).whole_seconds(), 45);
    assert!(out.text.contains("vendor run id  wfr-123"), "{}", out.text);

    // It failed: collect wrote a failure manifest; the execution ended.
    let layout = ResultLayout::new(d.ops.stack.results_prefix()).unwrap();
    let manifest_key = layout.paths(&handle).manifest();
    let manifest = Manifest::new(
        &handle,
        RunState::Failed,
        Some("workflow failed: courier cg-files01 refused the credentials".into()),
        Some(Attribution::Customer),
        vec![],
        OffsetDateTime::now_utc(),
    );
    d.moto
        .s3()
        .put_object()
        .bucket(d.ops.stack.bucket().unwrap())
        .key(&manifest_key)
        .body(serde_json::to_vec(&manifest).unwrap().into())
        .send()
        .await
        .unwrap();
    let out = commands::status(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(out.json["state"], "failed");
    assert_eq!(out.json["attribution"], "customer");
    assert_eq!(out.json["manifest"]["manifest_key"], manifest_key.as_str());
    assert!(out.json["reason"]
        .as_str()
        .unwrap()
        .contains("refused the credentials"));
    let err = out.finish(true).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_RUN_FAILED);
}

#[tokio::test]
async fn status_says_queued_for_a_run_waiting_for_a_concurrency_slot() {
    let Some(d) = deployed("status_says_queued_for_a_run_waiting_for_a_concurrency_slot").await
    else {
        return;
    };
    let handle = d.claimed(CARTO, None).await;
    let mut entry = d.ledger().get(&handle.key).await.unwrap().unwrap();
    entry.state = KeyState::Queued(QueuePlace {
        since: entry.claimed_at,
        slot: None,
        vendor_full: 0,
    });
    d.ledger().update(&entry).await.unwrap();
    // The execution input the trigger starts a queued run with.
    aws_sdk_sfn::Client::new(&d.moto.sdk)
        .start_execution()
        .state_machine_arn(d.ops.stack.state_machine_arn().unwrap())
        .name(handle.key.as_str())
        .input(serde_json::to_string(&queued_input(&entry.handle().unwrap())).unwrap())
        .send()
        .await
        .expect("start execution");
    let out = commands::status(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(out.json["state"], "queued", "{}", out.json);
    assert!(out.json["vendor_run_id"].is_null(), "{}", out.json);
    assert_eq!(out.json["key_state"], "queued");
    assert_eq!(out.json["queued"], true);
    assert!(
        out.text
            .contains("vendor run id  none yet: queued for a concurrency slot"),
        "{}",
        out.text
    );
    assert!(out.failure.is_none());
}

#[tokio::test]
async fn list_shows_executions_and_ledger_keys_filtered_by_state_vendor_and_age() {
    let Some(d) =
        deployed("list_shows_executions_and_ledger_keys_filtered_by_state_vendor_and_age").await
    else {
        return;
    };
    let amperity = d.claimed(AMPERITY, Some("wfr-1")).await;
    d.started(&amperity, 30).await;
    let carto = d.claimed(CARTO, Some("job-1")).await;
    d.started(&carto, 30).await;
    commands::cancel(&d.ops, carto.key.as_str()).await.unwrap();
    let only_claimed = d
        .claimed(
            r#"{"vendor":"carto","request_id":"never-started","connection":"bq","query":"SELECT 2"}"#,
            None,
        )
        .await;

    let states = |out: &Output| -> Vec<(String, String)> {
        out.json
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_owned(),
                    r["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let mut all = states(&commands::list(&d.ops, None, None, None).await.unwrap());
    all.sort();
    assert_eq!(
        all,
        [
            (amperity.key.to_string(), "running".to_owned()),
            (only_claimed.key.to_string(), "claimed".to_owned()),
            (carto.key.to_string(), "aborted".to_owned()),
        ]
    );
    // Each row is the run's view: the key's state in the ledger, profile, vendor run id.
    let listed = commands::list(&d.ops, None, None, None).await.unwrap();
    let row = |key: &IdempotencyKey| {
        listed
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key.as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(row(&only_claimed.key)["key_state"], "claimed");
    assert_eq!(row(&only_claimed.key)["profile"], "default");
    assert_eq!(row(&carto.key)["vendor_run_id"], "job-1");
    assert_eq!(row(&carto.key)["key_state"], "submitted");
    assert!(row(&carto.key)["started_at"].is_string());
    assert!(listed.text.starts_with("STATE"), "{}", listed.text);
    let running = commands::list(&d.ops, Some(StateFilter::Running), None, None)
        .await
        .unwrap();
    assert_eq!(
        states(&running),
        [(amperity.key.to_string(), "running".to_owned())]
    );
    let carto_only = commands::list(&d.ops, None, Some(runbridge_core::VendorKind::Carto), None)
        .await
        .unwrap();
    assert_eq!(states(&carto_only).len(), 2);
    let recent = commands::list(
        &d.ops,
        None,
        None,
        Some(commands::parse_duration("1h").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(states(&recent).len(), 3);
    assert!(commands::parse_duration("3 days").is_err());
}

/// A named profile's key, a key without `request_id`, a rerun's key and a recovery execution's
/// name all start `amc` differently: `list --vendor amc` reads each with the core's key parser.
#[tokio::test]
async fn list_by_vendor_knows_every_key_form() {
    let Some(d) = deployed("list_by_vendor_knows_every_key_form").await else {
        return;
    };
    const AMC: &str = r#""vendor":"amc","instance_id":"amc1","advertiser_id":"a1","marketplace_id":"m1","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY""#;
    let plain = d
        .claimed(&format!(r#"{{"request_id":"r1",{AMC}}}"#), None)
        .await;
    let profile = d
        .claimed(
            &format!(r#"{{"request_id":"r1","profile":"eu-agency1",{AMC}}}"#),
            None,
        )
        .await;
    let no_id = d.claimed(&format!("{{{AMC}}}"), None).await;
    let rerun = d
        .claimed(
            &format!(r#"{{"request_id":"r1","attempt":2,{AMC}}}"#),
            Some("exec-2"),
        )
        .await;
    d.started(&rerun, 30).await;
    let recovery = format!("{}=1", no_id.key);
    aws_sdk_sfn::Client::new(&d.moto.sdk)
        .start_execution()
        .state_machine_arn(d.ops.stack.state_machine_arn().unwrap())
        .name(&recovery)
        .input(serde_json::json!({"handle": no_id.reference()}).to_string())
        .send()
        .await
        .expect("start the recovery execution");
    let carto = d.claimed(CARTO, None).await;
    for key in [&profile.key, &no_id.key, &rerun.key] {
        assert!(
            !key.as_str().starts_with("amc-"),
            "{key}: not the plain form"
        );
    }

    let keys = |vendor| {
        let ops = &d.ops;
        async move { listed_keys(&commands::list(ops, None, Some(vendor), None).await.unwrap()) }
    };
    let mut amc = vec![
        plain.key.to_string(),
        profile.key.to_string(),
        no_id.key.to_string(),
        rerun.key.to_string(),
        recovery,
    ];
    amc.sort();
    assert_eq!(keys(runbridge_core::VendorKind::Amc).await, amc);
    assert_eq!(
        keys(runbridge_core::VendorKind::Carto).await,
        [carto.key.to_string()]
    );
}

/// Ops whose every AWS call fails (nothing listens at its endpoint): a command that answers
/// "invalid input" with them never called AWS.
async fn unreachable_ops() -> Ops {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "unreachable"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let vars = [
        ("RUNBRIDGE_QUEUE_URL", "http://127.0.0.1:9/000000000000/q"),
        ("RUNBRIDGE_RESULTS_BUCKET", "results"),
        (
            "RUNBRIDGE_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:000000000000:stateMachine:m",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Ops::connect(&sdk, &StackSelector { stack: None, vars })
        .await
        .unwrap()
}

#[tokio::test]
async fn status_cancel_and_rerun_refuse_a_text_that_is_no_key_before_calling_aws() {
    let ops = unreachable_ops().await;
    let long = format!("amc-{}", "x".repeat(80));
    for (key, problem) in [
        ("", "empty"),
        ("../x", "'/'"),
        (long.as_str(), "84 characters"),
        ("acme-r1", "`acme`"),
    ] {
        for result in [
            commands::status(&ops, key).await,
            commands::cancel(&ops, key).await,
            commands::rerun(&ops, key).await,
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.exit_code(), EXIT_INVALID, "{key:?}: {err}");
            assert!(err.to_string().contains(problem), "{key:?}: {err}");
        }
    }
    // A key is looked up: the same commands reach for AWS (and fail there).
    let err = commands::status(&ops, "amc-r1").await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_AWS, "{err}");
}

#[tokio::test]
async fn cancel_stops_a_running_execution_once() {
    let Some(d) = deployed("cancel_stops_a_running_execution_once").await else {
        return;
    };
    let err = commands::cancel(&d.ops, "carto-nope").await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
    let handle = d.claimed(CARTO, Some("job-9")).await;
    d.started(&handle, 30).await;
    let out = commands::cancel(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(out.json["stopped"], true);
    let exec = d
        .ops
        .describe_execution(handle.key.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.status, "ABORTED");
    let again = commands::cancel(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(again.json["stopped"], false);
    assert_eq!(again.json["status"], "ABORTED");
    // status of the cancelled run reports it (exit code 1).
    let out = commands::status(&d.ops, handle.key.as_str()).await.unwrap();
    assert_eq!(out.json["state"], "aborted");
    assert!(out.failure.is_some());
}

#[tokio::test]
async fn rerun_resends_the_stored_request_with_the_next_attempt_or_says_why_not() {
    let Some(d) =
        deployed("rerun_resends_the_stored_request_with_the_next_attempt_or_says_why_not").await
    else {
        return;
    };
    let err = commands::rerun(&d.ops, "carto-nope").await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
    let handle = d.claimed(CARTO, Some("job-7")).await;
    d.started(&handle, 30).await;
    let err = commands::rerun(&d.ops, handle.key.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    commands::cancel(&d.ops, handle.key.as_str()).await.unwrap();

    let mut probe: serde_json::Value = serde_json::from_str(CARTO).unwrap();
    probe["attempt"] = 2.into();
    let attempts_supported = RunRequest::from_value(probe).is_ok();
    match commands::rerun(&d.ops, handle.key.as_str()).await {
        Ok(out) => {
            assert!(
                attempts_supported,
                "rerun sent a request validation refuses"
            );
            assert_eq!(out.json["attempt"], 2);
            let bodies = d.queue_bodies().await;
            assert_eq!(bodies.len(), 1);
            assert_eq!(bodies[0]["attempt"], 2);
            assert_eq!(bodies[0]["request_id"], "nightly-1");
        }
        Err(err) => {
            assert!(!attempts_supported, "rerun refused a valid request: {err}");
            assert_eq!(err.exit_code(), EXIT_INVALID);
            assert!(err.to_string().contains("`attempt`"), "{err}");
            assert!(d.queue_bodies().await.is_empty());
        }
    }

    // The last attempt a request may have: refused, saying so (and what to do instead).
    let last = d
        .claimed(
            r#"{"vendor":"carto","request_id":"nightly-1","attempt":999,"connection":"bq","query":"SELECT 1"}"#,
            Some("job-999"),
        )
        .await;
    let err = commands::rerun(&d.ops, last.key.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_INVALID);
    assert_eq!(err.field.as_deref(), Some("attempt"));
    let message = err.to_string();
    assert!(
        message.contains("attempt 999") && message.contains("new request_id"),
        "{message}"
    );
    assert!(!message.contains("no `attempt` field"), "{message}");
    assert!(d.queue_bodies().await.is_empty());
}

#[tokio::test]
async fn backfill_sends_one_request_per_window_and_never_one_twice() {
    let Some(d) = deployed("backfill_sends_one_request_per_window_and_never_one_twice").await
    else {
        return;
    };
    let template = d.file(
        "daily.json",
        r#"{"vendor":"amperity","request_id":"daily","tenant":"acme","config_id":"cg-files01","relative_window":"previous_day"}"#,
    );
    let args = Backfill {
        request: template,
        from: date!(2026 - 11 - 24),
        to: date!(2026 - 11 - 26),
        every: None,
        rate: 50.0,
        dry_run: true,
    };
    let dry = commands::backfill(Some(&d.ops), &args).await.unwrap();
    assert_eq!(dry.json.as_array().unwrap().len(), 3);
    assert!(d.queue_bodies().await.is_empty(), "a dry run sends nothing");

    // The trigger already claimed the first window (an earlier, interrupted backfill).
    d.claimed(
        &serde_json::to_string(&dry.json[0]["request"]).unwrap(),
        Some("wfr-a"),
    )
    .await;
    let args = Backfill {
        dry_run: false,
        ..args
    };
    let out = commands::backfill(Some(&d.ops), &args).await.unwrap();
    let actions: Vec<&str> = out
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["exists", "sent", "sent"]);
    let mut sent: Vec<(String, String)> = d
        .queue_bodies()
        .await
        .iter()
        .map(|b| {
            (
                b["request_id"].as_str().unwrap().to_owned(),
                b["range_from"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            (
                "daily-2026-11-25".to_owned(),
                "2026-11-25T00:00:00Z".to_owned()
            ),
            (
                "daily-2026-11-26".to_owned(),
                "2026-11-26T00:00:00Z".to_owned()
            ),
        ]
    );
    let err = commands::backfill(
        Some(&d.ops),
        &Backfill {
            every: Some(runbridge::ops::backfill::Every::Month),
            ..args
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_INVALID);
}

/// The binary's exit codes, end to end against the same moto stack.
#[tokio::test]
async fn the_binary_exits_with_a_code_per_cause() {
    let Some(d) = deployed("the_binary_exits_with_a_code_per_cause").await else {
        return;
    };
    let handle = d.claimed(CARTO, Some("job-3")).await;
    d.started(&handle, 30).await;
    commands::cancel(&d.ops, handle.key.as_str()).await.unwrap();
    let bad = d.file("bad.json", r#"{"vendor":"amc"}"#);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_runbridge"))
            .args(["--stack", &d.name])
            .args(args)
            .env("AWS_ENDPOINT_URL", &d.moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUNBRIDGE_STACK")
            .output()
            .unwrap()
    };
    let out = run(&["--json", "status", handle.key.as_str()]);
    assert_eq!(out.status.code(), Some(1), "failed run");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["state"], "aborted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("stack backtrace") && !stderr.contains("Stack backtrace"),
        "{stderr}"
    );
    assert_eq!(
        run(&["status", "carto-nope"]).status.code(),
        Some(3),
        "not found"
    );
    assert_eq!(
        run(&["submit", bad.to_str().unwrap()]).status.code(),
        Some(2),
        "invalid"
    );
    assert_eq!(
        run(&["list", "--since", "yesterday"]).status.code(),
        Some(2),
        "invalid"
    );
    let aws = std::process::Command::new(env!("CARGO_BIN_EXE_runbridge"))
        // A well-formed key: a text that is no key is refused before any AWS call (exit 2).
        .args(["--stack", &d.name, "status", "carto-x"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(
        aws.status.code(),
        Some(4),
        "AWS error: {}",
        String::from_utf8_lossy(&aws.stderr)
    );
}

#[tokio::test]
async fn dlq_redrive_resends_requests_never_records_or_rejects() {
    let Some(d) = deployed("dlq_redrive_resends_requests_never_records_or_rejects").await else {
        return;
    };
    let dlq = d
        .ops
        .stack
        .get("RunRequestDeadLetterQueueUrl")
        .unwrap()
        .to_owned();
    let sqs = d.moto.sqs();
    let event = format!(
        r#"{{"version":"0","id":"e","detail-type":"Run Requested","source":"runbridge.requests","time":"2026-11-27T06:00:00Z","detail":{CARTO}}}"#
    );
    let record = format!(
        r#"{{"version":"1.0","requestContext":{{"requestId":"r","condition":"RetriesExhausted"}},"requestPayload":{event},"responseContext":{{"statusCode":200}},"responsePayload":{{"errorType":"Retryable"}}}}"#
    );
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(&record)
        .send()
        .await
        .unwrap();
    runbridge_adapters_aws::DlqSender::new(sqs.clone(), &dlq)
        .send(
            r#"{"vendor":"carto"}"#,
            &runbridge_adapters_aws::DeadLetterReason {
                error: "invalid request: field `query`: is required".into(),
                attribution: Some(runbridge_core::Attribution::Customer),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let listed = runbridge::ops::dlq::redrive(&d.ops, 10, true)
        .await
        .unwrap();
    assert_eq!(listed.json.as_array().unwrap().len(), 2, "{}", listed.text);
    // Who caused a rejection is said as the run's other views say it.
    let rejected = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["plan"]["shape"] == "rejected")
        .expect("the rejected request is listed");
    assert_eq!(rejected["attribution"], "customer", "{}", listed.text);
    assert!(
        listed.text.contains("[caused by: customer]"),
        "{}",
        listed.text
    );
    assert!(d.queue_bodies().await.is_empty(), "list sends nothing");
    for row in listed.json.as_array().unwrap() {
        assert!(row["action"] == "would_resend" || row["action"] == "kept");
    }
    let received = d.moto.receive(&dlq).await;
    assert!(
        received.is_empty(),
        "listed messages stay invisible for a while"
    );
    // Listing hid them for five minutes; start the redrive from a fresh copy of both.
    let purge = sqs.purge_queue().queue_url(&dlq).send().await;
    purge.unwrap();
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(&record)
        .send()
        .await
        .unwrap();
    runbridge_adapters_aws::DlqSender::new(sqs.clone(), &dlq)
        .send(
            r#"{"vendor":"carto"}"#,
            &runbridge_adapters_aws::DeadLetterReason {
                error: "invalid request".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let out = runbridge::ops::dlq::redrive(&d.ops, 10, false)
        .await
        .unwrap();
    let actions: std::collections::BTreeMap<String, String> = out
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["plan"]["shape"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(actions["lambda-failure"], "resent");
    assert_eq!(actions["rejected"], "kept");
    let sent = d.queue_bodies().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["request_id"], "nightly-1",
        "the request, not the record"
    );
    assert!(sent[0].get("requestContext").is_none());
}

/// docs/RUNBOOK.md's commands, in order, against a moto stack with one running run as `$KEY`.
#[tokio::test]
async fn the_runbook_commands_work_as_documented() {
    let Some(d) = deployed("the_runbook_commands_work_as_documented").await else {
        return;
    };
    let handle = d.claimed(CARTO, Some("job-42")).await;
    d.started(&handle, 30).await;
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let runbook = std::fs::read_to_string(format!("{repo}/docs/RUNBOOK.md")).unwrap();
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in runbook.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && l.starts_with("runbridge ") => commands.push(l.to_owned()),
            _ => {}
        }
    }
    for verb in [
        "list", "status", "cancel", "rerun", "submit", "backfill", "dlq",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(&format!(" {verb}"))),
            "the runbook shows no {verb} command"
        );
    }
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_runbridge"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut probe: serde_json::Value = serde_json::from_str(CARTO).unwrap();
    probe["attempt"] = 2.into();
    let attempts_supported = RunRequest::from_value(probe).is_ok();
    for command in &commands {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(repo)
            .env("PATH", &path)
            .env("STACK", &d.name)
            .env("KEY", handle.key.as_str())
            .env("AWS_ENDPOINT_URL", &d.moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("RUNBRIDGE_STACK")
            .output()
            .unwrap();
        let code = out.status.code();
        let allowed: &[i32] = if command.contains(" rerun ") && !attempts_supported {
            &[2]
        } else if command.contains(" status ") {
            &[0, 1]
        } else {
            &[0]
        };
        assert!(
            code.is_some_and(|c| allowed.contains(&c)),
            "`{command}` exited {code:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The commands did what they say: the run was cancelled, the backfill sent its windows.
    let exec = d
        .ops
        .describe_execution(handle.key.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.status, "ABORTED");
    let ids: Vec<String> = d
        .queue_bodies()
        .await
        .iter()
        .map(|b| b["request_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    for window in ["2026-11-01", "2026-11-02", "2026-11-03"] {
        assert!(
            ids.contains(&format!("amperity-daily-files-{window}")),
            "{window} not sent: {ids:?}"
        );
    }
}

/// The exit-code table's cases that need a stack (`exit_table`), against the moto stack: a
/// running run (`$RUNNING`), a cancelled one (`$ABORTED`), a stack that does not exist.
#[tokio::test]
async fn the_operator_commands_exit_by_the_table() {
    let Some(d) = deployed("the_operator_commands_exit_by_the_table").await else {
        return;
    };
    let running = d.claimed(AMPERITY, Some("wfr-7")).await;
    d.started(&running, 30).await;
    let aborted = d.claimed(CARTO, Some("job-8")).await;
    d.started(&aborted, 30).await;
    commands::cancel(&d.ops, aborted.key.as_str())
        .await
        .unwrap();
    exit_table::write_fixtures(d.dir.path());
    let vars = exit_table::Vars {
        pairs: vec![
            ("DIR", d.dir.path().display().to_string()),
            ("STACK", d.name.clone()),
            ("MISSING", unique("rb-missing")),
            ("RUNNING", running.key.to_string()),
            ("ABORTED", aborted.key.to_string()),
        ],
        moto_endpoint: Some(d.moto.endpoint.clone()),
    };
    let cases: Vec<_> = exit_table::CASES
        .iter()
        .filter(|c| c.place == exit_table::Place::Moto)
        .collect();
    assert!(cases.len() > 15, "{}", cases.len());
    for case in cases {
        vars.check(case);
    }
}

/// An AWS endpoint that accepts every connection and never answers: each operator command
/// ends within the operation timeout of [`runbridge::ops::client::sdk_config_within`], with an
/// error saying it timed out.
#[tokio::test]
async fn a_command_against_an_endpoint_that_never_answers_times_out() {
    use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
    use runbridge::ops::client::{sdk_config, sdk_config_within};
    use runbridge_adapters_aws::env::AwsTimeouts;

    // The defaults bound every call too.
    let defaults = sdk_config(None, Some("us-east-1")).await;
    let configured = defaults.timeout_config().expect("timeouts configured");
    assert!(configured.operation_timeout().is_some());
    assert!(configured.operation_attempt_timeout().is_some());
    assert!(configured.connect_timeout().is_some());

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let timeouts = AwsTimeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(500),
        operation: Duration::from_millis(1_500),
    };
    // The loaded configuration, without the environment's service settings (an
    // `AWS_ENDPOINT_URL` pointing at moto would win over the silent endpoint).
    let loaded = sdk_config_within(None, Some("us-east-1"), timeouts).await;
    assert_eq!(loaded.timeout_config(), Some(&timeouts.config()));
    let mut sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{address}"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "x", "x", None, None, "silent",
        )))
        .timeout_config(loaded.timeout_config().cloned().unwrap())
        .http_client(loaded.http_client().unwrap());
    sdk.set_sleep_impl(loaded.sleep_impl());
    sdk.set_time_source(loaded.time_source());
    sdk.set_retry_config(loaded.retry_config().cloned());
    let sdk = sdk.build();
    let vars = [
        (
            "RUNBRIDGE_QUEUE_URL",
            format!("http://{address}/000000000000/q"),
        ),
        ("RUNBRIDGE_RESULTS_BUCKET", "results".to_owned()),
        (
            "RUNBRIDGE_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:000000000000:stateMachine:m".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let ops = Ops::connect(&sdk, &StackSelector { stack: None, vars })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    for result in [
        commands::status(&ops, "amc-r1").await,
        commands::cancel(&ops, "amc-r1").await,
        commands::rerun(&ops, "amc-r1").await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_AWS, "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
    }
    // Three commands, each of at most a few operations bounded by 1.5 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    held.abort();
}

/// `list` reads the ledger's day index: a key claimed days ago is found by the day it was
/// claimed, `--since` reads only the days asked about, and the records kept beside the entries
/// (queues, durations, the index itself) are never listed as runs.
#[tokio::test]
async fn list_reads_ledger_keys_by_the_day_they_were_claimed() {
    let Some(d) = deployed("list_reads_ledger_keys_by_the_day_they_were_claimed").await else {
        return;
    };
    let recent = d
        .claimed(
            r#"{"vendor":"carto","request_id":"claimed-today","connection":"bq","query":"SELECT 2"}"#,
            None,
        )
        .await;
    let old = d
        .claimed_on(
            r#"{"vendor":"carto","request_id":"claimed-before","connection":"bq","query":"SELECT 3"}"#,
            None,
            OffsetDateTime::now_utc() - time::Duration::days(3),
        )
        .await;
    let bucket = d.ops.stack.bucket().unwrap();
    let beside = format!(
        "{}history/carto.default.x.json",
        d.ledger().day_index_prefix().trim_end_matches("by-day/")
    );
    d.moto
        .s3()
        .put_object()
        .bucket(bucket)
        .key(&beside)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();

    let keys = |out: Output| listed_keys(&out);
    let mut both = vec![recent.key.to_string(), old.key.to_string()];
    both.sort();
    assert_eq!(
        keys(commands::list(&d.ops, None, None, None).await.unwrap()),
        both
    );
    assert_eq!(
        keys(
            commands::list(
                &d.ops,
                None,
                None,
                Some(commands::parse_duration("1d").unwrap())
            )
            .await
            .unwrap()
        ),
        [recent.key.to_string()],
        "--since 1d reads today's and yesterday's index, not the day three days ago"
    );
}

/// The keys `list` printed, sorted.
fn listed_keys(out: &Output) -> Vec<String> {
    let mut keys: Vec<String> = out
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// A submit the vendor refused for good released its key and started no execution; its FAILED
/// ending (written by the trigger's own `end_refused` into the stack's bucket) is still what
/// `status` shows for the key, found from the key alone: exit 1, `customer`, the refusal's
/// reason; `list` shows the same. A key with nothing at all is still not found.
#[tokio::test]
async fn status_finds_the_ending_of_a_refused_submit_from_its_key() {
    use std::sync::Arc;
    let Some(d) = deployed("status_finds_the_ending_of_a_refused_submit_from_its_key").await else {
        return;
    };
    let bucket = d.ops.stack.bucket().unwrap().to_owned();
    let finisher = runbridge_handlers::finish::Finisher {
        sink: Arc::new(runbridge_adapters_aws::S3Sink::new(d.moto.s3(), bucket)),
        events: Arc::new(runbridge_test_support::memory::LogEvents::default()),
        layout: ResultLayout::new(d.ops.stack.results_prefix()).unwrap(),
        clock: Arc::new(runbridge_handlers::SystemClock),
        slots: Arc::new(runbridge_test_support::memory::MemorySlots::default()),
        callbacks: Arc::new(runbridge_test_support::memory::MemoryCallbacks::default()),
    };
    let now = OffsetDateTime::now_utc();
    let resolved = RunRequest::from_json(CARTO.as_bytes())
        .unwrap()
        .resolve(now);
    let key = IdempotencyKey::for_request(&resolved, None);
    let entry = LedgerEntry::claimed(
        key.clone(),
        resolved,
        runbridge_core::Fingerprint::of(&RunRequest::from_json(CARTO.as_bytes()).unwrap()),
        now,
        now,
    );
    let refusal = runbridge_vendors::VendorError::Rejected {
        vendor: runbridge_core::VendorKind::Carto,
        status: 400,
        field: None,
        message: "Syntax error: unexpected end of statement".into(),
    };
    // As the trigger does: the key is claimed, the submit refused, the claim released.
    d.ledger().claim(entry.clone()).await.unwrap();
    d.ledger().release(&key).await.unwrap();
    let ending = runbridge_handlers::trigger::end_refused(&finisher, &entry, &refusal, now)
        .await
        .unwrap();

    let out = commands::status(&d.ops, key.as_str()).await.unwrap();
    assert_eq!(out.json["state"], "failed", "{}", out.json);
    assert_eq!(out.json["attribution"], "customer");
    assert_eq!(out.json["reason"], ending.reason.as_deref().unwrap());
    assert_eq!(out.json["manifest"]["event_id"], ending.event_id.as_str());
    let failure = out.failure.expect("a failed run");
    assert_eq!(failure.exit_code(), EXIT_RUN_FAILED);
    assert_eq!(failure.attribution, Some(Attribution::Customer));
    assert!(
        failure.message.contains("Syntax error"),
        "{}",
        failure.message
    );

    let err = commands::status(&d.ops, "carto-never-sent")
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_NOT_FOUND);

    // `list` finds the key in the ledger's day index and tells the same story.
    let out = commands::list(&d.ops, None, None, None).await.unwrap();
    let row = out
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key.as_str())
        .unwrap_or_else(|| panic!("{key} not listed: {}", out.json))
        .clone();
    assert_eq!(row["state"], "failed", "{row}");
    assert_eq!(row["attribution"], "customer", "{row}");
    assert_eq!(row["reason"], ending.reason.as_deref().unwrap(), "{row}");
}
