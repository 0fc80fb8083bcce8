//! What must survive the reboot: the slot RAUC activated for it (`GetPrimary` right after
//! `Completed(0)`) and the slot that was running then. RAUC 1.8 has no "rollback
//! happened" flag, so after the boot `BootSlot` / `GetSlotStatus` are compared with this
//! record (BACKENDS.md §1.3).
//!
//! Invariants: the record is written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves the old record or the new one, never a torn one; it
//! exists exactly while an activated install is on trial (written by `finish`, removed by
//! `commit` and `rollback`); reads are bounded.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BackendError;

const FILE: &str = "rauc-pending.json";
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

fn io(context: String, source: std::io::Error) -> BackendError {
    BackendError::Io { context, source }
}

/// The record's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes the record atomically.
pub fn save(dir: &Path, p: &Pending) -> Result<(), BackendError> {
    std::fs::create_dir_all(dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
    let target = path(dir);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let body = serde_json::to_vec_pretty(p)
        .map_err(|e| io("encoding the RAUC record".into(), std::io::Error::other(e)))?;
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| io(format!("creating {}", tmp.display()), e))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(|e| io(format!("writing {}", tmp.display()), e))?;
    drop(f);
    std::fs::rename(&tmp, &target)
        .map_err(|e| io(format!("renaming to {}", target.display()), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(format!("fsync of {}", dir.display()), e))
}

/// Reads the record; `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<Pending>, BackendError> {
    let p = path(dir);
    let f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(format!("reading {}", p.display()), e)),
    };
    let mut body = Vec::new();
    f.take(MAX_SIZE + 1)
        .read_to_end(&mut body)
        .map_err(|e| io(format!("reading {}", p.display()), e))?;
    if body.len() as u64 > MAX_SIZE {
        return Err(BackendError::Failed {
            message: format!("{} is larger than {MAX_SIZE} bytes", p.display()),
            log: vec![],
        });
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| BackendError::Failed {
            message: format!("{} is not a valid record: {e}", p.display()),
            log: vec![],
        })
}

/// Removes the record (absent is fine).
pub fn remove(dir: &Path) -> Result<(), BackendError> {
    let p = path(dir);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("removing {}", p.display()), e)),
    }
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
    }
}
