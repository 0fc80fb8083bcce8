//! `swupdate`: installs a `swu` payload through a running SWUpdate daemon over its IPC
//! sockets. REQ_INSTALL, then the .swu goes to the install socket; the result comes from the
//! progress socket (GET_STATUS as the fallback), SWUpdate's notifications go to the
//! deployment log, and reboot/commit go through SWUpdate's `ustate` in the bootloader
//! environment (GET/SET_UPDATE_STATE).
//!
//! SWUpdate acts on a .swu as it reads it (parses `sw-description`, runs its pre-update
//! command, installs and switches at the cpio trailer), so how the bytes get there depends
//! on who verifies them (`mode`, decided at each preflight, `probe.rs`):
//! - **stream** (SWUpdate proved it enforces signed images, or mode `auto` with nothing to
//!   authenticate the payload): every chunk goes to SWUpdate as it arrives, the last one
//!   held back until `finish`;
//! - **spool** (mode `spool`, or `auto` when SWUpdate does not enforce signatures and the
//!   bridge checks the artifact's): the payload goes to a 0600 spool file, and SWUpdate gets
//!   its first byte (and the REQ_INSTALL) only in `finish`, after size and SHA-256 matched.
//!
//! Invariants:
//! - mode `stream` never streams into a SWUpdate that did not refuse the unsigned probe at
//!   this deployment's preflight; an unclear answer counts as "does not enforce";
//! - spooled: nothing reaches SWUpdate before `finish`; the file is removed whatever happens;
//! - streamed: the last chunk is held back until `finish` (on top of the artifact reader's
//!   own hold-back); `abort` closes the socket without it; a SUCCESS SWUpdate reports for
//!   an install the bridge did not complete (a .swu whose trailer came before the payload's
//!   end) sets `ustate` FAILED and is logged as an error;
//! - every connection is to SWUpdate's own socket: a socket in a world-writable directory
//!   root does not own is refused, and the peer (`SO_PEERCRED`) must be root or
//!   `swupdate_uid`, checked before a byte is sent or an answer read;
//! - one REQ_INSTALL per payload: a download that resumes keeps feeding the same install;
//! - every socket wait is bounded (`timeout`, `write_timeout`, `install_timeout`); a busy
//!   daemon is retried `busy_retries` times with doubling waits, then the install fails.

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
