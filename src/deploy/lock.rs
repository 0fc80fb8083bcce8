//! One installer at a time: the daemon's deployments and the standalone `install`,
//! `commit` and `rollback` each hold `<store>/install.lock` (an exclusive `flock`) while
//! they touch the backend, so two of them can never write the inactive slot or switch the
//! bootloader at the same time. The kernel releases the lock when its holder exits, even
//! on `kill -9`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

const NAME: &str = "install.lock";

/// The held lock; released on drop.
#[derive(Debug)]
pub struct InstallLock {
    _lock: Flock<File>,
}

impl InstallLock {
    /// Takes the lock in `dir` (created if needed) without waiting. `Ok(None)`: another
    /// process (or another holder in this one) has it.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<InstallLock>> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(NAME))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(InstallLock { _lock: lock })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(errno.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = InstallLock::try_acquire(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.is_some());
        let second = InstallLock::try_acquire(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(second.is_none(), "held");
        drop(first);
        let third = InstallLock::try_acquire(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(third.is_some(), "released on drop");
    }
}
