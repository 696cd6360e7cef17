//! Vendor configuration and secrets: each vendor's `default` profile as one flat map of
//! `vendor.setting` keys, plus named profiles (one vendor account each).
//!
//! The flat map is filled from the environment (`RUNBRIDGE_AMC_CLIENT_ID` → `amc.client_id`),
//! from a JSON secret (`{"amc.client_id": "…"}` or `{"amc": {"client_id": "…"}}`), or by the
//! simulator. Named profiles come from the same JSON document's `"profiles"` object,
//! `{"profiles": {"eu-agency1": {"vendor": "amc", "client_id": "…", "region": "eu"}}}`: the
//! deployed secret, or locally the file `RUNBRIDGE_PROFILES` names. A profile holds exactly the
//! keys of its vendor's settings and inherits nothing from the default profile, so one account's
//! credentials can never be used for another. Every value is a [`SecretString`], so `Debug` and
//! logs print `[REDACTED]`.

use std::collections::BTreeMap;

use runbridge_core::{
    check_profile_name, RunRequest, ValidationError, VendorKind, DEFAULT_PROFILE,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::VendorError;

/// The environment variable naming the local profiles file (same shape as the secret).
pub const PROFILES_ENV: &str = "RUNBRIDGE_PROFILES";

/// Settings for all vendors: the default profiles and the named ones.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, SecretString>,
    profiles: BTreeMap<String, Profile>,
    // The named profile these settings are, for errors that say where a key is missing.
    profile_name: Option<String>,
    // The only keys a vendor's client may read from these settings ([`Settings::declared`]).
    declared: Option<(VendorKind, Vec<&'static str>)>,
}

/// One named profile: a vendor account. Its settings use the same `vendor.setting` keys as a
/// default profile, so the vendor's client is built from them unchanged.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The vendor the account belongs to.
    pub vendor: VendorKind,
    /// Its settings (no named profiles of their own).
    pub settings: Settings,
}

impl Settings {
    /// Empty settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings from `RUNBRIDGE_<VENDOR>_<SETTING>` environment variables.
    pub fn from_env() -> Self {
        Self::from_env_vars(std::env::vars())
    }

    /// Settings from the given environment-style pairs.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut s = Self::new();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("RUNBRIDGE_") else {
                continue;
            };
            for vendor in VendorKind::ALL {
                let tag = vendor.as_str().to_ascii_uppercase();
                if let Some(setting) = rest.strip_prefix(&tag).and_then(|r| r.strip_prefix('_')) {
                    s.set(
                        format!("{vendor}.{}", setting.to_ascii_lowercase()),
                        value.clone(),
                    );
                }
            }
        }
        s
    }

    /// Settings from the environment plus, when `RUNBRIDGE_PROFILES` names a file, the profiles
    /// (and any vendor keys) in it. Errors name the file and the key, never a value.
    pub fn local() -> Result<Self, String> {
        let mut s = Self::from_env();
        if let Some(path) = std::env::var_os(PROFILES_ENV).filter(|p| !p.is_empty()) {
            let path = std::path::PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{PROFILES_ENV}={}: cannot read: {e}", path.display()))?;
            s.merge_json(&text)
                .map_err(|e| format!("{PROFILES_ENV}={}: {e}", path.display()))?;
        }
        Ok(s)
    }

    /// Merges a JSON secret document (flat `"vendor.key"` or nested `{"vendor": {"key"}}`, and
    /// named profiles under `"profiles"`).
    pub fn merge_json(&mut self, json: &str) -> Result<(), String> {
        // serde_json's message names a position only, never the text, so a secret that is not
        // JSON cannot leak through the error.
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("secret is not JSON: {e}"))?;
        let obj = value.as_object().ok_or("secret must be a JSON object")?;
        for (k, v) in obj {
            if k == "profiles" {
                self.merge_profiles(v)?;
                continue;
            }
            match v {
                serde_json::Value::Object(inner) => {
                    for (ik, iv) in inner {
                        self.set(
                            format!("{k}.{ik}"),
                            scalar(iv).ok_or(format!("`{k}.{ik}` must be a string or number"))?,
                        );
                    }
                }
                other => self.set(
                    k.clone(),
                    scalar(other).ok_or(format!("`{k}` must be a string or number"))?,
                ),
            }
        }
        Ok(())
    }

    fn merge_profiles(&mut self, value: &serde_json::Value) -> Result<(), String> {
        let profiles = value
            .as_object()
            .ok_or("`profiles` must be an object of named profiles")?;
        for (name, body) in profiles {
            if name == DEFAULT_PROFILE {
                return Err(format!(
                    "`profiles.{name}`: each vendor's default profile is its own keys (`{{\"amc\": {{…}}}}`), not a named profile"
                ));
            }
            check_profile_name(&format!("profiles.{name}"), name).map_err(|e| e.to_string())?;
            let body = body
                .as_object()
                .ok_or(format!("`profiles.{name}` must be an object"))?;
            let vendor = match body.get("vendor") {
                Some(serde_json::Value::String(v)) => v.parse::<VendorKind>().map_err(|_| {
                    format!("`profiles.{name}.vendor` must be one of amc, amperity, adobe, carto")
                })?,
                _ => return Err(format!("`profiles.{name}.vendor` is required")),
            };
            let mut settings = Settings::new();
            for (k, v) in body.iter().filter(|(k, _)| k.as_str() != "vendor") {
                if k.is_empty() || k.contains('.') {
                    return Err(format!(
                        "`profiles.{name}`: setting names are plain (`client_id`), not `{k}`"
                    ));
                }
                settings.set(
                    format!("{vendor}.{k}"),
                    scalar(v).ok_or(format!("`profiles.{name}.{k}` must be a string or number"))?,
                );
            }
            settings.profile_name = Some(name.clone());
            self.profiles
                .insert(name.clone(), Profile { vendor, settings });
        }
        Ok(())
    }

    /// Adds (or replaces) the named profile `name` of `vendor` with `settings`, whose keys are
    /// `vendor.setting` as in a default profile.
    pub fn set_profile(
        &mut self,
        name: impl Into<String>,
        vendor: VendorKind,
        settings: Settings,
    ) -> Result<(), ValidationError> {
        let name = name.into();
        if name == DEFAULT_PROFILE {
            return Err(ValidationError::new(
                "profile",
                "`default` is each vendor's own settings, not a named profile",
            ));
        }
        check_profile_name("profile", &name)?;
        let mut settings = settings;
        settings.profile_name = Some(name.clone());
        self.profiles.insert(name, Profile { vendor, settings });
        Ok(())
    }

    /// The name of the profile these settings are: a named profile's own name, `default` for
    /// the vendors' own settings.
    pub fn profile(&self) -> &str {
        self.profile_name.as_deref().unwrap_or(DEFAULT_PROFILE)
    }

    /// The named profiles.
    pub fn profiles(&self) -> &BTreeMap<String, Profile> {
        &self.profiles
    }

    /// Checks that `request`'s profile is configured for its vendor (the default profile always
    /// is), naming the field `profile` otherwise.
    pub fn check_profile(&self, request: &RunRequest) -> Result<(), ValidationError> {
        check_profile(request, |name| self.profiles.get(name).map(|p| p.vendor))
    }

    /// Sets one value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values
            .insert(key.into(), SecretString::from(value.into()));
    }

    /// The same settings, of which `vendor`'s client may read only `keys` (its declared
    /// settings, [`crate::VendorEntry::settings`], and the common ones): the registry builds each
    /// client from these, so a read of an undeclared key fails the tests that build it.
    pub fn declared(&self, vendor: VendorKind, keys: Vec<&'static str>) -> Self {
        Self {
            declared: Some((vendor, keys)),
            ..self.clone()
        }
    }

    fn check_declared(&self, vendor: VendorKind, key: &str) {
        if let Some((declared_vendor, keys)) = &self.declared {
            debug_assert!(
                *declared_vendor == vendor && keys.contains(&key),
                "{vendor}.{key} is read but not declared in the {declared_vendor} client's \
                 settings (its VendorEntry::settings, which docs/SETTINGS.md lists): {keys:?}"
            );
        }
    }

    /// A secret value, if set. Reading it registers it with the redactor
    /// ([`runbridge_core::redact`]), so no echo of it reaches any output.
    pub fn secret(&self, vendor: VendorKind, key: &str) -> Option<SecretString> {
        self.check_declared(vendor, key);
        let value = self.values.get(&format!("{vendor}.{key}")).cloned();
        if let Some(v) = &value {
            runbridge_core::redact::register(v.expose_secret());
        }
        value
    }

    /// A required secret value.
    pub fn require_secret(
        &self,
        vendor: VendorKind,
        key: &str,
    ) -> Result<SecretString, VendorError> {
        self.secret(vendor, key).ok_or_else(|| match &self.profile_name {
            Some(name) => VendorError::Config {
                vendor,
                setting: format!("profiles.{name}.{key}"),
                message: "is not set (the profile's object in the vendor secret or the RUNBRIDGE_PROFILES file)".into(),
            },
            None => missing(vendor, key),
        })
    }

    /// A non-secret value (a URL, a region), if set.
    pub fn plain(&self, vendor: VendorKind, key: &str) -> Option<String> {
        self.check_declared(vendor, key);
        self.values
            .get(&format!("{vendor}.{key}"))
            .map(|v| v.expose_secret().to_owned())
    }

    /// A non-secret value or its default.
    pub fn plain_or(&self, vendor: VendorKind, key: &str, default: &str) -> String {
        self.plain(vendor, key)
            .unwrap_or_else(|| default.to_owned())
    }

    /// A URL setting or its default, with trailing `/` dropped (vendor modules append path
    /// segments); a value that is not a URL is a configuration error naming the setting.
    pub(crate) fn url_or(
        &self,
        vendor: VendorKind,
        key: &str,
        default: &str,
    ) -> Result<Url, VendorError> {
        parse_url(
            vendor,
            key,
            self.plain_or(vendor, key, default).trim_end_matches('/'),
        )
    }

    /// Every secret value (named profiles' too), for log scanning in tests.
    pub fn secret_values(&self) -> Vec<String> {
        self.values
            .values()
            .map(|v| v.expose_secret().to_owned())
            .chain(
                self.profiles
                    .values()
                    .flat_map(|p| p.settings.secret_values()),
            )
            .collect()
    }
}

/// The one profile rule, shared by the trigger (through [`crate::Vendors`]) and the CLI
/// (through [`Settings`]): a named profile must exist and belong to the request's vendor.
/// `vendor_of` answers which vendor a named profile belongs to.
pub fn check_profile(
    request: &RunRequest,
    vendor_of: impl Fn(&str) -> Option<VendorKind>,
) -> Result<(), ValidationError> {
    let Some(name) = request.profile.as_deref() else {
        return Ok(());
    };
    match vendor_of(name) {
        Some(v) if v == request.vendor() => Ok(()),
        Some(v) => Err(ValidationError::new(
            "profile",
            format!(
                "profile `{name}` is for {v}, not {}",
                request.vendor()
            ),
        )),
        None => Err(ValidationError::new(
            "profile",
            format!("no profile `{name}` is configured (the vendor secret's `profiles`, or locally the file {PROFILES_ENV} names)"),
        )),
    }
}

/// Parses the value of the URL setting `vendor.key`; one error wording for every vendor.
pub(crate) fn parse_url(vendor: VendorKind, key: &str, value: &str) -> Result<Url, VendorError> {
    Url::parse(value).map_err(|e| VendorError::Config {
        vendor,
        setting: format!("{vendor}.{key}"),
        message: format!("is not a URL: {e}"),
    })
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn missing(vendor: VendorKind, key: &str) -> VendorError {
    VendorError::Config {
        vendor,
        setting: format!("{vendor}.{key}"),
        message: format!(
            "is not set (environment RUNBRIDGE_{}_{} or the vendor secret)",
            vendor.as_str().to_ascii_uppercase(),
            key.to_ascii_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_token_url_is_refused_when_the_client_is_built() {
        let mut s = Settings::new();
        for (k, v) in [
            ("amc.client_id", "id"),
            ("amc.client_secret", "secret"),
            ("amc.refresh_token", "refresh"),
            ("amc.token_url", "http://api.amazon.com/auth/o2/token"),
        ] {
            s.set(k, v);
        }
        let entry = crate::registry::VENDORS
            .iter()
            .find(|e| e.kind == VendorKind::Amc)
            .expect("AMC is registered");
        match (entry.build)(
            &s,
            &crate::http::RetryConfig::fast(),
            &crate::rate::InProcessBudget::process(),
        ) {
            Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.token_url"),
            Err(other) => panic!("expected a config error naming amc.token_url, got {other:?}"),
            Ok(_) => panic!("an http token URL was accepted"),
        }
    }

    #[test]
    fn env_and_json_map_to_the_same_keys() {
        let s = Settings::from_env_vars([
            ("RUNBRIDGE_AMC_CLIENT_ID".into(), "abc".into()),
            ("OTHER".into(), "x".into()),
        ]);
        assert_eq!(
            s.plain(VendorKind::Amc, "client_id").as_deref(),
            Some("abc")
        );
        let mut j = Settings::new();
        j.merge_json(r#"{"amperity": {"client_secret": "s3cret"}, "carto.api_base": "https://x"}"#)
            .unwrap();
        assert_eq!(
            j.plain(VendorKind::Amperity, "client_secret").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            j.plain(VendorKind::Carto, "api_base").as_deref(),
            Some("https://x")
        );
        assert!(
            !format!("{j:?}").contains("s3cret"),
            "Debug must redact secrets"
        );
        let e = j
            .require_secret(VendorKind::Adobe, "client_id")
            .unwrap_err();
        assert!(e.to_string().contains("RUNBRIDGE_ADOBE_CLIENT_ID"));
    }

    fn request(json: &str) -> RunRequest {
        RunRequest::from_json(json.as_bytes()).expect("valid request")
    }

    #[test]
    fn named_profiles_sit_beside_the_default_layout() {
        let mut s = Settings::new();
        s.merge_json(
            r#"{"amc": {"client_id": "na-id"},
                "profiles": {
                  "eu-agency1": {"vendor": "amc", "client_id": "eu-id", "region": "eu"},
                  "tenant-b": {"vendor": "amperity", "client_secret": "b-secret"}
                }}"#,
        )
        .unwrap();
        assert_eq!(
            s.plain(VendorKind::Amc, "client_id").as_deref(),
            Some("na-id")
        );
        let eu = &s.profiles()["eu-agency1"];
        assert_eq!(eu.vendor, VendorKind::Amc);
        assert_eq!(
            eu.settings.plain(VendorKind::Amc, "client_id").as_deref(),
            Some("eu-id")
        );
        assert_eq!(
            eu.settings.plain(VendorKind::Amc, "region").as_deref(),
            Some("eu")
        );
        // A profile inherits nothing: the default's credentials never leak into another account.
        let b = &s.profiles()["tenant-b"].settings;
        assert_eq!(b.plain(VendorKind::Amperity, "client_id"), None);
        assert!(
            !format!("{s:?}").contains("b-secret"),
            "Debug must redact profile secrets"
        );
        assert!(s.secret_values().contains(&"b-secret".to_owned()));
    }

    #[test]
    fn bad_profile_documents_are_refused_by_key_never_by_value() {
        for (doc, names) in [
            (
                r#"{"profiles": {"eu": {"client_id": "x1"}}}"#,
                "profiles.eu.vendor",
            ),
            (
                r#"{"profiles": {"eu": {"vendor": "snow", "client_id": "x1"}}}"#,
                "profiles.eu.vendor",
            ),
            (
                r#"{"profiles": {"default": {"vendor": "amc"}}}"#,
                "profiles.default",
            ),
            (r#"{"profiles": {"EU": {"vendor": "amc"}}}"#, "profiles.EU"),
            (
                r#"{"profiles": {"eu": {"vendor": "amc", "amc.client_id": "x1"}}}"#,
                "amc.client_id",
            ),
            (
                r#"{"profiles": {"eu": {"vendor": "amc", "client_id": ["x1"]}}}"#,
                "profiles.eu.client_id",
            ),
            (r#"{"profiles": ["eu"]}"#, "profiles"),
        ] {
            let err = Settings::new().merge_json(doc).unwrap_err();
            assert!(err.contains(names), "{doc}: {err}");
            assert!(!err.contains("x1"), "{doc}: the error shows a value: {err}");
        }
    }

    #[test]
    fn a_request_may_only_name_a_profile_of_its_own_vendor() {
        let mut s = Settings::new();
        s.merge_json(
            r#"{"profiles": {"eu": {"vendor": "amc"}, "tenant-b": {"vendor": "amperity"}}}"#,
        )
        .unwrap();
        let carto = |profile: &str| {
            request(&format!(
                r#"{{"vendor":"carto","profile":"{profile}","connection":"c","query":"SELECT 1"}}"#
            ))
        };
        assert!(s.check_profile(&carto("default")).is_ok());
        let missing = s.check_profile(&carto("nope")).unwrap_err();
        assert_eq!(missing.field, "profile");
        assert!(missing.rule.contains("no profile `nope`"), "{missing}");
        let other = s.check_profile(&carto("eu")).unwrap_err();
        assert_eq!(other.field, "profile");
        assert!(other.rule.contains("is for amc, not carto"), "{other}");
        let amc = request(
            r#"{"vendor":"amc","profile":"eu","instance_id":"amc1","advertiser_id":"a1","marketplace_id":"m1","sql_query":"SELECT 1","time_window_type":"MOST_RECENT_DAY"}"#,
        );
        assert!(s.check_profile(&amc).is_ok());
        // The registry applies the same rule to the clients it built.
        let vendors = crate::Vendors::from_settings(&s, &crate::http::RetryConfig::fast());
        assert!(vendors.check_profile(&amc).is_ok());
        assert_eq!(
            vendors.check_profile(&carto("eu")).unwrap_err().field,
            "profile"
        );
        assert_eq!(
            vendors.check_profile(&carto("nope")).unwrap_err().field,
            "profile"
        );
        // An unconfigured profile is built as its configuration error, named by profile key.
        match vendors.for_request(&amc) {
            Err(VendorError::Config { setting, .. }) => {
                assert_eq!(setting, "profiles.eu.client_id")
            }
            Err(other) => panic!("expected a config error, got {other:?}"),
            Ok(_) => panic!("a profile without credentials built a client"),
        }
    }
}
