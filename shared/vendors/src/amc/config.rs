//! AMC settings: which Amazon Ads region (API host and Login with Amazon token host) a
//! deployment talks to, the overrides of both, and where result downloads may come from.

use url::Url;

use super::VENDOR;
use crate::settings::parse_url;
use crate::{Settings, VendorError};

/// The media type AMC's workflow-execution operations produce and consume.
pub const MEDIA_TYPE: &str = "application/vnd.amcworkflowexecutions.v1+json";

/// Where AMC's presigned result URLs point: S3 endpoints on port 443 (not any AWS-hosted service).
pub(super) const DOWNLOAD_HOSTS: &[&str] = &[crate::download::S3_ENDPOINTS];

/// API host and Login with Amazon token URL of each Amazon Ads region.
fn region_defaults(region: &str) -> Option<(&'static str, &'static str)> {
    match region.to_ascii_lowercase().as_str() {
        "na" => Some((
            "https://advertising-api.amazon.com",
            "https://api.amazon.com/auth/o2/token",
        )),
        "eu" => Some((
            "https://advertising-api-eu.amazon.com",
            "https://api.amazon.co.uk/auth/o2/token",
        )),
        "fe" => Some((
            "https://advertising-api-fe.amazon.com",
            "https://api.amazon.co.jp/auth/o2/token",
        )),
        _ => None,
    }
}

/// The API base and token URL chosen by `amc.region`, `amc.api_base` and `amc.token_url`.
pub(super) fn endpoints(settings: &Settings) -> Result<(String, String), VendorError> {
    let region = settings.plain_or(VENDOR, "region", "na");
    let (api, token) = region_defaults(&region).ok_or_else(|| VendorError::Config {
        vendor: VENDOR,
        setting: "amc.region".into(),
        message: format!("is `{region}`; must be one of na, eu, fe"),
    })?;
    let api_base = settings.plain_or(VENDOR, "api_base", api);
    let token_url = settings.plain_or(VENDOR, "token_url", token);
    // Checked here so a bad URL is a configuration error at build time, not at the first call.
    for (key, value) in [("api_base", &api_base), ("token_url", &token_url)] {
        parse_url(VENDOR, key, value)?;
    }
    crate::endpoints::check_endpoints(
        settings,
        VENDOR,
        &[("api_base", &api_base), ("token_url", &token_url)],
    )?;
    Ok((api_base, token_url))
}

/// The API base as a URL (checked by [`endpoints`], so this fails only if it was bypassed).
pub(super) fn api_base_url(api_base: &str) -> Result<Url, VendorError> {
    parse_url(VENDOR, "api_base", api_base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_choose_hosts_and_overrides_win() {
        let mut s = Settings::new();
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api.amazon.com"
        );
        assert_eq!(
            endpoints(&s).unwrap().1,
            "https://api.amazon.com/auth/o2/token"
        );
        s.set("amc.region", "EU");
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api-eu.amazon.com"
        );
        s.set("amc.region", "fe");
        assert_eq!(
            endpoints(&s).unwrap().0,
            "https://advertising-api-fe.amazon.com"
        );
        s.set("amc.api_base", "https://example.test");
        assert_eq!(endpoints(&s).unwrap().0, "https://example.test");
        s.set("amc.region", "mars");
        match endpoints(&s) {
            Err(VendorError::Config { setting, .. }) => assert_eq!(setting, "amc.region"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
