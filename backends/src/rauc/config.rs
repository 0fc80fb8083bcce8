//! The RAUC backend's configuration: which bus RAUC is on, where bundles are spooled and
//! the activation recorded, the health check and the timeouts. Plain data, built whether
//! or not the backend is (feature `rauc`), so the configuration layer reads and checks
//! `[backend.rauc]` in every build.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::bus::Bus;

/// Configuration of the RAUC backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaucConfig {
    /// Where RAUC listens.
    pub bus: Bus,
    /// Where bundles are spooled (a local filesystem RAUC trusts).
    pub spool_dir: PathBuf,
    /// Where the record of the activated slot waits for the reboot.
    pub state_dir: PathBuf,
    /// Run after the new slot booted, before `Mark good`; a non-zero exit fails the
    /// deployment (and rolls back).
    pub health_check: Option<Vec<String>>,
    pub health_check_timeout: Duration,
    /// Each D-Bus call, and connecting.
    pub call_timeout: Duration,
    /// From `InstallBundle` to `Completed`.
    pub install_timeout: Duration,
}
