//! Which endpoints a vendor client may talk to. Endpoints that receive credentials (API bases,
//! token URLs) must be https, checked when a vendor's settings are read; the one exception is
//! the sandbox switch `<vendor>.download_allow_loopback`, which lets a client talk to loopback
//! addresses (the local simulators) and is refused in a deployed function. The download policy
//! ([`crate::download`]) obeys the same switch.

use runbridge_core::VendorKind;

use crate::settings::parse_url;
use crate::{Settings, VendorError};

/// Whether this process is a deployed Lambda function (where the sandbox switch is refused).
pub fn deployed() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty())
}

/// The sandbox switch `<vendor>.download_allow_loopback`: loopback targets (plain http included)
/// for the simulators. Setting it in a deployed function (`deployed`) is a configuration error.
pub fn sandbox_switch(
    settings: &Settings,
    vendor: VendorKind,
    deployed: bool,
) -> Result<bool, VendorError> {
    let on = settings
        .plain(vendor, "download_allow_loopback")
        .is_some_and(|v| v.trim() == "true");
    if on && deployed {
        return Err(VendorError::Config {
            vendor,
            setting: format!("{vendor}.download_allow_loopback"),
            message: "is the sandbox switch for the local simulators; it cannot be set in a deployed function".into(),
        });
    }
    Ok(on)
}

/// Checks endpoints that receive credentials (API bases, token URLs): https only, or plain http
/// to a loopback host when the sandbox switch (`<vendor>.download_allow_loopback`, refused in a
/// deployed function) is on. `{tenant}` templates are checked with a sample tenant.
pub(crate) fn check_endpoints(
    settings: &Settings,
    vendor: VendorKind,
    endpoints: &[(&str, &str)],
) -> Result<(), VendorError> {
    let sandbox = sandbox_switch(settings, vendor, deployed())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_switch_is_refused_in_a_deployed_function() {
        let mut s = Settings::new();
        s.set("amc.download_allow_loopback", "true");
        assert!(sandbox_switch(&s, VendorKind::Amc, false).unwrap());
        match sandbox_switch(&s, VendorKind::Amc, true) {
            Err(VendorError::Config { setting, .. }) => {
                assert_eq!(setting, "amc.download_allow_loopback")
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        assert!(!sandbox_switch(&Settings::new(), VendorKind::Amc, true).unwrap());
    }

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
}
