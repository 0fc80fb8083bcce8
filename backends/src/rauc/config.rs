//! The RAUC backend's configuration: which bus RAUC is on, where bundles are spooled and
//! the activation recorded, the health check and the timeouts. Plain data, built whether
//! or not the backend is (feature `rauc`), so the configuration layer reads and checks
//! `[backend.rauc]` in every build.

use std::path::PathBuf;
use std::time::Duration;

/// Which bus RAUC is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (honours `DBUS_SYSTEM_BUS_ADDRESS`), where RAUC normally runs.
    System,
    /// The session bus (RAUC with `DBUS_STARTER_BUS_TYPE=session`).
    Session,
    /// A bus address (`unix:path=/run/dbus/system_bus_socket`).
    Address(String),
}

impl Bus {
    /// `system`, `session`, or a D-Bus address.
    pub fn parse(s: &str) -> Bus {
        match s {
            "system" => Bus::System,
            "session" => Bus::Session,
            a => Bus::Address(a.to_string()),
        }
    }
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::System => f.write_str("the system bus"),
            Bus::Session => f.write_str("the session bus"),
            Bus::Address(a) => write!(f, "bus {a}"),
        }
    }
}

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
