//! `DeviceKey`: load, generate, persist (atomically, mode 0600) and sign auth requests.

use std::path::Path;

use base64::Engine as _;
use sha2::Sha256;

use super::KeyError;
use super::PrivateKey;

/// The kinds of key a device can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// Mender 5's default.
    Ed25519,
    /// Mender 3.x and 4.x default.
    Rsa3072,
    P256,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "Ed25519",
            KeyType::Rsa3072 => "RSA-3072",
            KeyType::P256 => "ECDSA P-256",
        }
    }
}

/// The device's authentication key.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    key: PrivateKey,
}

/// Largest key file read: an RSA-8192 PEM is under 7 KiB.
const MAX_KEY_FILE: u64 = 64 * 1024;

fn random_32() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

impl DeviceKey {
    pub fn from_pem(pem: &str, label: &str) -> Result<Self, KeyError> {
        Ok(DeviceKey {
            key: PrivateKey::from_pem(pem, label)?,
        })
    }

    /// Reads a PEM key file (bounded in size). The file and the key's DER are held only in
    /// fixed-size buffers zeroized on drop ([`mender_artifact::private_key::read_secret`],
    /// [`PrivateKey::from_pem`]): no copy of the key is left in freed memory by the load.
    /// A file that group or others may access
    /// (any of mode 0077, checked on the opened file) is loaded, with a warning naming the
    /// path and mode: the bridge writes its keys 0600, and a readable key lets any local
    /// user act as the device.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        use std::os::unix::fs::PermissionsExt as _;
        let label = path.display().to_string();
        let read_err = |source| KeyError::Read {
            path: label.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format_args!("{mode:04o}"),
                "the device key is accessible to group or others (anyone who reads it can \
                 act as this device); it should be mode 0600"
            );
        }
        // One fixed-size buffer, zeroized on drop: no partial copy of the key is freed.
        let data =
            mender_artifact::private_key::read_secret(file, MAX_KEY_FILE).map_err(read_err)?;
        let text = std::str::from_utf8(&data).map_err(|_| KeyError::Parse {
            label: label.clone(),
            reason: "not PEM text".into(),
        })?;
        Self::from_pem(text, &label)
    }

    /// A new key from the system's random source.
    pub fn generate(kind: KeyType) -> Result<Self, KeyError> {
        let gen_err = |reason: String| KeyError::Generate {
            kind: kind.name(),
            reason,
        };
        let key = match kind {
            KeyType::Ed25519 => {
                let seed = zeroize::Zeroizing::new(random_32().map_err(gen_err)?);
                PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeyType::P256 => {
                // A random 32-byte string is a valid scalar with overwhelming probability;
                // retry the rare ones that are not.
                let mut found = None;
                for _ in 0..16 {
                    let bytes = zeroize::Zeroizing::new(random_32().map_err(gen_err)?);
                    if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes[..]) {
                        found = Some(k);
                        break;
                    }
                }
                PrivateKey::EcdsaP256(found.ok_or_else(|| gen_err("no valid scalar".into()))?)
            }
            KeyType::Rsa3072 => {
                let mut rng = getrandom::SysRng;
                let k = rsa::PrivateKey::new(&mut rng, 3072).map_err(|e| gen_err(e.to_string()))?;
                PrivateKey::Rsa(Box::new(k))
            }
        };
        Ok(DeviceKey { key })
    }

    /// Loads the key at `path`, or generates one of `kind` and writes it there (atomically,
    /// mode 0600) when the file does not exist. Returns the key and whether it was created.
    /// An existing but unreadable or unparsable key is an error, never replaced: replacing
    /// it would make the device a new, pending device on the server.
    pub fn load_or_generate(path: &Path, kind: KeyType) -> Result<(Self, bool), KeyError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(kind)?;
                key.write_atomic(path)?;
                tracing::info!(path = %path.display(), kind = kind.name(), "generated a new device key");
                Ok((key, true))
            }
            Err(source) => Err(KeyError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes the key as PEM, atomically and with mode 0600 ([`crate::fsutil::write_atomic`]):
    /// a crash leaves either no key file or a complete one.
    pub fn write_atomic(&self, path: &Path) -> Result<(), KeyError> {
        let pem = self.key.to_pem()?;
        crate::fsutil::write_atomic(path, pem.as_bytes(), 0o600).map_err(|source| KeyError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn kind(&self) -> &'static str {
        self.key.kind()
    }

    /// SPKI `PUBLIC KEY` PEM, the `pubkey` of an auth request.
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        Ok(self.key.public_key_pem()?)
    }

    /// The signature of an auth request body, exactly as the server verifies it: RSA
    /// PKCS#1 v1.5 over SHA-256; ECDSA P-256 over SHA-256 as ASN.1 DER; Ed25519 over the raw
    /// bytes. `body` must be the exact bytes sent.
    pub fn sign(&self, body: &[u8]) -> Result<Vec<u8>, KeyError> {
        use p256::ecdsa::signature::Signer as _;
        let sign_err = |e: p256::ecdsa::Error| KeyError::Sign {
            kind: self.kind(),
            reason: e.to_string(),
        };
        match &self.key {
            PrivateKey::Rsa(k) => {
                let sk = rsa::pkcs1v15::SigningKey::<Sha256>::new(k.as_ref().clone());
                let sig: rsa::pkcs1v15::Signature = sk.try_sign(body).map_err(sign_err)?;
                Ok(Box::<[u8]>::from(sig).into_vec())
            }
            PrivateKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(body).map_err(sign_err)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::Ed25519(k) => {
                let sig: ed25519_dalek::Signature = k.try_sign(body).map_err(sign_err)?;
                Ok(sig.to_bytes().to_vec())
            }
        }
    }

    /// [`sign`](Self::sign), base64 (standard alphabet, padded): the `X-MEN-Signature` value.
    pub fn sign_header(&self, body: &[u8]) -> Result<String, KeyError> {
        Ok(base64::engine::general_purpose::STANDARD.encode(self.sign(body)?))
    }

    /// The parsed key, for callers that sign other things (artifacts).
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlog::logged;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_key_readable_by_others_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mender-agent.pem");
        DeviceKey::generate(KeyType::Ed25519)
            .unwrap()
            .write_atomic(&path)
            .unwrap();

        let (key, log) = logged(|| DeviceKey::load(&path));
        key.unwrap();
        assert!(!log.contains("WARN"), "0600 is fine: {log}");

        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let (key, log) = logged(|| DeviceKey::load(&path));
            key.unwrap();
            assert!(log.contains("WARN"), "{mode:o}: {log}");
            assert!(log.contains(&path.display().to_string()), "{log}");
            assert!(log.contains(&format!("0{mode:o}")), "{mode:o}: {log}");
        }
        // load_or_generate loads through the same check.
        let (key, log) = logged(|| DeviceKey::load_or_generate(&path, KeyType::Ed25519));
        assert!(!key.unwrap().1);
        assert!(log.contains("WARN"), "{log}");
    }
}
