//! Durable file operations shared by the backends and the main crate (device keys, the
//! deployment store, RAUC's records, the simulator's state): a crash or power loss leaves
//! either the old file or the complete new one, never a mix; temp files never follow a
//! link; reads are bounded.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Replaces `path` with `data`: a temp file in the same directory (created with `mode`),
/// fsync, rename over `path`, fsync of the directory. Creates the directory if needed.
/// On error the temp file is removed and `path` is unchanged.
///
/// The temp file is `.<name>.tmp.<pid>`, created with `O_CREAT|O_EXCL|O_NOFOLLOW`: whatever
/// already sits at that path (a crash's leftover, or a link planted by someone who can write
/// the directory) is unlinked, never followed or written through. One writer per `path` at a
/// time (the callers hold their own locks).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut created = false;
    let mut write = || -> std::io::Result<()> {
        let mut f = create_new(&tmp, mode)?;
        created = true;
        // The mode given at creation is filtered by the umask; set it exactly.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        if created {
            let _ = std::fs::remove_file(&tmp);
        }
    })
}

/// Reads a file of at most `limit` bytes; `Ok(None)` when it does not exist. A larger file
/// is an `InvalidData` error (it is not what we wrote).
pub fn read_optional(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    read_bounded(f, path, limit).map(Some)
}

/// Reads the open file `f` (named `path` in errors) to its end, at most `limit` bytes; a
/// larger file is an `InvalidData` error.
pub fn read_bounded(f: std::fs::File, path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    f.take(limit.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(data)
}

/// Times [`create_new`] unlinks an existing entry at the temp path and tries again.
const CREATE_TRIES: u32 = 3;

/// Creates `tmp` as a new file opened for writing (`O_EXCL|O_NOFOLLOW`, so no symlink is
/// followed; `mode` filtered by the umask). An existing entry is unlinked (the link itself,
/// not its target) and creation retried, at most `CREATE_TRIES` (3) times: an entry that keeps
/// reappearing is an `AlreadyExists` error. For temporary files under a name others may
/// predict or write at (a crash's leftover, a planted link).
pub fn create_new(tmp: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(mode)
            .open(tmp)
    };
    for _ in 0..CREATE_TRIES {
        match open() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tracing::debug!(path = %tmp.display(), "replacing an old temp file");
                match std::fs::remove_file(tmp) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            other => return other,
        }
    }
    open()
}
