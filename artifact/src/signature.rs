//! `manifest.sig`: verification of the signature over the exact bytes of `manifest`.
//!
//! Supported as mender-artifact writes them: RSA PKCS#1 v1.5 with SHA-256, and ECDSA P-256
//! with SHA-256 stored as raw 64-byte r||s; ASN.1 DER ECDSA signatures (HSM/KMS signers) are
//! accepted too. Keys are PEM: SPKI `PUBLIC KEY` (RSA or EC) or PKCS#1 `RSA PUBLIC KEY`.

use std::fmt;
use std::path::Path;

use base64::Engine;
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::Sha256;

/// A public key that may have signed an artifact's manifest.
#[derive(Clone)]
pub enum VerifyKey {
    Rsa {
        key: rsa::PublicKey,
        label: String,
    },
    EcdsaP256 {
        key: p256::ecdsa::VerifyingKey,
        label: String,
    },
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({} {})", self.kind(), self.label())
    }
}

/// A verify key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading verify key {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("verify key {label}: not a PEM RSA or ECDSA P-256 public key (SPKI 'PUBLIC KEY' or PKCS#1 'RSA PUBLIC KEY')")]
    Unsupported { label: String },
}

impl VerifyKey {
    /// Parses a PEM public key; `label` names it in messages (usually the file path).
    pub fn from_pem(pem: &str, label: &str) -> Result<Self, KeyError> {
        let label = label.to_string();
        if let Ok(key) = rsa::PublicKey::from_public_key_pem(pem) {
            return Ok(VerifyKey::Rsa { key, label });
        }
        if let Ok(key) = rsa::PublicKey::from_pkcs1_pem(pem) {
            return Ok(VerifyKey::Rsa { key, label });
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(VerifyKey::EcdsaP256 { key, label });
        }
        Err(KeyError::Unsupported { label })
    }

    /// Reads and parses a PEM public key file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let label = path.display().to_string();
        // A public key is small; refuse to read something that is clearly not one.
        let data = read_bounded(path, 64 * 1024).map_err(|source| KeyError::Read {
            path: label.clone(),
            source,
        })?;
        Self::from_pem(&String::from_utf8_lossy(&data), &label)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            VerifyKey::Rsa { .. } => "RSA",
            VerifyKey::EcdsaP256 { .. } => "ECDSA P-256",
        }
    }

    pub fn label(&self) -> &str {
        match self {
            VerifyKey::Rsa { label, .. } | VerifyKey::EcdsaP256 { label, .. } => label,
        }
    }

    /// True when `sig` (raw signature bytes) is a valid signature of `message` by this key.
    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifyKey::Rsa { key, .. } => {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
                rsa::pkcs1v15::Signature::try_from(sig)
                    .map(|s| vk.verify(message, &s).is_ok())
                    .unwrap_or(false)
            }
            VerifyKey::EcdsaP256 { key, .. } => {
                let parsed = if sig.len() == 64 {
                    p256::ecdsa::Signature::from_slice(sig)
                } else {
                    p256::ecdsa::Signature::from_der(sig)
                };
                parsed
                    .map(|s| key.verify(message, &s).is_ok())
                    .unwrap_or(false)
            }
        }
    }
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

/// What is known about an artifact's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// No `manifest.sig` (allowed only when no verify key is configured).
    Unsigned,
    /// Signed, but no key was configured, so nothing was checked.
    SignedUnverified,
    /// Verified with the key named by `key` (its label) of type `kind`.
    Verified { key: String, kind: &'static str },
}

impl SignatureStatus {
    /// What vouches for the artifact, for the deployment log; `warn`: nothing but the
    /// transport does.
    pub fn trust_note(&self) -> (bool, String) {
        match self {
            SignatureStatus::Verified { key, kind } => (
                false,
                format!("artifact signature verified ({kind} key {key})"),
            ),
            SignatureStatus::SignedUnverified => (
                true,
                "the artifact is signed, but no ArtifactVerifyKey is configured: its signature \
                 was not checked, and nothing but the connection to the server vouches for it"
                    .to_string(),
            ),
            SignatureStatus::Unsigned => (
                true,
                "the artifact is unsigned and no ArtifactVerifyKey is configured: nothing but \
                 the connection to the server vouches for it"
                    .to_string(),
            ),
        }
    }
}

/// Largest `manifest.sig` accepted: RSA-8192 is 1024 bytes, 1368 in base64.
pub const MAX_SIGNATURE_LEN: u64 = 4096;

/// Verifies `sig_b64` (the content of `manifest.sig`) over `manifest` with any of `keys`.
/// Trailing whitespace around the base64 text is tolerated.
pub fn verify_manifest(
    manifest: &[u8],
    sig_b64: &[u8],
    keys: &[VerifyKey],
) -> Result<SignatureStatus, String> {
    let text = std::str::from_utf8(sig_b64)
        .map_err(|_| "manifest.sig is not base64 text".to_string())?
        .trim();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("manifest.sig is not valid base64: {e}"))?;
    if keys.is_empty() {
        return Ok(SignatureStatus::SignedUnverified);
    }
    for key in keys {
        if key.verifies(manifest, &sig) {
            return Ok(SignatureStatus::Verified {
                key: key.label().to_string(),
                kind: key.kind(),
            });
        }
    }
    let tried: Vec<String> = keys
        .iter()
        .map(|k| format!("{} {}", k.kind(), k.label()))
        .collect();
    Err(format!(
        "manifest.sig ({} bytes) does not verify with any configured key (tried {})",
        sig.len(),
        tried.join(", ")
    ))
}
