//! Installer backends for mender-bridge: the [`Backend`] trait every backend implements,
//! the progress events they report, [`BackendError`], and the backends themselves, each
//! laid out the same way (`<name>/{mod.rs, config.rs, backend.rs}`): `raw` (the A/B
//! writer, always built), `rauc` (RAUC over D-Bus, feature `rauc`), `swupdate` (SWUpdate
//! over its IPC sockets, feature `swupdate`) and `module` (Update Modules v3, always
//! built). [`AnyBackend`] is whichever built-in one the configuration selected;
//! [`Installers`] is what the engine holds: that backend plus the Update Modules, routing
//! each install by its payload type.
//!
//! Invariants: every backend's configuration type is built whatever the features, so the
//! configuration layer reads and checks `[backend.*]` in every build; only the backends
//! themselves are gated. This crate knows nothing of HTTP, Mender JSON or the server.

use std::future::Future;

use bytes::Bytes;

mod any;
mod bus;
mod error;
pub mod fsutil;
mod installers;
pub mod module;
pub mod process_group;
pub mod rauc;
pub mod raw;
#[cfg(any(feature = "rauc", feature = "swupdate"))]
pub mod spool;
pub mod swupdate;

pub use any::AnyBackend;
pub use bus::Bus;
pub(crate) use error::begun;
pub use error::BackendError;
pub use installers::Installers;
pub use module::ModuleHeader;

/// What is known about a payload file before its first byte reaches a backend. Kept in the
/// standalone record by a suspended install (the SHA-256 as hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PayloadInfo {
    /// Payload type from the artifact header (`rootfs-image`, `rauc`, `swu`, ...).
    pub payload_type: String,
    /// File name inside the artifact's data tar.
    pub file_name: String,
    /// Exact size in bytes, from the tar header.
    pub size: u64,
    /// Expected SHA-256 (from the artifact manifest); a backend that can read back what it
    /// wrote compares against it.
    #[serde(with = "hex_sha256")]
    pub sha256: [u8; 32],
}

/// A SHA-256 as 64 hex digits in JSON.
mod hex_sha256 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sum: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sum))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut sum = [0u8; 32];
        hex::decode_to_slice(&text, &mut sum).map_err(serde::de::Error::custom)?;
        Ok(sum)
    }
}

/// The default [`Backend::hold_after_download`] and [`Backend::suspend`] refusal.
const CANNOT_STOP: &str = "this installer cannot stop between the download and the install";

/// One progress report while an installer installs: bytes done out of a total, an optional
/// percentage from the installer itself, and its message (e.g. RAUC's "Copying image to
/// rootfs.1").
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub percent: Option<u8>,
    pub message: Option<String>,
}

/// What `finish` activated: is the new software running, or does the device need a reboot
/// to run it?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Installed and running (or nothing to run, e.g. a dry run): commit right away.
    Installed,
    /// Activated for the next boot, on trial until committed after the reboot.
    RebootRequired,
}

/// Which reboot a step takes (into the new software, or back out of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// No reboot.
    None,
    /// The engine reboots the host; start-up resumes from the saved phase.
    Host,
    /// The installer reboots what it updated itself and returns (an Update Module that
    /// answered `Yes`, e.g. for a peripheral): [`Backend::installer_reboot`] or
    /// [`Backend::installer_rollback_reboot`], then the engine goes on at once.
    Installer,
}

/// Where a backend sends progress; the deployment engine turns it into Mender substates.
pub trait ProgressSink: Send + Sync {
    fn report(&self, progress: Progress);
}

/// The seam between the deployment engine and an installer.
///
/// Call order: `select` (the payload type, from the verified header), `preflight`,
/// `prepare` (the verified header), then `begin`, `write`* (each payload file in order),
/// then `downloaded` and `finish` once the whole artifact verified (or `abort` otherwise). When `finish`
/// asked for a reboot: `reboot` (and `installer_reboot` for [`Reboot::Installer`]), after
/// it `verify_reboot`; then `commit`, or `can_roll_back` and `rollback` (then
/// `rollback_reboot`, `installer_rollback_reboot`, `verify_rollback_reboot` as it asks);
/// a failed deployment then gets `failure`; every deployment ends with `cleanup`. After a restart the engine
/// calls `select` with the recorded payload type before anything else.
///
/// Invariant for implementors: bytes received through `write` are unverified until `finish`
/// is called. The artifact reader withholds the last chunk of a payload until its SHA-256
/// matched, but everything before it may belong to a corrupt image: nothing may be
/// activated, marked bootable or handed to an installer as complete before `finish`.
pub trait Backend: Send {
    /// Payload types this backend installs.
    fn payload_types(&self) -> Vec<&str>;
    /// The payload of this install is of `payload_type` (`None`: an empty payload): take
    /// it, or say why not. The default takes the types of [`Backend::payload_types`].
    fn select(&mut self, payload_type: Option<&str>) -> Result<(), BackendError> {
        let Some(t) = payload_type else {
            return Ok(());
        };
        let types = self.payload_types();
        if types.contains(&t) {
            Ok(())
        } else {
            Err(BackendError::not_started(format!(
                "no backend installs '{t}' payloads (this one takes: {})",
                types.join(", ")
            )))
        }
    }
    /// Before the payload streams: is the installer there and able to take an install
    /// (daemon reachable, spool space, not busy)? An error fails the deployment before a
    /// payload byte is fetched. The default has nothing to check.
    fn preflight(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// After `preflight`, before the first `begin`: the verified header of the artifact
    /// (an Update Module's file tree is made from it). The default needs nothing.
    fn prepare(&mut self, _header: &ModuleHeader) -> Result<(), BackendError> {
        Ok(())
    }
    /// Takes every file of a payload (`begin` once per file) and is finished even when the
    /// payload has no file at all (an Update Module). The default takes exactly one file.
    fn whole_payload(&self) -> bool {
        false
    }
    /// Checks space, slot and daemon before any byte is sent.
    fn begin(
        &mut self,
        payload: &PayloadInfo,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Feeds the next chunk of the payload.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Every payload byte was delivered and the whole artifact verified, before
    /// `Download_Leave`: an installer that downloads in a step of its own ends it here (an
    /// Update Module's `Download`, then `SupportsRollback`). Nothing may be activated. The
    /// default has nothing to end.
    fn downloaded(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// The install will stop after the download (`--stop-before ArtifactInstall_Enter`) and
    /// be finished by a later process: called after `prepare`, before the first payload
    /// byte, so an installer that would act on the bytes as they stream can keep them
    /// instead (SWUpdate spools), or refuse before anything is fetched. The default
    /// refuses: this installer keeps nothing across processes.
    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        Err(BackendError::not_started(CANNOT_STOP))
    }
    /// After `downloaded`, for an install held by [`Backend::hold_after_download`]: makes
    /// what it wrote survive this process and returns what a later process hands to
    /// [`Backend::resume`]. Nothing is activated.
    fn suspend(&mut self) -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send {
        async { Err(BackendError::not_started(CANNOT_STOP)) }
    }
    /// In a later process: takes back the install [`Backend::suspend`] kept, so that
    /// `finish`, `abort` or `cleanup` follow. Cheap: a backend that kept payload bytes
    /// itself (raw, RAUC, SWUpdate) checks them against the manifest's size and SHA-256 in
    /// `finish`, before anything is activated, because they sat on disk between the two
    /// processes; an Update Module's tree is the module's, as with the official client.
    fn resume(&mut self, _saved: &serde_json::Value) -> Result<(), BackendError> {
        Err(BackendError::not_started(
            "this installer cannot finish an install another process downloaded",
        ))
    }
    /// All bytes delivered and verified: let the install complete.
    fn finish(
        &mut self,
        progress: &dyn ProgressSink,
    ) -> impl Future<Output = Result<Activation, BackendError>> + Send;
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
    /// `finish` returned [`Activation::RebootRequired`]: which reboot it takes. The
    /// default: the host.
    fn reboot(&mut self) -> impl Future<Output = Result<Reboot, BackendError>> + Send {
        async { Ok(Reboot::Host) }
    }
    /// For [`Reboot::Installer`]: the installer reboots what it updated. The default has
    /// nothing to do.
    fn installer_reboot(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// Can `rollback` undo this install? When it cannot, a failure after activation leaves
    /// the device inconsistent (the official client's `_INCONSISTENT` artifact name). The
    /// default: yes.
    fn can_roll_back(&mut self) -> impl Future<Output = Result<bool, BackendError>> + Send {
        async { Ok(true) }
    }
    /// After `rollback`: which reboot going back takes. The default: none.
    fn rollback_reboot(&mut self) -> impl Future<Output = Result<Reboot, BackendError>> + Send {
        async { Ok(Reboot::None) }
    }
    /// For a rollback's [`Reboot::Installer`]: the installer reboots what it rolled back.
    /// Its outcome is judged by `verify_rollback_reboot`. The default has nothing to do.
    fn installer_rollback_reboot(
        &mut self,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// After the rollback reboot: is the old software back? The default: yes.
    fn verify_rollback_reboot(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// The deployment failed (after `abort` or `rollback`): the installer's own failure
    /// handling. The default has none.
    fn failure(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
    /// The deployment is over (committed or failed): the installer removes what it kept
    /// for it. The default has nothing to remove.
    fn cleanup(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send {
        async { Ok(()) }
    }
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
