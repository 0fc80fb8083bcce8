//! File helpers shared by the backends and the main crate.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Times [`create_new`] unlinks an existing entry at the temp path and tries again.
const CREATE_TRIES: u32 = 3;

/// Creates `tmp` as a new file opened for writing (`O_EXCL|O_NOFOLLOW`, so no symlink is
/// followed; `mode` filtered by the umask). An existing entry is unlinked (the link itself,
/// not its target) and creation retried, at most [`CREATE_TRIES`] times: an entry that keeps
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
