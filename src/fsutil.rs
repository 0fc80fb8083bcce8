//! Durable file operations shared by every part that persists state (device keys, the
//! deployment store): a crash or power loss leaves either the old file or the complete new
//! one, never a mix (implemented once, in the backends crate, and re-exported here). Also
//! the bounded reads. Secret files (device and mTLS keys) are read with
//! [`mender_artifact::private_key::read_secret`], next to the key parsing.

/// The durable writes and bounded reads live in the backends crate, which persists its
/// own records the same way; one implementation for both.
pub use mender_bridge_backends::fsutil::{create_new, read_bounded, read_optional, write_atomic};

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn atomic_write_replaces_whole_files_with_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(read_optional(&p, 10).unwrap().as_deref(), Some(&b"two"[..]));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(read_optional(&p, 2).is_err(), "over the limit");
        assert!(read_optional(&dir.path().join("none"), 2)
            .unwrap()
            .is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    /// The temp file's name is predictable (`.<name>.tmp.<pid>`), so whoever can write the
    /// directory can plant a link there: it must be replaced, never followed.
    #[test]
    fn a_planted_symlink_at_the_temp_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"victim").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("state.json");
        let tmp = sub.join(format!(".state.json.tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();

        write_atomic(&path, b"new", 0o600).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
        let victim_mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(victim_mode, 0o644);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "{path:?} is not a plain file");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "temp path left");

        // A dangling link (which O_CREAT alone would create its target through) and a
        // leftover file from a crash are replaced too.
        let target = dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        write_atomic(&path, b"newer", 0o600).unwrap();
        assert!(
            std::fs::symlink_metadata(&target).is_err(),
            "followed the link"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        std::fs::write(&tmp, b"leftover").unwrap();
        write_atomic(&path, b"newest", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newest");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "temp path left");
    }
}
