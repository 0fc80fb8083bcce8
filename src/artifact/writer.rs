//! Writing Mender Artifacts, format v3, laid out as mender-artifact 3.9.0 lays them out
//! (PROTOCOL.md §5): an uncompressed POSIX ustar outer tar holding `version`, `manifest`,
//! `manifest.sig` (when signed), `header.tar[.gz|.xz|.zst]` and `data/0000.tar[.gz|.xz|.zst]`,
//! every member mode 0600, names without `./`, no record padding after the two end blocks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mender_bridge::artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
//! let spec = ArtifactSpec::rootfs("release-1", ["qemux86-64"]);
//! let image = PayloadFile::from_path("rootfs.ext4").await?;
//! let mut out = tokio::fs::File::create("release-1.mender").await?;
//! let summary = write_artifact(&mut out, &spec, vec![image], &WriteOptions::default()).await?;
//! println!("{} bytes", summary.size);
//! # Ok(()) }
//! ```
//!
//! # Where the payload digests come from
//!
//! The manifest, which precedes the data member, lists the SHA-256 of every payload file, and
//! the outer tar header of the data member states its (compressed) size. Both are known only
//! after the payload went through the compressor, so the writer works in one of two ways:
//!
//! - **Spooled** (any compression, or a file without a declared digest): the data tar is
//!   compressed into a [`Spool`] (a temporary file by default) while each file's SHA-256 is
//!   computed from the bytes that go into it. Only then is the first byte written to the
//!   output. A digest the caller declared ([`PayloadFile::with_sha256`]) is compared with
//!   the computed one before that, so a wrong declaration fails without any output.
//! - **Direct** ([`Compression::None`] and every file's digest declared): the data tar size is
//!   computed from the file sizes and the payload is streamed straight to the output, hashed
//!   on the way. A declared digest that does not match the bytes read fails with
//!   [`WriteError::DigestMismatch`] *after* those bytes were written.
//!
//! Either way, the invariant is: **every digest in the manifest is the SHA-256 of exactly the
//! bytes that were put in the data tar**; otherwise the write fails. After any error, what
//! was written to the output is not a valid artifact and must be discarded.
//! [`PayloadFile::hash_path`] computes a digest in a first pass over a file, for callers who
//! want the direct path.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use async_compression::tokio::write::{GzipEncoder, XzEncoder, ZstdEncoder};
use base64::Engine;
use bytes::Bytes;
use p256::ecdsa::signature::Signer as _;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::header::{ArtifactDepends, ArtifactHeader, PayloadHeader, StateScript};
use super::manifest::Digest;
use super::signature::VerifyKey;
use super::{Compression, CHUNK};

/// The exact bytes of the `version` member.
pub const VERSION_BYTES: &[u8] = br#"{"format":"mender","version":3}"#;

/// Largest size and mtime a ustar header field holds (11 octal digits); beyond it the
/// value goes into a PAX extended header, as Go's archive/tar does.
const USTAR_MAX: u64 = 0o77777777777;
const BLOCK: u64 = 512;

/// Why an artifact could not be written. After any of these, the bytes already written to
/// the output are not a valid artifact.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The artifact description breaks a rule of the format (found before any I/O).
    #[error("invalid artifact description: {0}")]
    InvalidSpec(String),
    /// A payload file's name or metadata breaks a rule of the format.
    #[error("payload file '{name}': {reason}")]
    InvalidFile { name: String, reason: String },
    /// Reading a payload file failed.
    #[error("reading payload file '{name}': {source}")]
    ReadPayload {
        name: String,
        #[source]
        source: io::Error,
    },
    /// A payload reader ended before its declared size.
    #[error("payload file '{name}' ended after {read} of its declared {size} bytes")]
    ShortPayload { name: String, size: u64, read: u64 },
    /// A payload reader had more bytes than its declared size.
    #[error("payload file '{name}' has more than its declared {size} bytes")]
    LongPayload { name: String, size: u64 },
    /// The bytes of a payload file do not have the SHA-256 the caller declared.
    #[error("payload file '{name}': declared SHA-256 {declared}, content is {actual}")]
    DigestMismatch {
        name: String,
        declared: String,
        actual: String,
    },
    /// The signing key could not be loaded.
    #[error("signing key {label}: {reason}")]
    Key { label: String, reason: String },
    /// Signing the manifest failed.
    #[error("signing the manifest: {0}")]
    Sign(String),
    /// Compressing a member failed.
    #[error("compressing {member}: {source}")]
    Compress {
        member: String,
        #[source]
        source: io::Error,
    },
    /// The spool (temporary file) could not be created, written or read back.
    #[error("spooling the data member ({context}): {source}")]
    Spool {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Writing to the output failed.
    #[error("writing the artifact: {0}")]
    Write(#[source] io::Error),
}

/// What the artifact's one payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadKind {
    /// `rootfs-image`: exactly one file, the filesystem image.
    RootfsImage,
    /// An update module's payload (`module-image -T <type_name>`): zero or more files.
    Module { type_name: String },
    /// `bootstrap-artifact`: payload type `null`, no files, no meta-data, no default provides.
    Bootstrap,
}

/// The default "software version" provide and its clears, as mender-artifact's
/// `--software-filesystem`, `--software-name` and `--software-version` shape them:
/// the key is `<filesystem>.<name>.version` (`<filesystem>.version` for a rootfs image
/// without a name); the value is `version` or the artifact name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftwareVersion {
    /// Defaults to `rootfs-image`.
    pub filesystem: Option<String>,
    /// Defaults to none for rootfs images and to the type name for module images.
    pub name: Option<String>,
    /// Defaults to the artifact name.
    pub version: Option<String>,
}

/// A state script to ship in the header (`scripts/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// `<State>_<Enter|Leave|Error>_<NN>[_<description>]`.
    pub name: String,
    pub content: Bytes,
    /// Permission bits written in the tar (the client makes scripts executable anyway).
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
}

impl ScriptFile {
    /// A script with mode 0755 and mtime 0.
    pub fn new(name: impl Into<String>, content: impl Into<Bytes>) -> Self {
        ScriptFile {
            name: name.into(),
            content: content.into(),
            mode: 0o755,
            mtime: 0,
        }
    }
}

/// What the artifact says: the `header-info`, `type-info`, `meta-data` and scripts.
/// Build one with [`ArtifactSpec::rootfs`], [`ArtifactSpec::module`] or
/// [`ArtifactSpec::bootstrap`], then adjust the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactSpec {
    /// `artifact_provides.artifact_name`; not empty.
    pub name: String,
    /// `artifact_depends.device_type`; at least one, none empty.
    pub device_types: Vec<String>,
    /// `artifact_provides.artifact_group` (`--provides-group`); not empty when set.
    pub group: Option<String>,
    /// `artifact_depends.artifact_name` (`--artifact-name-depends`).
    pub depends_artifact_names: Vec<String>,
    /// `artifact_depends.artifact_group` (`--depends-groups`).
    pub depends_groups: Vec<String>,
    pub payload: PayloadKind,
    /// Extra `type-info` provides (`--provides`); they win over the default ones.
    pub provides: BTreeMap<String, String>,
    /// `type-info` depends (`--depends`); a one-value list is written as a plain string,
    /// as mender-artifact writes it.
    pub depends: BTreeMap<String, Vec<String>>,
    /// Extra `clears_artifact_provides` (`--clears-provides`), written before the defaults.
    pub clears_provides: Vec<String>,
    /// The default software-version provide (not for bootstrap artifacts).
    pub software: SoftwareVersion,
    /// `false` = `--no-default-software-version`.
    pub default_software_version: bool,
    /// `false` = `--no-default-clears-provides`.
    pub default_clears_provides: bool,
    /// Rootfs images: `rootfs-image.checksum` = the image's SHA-256; `false` =
    /// `--no-checksum-provide`.
    pub checksum_provide: bool,
    /// `headers/0000/meta-data` (`--meta-data`): values must be strings, numbers or lists
    /// of them. Written as a 0-byte file when `None` for rootfs images, absent otherwise.
    pub meta_data: Option<Map<String, Value>>,
    /// State scripts, in the order given.
    pub scripts: Vec<ScriptFile>,
}

impl ArtifactSpec {
    fn new<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
        payload: PayloadKind,
    ) -> Self {
        ArtifactSpec {
            name: name.into(),
            device_types: device_types.into_iter().map(Into::into).collect(),
            group: None,
            depends_artifact_names: Vec::new(),
            depends_groups: Vec::new(),
            payload,
            provides: BTreeMap::new(),
            depends: BTreeMap::new(),
            clears_provides: Vec::new(),
            software: SoftwareVersion::default(),
            default_software_version: true,
            default_clears_provides: true,
            checksum_provide: true,
            meta_data: None,
            scripts: Vec::new(),
        }
    }

    /// `mender-artifact write rootfs-image -n <name> -t <device type>...`.
    pub fn rootfs<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(name, device_types, PayloadKind::RootfsImage)
    }

    /// `mender-artifact write module-image -T <type_name> -n <name> -t <device type>...`.
    pub fn module<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
        type_name: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            device_types,
            PayloadKind::Module {
                type_name: type_name.into(),
            },
        )
    }

    /// `mender-artifact write bootstrap-artifact -n <name> -t <device type>...`.
    pub fn bootstrap<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(name, device_types, PayloadKind::Bootstrap)
    }
}

/// Compression level of the header and data members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Level {
    Fastest,
    #[default]
    Default,
    Best,
}

impl Level {
    fn codec(self) -> async_compression::Level {
        match self {
            Level::Fastest => async_compression::Level::Fastest,
            Level::Default => async_compression::Level::Default,
            Level::Best => async_compression::Level::Best,
        }
    }
}

/// Where the compressed data tar is kept until its size is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spool {
    /// In memory: the whole compressed payload is held at once.
    Memory,
    /// In an anonymous temporary file created in this directory (removed from the directory
    /// as soon as it is opened on Unix, when dropped elsewhere).
    Dir(PathBuf),
}

impl Default for Spool {
    fn default() -> Self {
        Spool::Dir(std::env::temp_dir())
    }
}

/// How to write. The default: gzip at the default level, unsigned, spooled to a file in the
/// system's temporary directory, header and data members stamped with the current time.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Compression of the header and data members (gzip by default, as mender-artifact).
    pub compression: Compression,
    pub level: Level,
    /// Signs the manifest into `manifest.sig` when set.
    pub signing_key: Option<SigningKey>,
    pub spool: Spool,
    /// Modification time of the `header.tar*` and `data/0000.tar*` members (the first three
    /// members have 0, as mender-artifact writes them). `None` = now.
    pub mtime: Option<u64>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Gzip,
            level: Level::Default,
            signing_key: None,
            spool: Spool::default(),
            mtime: None,
        }
    }
}

/// One payload file: a name at the root of the data tar, and a reader that yields exactly
/// `size` bytes.
pub struct PayloadFile {
    name: String,
    size: u64,
    mode: u32,
    mtime: u64,
    sha256: Option<Digest>,
    reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for PayloadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadFile")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("mtime", &self.mtime)
            .field("sha256", &self.sha256.map(hex::encode))
            .finish_non_exhaustive()
    }
}

impl PayloadFile {
    /// A file named `name` whose content is the first `size` bytes of `reader`, which must
    /// then be at its end ([`WriteError::ShortPayload`] / [`WriteError::LongPayload`]
    /// otherwise). Mode 0644, mtime 0.
    pub fn new(
        name: impl Into<String>,
        size: u64,
        reader: impl AsyncRead + Send + 'static,
    ) -> Self {
        PayloadFile {
            name: name.into(),
            size,
            mode: 0o644,
            mtime: 0,
            sha256: None,
            reader: Box::pin(reader),
        }
    }

    /// Opens a file on disk: name, size, permission bits and mtime (rounded to the nearest
    /// second, as mender-artifact writes it) from the file.
    pub async fn from_path(path: impl AsRef<Path>) -> Result<Self, WriteError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let read_err = |source| WriteError::ReadPayload {
            name: label.clone(),
            source,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| WriteError::InvalidFile {
                name: label.clone(),
                reason: "the path has no UTF-8 file name".into(),
            })?
            .to_string();
        let file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let meta = file.metadata().await.map_err(read_err)?;
        if !meta.is_file() {
            return Err(WriteError::InvalidFile {
                name: label,
                reason: "not a regular file".into(),
            });
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            // Rounded to the nearest second, as Go's archive/tar does for USTAR headers.
            .map_or(0, |d| {
                d.as_secs() + u64::from(d.subsec_nanos() >= 500_000_000)
            });
        #[cfg(unix)]
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        #[cfg(not(unix))]
        let mode = 0o644;
        Ok(PayloadFile::new(name, meta.len(), file)
            .with_mode(mode)
            .with_mtime(mtime))
    }

    /// SHA-256 of a file's content: the first pass for callers who declare digests.
    pub async fn hash_path(path: impl AsRef<Path>) -> Result<Digest, WriteError> {
        let path = path.as_ref();
        let read_err = |source| WriteError::ReadPayload {
            name: path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(read_err)?;
            if n == 0 {
                return Ok(hasher.finalize().into());
            }
            hasher.update(&buf[..n]);
        }
    }

    /// Declares the content's SHA-256. It is checked against the bytes read; see the module
    /// documentation for when.
    pub fn with_sha256(mut self, digest: Digest) -> Self {
        self.sha256 = Some(digest);
        self
    }

    /// Permission bits in the data tar (masked to 0o7777).
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// Modification time in the data tar, seconds since the epoch.
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

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

impl SigningKey {
    /// Parses a PEM private key: `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1) or
    /// `PRIVATE KEY` (PKCS#8, RSA or P-256). Other blocks in the text (such as the
    /// `EC PARAMETERS` that `openssl ecparam -genkey` writes first) are skipped. `label`
    /// names the key in errors.
    pub fn from_pem(pem: &str, label: &str) -> Result<Self, WriteError> {
        use p256::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let err = |reason: &str| WriteError::Key {
            label: label.to_string(),
            reason: reason.to_string(),
        };
        let mut saw_encrypted = false;
        for (kind, block) in pem_blocks(pem) {
            let key = match kind {
                "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_pem(block)
                    .ok()
                    .map(|k| SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k)))),
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(block)
                    .ok()
                    .map(|k| SigningKey::EcdsaP256(k.into())),
                "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_pem(block)
                    .ok()
                    .map(|k| SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
                    .or_else(|| {
                        p256::ecdsa::SigningKey::from_pkcs8_pem(block)
                            .ok()
                            .map(SigningKey::EcdsaP256)
                    }),
                "ENCRYPTED PRIVATE KEY" => {
                    saw_encrypted = true;
                    None
                }
                _ => None,
            };
            if let Some(key) = key {
                return Ok(key);
            }
        }
        if saw_encrypted {
            return Err(err("encrypted private keys are not supported"));
        }
        Err(err(
            "no RSA or ECDSA P-256 private key in PEM form (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)",
        ))
    }

    /// Reads and parses a PEM private key file.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Self, WriteError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let data = tokio::fs::read(path).await.map_err(|e| WriteError::Key {
            label: label.clone(),
            reason: e.to_string(),
        })?;
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

/// `(label, whole block)` for every `-----BEGIN <label>-----` ... `-----END <label>-----`.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
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

/// A member of the written outer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenMember {
    pub name: String,
    /// Offset of the member's first content byte in the artifact (after its tar header).
    pub offset: u64,
    pub size: u64,
}

/// A payload file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub name: String,
    pub size: u64,
    pub sha256: Digest,
}

/// What [`write_artifact`] wrote.
#[derive(Debug, Clone)]
pub struct WriteSummary {
    /// Bytes written to the output.
    pub size: u64,
    /// The outer members, in order.
    pub members: Vec<WrittenMember>,
    pub files: Vec<WrittenFile>,
    /// The exact bytes of `manifest`.
    pub manifest: Vec<u8>,
    /// The header as [`ArtifactReader`](super::ArtifactReader) reports it for this artifact.
    pub header: ArtifactHeader,
    /// Whether the data went through the spool (see the module documentation).
    pub spooled: bool,
}

/// Writes a format v3 artifact with the payload `files` (in that order) to `out`, which is
/// flushed but not shut down. See the module documentation for the digest invariant and for
/// when the payload is spooled.
///
/// The description is checked before anything is read or written: a rootfs image has exactly
/// one file, a bootstrap artifact none; file names are unique and made of ASCII letters,
/// digits and `.,_-` only (mender-artifact refuses others); script names follow the state
/// script pattern.
pub async fn write_artifact<W: AsyncWrite + Unpin>(
    out: &mut W,
    spec: &ArtifactSpec,
    mut files: Vec<PayloadFile>,
    opts: &WriteOptions,
) -> Result<WriteSummary, WriteError> {
    validate(spec, &files)?;
    let mtime = opts.mtime.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let suffix = suffix(opts.compression);
    let header_member = format!("header.tar{suffix}");
    let data_member = format!("data/0000.tar{suffix}");

    // 1. The payload: spooled (digests computed) or to be streamed (digests declared).
    let direct = opts.compression == Compression::None && files.iter().all(|f| f.sha256.is_some());
    let (spooled, written): (Option<Spooled>, Vec<WrittenFile>) = if direct {
        let written = files
            .iter()
            .map(|f| WrittenFile {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.unwrap_or_default(),
            })
            .collect();
        (None, written)
    } else {
        let (s, w) = spool_data(&mut files, opts, &data_member).await?;
        (Some(s), w)
    };

    // 2. Header, manifest, signature.
    let header = expected_header(spec, &written);
    let header_tar = header_tar(spec, &header)?;
    let header_bytes = compress(&header_tar, opts.compression, opts.level, &header_member).await?;
    let mut manifest = String::new();
    for f in &written {
        manifest.push_str(&format!(
            "{}  data/0000/{}\n",
            hex::encode(f.sha256),
            f.name
        ));
    }
    manifest.push_str(&format!(
        "{}  {header_member}\n",
        hex::encode(sha256(&header_bytes))
    ));
    manifest.push_str(&format!(
        "{}  version\n",
        hex::encode(sha256(VERSION_BYTES))
    ));
    let signature = match &opts.signing_key {
        Some(k) => {
            Some(base64::engine::general_purpose::STANDARD.encode(k.sign(manifest.as_bytes())?))
        }
        None => None,
    };

    // 3. The outer tar.
    let mut w = Counting {
        inner: out,
        written: 0,
    };
    let mut members = Vec::new();
    members.push(w.member("version", VERSION_BYTES, 0).await?);
    members.push(w.member("manifest", manifest.as_bytes(), 0).await?);
    if let Some(sig) = &signature {
        members.push(w.member("manifest.sig", sig.as_bytes(), 0).await?);
    }
    members.push(w.member(&header_member, &header_bytes, mtime).await?);
    let data_size = match &spooled {
        Some(s) => s.len,
        None => inner_tar_size(&files),
    };
    w.put(&tar_header(&data_member, data_size, 0o600, mtime))
        .await?;
    let offset = w.written;
    match spooled {
        Some(s) => s.copy_to(&mut w).await?,
        None => {
            let mut buf = vec![0u8; CHUNK];
            for f in &mut files {
                w.put(&tar_header(&f.name, f.size, f.mode, f.mtime)).await?;
                let (size, name, declared) = (f.size, f.name.clone(), f.sha256);
                let actual = copy_payload(f, &mut w, &mut buf, WriteError::Write).await?;
                check_declared(&name, declared, &actual)?;
                w.put(&padding(size)).await?;
            }
            w.put(&[0u8; 2 * BLOCK as usize]).await?;
        }
    }
    let copied = w.written - offset;
    if copied != data_size {
        return Err(WriteError::Write(io::Error::other(format!(
            "{data_member}: wrote {copied} bytes, its tar header says {data_size}"
        ))));
    }
    w.put(&padding(data_size)).await?;
    members.push(WrittenMember {
        name: data_member,
        offset,
        size: data_size,
    });
    // End of archive: two zero blocks, no padding to a 10 KiB record (as Go writes it).
    w.put(&[0u8; 2 * BLOCK as usize]).await?;
    w.inner.flush().await.map_err(WriteError::Write)?;
    Ok(WriteSummary {
        size: w.written,
        members,
        files: written,
        manifest: manifest.into_bytes(),
        header,
        spooled: !direct,
    })
}

fn suffix(c: Compression) -> &'static str {
    match c {
        Compression::None => "",
        Compression::Gzip => ".gz",
        Compression::Xz => ".xz",
        Compression::Zstd => ".zst",
    }
}

fn sha256(data: &[u8]) -> Digest {
    Sha256::digest(data).into()
}

fn invalid(reason: impl Into<String>) -> WriteError {
    WriteError::InvalidSpec(reason.into())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks the description against the rules of the format and of the reader.
fn validate(spec: &ArtifactSpec, files: &[PayloadFile]) -> Result<(), WriteError> {
    if spec.name.is_empty() || has_control(&spec.name) {
        return Err(invalid(
            "the artifact name must be non-empty, without control characters",
        ));
    }
    if spec.device_types.is_empty() {
        return Err(invalid("at least one compatible device type is required"));
    }
    let lists = [
        ("device type", &spec.device_types),
        ("artifact name dependency", &spec.depends_artifact_names),
        ("group dependency", &spec.depends_groups),
    ];
    for (what, list) in lists {
        if list.iter().any(|v| v.is_empty()) {
            return Err(invalid(format!("an empty {what}")));
        }
    }
    if spec.group.as_deref() == Some("") {
        return Err(invalid(
            "the provided group is empty (use None for no group)",
        ));
    }
    for reserved in ["artifact_name", "artifact_group"] {
        if spec.provides.contains_key(reserved) {
            return Err(invalid(format!(
                "'{reserved}' is not a payload provide; set the artifact's name/group instead"
            )));
        }
    }
    for reserved in ["artifact_name", "artifact_group", "device_type"] {
        if spec.depends.contains_key(reserved) {
            return Err(invalid(format!(
                "'{reserved}' is not a payload depend; use the artifact-level depends instead"
            )));
        }
    }
    if spec.provides.keys().any(|k| k.is_empty()) || spec.depends.keys().any(|k| k.is_empty()) {
        return Err(invalid("an empty provides or depends key"));
    }
    if let Some((k, _)) = spec.depends.iter().find(|(_, v)| v.is_empty()) {
        return Err(invalid(format!("depends '{k}' has no value")));
    }
    if spec.clears_provides.iter().any(|c| c.is_empty()) {
        return Err(invalid("an empty clears_artifact_provides pattern"));
    }
    match &spec.payload {
        PayloadKind::RootfsImage if files.len() != 1 => {
            return Err(invalid(format!(
                "a rootfs-image artifact has exactly one file, not {}",
                files.len()
            )))
        }
        PayloadKind::Module { type_name } => {
            if type_name.is_empty()
                || type_name == "rootfs-image"
                || !type_name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(invalid(format!(
                    "'{type_name}' is not a module type name (letters, digits, '-', '_', '.'; \
                     not rootfs-image)"
                )));
            }
        }
        PayloadKind::Bootstrap => {
            if !files.is_empty() {
                return Err(invalid("a bootstrap artifact carries no files"));
            }
            if spec.meta_data.is_some() {
                return Err(invalid("a bootstrap artifact has no meta-data"));
            }
        }
        PayloadKind::RootfsImage => {}
    }
    if let Some(md) = &spec.meta_data {
        for (k, v) in md {
            let ok = match v {
                Value::String(_) | Value::Number(_) => true,
                Value::Array(items) => items
                    .iter()
                    .all(|i| matches!(i, Value::String(_) | Value::Number(_))),
                _ => false,
            };
            if !ok {
                return Err(invalid(format!(
                    "meta-data '{k}': values must be strings, numbers or lists of them"
                )));
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for s in &spec.scripts {
        check_script_name(&s.name)?;
        if !names.insert(s.name.as_str()) {
            return Err(invalid(format!("state script '{}' given twice", s.name)));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for f in files {
        let bad = |reason: &str| WriteError::InvalidFile {
            name: f.name.clone(),
            reason: reason.to_string(),
        };
        if f.name.is_empty() || f.name == "." || f.name == ".." {
            return Err(bad("not a file name"));
        }
        // mender-artifact's rule (its reader refuses other names too).
        if !f
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".,_-".contains(&b))
        {
            return Err(bad(
                "only ASCII letters, digits and '.', ',', '_', '-' are allowed \
                 (mender-artifact's rule; payload files sit at the root of the data tar)",
            ));
        }
        if !names.insert(f.name.as_str()) {
            return Err(bad("given twice"));
        }
    }
    Ok(())
}

/// Artifact state script names: `<State>_<Enter|Leave|Error>_<NN>[_<description>]`, the
/// rule the reader applies.
fn check_script_name(name: &str) -> Result<(), WriteError> {
    const STATES: [&str; 10] = [
        "Idle",
        "Sync",
        "Download",
        "ArtifactInstall",
        "ArtifactReboot",
        "ArtifactCommit",
        "ArtifactRollbackReboot",
        "ArtifactRollback",
        "ArtifactFailure",
        "ArtifactVerifyReboot",
    ];
    let mut parts = name.splitn(4, '_');
    let (state, action, nn, desc) = (parts.next(), parts.next(), parts.next(), parts.next());
    if !state.is_some_and(|s| STATES.contains(&s))
        || !action.is_some_and(|a| ["Enter", "Leave", "Error"].contains(&a))
        || !nn.is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
        || desc.is_some_and(|d| d.is_empty() || d.chars().any(|c| c.is_whitespace() || c == '/'))
    {
        return Err(invalid(format!(
            "state script '{name}': the name must be <State>_<Enter|Leave|Error>_<NN>[_<description>]"
        )));
    }
    Ok(())
}

/// The header the artifact will carry, in the reader's terms: defaults applied the way
/// mender-artifact 3.9.0 applies them.
fn expected_header(spec: &ArtifactSpec, files: &[WrittenFile]) -> ArtifactHeader {
    let mut provides = BTreeMap::new();
    let mut clears: Vec<String> = spec.clears_provides.clone();
    let payload_type = match &spec.payload {
        PayloadKind::RootfsImage => Some("rootfs-image".to_string()),
        PayloadKind::Module { type_name } => Some(type_name.clone()),
        PayloadKind::Bootstrap => None,
    };
    if spec.payload != PayloadKind::Bootstrap {
        let fs = spec
            .software
            .filesystem
            .as_deref()
            .unwrap_or("rootfs-image");
        let sw_name = match &spec.payload {
            PayloadKind::Module { type_name } => {
                Some(spec.software.name.as_deref().unwrap_or(type_name))
            }
            _ => spec.software.name.as_deref(),
        };
        let prefix = match sw_name {
            Some(n) => format!("{fs}.{n}"),
            None => fs.to_string(),
        };
        if spec.default_software_version {
            let version = spec
                .software
                .version
                .clone()
                .unwrap_or_else(|| spec.name.clone());
            provides.insert(format!("{prefix}.version"), version);
        }
        if spec.payload == PayloadKind::RootfsImage && spec.checksum_provide {
            if let Some(f) = files.first() {
                provides.insert("rootfs-image.checksum".to_string(), hex::encode(f.sha256));
            }
        }
        if spec.default_clears_provides {
            let defaults: Vec<String> = if prefix == "rootfs-image" {
                ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]
                    .map(String::from)
                    .to_vec()
            } else {
                vec![format!("{prefix}.*")]
            };
            for d in defaults {
                if !clears.contains(&d) {
                    clears.push(d);
                }
            }
        }
    }
    provides.extend(spec.provides.iter().map(|(k, v)| (k.clone(), v.clone())));
    let meta_data = spec.meta_data.clone().filter(|m| !m.is_empty());
    ArtifactHeader {
        name: spec.name.clone(),
        group: spec.group.clone(),
        depends: ArtifactDepends {
            device_type: spec.device_types.clone(),
            artifact_name: spec.depends_artifact_names.clone(),
            artifact_group: spec.depends_groups.clone(),
        },
        scripts: spec
            .scripts
            .iter()
            .map(|s| StateScript {
                name: s.name.clone(),
                mode: s.mode & 0o7777,
                content: s.content.clone(),
            })
            .collect(),
        payload: PayloadHeader {
            payload_type,
            provides: (!provides.is_empty()).then_some(provides),
            depends: spec.depends.clone(),
            clears_provides: (!clears.is_empty()).then_some(clears),
            meta_data,
            v2_files: None,
        },
        augment: None,
    }
}

#[derive(Serialize)]
struct HeaderInfoJson<'a> {
    payloads: [PayloadTypeJson<'a>; 1],
    artifact_provides: ProvidesJson<'a>,
    artifact_depends: DependsJson<'a>,
}

#[derive(Serialize)]
struct PayloadTypeJson<'a> {
    #[serde(rename = "type")]
    type_: Option<&'a str>,
}

#[derive(Serialize)]
struct ProvidesJson<'a> {
    artifact_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_group: Option<&'a str>,
}

#[derive(Serialize)]
struct DependsJson<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    artifact_name: &'a [String],
    device_type: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    artifact_group: &'a [String],
}

/// `type-info`; the field order is Go's struct order.
#[derive(Serialize)]
struct TypeInfoJson<'a> {
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    artifact_depends: BTreeMap<&'a str, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_provides: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clears_artifact_provides: Option<&'a Vec<String>>,
}

fn to_json<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec(v).map_err(|e| invalid(format!("{what}: {e}")))
}

/// The uncompressed header tar: `header-info`, `scripts/*`, `headers/0000/type-info`,
/// `headers/0000/meta-data` (0 bytes for a rootfs image without meta-data, absent for
/// other payloads without it, as mender-artifact 3.9.0 writes them).
fn header_tar(spec: &ArtifactSpec, h: &ArtifactHeader) -> Result<Vec<u8>, WriteError> {
    let info = HeaderInfoJson {
        payloads: [PayloadTypeJson {
            type_: h.payload.payload_type.as_deref(),
        }],
        artifact_provides: ProvidesJson {
            artifact_name: &h.name,
            artifact_group: h.group.as_deref(),
        },
        artifact_depends: DependsJson {
            artifact_name: &h.depends.artifact_name,
            device_type: &h.depends.device_type,
            artifact_group: &h.depends.artifact_group,
        },
    };
    let type_info = TypeInfoJson {
        // mender-artifact 3.9.0 writes "" here for rootfs images, a bug that readers from
        // 4.4 on refuse; the type is written out.
        type_: h.payload.payload_type.as_deref(),
        artifact_depends: h
            .payload
            .depends
            .iter()
            .map(|(k, v)| {
                let v = match v.as_slice() {
                    [one] => Value::String(one.clone()),
                    many => Value::Array(many.iter().cloned().map(Value::String).collect()),
                };
                (k.as_str(), v)
            })
            .collect(),
        artifact_provides: h.payload.provides.as_ref(),
        clears_artifact_provides: h.payload.clears_provides.as_ref(),
    };
    let mut tar = Vec::new();
    let mut add = |name: &str, data: &[u8], mode: u32, mtime: u64| {
        tar.extend_from_slice(&tar_header(name, data.len() as u64, mode, mtime));
        tar.extend_from_slice(data);
        tar.extend_from_slice(&padding(data.len() as u64));
    };
    add("header-info", &to_json("header-info", &info)?, 0o600, 0);
    for s in &spec.scripts {
        add(
            &format!("scripts/{}", s.name),
            &s.content,
            s.mode & 0o7777,
            s.mtime,
        );
    }
    add(
        "headers/0000/type-info",
        &to_json("type-info", &type_info)?,
        0o600,
        0,
    );
    match (&spec.meta_data, &spec.payload) {
        (Some(md), _) => add(
            "headers/0000/meta-data",
            &to_json("meta-data", md)?,
            0o600,
            0,
        ),
        (None, PayloadKind::RootfsImage) => add("headers/0000/meta-data", b"", 0o600, 0),
        (None, _) => {}
    }
    tar.extend_from_slice(&[0u8; 2 * BLOCK as usize]);
    Ok(tar)
}

/// Zeros that pad `size` bytes of content to a whole block.
fn padding(size: u64) -> Vec<u8> {
    vec![0u8; ((BLOCK - size % BLOCK) % BLOCK) as usize]
}

/// Writes `value` as zero-padded octal filling `field` but for a trailing NUL (Go's
/// formatOctal). The caller guarantees it fits.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// The header block(s) of a regular file, as Go's archive/tar writes them in USTAR format:
/// numeric fields zero-padded octal, magic `ustar\0` version `00`, uid/gid 0, no user or
/// group names. A name longer than 100 bytes or not ASCII, a size or mtime beyond 11 octal
/// digits go into a preceding PAX extended header (`PaxHeaders.0/<name>`), with the ustar
/// fields truncated or zeroed, as Go does.
fn tar_header(name: &str, size: u64, mode: u32, mtime: u64) -> Vec<u8> {
    let mut records = String::new();
    let long_name = name.len() > 100 || !name.is_ascii();
    if long_name {
        records.push_str(&pax_record("path", name));
    }
    if size > USTAR_MAX {
        records.push_str(&pax_record("size", &size.to_string()));
    }
    if mtime > USTAR_MAX {
        records.push_str(&pax_record("mtime", &mtime.to_string()));
    }
    let mut out = Vec::new();
    if !records.is_empty() {
        let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
        let pax_name = if dir.is_empty() {
            format!("PaxHeaders.0/{file}")
        } else {
            format!("{dir}/PaxHeaders.0/{file}")
        };
        out.extend_from_slice(&ustar_block(&pax_name, records.len() as u64, 0, 0, b'x'));
        out.extend_from_slice(records.as_bytes());
        out.extend_from_slice(&padding(records.len() as u64));
    }
    let size_field = if size > USTAR_MAX { 0 } else { size };
    let mtime_field = if mtime > USTAR_MAX { 0 } else { mtime };
    out.extend_from_slice(&ustar_block(name, size_field, mode, mtime_field, b'0'));
    out
}

fn ustar_block(name: &str, size: u64, mode: u32, mtime: u64, typeflag: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    // Non-ASCII characters are dropped and the rest truncated (the full name is in PAX).
    let ascii: Vec<u8> = name.bytes().filter(u8::is_ascii).take(100).collect();
    h[..ascii.len()].copy_from_slice(&ascii);
    put_octal(&mut h[100..108], u64::from(mode & 0o7777));
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put_octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

/// The exact size of the uncompressed data tar holding `files`.
fn inner_tar_size(files: &[PayloadFile]) -> u64 {
    files
        .iter()
        .map(|f| {
            tar_header(&f.name, f.size, f.mode, f.mtime).len() as u64
                + f.size
                + padding(f.size).len() as u64
        })
        .sum::<u64>()
        + 2 * BLOCK
}

async fn compress(
    data: &[u8],
    compression: Compression,
    level: Level,
    member: &str,
) -> Result<Vec<u8>, WriteError> {
    let err = |source| WriteError::Compress {
        member: member.to_string(),
        source,
    };
    let mut enc = Encoder::new(Vec::new(), compression, level);
    enc.write_all(data).await.map_err(err)?;
    enc.finish().await.map_err(err)
}

/// The compressor in front of a sink.
enum Encoder<W: AsyncWrite + Unpin> {
    Plain(W),
    Gzip(GzipEncoder<W>),
    Xz(XzEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    fn new(sink: W, compression: Compression, level: Level) -> Self {
        let q = level.codec();
        match compression {
            Compression::None => Encoder::Plain(sink),
            Compression::Gzip => Encoder::Gzip(GzipEncoder::with_quality(sink, q)),
            Compression::Xz => Encoder::Xz(XzEncoder::with_quality(sink, q)),
            Compression::Zstd => Encoder::Zstd(ZstdEncoder::with_quality(sink, q)),
        }
    }

    /// Ends the compressed stream (writing its trailer), flushes, returns the sink.
    async fn finish(mut self) -> io::Result<W> {
        self.shutdown().await?;
        Ok(match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(e) => e.into_inner(),
            Encoder::Xz(e) => e.into_inner(),
            Encoder::Zstd(e) => e.into_inner(),
        })
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Encoder<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_write(cx, buf),
            Encoder::Gzip(e) => Pin::new(e).poll_write(cx, buf),
            Encoder::Xz(e) => Pin::new(e).poll_write(cx, buf),
            Encoder::Zstd(e) => Pin::new(e).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_flush(cx),
            Encoder::Gzip(e) => Pin::new(e).poll_flush(cx),
            Encoder::Xz(e) => Pin::new(e).poll_flush(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_shutdown(cx),
            Encoder::Gzip(e) => Pin::new(e).poll_shutdown(cx),
            Encoder::Xz(e) => Pin::new(e).poll_shutdown(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_shutdown(cx),
        }
    }
}

/// The output, counting what was written to it.
struct Counting<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: AsyncWrite + Unpin> Counting<'_, W> {
    async fn put(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.inner
            .write_all(data)
            .await
            .map_err(WriteError::Write)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// A whole member with mode 0600.
    async fn member(
        &mut self,
        name: &str,
        data: &[u8],
        mtime: u64,
    ) -> Result<WrittenMember, WriteError> {
        self.put(&tar_header(name, data.len() as u64, 0o600, mtime))
            .await?;
        let offset = self.written;
        self.put(data).await?;
        self.put(&padding(data.len() as u64)).await?;
        Ok(WrittenMember {
            name: name.to_string(),
            offset,
            size: data.len() as u64,
        })
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.written += n as u64;
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Streams exactly `f.size` bytes of `f` into `sink`, returning their SHA-256. The reader
/// must end right there. `sink_err` wraps errors of the sink.
async fn copy_payload<S: AsyncWrite + Unpin>(
    f: &mut PayloadFile,
    sink: &mut S,
    buf: &mut [u8],
    sink_err: impl Fn(io::Error) -> WriteError,
) -> Result<Digest, WriteError> {
    let read_err = |source| WriteError::ReadPayload {
        name: f.name.clone(),
        source,
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while read < f.size {
        let want = buf
            .len()
            .min(usize::try_from(f.size - read).unwrap_or(usize::MAX));
        let n = f.reader.read(&mut buf[..want]).await.map_err(read_err)?;
        if n == 0 {
            return Err(WriteError::ShortPayload {
                name: f.name.clone(),
                size: f.size,
                read,
            });
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n]).await.map_err(&sink_err)?;
        read += n as u64;
    }
    let mut probe = [0u8; 1];
    if f.reader.read(&mut probe).await.map_err(read_err)? != 0 {
        return Err(WriteError::LongPayload {
            name: f.name.clone(),
            size: f.size,
        });
    }
    Ok(hasher.finalize().into())
}

fn check_declared(name: &str, declared: Option<Digest>, actual: &Digest) -> Result<(), WriteError> {
    match declared {
        Some(d) if &d != actual => Err(WriteError::DigestMismatch {
            name: name.to_string(),
            declared: hex::encode(d),
            actual: hex::encode(actual),
        }),
        _ => Ok(()),
    }
}

/// The compressed data tar, waiting for the outer header to be written.
struct Spooled {
    store: SpoolStore,
    len: u64,
}

enum SpoolStore {
    Memory(Vec<u8>),
    File(TempFile),
}

impl Spooled {
    async fn copy_to<W: AsyncWrite + Unpin>(
        self,
        out: &mut Counting<'_, W>,
    ) -> Result<(), WriteError> {
        match self.store {
            SpoolStore::Memory(v) => out.put(&v).await,
            SpoolStore::File(mut t) => {
                let spool_err = |context: &str| {
                    let context = context.to_string();
                    move |source| WriteError::Spool { context, source }
                };
                t.file
                    .seek(io::SeekFrom::Start(0))
                    .await
                    .map_err(spool_err("rewinding"))?;
                let mut buf = vec![0u8; CHUNK];
                let mut left = self.len;
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = t
                        .file
                        .read(&mut buf[..want])
                        .await
                        .map_err(spool_err("reading back"))?;
                    if n == 0 {
                        return Err(WriteError::Spool {
                            context: "reading back".into(),
                            source: io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("the spool file ended {left} bytes early"),
                            ),
                        });
                    }
                    out.put(&buf[..n]).await?;
                    left -= n as u64;
                }
                Ok(())
            }
        }
    }
}

/// A temporary file that nobody else can open: created with `create_new` and mode 0600,
/// and unlinked right after creation on Unix (on drop elsewhere).
struct TempFile {
    file: tokio::fs::File,
    #[cfg_attr(unix, allow(dead_code))]
    path: PathBuf,
}

#[cfg(not(unix))]
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl TempFile {
    async fn create(dir: &Path) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".mender-bridge-spool-{}-{nanos:09}-{n}",
                std::process::id()
            ));
            let mut opts = tokio::fs::OpenOptions::new();
            opts.read(true).write(true).create_new(true);
            #[cfg(unix)]
            opts.mode(0o600);
            match opts.open(&path).await {
                Ok(file) => {
                    #[cfg(unix)]
                    tokio::fs::remove_file(&path).await?;
                    return Ok(TempFile { file, path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes the compressed data tar into the spool, computing every file's SHA-256 and
/// checking the declared ones. Nothing reaches the output here.
async fn spool_data(
    files: &mut [PayloadFile],
    opts: &WriteOptions,
    member: &str,
) -> Result<(Spooled, Vec<WrittenFile>), WriteError> {
    let compress_err = |source| WriteError::Compress {
        member: member.to_string(),
        source,
    };
    match &opts.spool {
        Spool::Memory => {
            let enc = Encoder::new(Vec::new(), opts.compression, opts.level);
            let (v, written) = fill_spool(enc, files, compress_err).await?;
            let len = v.len() as u64;
            Ok((
                Spooled {
                    store: SpoolStore::Memory(v),
                    len,
                },
                written,
            ))
        }
        Spool::Dir(dir) => {
            let mut t = TempFile::create(dir)
                .await
                .map_err(|source| WriteError::Spool {
                    context: format!("creating a temporary file in {}", dir.display()),
                    source,
                })?;
            let sink = tokio::io::BufWriter::with_capacity(CHUNK, &mut t.file);
            let enc = Encoder::new(sink, opts.compression, opts.level);
            let (_, written) = fill_spool(enc, files, compress_err).await?;
            let len = t
                .file
                .stream_position()
                .await
                .map_err(|source| WriteError::Spool {
                    context: "measuring".into(),
                    source,
                })?;
            Ok((
                Spooled {
                    store: SpoolStore::File(t),
                    len,
                },
                written,
            ))
        }
    }
}

async fn fill_spool<S: AsyncWrite + Unpin>(
    mut enc: Encoder<S>,
    files: &mut [PayloadFile],
    err: impl Fn(io::Error) -> WriteError + Copy,
) -> Result<(S, Vec<WrittenFile>), WriteError> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = Vec::with_capacity(files.len());
    for f in files.iter_mut() {
        enc.write_all(&tar_header(&f.name, f.size, f.mode, f.mtime))
            .await
            .map_err(err)?;
        let actual = copy_payload(f, &mut enc, &mut buf, err).await?;
        check_declared(&f.name, f.sha256, &actual)?;
        enc.write_all(&padding(f.size)).await.map_err(err)?;
        written.push(WrittenFile {
            name: f.name.clone(),
            size: f.size,
            sha256: actual,
        });
    }
    enc.write_all(&[0u8; 2 * BLOCK as usize])
        .await
        .map_err(err)?;
    let sink = enc.finish().await.map_err(err)?;
    Ok((sink, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            ("path", "x"),
            ("size", "12345678901"),
            ("path", &"a".repeat(95)),
        ] {
            let r = pax_record(k, v);
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{r:?}");
        }
    }

    #[test]
    fn ustar_header_matches_go() {
        // The bytes of mender-artifact 3.9.0's `version` member header.
        let h = tar_header("version", 31, 0o600, 0);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[100..108], b"0000600\0");
        assert_eq!(&h[124..136], b"00000000037\0");
        assert_eq!(&h[148..156], b"010605\0 ");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\x00");
    }

    #[test]
    fn long_names_and_sizes_use_pax() {
        let name = "n".repeat(150);
        let h = tar_header(&name, 9 << 30, 0o644, 0);
        assert_eq!(h.len(), 3 * 512);
        assert_eq!(h[156], b'x');
        let records = std::str::from_utf8(&h[512..1024])
            .unwrap()
            .trim_end_matches('\0');
        assert!(records.contains(&format!(" path={name}\n")), "{records}");
        assert!(
            records.contains(&format!(" size={}\n", 9u64 << 30)),
            "{records}"
        );
        assert_eq!(&h[1024 + 124..1024 + 136], b"00000000000\0");
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
}
