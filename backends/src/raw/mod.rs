//! `raw`: writes a `rootfs-image` payload into the inactive slot of an A/B pair (block
//! devices or plain files) and switches the bootloader to it only after the image is
//! complete, durable and verified. The running slot is never opened for writing.

mod backend;
mod bootenv;
mod config;
mod slot;
#[cfg(test)]
mod testloop;
mod writer;

pub use backend::RawBackend;
pub use bootenv::{BootEnv, BootState};
pub use config::RawConfig;
pub use slot::{capacity, ActiveSlot, SlotConfig, Slots};
pub use writer::{read_back_sha256, SlotWriter};
