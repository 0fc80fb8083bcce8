//! DNS, TCP and TLS to each configured server, in that order, each within
//! [`CHECK_TIMEOUT`]; behind the proxy the client would take (`HTTPS_PROXY`, ...) the
//! proxy resolves the name, TCP is the proxy's tunnel, and TLS runs inside it. The handshake uses the client's own rustls configuration
//! ([`crate::client::tls_client_config`]: the system CAs, `ServerCertificate` as CA or
//! pinned certificate, `HttpsClient`, `SkipVerify`), and a refused certificate is named by
//! rustls's error kind: expired, not yet valid, wrong name, unknown CA (or not the
//! `ServerCertificate`), bad signature.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mender_api::rfc3339::format_utc;
use rustls::pki_types::ServerName;
use rustls::CertificateError;

use crate::config::Config;

use super::{Check, Sink, CHECK_TIMEOUT};

/// Why a handshake failed, in words and with the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsCheckError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(rustls::Error),
    #[error("no handshake within {}s", CHECK_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0:?} is not a TLS server name")]
    Name(String),
}

/// Checks each server; returns those whose connection works (TLS for `https`), for the
/// auth check.
pub async fn check(cfg: &Config, out: &mut dyn Sink) -> Vec<String> {
    let mut reachable = Vec::new();
    if cfg.servers.is_empty() {
        out.add(Check::warn(
            "servers",
            "none configured",
            "set ServerURL (or Servers) in mender.conf: the daemon needs one (install, \
             commit and rollback do not)",
        ));
        return reachable;
    }
    // The proxies the client would use (an unusable setting stops the client: a fail).
    let proxies = match crate::client::ProxyEnv::from_env() {
        Ok(p) => Arc::new(p),
        Err(e) => {
            out.add(Check::fail(
                "proxy",
                e.to_string(),
                "use an http:// or socks5:// proxy URL in HTTPS_PROXY / HTTP_PROXY, or unset it",
            ));
            Arc::new(crate::client::ProxyEnv::none())
        }
    };
    let client_cfg = crate::setup::client_config(cfg);
    let tls = crate::client::tls_client_config(&client_cfg.tls);
    if let Err(e) = &tls {
        out.add(Check::fail(
            "tls setup",
            e.to_string(),
            "correct ServerCertificate / HttpsClient (PEM files the bridge can read)",
        ));
    }
    for server in &cfg.servers {
        let url = server.as_str().to_string();
        if one(cfg, &url, tls.as_ref().ok(), &proxies, out).await {
            reachable.push(url);
        }
    }
    reachable
}

/// DNS, TCP, TLS to one server (through the proxy the client would take to it, if any);
/// true when all passed.
async fn one(
    cfg: &Config,
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    proxies: &Arc<crate::client::ProxyEnv>,
    out: &mut dyn Sink,
) -> bool {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            out.add(Check::fail(
                "dns",
                format!("{url}: {e}"),
                "correct ServerURL",
            ));
            return false;
        }
    };
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let https = parsed.scheme() == "https";
    if let Ok(uri) = url.parse::<http::Uri>() {
        if let Some(proxy) = proxies.proxy_for(&uri).map(ToString::to_string) {
            return through_proxy(cfg, url, uri, &proxy, tls, proxies, out).await;
        }
    }

    // DNS
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        CHECK_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            out.add(Check::fail(
                "dns",
                format!("{host}: {e}"),
                "check the host name in ServerURL and the DNS setup (/etc/resolv.conf)",
            ));
            skip_after(url, "dns", out);
            return false;
        }
        Err(_) => {
            out.add(Check::fail(
                "dns",
                format!("{host}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
                "check the DNS servers (/etc/resolv.conf) and the network",
            ));
            skip_after(url, "dns", out);
            return false;
        }
    };
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    out.add(Check::ok(
        "dns",
        format!("{host} resolves to {}", shown.join(", ")),
    ));

    // TCP: the first address that answers.
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in &addrs {
        match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, *addr));
                break;
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
        }
    }
    let Some((stream, addr)) = stream else {
        out.add(Check::fail(
            "tcp",
            last,
            format!(
                "is the server up and listening on port {port}? check firewalls and \
                 the port in ServerURL"
            ),
        ));
        skip_after(url, "tcp", out);
        return false;
    };
    out.add(Check::ok("tcp", format!("{addr} connected")));
    tls_check(cfg, url, &host, https, stream, tls, out).await
}

/// DNS and TCP through `proxy` (the proxy resolves the server's name and connects), then
/// TLS inside the tunnel, as the client goes.
async fn through_proxy(
    cfg: &Config,
    url: &str,
    uri: http::Uri,
    proxy: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    proxies: &Arc<crate::client::ProxyEnv>,
    out: &mut dyn Sink,
) -> bool {
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let https = uri.scheme_str() == Some("https");
    out.add(Check::ok("proxy", format!("{url} through {proxy}")));
    out.add(Check::skip(
        "dns",
        format!("{host}: resolved by the proxy {proxy}"),
    ));
    let opened = tokio::time::timeout(
        CHECK_TIMEOUT * 2,
        crate::client::proxy::open(proxies.clone(), uri, CHECK_TIMEOUT),
    )
    .await;
    let stream = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            out.add(Check::fail(
                "tcp",
                e.to_string(),
                format!(
                    "check the proxy ({proxy}: its address, credentials and rules) and that it \
                     lets the device reach {host}"
                ),
            ));
            skip_after(url, "tcp", out);
            return false;
        }
        Err(_) => {
            out.add(Check::fail(
                "tcp",
                format!(
                    "{proxy}: no connection to {host} within {}s",
                    (CHECK_TIMEOUT * 2).as_secs()
                ),
                format!("check the proxy ({proxy}) and the network to it"),
            ));
            skip_after(url, "tcp", out);
            return false;
        }
    };
    out.add(Check::ok(
        "tcp",
        format!("{host} connected through {proxy}"),
    ));
    tls_check(cfg, url, &host, https, stream, tls, out).await
}

/// The TLS handshake with `host` over `stream` (a warning for plain http); true when it
/// passed (or there is none).
async fn tls_check(
    cfg: &Config,
    url: &str,
    host: &str,
    https: bool,
    stream: tokio::net::TcpStream,
    tls: Option<&Arc<rustls::ClientConfig>>,
    out: &mut dyn Sink,
) -> bool {
    if !https {
        out.add(Check::warn(
            "tls",
            format!("{url}: plain http, not encrypted"),
            "use an https:// ServerURL",
        ));
        return true;
    }
    let Some(tls) = tls else {
        out.add(Check::skip("tls", format!("{url}: the TLS setup failed")));
        return false;
    };
    let stream = match stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
    {
        Ok(s) => s,
        Err(e) => {
            out.add(Check::fail("tls", format!("{url}: {e}"), "retry"));
            return false;
        }
    };
    let tls = tls.clone();
    let name = host.to_string();
    let result = tokio::task::spawn_blocking(move || handshake(stream, tls, &name)).await;
    match result {
        Ok(Ok(found)) => {
            out.add(Check::ok("tls", format!("{host}: {found}")));
            true
        }
        Ok(Err(e)) => {
            let (found, fix) = explain(&e, host, cfg.server_certificate.as_deref());
            out.add(Check::fail("tls", format!("{host}: {found}"), fix));
            false
        }
        Err(e) => {
            out.add(Check::fail("tls", format!("{host}: {e}"), "retry"));
            false
        }
    }
}

fn skip_after(url: &str, failed: &str, out: &mut dyn Sink) {
    let checks: &[&str] = match failed {
        "dns" => &["tcp", "tls"],
        _ => &["tls"],
    };
    for c in checks {
        out.add(Check::skip(*c, format!("{url}: {failed} failed")));
    }
}

/// The TLS handshake over `stream` (blocking, each read and write bounded, the whole
/// within [`CHECK_TIMEOUT`] plus one read); returns the protocol and the certificate's
/// fingerprint.
pub fn handshake(
    mut stream: std::net::TcpStream,
    tls: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<String, TlsCheckError> {
    stream.set_read_timeout(Some(CHECK_TIMEOUT))?;
    stream.set_write_timeout(Some(CHECK_TIMEOUT))?;
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| TlsCheckError::Name(host.into()))?;
    let mut conn = rustls::ClientConnection::new(tls, name).map_err(TlsCheckError::Tls)?;
    let start = Instant::now();
    while conn.is_handshaking() {
        if start.elapsed() > CHECK_TIMEOUT {
            return Err(TlsCheckError::Timeout);
        }
        if let Err(e) = conn.complete_io(&mut stream) {
            let inner = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .cloned();
            return Err(match inner {
                Some(t) => TlsCheckError::Tls(t),
                None if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
                {
                    TlsCheckError::Timeout
                }
                None => TlsCheckError::Io(e),
            });
        }
    }
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| crate::client::fingerprint(c.as_ref()))
        .unwrap_or_default();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut stream);
    Ok(format!("{version}, certificate verified (sha256 {leaf}…)"))
}

/// The failure in words, and the fix; `pinned` is `ServerCertificate`, if set.
pub fn explain(
    e: &TlsCheckError,
    host: &str,
    pinned: Option<&std::path::Path>,
) -> (String, String) {
    let pinned = pinned.map(|p| p.display().to_string());
    let clock = "if the device's clock is wrong (see the clock check), set it; else renew the \
                 server's certificate";
    let TlsCheckError::Tls(t) = e else {
        return (
            e.to_string(),
            "check that the port speaks TLS (https) and the network path".into(),
        );
    };
    match t {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired => {
                ("the server's certificate has expired".into(), clock.into())
            }
            CertificateError::ExpiredContext { time, not_after } => (
                format!(
                    "the server's certificate expired at {} (the time here is {})",
                    format_utc(not_after.as_secs()),
                    format_utc(time.as_secs())
                ),
                clock.into(),
            ),
            CertificateError::NotValidYet => (
                "the server's certificate is not valid yet".into(),
                "set the device's clock (NTP)".into(),
            ),
            CertificateError::NotValidYetContext { time, not_before } => (
                format!(
                    "the server's certificate is valid only from {} (the time here is {})",
                    format_utc(not_before.as_secs()),
                    format_utc(time.as_secs())
                ),
                "set the device's clock (NTP)".into(),
            ),
            CertificateError::NotValidForName => (
                format!("wrong name: the server's certificate is not valid for {host}"),
                "use the host name the certificate names in ServerURL, or reissue the \
                 certificate for this name"
                    .into(),
            ),
            CertificateError::NotValidForNameContext { presented, .. } => (
                format!(
                    "wrong name: the server's certificate is not valid for {host} (it names \
                     {})",
                    presented.join(", ")
                ),
                "use the host name the certificate names in ServerURL, or reissue the \
                 certificate for this name"
                    .into(),
            ),
            CertificateError::UnknownIssuer => match &pinned {
                Some(p) => (
                    format!(
                        "unknown CA: the server's certificate is not signed by a trusted CA \
                         nor by ServerCertificate {p}, and is not that certificate (pinned \
                         certificate mismatch)"
                    ),
                    format!(
                        "make ServerCertificate ({p}) the CA that signed the server's \
                         certificate, or the server's own certificate"
                    ),
                ),
                None => (
                    "unknown CA: the server's certificate is not signed by a CA in the \
                     system store"
                        .into(),
                    "set ServerCertificate in mender.conf to the server's CA (or install \
                     the CA in the system store)"
                        .into(),
                ),
            },
            CertificateError::BadSignature => (
                "the server's certificate has a bad signature".into(),
                "the certificate chain is broken or tampered with; reissue it".into(),
            ),
            CertificateError::Revoked => (
                "the server's certificate is revoked".into(),
                "renew the server's certificate".into(),
            ),
            other => (
                format!("the server's certificate is refused: {other}"),
                "check the server's certificate chain".into(),
            ),
        },
        rustls::Error::AlertReceived(alert) => (
            format!("the server ended the handshake ({alert:?})"),
            "if the server asks for a client certificate, set HttpsClient.Certificate and \
             HttpsClient.Key"
                .into(),
        ),
        other => (
            format!("TLS: {other}"),
            "check that the port speaks TLS and the server's TLS settings".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::UnixTime;

    use super::*;

    fn cert(e: CertificateError) -> TlsCheckError {
        TlsCheckError::Tls(rustls::Error::InvalidCertificate(e))
    }

    #[test]
    fn certificate_problems_are_named_with_their_fix() {
        let at = |s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        let (found, fix) = explain(
            &cert(CertificateError::ExpiredContext {
                time: at(1_800_000_000),
                not_after: at(1_700_000_000),
            }),
            "h",
            None,
        );
        assert!(found.contains("expired at 2023-11-14"), "{found}");
        assert!(fix.contains("clock"), "{fix}");
        let (found, _) = explain(&cert(CertificateError::Expired), "h", None);
        assert!(found.contains("expired"), "{found}");
        let (found, fix) = explain(
            &cert(CertificateError::NotValidYetContext {
                time: at(0),
                not_before: at(1_700_000_000),
            }),
            "h",
            None,
        );
        assert!(found.contains("valid only from 2023-11-14"), "{found}");
        assert!(fix.contains("clock"), "{fix}");
        let (found, fix) = explain(
            &cert(CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("mender.example").expect("name"),
                presented: vec!["DnsName(\"other.example\")".into()],
            }),
            "mender.example",
            None,
        );
        assert!(found.starts_with("wrong name"), "{found}");
        assert!(found.contains("other.example"), "{found}");
        assert!(fix.contains("ServerURL"), "{fix}");
        let (found, fix) = explain(&cert(CertificateError::UnknownIssuer), "h", None);
        assert!(found.contains("system store"), "{found}");
        assert!(fix.contains("set ServerCertificate"), "{fix}");
        let (found, _) = explain(
            &cert(CertificateError::UnknownIssuer),
            "h",
            Some(std::path::Path::new("/etc/mender/server.crt")),
        );
        assert!(found.contains("pinned certificate mismatch"), "{found}");
        assert!(found.contains("/etc/mender/server.crt"), "{found}");
        let (found, fix) = explain(
            &TlsCheckError::Tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired,
            )),
            "h",
            None,
        );
        assert!(found.contains("CertificateRequired"), "{found}");
        assert!(fix.contains("HttpsClient"), "{fix}");
        let (found, _) = explain(&TlsCheckError::Timeout, "h", None);
        assert!(found.contains("no handshake"), "{found}");
    }
}
