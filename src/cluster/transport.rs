//! The HTTP stack under the kube client, built as kube builds it (proxy tunnel, TLS, timeouts,
//! base URI, auth, extra headers) with one difference: hyper's read buffer per connection is
//! capped. Left to grow, it reaches ~400 KiB on every log stream that had a backlog, and a
//! `--watch` of 300 Falco pods held 180 MiB (41 MiB capped at 16 KiB, one TLS record; a
//! one-shot check of 300 pods took the same 1.0 s either way).

use http::Uri;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::{Client, Config};
use tower::ServiceBuilder;
use tower_service::Service;

use super::answers::AnswersLayer;

/// hyper's read buffer limit per connection (its minimum is 8 KiB, its default ~400 KiB): one
/// TLS record.
const MAX_READ_BUFFER: usize = 16 * 1024;

/// A client for `config`, through its proxy when it has one.
pub fn client(config: &Config) -> Result<Client, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    match config.proxy_url.as_ref() {
        None => finish(config, http),
        Some(p) if p.scheme_str() == Some("socks5") => {
            finish(config, SocksV5::new(p.clone(), http))
        }
        Some(p) if p.scheme_str() == Some("http") => {
            finish(config, with_basic_auth(p, Tunnel::new(p.clone(), http)))
        }
        Some(p) if p.scheme_str() == Some("https") => {
            let tls_to_proxy = config.rustls_https_connector_with_connector(http)?;
            finish(
                config,
                with_basic_auth(p, Tunnel::new(p.clone(), tls_to_proxy)),
            )
        }
        Some(p) => Err(kube::Error::ProxyProtocolUnsupported {
            proxy_url: Box::new(p.clone()),
        }),
    }
}

fn finish<H>(config: &Config, connector: H) -> Result<Client, kube::Error>
where
    H: 'static + Clone + Send + Sync + Service<Uri>,
    H::Response: 'static + Connection + hyper::rt::Read + hyper::rt::Write + Send + Unpin,
    H::Future: 'static + Send,
    H::Error: 'static + Send + Sync + std::error::Error,
{
    let https = config.rustls_https_connector_with_connector(connector)?;
    let mut timeouts = hyper_timeout::TimeoutConnector::new(https);
    timeouts.set_connect_timeout(config.connect_timeout);
    timeouts.set_read_timeout(config.read_timeout);
    timeouts.set_write_timeout(config.write_timeout);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new())
            .http1_max_buf_size(MAX_READ_BUFFER)
            .build(timeouts);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(AnswersLayer)
        .service(http);
    Ok(Client::new(service, config.default_namespace.clone()))
}

/// `http://user:pass@proxy:3128`: the credentials (percent-decoded) as `Proxy-Authorization`.
fn with_basic_auth<C>(proxy: &Uri, tunnel: Tunnel<C>) -> Tunnel<C> {
    use base64::Engine as _;
    let Some(userinfo) = userinfo(proxy) else {
        return tunnel;
    };
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(percent_decode(userinfo))
    );
    match http::HeaderValue::from_str(&value) {
        Ok(h) => tunnel.with_auth(h),
        Err(_) => tunnel,
    }
}

/// The `user:pass` of a proxy URL, still percent-encoded.
fn userinfo(proxy: &Uri) -> Option<&str> {
    proxy
        .authority()
        .and_then(|a| a.as_str().rsplit_once('@'))
        .map(|(u, _)| u)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn proxy_credentials_are_percent_decoded() {
        assert_eq!(percent_decode("user:pa%40ss%3Aword"), b"user:pa@ss:word");
        assert_eq!(percent_decode("a%2"), b"a%2");
    }
}
