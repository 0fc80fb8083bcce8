//! `rauc`: installs a `rauc` payload (a module-image whose one file is a `.raucb` bundle)
//! through the RAUC service over D-Bus, letting RAUC check the signature, pick the slot and
//! switch the bootloader.
//!
//! Flow: `preflight` (spool directory usable, RAUC on the bus and idle) → `begin` (room for
//! the payload, 0600 spool file) → `write`* (hashed as it is spooled) → `finish` (size and
//! SHA-256 checked, fsync, close; only then `InstallBundle`; `Completed(0)` → `GetPrimary`
//! recorded for the reboot; the spool file removed whatever happened) → reboot →
//! `verify_reboot` (the booted slot is the recorded one) → `commit` (health check,
//! `Mark("good","booted")`) or `rollback` (`Mark("active","other")` when the new slot
//! runs, `Mark("active","booted")` when it never booted).
//!
//! Invariants: nothing reaches RAUC before the payload verified (the bundle path is handed
//! over only in `finish`); every D-Bus wait has a timeout; RAUC's own messages (progress,
//! `LastError`, the slot evidence after a reboot) go to the deployment log through
//! [`Backend::take_log`](crate::Backend::take_log).

mod config;
pub use self::config::{Bus, RaucConfig};

#[cfg(feature = "rauc")]
mod backend;
#[cfg(feature = "rauc")]
mod install;
#[cfg(feature = "rauc")]
pub mod proxy;
#[cfg(feature = "rauc")]
pub mod slots;
#[cfg(feature = "rauc")]
pub mod state;

#[cfg(feature = "rauc")]
pub use self::backend::RaucBackend;
#[cfg(feature = "rauc")]
pub use crate::spool::{free_space, Spool};
#[cfg(feature = "rauc")]
pub use install::Timeouts;
#[cfg(feature = "rauc")]
pub use state::Pending;
