//! [`AnyBackend`]: whichever backend the configuration selected, as one type, so the
//! engine, the daemon and the standalone commands are built once for the raw A/B writer,
//! RAUC over D-Bus or SWUpdate over its IPC sockets (the last two with their features).
//!
//! Invariant: every call is passed straight through to the selected backend; nothing is
//! added, dropped or reordered. The trait's methods return `impl Future`, so there is no
//! `dyn Backend`: the [`dispatch!`] macro writes the one `match` every method needs.

use bytes::Bytes;

#[cfg(feature = "rauc")]
use crate::rauc::RaucBackend;
use crate::raw::RawBackend;
#[cfg(feature = "swupdate")]
use crate::swupdate::SwupdateBackend;
use crate::{Activation, Backend, BackendError, ModuleHeader, PayloadInfo, ProgressSink, Reboot};

/// Whichever backend the configuration selected. (One per process, built once: the
/// variants' size difference costs nothing.)
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    Raw(RawBackend),
    #[cfg(feature = "rauc")]
    Rauc(RaucBackend),
    #[cfg(feature = "swupdate")]
    Swupdate(SwupdateBackend),
}

/// `dispatch!(self, b => b.call(...))`: `call` on whichever backend `self` holds.
macro_rules! dispatch {
    ($any:expr, $b:ident => $call:expr) => {
        match $any {
            AnyBackend::Raw($b) => $call,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc($b) => $call,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate($b) => $call,
        }
    };
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            AnyBackend::Raw(_) => "AnyBackend::Raw",
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(_) => "AnyBackend::Rauc",
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(_) => "AnyBackend::Swupdate",
        };
        f.write_str(name)
    }
}

impl Backend for AnyBackend {
    fn payload_types(&self) -> Vec<&str> {
        dispatch!(self, b => b.payload_types())
    }

    fn select(&mut self, payload_type: Option<&str>) -> Result<(), BackendError> {
        dispatch!(self, b => b.select(payload_type))
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.preflight().await)
    }

    fn prepare(&mut self, header: &ModuleHeader) -> Result<(), BackendError> {
        dispatch!(self, b => b.prepare(header))
    }

    fn whole_payload(&self) -> bool {
        dispatch!(self, b => b.whole_payload())
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        dispatch!(self, b => b.begin(payload).await)
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        dispatch!(self, b => b.write(chunk).await)
    }

    async fn downloaded(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.downloaded().await)
    }

    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.hold_after_download())
    }

    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        dispatch!(self, b => b.suspend().await)
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        dispatch!(self, b => b.resume(saved))
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        dispatch!(self, b => b.finish(progress).await)
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.abort().await)
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        dispatch!(self, b => b.verify_reboot().await)
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        dispatch!(self, b => b.booted_slot().await)
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.commit().await)
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.rollback().await)
    }

    async fn reboot(&mut self) -> Result<Reboot, BackendError> {
        dispatch!(self, b => b.reboot().await)
    }

    async fn installer_reboot(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.installer_reboot().await)
    }

    async fn installer_rollback_reboot(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.installer_rollback_reboot().await)
    }

    async fn can_roll_back(&mut self) -> Result<bool, BackendError> {
        dispatch!(self, b => b.can_roll_back().await)
    }

    async fn rollback_reboot(&mut self) -> Result<Reboot, BackendError> {
        dispatch!(self, b => b.rollback_reboot().await)
    }

    async fn verify_rollback_reboot(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.verify_rollback_reboot().await)
    }

    async fn failure(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.failure().await)
    }

    async fn cleanup(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.cleanup().await)
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        dispatch!(self, b => b.inventory().await)
    }

    fn take_log(&mut self) -> Vec<String> {
        dispatch!(self, b => b.take_log())
    }

    fn stream_note(&self) -> Option<String> {
        dispatch!(self, b => b.stream_note())
    }
}
