//! The module's answers to `SupportsRollback` and `NeedsArtifactReboot` for the install in
//! progress, and how far its reboot verification and commit got, kept in
//! `<work_dir>/payloads/0000/answers.json` (beside the tree), as the official client keeps
//! them in its state data: after a restart the module is not asked again, a rollback
//! reboots the way the install would have, and a restart after `ArtifactVerifyReboot`
//! started rolls back as the official client's does.
//!
//! Invariants: written atomically before the answer is acted on; an unreadable file counts
//! as no answers (the module is asked again, which is what a module must bear anyway);
//! removed with the tree after `Cleanup` and when a new install prepares its tree.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::run::RebootAnswer;
use crate::fsutil::{read_optional, write_atomic};
use crate::BackendError;

/// The file is a few bytes; anything larger is not ours.
const MAX_FILE: u64 = 4096;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Answers {
    #[serde(default)]
    pub supports_rollback: Option<bool>,
    #[serde(default)]
    pub reboot: Option<RebootAnswer>,
    /// `ArtifactVerifyReboot` was started (saved before it runs): a later verification can
    /// only come from a restart after it started.
    #[serde(default)]
    pub verify_started: bool,
    /// `ArtifactCommit` succeeded.
    #[serde(default)]
    pub committed: bool,
}

impl Answers {
    /// The kept answers, or none.
    pub fn load(path: &Path) -> Answers {
        match read_optional(path, MAX_FILE) {
            Ok(Some(data)) => serde_json::from_slice(&data).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable module answers");
                Answers::default()
            }),
            Ok(None) => Answers::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable module answers");
                Answers::default()
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), BackendError> {
        let data = serde_json::to_vec(self)
            .map_err(|e| BackendError::failed(format!("module answers: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| BackendError::io(format!("create {}", dir.display()), e))?;
        }
        write_atomic(path, &data, 0o600)
            .map_err(|e| BackendError::io(format!("write {}", path.display()), e))
    }

    pub fn remove(path: &Path) -> Result<(), BackendError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BackendError::io(format!("remove {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_a_restart_and_go_with_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payloads/0000/answers.json");
        assert_eq!(Answers::load(&path), Answers::default());
        let a = Answers {
            supports_rollback: Some(true),
            reboot: Some(RebootAnswer::Automatic),
            verify_started: true,
            committed: false,
        };
        a.save(&path).unwrap();
        assert_eq!(Answers::load(&path), a);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Answers::load(&path), Answers::default());
        Answers::remove(&path).unwrap();
        assert!(!path.exists());
        Answers::remove(&path).unwrap();
    }
}
