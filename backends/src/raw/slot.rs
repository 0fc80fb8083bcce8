//! The A/B slot pair: which slot is running, which one may be written, and how much it holds.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::BackendError;

/// One slot of the pair: a block device or a plain file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SlotConfig {
    /// Short name used in logs and inventory (`a`, `b`).
    pub name: String,
    /// Block device or file the image is written to.
    pub device: PathBuf,
    /// Partition number the bootloader knows this slot by (`mender_boot_part`).
    pub boot_part: u32,
    /// Extra `root=` values that mean this slot is running (e.g. `PARTUUID=…`), besides
    /// `device` itself.
    #[serde(default)]
    pub root_aliases: Vec<String>,
    /// Capacity of a plain-file slot in bytes; block devices report their own size.
    #[serde(default)]
    pub size: Option<u64>,
}

/// How the running slot is found.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActiveSlot {
    /// From `root=` on the kernel command line (`cmdline`, normally `/proc/cmdline`).
    Cmdline { cmdline: PathBuf },
    /// Fixed by configuration (tests, or systems whose `root=` names neither slot).
    Named(String),
}

/// The pair, with the rule that the active slot is never written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Slots {
    pub a: SlotConfig,
    pub b: SlotConfig,
    pub active: ActiveSlot,
}

fn root_value(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("root="))
        .next_back()
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

impl Slots {
    /// The running slot. An unknown `root=` is an error: writing "the other one" of two
    /// slots neither of which is running could overwrite the system.
    pub async fn active(&self) -> Result<&SlotConfig, BackendError> {
        match &self.active {
            ActiveSlot::Named(n) => [&self.a, &self.b]
                .into_iter()
                .find(|s| &s.name == n)
                .ok_or_else(|| {
                    BackendError::NotStarted(format!(
                        "configured active slot '{n}' is neither slot"
                    ))
                }),
            ActiveSlot::Cmdline { cmdline } => {
                let text =
                    tokio::fs::read_to_string(cmdline)
                        .await
                        .map_err(|e| BackendError::Io {
                            context: format!("reading {}", cmdline.display()),
                            source: e,
                        })?;
                let root = root_value(&text).ok_or_else(|| {
                    BackendError::NotStarted(format!("no root= in {}", cmdline.display()))
                })?;
                [&self.a, &self.b]
                    .into_iter()
                    .find(|s| {
                        same_path(Path::new(root), &s.device)
                            || s.root_aliases.iter().any(|a| a == root)
                    })
                    .ok_or_else(|| {
                        BackendError::NotStarted(format!(
                            "root={root} in {} is neither slot {} ({}) nor {} ({})",
                            cmdline.display(),
                            self.a.name,
                            self.a.device.display(),
                            self.b.name,
                            self.b.device.display()
                        ))
                    })
            }
        }
    }

    /// The slot that is not running: the only one ever written.
    pub async fn inactive(&self) -> Result<&SlotConfig, BackendError> {
        let active = self.active().await?;
        Ok(if active.name == self.a.name {
            &self.b
        } else {
            &self.a
        })
    }

    /// The slot with bootloader partition number `part`.
    pub fn by_part(&self, part: u32) -> Option<&SlotConfig> {
        [&self.a, &self.b].into_iter().find(|s| s.boot_part == part)
    }
}

/// Bytes the slot can hold: a block device's size, or the configured size of a file slot
/// (`None`: a file slot without a size, unbounded).
pub async fn capacity(slot: &SlotConfig) -> Result<Option<u64>, BackendError> {
    use std::os::unix::fs::FileTypeExt as _;
    let io = |source| BackendError::Io {
        context: format!("slot {} ({})", slot.name, slot.device.display()),
        source,
    };
    match tokio::fs::metadata(&slot.device).await {
        Ok(m) if m.file_type().is_block_device() => {
            use tokio::io::AsyncSeekExt as _;
            let mut f = tokio::fs::File::open(&slot.device).await.map_err(io)?;
            Ok(Some(f.seek(std::io::SeekFrom::End(0)).await.map_err(io)?))
        }
        Ok(_) => Ok(slot.size),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && slot.size.is_some() => Ok(slot.size),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_last_root_argument() {
        assert_eq!(
            root_value("console=ttyS0 root=/dev/sda2 rw"),
            Some("/dev/sda2")
        );
        assert_eq!(
            root_value("root=/dev/a root=PARTUUID=x quiet"),
            Some("PARTUUID=x")
        );
        assert_eq!(root_value("quiet"), None);
        assert_eq!(root_value("myroot=/dev/x"), None);
    }
}
