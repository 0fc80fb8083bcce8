//! The daemon's pid file (`<data_dir>/mender-bridge/daemon.pid`), held with an exclusive
//! `flock` for the daemon's whole life. `check-update` and `send-inventory` find the daemon
//! through it, as the official client finds its daemon through systemd.
//!
//! Invariant: a pid is only ever signalled while the file is locked, i.e. while the daemon
//! that wrote it is alive (the kernel drops the lock when the process dies, even on
//! `kill -9`), so a stale file can never make us signal an unrelated process that reused
//! the pid. One data directory has at most one daemon.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

/// How long a starting daemon waits for a lock held only briefly (a probe).
const LOCK_TRIES: u32 = 20;
const LOCK_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a mender-bridge daemon already runs for this data directory (pid {pid}, {})", path.display())]
    AlreadyRunning { pid: String, path: PathBuf },
    #[error("no mender-bridge daemon is running for this data directory (no live daemon holds {}); start it with `mender-bridge daemon` or systemctl", path.display())]
    NotRunning { path: PathBuf },
    #[error("{}: not a process id: {content:?}", path.display())]
    Corrupt { path: PathBuf, content: String },
    #[error("signalling the daemon (pid {pid}): {errno}")]
    Signal { pid: i32, errno: Errno },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PidError + '_ {
    move |source| PidError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_pid_text(file: &mut File, path: &Path) -> Result<String, PidError> {
    let mut text = String::new();
    file.rewind().map_err(io_err(path))?;
    file.take(64)
        .read_to_string(&mut text)
        .map_err(io_err(path))?;
    Ok(text.trim().to_string())
}

/// The daemon's hold on its pid file; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct PidLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl PidLock {
    /// Takes the lock and writes this process's id. Fails with
    /// [`PidError::AlreadyRunning`] while another daemon holds it.
    pub fn acquire(path: &Path) -> Result<PidLock, PidError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io_err(path))?;
        let mut tries = 0;
        let mut lock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err((f, Errno::EWOULDBLOCK)) if tries < LOCK_TRIES => {
                    file = f;
                    tries += 1;
                    std::thread::sleep(LOCK_PAUSE);
                }
                Err((mut f, Errno::EWOULDBLOCK)) => {
                    let pid = read_pid_text(&mut f, path)?;
                    return Err(PidError::AlreadyRunning {
                        pid,
                        path: path.to_path_buf(),
                    });
                }
                Err((_, errno)) => return Err(io_err(path)(errno.into())),
            }
        };
        lock.set_len(0).map_err(io_err(path))?;
        lock.rewind().map_err(io_err(path))?;
        writeln!(lock, "{}", std::process::id()).map_err(io_err(path))?;
        lock.sync_all().map_err(io_err(path))?;
        Ok(PidLock {
            _lock: lock,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid of the live daemon holding `path`, or [`PidError::NotRunning`].
pub fn daemon_pid(path: &Path) -> Result<i32, PidError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PidError::NotRunning {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    // A shared probe: it succeeds only when no daemon holds the exclusive lock.
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_probe) => Err(PidError::NotRunning {
            path: path.to_path_buf(),
        }),
        Err((mut f, Errno::EWOULDBLOCK)) => {
            let text = read_pid_text(&mut f, path)?;
            text.parse::<i32>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or(PidError::Corrupt {
                    path: path.to_path_buf(),
                    content: text,
                })
        }
        Err((_, errno)) => Err(io_err(path)(errno.into())),
    }
}

/// Sends `signal` to the live daemon holding `path`; returns its pid.
pub fn signal_daemon(path: &Path, signal: Signal) -> Result<i32, PidError> {
    let pid = daemon_pid(path)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .map_err(|errno| PidError::Signal { pid, errno })?;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_and_stale_files_are_not_running() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub/daemon.pid");
        assert!(matches!(
            daemon_pid(&path),
            Err(PidError::NotRunning { .. })
        ));
        let lock = PidLock::acquire(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to the open file: a second open in this process conflicts too.
        assert_eq!(
            daemon_pid(&path).ok(),
            i32::try_from(std::process::id()).ok()
        );
        let e = PidLock::acquire(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("already runs"), "{e}");
        drop(lock);
        // The file stays, with a pid that is no longer locked: not running.
        assert!(path.exists());
        let e = daemon_pid(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no mender-bridge daemon is running"), "{e}");
        let e = signal_daemon(&path, Signal::SIGUSR1)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("no mender-bridge daemon")));
        let again = PidLock::acquire(&path);
        assert!(again.is_ok());
    }
}
