//! DynamoRateBudget: separate Lambda environments (each with its own clients, token cache and
//! budget object) sharing one table together stay within Amperity's 10 requests in any sliding
//! second of a tenant, token requests included, as the simulator counts them. The same
//! environments each with only an in-process budget do not: that is why the table exists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use runbridge_adapters_aws::DynamoRateBudget;
use runbridge_core::{IdempotencyKey, RunRequest, VendorKind};
use runbridge_sim::{SimConfig, SimHandle};
use runbridge_test_support::{moto, unique, Moto};
use runbridge_vendors::http::RetryConfig;
use runbridge_vendors::rate::{InProcessBudget, RateBudget};
use runbridge_vendors::{RunRef, Settings, Vendors};

/// Simulated Lambda environments, each cold: its first call fetches a token.
const ENVIRONMENTS: usize = 4;
/// Status calls each environment makes at once.
const CALLS: usize = 8;

async fn table(moto: &Moto) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk);
    let name = unique("rate-budget");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    (client, name)
}

/// Starts a run, then lets every environment (a budget of its own from `budget`) make
/// [`CALLS`] concurrent status calls of it; answers the simulator's 429 count of those calls.
async fn environments_poll_one_tenant(budget: impl Fn() -> Arc<dyn RateBudget>) -> (u64, Duration) {
    let sim = SimHandle::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let mut settings = Settings::new();
    for (k, v) in sim.client_settings() {
        settings.set(k, v);
    }
    let request = RunRequest::from_value(serde_json::json!(
        {"vendor": "amperity", "tenant": "acme", "config_id": "cg-db01"}
    ))
    .unwrap()
    .resolve(runbridge_core::OffsetDateTime::now_utc());
    let setup = Vendors::from_settings_with_budget(&settings, &RetryConfig::fast(), &budget());
    let id = setup
        .get(VendorKind::Amperity)
        .unwrap()
        .submit(&request, &IdempotencyKey::for_request(&request, None))
        .await
        .expect("submit")
        .vendor_run_id;
    // The setup's token and start are out of the way of the second below.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let before = sim.sim.control.requests("amperity.rate_limited");
    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..ENVIRONMENTS {
        let environment =
            Vendors::from_settings_with_budget(&settings, &RetryConfig::fast(), &budget());
        let client = environment.get(VendorKind::Amperity).unwrap();
        for _ in 0..CALLS {
            let (client, request, id) = (client.clone(), request.clone(), id.clone());
            calls.push(tokio::spawn(async move {
                client
                    .status(RunRef {
                        request: &request,
                        vendor_run_id: &id,
                    })
                    .await
            }));
        }
    }
    let answers = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    let refused = sim.sim.control.requests("amperity.rate_limited") - before;
    let failed = answers
        .into_iter()
        .filter(|a| !matches!(a, Ok(Ok(_))))
        .count();
    if refused == 0 {
        assert_eq!(failed, 0, "every status answered");
    }
    (refused, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_sharing_the_table_never_exceed_the_tenant_limit_tokens_included() {
    let Some(moto) = moto("environments_sharing_the_table_never_exceed_the_tenant_limit").await
    else {
        return;
    };
    let (client, name) = table(&moto).await;
    let (refused, elapsed) = environments_poll_one_tenant(|| {
        Arc::new(DynamoRateBudget::new(client.clone(), &name)) as Arc<dyn RateBudget>
    })
    .await;
    assert_eq!(
        refused, 0,
        "the simulator counted more than 10 requests of the tenant in some second"
    );
    // 4 tokens and 32 status calls, spaced at least 110 ms apart whichever environment sent them.
    let requests = (ENVIRONMENTS * (CALLS + 1)) as f64;
    assert!(
        elapsed.as_secs_f64() >= (requests - 1.0) * 0.11 - 0.05,
        "{requests} requests in {elapsed:?}"
    );
}

/// The budget each environment had before the table: one per process. Four environments send
/// four times the limit, and the simulator refuses the excess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_with_only_their_own_budget_exceed_the_tenant_limit() {
    let (refused, _) =
        environments_poll_one_tenant(|| Arc::new(InProcessBudget::new()) as Arc<dyn RateBudget>)
            .await;
    assert!(
        refused > 0,
        "per-process budgets together stayed under the limit"
    );
}
