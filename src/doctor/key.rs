//! The device key: loaded with [`DeviceKey::load`] (what the daemon does), never
//! generated here. Reports its type, its file's mode (group/world access is a warning:
//! anyone who reads the key can act as the device) and the SHA-256 fingerprint of its
//! public key (SubjectPublicKeyInfo DER, as `openssl pkey -pubout -outform der | sha256sum`
//! prints it). Invariant: nothing of the private key is printed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::keys::{pem_block_der, pem_blocks, DeviceKey};

use super::{Check, Sink};

const NAME: &str = "device key";

/// The key file the daemon uses: `Security.AuthPrivateKey`, else
/// `<data_dir>/mender-agent.pem`; and whether it is configured (then it must exist).
fn key_path(cfg: &Config) -> (PathBuf, bool) {
    match &cfg.security.auth_private_key {
        Some(p) => (p.clone(), true),
        None => (cfg.data_dir.join("mender-agent.pem"), false),
    }
}

/// SHA-256 of the public key's DER, hex.
pub fn fingerprint(key: &DeviceKey) -> Option<String> {
    let pem = key.public_key_pem().ok()?;
    let (_, block) = pem_blocks(&pem).into_iter().next()?;
    let der = pem_block_der(block).ok()?;
    Some(hex::encode(Sha256::digest(&der[..])))
}

/// Reports the key; returns it when it loads.
pub fn check(cfg: &Config, out: &mut dyn Sink) -> Option<DeviceKey> {
    let (path, configured) = key_path(cfg);
    let shown = path.display();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            out.add(Check::warn(
                NAME,
                format!("none yet at {shown}"),
                format!(
                    "the daemon generates one ({:?}) at its first start; the device is then \
                     a new, pending device on the server",
                    cfg.device_key_type
                ),
            ));
            return None;
        }
        Err(e) => {
            out.add(Check::fail(
                NAME,
                format!("{shown}: {e}"),
                "set Security.AuthPrivateKey to the device's key file",
            ));
            return None;
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let key = match DeviceKey::load(&path) {
        Ok(k) => k,
        Err(e) => {
            let fix = match &e {
                crate::keys::KeyError::Read { .. } => format!(
                    "make {shown} readable by the user the bridge runs as (root), mode 0600"
                ),
                _ => format!(
                    "{shown} must be an RSA, ECDSA P-256 or Ed25519 private key in PEM; \
                     replacing it makes the device a new device on the server"
                ),
            };
            out.add(Check::fail(NAME, format!("{e} (mode {mode:04o})"), fix));
            return None;
        }
    };
    let found = format!(
        "{} {shown}, mode {mode:04o}, public key sha256 {}",
        key.kind(),
        fingerprint(&key).unwrap_or_else(|| "unknown".into())
    );
    if mode & 0o077 != 0 {
        out.add(Check::warn(
            NAME,
            format!("{found}: readable by group or others"),
            format!("chmod 600 {shown} (anyone who reads it can act as this device)"),
        ));
    } else {
        out.add(Check::ok(NAME, found));
    }
    Some(key)
}
