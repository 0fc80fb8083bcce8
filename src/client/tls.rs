//! The rustls client configuration (ring provider): trust the system CA store
//! (`/etc/ssl/certs`, via rustls-native-certs) plus `ServerCertificate`; present a client
//! certificate for mutual TLS when configured; `SkipVerify` only when set, with a warning.
//!
//! `ServerCertificate` may name a CA or, as in many Mender setups, the server's own
//! self-signed certificate. A self-signed leaf cannot anchor a webpki chain, so a server
//! certificate that is byte-for-byte one of the configured ones is accepted as pinned
//! (the handshake signature is still verified).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::config::TlsConfig;
use super::error::ClientError;

/// Largest PEM file read for certificates and keys.
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// A short fingerprint for logs: the first 8 bytes of SHA-256, hex.
pub(crate) fn fingerprint(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..8])
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, ClientError> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)
        .map_err(|e| ClientError::Tls(format!("{what} {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ClientError::Tls(format!("{what} {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_PEM_FILE {
        return Err(ClientError::Tls(format!(
            "{what} {}: larger than {MAX_PEM_FILE} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = read_pem(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Tls(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "{what} {}: no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration from the settings (reads the PEM files now).
pub fn client_config(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;

    let verifier: Arc<dyn ServerCertVerifier> = if tls.skip_verify {
        tracing::warn!(
            "SkipVerify is set: TLS server certificates are NOT verified; anyone on the \
             network path can impersonate the Mender server. Use only for tests."
        );
        Arc::new(Verifier {
            chain: Chain::Any,
            pinned: Vec::new(),
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("system CA store: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates loaded");
        let mut pinned = Vec::new();
        if let Some(path) = &tls.server_certificate {
            for cert in load_certs(path, "ServerCertificate")? {
                tracing::info!(
                    path = %path.display(),
                    sha256 = %fingerprint(cert.as_ref()),
                    "trusting ServerCertificate"
                );
                // A self-signed leaf is not a valid anchor for webpki; it is pinned below.
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
        }
        if roots.is_empty() && pinned.is_empty() {
            tracing::warn!("no trusted CA certificates: every TLS connection will fail");
        }
        let chain = if roots.is_empty() {
            Chain::None
        } else {
            Chain::WebPki(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| ClientError::Tls(e.to_string()))?,
            )
        };
        Arc::new(Verifier {
            chain,
            pinned,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let config = match (&tls.client_certificate, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert, "HttpsClient.Certificate")?;
            let pem = read_pem(key, "HttpsClient.Key")?;
            let key_der = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| ClientError::Tls(format!("HttpsClient.Key {}: {e}", key.display())))?;
            tracing::info!(
                sha256 = %fingerprint(chain[0].as_ref()),
                "presenting a client certificate (mutual TLS)"
            );
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ClientError::Tls(format!("client certificate: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ClientError::Tls(
                "HttpsClient needs both Certificate and Key".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// How a server's certificate chain is judged.
#[derive(Debug)]
enum Chain {
    /// Against the system roots plus `ServerCertificate` (webpki).
    WebPki(Arc<dyn ServerCertVerifier>),
    /// No CA is trusted at all: only a pinned certificate passes.
    None,
    /// `SkipVerify`: any certificate.
    Any,
}

/// The one server-certificate verifier: the chain policy, plus exact-match acceptance of
/// the configured certificates (a self-signed `ServerCertificate` is not a valid webpki
/// anchor). Handshake signatures are always checked, so the peer must hold the key of the
/// certificate it shows, even with `SkipVerify`.
#[derive(Debug)]
struct Verifier {
    chain: Chain,
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    fn is_pinned(&self, cert: &CertificateDer<'_>) -> bool {
        let hit = self.pinned.iter().any(|p| p.as_ref() == cert.as_ref());
        if hit {
            tracing::debug!("server certificate accepted: equals ServerCertificate");
        }
        hit
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match &self.chain {
            Chain::Any => return Ok(ServerCertVerified::assertion()),
            Chain::WebPki(v) => {
                match v.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Ok(ok) => return Ok(ok),
                    Err(e) => e,
                }
            }
            Chain::None => {
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            }
        };
        if self.is_pinned(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(refused)
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_default_and_skip_verify() {
        assert!(client_config(&TlsConfig::default()).is_ok());
        let skip = TlsConfig {
            skip_verify: true,
            ..TlsConfig::default()
        };
        assert!(client_config(&skip).is_ok());
    }

    #[test]
    fn errors_name_the_setting() {
        let missing = TlsConfig {
            server_certificate: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let e = client_config(&missing).unwrap_err().to_string();
        assert!(e.contains("ServerCertificate"), "{e}");
        let half = TlsConfig {
            client_certificate: Some("/nonexistent/c.pem".into()),
            ..TlsConfig::default()
        };
        let e = client_config(&half).unwrap_err().to_string();
        assert!(e.contains("both"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = client_config(&TlsConfig {
            server_certificate: Some(empty),
            ..TlsConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }
}
