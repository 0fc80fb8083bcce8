//! mender-bridge: a Mender client that streams artifacts into the installer a device
//! already trusts (RAUC, SWUpdate, or a raw A/B writer). See ARCHITECTURE.md for the map.
//!
//! Below it: `mender-bridge-backends` (the installers), `mender-artifact` (the artifact reader,
//! PEM private keys) and `mender-api` (the device API bodies). The simulator
//! (`mender-bridge-sim`) and the artifact writer are developer tools, compiled only with the
//! `sim` feature (the `sim` and `demo` commands).

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod deploy;
pub mod doctor;
pub mod fsutil;
pub mod identity;
pub mod keys;
pub mod logging;
pub mod memory;
mod process_group;
pub mod setup;
#[cfg(test)]
mod testlog;
