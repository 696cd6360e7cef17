//! Result downloads under a policy: https only, a host allow-list per vendor, every redirect hop
//! checked, and no private, loopback or link-local targets (SSRF), unless the policy is the
//! sandbox's, which allows plain http on loopback for the simulators.

use std::net::IpAddr;

use runbridge_core::VendorKind;
use secrecy::ExposeSecret;
use url::Url;

use crate::http::HttpClient;
use crate::{ResultFile, VendorError};

/// Most redirect hops followed for one download.
const MAX_REDIRECTS: usize = 5;

/// Where result files may come from.
#[derive(Debug, Clone, Default)]
pub struct DownloadPolicy {
    /// Allowed hosts: an exact name, or `.suffix` for any subdomain of `suffix`.
    pub allowed_hosts: Vec<String>,
    /// Sandbox only: allow `http://` to loopback addresses (the embedded simulators).
    pub allow_loopback: bool,
}

impl DownloadPolicy {
    /// A policy allowing `hosts`, with the sandbox switch read from the vendor's
    /// `download_allow_loopback` setting and extra hosts from `download_hosts` (comma-separated).
    pub fn from_settings(settings: &crate::Settings, vendor: VendorKind, hosts: &[&str]) -> Self {
        let mut allowed_hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        if let Some(extra) = settings.plain(vendor, "download_hosts") {
            allowed_hosts.extend(
                extra
                    .split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty()),
            );
        }
        let allow_loopback =
            settings.plain(vendor, "download_allow_loopback").as_deref() == Some("true");
        Self {
            allowed_hosts,
            allow_loopback,
        }
    }

    /// Checks one URL (before DNS).
    pub fn check(&self, vendor: VendorKind, url: &Url) -> Result<(), VendorError> {
        let refuse = |message: String| Err(VendorError::DownloadRefused { vendor, message });
        let host = match url.host() {
            Some(h) => h,
            None => return refuse("URL has no host".into()),
        };
        let ip = match host {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        };
        let name = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let loopback = ip.is_some_and(|a| a.is_loopback()) || name == "localhost";
        if self.allow_loopback && loopback {
            return if matches!(url.scheme(), "http" | "https") {
                Ok(())
            } else {
                refuse(format!("scheme `{}` is not allowed", url.scheme()))
            };
        }
        if url.scheme() != "https" {
            return refuse(format!(
                "scheme `{}` is not allowed, only https",
                url.scheme()
            ));
        }
        if let Some(ip) = ip {
            if !is_public(ip) {
                return refuse(format!("address {ip} is private, loopback or link-local"));
            }
        }
        let allowed = self
            .allowed_hosts
            .iter()
            .any(|h| match h.strip_prefix('.') {
                Some(suffix) => name.ends_with(&format!(".{suffix}")),
                None => &name == h,
            });
        if !allowed {
            return refuse(format!(
                "host `{name}` is not on the {vendor} download allow-list"
            ));
        }
        Ok(())
    }

    /// Checks what a host name resolves to, so a public name pointing at a private address is
    /// refused too.
    async fn check_resolved(&self, vendor: VendorKind, url: &Url) -> Result<(), VendorError> {
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        if self.allow_loopback && name.eq_ignore_ascii_case("localhost") {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs =
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| VendorError::Unavailable {
                    vendor,
                    status: None,
                    message: format!("cannot resolve download host: {e}"),
                })?;
        for addr in addrs {
            if !is_public(addr.ip()) {
                return Err(VendorError::DownloadRefused {
                    vendor,
                    message: format!("host `{name}` resolves to non-public address {}", addr.ip()),
                });
            }
        }
        Ok(())
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.octets()[0] == 0
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)) // CGNAT 100.64/10
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// Opens `file` for streaming, following at most `MAX_REDIRECTS` (5) redirects, each one checked.
/// `bearer` is sent only to the first URL's host: a presigned target must not receive it.
pub async fn open(
    http: &HttpClient,
    policy: &DownloadPolicy,
    file: &ResultFile,
    bearer: Option<&str>,
) -> Result<reqwest::Response, VendorError> {
    let vendor = http.vendor();
    let mut url = Url::parse(file.url.expose_secret()).map_err(|e| {
        VendorError::protocol(
            vendor,
            format!("download URL for {} does not parse: {e}", file.name),
        )
    })?;
    let first_host = url.host_str().map(str::to_owned);
    for _ in 0..=MAX_REDIRECTS {
        policy.check(vendor, &url)?;
        if !policy.allow_loopback {
            policy.check_resolved(vendor, &url).await?;
        }
        let send_bearer = bearer.filter(|_| url.host_str().map(str::to_owned) == first_host);
        let target = url.clone();
        let response = http
            .send_streaming(|c| {
                let req = match &file.post_json {
                    Some(body) => c.post(target.clone()).json(body),
                    None => c.get(target.clone()),
                };
                match send_bearer {
                    Some(t) => req.bearer_auth(t),
                    None => req,
                }
            })
            .await?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| VendorError::protocol(vendor, "redirect without Location"))?;
            url = url.join(location).map_err(|e| {
                VendorError::protocol(vendor, format!("bad redirect Location: {e}"))
            })?;
            continue;
        }
        return Ok(response);
    }
    Err(VendorError::DownloadRefused {
        vendor,
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DownloadPolicy {
        DownloadPolicy {
            allowed_hosts: vec![".amazonaws.com".into(), "exact.example.com".into()],
            allow_loopback: false,
        }
    }

    #[test]
    fn refuses_what_it_should() {
        let p = policy();
        let v = VendorKind::Amc;
        for bad in [
            "http://bucket.s3.amazonaws.com/x",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://evil.com/x",
            "https://amazonaws.com.evil.com/x",
            "file:///etc/passwd",
        ] {
            assert!(
                p.check(v, &Url::parse(bad).unwrap()).is_err(),
                "{bad} must be refused"
            );
        }
        for good in [
            "https://bucket.s3.amazonaws.com/x?sig=1",
            "https://exact.example.com/a",
        ] {
            assert!(
                p.check(v, &Url::parse(good).unwrap()).is_ok(),
                "{good} must be allowed"
            );
        }
        let sandbox = DownloadPolicy {
            allow_loopback: true,
            ..policy()
        };
        assert!(sandbox
            .check(v, &Url::parse("http://127.0.0.1:8080/x").unwrap())
            .is_ok());
        assert!(sandbox
            .check(v, &Url::parse("http://10.0.0.1/x").unwrap())
            .is_err());
    }
}
