//! The SWUpdate backend's configuration: plain data, built whether or not the backend is
//! (feature `swupdate`), so the configuration layer reads and checks `[backend.swupdate]`
//! in every build.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the payload reaches SWUpdate (`backend.swupdate.mode`). SWUpdate acts on the stream
/// as it reads it (parses `sw-description`, runs its commands, installs at the cpio
/// trailer), so bytes may reach it before the Mender checksum covers them only when
/// SWUpdate itself refuses an image that is not signed (`swupdate -k`); the preflight
/// proves that with a probe (`probe.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwupdateMode {
    /// Stream when SWUpdate enforces signed images; otherwise spool when the artifact
    /// signature is checked by the bridge (`ArtifactVerifyKey`), else stream with a
    /// warning that nothing authenticates the payload.
    #[default]
    Auto,
    /// Always stream; refused at preflight unless SWUpdate proved it enforces signatures.
    Stream,
    /// Always spool: nothing reaches SWUpdate before the payload's SHA-256 matched.
    Spool,
}

impl SwupdateMode {
    pub fn name(self) -> &'static str {
        match self {
            SwupdateMode::Auto => "auto",
            SwupdateMode::Stream => "stream",
            SwupdateMode::Spool => "spool",
        }
    }
}

/// Configuration of the SWUpdate backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwupdateConfig {
    /// Control socket; `None`: SWUpdate's rules (`socket::resolve`).
    pub control_socket: Option<PathBuf>,
    /// Progress socket; `None`: SWUpdate's rules.
    pub progress_socket: Option<PathBuf>,
    /// Ask for a dry run (`RUN_DRYRUN`): SWUpdate parses and verifies, writes nothing.
    pub dry_run: bool,
    /// `software_set` / `running_mode` of the request (must be accepted by `-q`).
    pub software_set: String,
    pub running_mode: String,
    /// The update needs a reboot (Mender's `rebooting` step); false: commit right away.
    pub reboot: bool,
    /// Use SWUpdate's `ustate` (needs `-B uboot`/`grub`): INSTALLED before the reboot,
    /// decided after it, set to 0 on commit.
    pub ustate: bool,
    /// Bound on each control-socket exchange.
    pub timeout: Duration,
    /// Bound on one write of the stream (SWUpdate not reading).
    pub write_timeout: Duration,
    /// Bound on the wait for SWUpdate's result after the last byte.
    pub install_timeout: Duration,
    /// "Installation in progress": retries, and the first wait (doubling).
    pub busy_retries: u32,
    pub busy_backoff: Duration,
    /// `name version` lines reported as `swupdate.version.<name>` (SWUpdate's
    /// `/etc/sw-versions`); missing file: nothing reported.
    pub sw_versions_file: Option<PathBuf>,
    /// Stream, spool, or decide by what verifies the payload.
    pub mode: SwupdateMode,
    /// Where a spooled payload waits for its checksum (created 0700 when missing).
    pub spool_dir: PathBuf,
    /// Besides root (uid 0), the user SWUpdate may run as: the peer of each socket
    /// (`SO_PEERCRED`) must be one of the two.
    pub swupdate_uid: Option<u32>,
    /// The bridge checks the artifact's signature (`ArtifactVerifyKey(s)` configured), so
    /// a payload whose SHA-256 matched is authenticated.
    pub payload_authenticated: bool,
}

impl Default for SwupdateConfig {
    fn default() -> Self {
        SwupdateConfig {
            control_socket: None,
            progress_socket: None,
            dry_run: false,
            software_set: String::new(),
            running_mode: String::new(),
            reboot: true,
            ustate: true,
            timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(300),
            install_timeout: Duration::from_secs(3600),
            busy_retries: 5,
            busy_backoff: Duration::from_secs(2),
            sw_versions_file: Some(PathBuf::from("/etc/sw-versions")),
            mode: SwupdateMode::Auto,
            spool_dir: PathBuf::from("/var/lib/mender/mender-bridge/swupdate-spool"),
            swupdate_uid: None,
            payload_authenticated: false,
        }
    }
}
