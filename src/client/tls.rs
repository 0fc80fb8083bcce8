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
use zeroize::Zeroizing;

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

/// Reads a secret file with [`mender_artifact::private_key::read_secret`]: one buffer, never reallocated
/// (so no partial copy is left behind in freed memory), zeroized when dropped.
fn read_secret(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let fail = |e: std::io::Error| ClientError::Tls(format!("{what} {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(fail)?;
    mender_artifact::private_key::read_secret(f, MAX_PEM_FILE).map_err(fail)
}

/// `HttpsClient.Key`: the first `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or
/// `EC PRIVATE KEY` (SEC1) block of the PEM file; other blocks (`EC PARAMETERS`) are
/// skipped, encrypted keys refused.
///
/// Invariant: no copy of the key, as PEM text or DER, is left in freed memory by this
/// function: the file, its base64 and the DER live in buffers of a fixed size that are
/// zeroized on drop, and the DER handed over is zeroized by rustls once it has loaded it.
/// A P-256 SEC1 key is turned into PKCS#8 here (in zeroized buffers), because rustls
/// would otherwise make that conversion in a buffer it does not clear.
fn load_client_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
    let fail = |e: &str| ClientError::Tls(format!("HttpsClient.Key {}: {e}", path.display()));
    let pem = read_secret(path, "HttpsClient.Key")?;
    let der = |block| crate::keys::pem_block_der(block).map_err(|e| fail(&e.to_string()));
    let text = std::str::from_utf8(&pem).map_err(|_| fail("not PEM text"))?;
    for (label, block) in crate::keys::pem_blocks(text) {
        match label {
            "PRIVATE KEY" => {
                let der = der(block)?;
                return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(into_owned(
                    der,
                ))));
            }
            "RSA PRIVATE KEY" => {
                let der = der(block)?;
                return Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(into_owned(
                    der,
                ))));
            }
            "EC PRIVATE KEY" => {
                let der = der(block)?;
                return Ok(match sec1_p256_to_pkcs8(&der) {
                    Some(pkcs8) => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
                    // Another curve: rustls converts it.
                    None => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(into_owned(der))),
                });
            }
            "ENCRYPTED PRIVATE KEY" => return Err(fail("encrypted keys are not supported")),
            _ => {}
        }
    }
    Err(fail(
        "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
    ))
}

/// Moves the bytes out of the zeroizing wrapper without copying them: the caller hands
/// them to rustls, which zeroizes them after use.
fn into_owned(mut der: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *der)
}

/// A P-256 SEC1 key as PKCS#8 (`None`: not a P-256 SEC1 key).
fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
    use p256::pkcs8::EncodePrivateKey as _;
    let key = p256::SecretKey::from_sec1_der(sec1).ok()?;
    let doc = key.to_pkcs8_der().ok()?;
    // The document clears itself; the one copy made goes to rustls, which clears it.
    Some(doc.as_bytes().to_vec())
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
            let key_der = load_client_key(key)?;
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

        let key_error = |text: &str| {
            let key = dir.path().join("key.pem");
            std::fs::write(&key, text).unwrap();
            load_client_key(&key).unwrap_err().to_string()
        };
        let e = key_error(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
        );
        assert!(
            e.contains("HttpsClient.Key") && e.contains("no PRIVATE KEY"),
            "{e}"
        );
        let e = key_error(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        assert!(e.contains("encrypted"), "{e}");
        let e = key_error("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n");
        assert!(e.contains("PEM headers"), "{e}");
        let e = key_error("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n");
        assert!(e.contains("bad base64"), "{e}");
    }
}
