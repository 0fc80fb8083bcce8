//! The client's TLS settings against a local rustls server: `ServerCertificate` naming the
//! server's own self-signed certificate (pinned), an untrusted certificate refused,
//! `SkipVerify`, and mutual TLS with `HttpsClient.Certificate`/`Key`. Uses rcgen and
//! tokio-rustls, which come with the `sim` feature.
#![cfg(feature = "sim")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mender_bridge::client::{Backoff, DownloadConfig, DownloadError, Downloader, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Leaf {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    key_pem: String,
}

fn leaf_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    p
}

fn finish(cert: rcgen::Certificate, key: &KeyPair) -> Leaf {
    Leaf {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        key_pem: key.serialize_pem(),
    }
}

fn self_signed(name: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(name).self_signed(&key).unwrap();
    finish(cert, &key)
}

/// A CA and a certificate for `name` it issued.
fn ca_issuing(name: &str) -> (Leaf, Leaf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_leaf = finish(ca_cert, &ca_key);
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(name).signed_by(&key, &issuer).unwrap();
    (ca_leaf, finish(cert, &key))
}

/// Serves `hello` over TLS to every connection; with `client_ca`, a client certificate
/// issued by it is required.
async fn server(leaf: &Leaf, client_ca: Option<&Leaf>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(vec![leaf.der.clone()], leaf.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn download_config() -> DownloadConfig {
    DownloadConfig {
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_resume_attempts: 0,
        resume_backoff: Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            repeats: 1,
            max_tries: None,
        },
        max_url_refreshes: 0,
    }
}

async fn fetch(tls: &TlsConfig, addr: SocketAddr) -> Result<Vec<u8>, DownloadError> {
    let d = Downloader::new(tls, Duration::from_secs(5), download_config()).unwrap();
    let dl = d.start(&format!("https://{addr}/x"), None).await?;
    let mut out = Vec::new();
    dl.into_reader().read_to_end(&mut out).await.unwrap();
    Ok(out)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn server_certificate_pins_a_self_signed_server() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = self_signed("mender.local");
    let addr = server(&leaf, None).await;

    let pinned = TlsConfig {
        server_certificate: Some(write(&dir, "server.crt", &leaf.pem)),
        ..TlsConfig::default()
    };
    assert_eq!(fetch(&pinned, addr).await.unwrap(), b"hello");

    // Trusting nothing extra, or another certificate: refused.
    let e = fetch(&TlsConfig::default(), addr).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let other = self_signed("other.local");
    let wrong = TlsConfig {
        server_certificate: Some(write(&dir, "other.crt", &other.pem)),
        ..TlsConfig::default()
    };
    let e = fetch(&wrong, addr).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    // SkipVerify accepts it.
    let skip = TlsConfig {
        skip_verify: true,
        ..TlsConfig::default()
    };
    assert_eq!(fetch(&skip, addr).await.unwrap(), b"hello");
}

#[tokio::test]
async fn server_certificate_as_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, server_leaf) = ca_issuing("localhost");
    let (unrelated_ca, _) = ca_issuing("localhost");
    let addr = server(&server_leaf, None).await;
    let trusted = TlsConfig {
        server_certificate: Some(write(&dir, "ca.crt", &server_ca.pem)),
        ..TlsConfig::default()
    };
    assert_eq!(fetch(&trusted, addr).await.unwrap(), b"hello");
    // An unrelated CA does not help.
    let unrelated = TlsConfig {
        server_certificate: Some(write(&dir, "unrelated.crt", &unrelated_ca.pem)),
        ..TlsConfig::default()
    };
    assert!(fetch(&unrelated, addr).await.is_err());
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = self_signed("mender.local");
    let (ca, client) = ca_issuing("device-1");
    let addr = server(&leaf, Some(&ca)).await;
    let server_crt = write(&dir, "server.crt", &leaf.pem);

    let with_cert = TlsConfig {
        server_certificate: Some(server_crt.clone()),
        client_certificate: Some(write(&dir, "client.crt", &client.pem)),
        client_key: Some(write(&dir, "client.key", &client.key_pem)),
        ..TlsConfig::default()
    };
    assert_eq!(fetch(&with_cert, addr).await.unwrap(), b"hello");

    let without = TlsConfig {
        server_certificate: Some(server_crt),
        ..TlsConfig::default()
    };
    assert!(fetch(&without, addr).await.is_err());
}
