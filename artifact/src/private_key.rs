//! Private keys: PEM private keys of the three kinds Mender devices and tools use (RSA: PKCS#1
//! `RSA PRIVATE KEY` or PKCS#8; ECDSA P-256: SEC1 `EC PRIVATE KEY` or PKCS#8; Ed25519:
//! PKCS#8), and the read of a key file into a zeroized buffer ([`read_secret`]). Shared by the
//! device key (mender-bridge's `keys`), its mTLS key, and the writer's signing key.
//!
//! Invariant: key material never reaches a log or an error text (`Debug` shows the kind
//! only), and no copy of a key's bytes is left in freed memory by reading or decoding it.

use std::io::Read as _;

/// A private key could not be parsed or encoded. The texts name the key (`label`) or its
/// kind, never its bytes.
#[derive(Debug, thiserror::Error)]
pub enum PrivateKeyError {
    #[error("key {label}: {reason}")]
    Parse { label: String, reason: String },
    #[error("encoding a {kind} key: {reason}")]
    Encode { kind: &'static str, reason: String },
}

/// A parsed private key. Never printed: `Debug` shows only the kind.
#[derive(Clone)]
pub enum PrivateKey {
    Rsa(Box<rsa::PrivateKey>),
    EcdsaP256(p256::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.kind())
    }
}

impl PrivateKey {
    pub fn kind(&self) -> &'static str {
        match self {
            PrivateKey::Rsa(_) => "RSA",
            PrivateKey::EcdsaP256(_) => "ECDSA P-256",
            PrivateKey::Ed25519(_) => "Ed25519",
        }
    }

    /// Parses the first private key block of `pem`. Other blocks (such as the
    /// `EC PARAMETERS` that `openssl ecparam -genkey` writes first) are skipped; encrypted
    /// keys are refused. `label` names the key in errors.
    ///
    /// Invariant: each block's DER is decoded here ([`pem_block_der`]: fixed-size buffers,
    /// zeroized on drop) and parsed from there, so no copy of the key's bytes is left in
    /// freed memory by the PEM decoding (the key crates' own PEM readers leave some).
    pub fn from_pem(pem: &str, label: &str) -> Result<Self, PrivateKeyError> {
        use p256::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let mut saw_encrypted = false;
        for (kind, block) in pem_blocks(pem) {
            if !matches!(kind, "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY") {
                saw_encrypted |= kind == "ENCRYPTED PRIVATE KEY";
                continue;
            }
            let der = match pem_block_der(block) {
                Ok(der) => der,
                Err(e) => {
                    // A legacy encrypted key carries `Proc-Type: 4,ENCRYPTED` headers.
                    saw_encrypted |= e == PemBlockError::Headers;
                    continue;
                }
            };
            let key = match kind {
                "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(&der)
                    .ok()
                    .map(|k| PrivateKey::Rsa(Box::new(k))),
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                    .ok()
                    .map(|k| PrivateKey::EcdsaP256(k.into())),
                _ => rsa::PrivateKey::from_pkcs8_der(&der)
                    .ok()
                    .map(|k| PrivateKey::Rsa(Box::new(k)))
                    .or_else(|| {
                        p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                            .ok()
                            .map(PrivateKey::EcdsaP256)
                    })
                    .or_else(|| {
                        ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                            .ok()
                            .map(|k| PrivateKey::Ed25519(Box::new(k)))
                    }),
            };
            if let Some(key) = key {
                return Ok(key);
            }
        }
        let reason = if saw_encrypted {
            "encrypted private keys are not supported"
        } else {
            "no RSA, ECDSA P-256 or Ed25519 private key in PEM form \
             (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)"
        };
        Err(PrivateKeyError::Parse {
            label: label.to_string(),
            reason: reason.to_string(),
        })
    }

    /// The key as PEM: PKCS#1 for RSA (as the official client writes `mender-agent.pem`),
    /// PKCS#8 for the others. The text is secret: callers write it to a 0600 file only.
    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, PrivateKeyError> {
        use p256::pkcs8::EncodePrivateKey as _;
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let lf = rsa::pkcs8::LineEnding::LF;
        let pem = match self {
            PrivateKey::Rsa(k) => k.to_pkcs1_pem(lf).map_err(|e| e.to_string()),
            PrivateKey::EcdsaP256(k) => k.to_pkcs8_pem(lf).map_err(|e| e.to_string()),
            PrivateKey::Ed25519(k) => Ok(ed25519_pkcs8_v1_pem(k)),
        };
        pem.map(|p| zeroize::Zeroizing::new(p.as_str().to_string()))
            .map_err(|reason| PrivateKeyError::Encode {
                kind: self.kind(),
                reason,
            })
    }

    /// The public half as SPKI `PUBLIC KEY` PEM, the form the Mender server takes.
    pub fn public_key_pem(&self) -> Result<String, PrivateKeyError> {
        use p256::pkcs8::EncodePublicKey as _;
        let lf = rsa::pkcs8::LineEnding::LF;
        let pem = match self {
            PrivateKey::Rsa(k) => {
                rsa::pkcs8::EncodePublicKey::to_public_key_pem(k.as_ref().as_ref(), lf)
            }
            PrivateKey::EcdsaP256(k) => k.verifying_key().to_public_key_pem(lf),
            PrivateKey::Ed25519(k) => k.verifying_key().to_public_key_pem(lf),
        };
        pem.map_err(|e| PrivateKeyError::Encode {
            kind: self.kind(),
            reason: e.to_string(),
        })
    }
}

/// Ed25519 as PKCS#8 version 1 (RFC 8410: the seed only). ed25519-dalek writes version 2
/// (with the public key), which OpenSSL 3.0 — and so the official C++ client on Debian 12 —
/// cannot read.
fn ed25519_pkcs8_v1_pem(k: &ed25519_dalek::SigningKey) -> zeroize::Zeroizing<String> {
    use base64::Engine as _;
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = zeroize::Zeroizing::new(PREFIX.to_vec());
    der.extend_from_slice(k.as_bytes());
    let b64 = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*der));
    let mut pem = zeroize::Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    pem.push_str(&b64);
    pem.push_str("\n-----END PRIVATE KEY-----\n");
    pem
}

/// `(label, whole block)` for every `-----BEGIN <label>-----` ... `-----END <label>-----`.
pub fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block_end = start + end + end_marker.len();
        out.push((label, &rest[start..block_end]));
        rest = &rest[block_end..];
    }
    out
}

/// Why a PEM block's DER could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PemBlockError {
    /// RFC 1421 headers (`Proc-Type:`), as a legacy encrypted key has.
    #[error("PEM headers (an encrypted key?) are not supported")]
    Headers,
    #[error("bad base64 in the key block")]
    Base64,
}

/// The DER of one PEM block (`-----BEGIN ...` to `-----END ...-----`, as [`pem_blocks`]
/// yields it), for secret blocks: private keys.
///
/// Invariant: the base64 and the DER live in buffers allocated once, at their final size,
/// and zeroized on drop, so no copy of the key is left in freed memory.
pub fn pem_block_der(block: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, PemBlockError> {
    use base64::Engine as _;
    let mut lines = block.lines();
    lines.next(); // -----BEGIN ...-----
    let mut b64 = zeroize::Zeroizing::new(Vec::with_capacity(block.len()));
    for line in lines {
        let line = line.trim();
        if line.starts_with("-----END ") {
            break;
        }
        if line.contains(':') {
            return Err(PemBlockError::Headers);
        }
        b64.extend(line.bytes().filter(|b| !b.is_ascii_whitespace()));
    }
    let mut der = zeroize::Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(&b64[..], &mut der[..])
        .map_err(|_| PemBlockError::Base64)?;
    der.truncate(n);
    Ok(der)
}

/// Reads the open file `f`, a secret such as a private key, into one buffer zeroized on
/// drop. Errors do not name the file: the caller does.
///
/// Invariant: the buffer is allocated once, from the file's size, and never grows, so no
/// partial copy of the secret is left in freed memory (a growing `Vec` leaves one behind
/// at every reallocation). It has one byte more than the file: a file that grew while it
/// was read is an `InvalidData` error, so is a file larger than `limit` bytes or one that
/// is not a regular file.
pub fn read_secret(
    mut f: std::fs::File,
    limit: u64,
) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(invalid(format!("larger than {limit} bytes")));
    }
    let size = usize::try_from(meta.len())
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| invalid(format!("larger than {limit} bytes")))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; size]);
    let mut n = 0;
    loop {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(read) => {
                n += read;
                if n == size {
                    return Err(invalid("changed while being read".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Shortening keeps the allocation (and so the zeroizing of all of it on drop).
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_der_is_decoded_and_headers_or_bad_base64_refused() {
        let der = pem_block_der("-----BEGIN X-----\nAAEC\nAw==\n-----END X-----").unwrap();
        assert_eq!(&der[..], &[0, 1, 2, 3]);
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(pem_block_der(legacy).unwrap_err(), PemBlockError::Headers);
        let e = PrivateKey::from_pem(legacy, "k").unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
        let bad = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_block_der(bad).unwrap_err(), PemBlockError::Base64);
        let e = PrivateKey::from_pem(bad, "k").unwrap_err().to_string();
        assert!(e.contains("no RSA, ECDSA P-256 or Ed25519"), "{e}");
    }

    #[test]
    fn pem_blocks_skip_other_labels() {
        let text = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].0, "EC PRIVATE KEY");
        assert!(blocks[1].1.ends_with("-----END EC PRIVATE KEY-----"));
    }

    #[test]
    fn secrets_are_read_whole_into_a_buffer_of_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        std::fs::write(&p, b"secret").unwrap();
        let open = || std::fs::File::open(&p).unwrap();
        let data = read_secret(open(), 6).unwrap();
        assert_eq!(&data[..], b"secret");
        assert_eq!(data.capacity(), 7, "one allocation, one byte spare");
        let e = read_secret(open(), 5).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
        let d = std::fs::File::open(dir.path()).unwrap();
        let e = read_secret(d, 5).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::write(&p, b"").unwrap();
        assert!(read_secret(open(), 5).unwrap().is_empty());
    }
}
