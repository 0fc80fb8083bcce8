//! Installer backends for mender-bridge: the [`Backend`] trait every adapter implements, and
//! the progress events they report. The adapters (`raw`, `rauc`, `swupdate`) arrive with
//! their own issues; this crate knows nothing of HTTP, Mender JSON or the server.

use std::future::Future;

use bytes::Bytes;

pub mod fsutil;
#[cfg(feature = "rauc")]
pub mod rauc;
pub mod raw;
/// Spooling a payload to disk until it verified (the RAUC and SWUpdate backends).
#[cfg(any(feature = "rauc", feature = "swupdate"))]
pub mod spool;
/// The SWUpdate backend (feature `swupdate`); its configuration type is always built.
pub mod swupdate;

/// What is known about a payload file before its first byte reaches a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadInfo {
    /// Payload type from the artifact header (`rootfs-image`, `rauc`, `swu`, ...).
    pub payload_type: String,
    /// File name inside the artifact's data tar.
    pub file_name: String,
    /// Exact size in bytes, from the tar header.
    pub size: u64,
    /// Expected SHA-256 (from the artifact manifest); a backend that can read back what it
    /// wrote compares against it.
    pub sha256: [u8; 32],
}

/// The phase a backend reports progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Downloading,
    Installing,
    Verifying,
}

/// One progress report: bytes done out of a total, an optional percentage from the
/// installer itself, and its message (e.g. RAUC's "Copying image to rootfs.1").
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub percent: Option<u8>,
    pub message: Option<String>,
}

/// After `finish`: does the device need a reboot to run the new software?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    RebootRequired,
}

/// Errors a backend reports, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The installer refused before anything was written (busy, absent, no space).
    #[error("not started: {0}")]
    NotStarted(String),
    /// The installer failed during the install; `log` carries its own messages.
    #[error("install failed: {message}")]
    Failed { message: String, log: Vec<String> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a backend sends progress; the deployment engine turns it into Mender substates.
pub trait ProgressSink: Send + Sync {
    fn report(&self, progress: Progress);
}

/// The seam between the deployment engine and an installer.
///
/// Call order: `begin`, `write`* (the payload in order), then `finish` once the payload's
/// hash has matched (or `abort` otherwise). After a reboot: `verify_reboot`, then `commit`
/// or `rollback`.
///
/// Invariant for implementors: bytes received through `write` are unverified until `finish`
/// is called. The artifact reader withholds the last chunk of a payload until its SHA-256
/// matched, but everything before it may belong to a corrupt image: nothing may be
/// activated, marked bootable or handed to an installer as complete before `finish`.
pub trait Backend: Send {
    /// Payload types this backend installs.
    fn payload_types(&self) -> &[&str];
    /// Before the download starts: is the installer there and able to take an install
    /// (daemon reachable, spool space, not busy)? An error fails the deployment before a
    /// byte is fetched. The default has nothing to check.
    fn preflight(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// Checks space, slot and daemon before any byte is sent.
    fn begin(
        &mut self,
        payload: &PayloadInfo,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Feeds the next chunk of the payload.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// All bytes delivered and verified: let the install complete.
    fn finish(
        &mut self,
        progress: &dyn ProgressSink,
    ) -> impl Future<Output = Result<Outcome, BackendError>> + Send;
    /// Stops the install; nothing may be activated afterwards.
    fn abort(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// After a reboot: is the new software running, on trial (not yet committed)?
    fn verify_reboot(&mut self) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// What is running now, in the backend's own terms (a slot name), if it can tell. The
    /// engine records it when it starts committing, so that after a crash it can recognise
    /// a commit that already happened (the trial is over, the same slot still runs).
    fn booted_slot(&mut self) -> impl Future<Output = Result<Option<String>, BackendError>> + Send;
    fn commit(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn rollback(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Extra inventory attributes (booted slot, installer version, ...).
    fn inventory(&self) -> impl Future<Output = Vec<(String, serde_json::Value)>> + Send;
    /// Lines for the deployment log gathered since the last call: the installer's own
    /// messages (RAUC's progress and `LastError`, SWUpdate's notifications) and the evidence
    /// behind a `verify_reboot` answer (which slot booted, which was expected). The engine
    /// drains it after `finish`, `verify_reboot`, `commit`, `rollback`, `abort` and when a
    /// deployment fails. The default has none.
    fn take_log(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// While the payload streams: the installer's own progress, if it installs as the
    /// bytes arrive (e.g. SWUpdate's "step 1/2 rootfs.img (raw) 30%"), shown next to the
    /// download's. The default has none.
    fn stream_note(&self) -> Option<String> {
        None
    }
}
