//! `swupdate`: streams a `swu` payload straight into a running SWUpdate daemon over its IPC
//! sockets — no copy on disk. REQ_INSTALL, then every chunk goes to the install socket as
//! it arrives; the result comes from the progress socket (GET_STATUS as the fallback),
//! SWUpdate's notifications go to the deployment log, and reboot/commit go through
//! SWUpdate's `ustate` in the bootloader environment (GET/SET_UPDATE_STATE).
//!
//! Invariants:
//! - the last chunk received is always held back until `finish` (on top of the artifact
//!   reader's own hold-back), so SWUpdate never sees a complete .swu before the Mender
//!   checksum matched; `abort` closes the socket without it and SWUpdate fails the install;
//! - one REQ_INSTALL per payload: a download that resumes keeps feeding the same install;
//! - every socket wait is bounded (`timeout`, `write_timeout`, `install_timeout`); a busy
//!   daemon is retried `busy_retries` times with doubling waits, then the install fails;
//! - nothing is written to disk by the bridge.

mod config;
pub use self::config::{SwupdateConfig, SwupdateMode};

#[cfg(feature = "swupdate")]
pub mod abi;
#[cfg(feature = "swupdate")]
mod backend;
#[cfg(feature = "swupdate")]
pub mod control;
#[cfg(feature = "swupdate")]
pub mod probe;
#[cfg(feature = "swupdate")]
pub mod progress;
#[cfg(feature = "swupdate")]
pub mod socket;
#[cfg(feature = "swupdate")]
pub use self::backend::{parse_sw_versions, Route, SwupdateBackend, PAYLOAD_TYPE};
