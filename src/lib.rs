//! mender-bridge: a Mender client that streams artifacts into the installer a device
//! already trusts (RAUC, SWUpdate, or a raw A/B writer). See ARCHITECTURE.md for the map.

pub mod api;
pub mod artifact;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod deploy;
pub mod fsutil;
pub mod identity;
pub mod keys;
pub mod memory;
mod process_group;
pub mod setup;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(test)]
mod testlog;
