//! Writing Mender Artifacts, format v3, laid out as mender-artifact 3.9.0 lays them out
//! (PROTOCOL.md §5): an uncompressed POSIX ustar outer tar holding `version`, `manifest`,
//! `manifest.sig` (when signed), `header.tar[.gz|.xz|.zst]` and `data/0000.tar[.gz|.xz|.zst]`,
//! every member mode 0600, names without `./`, no record padding after the two end blocks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
//! let spec = ArtifactSpec::rootfs("release-1", ["qemux86-64"]);
//! let image = PayloadFile::from_path("rootfs.ext4").await?;
//! let mut out = tokio::fs::File::create("release-1.mender").await?;
//! let summary = write_artifact(&mut out, &spec, vec![image], &WriteOptions::default()).await?;
//! println!("{} bytes", summary.size);
//! # Ok(()) }
//! ```
//!
//! # Invariants
//!
//! - **Checked before any I/O**: the description and the payload file names are validated
//!   ([`write_artifact`] documents the rules) before a payload byte is read or an output byte
//!   written; the state-script and meta-data rules are the reader's own.
//! - **Digests**: every digest in the manifest is the SHA-256 of exactly the bytes that were
//!   put in the data tar (next section); otherwise the write fails.
//! - **Sizes**: every outer tar header states the exact size of the bytes that follow it; the
//!   data member is checked against its header after it was written.
//! - **Layout**: members in the order above, mode 0600, `version`, `manifest` and
//!   `manifest.sig` with mtime 0, tar headers as Go's archive/tar writes them (PAX only
//!   where ustar cannot hold a value), two zero blocks at the end and nothing after them.
//! - **One header**: `header-info` and `type-info` are serialized from
//!   [`WriteSummary::header`], the header [`ArtifactReader`](super::ArtifactReader) is to
//!   report for the artifact.
//! - **After any error** the output holds no valid artifact and must be discarded.
//!
//! # Modules
//!
//! `spec` (what the artifact says), `validate` (the checks before I/O), `header` (the
//! expected header and the header tar), `payload` ([`PayloadFile`], exact hashed copies),
//! `data` (the data tar), `encoder` (compression), `spool` (where the compressed data tar
//! waits), `signing` ([`SigningKey`]), `tar` (Go-style tar framing), `output` (the counted
//! outer tar), `error` ([`WriteError`]). This file puts them together in [`write_artifact`].
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

use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use tokio::io::AsyncWrite;

use super::header::ArtifactHeader;
use super::manifest::{sha256, Digest};
use super::Compression;

mod data;
mod encoder;
mod error;
mod header;
mod output;
mod payload;
mod signing;
mod spec;
mod spool;
mod tar;
mod validate;

pub use error::WriteError;
pub use payload::PayloadFile;
pub use signing::SigningKey;
pub use spec::{ArtifactSpec, PayloadKind, ScriptFile, SoftwareVersion};

use data::{data_tar_size, declared_files, write_data_tar};
use encoder::compress;
use header::{expected_header, header_tar};
use output::Counting;
use spool::{spool_data, Spooled};
use tar::{padding, tar_header, END_OF_ARCHIVE};
use validate::validate;

/// The exact bytes of the `version` member.
pub const VERSION_BYTES: &[u8] = br#"{"format":"mender","version":3}"#;

/// Compression level of the header and data members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Level {
    Fastest,
    #[default]
    Default,
    Best,
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
    let suffix = opts.compression.suffix();
    let header_member = format!("header.tar{suffix}");
    let data_member = format!("data/0000.tar{suffix}");

    // 1. The payload: spooled (digests computed) or to be streamed (digests declared).
    let direct = opts.compression == Compression::None && files.iter().all(|f| f.sha256.is_some());
    let (spooled, written): (Option<Spooled>, Vec<WrittenFile>) = if direct {
        (None, declared_files(&files))
    } else {
        let (s, w) = spool_data(&mut files, opts, &data_member).await?;
        (Some(s), w)
    };

    // 2. Header, manifest, signature.
    let header = expected_header(spec, &written);
    let header_tar = header_tar(spec, &header)?;
    let header_bytes = compress(&header_tar, opts.compression, opts.level, &header_member).await?;
    let manifest = manifest_text(&written, &header_member, &header_bytes);
    let signature = match &opts.signing_key {
        Some(k) => {
            Some(base64::engine::general_purpose::STANDARD.encode(k.sign(manifest.as_bytes())?))
        }
        None => None,
    };

    // 3. The outer tar.
    let mut w = Counting::new(out);
    let mut members = Vec::new();
    members.push(w.member("version", VERSION_BYTES, 0).await?);
    members.push(w.member("manifest", manifest.as_bytes(), 0).await?);
    if let Some(sig) = &signature {
        members.push(w.member("manifest.sig", sig.as_bytes(), 0).await?);
    }
    members.push(w.member(&header_member, &header_bytes, mtime).await?);
    let data_size = match &spooled {
        Some(s) => s.len,
        None => data_tar_size(&files),
    };
    w.put(&tar_header(&data_member, data_size, 0o600, mtime))
        .await?;
    let offset = w.written;
    match spooled {
        Some(s) => s.copy_to(&mut w).await?,
        None => {
            // The manifest lists the declared digests; each file is checked against its own
            // as it streams (the computed list returned here is the same).
            write_data_tar(&mut w, &mut files, WriteError::Write).await?;
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
    w.put(&END_OF_ARCHIVE).await?;
    w.flush_output().await?;
    Ok(WriteSummary {
        size: w.written,
        members,
        files: written,
        manifest: manifest.into_bytes(),
        header,
        spooled: !direct,
    })
}

/// The `manifest` text: a sha256sum line for every payload file, the header member and
/// `version`, in the order mender-artifact writes them.
fn manifest_text(files: &[WrittenFile], header_member: &str, header_bytes: &[u8]) -> String {
    let mut manifest = String::new();
    for f in files {
        manifest.push_str(&format!(
            "{}  data/0000/{}\n",
            hex::encode(f.sha256),
            f.name
        ));
    }
    manifest.push_str(&format!(
        "{}  {header_member}\n",
        hex::encode(sha256(header_bytes))
    ));
    manifest.push_str(&format!(
        "{}  version\n",
        hex::encode(sha256(VERSION_BYTES))
    ));
    manifest
}
