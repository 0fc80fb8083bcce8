//! Streaming, verifying reader for Mender Artifacts (format v3, and v2 for reading).
//!
//! The artifact is read once, front to back, from any `AsyncRead`: nothing is buffered
//! beyond bounded header members and one chunk of payload, nothing is written to disk.
//! See [`ArtifactReader`] for the order of calls and the guarantees.
//!
//! Also, for the tools that make artifacts: `writer` (feature `writer`, which a device
//! build leaves out), and [`private_key`], the PEM private keys that both the writer's
//! signing key and mender-bridge's device key are parsed with.

mod compression;
mod error;
mod header;
pub(crate) mod io;
mod manifest;
mod member;
mod payload;
pub mod private_key;
pub mod provides;
mod reader;
pub mod render;
mod rules;
mod signature;
mod tarend;
mod targuard;
#[cfg(feature = "writer")]
pub mod writer;

pub use compression::Compression;
pub use error::ArtifactError;
pub use header::{ArtifactDepends, ArtifactHeader, AugmentHeader, PayloadHeader, StateScript};
pub use manifest::Digest;
pub use payload::FileInfo;
pub use reader::{ArtifactInfo, ArtifactReader};
pub use signature::{KeyError, SignatureStatus, VerifyKey};

/// Size of the payload chunks handed to consumers, and of the read buffer under the
/// decompressor.
pub const CHUNK: usize = 128 * 1024;

/// Bounds on everything the reader holds in memory. Each size read from the artifact is
/// checked against one of these before it is believed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `version`, `manifest`, `manifest-augment`.
    pub small_member: u64,
    /// A compressed `header.tar*` / `header-augment.tar*` member.
    pub header_member: u64,
    /// All decompressed bytes of one header tar (the decompression-bomb guard).
    pub header_total: u64,
    /// One file inside the header tar (JSON files, each state script).
    pub header_file: u64,
    /// Entries inside one header tar.
    pub header_entries: usize,
    /// Memory a decoder may use: the xz memory limit, and the largest zstd window (rounded
    /// down to a power of two). mender-artifact writes xz with a 64 MiB dictionary, which
    /// needs about 65 MiB to decode.
    pub decoder_memory: u64,
    /// Largest payload file accepted, if any (checked against the tar header before the
    /// first byte).
    pub payload_file: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            small_member: MIB,
            header_member: 16 * MIB,
            header_total: 16 * MIB,
            header_file: MIB,
            header_entries: 1024,
            decoder_memory: 128 * MIB,
            payload_file: None,
        }
    }
}

/// How to read: which keys may have signed the manifest, and the limits.
/// With at least one key, unsigned artifacts are refused.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub verify_keys: Vec<VerifyKey>,
    pub limits: Limits,
}
