//! Which proxy a request to the API server goes through, decided as kubectl decides it: the
//! cluster's `proxy-url` when the kubeconfig sets one, else Go's `ProxyFromEnvironment`
//! (`golang.org/x/net/http/httpproxy`): `HTTPS_PROXY` for an https server, `HTTP_PROXY` for http,
//! unless `NO_PROXY` matches the server's host, and never for localhost or a loopback address.

use std::net::IpAddr;

/// The proxy variables of the environment, read once by the arguments layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY`, else `https_proxy` (the first that is not empty, as Go reads them).
    pub https_proxy: Option<String>,
    /// `HTTP_PROXY`, else `http_proxy`.
    pub http_proxy: Option<String>,
    /// `NO_PROXY`, else `no_proxy`.
    pub no_proxy: Option<String>,
    /// `REQUEST_METHOD` is set: a CGI environment, where Go refuses `HTTP_PROXY`.
    pub cgi: bool,
}

impl ProxyEnv {
    /// Reads the variables from a lookup (the process environment, or a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&str; 2]| names.iter().find_map(|n| get(n).filter(|v| !v.is_empty()));
        ProxyEnv {
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
            cgi: get("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// The proxy for `server` (an `http(s)://host[:port][/path]` URL), or why there is none, for the
/// debug log. `cluster_proxy` is the kubeconfig cluster's `proxy-url`: client-go uses it for every
/// request, `NO_PROXY` and loopback included.
pub fn proxy_for(
    server: &str,
    cluster_proxy: Option<&str>,
    env: &ProxyEnv,
) -> Result<(Option<String>, &'static str), String> {
    if let Some(p) = cluster_proxy.filter(|p| !p.is_empty()) {
        return Ok((Some(p.to_string()), "the cluster's proxy-url"));
    }
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("server {server:?} has no scheme"))?;
    let proxy = match scheme.to_ascii_lowercase().as_str() {
        "https" => env.https_proxy.as_deref(),
        "http" if env.cgi && env.http_proxy.is_some() => {
            return Err(
                "refusing to use HTTP_PROXY in a CGI environment (REQUEST_METHOD is set)"
                    .to_string(),
            )
        }
        "http" => env.http_proxy.as_deref(),
        _ => None,
    };
    let Some(proxy) = proxy else {
        return Ok((None, "no proxy variable for the server's scheme"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let (host, port) = split_host_port(authority).unwrap_or((authority, default_port));
    let port = if port.is_empty() { default_port } else { port };
    if !use_proxy(
        &host.to_ascii_lowercase(),
        port,
        env.no_proxy.as_deref().unwrap_or(""),
    ) {
        return Ok((None, "NO_PROXY or a loopback server"));
    }
    Ok((Some(with_scheme(proxy)), "HTTPS_PROXY / HTTP_PROXY"))
}

/// A proxy URL with its credentials (`user:password@`) replaced, for logs and messages.
pub fn redact(url: &str) -> String {
    // Everything up to the last `@` (a password may hold `/` or `@` unescaped).
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let sep = if scheme.is_empty() { "" } else { "://" };
    match rest.rfind('@') {
        Some(i) => format!("{scheme}{sep}***@{}", &rest[i + 1..]),
        None => url.to_string(),
    }
}

/// Go accepts a proxy without a scheme (`proxy:3128`) as `http://proxy:3128`.
fn with_scheme(proxy: &str) -> String {
    if proxy.contains("://") {
        proxy.to_string()
    } else {
        format!("http://{proxy}")
    }
}

/// `host:port` or `[v6]:port` into (host without brackets, port); `None` when there is no port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    // A bare IPv6 address has several colons and no port.
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// `httpproxy`'s `useProxy`: false for localhost, loopback and what `NO_PROXY` names.
fn use_proxy(host: &str, port: &str, no_proxy: &str) -> bool {
    if host == "localhost" {
        return false;
    }
    // Go compares IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address.
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let ip: Option<IpAddr> = host.parse().ok().map(canonical);
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let p = entry.trim().to_ascii_lowercase();
        if p.is_empty() {
            continue;
        }
        if p == "*" {
            return false;
        }
        if let Some((net, bits)) = p.split_once('/') {
            if let (Ok(net), Ok(bits), Some(ip)) =
                (net.parse::<IpAddr>().map(canonical), bits.parse::<u8>(), ip)
            {
                if in_cidr(ip, net, bits) {
                    return false;
                }
                continue;
            }
        }
        let (phost, pport) = match split_host_port(&p) {
            Some(("", _)) => continue,
            Some((h, port)) => (h.to_string(), port.to_string()),
            None => (
                p.trim_start_matches('[').trim_end_matches(']').to_string(),
                String::new(),
            ),
        };
        let port_ok = pport.is_empty() || pport == port;
        if let Ok(pip) = phost.parse::<IpAddr>().map(canonical) {
            if ip == Some(pip) && port_ok {
                return false;
            }
            continue;
        }
        // `foo.com` matches foo.com and its subdomains; `.foo.com` and `*.foo.com` only the
        // subdomains.
        // Only `*.` loses its star (Go): `*corp` stays as it is and matches nothing.
        let bare = if phost.starts_with("*.") {
            &phost[1..]
        } else {
            phost.as_str()
        };
        let (suffix, match_host) = match bare.strip_prefix('.') {
            Some(_) => (bare.to_string(), false),
            None => (format!(".{bare}"), true),
        };
        if (host.ends_with(&suffix) || (match_host && host == &suffix[1..])) && port_ok {
            return false;
        }
    }
    true
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: Option<&str>, no: Option<&str>) -> ProxyEnv {
        ProxyEnv {
            https_proxy: https.map(str::to_string),
            no_proxy: no.map(str::to_string),
            ..ProxyEnv::default()
        }
    }

    #[test]
    fn decides_like_go_httpproxy() {
        let p = Some("http://proxy:3128");
        // (server, HTTPS_PROXY, NO_PROXY, cluster proxy-url, proxied?)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            bool,
        );
        let cases: &[Case] = &[
            ("https://api.corp:6443", p, None, None, true),
            ("https://api.corp:6443", None, None, None, false),
            ("https://127.0.0.1:6443", p, None, None, false),
            ("https://localhost:6443", p, None, None, false),
            ("https://[::1]:6443", p, None, None, false),
            ("https://api.corp:6443", p, Some("corp"), None, false),
            ("https://api.corp:6443", p, Some(".corp"), None, false),
            ("https://corp:6443", p, Some(".corp"), None, true),
            ("https://corp:6443", p, Some("corp"), None, false),
            ("https://api.corp:6443", p, Some("*.corp"), None, false),
            ("https://api.corp:6443", p, Some("api.corp:443"), None, true),
            (
                "https://api.corp:6443",
                p,
                Some("api.corp:6443"),
                None,
                false,
            ),
            ("https://api.corp", p, Some("api.corp:443"), None, false),
            ("https://10.1.2.3:6443", p, Some("10.0.0.0/8"), None, false),
            ("https://11.1.2.3:6443", p, Some("10.0.0.0/8"), None, true),
            ("https://10.1.2.3:6443", p, Some("10.1.2.3"), None, false),
            (
                "https://[::ffff:10.1.2.3]:6443",
                p,
                Some("10.0.0.0/8"),
                None,
                false,
            ),
            ("https://[::ffff:127.0.0.1]:6443", p, None, None, false),
            ("https://api.corp:6443", p, Some("*"), None, false),
            ("https://api.corp:6443", p, Some("*corp"), None, true),
            (
                "https://api.corp:6443",
                p,
                Some(" other , ,api.corp"),
                None,
                false,
            ),
            ("https://notcorp:6443", p, Some("corp"), None, true),
            // The kubeconfig's proxy-url is used for everything.
            (
                "https://127.0.0.1:6443",
                None,
                Some("*"),
                Some("http://p:1"),
                true,
            ),
        ];
        for (server, https, no, cluster, proxied) in cases {
            let (got, _) = proxy_for(server, *cluster, &env(*https, *no)).expect("decides");
            assert_eq!(
                got.is_some(),
                *proxied,
                "{server} HTTPS_PROXY={https:?} NO_PROXY={no:?}"
            );
        }
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(redact("http://u:pa/ss@p:3128"), "http://***@p:3128");
        assert_eq!(redact("socks5://u:pw@p:1080/x"), "socks5://***@p:1080/x");
        assert_eq!(redact("http://p:3128"), "http://p:3128");
    }

    #[test]
    fn scheme_is_added_and_cgi_refused() {
        let e = env(Some("proxy:3128"), None);
        let (got, _) = proxy_for("https://api.corp", None, &e).expect("ok");
        assert_eq!(got.as_deref(), Some("http://proxy:3128"));
        let cgi = ProxyEnv {
            http_proxy: Some("http://p:1".into()),
            cgi: true,
            ..ProxyEnv::default()
        };
        assert!(proxy_for("http://api.corp", None, &cgi).is_err());
        let lookup = ProxyEnv::from_lookup(|k| match k {
            "HTTPS_PROXY" => Some(String::new()),
            "https_proxy" => Some("http://lower:1".into()),
            _ => None,
        });
        assert_eq!(lookup.https_proxy.as_deref(), Some("http://lower:1"));
    }
}
