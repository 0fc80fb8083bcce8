//! Test helpers: loop block devices over temp files, and mounts, removed when dropped.
//! They need root; without it a test says so and skips (CI runs as root). As root, a
//! failure to set one up fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `true` when the process may set up loop devices (its effective uid is 0: the owner of
/// `/proc/self`).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loop device over `<dir>/<name>.img` of `size` bytes.
pub struct Loop {
    pub dev: PathBuf,
}

impl Loop {
    pub fn new(dir: &Path, name: &str, size: u64) -> Loop {
        let file = dir.join(format!("{name}.img"));
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(size).unwrap();
        let dev = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file));
        Loop { dev: dev.into() }
    }

    /// An ext4 file system on the device, mounted at `<dir>/<name>`.
    pub fn mount(&self, dir: &Path, name: &str) -> Mount {
        run(Command::new("mkfs.ext4").arg("-q").arg(&self.dev));
        let at = dir.join(name);
        std::fs::create_dir_all(&at).unwrap();
        run(Command::new("mount").arg(&self.dev).arg(&at));
        Mount { at }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).output();
    }
}

/// A mount, unmounted when dropped (before the loop device under it: declare it after).
pub struct Mount {
    pub at: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).output();
    }
}
