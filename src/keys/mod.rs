//! Device keys: the private key a device authenticates to the Mender server with.
//!
//! Loads what existing devices have (the official client's `mender-agent.pem`: RSA PKCS#1;
//! Mender 5's Ed25519 PKCS#8; ECDSA P-256 SEC1 or PKCS#8), so a device keeps its identity,
//! and generates one when none exists (Ed25519 by default, as Mender 5 does). Signatures
//! follow the server's rules exactly (PROTOCOL.md §1.2): RSA PKCS#1 v1.5 over SHA-256,
//! ECDSA P-256 over SHA-256 as ASN.1 DER, Ed25519 over the raw body.
//!
//! Invariant: key material never reaches a log; `Debug` shows only the key's kind.

mod device;

pub use device::{DeviceKey, KeyType};
/// PEM parsing lives with the artifact writer's signing key, which parses the same keys.
pub use mender_artifact::private_key::{pem_block_der, pem_blocks, PemBlockError, PrivateKey};

/// A device key could not be read, parsed, generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading key {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key {label}: {reason}")]
    Parse { label: String, reason: String },
    #[error("generating a {kind} key: {reason}")]
    Generate { kind: &'static str, reason: String },
    #[error("encoding a {kind} key: {reason}")]
    Encode { kind: &'static str, reason: String },
    #[error("writing key {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing with the {kind} key: {reason}")]
    Sign { kind: &'static str, reason: String },
}

/// The PEM parse and encode errors keep their texts and variants.
impl From<mender_artifact::private_key::PrivateKeyError> for KeyError {
    fn from(e: mender_artifact::private_key::PrivateKeyError) -> Self {
        use mender_artifact::private_key::PrivateKeyError as E;
        match e {
            E::Parse { label, reason } => KeyError::Parse { label, reason },
            E::Encode { kind, reason } => KeyError::Encode { kind, reason },
        }
    }
}
