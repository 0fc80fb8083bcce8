//! Files of the state directory, through the crate's durable file helpers
//! ([`mender_bridge_backends::fsutil`]), with errors naming the sim's files.

use std::path::Path;

use super::error::SimError;

/// Replaces `path` with `data` atomically; the file gets `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), SimError> {
    mender_bridge_backends::fsutil::write_atomic(path, data, mode)
        .map_err(|e| SimError::io("writing", path, e))
}

/// Reads a file of at most `limit` bytes; `None` when it does not exist.
pub fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, SimError> {
    mender_bridge_backends::fsutil::read_optional(path, limit).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => SimError::State {
            path: path.to_path_buf(),
            detail: format!("larger than {limit} bytes"),
        },
        _ => SimError::io("reading", path, e),
    })
}
