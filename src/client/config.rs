//! `ClientConfig`: everything the client needs, as plain values. The configuration module
//! maps `mender.conf` / `mender-bridge.toml` settings onto it; nothing here reads files
//! except the TLS setup, which loads the named PEM files when the client is built.

use std::path::PathBuf;
use std::time::Duration;

use super::backoff::Backoff;

/// Settings of the Mender API client.
///
/// Invariants the client relies on (checked by [`ClientConfig::validate`]): at least one
/// server; every server URL is `http://` or `https://` with a host; every timeout non-zero.
/// `Debug` never shows the tenant token.
#[derive(Clone)]
pub struct ClientConfig {
    /// `ServerURL`, or each `Servers[].ServerURL`, in failover order. A trailing `/` is
    /// ignored.
    pub servers: Vec<String>,
    /// `TenantToken`: sent in the auth body when set and non-empty; never logged.
    pub tenant_token: Option<String>,
    pub tls: TlsConfig,
    pub timeouts: Timeouts,
    /// Backoff of [`Client::authenticate_with_backoff`](super::Client::authenticate_with_backoff)
    /// while the device is pending or the servers are unreachable.
    pub auth_retry: Backoff,
    pub download: DownloadConfig,
    /// Largest response body read from an API call (the JWT has its own, smaller cap).
    pub max_response_body: usize,
    /// `User-Agent` of every request.
    pub user_agent: String,
}

/// TLS settings. Trust is the system CA store (`/etc/ssl/certs`) plus `server_certificate`;
/// `skip_verify` turns certificate verification off (tests only; logged as a warning).
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `ServerCertificate`: a PEM file of extra trusted certificates (a CA, or the server's
    /// own self-signed certificate, which is then pinned).
    pub server_certificate: Option<PathBuf>,
    /// `HttpsClient.Certificate`: PEM certificate chain for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// `HttpsClient.Key`: PEM private key (PKCS#1, PKCS#8 or SEC1) of the client certificate.
    pub client_key: Option<PathBuf>,
    /// `SkipVerify`: accept any server certificate.
    pub skip_verify: bool,
}

/// Timeouts of the API calls. Every network wait is bounded by one of these.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect (per address).
    pub connect: Duration,
    /// One API exchange: request sent, response head and the whole (capped) body read.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            request: Duration::from_secs(60),
        }
    }
}

/// Settings of the artifact download ([`Download`](super::Download)).
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Longest wait for the response head of one download request.
    pub response_timeout: Duration,
    /// Longest wait for the next bytes of the body; a dead connection ends in a resume.
    pub idle_timeout: Duration,
    /// Most resume requests over one download (the official C++ client makes 10). The
    /// download then fails with the last reason.
    pub max_resume_attempts: u32,
    /// Wait before each resume, counted from the last failure that made no progress.
    pub resume_backoff: Backoff,
    /// Most fresh URLs asked of the caller's callback after 403 (expired link).
    pub max_url_refreshes: u32,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_resume_attempts: 10,
            resume_backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
                repeats: 1,
                max_tries: None,
            },
            max_url_refreshes: 3,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            servers: Vec::new(),
            tenant_token: None,
            tls: TlsConfig::default(),
            timeouts: Timeouts::default(),
            auth_retry: Backoff::official(Duration::from_secs(300), 0),
            download: DownloadConfig::default(),
            max_response_body: 1024 * 1024,
            user_agent: format!("mender-bridge/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("servers", &self.servers)
            .field(
                "tenant_token",
                &self.tenant_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls)
            .field("timeouts", &self.timeouts)
            .field("auth_retry", &self.auth_retry)
            .field("download", &self.download)
            .field("max_response_body", &self.max_response_body)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for one server with every other setting at its default.
    pub fn for_server(url: impl Into<String>) -> Self {
        ClientConfig {
            servers: vec![url.into()],
            ..ClientConfig::default()
        }
    }

    /// Checks the invariants stated on the type.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("no server configured (ServerURL or Servers)".into());
        }
        for s in &self.servers {
            let uri: http::Uri = s
                .trim_end_matches('/')
                .parse()
                .map_err(|e| format!("server URL {s:?}: {e}"))?;
            match uri.scheme_str() {
                Some("http") | Some("https") => {}
                _ => {
                    return Err(format!(
                        "server URL {s:?}: must start with https:// or http://"
                    ))
                }
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(format!("server URL {s:?}: no host"));
            }
        }
        let zero = Duration::ZERO;
        let d = &self.download;
        for (name, t) in [
            ("connect timeout", self.timeouts.connect),
            ("request timeout", self.timeouts.request),
            ("download response timeout", d.response_timeout),
            ("download idle timeout", d.idle_timeout),
        ] {
            if t == zero {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        if self.max_response_body == 0 {
            return Err("max_response_body must be greater than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate() {
        assert!(ClientConfig::default().validate().is_err());
        assert!(ClientConfig::for_server("https://m.example/")
            .validate()
            .is_ok());
        assert!(ClientConfig::for_server("ftp://m.example")
            .validate()
            .is_err());
        assert!(ClientConfig::for_server("m.example").validate().is_err());
        let mut c = ClientConfig::for_server("http://127.0.0.1:1");
        c.download.idle_timeout = Duration::ZERO;
        assert!(c.validate().unwrap_err().contains("idle"));
    }

    #[test]
    fn debug_hides_the_tenant_token() {
        let mut c = ClientConfig::for_server("https://m.example");
        c.tenant_token = Some("very-secret-tenant".into());
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret"), "{d}");
        assert!(d.contains("<redacted>"));
    }
}
