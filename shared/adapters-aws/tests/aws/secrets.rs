//! SecretsSettings: the secret merged over the environment, cached for the TTL, rotation seen.

use std::time::Duration;

use runbridge_adapters_aws::SecretsSettings;
use runbridge_core::VendorKind;
use runbridge_vendors::Settings;

use runbridge_test_support::{moto, unique};

#[tokio::test]
async fn settings_come_from_the_secret_and_are_cached_for_the_ttl() {
    let Some(moto) = moto("settings_come_from_the_secret_and_are_cached_for_the_ttl").await else {
        return;
    };
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk);
    let name = unique("rb-secret");
    sm.create_secret()
        .name(&name)
        .secret_string(r#"{"amperity": {"client_id": "abc", "client_secret": "s3cr3t-value"}}"#)
        .send()
        .await
        .unwrap();
    let base = Settings::from_env_vars([(
        "RUNBRIDGE_CARTO_API_BASE".to_owned(),
        "https://carto.example".to_owned(),
    )]);
    let cached = SecretsSettings::new(sm.clone(), &name).with_base(base.clone());
    let uncached = SecretsSettings::new(sm.clone(), &name)
        .with_base(base)
        .with_ttl(Duration::ZERO);

    let settings = cached.settings().await.unwrap();
    assert_eq!(
        settings.plain(VendorKind::Amperity, "client_id").as_deref(),
        Some("abc")
    );
    assert_eq!(
        settings.plain(VendorKind::Carto, "api_base").as_deref(),
        Some("https://carto.example"),
        "base settings kept"
    );
    assert!(
        !format!("{settings:?}").contains("s3cr3t-value"),
        "settings must not print secrets"
    );
    assert!(uncached.settings().await.is_ok());

    // Rotation: a new version is seen by a reader whose copy is stale.
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"amperity.client_id": "rotated"}"#)
        .send()
        .await
        .unwrap();
    let rotated = uncached.settings().await.unwrap();
    assert_eq!(
        rotated.plain(VendorKind::Amperity, "client_id").as_deref(),
        Some("rotated")
    );

    // Gone from Secrets Manager: the cached reader still answers (it does not call), the
    // stale one fails (it does).
    sm.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let again = cached.settings().await.unwrap();
    assert_eq!(
        again.plain(VendorKind::Amperity, "client_id").as_deref(),
        Some("abc")
    );
    let err = uncached.settings().await.unwrap_err();
    assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
}

#[tokio::test]
async fn a_secret_that_is_not_json_is_a_configuration_error_without_its_value() {
    let Some(moto) =
        moto("a_secret_that_is_not_json_is_a_configuration_error_without_its_value").await
    else {
        return;
    };
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk);
    let name = unique("rb-secret");
    sm.create_secret()
        .name(&name)
        .secret_string("hunter2-not-json")
        .send()
        .await
        .unwrap();
    let err = SecretsSettings::new(sm, &name)
        .settings()
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains(&name) && !err.to_string().contains("hunter2"),
        "{err}"
    );
}
