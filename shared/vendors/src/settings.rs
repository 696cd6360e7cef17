//! Vendor configuration and secrets as one flat map of `vendor.setting` keys.
//!
//! The map is filled from the environment (`RUNBRIDGE_AMC_CLIENT_ID` → `amc.client_id`), from a
//! JSON secret (`{"amc.client_id": "…"}` or `{"amc": {"client_id": "…"}}`), or by the simulator.
//! Every value is a [`SecretString`], so `Debug` and logs print `[REDACTED]`.

use std::collections::BTreeMap;

use runbridge_core::VendorKind;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::VendorError;

/// Settings for all vendors.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, SecretString>,
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

    /// Merges a JSON secret document (flat `"vendor.key"` or nested `{"vendor": {"key"}}`).
    pub fn merge_json(&mut self, json: &str) -> Result<(), String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("secret is not JSON: {e}"))?;
        let obj = value.as_object().ok_or("secret must be a JSON object")?;
        for (k, v) in obj {
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

    /// Sets one value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values
            .insert(key.into(), SecretString::from(value.into()));
    }

    /// A secret value, if set.
    pub fn secret(&self, vendor: VendorKind, key: &str) -> Option<SecretString> {
        self.values.get(&format!("{vendor}.{key}")).cloned()
    }

    /// A required secret value.
    pub fn require_secret(
        &self,
        vendor: VendorKind,
        key: &str,
    ) -> Result<SecretString, VendorError> {
        self.secret(vendor, key).ok_or_else(|| missing(vendor, key))
    }

    /// A non-secret value (a URL, a region), if set.
    pub fn plain(&self, vendor: VendorKind, key: &str) -> Option<String> {
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

    /// Every secret value, for log scanning in tests.
    pub fn secret_values(&self) -> Vec<String> {
        self.values
            .values()
            .map(|v| v.expose_secret().to_owned())
            .collect()
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

/// Checks endpoints that receive credentials (API bases, token URLs): https only, or plain http
/// to a loopback host when the sandbox switch (`<vendor>.download_allow_loopback`, refused in a
/// deployed function) is on. `{tenant}` templates are checked with a sample tenant.
pub(crate) fn check_endpoints(
    settings: &Settings,
    vendor: VendorKind,
    endpoints: &[(&str, &str)],
) -> Result<(), VendorError> {
    let sandbox = crate::download::sandbox_switch(settings, vendor, crate::download::deployed())?;
    for (key, value) in endpoints {
        check_endpoint(vendor, key, value, sandbox)?;
    }
    Ok(())
}

/// One endpoint (see [`check_endpoints`]).
pub(crate) fn check_endpoint(
    vendor: VendorKind,
    key: &str,
    value: &str,
    sandbox: bool,
) -> Result<(), VendorError> {
    let url = parse_url(vendor, key, &value.replace("{tenant}", "tenant"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if sandbox && loopback => Ok(()),
        scheme => Err(VendorError::Config {
            vendor,
            setting: format!("{vendor}.{key}"),
            message: format!(
                "must be an https URL (it receives credentials), not `{scheme}`; plain http is for loopback simulators with `{vendor}.download_allow_loopback`"
            ),
        }),
    }
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
    fn credential_endpoints_must_be_https() {
        let amc = VendorKind::Amc;
        assert!(check_endpoint(
            amc,
            "token_url",
            "https://api.amazon.com/auth/o2/token",
            false
        )
        .is_ok());
        for (url, sandbox) in [
            ("http://api.amazon.com/auth/o2/token", false),
            ("http://api.amazon.com/auth/o2/token", true),
            ("http://127.0.0.1:8080/auth/o2/token", false),
            ("http://10.0.0.1/auth/o2/token", true),
            ("ftp://api.amazon.com/x", false),
        ] {
            match check_endpoint(amc, "token_url", url, sandbox) {
                Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.token_url"),
                other => {
                    panic!("{url} (sandbox {sandbox}): expected a config error, got {other:?}")
                }
            }
        }
        assert!(check_endpoint(amc, "token_url", "http://127.0.0.1:8080/t", true).is_ok());
        assert!(check_endpoint(amc, "api_base", "http://localhost:8080", true).is_ok());
        assert!(check_endpoint(
            VendorKind::Amperity,
            "api_base",
            "https://{tenant}.amperity.com/api",
            false
        )
        .is_ok());
    }

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
        match (entry.build)(&s, &crate::http::RetryConfig::fast()) {
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
}
