//! The configured backend as one type, so the engine, the daemon and the standalone
//! commands are built once for whichever installer `backend.type` names: the raw A/B
//! writer, RAUC over D-Bus or SWUpdate over its IPC sockets (the last two when built with
//! their features).

use bytes::Bytes;
#[cfg(feature = "rauc")]
use mender_bridge_backends::rauc::RaucBackend;
use mender_bridge_backends::raw::RawBackend;
#[cfg(feature = "swupdate")]
use mender_bridge_backends::swupdate::SwupdateBackend;
use mender_bridge_backends::{Backend, BackendError, Outcome, PayloadInfo, ProgressSink};

/// Whichever backend the configuration selected. Every call is passed straight through.
/// (One per process, built once: the variants' size difference costs nothing.)
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    Raw(RawBackend),
    #[cfg(feature = "rauc")]
    Rauc(RaucBackend),
    #[cfg(feature = "swupdate")]
    Swupdate(SwupdateBackend),
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyBackend::Raw(_) => f.write_str("AnyBackend::Raw"),
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(_) => f.write_str("AnyBackend::Rauc"),
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(_) => f.write_str("AnyBackend::Swupdate"),
        }
    }
}

impl Backend for AnyBackend {
    fn payload_types(&self) -> &[&str] {
        match self {
            AnyBackend::Raw(b) => b.payload_types(),
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.payload_types(),
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.payload_types(),
        }
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.preflight().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.preflight().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.preflight().await,
        }
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.begin(payload).await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.begin(payload).await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.begin(payload).await,
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.write(chunk).await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.write(chunk).await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.write(chunk).await,
        }
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Outcome, BackendError> {
        match self {
            AnyBackend::Raw(b) => b.finish(progress).await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.finish(progress).await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.finish(progress).await,
        }
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.abort().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.abort().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.abort().await,
        }
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        match self {
            AnyBackend::Raw(b) => b.verify_reboot().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.verify_reboot().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.verify_reboot().await,
        }
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        match self {
            AnyBackend::Raw(b) => b.booted_slot().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.booted_slot().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.booted_slot().await,
        }
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.commit().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.commit().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.commit().await,
        }
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        match self {
            AnyBackend::Raw(b) => b.rollback().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.rollback().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.rollback().await,
        }
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        match self {
            AnyBackend::Raw(b) => b.inventory().await,
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.inventory().await,
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.inventory().await,
        }
    }

    fn take_log(&mut self) -> Vec<String> {
        match self {
            AnyBackend::Raw(b) => b.take_log(),
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.take_log(),
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.take_log(),
        }
    }

    fn stream_note(&self) -> Option<String> {
        match self {
            AnyBackend::Raw(b) => b.stream_note(),
            #[cfg(feature = "rauc")]
            AnyBackend::Rauc(b) => b.stream_note(),
            #[cfg(feature = "swupdate")]
            AnyBackend::Swupdate(b) => b.stream_note(),
        }
    }
}
