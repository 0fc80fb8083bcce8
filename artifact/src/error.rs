//! Errors of the artifact reader. Every variant names what was wrong: the member, the file
//! inside the header or data tar, the key, the byte count.

use std::io;

/// Why an artifact was refused. The `Display` text is meant for a human on a terminal and for
/// the deployment log, so it names the member or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Reading the underlying byte source failed (network, file).
    #[error("reading {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The outer or an inner tar is malformed (bad header checksum, truncated, desynced sizes).
    #[error("malformed tar in {context}: {detail}")]
    Tar { context: String, detail: String },
    /// The artifact ended before a required member or before the end of a member.
    #[error("artifact is truncated: {0}")]
    Truncated(String),
    /// A member that must not appear here (unknown name, wrong position, duplicate).
    #[error("unexpected member '{member}': {reason}")]
    UnexpectedMember { member: String, reason: String },
    /// A member or inner file whose name is unsafe (absolute, `..`, empty components).
    #[error("unsafe path '{path}' in {context}")]
    UnsafePath { context: String, path: String },
    /// A tar entry that is not a regular file (symlink, hard link, device, fifo...).
    #[error("entry '{path}' in {context} is a {kind}, only regular files are allowed")]
    NotRegularFile {
        context: String,
        path: String,
        kind: String,
    },
    /// A size limit was exceeded. `what` names the member or file, `limit` the bound in bytes.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    /// The `version` member is not a Mender format this reader supports.
    #[error("unsupported artifact version: {0}")]
    Version(String),
    /// A line of `manifest` or `manifest-augment` could not be parsed.
    #[error("{member} line {line}: {reason}")]
    Manifest {
        member: String,
        line: usize,
        reason: String,
    },
    /// A checksum in the manifest does not match the bytes read.
    #[error("checksum mismatch for '{name}': manifest says {expected}, content is {actual}")]
    Checksum {
        name: String,
        expected: String,
        actual: String,
    },
    /// A file is not listed in the manifest that may vouch for it (the signed `manifest`
    /// for everything but `header-augment.tar*`).
    #[error("'{name}' is not listed in '{member}'{}", if member == "manifest" { " (only 'manifest', which the signature covers, may vouch for it)" } else { "" })]
    NotInManifest { name: String, member: String },
    /// A manifest entry never appeared in the artifact.
    #[error("{member} lists '{name}' but the artifact does not contain it")]
    MissingFromArtifact { name: String, member: String },
    /// Signature problems: absent while required, undecodable, or not matching any key.
    #[error("signature: {0}")]
    Signature(String),
    /// A header file (header-info, type-info, meta-data, files) is not what the format says.
    #[error("header {file}: {reason}")]
    Header { file: String, reason: String },
    /// A compressed member could not be decoded (corrupt stream, memory limit).
    #[error("decompressing {member}: {reason}")]
    Decompress { member: String, reason: String },
    /// The reader was used out of order (a payload file not read to its end, for instance).
    #[error("reader misuse: {0}")]
    Usage(String),
}

impl ArtifactError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ArtifactError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn header(file: impl Into<String>, reason: impl Into<String>) -> Self {
        ArtifactError::Header {
            file: file.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unexpected(member: impl Into<String>, reason: impl Into<String>) -> Self {
        ArtifactError::UnexpectedMember {
            member: member.into(),
            reason: reason.into(),
        }
    }
}
