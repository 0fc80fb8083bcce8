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
    /// Fixed by configuration (tests, or systems whose `root=` names neither slot). On
    /// block-device slots the name is checked against the device of `/` (see
    /// `Slots::active`); plain-file slots cannot be checked and are taken as named.
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
    /// slots neither of which is running could overwrite the system. A named slot must be
    /// the device of `/` when that can be checked (`check_named_is_root`).
    pub async fn active(&self) -> Result<&SlotConfig, BackendError> {
        self.active_on(Path::new("/"), Path::new("/sys")).await
    }

    /// [`active`](Self::active) for a system whose root directory is `root` and whose sysfs
    /// is at `sys` (`/` and `/sys`; other values in tests only).
    async fn active_on(&self, root: &Path, sys: &Path) -> Result<&SlotConfig, BackendError> {
        match &self.active {
            ActiveSlot::Named(n) => {
                let slot = [&self.a, &self.b]
                    .into_iter()
                    .find(|s| &s.name == n)
                    .ok_or_else(|| {
                        BackendError::not_started(format!(
                            "configured active slot '{n}' is neither slot"
                        ))
                    })?;
                self.check_named_is_root(slot, root, sys)?;
                Ok(slot)
            }
            ActiveSlot::Cmdline { cmdline } => {
                let text = tokio::fs::read_to_string(cmdline)
                    .await
                    .map_err(|e| BackendError::io(format!("reading {}", cmdline.display()), e))?;
                let root = root_value(&text).ok_or_else(|| {
                    BackendError::not_started(format!("no root= in {}", cmdline.display()))
                })?;
                [&self.a, &self.b]
                    .into_iter()
                    .find(|s| {
                        same_path(Path::new(root), &s.device)
                            || s.root_aliases.iter().any(|a| a == root)
                    })
                    .ok_or_else(|| {
                        BackendError::not_started(format!(
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

    /// A configured `active_slot` is not taken on faith when it can be checked: the running
    /// slot is the device `root` is on, so the named slot's block device (`st_rdev`) must be
    /// the device of `root` (`st_dev`) or a device under it (a stacked root such as
    /// dm-verity, dm-crypt or LVM over the slot's partition, found through sysfs `slaves`).
    /// Otherwise the slot that is really running would be taken for the inactive one and
    /// written: refused ([`BackendError::NotStarted`]), naming the slot and both devices.
    ///
    /// Skipped, with a debug log, when nothing can be compared: plain-file slots (tests, the
    /// demo) and a missing slot device; a `root` that cannot be read, or that is on no block
    /// device (its `st_dev` has major 0: tmpfs, overlayfs, btrfs, NFS, UBIFS).
    fn check_named_is_root(
        &self,
        slot: &SlotConfig,
        root: &Path,
        sys: &Path,
    ) -> Result<(), BackendError> {
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        let slot_dev = match std::fs::metadata(&slot.device) {
            Ok(m) if m.file_type().is_block_device() => m.rdev(),
            _ => {
                tracing::debug!(
                    slot = %slot.name,
                    device = %slot.device.display(),
                    "active_slot not checked against {}: the slot is not a block device",
                    root.display()
                );
                return Ok(());
            }
        };
        let root_dev = match std::fs::metadata(root) {
            Ok(m) if nix::sys::stat::major(m.dev()) != 0 => m.dev(),
            Ok(_) => {
                tracing::debug!(
                    slot = %slot.name,
                    "active_slot not checked: {} is on no block device",
                    root.display()
                );
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(
                    slot = %slot.name,
                    "active_slot not checked: {}: {e}",
                    root.display()
                );
                return Ok(());
            }
        };
        let below = devices_below(root_dev, sys);
        let holds_root = |dev: u64| dev == root_dev || below.contains(&dev);
        if holds_root(slot_dev) {
            return Ok(());
        }
        let other = [&self.a, &self.b]
            .into_iter()
            .find(|s| s.name != slot.name)
            .filter(|s| std::fs::metadata(&s.device).is_ok_and(|m| holds_root(m.rdev())))
            .map(|s| format!(", that is slot {}", s.name))
            .unwrap_or_default();
        Err(BackendError::not_started(format!(
            "configured active slot '{}' ({}, device {}) is not the device {} is on ({}{other}); \
             refusing to take the other slot for the inactive one",
            slot.name,
            slot.device.display(),
            dev_name(slot_dev),
            root.display(),
            dev_name(root_dev),
        )))
    }

    /// The slot that is not running: the only one ever written.
    pub async fn inactive(&self) -> Result<&SlotConfig, BackendError> {
        self.inactive_on(Path::new("/"), Path::new("/sys")).await
    }

    /// [`inactive`](Self::inactive) as [`active_on`](Self::active_on) sees the system.
    async fn inactive_on(&self, root: &Path, sys: &Path) -> Result<&SlotConfig, BackendError> {
        let active = self.active_on(root, sys).await?;
        Ok(if active.name == self.a.name {
            &self.b
        } else {
            &self.a
        })
    }

    /// The slot named `name`.
    pub fn by_name(&self, name: &str) -> Option<&SlotConfig> {
        [&self.a, &self.b].into_iter().find(|s| s.name == name)
    }

    /// The slot with bootloader partition number `part`.
    pub fn by_part(&self, part: u32) -> Option<&SlotConfig> {
        [&self.a, &self.b].into_iter().find(|s| s.boot_part == part)
    }
}

/// `major:minor`.
fn dev_name(dev: u64) -> String {
    format!(
        "{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    )
}

/// Most devices looked at under one device (a stack is rarely more than three deep).
const MAX_STACK: usize = 64;

/// Every device under `dev` in a device stack: its sysfs `slaves` (each names its own
/// `maj:min` in `dev`), theirs, and so on; each device once, at most [`MAX_STACK`].
/// Unreadable entries are skipped: what cannot be read is not below.
fn devices_below(dev: u64, sys: &Path) -> Vec<u64> {
    let mut found: Vec<u64> = Vec::new();
    let mut todo = vec![dev];
    while let Some(d) = todo.pop() {
        let slaves = sys.join("dev/block").join(dev_name(d)).join("slaves");
        let Ok(entries) = std::fs::read_dir(&slaves) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("dev")) else {
                continue;
            };
            let Some((maj, min)) = text.trim().split_once(':') else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse(), min.parse()) else {
                continue;
            };
            let below = nix::sys::stat::makedev(maj, min);
            if below != dev && !found.contains(&below) && found.len() < MAX_STACK {
                found.push(below);
                todo.push(below);
            }
        }
    }
    found
}

/// Bytes the slot can hold: a block device's size, or the configured size of a file slot
/// (`None`: a file slot without a size, unbounded).
pub async fn capacity(slot: &SlotConfig) -> Result<Option<u64>, BackendError> {
    use std::os::unix::fs::FileTypeExt as _;
    let io = |source| {
        BackendError::io(
            format!("slot {} ({})", slot.name, slot.device.display()),
            source,
        )
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

    fn block_slot(name: &str, device: &Path, part: u32) -> SlotConfig {
        SlotConfig {
            name: name.into(),
            device: device.to_path_buf(),
            boot_part: part,
            root_aliases: vec![],
            size: None,
        }
    }

    /// A configured `active_slot` on block devices must be the device `/` is on: a named
    /// slot that is not running would make the running one "inactive", and written.
    #[tokio::test]
    async fn a_named_active_slot_must_hold_the_root_file_system() {
        use super::super::testloop::{is_root, Loop};
        if !is_root() {
            eprintln!("skipped: loop devices need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let a = Loop::new(dir.path(), "a", 16 << 20);
        let b = Loop::new(dir.path(), "b", 16 << 20);
        // "/" of this test's system: the file system on slot a.
        let root = a.mount(dir.path(), "root");
        let sys = Path::new("/sys");
        let mut slots = Slots {
            a: block_slot("a", &a.dev, 2),
            b: block_slot("b", &b.dev, 3),
            active: ActiveSlot::Named("a".into()),
        };
        let active = slots.active_on(&root.at, sys).await.unwrap();
        assert_eq!(active.name, "a");
        assert_eq!(slots.inactive_on(&root.at, sys).await.unwrap().name, "b");

        slots.active = ActiveSlot::Named("b".into());
        let e = slots.active_on(&root.at, sys).await.unwrap_err();
        assert!(matches!(e, BackendError::NotStarted(_)), "{e}");
        let text = e.to_string();
        eprintln!("refused: {text}");
        let dev = |p: &Path| {
            use std::os::unix::fs::MetadataExt as _;
            let r = std::fs::metadata(p).unwrap().rdev();
            format!("{}:{}", nix::sys::stat::major(r), nix::sys::stat::minor(r))
        };
        for want in [
            "'b'".to_string(),
            b.dev.display().to_string(),
            dev(&b.dev),
            dev(&a.dev),
            "slot a".to_string(),
        ] {
            assert!(text.contains(&want), "{want:?} not in: {text}");
        }
        // Nothing is written on a refused slot pair.
        assert!(slots.inactive_on(&root.at, sys).await.is_err());
    }

    /// Plain-file slots, and a `/` on no block device (tmpfs, overlay, btrfs, NFS, UBIFS),
    /// cannot be compared: the configured name is taken as it is.
    #[tokio::test]
    async fn a_named_active_slot_is_taken_as_it_is_when_nothing_can_be_compared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.img"), b"a").unwrap();
        std::fs::write(dir.path().join("b.img"), b"b").unwrap();
        let slots = Slots {
            a: block_slot("a", &dir.path().join("a.img"), 2),
            b: block_slot("b", &dir.path().join("b.img"), 3),
            active: ActiveSlot::Named("b".into()),
        };
        let sys = Path::new("/sys");
        assert_eq!(
            slots.active_on(Path::new("/"), sys).await.unwrap().name,
            "b"
        );
        // /proc is on no block device (its st_dev has major 0).
        assert_eq!(
            slots.active_on(Path::new("/proc"), sys).await.unwrap().name,
            "b"
        );
    }

    /// `/` on a stacked device (dm-verity, dm-crypt, LVM) sits on the slot's partition:
    /// the slot is found among the devices under `/`'s, through sysfs `slaves`.
    #[test]
    fn the_devices_under_a_stacked_root_are_found_through_sysfs() {
        let sys = tempfile::tempdir().unwrap();
        let node = |dev: &str, slaves: &[(&str, &str)]| {
            let d = sys.path().join("dev/block").join(dev);
            std::fs::create_dir_all(d.join("slaves")).unwrap();
            std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
            for (name, slave) in slaves {
                let s = d.join("slaves").join(name);
                std::fs::create_dir_all(&s).unwrap();
                std::fs::write(s.join("dev"), format!("{slave}\n")).unwrap();
            }
        };
        // dm-1 (verity) over dm-0 (crypt) over mmcblk0p2 (179:2).
        node("253:1", &[("dm-0", "253:0")]);
        node("253:0", &[("mmcblk0p2", "179:2")]);
        node("179:2", &[]);
        let dev = |maj, min| nix::sys::stat::makedev(maj, min);
        let below = devices_below(dev(253, 1), sys.path());
        assert!(below.contains(&dev(253, 0)), "{below:?}");
        assert!(below.contains(&dev(179, 2)), "{below:?}");
        assert!(!below.contains(&dev(179, 3)), "{below:?}");
        // A loop in sysfs (never in a real one) ends.
        node("7:0", &[("loop1", "7:1")]);
        node("7:1", &[("loop0", "7:0")]);
        assert_eq!(devices_below(dev(7, 0), sys.path()), [dev(7, 1)]);
    }
}
