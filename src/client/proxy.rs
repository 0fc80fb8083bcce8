//! HTTP proxies from the environment, as the official client finds them, and the connector
//! that goes through them.
//!
//! The Go client 3.4 sets `Proxy: http.ProxyFromEnvironment` on its transports
//! (`client/client.go`, `NewApiClient` and `newHttpsClient`), i.e. the rules of
//! `golang.org/x/net/http/httpproxy`, which [`ProxyEnv`] follows:
//! - `https://` URLs use `HTTPS_PROXY`, `http://` URLs `HTTP_PROXY`; no fallback from one
//!   to the other. Each name is read in upper case first, then lower case; the first
//!   non-empty value wins; they are read once, when the client is built.
//! - A value without a scheme is taken as `http://value`; a proxy URL without a port uses
//!   80. `user:pass@` (percent-decoded) becomes `Proxy-Authorization: Basic …`.
//! - Never through a proxy: the host `localhost` and loopback addresses; hosts matched by
//!   `NO_PROXY`, a comma list of: `*` (everything), an IP address or a CIDR range, a
//!   domain (`example.com` matches it and its subdomains, `.example.com` and
//!   `*.example.com` only subdomains), each optionally with `:port` (only that port).
//!
//! - A `socks5://` proxy (port 1080 by default) carries both kinds of request: a SOCKS5
//!   `CONNECT` (`proxy/socks5.rs`) to the target's host name, with `user:pass@` as RFC 1929
//!   credentials; plain `http://` requests then go in origin form, as on a direct
//!   connection.
//!
//! Where this differs from Go: no `https://` proxies (Go also speaks TLS to the proxy;
//! here that is a configuration error rather than silently ignored);
//! no IDNA conversion of non-ASCII names (compared lower-cased); no CGI `REQUEST_METHOD`
//! check; an unparsable value is ignored with a warning (Go ignores it silently).
//!
//! `https://` requests go through a `CONNECT` tunnel: TLS runs end to end inside it, so the
//! server's certificate is verified exactly as on a direct connection (the proxy sees host
//! and port only). Plain `http://` requests are forwarded: absolute-form request line and
//! `Proxy-Authorization` on each request (`HttpClient` in `client/http.rs`).
//!
//! Invariants: the credentials are never logged nor in any error or `Debug` output (a
//! proxy is shown as `host:port`); the tunnel exchange is bounded by a timeout and its
//! answer head by [`MAX_PROXY_HEAD`] bytes.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::error::{chain, BoxError};

mod socks5;

/// Largest answer head a proxy may send to `CONNECT`.
pub const MAX_PROXY_HEAD: usize = 8 * 1024;

/// Why a proxy setting cannot be used or a proxy failed. Names the proxy as `host:port`,
/// never its credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A proxy variable's value is not a URL (the value itself is not repeated: it may
    /// hold a password).
    #[error("{var}: not a proxy URL ({detail})")]
    InvalidUrl { var: &'static str, detail: String },
    /// A proxy variable names a scheme this client does not speak.
    #[error(
        "{var}: proxy scheme {scheme:?} is not supported (only http:// and socks5:// proxies)"
    )]
    UnsupportedScheme { var: &'static str, scheme: String },
    /// The TCP connection to the proxy failed.
    #[error("connecting to the proxy {proxy}: {detail}")]
    Connect { proxy: String, detail: String },
    /// No complete answer to `CONNECT` within the timeout.
    #[error("proxy {proxy}: no answer to CONNECT {target} within {}s", timeout.as_secs_f32())]
    Timeout {
        proxy: String,
        target: String,
        timeout: Duration,
    },
    /// Reading or writing the tunnel request failed.
    #[error("proxy {proxy}: CONNECT {target}: {source}")]
    Io {
        proxy: String,
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// 407 (or 401, which tinyproxy 1.11 sends to `CONNECT`): the proxy wants (other)
    /// credentials.
    #[error(
        "proxy {proxy} refused {} (HTTP {status} {reason})",
        if *with_credentials { "the credentials of the proxy URL" } else { "access without credentials: add user:pass@ to the proxy URL" }
    )]
    AuthRequired {
        proxy: String,
        with_credentials: bool,
        status: u16,
        reason: String,
    },
    /// A SOCKS5 proxy did not open the connection (its reply, or its refusal of the
    /// credentials: "refused the credentials" as for an HTTP proxy).
    #[error("proxy {proxy}: SOCKS5 connection to {target}: {}", socks_detail(source, *with_credentials))]
    Socks {
        proxy: String,
        target: String,
        with_credentials: bool,
        #[source]
        source: socks5::Socks5Error,
    },
    /// Any other answer than 2xx to `CONNECT`.
    #[error("proxy {proxy} refused the tunnel to {target}: HTTP {status} {reason}")]
    Refused {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },
    /// The answer head is over [`MAX_PROXY_HEAD`], not HTTP, or followed by data.
    #[error("proxy {proxy}: bad answer to CONNECT {target}: {detail}")]
    BadAnswer {
        proxy: String,
        target: String,
        detail: String,
    },
}

/// How a SOCKS5 failure reads: a refusal of the credentials says so as for an HTTP proxy.
fn socks_detail(e: &socks5::Socks5Error, with_credentials: bool) -> String {
    use socks5::Socks5Error as S;
    match e {
        S::CredentialsRefused => "the proxy refused the credentials of the proxy URL".into(),
        S::NoAcceptableMethod if !with_credentials => {
            "the proxy requires credentials: add user:pass@ to the proxy URL".into()
        }
        e => e.to_string(),
    }
}

/// How a proxy is spoken to.
#[derive(Clone)]
enum Kind {
    /// HTTP: `CONNECT` for `https://`, forwarding for `http://`, with this
    /// `Proxy-Authorization` value, if any.
    Http { auth: Option<HeaderValue> },
    /// SOCKS5 for both, with these credentials, if any.
    Socks5 {
        credentials: Option<socks5::Credentials>,
    },
}

/// One proxy: where it is and how to speak to it. `Debug` and `Display` show `host:port`
/// (and `socks5://` for SOCKS) only.
#[derive(Clone)]
pub struct Proxy {
    /// Host as in a URL authority (an IPv6 address in brackets).
    host: String,
    port: u16,
    kind: Kind,
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Kind::Socks5 { .. } = self.kind {
            f.write_str("socks5://")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Proxy({self}{})",
            if self.has_credentials() {
                ", credentials redacted"
            } else {
                ""
            }
        )
    }
}

impl Proxy {
    /// Parses a proxy variable's value as Go's `httpproxy` does (`None` when it is empty;
    /// an unparsable value is an error the caller logs and ignores). The error names the
    /// variable, never the value (it may hold a password).
    fn parse(var: &'static str, value: &str) -> Result<Option<Proxy>, ProxyError> {
        let invalid = |detail: String| ProxyError::InvalidUrl { var, detail };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let url = match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https" | "socks5") && u.has_host() => u,
            // A broken URL with a scheme: not retried (Go's retry would make
            // "http://http://…" of it and use a proxy named "http").
            Err(e) if value.contains("://") => return Err(invalid(e.to_string())),
            // No (known) scheme: Go tries again with "http://" in front.
            _ => url::Url::parse(&format!("http://{value}")).map_err(|e| invalid(e.to_string()))?,
        };
        let socks = match url.scheme() {
            "http" => false,
            "socks5" => true,
            scheme => {
                return Err(ProxyError::UnsupportedScheme {
                    var,
                    scheme: scheme.to_string(),
                })
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => return Err(invalid("no host".into())),
        };
        let decode = |s: &str| -> Vec<u8> { percent_decode_str(s).collect() };
        let credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            (
                zeroize::Zeroizing::new(decode(url.username())),
                zeroize::Zeroizing::new(decode(url.password().unwrap_or(""))),
            )
        });
        let kind = match (socks, credentials) {
            (false, None) => Kind::Http { auth: None },
            (false, Some((mut plain, pass))) => {
                plain.push(b':');
                plain.extend_from_slice(&pass);
                let token = base64::engine::general_purpose::STANDARD.encode(&plain);
                let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| invalid("unusable credentials".into()))?;
                v.set_sensitive(true);
                Kind::Http { auth: Some(v) }
            }
            (true, None) => Kind::Socks5 { credentials: None },
            (true, Some((user, pass))) => Kind::Socks5 {
                credentials: Some(
                    socks5::Credentials::new(user.to_vec(), pass.to_vec()).ok_or_else(|| {
                        invalid("SOCKS5 user name or password over 255 bytes".into())
                    })?,
                ),
            },
        };
        Ok(Some(Proxy {
            host,
            port: url.port().unwrap_or(if socks { 1080 } else { 80 }),
            kind,
        }))
    }

    /// The `Proxy-Authorization` value of an HTTP proxy, if the URL had credentials.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        match &self.kind {
            Kind::Http { auth } => auth.as_ref(),
            Kind::Socks5 { .. } => None,
        }
    }

    /// An HTTP proxy, which forwards plain `http://` requests (a SOCKS5 proxy carries
    /// them as a plain connection).
    pub fn forwards_http(&self) -> bool {
        matches!(self.kind, Kind::Http { .. })
    }

    fn has_credentials(&self) -> bool {
        match &self.kind {
            Kind::Http { auth } => auth.is_some(),
            Kind::Socks5 { credentials } => credentials.is_some(),
        }
    }

    fn uri(&self) -> Result<Uri, BoxError> {
        Ok(format!("http://{}:{}", self.host, self.port).parse::<Uri>()?)
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone)]
enum Rule {
    /// An address range (`10.0.0.0/8`, `fd00::/8`).
    Cidr { net: IpAddr, prefix: u8 },
    /// One address, optionally one port.
    Ip { ip: IpAddr, port: Option<u16> },
    /// `.suffix` (always with its dot); `exact` also matches the name without the dot.
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

/// The parsed `NO_PROXY`.
#[derive(Debug, Clone, Default)]
pub struct NoProxy {
    all: bool,
    rules: Vec<Rule>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value by Go's rules; malformed entries are skipped.
    pub fn parse(value: &str) -> Self {
        let mut rules = Vec::new();
        for p in value.split(',') {
            let p = p.trim().to_ascii_lowercase();
            if p.is_empty() {
                continue;
            }
            if p == "*" {
                return NoProxy {
                    all: true,
                    rules: Vec::new(),
                };
            }
            if let Some((addr, bits)) = p.split_once('/') {
                if let (Ok(net), Ok(prefix)) = (addr.parse::<IpAddr>(), bits.parse::<u8>()) {
                    let max = if net.is_ipv4() { 32 } else { 128 };
                    if prefix <= max {
                        rules.push(Rule::Cidr { net, prefix });
                    }
                }
                continue;
            }
            let (host, port) = match split_host_port(&p) {
                Some((h, port)) => match port.parse::<u16>() {
                    Ok(n) => (h.to_string(), Some(n)),
                    Err(_) => continue,
                },
                None => (p.clone(), None),
            };
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .map_or(host.clone(), str::to_string);
            if let Ok(ip) = host.parse::<IpAddr>() {
                rules.push(Rule::Ip { ip, port });
                continue;
            }
            if host.is_empty() {
                continue;
            }
            let host = host
                .strip_prefix("*.")
                .map_or(host.clone(), |h| format!(".{h}"));
            let (suffix, exact) = match host.strip_prefix('.') {
                Some(_) => (host.clone(), false),
                None => (format!(".{host}"), true),
            };
            rules.push(Rule::Domain {
                suffix,
                exact,
                port,
            });
        }
        NoProxy { all: false, rules }
    }

    /// Whether a request to `host` (lower case, no brackets) and `port` goes direct.
    fn matches(&self, host: &str, port: u16, ip: Option<IpAddr>) -> bool {
        if self.all {
            return true;
        }
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.rules.iter().any(|r| match r {
            Rule::Cidr { net, prefix } => ip.is_some_and(|ip| in_cidr(ip, *net, *prefix)),
            Rule::Ip {
                ip: rule_ip,
                port: p,
            } => ip.is_some_and(|ip| ip.to_canonical() == rule_ip.to_canonical()) && port_ok(p),
            Rule::Domain {
                suffix,
                exact,
                port: p,
            } => {
                (host.ends_with(suffix.as_str()) || (*exact && host == &suffix[1..])) && port_ok(p)
            }
        })
    }
}

/// `host:port` or `[v6]:port` split as Go's `net.SplitHostPort` (`None` without a port).
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let rest = s.get(end + 1..)?;
        let port = rest.strip_prefix(':')?;
        return Some((&s[..=end], port));
    }
    let (h, p) = s.rsplit_once(':')?;
    (!h.contains(':')).then_some((h, p))
}

fn in_cidr(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The proxy settings of the environment (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
}

impl ProxyEnv {
    /// No proxy at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, ProxyError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (the environment, or a test's map). A value that is no URL is
    /// ignored with a warning, as Go ignores it; an `https://` proxy is an error (Go would
    /// use it; ignoring it would bypass a proxy the device was told to use).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProxyError> {
        let get = |upper: &str, lower: &str| {
            lookup(upper)
                .filter(|v| !v.is_empty())
                .or_else(|| lookup(lower).filter(|v| !v.is_empty()))
                .unwrap_or_default()
        };
        let proxy = |var: &'static str, value: String| match Proxy::parse(var, &value) {
            Err(e @ ProxyError::InvalidUrl { .. }) => {
                tracing::warn!("{e}; ignored");
                Ok(None)
            }
            r => r,
        };
        Ok(ProxyEnv {
            http: proxy("HTTP_PROXY", get("HTTP_PROXY", "http_proxy"))?,
            https: proxy("HTTPS_PROXY", get("HTTPS_PROXY", "https_proxy"))?,
            no_proxy: NoProxy::parse(&get("NO_PROXY", "no_proxy")),
        })
    }

    /// Whether any proxy is set.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for a request to `uri`, or `None` to go direct.
    pub fn proxy_for(&self, uri: &Uri) -> Option<&Proxy> {
        let (proxy, default_port) = match uri.scheme_str() {
            Some("https") => (self.https.as_ref()?, 443),
            Some("http") => (self.http.as_ref()?, 80),
            _ => return None,
        };
        let raw = uri.host()?;
        let host = raw
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(raw)
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        if host.is_empty() || host == "localhost" {
            return None;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.to_canonical().is_loopback()) {
            return None;
        }
        (!self.no_proxy.matches(&host, port, ip)).then_some(proxy)
    }

    /// `HTTPS_PROXY`'s and `HTTP_PROXY`'s proxies as `host:port` (for a log line).
    pub fn describe(&self) -> String {
        let show = |p: &Option<Proxy>| p.as_ref().map_or("none".to_string(), |p| p.to_string());
        format!(
            "https via {}, http via {}",
            show(&self.https),
            show(&self.http)
        )
    }
}

/// A connection, direct or through a proxy; `proxied` is true only for a plain `http://`
/// request forwarded by the proxy (hyper then writes the absolute-form request line).
#[derive(Debug)]
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The TCP connector under TLS: direct, or to the proxy (then `CONNECT` for `https://`).
/// `tunnel_timeout` bounds the `CONNECT` exchange; the TCP connect has the inner
/// connector's timeout.
#[derive(Clone)]
pub struct ProxyConnector {
    inner: HttpConnector,
    proxies: Arc<ProxyEnv>,
    tunnel_timeout: Duration,
}

impl ProxyConnector {
    pub fn new(inner: HttpConnector, proxies: Arc<ProxyEnv>, tunnel_timeout: Duration) -> Self {
        ProxyConnector {
            inner,
            proxies,
            tunnel_timeout,
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let timeout = self.tunnel_timeout;
        let Some(proxy) = self.proxies.proxy_for(&dst).cloned() else {
            return Box::pin(async move {
                let io = inner.call(dst).await?;
                Ok(ProxyStream {
                    io,
                    forwarded: false,
                })
            });
        };
        Box::pin(async move {
            let io = inner
                .call(proxy.uri()?)
                .await
                .map_err(|e| ProxyError::Connect {
                    proxy: proxy.to_string(),
                    detail: chain(&e),
                })?;
            let target = authority(&dst);
            if let Kind::Socks5 { credentials } = &proxy.kind {
                let mut io = io;
                let (host, port) = (dst.host().unwrap_or(""), default_port(&dst));
                let opened = async {
                    socks5::connect(io.inner_mut(), credentials.as_ref(), host, port)
                        .await
                        .map_err(|source| ProxyError::Socks {
                            proxy: proxy.to_string(),
                            target: target.clone(),
                            with_credentials: credentials.is_some(),
                            source,
                        })
                };
                within(timeout, &proxy, &target, opened).await?;
                tracing::debug!(proxy = %proxy, target = %target, "SOCKS5 connection open");
                return Ok(ProxyStream {
                    io,
                    forwarded: false,
                });
            }
            if dst.scheme_str() != Some("https") {
                return Ok(ProxyStream {
                    io,
                    forwarded: true,
                });
            }
            let io = within(timeout, &proxy, &target, tunnel(io, &proxy, &target)).await?;
            tracing::debug!(proxy = %proxy, target = %target, "tunnel open");
            Ok(ProxyStream {
                io,
                forwarded: false,
            })
        })
    }
}

/// The TCP connector under the proxy connector: any scheme (TLS comes above it), each
/// connect within `timeout`.
pub(crate) fn tcp_connector(timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http
}

/// A TCP connection to `uri`'s host and port as the client makes it: through the proxy
/// that applies to `uri` (its `CONNECT` tunnel or SOCKS5 connection; for a plain `http://`
/// URI through an HTTP proxy, the connection to the proxy), else direct. `timeout` bounds
/// the TCP connect and the tunnel's setup. For a caller's own TLS handshake (`doctor`).
pub async fn open(
    proxies: Arc<ProxyEnv>,
    uri: Uri,
    timeout: Duration,
) -> Result<TcpStream, BoxError> {
    let mut connector = ProxyConnector::new(tcp_connector(timeout), proxies, timeout);
    let stream = tower_service::Service::call(&mut connector, uri).await?;
    Ok(stream.io.into_inner())
}

/// `exchange` with the proxy, or [`ProxyError::Timeout`] after `timeout`.
async fn within<T>(
    timeout: Duration,
    proxy: &Proxy,
    target: &str,
    exchange: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(ProxyError::Timeout {
                proxy: proxy.to_string(),
                target: target.to_string(),
                timeout,
            })
        })
}

/// `host:port` of a request URI (the default port by scheme).
fn authority(uri: &Uri) -> String {
    format!("{}:{}", uri.host().unwrap_or(""), default_port(uri))
}

/// The port of a request URI, or its scheme's default.
fn default_port(uri: &Uri) -> u16 {
    uri.port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        })
}

/// Sends `CONNECT target` and reads the answer head (at most [`MAX_PROXY_HEAD`] bytes);
/// a 2xx leaves `io` as the tunnel.
async fn tunnel(
    mut io: TokioIo<TcpStream>,
    proxy: &Proxy,
    target: &str,
) -> Result<TokioIo<TcpStream>, ProxyError> {
    let io_err = |source| ProxyError::Io {
        proxy: proxy.to_string(),
        target: target.to_string(),
        source,
    };
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = proxy.authorization() {
        req.extend_from_slice(b"Proxy-Authorization: ");
        req.extend_from_slice(auth.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let stream = io.inner_mut();
    stream.write_all(&req).await.map_err(io_err)?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            return Err(bad(proxy, target, "connection closed before the answer"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_PROXY_HEAD {
            return Err(bad(
                proxy,
                target,
                &format!("answer head over {MAX_PROXY_HEAD} bytes"),
            ));
        }
    };
    let line = head
        .split(|&b| b == b'\r')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reason: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    let status = match code.parse::<u16>() {
        Ok(s) if version.starts_with("HTTP/1.") && (100..=999).contains(&s) => s,
        _ => return Err(bad(proxy, target, "not an HTTP/1 status line")),
    };
    match status {
        200..=299 if end == head.len() => Ok(io),
        200..=299 => Err(bad(proxy, target, "data after the answer head")),
        401 | 407 => Err(ProxyError::AuthRequired {
            proxy: proxy.to_string(),
            with_credentials: proxy.has_credentials(),
            status,
            reason,
        }),
        _ => Err(ProxyError::Refused {
            proxy: proxy.to_string(),
            target: target.to_string(),
            status,
            reason,
        }),
    }
}

fn bad(proxy: &Proxy, target: &str, detail: &str) -> ProxyError {
    ProxyError::BadAnswer {
        proxy: proxy.to_string(),
        target: target.to_string(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests;
