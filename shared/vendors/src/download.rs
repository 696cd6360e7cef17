//! Result downloads under a policy: https only, a host (and port) allow-list per vendor, every
//! redirect hop checked, and every address the connection uses checked by the resolver that
//! connects ([`crate::resolve`]): no loopback, link-local, reserved or private targets (SSRF).
//!
//! Exceptions are explicit and narrow: the sandbox switch (`<vendor>.download_allow_loopback`,
//! refused in a deployed function) allows loopback, and loopback only, over http or https; hosts
//! on `<vendor>.private_download_hosts` (VPC interface endpoints) may resolve to private-network
//! addresses. Neither turns the address check off. Behind an HTTPS proxy (`HTTPS_PROXY`, not
//! excluded by `NO_PROXY`) the connection goes to the proxy, which may be private, and the proxy
//! resolves the download host: there the host and port allow-list is the guard.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use runbridge_core::VendorKind;
use secrecy::ExposeSecret;
use url::Url;

use crate::endpoints::{deployed, sandbox_switch};
use crate::http::HttpClient;
use crate::resolve::{host_matches, AddressRules, GuardedResolver, Lookup, SystemLookup};
use crate::{ResultFile, VendorError};

pub use crate::resolve::is_public;

/// Most redirect hops followed for one download.
const MAX_REDIRECTS: usize = 5;

/// The allow-list rule for Amazon S3 endpoints (virtual-hosted and path-style, regional, legacy
/// `s3-<region>`, dual-stack, FIPS, access points), on port 443: AMC's presigned result URLs.
/// Other `amazonaws.com` services (execute-api, s3-object-lambda, …) do not match.
pub const S3_ENDPOINTS: &str = "@s3";

/// Where result files may come from.
#[derive(Clone)]
pub struct DownloadPolicy {
    allowed_hosts: Vec<String>,
    rules: AddressRules,
    lookup: Arc<dyn Lookup>,
    /// The guarded client, built on first use and shared by clones.
    client: Arc<OnceLock<HttpClient>>,
}

impl fmt::Debug for DownloadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadPolicy")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

fn list(settings: &crate::Settings, vendor: VendorKind, key: &str) -> Vec<String> {
    settings
        .plain(vendor, key)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

impl DownloadPolicy {
    /// A policy allowing `hosts` (exact names, `.suffix` for subdomains, optionally `:port`;
    /// without a port only 443; [`S3_ENDPOINTS`]) at public addresses.
    pub fn new(hosts: Vec<String>) -> Self {
        Self {
            allowed_hosts: hosts,
            rules: AddressRules {
                proxy_hosts: crate::resolve::proxy_hosts_from_env(),
                ..AddressRules::default()
            },
            lookup: Arc::new(SystemLookup),
            client: Arc::new(OnceLock::new()),
        }
    }

    /// The sandbox policy: loopback targets too, over http or https.
    pub fn with_loopback(mut self) -> Self {
        self.rules.allow_loopback = true;
        self.client = Arc::new(OnceLock::new());
        self
    }

    /// Hosts (also allowed as download hosts) that may resolve to private-network addresses.
    pub fn with_private_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts.extend(hosts.iter().cloned());
        self.rules.private_hosts.extend(hosts);
        self.client = Arc::new(OnceLock::new());
        self
    }

    /// Resolves names with `lookup` instead of the system resolver (tests).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.lookup = lookup;
        self.client = Arc::new(OnceLock::new());
        self
    }

    /// Whether the sandbox switch is on.
    pub fn allows_loopback(&self) -> bool {
        self.rules.allow_loopback
    }

    /// The settings of every vendor's download policy: its extra hosts, its private hosts, and
    /// the sandbox switch (which the credential endpoints' check obeys too).
    pub const SETTINGS: [&'static str; 3] = [
        "download_hosts",
        "private_download_hosts",
        "download_allow_loopback",
    ];

    /// A policy allowing `hosts`, extra hosts from `download_hosts` (comma-separated), private
    /// hosts from `private_download_hosts`, and the sandbox switch `download_allow_loopback`
    /// (refused when this process is a deployed function).
    pub fn from_settings(
        settings: &crate::Settings,
        vendor: VendorKind,
        hosts: &[&str],
    ) -> Result<Self, VendorError> {
        let mut allowed: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        allowed.extend(list(settings, vendor, "download_hosts"));
        let mut policy =
            Self::new(allowed).with_private_hosts(list(settings, vendor, "private_download_hosts"));
        if sandbox_switch(settings, vendor, deployed())? {
            policy = policy.with_loopback();
        }
        Ok(policy)
    }

    /// The resolver downloads connect through.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver::new(self.lookup.clone(), self.rules.clone())
    }

    /// The download client: `http`'s vendor, profile and retry settings, names resolved by
    /// [`Self::resolver`].
    fn client(&self, http: &HttpClient) -> Result<&HttpClient, VendorError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = HttpClient::with_resolver(
            http.vendor(),
            http.retry_config().clone(),
            Arc::new(self.resolver()),
        )?
        .for_profile(http.profile());
        Ok(self.client.get_or_init(|| built))
    }

    /// Checks one URL (before DNS; the resolver checks the addresses).
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
        let name = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let loopback = ip.is_some_and(|a| a.is_loopback()) || name == "localhost";
        if self.rules.allow_loopback && loopback {
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
            if let Err(why) = self.rules.permit(&name, ip) {
                return refuse(why);
            }
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let allowed = self
            .allowed_hosts
            .iter()
            .any(|rule| rule_matches(rule, &name, port));
        if !allowed {
            return refuse(format!(
                "host `{name}` port {port} is not on the {vendor} download allow-list"
            ));
        }
        Ok(())
    }
}

/// One allow-list rule against a host and port: `host`, `.suffix`, either with `:port` (else
/// 443), or [`S3_ENDPOINTS`] (port 443).
fn rule_matches(rule: &str, name: &str, port: u16) -> bool {
    if rule == S3_ENDPOINTS {
        return port == 443 && is_s3_host(name);
    }
    let (host_rule, rule_port) = match rule.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => return false,
        },
        _ => (rule, 443),
    };
    port == rule_port && host_matches(host_rule, name)
}

/// Whether `name` is an Amazon S3 data endpoint: `…s3[-<region>|-accesspoint|-fips|-external-1]`
/// followed only by `dualstack` and a region, under `amazonaws.com` (or `.com.cn`).
pub fn is_s3_host(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let Some(at) = labels.iter().position(|l| {
        matches!(*l, "s3" | "s3-accesspoint" | "s3-fips" | "s3-external-1")
            || l.strip_prefix("s3-").is_some_and(is_region)
    }) else {
        return false;
    };
    let after = &labels[at + 1..];
    after.len() <= 2
        && after.iter().all(|l| *l == "dualstack" || is_region(l))
        && labels[..at].iter().all(|l| !l.is_empty())
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
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
    crate::http::register_url(file.url.expose_secret());
    let mut url = Url::parse(file.url.expose_secret()).map_err(|e| {
        VendorError::protocol(
            vendor,
            format!("download URL for {} does not parse: {e}", file.name),
        )
    })?;
    let first_host = url.host_str().map(str::to_owned);
    let client = policy.client(http)?;
    for _ in 0..=MAX_REDIRECTS {
        policy.check(vendor, &url)?;
        let send_bearer = bearer.filter(|_| url.host_str().map(str::to_owned) == first_host);
        let target = url.clone();
        let response = client
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
            crate::http::register_url(location);
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::http::RetryConfig;
    use crate::resolve::LookupFuture;

    const V: VendorKind = VendorKind::Amc;

    fn policy() -> DownloadPolicy {
        DownloadPolicy::new(vec![S3_ENDPOINTS.into(), "exact.example.com".into()])
    }

    fn allowed(p: &DownloadPolicy, url: &str) -> bool {
        p.check(V, &Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn refuses_what_it_should() {
        let p = policy();
        for bad in [
            "http://bucket.s3.amazonaws.com/x",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://evil.com/x",
            "https://amazonaws.com.evil.com/x",
            "file:///etc/passwd",
        ] {
            assert!(!allowed(&p, bad), "{bad} must be refused");
        }
        for good in [
            "https://bucket.s3.amazonaws.com/x?sig=1",
            "https://exact.example.com/a",
        ] {
            assert!(allowed(&p, good), "{good} must be allowed");
        }
        let sandbox = policy().with_loopback();
        assert!(allowed(&sandbox, "http://127.0.0.1:8080/x"));
        assert!(allowed(&sandbox, "http://localhost:8080/x"));
        assert!(!allowed(&sandbox, "http://10.0.0.1/x"));
        assert!(!allowed(&sandbox, "https://10.0.0.1/x"));
        assert!(!allowed(&sandbox, "http://evil.com/x"));
    }

    #[test]
    fn amc_allows_s3_hosts_on_443_only() {
        let p = policy();
        for good in [
            "https://bucket.s3.amazonaws.com/k",
            "https://bucket.s3.us-east-1.amazonaws.com/k",
            "https://s3.eu-west-1.amazonaws.com/bucket/k",
            "https://bucket.s3-us-west-2.amazonaws.com/k",
            "https://bucket.s3.dualstack.us-east-1.amazonaws.com/k",
            "https://ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com/k",
            "https://bucket.s3.amazonaws.com:443/k",
            "https://bucket.s3.cn-north-1.amazonaws.com.cn/k",
        ] {
            assert!(allowed(&p, good), "{good} must be allowed");
        }
        for bad in [
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
            "https://abc123.execute-api.us-east-1.amazonaws.com:8443/prod",
            "https://bucket.s3.amazonaws.com:8443/k",
            "https://ap-1.s3-object-lambda.us-east-1.amazonaws.com/k",
            "https://123.s3-control.us-east-1.amazonaws.com/k",
            "https://sqs.us-east-1.amazonaws.com/k",
            "https://bucket.s3.us-east-1.amazonaws.com.evil.com/k",
            "https://s3.evil.com/k",
            "https://lambda-url.us-east-1.on.aws/k",
            "https://ec2-1-2-3-4.compute-1.amazonaws.com/k",
        ] {
            assert!(!allowed(&p, bad), "{bad} must be refused");
        }
    }

    #[test]
    fn other_ports_need_an_explicit_rule() {
        let p = DownloadPolicy::new(vec!["files.example.com:8443".into(), ".example.org".into()]);
        assert!(allowed(&p, "https://files.example.com:8443/x"));
        assert!(!allowed(&p, "https://files.example.com/x"));
        assert!(allowed(&p, "https://a.example.org/x"));
        assert!(!allowed(&p, "https://a.example.org:8080/x"));
    }

    #[test]
    fn private_hosts_come_from_their_own_setting() {
        let mut s = crate::Settings::new();
        s.set(
            "amc.private_download_hosts",
            "bucket.vpce-0a1b.s3.us-east-1.vpce.amazonaws.com",
        );
        let p = DownloadPolicy::from_settings(&s, V, &[S3_ENDPOINTS]).unwrap();
        assert!(allowed(
            &p,
            "https://bucket.vpce-0a1b.s3.us-east-1.vpce.amazonaws.com/k"
        ));
        assert!(p
            .rules
            .permit(
                "bucket.vpce-0a1b.s3.us-east-1.vpce.amazonaws.com",
                "10.0.1.5".parse().unwrap()
            )
            .is_ok());
        assert!(p
            .rules
            .permit(
                "bucket.s3.us-east-1.amazonaws.com",
                "10.0.1.5".parse().unwrap()
            )
            .is_err());
        assert!(!p.allows_loopback());
    }

    /// Answers a public address to the first lookup and loopback to every later one: a name
    /// rebinding between a check and the connect.
    struct Rebinding {
        calls: AtomicUsize,
    }

    impl Lookup for Rebinding {
        fn lookup(&self, _host: &str) -> LookupFuture {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let ip: IpAddr = if n == 0 {
                "93.184.216.34".parse().unwrap()
            } else {
                "127.0.0.1".parse().unwrap()
            };
            Box::pin(async move { Ok(vec![ip]) })
        }
    }

    fn file(url: String) -> ResultFile {
        ResultFile {
            name: "part".into(),
            url: secrecy::SecretString::from(url),
            size_hint: None,
            post_json: None,
        }
    }

    #[tokio::test]
    async fn a_name_rebinding_to_loopback_after_a_check_is_refused_at_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lookup = Arc::new(Rebinding {
            calls: AtomicUsize::new(0),
        });
        let p = DownloadPolicy::new(vec![format!("files.example.com:{port}")])
            .with_lookup(lookup.clone());
        // A check-then-connect guard would see the public answer ...
        assert_eq!(
            p.resolver()
                .resolve_checked("files.example.com")
                .await
                .unwrap(),
            vec!["93.184.216.34".parse::<IpAddr>().unwrap()]
        );
        // ... and the connection would get the loopback one. The connecting lookup refuses it.
        let http = HttpClient::new(V, RetryConfig::fast()).unwrap();
        let err = open(
            &http,
            &p,
            &file(format!("https://files.example.com:{port}/x")),
            None,
        )
        .await
        .expect_err("rebinding to loopback is refused");
        match &err {
            VendorError::DownloadRefused { message, .. } => {
                assert!(message.contains("127.0.0.1"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Refused once, not retried as a transient failure, and nothing reached the listener.
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 2);
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "no connection may reach the target");
    }

    struct Fixed(IpAddr, AtomicUsize);

    impl Lookup for Fixed {
        fn lookup(&self, _host: &str) -> LookupFuture {
            self.1.fetch_add(1, Ordering::SeqCst);
            let ip = self.0;
            Box::pin(async move { Ok(vec![ip]) })
        }
    }

    #[tokio::test]
    async fn downloads_connect_to_the_addresses_the_guard_checked() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
        });
        let lookup = Arc::new(Fixed("127.0.0.1".parse().unwrap(), AtomicUsize::new(0)));
        let p = DownloadPolicy::new(Vec::new())
            .with_loopback()
            .with_lookup(lookup.clone());
        let http = HttpClient::new(V, RetryConfig::fast()).unwrap();
        let response = open(&http, &p, &file(format!("http://localhost:{port}/x")), None)
            .await
            .expect("loopback in the sandbox");
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(
            lookup.1.load(Ordering::SeqCst),
            1,
            "the guard's lookup connected"
        );

        // The same name answering a private address is refused even in the sandbox.
        let private = DownloadPolicy::new(Vec::new())
            .with_loopback()
            .with_lookup(Arc::new(Fixed(
                "10.0.0.1".parse().unwrap(),
                AtomicUsize::new(0),
            )));
        let err = open(
            &http,
            &private,
            &file(format!("http://localhost:{port}/x")),
            None,
        )
        .await
        .expect_err("private is not loopback");
        assert!(
            matches!(err, VendorError::DownloadRefused { .. }),
            "{err:?}"
        );
    }
}
