//! The deployed path with named profiles: the trigger function built from the environment reads
//! the vendor secret from Secrets Manager (moto), with each vendor's default keys and a
//! `profiles` object beside them, and runs two AMC accounts (NA and EU) and two Amperity tenants
//! against the simulators, each with its own account's token (AMC's runs queued by the trigger
//! and submitted by the poll function's Admit once each holds a slot of its instance); a request
//! naming a profile the secret does not have is dead-lettered naming `profile`.

use runbridge_adapters_aws::ATTR_FIELD;
use runbridge_core::{IdempotencyKey, OffsetDateTime, RunRequest, VendorKind};
use runbridge_lambda::{PollFunction, TriggerFunction};
use runbridge_sim::auth::{ACCOUNTS, DEFAULT_ACCOUNT};
use runbridge_sim::{SimConfig, SimHandle};
use serde_json::{json, Map, Value};

use super::doubles::attribute;
use runbridge_test_support::{moto, unique};

const SECOND: &str = ACCOUNTS[1];

fn settings_object(pairs: Vec<(String, String)>, vendor: VendorKind) -> Map<String, Value> {
    let prefix = format!("{vendor}.");
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), Value::String(v))))
        .collect()
}

#[tokio::test]
async fn the_trigger_function_runs_each_profile_of_the_secret_with_its_own_credentials() {
    let Some(moto) =
        moto("the_trigger_function_runs_each_profile_of_the_secret_with_its_own_credentials").await
    else {
        return;
    };
    let sim = SimHandle::start(SimConfig::default())
        .await
        .expect("simulator starts");
    sim.sim.control.assign(VendorKind::Amc, "amceu01", SECOND);
    sim.sim.control.assign(VendorKind::Amperity, "beta", SECOND);

    // The secret as an operator writes it: the legacy per-vendor layout is each vendor's default
    // profile; named profiles sit beside it.
    let mut secret = Map::new();
    let mut profiles = Map::new();
    for (vendor, profile) in [
        (VendorKind::Amc, "amc-eu"),
        (VendorKind::Amperity, "amperity-b"),
    ] {
        secret.insert(
            vendor.to_string(),
            Value::Object(settings_object(sim.client_settings(), vendor)),
        );
        let mut p = settings_object(sim.account_settings(vendor, SECOND), vendor);
        p.insert("vendor".into(), json!(vendor));
        profiles.insert(profile.into(), Value::Object(p));
    }
    secret.insert("profiles".into(), Value::Object(profiles));
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk);
    let secret_name = unique("rb-profiles");
    sm.create_secret()
        .name(&secret_name)
        .secret_string(Value::Object(secret).to_string())
        .send()
        .await
        .unwrap();

    let bucket = moto.bucket().await;
    let state_machine = moto.state_machine().await;
    let dlq_url = moto.queue().await;
    // The trigger function also hosts the stop handler, which publishes run events.
    let (bus, _events) = moto.bus_to_queue(r#"{"source": ["runbridge"]}"#).await;
    let env = moto.env(&[
        ("RESULTS_BUCKET", &bucket),
        ("RESULTS_PREFIX", "runbridge"),
        ("LEDGER_PREFIX", "runbridge/_ledger/"),
        ("STATE_MACHINE_ARN", &state_machine),
        ("VENDOR_SECRET_ARN", &secret_name),
        ("DEAD_LETTER_QUEUE_URL", &dlq_url),
        ("EVENT_BUS_NAME", &bus),
    ]);
    let trigger = TriggerFunction::from_env(&env).expect("trigger from the environment");
    let poll = PollFunction::from_env(&env).expect("poll from the environment");

    let amc = |id: &str, instance: &str, profile: Option<&str>| {
        let mut r = json!({"vendor": "amc", "request_id": id, "instance_id": instance,
            "advertiser_id": "ENTITY1ABC", "marketplace_id": "ATVPDKIKX0DER",
            "sql_query": "SELECT 1", "time_window_type": "MOST_RECENT_DAY"});
        if let Some(p) = profile {
            r["profile"] = json!(p);
        }
        r
    };
    let amperity = |id: &str, tenant: &str, profile: Option<&str>| {
        let mut r = json!({"vendor": "amperity", "request_id": id, "tenant": tenant,
            "config_id": "cg-files01", "range_from": "2026-11-26T00:00:00Z",
            "range_to": "2026-11-27T00:00:00Z", "run_mode": "full"});
        if let Some(p) = profile {
            r["profile"] = json!(p);
        }
        r
    };
    let id = unique("p");
    let requests = [
        amc(&format!("{id}-na"), "amcna01", None),
        amc(&format!("{id}-eu"), "amceu01", Some("amc-eu")),
        amperity(&format!("{id}-a"), "acme", None),
        amperity(&format!("{id}-b"), "beta", Some("amperity-b")),
    ];
    let event = |detail: &Value| {
        json!({"version": "0", "id": unique("ev"), "detail-type": "Run Requested",
            "source": "acme.marketing", "account": "123456789012",
            "time": "2026-11-26T06:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail})
    };
    // All four at once, as the Lambda service would run them.
    let outcomes =
        futures::future::join_all(requests.iter().map(|r| trigger.handle(event(r)))).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk);
    for (request, outcome) in requests.iter().zip(outcomes) {
        outcome.unwrap_or_else(|e| panic!("{request}: {e}"));
        let key = IdempotencyKey::for_request(
            &RunRequest::from_value(request.clone())
                .unwrap()
                .resolve(OffsetDateTime::now_utc()),
            None,
        );
        let arn = state_machine.replacen(":stateMachine:", ":execution:", 1) + ":" + key.as_str();
        let execution = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("no execution for {key}: {e}"));
        let input: Value = serde_json::from_str(execution.input().unwrap()).unwrap();
        // The execution carries a reference whose key is the profile's (the request itself stays
        // in the ledger).
        assert_eq!(input["handle"]["key"], json!(key.as_str()), "{request}");
        if let Some(profile) = request["profile"].as_str() {
            assert!(key.as_str().contains(&format!(".{profile}.")), "{key}");
        }
        // AMC limits running executions per instance: the trigger queued the run, and the
        // execution's Admit (the poll function, from the same environment; here as an execution
        // of the earlier definition, which polls for its slot) takes a slot of the profile's
        // instance (one scope record, a conditional write) and submits it.
        if request["vendor"] == "amc" {
            assert_eq!(input["queued"], json!(true), "{input}");
            let admitted = poll
                .handle(json!({"handle": input["handle"], "queued": true, "waits": 0}))
                .await
                .unwrap_or_else(|e| panic!("admit {key}: {e}"));
            assert_eq!(admitted["queued"], json!(false), "{admitted}");
            assert_eq!(admitted["failed"], json!(false), "{admitted}");
            assert!(
                !admitted["handle"]["vendor_run_id"]
                    .as_str()
                    .unwrap()
                    .is_empty(),
                "{admitted}"
            );
            let scope = format!(
                "amc.{}.{}",
                request["profile"].as_str().unwrap_or("default"),
                request["instance_id"].as_str().unwrap()
            );
            let record = format!("runbridge/_ledger/slots/{scope}.json");
            let held = moto
                .s3()
                .get_object()
                .bucket(&bucket)
                .key(&record)
                .send()
                .await
                .unwrap_or_else(|e| panic!("no scope record {record}: {e}"));
            let held: Value =
                serde_json::from_slice(&held.body.collect().await.unwrap().into_bytes()).unwrap();
            assert_eq!(held["holders"][0]["key"], json!(key.as_str()), "{held}");
        }
    }
    for vendor in [VendorKind::Amc, VendorKind::Amperity] {
        assert_eq!(sim.sim.control.runs_created(vendor), 2, "{vendor}");
        for account in [DEFAULT_ACCOUNT, SECOND] {
            assert_eq!(
                sim.sim.tokens.issued_count_for(vendor, account),
                1,
                "{vendor} {account}: one token of its own"
            );
        }
    }

    // A profile the secret does not have: dead-lettered, naming the field.
    let unknown = amc(&format!("{id}-x"), "amcna01", Some("amc-apac"));
    let outcome = trigger.handle(event(&unknown)).await.expect("handled");
    match serde_json::from_value::<runbridge_lambda::TriggerOutcome>(outcome).unwrap() {
        runbridge_lambda::TriggerOutcome::DeadLettered { error } => {
            assert!(error.contains("no profile `amc-apac`"), "{error}")
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    let letters = moto.receive(&dlq_url).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        attribute(&letters[0], ATTR_FIELD).as_deref(),
        Some("profile")
    );
    assert_eq!(sim.sim.control.runs_created(VendorKind::Amc), 2);
}
