//! The documentation is checked against the code: docs/SETTINGS.md lists exactly the vendor
//! settings the vendor clients read and the variables the functions and the CLI read. The code
//! answers with its own lists, each used by the reading code: a vendor's declared settings
//! (`VendorEntry::settings`, beyond which a client built by the registry reads nothing), the
//! adapters' `FUNCTION_VARS` (the only names `AwsEnv` reads), the logs' `LOG_VARS`, and the
//! CLI's `ENV_VARS` and stack variables.

use std::collections::BTreeSet;
use std::path::Path;

fn settings_doc() -> String {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SETTINGS.md"));
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every backquoted name in the first cell of the rows of the table under `heading`.
fn first_column(doc: &str, heading: &str) -> BTreeSet<String> {
    let section = doc
        .split_once(heading)
        .unwrap_or_else(|| panic!("no section {heading:?}"))
        .1;
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn owned(names: impl IntoIterator<Item = impl ToString>) -> BTreeSet<String> {
    names.into_iter().map(|n| n.to_string()).collect()
}

#[test]
fn the_settings_reference_lists_every_vendor_setting_and_no_other() {
    let doc = settings_doc();
    let in_code = runbridge_vendors::registry::all_settings();
    assert!(in_code.len() > 20, "too few settings: {in_code:?}");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `RUNBRIDGE_"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let cell = cells.get(2)?;
            let key = cell.strip_prefix('`')?.strip_suffix('`')?;
            let (vendor, name) = key.split_once('.')?;
            let word =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            (word(vendor) && word(name)).then(|| key.to_owned())
        })
        .collect();
    assert_eq!(
        documented, in_code,
        "docs/SETTINGS.md and the vendor clients disagree"
    );
    for key in &in_code {
        let (vendor, name) = key.split_once('.').unwrap();
        let var = format!(
            "`RUNBRIDGE_{}_{}`",
            vendor.to_ascii_uppercase(),
            name.to_ascii_uppercase()
        );
        assert!(doc.contains(&format!("| {var} | `{key}` |")), "{var} row");
    }
}

#[test]
fn the_settings_reference_lists_the_function_variables_and_no_other() {
    let in_code: BTreeSet<String> = owned(runbridge_adapters_aws::env::FUNCTION_VARS)
        .into_iter()
        .chain(owned(runbridge_lambda::observe::LOG_VARS))
        .collect();
    assert_eq!(
        first_column(&settings_doc(), "## Function environment"),
        in_code,
        "docs/SETTINGS.md and the functions disagree"
    );
}

#[test]
fn the_settings_reference_lists_the_cli_variables_and_no_other() {
    // Read by the AWS SDK's standard chain, not by runbridge's code.
    const AWS_CHAIN: [&str; 3] = ["AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"];
    let in_code: BTreeSet<String> = owned(runbridge::ENV_VARS)
        .into_iter()
        .chain(owned([runbridge::ops::stack::STACK_VAR]))
        .chain(owned(
            runbridge::ops::stack::OUTPUTS.iter().map(|(_, var, _)| var),
        ))
        .chain(owned(AWS_CHAIN))
        .collect();
    assert_eq!(
        first_column(&settings_doc(), "## Command line"),
        in_code,
        "docs/SETTINGS.md and the CLI disagree"
    );
}
