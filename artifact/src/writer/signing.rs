//! `SigningKey`: the private key that signs the manifest, loaded from PEM.

use std::path::Path;

use p256::ecdsa::signature::Signer as _;
use sha2::Sha256;

use super::WriteError;
use crate::private_key::{PrivateKey, PrivateKeyError};
use crate::VerifyKey;

/// A private key that signs the manifest: RSA (PKCS#1 v1.5, SHA-256) or ECDSA P-256
/// (SHA-256, raw 64-byte r||s), the two kinds mender-artifact signs with.
#[derive(Clone)]
pub enum SigningKey {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kind())
    }
}

/// A signing key file larger than this is not a PEM private key.
const MAX_KEY_FILE: u64 = 64 * 1024;

impl SigningKey {
    /// Parses a PEM private key (see [`PrivateKey::from_pem`]); RSA and ECDSA P-256 only.
    /// `label` names the key in errors.
    pub fn from_pem(pem: &str, label: &str) -> Result<Self, WriteError> {
        let key = PrivateKey::from_pem(pem, label).map_err(|e| WriteError::Key {
            label: label.to_string(),
            reason: match e {
                PrivateKeyError::Parse { reason, .. } => reason,
                other => other.to_string(),
            },
        })?;
        match key {
            PrivateKey::Rsa(k) => Ok(SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(
                *k,
            )))),
            PrivateKey::EcdsaP256(k) => Ok(SigningKey::EcdsaP256(k)),
            PrivateKey::Ed25519(_) => Err(WriteError::Key {
                label: label.to_string(),
                reason: "Ed25519 keys cannot sign artifacts (mender-artifact and the Mender \
                         clients verify RSA and ECDSA P-256 only)"
                    .to_string(),
            }),
        }
    }

    /// Reads and parses a PEM private key file.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Self, WriteError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let key_err = |e: std::io::Error| WriteError::Key {
            label: label.clone(),
            reason: e.to_string(),
        };
        // The private key is read into one buffer of its size, zeroized on drop.
        let owned = path.to_path_buf();
        let data = tokio::task::spawn_blocking(move || {
            std::fs::File::open(&owned)
                .and_then(|f| crate::private_key::read_secret(f, MAX_KEY_FILE))
        })
        .await
        .map_err(|e| key_err(std::io::Error::other(e)))?
        .map_err(key_err)?;
        let text = std::str::from_utf8(&data).map_err(|_| WriteError::Key {
            label: label.clone(),
            reason: "not PEM text".into(),
        })?;
        Self::from_pem(text, &label)
    }

    /// `RSA` or `ECDSA P-256`, as [`VerifyKey::kind`] names them.
    pub fn kind(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RSA",
            SigningKey::EcdsaP256(_) => "ECDSA P-256",
        }
    }

    /// The raw signature of `message` as `manifest.sig` carries it (before base64).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, WriteError> {
        match self {
            SigningKey::Rsa(k) => {
                let sig: rsa::pkcs1v15::Signature = k
                    .try_sign(message)
                    .map_err(|e| WriteError::Sign(format!("RSA: {e}")))?;
                Ok(Box::<[u8]>::from(sig).into_vec())
            }
            SigningKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| WriteError::Sign(format!("ECDSA: {e}")))?;
                Ok(sig.to_bytes().to_vec())
            }
        }
    }

    /// The public half as SPKI `PUBLIC KEY` PEM (what `mender-artifact read -k` and devices
    /// take).
    pub fn public_key_pem(&self) -> Result<String, WriteError> {
        use p256::pkcs8::EncodePublicKey as _;
        let pem = match self {
            SigningKey::Rsa(k) => {
                use rsa::signature::Keypair as _;
                rsa::pkcs8::EncodePublicKey::to_public_key_pem(
                    k.verifying_key().as_ref(),
                    rsa::pkcs8::LineEnding::LF,
                )
            }
            SigningKey::EcdsaP256(k) => k
                .verifying_key()
                .to_public_key_pem(p256::pkcs8::LineEnding::LF),
        };
        pem.map_err(|e| WriteError::Key {
            label: self.kind().into(),
            reason: format!("encoding the public key: {e}"),
        })
    }

    /// The matching verify key, for the reader.
    pub fn verify_key(&self, label: &str) -> VerifyKey {
        match self {
            SigningKey::Rsa(k) => {
                use rsa::signature::Keypair as _;
                VerifyKey::Rsa {
                    key: k.verifying_key().as_ref().clone(),
                    label: label.to_string(),
                }
            }
            SigningKey::EcdsaP256(k) => VerifyKey::EcdsaP256 {
                key: *k.verifying_key(),
                label: label.to_string(),
            },
        }
    }
}
