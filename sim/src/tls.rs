//! TLS material: a CA generated on first start (`DIR/ca.pem`, to be given to devices as
//! `ServerCertificate`) and a server certificate for `127.0.0.1`/`localhost` (and a specific listen address) signed by it.
//! Both are reused across restarts when present; keys are written with mode 0600.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::SimError;
use super::persist::write_atomic;

/// File names inside the state directory.
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const CERT_FILE: &str = "server.pem";
const KEY_FILE: &str = "server-key.pem";

/// The CA certificate's path (what devices trust) and the server's rustls configuration.
pub struct TlsMaterial {
    pub ca_path: PathBuf,
    pub config: Arc<rustls::ServerConfig>,
}

/// Loads the certificates from `dir`, generating them first when any is missing; a new
/// server certificate also names `extra_ip` (the listen address, when it is neither
/// loopback nor unspecified). Existing certificates are kept as they are.
pub fn load_or_create(dir: &Path, extra_ip: Option<IpAddr>) -> Result<TlsMaterial, SimError> {
    let ca_path = dir.join(CA_FILE);
    let files = [CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE].map(|f| dir.join(f));
    if !files.iter().all(|p| p.is_file()) {
        generate(dir, extra_ip)?;
    }
    let cert_path = dir.join(CERT_FILE);
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SimError::Tls(format!("{}: {e}", cert_path.display())))?;
    let key_path = dir.join(KEY_FILE);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| SimError::Tls(format!("{}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    // HTTP/1.1 only: the official Go client would otherwise negotiate h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_path,
        config: Arc::new(config),
    })
}

fn generate(dir: &Path, extra_ip: Option<IpAddr>) -> Result<(), SimError> {
    tracing::info!(dir = %dir.display(), "generating the simulator's CA and server certificate");
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "mender-bridge sim CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "mender-bridge sim");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    if let Some(ip) = extra_ip.filter(|ip| !ip.is_loopback() && !ip.is_unspecified()) {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    let issuer = Issuer::new(ca, &ca_key);
    let cert = params.signed_by(&key, &issuer)?;

    // Keys first: a certificate without its key is useless, and the presence check above
    // looks at all four files.
    write_atomic(
        &dir.join(CA_KEY_FILE),
        ca_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_atomic(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644)?;
    write_atomic(&dir.join(CA_FILE), ca_cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn set_validity(p: &mut CertificateParams) {
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2049, 12, 31);
}
