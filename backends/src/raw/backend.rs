//! `RawBackend`: one install into the inactive slot (`begin` → `write`* → `finish`
//! activates it), then the bootloader's trial after the reboot (the invariants are in the
//! `raw` module's documentation).

use bytes::Bytes;
use serde::Deserialize as _;

use super::{capacity, read_back_sha256, BootEnv, RawConfig, SlotConfig, SlotWriter};
use crate::{begun, Activation, Backend, BackendError, PayloadInfo, ProgressSink};

struct Install {
    slot: SlotConfig,
    writer: Option<SlotWriter>,
    payload: PayloadInfo,
    /// Written and synced by an earlier process ([`Backend::suspend`]): `finish` reads the
    /// slot back against the manifest's SHA-256 whatever `verify_readback` says.
    kept: bool,
}

/// What [`Backend::suspend`] keeps of a raw install for the process that finishes it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    slot: String,
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
            kept: false,
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

    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        let install = begun(self.install.as_mut(), "suspend")?;
        let writer = install
            .writer
            .take()
            .ok_or_else(|| BackendError::failed("suspend called twice"))?;
        writer.finish().await?;
        install.kept = true;
        let kept = Kept {
            slot: install.slot.name.clone(),
            payload: install.payload.clone(),
        };
        tracing::info!(slot = %install.slot.name, "image written and synced; the slot is not activated");
        serde_json::to_value(kept).map_err(|e| BackendError::failed(format!("raw install: {e}")))
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        let bad = |why: String| BackendError::failed(format!("the kept raw install: {why}"));
        let kept = Kept::deserialize(saved).map_err(|e| bad(e.to_string()))?;
        let slot = self
            .config
            .slots
            .by_name(&kept.slot)
            .ok_or_else(|| bad(format!("no slot named {:?} is configured", kept.slot)))?
            .clone();
        self.install = Some(Install {
            slot,
            writer: None,
            payload: kept.payload,
            kept: true,
        });
        Ok(())
    }

    async fn finish(&mut self, _progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        let install = begun(self.install.as_mut(), "finish")?;
        let (written, read_back) = match install.writer.take() {
            Some(writer) => (writer.finish().await?, self.config.verify_readback),
            None if install.kept => {
                // Written by an earlier process: still the slot to activate, still the
                // verified image?
                let inactive = self.config.slots.inactive().await?;
                if inactive.name != install.slot.name {
                    return Err(BackendError::failed(format!(
                        "the image was written to slot {}, but the inactive slot is now {}: \
                         the device booted the other slot since",
                        install.slot.name, inactive.name
                    )));
                }
                (install.payload.size, true)
            }
            None => return Err(BackendError::failed("finish called twice")),
        };
        if read_back {
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
        install.kept = false;
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
