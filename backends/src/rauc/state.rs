//! What must survive the reboot: the slot RAUC activated for it (`GetPrimary` right after
//! `Completed(0)`) and the slot that was running then. RAUC 1.8 has no "rollback
//! happened" flag, so after the boot `BootSlot` / `GetSlotStatus` are compared with this
//! record (BACKENDS.md §1.3).
//!
//! A second, smaller record covers the install itself: `rauc-started` (the slot booted
//! when `InstallBundle` was called) exists from just before the call until the outcome is
//! known. If the bridge dies in between, RAUC may still activate the new slot; finding the
//! record at the next `abort` makes the booted slot primary again.
//!
//! Invariants: records are written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves the old record or the new one, never a torn one; the
//! temporary file is created `O_EXCL|O_NOFOLLOW`, so a link planted at its path is
//! replaced, never written through; records are mode 0600; the
//! pending record exists exactly while an activated install is on trial (written by
//! `finish`, removed by `commit` and `rollback`); reads are bounded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BackendError;

const FILE: &str = "rauc-pending.json";
const STARTED: &str = "rauc-started";
const MAX_SIZE: u64 = 16 << 10;

/// The install waiting for its reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The slot RAUC made primary (`rootfs.1`).
    pub target: String,
    /// Its bootname (`B`), when RAUC reported one.
    #[serde(default)]
    pub target_bootname: Option<String>,
    /// The slot that was booted during the install.
    #[serde(default)]
    pub booted_before: Option<String>,
}

/// The record's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Mode of the records (as the bridge's own deployment store).
const MODE: u32 = 0o600;

/// Writes `body` to `dir/name` atomically and durably (`fsutil::write_atomic`: a temp
/// file that never follows a link, fsync, rename, fsync of `dir`). One writer per record
/// at a time (the bridge's install lock).
fn write_atomic(dir: &Path, name: &str, body: &[u8]) -> Result<(), BackendError> {
    let p = dir.join(name);
    crate::fsutil::write_atomic(&p, body, MODE)
        .map_err(|e| BackendError::io(format!("writing {}", p.display()), e))
}

/// Reads `dir/name`, at most [`MAX_SIZE`] bytes; `None` when absent.
fn read_bounded(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, BackendError> {
    let p = dir.join(name);
    crate::fsutil::read_optional(&p, MAX_SIZE)
        .map_err(|e| BackendError::io(format!("reading {}", p.display()), e))
}

fn remove_file(dir: &Path, name: &str) -> Result<(), BackendError> {
    let p = dir.join(name);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackendError::io(format!("removing {}", p.display()), e)),
    }
}

/// Writes the record atomically.
pub fn save(dir: &Path, p: &Pending) -> Result<(), BackendError> {
    let body = serde_json::to_vec_pretty(p)
        .map_err(|e| BackendError::io("encoding the RAUC record", std::io::Error::other(e)))?;
    write_atomic(dir, FILE, &body)
}

/// Reads the record; `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<Pending>, BackendError> {
    let Some(body) = read_bounded(dir, FILE)? else {
        return Ok(None);
    };
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        BackendError::failed(format!(
            "{} is not a valid record: {e}",
            path(dir).display()
        ))
    })
}

/// Records that an install is about to start while `booted` runs.
pub fn mark_started(dir: &Path, booted: &str) -> Result<(), BackendError> {
    write_atomic(dir, STARTED, booted.as_bytes())
}

/// The slot that was booted when an unfinished install started, if one did.
pub fn started(dir: &Path) -> Result<Option<String>, BackendError> {
    Ok(read_bounded(dir, STARTED)?.map(|b| String::from_utf8_lossy(&b).trim().to_string()))
}

/// The install's outcome is known (or handled).
pub fn clear_started(dir: &Path) -> Result<(), BackendError> {
    remove_file(dir, STARTED)
}

/// Removes the record (absent is fine).
pub fn remove(dir: &Path) -> Result<(), BackendError> {
    remove_file(dir, FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_loaded_replaced_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("state");
        assert_eq!(load(&d).unwrap(), None);
        let p = Pending {
            target: "rootfs.1".into(),
            target_bootname: Some("B".into()),
            booted_before: Some("rootfs.0".into()),
        };
        save(&d, &p).unwrap();
        assert_eq!(load(&d).unwrap(), Some(p.clone()));
        let q = Pending {
            target: "rootfs.0".into(),
            ..p
        };
        save(&d, &q).unwrap();
        assert_eq!(load(&d).unwrap(), Some(q));
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary left"
        );
        remove(&d).unwrap();
        remove(&d).unwrap();
        assert_eq!(load(&d).unwrap(), None);
        std::fs::write(path(&d), b"{").unwrap();
        assert!(load(&d).is_err());
        assert_eq!(started(&d).unwrap(), None);
        mark_started(&d, "rootfs.0").unwrap();
        assert_eq!(started(&d).unwrap().as_deref(), Some("rootfs.0"));
        clear_started(&d).unwrap();
        assert_eq!(started(&d).unwrap(), None);
    }

    /// The records live in the bridge's data directory, under predictable names: a link
    /// planted at a temporary file's path must be replaced, never written through (nor its
    /// target created, if it dangles); a crash's leftover temporary is replaced too.
    #[test]
    fn a_planted_symlink_at_the_temp_path_is_not_followed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("state");
        std::fs::create_dir(&d).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"victim").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = Pending {
            target: "rootfs.1".into(),
            target_bootname: None,
            booted_before: Some("rootfs.0".into()),
        };
        let temps = |name: &str| -> Vec<PathBuf> {
            // The temporary's old name (once opened with `File::create`) and its name now.
            vec![
                d.join(format!("{name}.tmp")),
                d.join(format!(".{name}.tmp.{}", std::process::id())),
            ]
        };
        for t in temps(FILE).iter().chain(&temps(STARTED)) {
            std::os::unix::fs::symlink(&victim, t).unwrap();
        }
        save(&d, &p).unwrap();
        mark_started(&d, "rootfs.0").unwrap();
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"victim",
            "written through a link"
        );
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(load(&d).unwrap(), Some(p.clone()));
        assert_eq!(started(&d).unwrap().as_deref(), Some("rootfs.0"));
        for f in [FILE, STARTED] {
            let meta = std::fs::symlink_metadata(d.join(f)).unwrap();
            assert!(meta.file_type().is_file(), "{f} is not a plain file");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        }

        // A dangling link: O_CREAT alone would create its target.
        let created = dir.path().join("created-through-link");
        for t in temps(FILE) {
            let _ = std::fs::remove_file(&t);
            std::os::unix::fs::symlink(&created, &t).unwrap();
        }
        save(&d, &p).unwrap();
        assert!(
            std::fs::symlink_metadata(&created).is_err(),
            "created through a dangling link"
        );
        // A crash's leftover.
        for t in temps(FILE) {
            let _ = std::fs::remove_file(&t);
            std::fs::write(&t, b"leftover").unwrap();
        }
        save(&d, &p).unwrap();
        assert_eq!(load(&d).unwrap(), Some(p));
    }
}
