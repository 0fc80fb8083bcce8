//! The Update Module file tree, `<work_dir>/payloads/0000/tree`, laid out as the official
//! 3.x client lays it out (`installer/modules.go`, `buildStreamsTree`).
//!
//! Invariants: the tree is removed whole and created afresh for each install ([`create`]),
//! so nothing of an earlier install is left in it; it holds only header data from the
//! verified header and the device's current provides until `Download` ends; directories
//! are 0700, files 0600, written without a trailing newline (the 3.x client writes the
//! values bare; 4.x adds one to `version` and `current_*`); JSON files are pretty-printed
//! with two spaces, `meta-data` is `null` when the payload has none. Payload file names are
//! single path components ([`check_name`]): a name never leads out of `streams/` or
//! `files/`. The tree is removed after `Cleanup` ([`remove`]).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use crate::BackendError;

/// The device's state before the install, written as `current_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentProvides {
    /// The installed artifact's name (`artifact_name` provide).
    pub artifact_name: String,
    /// The installed artifact's group; empty when it has none.
    pub artifact_group: String,
    /// The device type (the value of `device_type=` in `<data_dir>/device_type`).
    pub device_type: String,
}

/// What a module's tree says about the artifact being installed: from its verified header.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleHeader {
    pub artifact_name: String,
    /// Empty when the artifact provides no group.
    pub artifact_group: String,
    pub payload_type: String,
    /// `header-info` (the whole JSON document).
    pub header_info: serde_json::Value,
    /// The payload's `type-info`.
    pub type_info: serde_json::Value,
    /// The payload's `meta-data`, if it has one.
    pub meta_data: Option<serde_json::Value>,
    /// The device before the install.
    pub current: CurrentProvides,
}

/// Removes any old tree at `dir` and creates the tree for `header`: the value files,
/// `header/`, `tmp/`, `streams/` and the `stream-next` FIFO. Not synced: a restart before
/// `ArtifactInstall` only cleans up; [`sync`] makes the tree durable when a reboot follows.
pub fn create(dir: &Path, header: &ModuleHeader) -> Result<(), BackendError> {
    remove(dir)?;
    for sub in ["header", "tmp", "streams"] {
        mkdir_all(&dir.join(sub))?;
    }
    let json = |v: &serde_json::Value, what: &str| {
        serde_json::to_string_pretty(v)
            .map_err(|e| BackendError::failed(format!("module tree: {what}: {e}")))
    };
    let meta = json(
        header
            .meta_data
            .as_ref()
            .unwrap_or(&serde_json::Value::Null),
        "meta-data",
    )?;
    let files: [(&str, String); 10] = [
        ("version", "3".to_string()),
        (
            "current_artifact_name",
            header.current.artifact_name.clone(),
        ),
        (
            "current_artifact_group",
            header.current.artifact_group.clone(),
        ),
        ("current_device_type", header.current.device_type.clone()),
        ("header/artifact_group", header.artifact_group.clone()),
        ("header/artifact_name", header.artifact_name.clone()),
        ("header/payload_type", header.payload_type.clone()),
        (
            "header/header-info",
            json(&header.header_info, "header-info")?,
        ),
        ("header/type-info", json(&header.type_info, "type-info")?),
        ("header/meta-data", meta),
    ];
    for (name, content) in &files {
        write_value(&dir.join(name), content.as_bytes())?;
    }
    mkfifo(&dir.join("stream-next"))?;
    Ok(())
}

/// Makes the tree (and whatever else is dirty) durable before a reboot: after the reboot
/// the module's `ArtifactVerifyReboot` and `ArtifactCommit` may read `files/` and `tmp/`.
/// The official client syncs after every download instead; within one boot the page cache
/// serves the module the same bytes, and a restart before `ArtifactInstall` only cleans
/// up, so the bridge pays for the flush only when a reboot comes.
pub async fn sync() {
    if let Err(e) = tokio::task::spawn_blocking(nix::unistd::sync).await {
        tracing::warn!(error = %e, "sync before the reboot");
    }
}

/// The module did not read `stream-next`: the streams tree gives way to the files tree
/// (`streams/` and `stream-next` removed, `files/` created), as the official client does.
pub fn switch_to_files(dir: &Path) -> Result<(), BackendError> {
    let streams = dir.join("streams");
    std::fs::remove_dir_all(&streams)
        .map_err(|e| BackendError::io(format!("remove {}", streams.display()), e))?;
    let next = dir.join("stream-next");
    std::fs::remove_file(&next)
        .map_err(|e| BackendError::io(format!("remove {}", next.display()), e))?;
    mkdir_all(&dir.join("files"))
}

/// Removes the tree; a tree that is not there is fine.
pub fn remove(dir: &Path) -> Result<(), BackendError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(BackendError::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// A payload file name as a tree entry: one normal path component, or an error.
pub fn check_name(name: &str) -> Result<&str, BackendError> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0', '\n']);
    if bad {
        return Err(BackendError::failed(format!(
            "payload file name {name:?} is not a plain file name"
        )));
    }
    Ok(name)
}

/// Creates a FIFO (0600) at `path`.
pub fn mkfifo(path: &Path) -> Result<(), BackendError> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| BackendError::io(format!("mkfifo {}", path.display()), e.into()))
}

fn mkdir_all(path: &Path) -> Result<(), BackendError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| BackendError::io(format!("create {}", path.display()), e))
}

fn write_value(path: &Path, content: &[u8]) -> Result<(), BackendError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| BackendError::io(format!("create {}", path.display()), e))?;
    f.write_all(content)
        .map_err(|e| BackendError::io(format!("write {}", path.display()), e))
}
