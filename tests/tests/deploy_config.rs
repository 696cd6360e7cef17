//! The deployment's own configuration: `samconfig.toml`'s environments and the Serverless
//! Application Repository metadata of `infra/template.yaml`, checked against the template they
//! configure.

use std::collections::BTreeMap;

use runbridge_test_support::template::{repository_root, transformed};
use serde_json::Value;

fn samconfig() -> toml::Table {
    let path = repository_root().join("samconfig.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.parse().expect("samconfig.toml parses")
}

/// `[ENV.COMMAND.parameters]` of samconfig, or an empty table.
fn parameters<'a>(config: &'a toml::Table, env: &str, command: &str) -> &'a toml::Table {
    static EMPTY: std::sync::OnceLock<toml::Table> = std::sync::OnceLock::new();
    config
        .get(env)
        .and_then(|e| e.get(command))
        .and_then(|c| c.get("parameters"))
        .and_then(|p| p.as_table())
        .unwrap_or_else(|| EMPTY.get_or_init(toml::Table::new))
}

/// `parameter_overrides` as sam reads it: space-separated `Key=Value` pairs.
fn overrides(deploy: &toml::Table) -> BTreeMap<String, String> {
    let text = deploy
        .get("parameter_overrides")
        .and_then(|v| v.as_str())
        .expect("parameter_overrides");
    text.split_whitespace()
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("Key=Value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn dev_and_prod_are_separate_stacks_with_their_own_parameters() {
    let config = samconfig();
    let stack = |env: &str| {
        parameters(&config, env, "global")
            .get("stack_name")
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("[{env}.global.parameters] has no stack_name"))
            .to_owned()
    };
    let (dev, prod) = (stack("dev"), stack("prod"));
    assert_ne!(dev, prod, "dev and prod must be different stacks");
    assert_ne!(dev, stack("default"));
    assert_ne!(prod, stack("default"));

    let dev_params = overrides(parameters(&config, "dev", "deploy"));
    let prod_params = overrides(parameters(&config, "prod", "deploy"));
    assert_ne!(dev_params, prod_params, "the environments' parameters");
    assert_ne!(dev_params["ResultsPrefix"], prod_params["ResultsPrefix"]);
    for env in ["dev", "prod"] {
        let deploy = parameters(&config, env, "deploy");
        // Deploy takes sam build's output (the compiled bootstraps), never the sources.
        assert!(
            deploy.get("template_file").is_none(),
            "[{env}.deploy.parameters] must not name a template"
        );
        assert!(deploy.get("capabilities").is_some(), "{env}: capabilities");
        for command in ["build", "validate"] {
            assert_eq!(
                parameters(&config, env, command)
                    .get("template_file")
                    .and_then(|v| v.as_str()),
                Some("infra/template.yaml"),
                "[{env}.{command}.parameters]"
            );
        }
    }
    assert_eq!(
        parameters(&config, "prod", "deploy").get("confirm_changeset"),
        Some(&toml::Value::Boolean(true)),
        "prod change sets are confirmed"
    );
    assert_eq!(
        parameters(&config, "publish", "package")
            .get("template_file")
            .and_then(|v| v.as_str()),
        Some(".aws-sam/build/template.yaml"),
        "sam package takes the built template"
    );
    assert_eq!(
        parameters(&config, "publish", "publish").get("template_file"),
        parameters(&config, "publish", "package").get("output_template_file"),
        "sam publish takes what sam package wrote"
    );
}

#[test]
fn the_environments_parameters_are_the_templates_and_allowed() {
    let Some(template) = transformed(
        "the_environments_parameters_are_the_templates_and_allowed",
        "b",
        "p",
    ) else {
        return;
    };
    let declared = template["Parameters"].as_object().unwrap();
    let config = samconfig();
    for env in ["dev", "prod"] {
        for (key, value) in overrides(parameters(&config, env, "deploy")) {
            let parameter = declared
                .get(&key)
                .unwrap_or_else(|| panic!("{env}: {key} is not a parameter of the template"));
            if let Some(allowed) = parameter.get("AllowedValues").and_then(Value::as_array) {
                let allowed: Vec<String> = allowed
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                assert!(
                    allowed.contains(&value),
                    "{env}: {key}={value} not in {allowed:?}"
                );
            }
        }
        // Every parameter without a default is given.
        let given = overrides(parameters(&config, env, "deploy"));
        for (key, parameter) in declared {
            if parameter.get("Default").is_none() {
                assert!(
                    given.contains_key(key),
                    "{env}: {key} has no default and is not set"
                );
            }
        }
    }
}

#[test]
fn the_serverless_repo_metadata_is_complete_and_versioned_with_the_workspace() {
    let Some(template) = transformed(
        "the_serverless_repo_metadata_is_complete_and_versioned_with_the_workspace",
        "b",
        "p",
    ) else {
        return;
    };
    let app = &template["Metadata"]["AWS::ServerlessRepo::Application"];
    for field in [
        "Name",
        "Description",
        "Author",
        "SpdxLicenseId",
        "LicenseUrl",
        "ReadmeUrl",
        "SemanticVersion",
        "SourceCodeUrl",
        "HomePageUrl",
    ] {
        assert!(
            app[field].as_str().is_some_and(|v| !v.trim().is_empty()),
            "Metadata.AWS::ServerlessRepo::Application.{field} is missing"
        );
    }
    assert!(app["Description"].as_str().unwrap().len() <= 256);
    assert_eq!(
        app["SemanticVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "the application's version is the workspace's"
    );
    assert_eq!(app["SpdxLicenseId"].as_str(), Some("Apache-2.0"));
    // sam package uploads these local files, relative to the template's folder.
    let infra = repository_root().join("infra");
    for field in ["LicenseUrl", "ReadmeUrl"] {
        let path = infra.join(app[field].as_str().unwrap());
        assert!(path.is_file(), "{field}: {path:?} is not a file");
    }
    let licence = std::fs::read_to_string(infra.join(app["LicenseUrl"].as_str().unwrap())).unwrap();
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0"));
}
