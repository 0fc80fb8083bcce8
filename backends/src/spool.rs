//! The spool, shared by the backends that must not hand an installer a byte before the
//! payload verified (features `rauc` and `swupdate`): the payload stream is written to one
//! file in a spool directory, hashed as it is written, and released only once its size and
//! SHA-256 matched the manifest's.
//!
//! - RAUC takes a bundle only as a path to a regular file that no other process holds open
//!   (plain bundles are checked over the whole file before they are mounted):
//!   [`Spool::seal`] closes the file and hands out its path.
//! - SWUpdate acts on the stream as it reads it (parses `sw-description`, runs its
//!   commands, installs at the cpio trailer): [`Spool::seal_open`] keeps the very
//!   descriptor that was hashed, rewound, so what is streamed afterwards is what was
//!   verified (no reopening by name).
//!
//! Invariants:
//! - the file is created new (`O_EXCL`), mode 0600, named `mender-bridge-*<suffix>`, after
//!   the directory was checked to be a local filesystem with room for the whole payload;
//! - it never grows past the payload's declared size, and every byte is hashed as it is
//!   written; sealing refuses a short file or a hash that differs from the manifest's,
//!   then fsyncs;
//! - the file is removed when the [`Spool`] is dropped, whatever happened; leftovers of a
//!   crash are removed by [`clean`];
//! - an install stopped after its download ([`Spool::keep`]) renames the sealed file to
//!   `kept-mender-bridge-*<suffix>`, which [`clean`] leaves alone; the process that finishes
//!   it ([`Spool::reopen`]) hashes the whole file again through the descriptor it then
//!   seals, so bytes that changed on disk in between are refused like a corrupt download.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use serde::Deserialize as _;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::{BackendError, PayloadInfo};

const PREFIX: &str = "mender-bridge-";
/// A sealed spool file kept for a later process ([`Spool::keep`]).
const KEPT_PREFIX: &str = "kept-mender-bridge-";

/// What differs between the backends that spool: the setting that names the directory
/// (for messages), the file suffix (for [`clean`]), what the payload is called and why the
/// directory must be local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolKind {
    /// The setting naming the directory, e.g. `backend.rauc.spool_dir`.
    pub setting: &'static str,
    /// File name suffix, e.g. `.raucb`.
    pub suffix: &'static str,
    /// What the payload is, e.g. `bundle`.
    pub what: &'static str,
    /// Why a network or FUSE filesystem is refused.
    pub local_why: &'static str,
}

/// RAUC's spool.
pub const RAUC: SpoolKind = SpoolKind {
    setting: "backend.rauc.spool_dir",
    suffix: ".raucb",
    what: "bundle",
    local_why: "RAUC needs the bundle on a local filesystem",
};

/// SWUpdate's spool.
pub const SWUPDATE: SpoolKind = SpoolKind {
    setting: "backend.swupdate.spool_dir",
    suffix: ".swu",
    what: "update",
    local_why: "a verified update must not change under the bridge: the spool must be on a \
                local filesystem",
};

/// Filesystems RAUC does not trust for plain bundles (network and FUSE), and the spool
/// would not be local on.
const REMOTE_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x6573_7546, "FUSE"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x517B, "SMB"),
    (0x0102_1997, "9P"),
];

/// Creates `dir` (mode 0700, parents as needed) when it is missing, then checks it
/// ([`check_dir`]) and removes crash leftovers ([`clean`]). Returns the free bytes there.
pub fn prepare_dir(dir: &Path, kind: &SpoolKind) -> Result<u64, BackendError> {
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                BackendError::not_started(format!(
                    "cannot create spool directory {} ({}): {e}",
                    dir.display(),
                    kind.setting
                ))
            })?;
    }
    let free = check_dir(dir, kind)?;
    clean(dir, kind);
    Ok(free)
}

/// Checks that `dir` can spool: a directory on a local filesystem that this process can
/// write to. Returns the free bytes there.
pub fn check_dir(dir: &Path, kind: &SpoolKind) -> Result<u64, BackendError> {
    let named = || format!("spool directory {} ({})", dir.display(), kind.setting);
    let meta = std::fs::metadata(dir)
        .map_err(|e| BackendError::not_started(format!("{}: {e}", named())))?;
    if !meta.is_dir() {
        return Err(BackendError::not_started(format!(
            "{} is not a directory",
            named()
        )));
    }
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(|e| BackendError::not_started(format!("{} is not writable: {e}", named())))?;
    let fs = nix::sys::statfs::statfs(dir)
        .map_err(|e| BackendError::not_started(format!("statfs {}: {e}", dir.display())))?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = i64::from(fs.filesystem_type().0 as i64);
    if let Some((_, name)) = REMOTE_FS.iter().find(|(m, _)| *m == magic) {
        return Err(BackendError::not_started(format!(
            "{} is on {name}; {}",
            named(),
            kind.local_why
        )));
    }
    free_space(dir)
}

/// Bytes an unprivileged writer may still use in `dir` (statvfs `f_bavail * f_frsize`).
pub fn free_space(dir: &Path) -> Result<u64, BackendError> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| BackendError::not_started(format!("statvfs {}: {e}", dir.display())))?;
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

/// Removes spool files a crashed process left in `dir` (only ours, by name). Returns how
/// many were removed.
pub fn clean(dir: &Path, kind: &SpoolKind) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(kind.suffix) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed a stale spool file");
                    n += 1;
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "cannot remove a stale spool file")
                }
            }
        }
    }
    n
}

/// The file and the running hash, owned by whichever side holds them: the spool between
/// writes, a blocking thread during one.
struct Sink {
    file: std::fs::File,
    hasher: Sha256,
}

/// One payload being spooled. Removed from disk on drop.
///
/// Each chunk is hashed and written on a blocking thread while the caller fetches the next
/// one (one write in flight): the spool's SHA-256 and the write system calls overlap the
/// download and the reader's own hashing instead of adding to them.
pub struct Spool {
    path: PathBuf,
    sink: Option<Sink>,
    in_flight: Option<tokio::task::JoinHandle<(Sink, std::io::Result<()>)>>,
    sealed: bool,
    written: u64,
    payload: PayloadInfo,
    kind: SpoolKind,
}

impl Spool {
    /// Creates the spool file for `payload` in `dir`, after checking the directory and
    /// that it has room for `payload.size` bytes.
    pub async fn create(
        dir: &Path,
        payload: &PayloadInfo,
        kind: &SpoolKind,
    ) -> Result<Spool, BackendError> {
        let free = check_dir(dir, kind)?;
        if payload.size > free {
            return Err(BackendError::not_started(format!(
                "spool directory {} ({}) has {free} bytes free, the {} {} needs {}",
                dir.display(),
                kind.setting,
                kind.what,
                payload.file_name,
                payload.size
            )));
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = dir.join(format!(
            "{PREFIX}{}-{}{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            kind.suffix
        ));
        // Read too: SWUpdate's spool is streamed back from this descriptor (`seal_open`).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| BackendError::io(format!("creating spool file {}", path.display()), e))?;
        tracing::debug!(file = %path.display(), size = payload.size, what = kind.what, "spooling");
        Ok(Spool {
            path,
            sink: Some(Sink {
                file,
                hasher: Sha256::new(),
            }),
            in_flight: None,
            sealed: false,
            written: 0,
            payload: payload.clone(),
            kind: *kind,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Waits for the write in flight; the sink is back afterwards.
    async fn settle(&mut self) -> Result<(), BackendError> {
        let Some(op) = self.in_flight.take() else {
            return Ok(());
        };
        let (sink, result) = op.await.map_err(|e| {
            BackendError::io(
                format!("writing spool file {}", self.path.display()),
                std::io::Error::other(e),
            )
        })?;
        self.sink = Some(sink);
        result
            .map_err(|e| BackendError::io(format!("writing spool file {}", self.path.display()), e))
    }

    /// Appends a chunk; more than the declared size is an error. Returns once the previous
    /// chunk is written; this one is hashed and written in the background.
    pub async fn write(&mut self, chunk: &Bytes) -> Result<(), BackendError> {
        if self.sealed {
            return Err(BackendError::failed(
                "write after the spool file was sealed",
            ));
        }
        let after = self.written.saturating_add(chunk.len() as u64);
        if after > self.payload.size {
            return Err(BackendError::failed(format!(
                "{} {} is longer than its declared {} bytes",
                self.kind.what, self.payload.file_name, self.payload.size
            )));
        }
        self.settle().await?;
        let Some(mut sink) = self.sink.take() else {
            return Err(BackendError::failed("the spool file is gone"));
        };
        let chunk = chunk.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            sink.hasher.update(&chunk);
            let r = sink.file.write_all(&chunk);
            (sink, r)
        }));
        self.written = after;
        Ok(())
    }

    /// The whole payload is here: checks size and SHA-256 against the manifest, fsyncs
    /// and closes the file. Returns its path, ready for RAUC.
    pub async fn seal(&mut self) -> Result<&Path, BackendError> {
        let file = self.verify().await?;
        drop(file);
        tracing::info!(file = %self.path.display(), what = self.kind.what, bytes = self.written, "spooled, verified and closed");
        Ok(&self.path)
    }

    /// As [`Spool::seal`], but keeps the descriptor that was written and hashed, rewound
    /// to the start: the caller streams exactly the verified bytes without reopening the
    /// file by name. The file is still removed when the spool is dropped.
    pub async fn seal_open(&mut self) -> Result<std::fs::File, BackendError> {
        let mut file = self.verify().await?;
        use std::io::Seek;
        file.rewind().map_err(|e| {
            BackendError::io(format!("rewinding spool file {}", self.path.display()), e)
        })?;
        tracing::info!(file = %self.path.display(), what = self.kind.what, bytes = self.written, "spooled and verified");
        Ok(file)
    }

    /// Size and SHA-256 against the manifest, then fsync. Returns the file.
    async fn verify(&mut self) -> Result<std::fs::File, BackendError> {
        if self.sealed {
            return Err(BackendError::failed("the spool file was sealed twice"));
        }
        self.sealed = true;
        self.settle().await?;
        let sink = self
            .sink
            .take()
            .ok_or_else(|| BackendError::failed("the spool file is gone"))?;
        let what = self.kind.what;
        if self.written != self.payload.size {
            return Err(BackendError::failed(format!(
                "{what} {}: {} of {} bytes spooled",
                self.payload.file_name, self.written, self.payload.size
            )));
        }
        let got: [u8; 32] = sink.hasher.finalize().into();
        if got != self.payload.sha256 {
            return Err(BackendError::failed(format!(
                "spooled {what} {} has SHA-256 {}, the manifest says {}",
                self.payload.file_name,
                hex::encode(got),
                hex::encode(self.payload.sha256)
            )));
        }
        let file = sink.file;
        tokio::task::spawn_blocking(move || file.sync_all().map(|()| file))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                BackendError::io(format!("fsync of spool file {}", self.path.display()), e)
            })
    }
}

/// A sealed spool file kept for the process that finishes the install (saved in the
/// standalone record, which only root can write).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptSpool {
    pub path: PathBuf,
    pub payload: PayloadInfo,
}

impl KeptSpool {
    /// Is this a file [`Spool::keep`] made in `dir` (the backend's spool directory)? The
    /// path comes from the record: nothing else is opened or removed.
    fn check(&self, dir: &Path, kind: &SpoolKind) -> Result<(), BackendError> {
        let named = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .is_some_and(|n| n.starts_with(KEPT_PREFIX) && n.ends_with(kind.suffix));
        if named && self.path.parent() == Some(dir) {
            return Ok(());
        }
        Err(BackendError::failed(format!(
            "kept {} {}: not a kept spool file in {} ({})",
            kind.what,
            self.path.display(),
            dir.display(),
            kind.setting
        )))
    }

    /// Removes the kept file (the install was given up).
    pub fn remove(&self, dir: &Path, kind: &SpoolKind) {
        if let Err(e) = self.check(dir, kind) {
            tracing::warn!("{e}; not removed");
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::info!(file = %self.path.display(), "kept spool file removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot remove the kept spool file")
            }
        }
    }
}

/// [`crate::Backend::suspend`] of a backend that spools: the spool kept, as the record's
/// JSON.
pub async fn suspend(spool: Option<Spool>) -> Result<serde_json::Value, BackendError> {
    let kept = crate::begun(spool, "suspend")?.keep().await?;
    serde_json::to_value(kept).map_err(|e| BackendError::failed(format!("kept spool: {e}")))
}

/// [`crate::Backend::resume`] of a backend that spools: the kept spool from the record.
pub fn resume(saved: &serde_json::Value) -> Result<KeptSpool, BackendError> {
    KeptSpool::deserialize(saved)
        .map_err(|e| BackendError::failed(format!("the kept spool in the record: {e}")))
}

/// Before `finish` seals the spool: the kept one of a resumed install, read back (and so
/// checked again by the seal), when this process did not download it.
pub async fn take_back(
    spool: &mut Option<Spool>,
    kept: &mut Option<KeptSpool>,
    dir: &Path,
    kind: &SpoolKind,
) -> Result<(), BackendError> {
    if spool.is_none() {
        if let Some(k) = kept.take() {
            *spool = Some(Spool::reopen(&k, dir, kind).await?);
        }
    }
    Ok(())
}

impl Spool {
    /// Seals the spool (size and SHA-256 against the manifest, fsync) and keeps the file
    /// under a name [`clean`] leaves alone, for [`Spool::reopen`] in a later process.
    pub async fn keep(mut self) -> Result<KeptSpool, BackendError> {
        drop(self.verify().await?);
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = name.strip_prefix(PREFIX).unwrap_or(&name);
        let kept = self.path.with_file_name(format!("{KEPT_PREFIX}{unique}"));
        std::fs::rename(&self.path, &kept)
            .map_err(|e| BackendError::io(format!("keeping spool file {}", kept.display()), e))?;
        if let Some(dir) = kept.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| BackendError::io(format!("fsync of {}", dir.display()), e))?;
        }
        tracing::info!(file = %kept.display(), what = self.kind.what, "spooled, verified and kept for a later resume");
        Ok(KeptSpool {
            path: kept,
            payload: self.payload.clone(),
        })
    }

    /// The spool of a kept install, read back through the hasher: [`Spool::seal`] and
    /// [`Spool::seal_open`] then check it as if it had just been downloaded. The file must
    /// be a regular file in `dir` named as [`Spool::keep`] names them (no symbolic link is
    /// followed); it is removed when the spool is dropped.
    pub async fn reopen(
        kept: &KeptSpool,
        dir: &Path,
        kind: &SpoolKind,
    ) -> Result<Spool, BackendError> {
        let bad = |why: String| {
            BackendError::failed(format!("kept {} {}: {why}", kind.what, kept.path.display()))
        };
        kept.check(dir, kind)?;
        let path = kept.path.clone();
        let limit = kept.payload.size;
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(Sink, u64)> {
            use std::io::Read;
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)?;
            if !file.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                if total > limit {
                    break;
                }
            }
            Ok((Sink { file, hasher }, total))
        })
        .await
        .map_err(|e| bad(e.to_string()))?
        .map_err(|e| bad(e.to_string()))?;
        let (sink, written) = read;
        Ok(Spool {
            path: kept.path.clone(),
            sink: Some(sink),
            in_flight: None,
            sealed: false,
            written,
            payload: kept.payload.clone(),
            kind: *kind,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // A write still in flight holds the file open until it ends; unlinking now is
        // fine (the name is gone at once, the blocks with the last descriptor).
        if let Some(op) = self.in_flight.take() {
            op.abort();
        }
        self.sink = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::debug!(file = %self.path.display(), "spool file removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot remove the spool file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn payload(data: &[u8]) -> PayloadInfo {
        PayloadInfo {
            payload_type: "rauc".into(),
            file_name: "update.raucb".into(),
            size: data.len() as u64,
            sha256: Sha256::digest(data).into(),
        }
    }

    #[tokio::test]
    async fn spooled_0600_sealed_after_the_hash_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; 100_000];
        let p = payload(&data);
        let mut s = Spool::create(dir.path(), &p, &RAUC).await.unwrap();
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        s.write(&Bytes::copy_from_slice(&data[..60_000]))
            .await
            .unwrap();
        s.write(&Bytes::copy_from_slice(&data[60_000..]))
            .await
            .unwrap();
        let path = s.seal().await.unwrap().to_path_buf();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        drop(s);
        assert!(!path.exists(), "removed on drop");
    }

    #[tokio::test]
    async fn seal_open_hands_back_the_hashed_descriptor_rewound() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let p = payload(&data);
        let mut s = Spool::create(dir.path(), &p, &SWUPDATE).await.unwrap();
        assert!(s.path().to_string_lossy().ends_with(".swu"));
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let mut f = s.seal_open().await.unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists(), "removed on drop, the descriptor still open");
        let mut bad = payload(&data);
        bad.sha256[31] ^= 1;
        let mut s = Spool::create(dir.path(), &bad, &SWUPDATE).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let e = s.seal_open().await.unwrap_err().to_string();
        assert!(e.contains("spooled update") && e.contains("SHA-256"), "{e}");
    }

    #[tokio::test]
    async fn a_wrong_hash_a_short_or_long_payload_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![1u8; 1000];
        let mut p = payload(&data);
        p.sha256[0] ^= 1;
        let mut s = Spool::create(dir.path(), &p, &RAUC).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let e = s.seal().await.unwrap_err().to_string();
        assert!(e.contains("SHA-256"), "{e}");
        drop(s);
        let p = payload(&data);
        let mut s = Spool::create(dir.path(), &p, &RAUC).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data[..10])).await.unwrap();
        assert!(s
            .seal()
            .await
            .unwrap_err()
            .to_string()
            .contains("10 of 1000"));
        drop(s);
        let mut s = Spool::create(dir.path(), &p, &RAUC).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let e = s.write(&Bytes::from_static(b"x")).await.unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        drop(s);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "every spool file removed on drop"
        );
    }

    #[tokio::test]
    async fn no_room_or_no_directory_is_refused_before_a_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = payload(b"x");
        p.size = u64::MAX / 2;
        let e = Spool::create(dir.path(), &p, &RAUC)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("not started: spool directory") && e.contains("bytes free"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = check_dir(&dir.path().join("absent"), &RAUC)
            .unwrap_err()
            .to_string();
        assert!(e.contains("backend.rauc.spool_dir"), "{e}");
    }

    #[tokio::test]
    async fn a_kept_spool_survives_clean_and_is_hashed_again_when_reopened() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        let p = payload(&data);
        let mut s = Spool::create(dir.path(), &p, &SWUPDATE).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let kept = s.keep().await.unwrap();
        let name = kept
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(KEPT_PREFIX) && name.ends_with(".swu"),
            "{name}"
        );
        assert_eq!(clean(dir.path(), &SWUPDATE), 0, "clean leaves a kept file");
        assert_eq!(std::fs::read(&kept.path).unwrap(), data);

        // Reopened: the seal hands back the verified bytes; dropping removes the file.
        let mut s = Spool::reopen(&kept, dir.path(), &SWUPDATE).await.unwrap();
        let mut back = Vec::new();
        s.seal_open().await.unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        drop(s);
        assert!(!kept.path.exists());

        // Changed on disk (same size, then longer): the seal refuses it.
        for change in [false, true] {
            let mut s = Spool::create(dir.path(), &p, &SWUPDATE).await.unwrap();
            s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
            let kept = s.keep().await.unwrap();
            let mut bytes = data.clone();
            if change {
                bytes.extend_from_slice(b"more");
            } else {
                bytes[1_234_567] ^= 1;
            }
            std::fs::write(&kept.path, &bytes).unwrap();
            let mut s = Spool::reopen(&kept, dir.path(), &SWUPDATE).await.unwrap();
            let e = s.seal_open().await.unwrap_err().to_string();
            assert!(e.contains("SHA-256") || e.contains("bytes spooled"), "{e}");
        }

        // Only a kept file by its name, and no symbolic link.
        let mut s = Spool::create(dir.path(), &p, &SWUPDATE).await.unwrap();
        s.write(&Bytes::copy_from_slice(&data)).await.unwrap();
        let kept = s.keep().await.unwrap();
        let other = KeptSpool {
            path: dir.path().join("other.swu"),
            ..kept.clone()
        };
        std::fs::copy(&kept.path, &other.path).unwrap();
        let e = Spool::reopen(&other, dir.path(), &SWUPDATE)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a kept spool file"), "{e}");
        let elsewhere = tempfile::tempdir().unwrap();
        let e = Spool::reopen(&kept, elsewhere.path(), &SWUPDATE)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a kept spool file"), "{e}");
        kept.remove(elsewhere.path(), &SWUPDATE);
        assert!(
            kept.path.exists(),
            "only a kept file of the spool directory is removed"
        );
        let link = KeptSpool {
            path: dir.path().join("kept-mender-bridge-link.swu"),
            ..kept.clone()
        };
        std::os::unix::fs::symlink(&kept.path, &link.path).unwrap();
        assert!(
            Spool::reopen(&link, dir.path(), &SWUPDATE).await.is_err(),
            "a link is not followed"
        );
        kept.remove(dir.path(), &SWUPDATE);
        assert!(!kept.path.exists());
    }

    #[test]
    fn clean_removes_only_our_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mender-bridge-1-0.raucb"), b"x").unwrap();
        std::fs::write(dir.path().join("other.raucb"), b"x").unwrap();
        assert_eq!(clean(dir.path(), &RAUC), 1);
        assert!(dir.path().join("other.raucb").exists());
    }
}
