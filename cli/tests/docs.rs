//! The documentation is checked against the code: docs/SETTINGS.md lists exactly the vendor
//! settings the vendor clients read and the variables the functions and the CLI read.

use std::collections::BTreeSet;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every string literal passed as the key after `VENDOR, ` in a settings read
/// (`plain_or(VENDOR, "region", …)`), per vendor folder; plus the download policy's keys for
/// each vendor whose client builds one.
fn vendor_settings_in_code() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    // The download policy reads two of its settings; the sandbox switch it obeys is read where
    // the credential endpoints' check reads it too.
    let download =
        read("shared/vendors/src/download.rs") + &read("shared/vendors/src/endpoints.rs");
    let download_keys: Vec<&str> = [
        "download_hosts",
        "download_allow_loopback",
        "private_download_hosts",
    ]
    .into_iter()
    .filter(|k| download.contains(&format!("vendor, \"{k}\")")))
    .collect();
    assert_eq!(
        download_keys.len(),
        3,
        "the download policy's settings moved"
    );
    let registry = std::fs::read_to_string(repo().join("shared/vendors/src/registry.rs")).unwrap();
    assert!(
        registry.contains("pub const MAX_CONCURRENT_SETTING: &str = \"max_concurrent\";"),
        "the concurrency limit's setting moved"
    );
    for vendor in ["amc", "amperity", "adobe", "carto"] {
        let mut files = Vec::new();
        rust_files(&repo().join("shared/vendors/src").join(vendor), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, _) in text.match_indices("(VENDOR, \"") {
                let before = &text[..i];
                let method = before
                    .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap();
                if !["plain", "plain_or", "secret", "require_secret", "url_or"].contains(&method) {
                    continue;
                }
                let rest = &text[i + "(VENDOR, \"".len()..];
                let key = &rest[..rest.find('"').unwrap()];
                found.insert(format!("{vendor}.{key}"));
            }
            // Every vendor's profile may limit its runs at once (read by the registry).
            found.insert(format!("{vendor}.max_concurrent"));
            if text.contains("DownloadPolicy::from_settings") {
                for k in &download_keys {
                    found.insert(format!("{vendor}.{k}"));
                }
            }
        }
    }
    found
}

#[test]
fn the_settings_reference_lists_every_vendor_setting_and_no_other() {
    let doc = read("docs/SETTINGS.md");
    let in_code = vendor_settings_in_code();
    assert!(in_code.len() > 20, "the scan found too little: {in_code:?}");
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
fn the_settings_reference_lists_the_function_and_cli_variables() {
    let doc = read("docs/SETTINGS.md");
    let env = read("shared/adapters-aws/src/env.rs");
    let mut names: Vec<String> = env
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    names.extend(
        runbridge::ops::stack::OUTPUTS
            .iter()
            .map(|(_, var, _)| (*var).to_owned()),
    );
    names.push(runbridge::ops::stack::STACK_VAR.to_owned());
    names.push("RUNBRIDGE_LOG".into());
    for name in names {
        assert!(
            doc.contains(&format!("| `{name}`")),
            "{name} is not documented"
        );
    }
}
