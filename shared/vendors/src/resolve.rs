//! The resolver result downloads connect through: every address a download host resolves to is
//! checked here, in the lookup whose answer the connection uses, so a name cannot answer a public
//! address to a check and a private one to the connect (DNS rebinding).
//!
//! Address classes: public addresses pass; loopback passes only under the sandbox switch;
//! private-network addresses (RFC 1918, CGNAT, IPv6 unique-local) pass only for hosts on the
//! vendor's explicit private-host list (VPC interface endpoints); everything else (link-local and
//! the metadata service, multicast, reserved, benchmarking, documentation, NAT64, 6to4, Teredo,
//! IPv4-compatible IPv6) never passes. IPv4-mapped IPv6 is judged by its embedded IPv4 address.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of address an IP is, for the download guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// On the public internet.
    Public,
    /// A private network: RFC 1918, CGNAT 100.64/10, IPv6 unique-local fc00::/7.
    Private,
    /// Loopback (127/8, ::1).
    Loopback,
    /// Never a download target; the reason names the range.
    Forbidden(&'static str),
}

/// Classifies `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(a: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let [o0, o1, o2, _] = a.octets();
    if a.is_loopback() {
        Loopback
    } else if a.is_private() || (o0 == 100 && (o1 & 0xc0) == 64) {
        Private
    } else if o0 == 0 {
        Forbidden("0.0.0.0/8 (this network)")
    } else if a.is_link_local() {
        Forbidden("169.254.0.0/16 (link-local, instance metadata)")
    } else if a.is_multicast() {
        Forbidden("224.0.0.0/4 (multicast)")
    } else if o0 >= 240 {
        Forbidden("240.0.0.0/4 (reserved, broadcast)")
    } else if o0 == 198 && (o1 & 0xfe) == 18 {
        Forbidden("198.18.0.0/15 (benchmarking)")
    } else if a.is_documentation() {
        Forbidden("documentation range")
    } else if o0 == 192 && o1 == 0 && o2 == 0 {
        Forbidden("192.0.0.0/24 (IETF protocol assignments)")
    } else if o0 == 192 && o1 == 88 && o2 == 99 {
        Forbidden("192.88.99.0/24 (6to4 relay)")
    } else {
        Public
    }
}

fn classify_v6(a: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let s = a.segments();
    if a.is_loopback() {
        return Loopback;
    }
    if a.is_unspecified() {
        return Forbidden(":: (unspecified)");
    }
    // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    if let Some(v4) = a.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[..6] == [0; 6] {
        return Forbidden("::a.b.c.d (IPv4-compatible, deprecated)");
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        // 64:ff9b::/96 and the local-use 64:ff9b:1::/48: a translator reaches any IPv4 address.
        return Forbidden("64:ff9b::/96 (NAT64)");
    }
    if s[0] == 0x2002 {
        return Forbidden("2002::/16 (6to4)");
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Forbidden("2001::/32 (Teredo)");
    }
    if s[0] == 0x2001 && s[1] == 0xdb8 {
        return Forbidden("2001:db8::/32 (documentation)");
    }
    if s[0] == 0x100 && s[1..4] == [0; 3] {
        return Forbidden("100::/64 (discard)");
    }
    if (s[0] & 0xff00) == 0xff00 {
        return Forbidden("ff00::/8 (multicast)");
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return Forbidden("fe80::/10 (link-local) or fec0::/10 (site-local)");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Private;
    }
    Public
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip) == AddressClass::Public
}

/// Whether `name` matches a host rule: an exact name, or `.suffix` for any subdomain of `suffix`.
pub(crate) fn host_matches(rule: &str, name: &str) -> bool {
    let rule = rule.trim().to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match rule.strip_prefix('.') {
        Some(suffix) => name.ends_with(&format!(".{suffix}")),
        None => name == rule,
    }
}

/// Which addresses a host may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressRules {
    /// Sandbox only: loopback addresses are allowed (the simulators on 127.0.0.1).
    pub allow_loopback: bool,
    /// Hosts (exact, or `.suffix`) whose private-network addresses are allowed (VPC endpoints).
    pub private_hosts: Vec<String>,
    /// The configured HTTPS proxy's host (`HTTPS_PROXY`/`ALL_PROXY`): the connection goes to it,
    /// so it may be private or loopback; the proxy resolves the download host itself.
    pub proxy_hosts: Vec<String>,
}

/// The host names of the proxies this process's clients use (`HTTPS_PROXY`, `ALL_PROXY`, either
/// case), which the guarded resolver is asked for instead of the download host.
pub fn proxy_hosts_from_env() -> Vec<String> {
    ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .filter_map(|v| {
            let v = v.trim();
            let with_scheme = if v.contains("://") {
                v.to_owned()
            } else {
                format!("http://{v}")
            };
            url::Url::parse(&with_scheme)
                .ok()?
                .host_str()
                .map(|h| h.to_ascii_lowercase())
        })
        .collect()
}

impl AddressRules {
    /// `Ok` when `host` may connect to `ip`, else why not.
    pub fn permit(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let proxy = self.proxy_hosts.iter().any(|p| host_matches(p, host));
        match classify(ip) {
            AddressClass::Public => Ok(()),
            AddressClass::Private | AddressClass::Loopback if proxy => Ok(()),
            AddressClass::Loopback if self.allow_loopback => Ok(()),
            AddressClass::Loopback => Err(format!(
                "host `{host}` resolves to loopback address {ip}"
            )),
            AddressClass::Private
                if self.private_hosts.iter().any(|r| host_matches(r, host)) =>
            {
                Ok(())
            }
            AddressClass::Private => Err(format!(
                "host `{host}` resolves to private address {ip}, and it is not on the private download host list"
            )),
            AddressClass::Forbidden(range) => Err(format!(
                "host `{host}` resolves to {ip}, in {range}"
            )),
        }
    }
}

/// A download host resolved to an address the guard refuses. Found in a connection error's cause
/// chain by [`crate::http`], which reports it as a refused download, never retried.
#[derive(Debug, Clone)]
pub struct AddressRefused(pub String);

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

/// The future a [`Lookup`] answers.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Name → addresses. The system resolver in production; tests substitute their own.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A `reqwest` resolver that refuses a host when any address it resolves to breaks the rules.
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    rules: AddressRules,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// A resolver checking `lookup`'s answers against `rules`.
    pub fn new(lookup: Arc<dyn Lookup>, rules: AddressRules) -> Self {
        Self { lookup, rules }
    }

    /// Resolves `host` and checks every address.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, io::Error> {
        let addrs = self.lookup.lookup(host).await?;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("host `{host}` has no addresses"),
            ));
        }
        for ip in &addrs {
            self.rules
                .permit(host, *ip)
                .map_err(|m| io::Error::new(io::ErrorKind::PermissionDenied, AddressRefused(m)))?;
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.resolve_checked(name.as_str()).await?;
            // The connector sets the port of the URL.
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forbidden(s: &str) -> bool {
        matches!(classify(ip(s)), AddressClass::Forbidden(_))
    }

    #[test]
    fn nat64_is_refused() {
        assert!(forbidden("64:ff9b::a00:1"));
        assert!(forbidden("64:ff9b::5db8:d822")); // even a public v4 behind the translator
        assert!(forbidden("64:ff9b:1::1"));
    }

    #[test]
    fn six_to_four_is_refused() {
        assert!(forbidden("2002:a00:1::1"));
        assert!(forbidden("2002:5db8:d822::1"));
    }

    #[test]
    fn ipv4_mapped_is_judged_by_its_ipv4_address() {
        assert_eq!(classify(ip("::ffff:127.0.0.1")), AddressClass::Loopback);
        assert_eq!(classify(ip("::ffff:10.0.0.1")), AddressClass::Private);
        assert!(forbidden("::ffff:169.254.169.254"));
        assert!(forbidden("::ffff:198.18.0.1"));
        assert!(is_public(ip("::ffff:93.184.216.34")));
    }

    #[test]
    fn ipv4_compatible_is_refused() {
        assert!(forbidden("::10.0.0.1"));
        assert!(forbidden("::93.184.216.34"));
        assert!(forbidden("::"));
        assert_eq!(classify(ip("::1")), AddressClass::Loopback);
    }

    #[test]
    fn multicast_is_refused() {
        assert!(forbidden("224.0.0.1"));
        assert!(forbidden("239.255.255.250"));
        assert!(forbidden("ff02::1"));
        assert!(forbidden("ff0e::1"));
    }

    #[test]
    fn reserved_240_is_refused() {
        assert!(forbidden("240.0.0.1"));
        assert!(forbidden("250.1.2.3"));
        assert!(forbidden("255.255.255.255"));
    }

    #[test]
    fn benchmarking_198_18_is_refused() {
        assert!(forbidden("198.18.0.1"));
        assert!(forbidden("198.19.255.254"));
        assert!(is_public(ip("198.20.0.1")));
        assert!(is_public(ip("198.17.255.255")));
    }

    #[test]
    fn link_local_and_metadata_are_refused_even_for_private_hosts() {
        let rules = AddressRules {
            allow_loopback: true,
            private_hosts: vec!["vpce.example.com".into()],
            proxy_hosts: Vec::new(),
        };
        for bad in ["169.254.169.254", "fe80::1", "0.0.0.0", "fd00:ec2::254"] {
            // fd00:ec2::254 (the IPv6 metadata service) is unique-local: private, not for others.
            if bad == "fd00:ec2::254" {
                assert!(rules.permit("other.example.com", ip(bad)).is_err());
                continue;
            }
            assert!(rules.permit("vpce.example.com", ip(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_addresses_only_for_listed_hosts() {
        let rules = AddressRules {
            allow_loopback: false,
            private_hosts: vec![".vpce.amazonaws.com".into()],
            proxy_hosts: Vec::new(),
        };
        let vpce = "bucket.vpce-0abc.s3.us-east-1.vpce.amazonaws.com";
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd12::1",
        ] {
            assert!(rules.permit(vpce, ip(private)).is_ok(), "{private}");
            assert!(
                rules
                    .permit("bucket.s3.amazonaws.com", ip(private))
                    .is_err(),
                "{private}"
            );
        }
        assert!(rules.permit(vpce, ip("127.0.0.1")).is_err());
    }

    #[test]
    fn the_proxy_host_may_be_private_but_nothing_else_may() {
        let rules = AddressRules {
            proxy_hosts: vec!["proxy.corp.example".into()],
            ..AddressRules::default()
        };
        assert!(rules.permit("proxy.corp.example", ip("10.1.1.1")).is_ok());
        assert!(rules.permit("proxy.corp.example", ip("127.0.0.1")).is_ok());
        assert!(rules
            .permit("proxy.corp.example", ip("169.254.169.254"))
            .is_err());
        assert!(rules.permit("files.example.com", ip("10.1.1.1")).is_err());
    }

    #[test]
    fn the_loopback_switch_allows_loopback_only() {
        let sandbox = AddressRules {
            allow_loopback: true,
            ..AddressRules::default()
        };
        assert!(sandbox.permit("localhost", ip("127.0.0.1")).is_ok());
        assert!(sandbox.permit("localhost", ip("::1")).is_ok());
        assert!(sandbox.permit("evil.example.com", ip("10.0.0.1")).is_err());
        assert!(sandbox
            .permit("evil.example.com", ip("169.254.169.254"))
            .is_err());
        assert!(AddressRules::default()
            .permit("localhost", ip("127.0.0.1"))
            .is_err());
    }
}
