//! Files of the state directory: atomic writes (temp file, fsync, rename, fsync of the
//! directory) and reading JSON back.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::SimError;

/// Replaces `path` with `data` atomically; the file gets `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), SimError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SimError::io("writing", path, e)
    })
}

/// Reads a file of at most `limit` bytes; `None` when it does not exist.
pub fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, SimError> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SimError::io("opening", path, e)),
    };
    let mut data = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| SimError::io("reading", path, e))?;
    if data.len() as u64 > limit {
        return Err(SimError::State {
            path: path.to_path_buf(),
            detail: format!("larger than {limit} bytes"),
        });
    }
    Ok(Some(data))
}
