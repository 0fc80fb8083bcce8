//! `RawBackend`: one install into the inactive slot (`begin` → `write`* → `finish`
//! activates it), then the bootloader's trial after the reboot (the invariants are in the
//! `raw` module's documentation).

use bytes::Bytes;

use super::{capacity, read_back_sha256, BootEnv, RawConfig, SlotConfig, SlotWriter};
use crate::{begun, Activation, Backend, BackendError, PayloadInfo, ProgressSink};

struct Install {
    slot: SlotConfig,
    writer: Option<SlotWriter>,
    payload: PayloadInfo,
}

/// The raw A/B backend.
pub struct RawBackend {
    config: RawConfig,
    install: Option<Install>,
}

impl RawBackend {
    pub fn new(config: RawConfig) -> Self {
        RawBackend {
            config,
            install: None,
        }
    }
}

impl Backend for RawBackend {
    fn payload_types(&self) -> Vec<&str> {
        vec!["rootfs-image"]
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        if payload.payload_type != "rootfs-image" {
            return Err(BackendError::not_started(format!(
                "the raw backend installs rootfs-image payloads, not '{}'",
                payload.payload_type
            )));
        }
        let slot = self.config.slots.inactive().await?.clone();
        if let Some(cap) = capacity(&slot).await? {
            if payload.size > cap {
                return Err(BackendError::not_started(format!(
                    "image {} is {} bytes, slot {} ({}) holds {cap}",
                    payload.file_name,
                    payload.size,
                    slot.name,
                    slot.device.display()
                )));
            }
        }
        tracing::info!(slot = %slot.name, device = %slot.device.display(), size = payload.size, "writing image to the inactive slot");
        let writer = SlotWriter::open(&slot.device, payload.size).await?;
        self.install = Some(Install {
            slot,
            writer: Some(writer),
            payload: payload.clone(),
        });
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        let w = begun(
            self.install.as_mut().and_then(|i| i.writer.as_mut()),
            "write",
        )?;
        w.write(chunk).await
    }

    async fn finish(&mut self, _progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        let install = begun(self.install.as_mut(), "finish")?;
        let writer = install
            .writer
            .take()
            .ok_or_else(|| BackendError::failed("finish called twice"))?;
        let written = writer.finish().await?;
        if self.config.verify_readback {
            let got = read_back_sha256(&install.slot.device, written).await?;
            if got != install.payload.sha256 {
                return Err(BackendError::failed(format!(
                    "read-back of slot {} does not match: expected {}, device holds {}",
                    install.slot.name,
                    hex::encode(install.payload.sha256),
                    hex::encode(got)
                )));
            }
        }
        self.config.bootenv.activate(install.slot.boot_part).await?;
        tracing::info!(slot = %install.slot.name, part = install.slot.boot_part, "slot activated for the next boot, on trial");
        Ok(Activation::RebootRequired)
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        // Nothing was activated before finish. The writer thread is stopped and joined, so
        // no block of this install lands in the slot after abort returns.
        if let Some(writer) = self.install.take().and_then(|i| i.writer) {
            writer.abort().await;
        }
        Ok(())
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        let state = self.config.bootenv.state().await?;
        let active = self.config.slots.active().await?;
        Ok(state.upgrade_available && state.boot_part == Some(active.boot_part))
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        Ok(Some(self.config.slots.active().await?.name.clone()))
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        if !self.verify_reboot().await? {
            return Err(BackendError::failed(
                "not running the new slot on trial; refusing to commit",
            ));
        }
        self.config.bootenv.commit().await
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        let slots = &self.config.slots;
        let active = slots.active().await?;
        let state = self.config.bootenv.state().await?;
        // Running the new slot on trial: go back to the other one (takes effect at reboot).
        // Otherwise (not rebooted yet, or the bootloader already fell back): stay here.
        let target = if state.upgrade_available && state.boot_part == Some(active.boot_part) {
            slots.inactive().await?.boot_part
        } else {
            active.boot_part
        };
        self.config.bootenv.revert(target).await
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        if let Ok(active) = self.config.slots.active().await {
            out.push(("rootfs_active_slot".into(), active.name.clone().into()));
        }
        let kind = match self.config.bootenv {
            BootEnv::Uboot { .. } => "uboot",
            BootEnv::Grub { .. } => "grub",
            BootEnv::Command { .. } => "command",
        };
        out.push(("bootloader_integration".into(), kind.into()));
        out
    }
}
