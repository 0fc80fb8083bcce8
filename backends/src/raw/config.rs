//! The raw A/B backend's configuration: the slot pair, the bootloader integration and
//! whether the written slot is read back. Plain data, deserialized from `[backend.raw]`.

use serde::Deserialize;

use super::{BootEnv, Slots};

/// Configuration of the raw A/B backend.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RawConfig {
    pub slots: Slots,
    pub bootenv: BootEnv,
    /// Hash the slot again after writing and compare with the manifest's SHA-256.
    #[serde(default = "yes")]
    pub verify_readback: bool,
}

fn yes() -> bool {
    true
}
