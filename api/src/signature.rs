//! Verifying `X-MEN-Signature` as the current server does (PROTOCOL.md §1.2), with a detailed
//! reason when it fails — the debugging aid the real server does not give.
//!
//! | key | signed data | encoding |
//! |---|---|---|
//! | RSA | SHA-256 of the raw body | PKCS#1 v1.5 |
//! | ECDSA P-256 | SHA-256 of the raw body | ASN.1 DER only (raw r‖s is refused) |
//! | Ed25519 | the raw body itself | 64 bytes |
//!
//! The public key must be a SubjectPublicKeyInfo `PUBLIC KEY` PEM; PKCS#1 `RSA PUBLIC KEY`
//! is refused (the server answers 400).
//!
//! Shared by the simulator (which answers a failed check with these texts) and the
//! device's `mender-bridge doctor` (which checks its own signed request before sending it).

use base64::Engine;
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

/// A device's public key, as submitted in `pubkey`.
#[derive(Debug, Clone)]
pub enum DevicePublicKey {
    Rsa(rsa::PublicKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// `pubkey` is not acceptable (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("pubkey: PKCS#1 'RSA PUBLIC KEY' PEM is not accepted; send a SubjectPublicKeyInfo 'PUBLIC KEY' PEM")]
    Pkcs1,
    #[error("pubkey: not a PEM 'PUBLIC KEY' block")]
    NotPem,
    #[error("pubkey: not an RSA, ECDSA P-256 or Ed25519 SubjectPublicKeyInfo key")]
    Unsupported,
}

/// The signature did not verify (401); the text says why, with the facts needed to find
/// the client's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed: {reason} (key: {key_type}; body: {body_len} bytes, sha256 {body_sha256}; signature: {sig_len} bytes{hint})")]
pub struct SignatureError {
    pub reason: String,
    pub key_type: String,
    pub body_len: usize,
    pub body_sha256: String,
    pub sig_len: usize,
    /// Empty, or `"; hint: ..."`.
    pub hint: String,
}

impl DevicePublicKey {
    /// Parses `pubkey` as the server does.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let trimmed = pem.trim();
        if trimmed.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            return Err(KeyError::Pkcs1);
        }
        if !trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(KeyError::NotPem);
        }
        if let Ok(k) = rsa::PublicKey::from_public_key_pem(trimmed) {
            return Ok(DevicePublicKey::Rsa(k));
        }
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(trimmed) {
            return Ok(DevicePublicKey::EcdsaP256(k));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(trimmed) {
            return Ok(DevicePublicKey::Ed25519(k));
        }
        Err(KeyError::Unsupported)
    }

    /// `RSA-3072`, `ECDSA P-256`, `Ed25519`.
    pub fn kind(&self) -> String {
        match self {
            DevicePublicKey::Rsa(k) => format!("RSA-{}", k.size() * 8),
            DevicePublicKey::EcdsaP256(_) => "ECDSA P-256".into(),
            DevicePublicKey::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// The key re-serialised as SPKI PEM (LF line endings), so that keys differing only in
    /// line wrapping compare equal, as on the server.
    pub fn canonical_pem(&self) -> String {
        let pem = match self {
            DevicePublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            DevicePublicKey::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            DevicePublicKey::Ed25519(k) => {
                ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(k, LineEnding::LF)
            }
        };
        pem.unwrap_or_default()
    }

    /// Verifies `sig_b64` (the header value) over the raw `body`.
    pub fn verify(&self, body: &[u8], sig_b64: &str) -> Result<(), SignatureError> {
        let fail = |reason: String, sig_len: usize, hint: String| SignatureError {
            reason,
            key_type: self.kind(),
            body_len: body.len(),
            body_sha256: hex::encode(Sha256::digest(body)),
            sig_len,
            hint,
        };
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig_b64.trim())
            .map_err(|e| {
                fail(
                    format!("X-MEN-Signature is not standard padded base64 ({e})"),
                    0,
                    String::new(),
                )
            })?;
        if self.verifies(body, &sig) {
            return Ok(());
        }
        let reason = match self {
            DevicePublicKey::Rsa(k) if sig.len() != k.size() => format!(
                "an RSA PKCS#1 v1.5 signature of this key is {} bytes",
                k.size()
            ),
            DevicePublicKey::Rsa(_) => {
                "RSA PKCS#1 v1.5 over SHA-256 of the raw body does not match".into()
            }
            DevicePublicKey::EcdsaP256(_) if p256::ecdsa::Signature::from_der(&sig).is_err() => {
                if sig.len() == 64 {
                    "64-byte raw r||s signature; the server accepts only ASN.1 DER \
                     SEQUENCE{r, s} for ECDSA"
                        .into()
                } else {
                    "not an ASN.1 DER ECDSA signature".into()
                }
            }
            DevicePublicKey::EcdsaP256(_) => {
                "ECDSA P-256 over SHA-256 of the raw body does not match".into()
            }
            DevicePublicKey::Ed25519(_) if sig.len() != 64 => {
                "an Ed25519 signature is 64 bytes".into()
            }
            DevicePublicKey::Ed25519(_) => {
                "Ed25519 over the raw body (no pre-hash) does not match".into()
            }
        };
        Err(fail(reason, sig.len(), self.hint(body, &sig)))
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            DevicePublicKey::Rsa(k) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone());
                rsa::pkcs1v15::Signature::try_from(sig)
                    .map(|s| vk.verify(message, &s).is_ok())
                    .unwrap_or(false)
            }
            DevicePublicKey::EcdsaP256(k) => p256::ecdsa::Signature::from_der(sig)
                .map(|s| k.verify(message, &s).is_ok())
                .unwrap_or(false),
            DevicePublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(sig)
                .map(|s| k.verify(message, &s).is_ok())
                .unwrap_or(false),
        }
    }

    /// Looks for the usual client mistakes and names the one that explains the signature.
    fn hint(&self, body: &[u8], sig: &[u8]) -> String {
        if let DevicePublicKey::EcdsaP256(k) = self {
            if sig.len() == 64 {
                if let Ok(s) = p256::ecdsa::Signature::from_slice(sig) {
                    if k.verify(body, &s).is_ok() {
                        return "; hint: it is a valid raw r||s signature of this body: \
                                encode it as DER"
                            .into();
                    }
                }
            }
        }
        if let Some(stripped) = body.strip_suffix(b"\n") {
            if self.verifies(stripped, sig) {
                return "; hint: it verifies over the body without its trailing newline: \
                        sign exactly the bytes you send"
                    .into();
            }
        } else {
            let mut with_lf = body.to_vec();
            with_lf.push(b'\n');
            if self.verifies(&with_lf, sig) {
                return "; hint: it verifies over the body plus a trailing newline: sign \
                        exactly the bytes you send"
                    .into();
            }
        }
        if let DevicePublicKey::Ed25519(_) = self {
            if self.verifies(&Sha256::digest(body), sig) {
                return "; hint: it signs the SHA-256 of the body; Ed25519 signs the raw body"
                    .into();
            }
        }
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_and_garbage_keys_are_refused() {
        assert_eq!(
            DevicePublicKey::from_pem(
                "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----\n"
            )
            .unwrap_err(),
            KeyError::Pkcs1
        );
        assert_eq!(
            DevicePublicKey::from_pem("hello").unwrap_err(),
            KeyError::NotPem
        );
        assert_eq!(
            DevicePublicKey::from_pem(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .unwrap_err(),
            KeyError::Unsupported
        );
    }

    #[test]
    fn ed25519_signs_the_raw_body() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let pem = sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let key = DevicePublicKey::from_pem(&pem).unwrap();
        assert_eq!(key.kind(), "Ed25519");
        let body = b"{\"id_data\":\"{}\"}\n";
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(key.verify(body, &b64(&sk.sign(body).to_bytes())).is_ok());
        let e = key
            .verify(body, &b64(&sk.sign(&body[..body.len() - 1]).to_bytes()))
            .unwrap_err();
        assert!(
            e.to_string().contains("without its trailing newline"),
            "{e}"
        );
        let e = key
            .verify(body, &b64(&sk.sign(&Sha256::digest(body)).to_bytes()))
            .unwrap_err();
        assert!(e.to_string().contains("SHA-256 of the body"), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("body: {} bytes", body.len())),
            "{e}"
        );
        let e = key.verify(body, "!!").unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
    }
}
