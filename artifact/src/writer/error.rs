//! `WriteError`: why an artifact could not be written.

use std::io;

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

/// [`WriteError::InvalidSpec`] from a reason.
pub(super) fn invalid(reason: impl Into<String>) -> WriteError {
    WriteError::InvalidSpec(reason.into())
}
