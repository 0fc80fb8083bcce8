//! [`ModuleConfig`]: where Update Modules live, where their file tree goes, and the bounds
//! on a module's run. Plain data with the official client's defaults; the configuration
//! layer fills it from `mender.conf` (`ModuleTimeoutSeconds`) and the data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The official client's module directory.
pub const DEFAULT_MODULES_DIR: &str = "/usr/share/mender/modules/v3";
/// `ModuleTimeoutSeconds`' default in the official client: 4 hours.
pub const DEFAULT_MODULE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// Settings of the Update Module backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleConfig {
    /// Where the module executables are, one per payload type (`<modules_dir>/<type>`).
    pub modules_dir: PathBuf,
    /// `<data_dir>/modules/v3`: the file tree is `<work_dir>/payloads/0000/tree`.
    pub work_dir: PathBuf,
    /// `ModuleTimeoutSeconds`: the longest one state may run (for `Download`, from its
    /// start to its end, across all the payload's files). The process group is killed then.
    pub timeout: Duration,
    /// The longest the bridge waits for the module to open a FIFO (`stream-next` or a
    /// stream) or to take one write; a module that never reads cannot hang the bridge.
    pub fifo_timeout: Duration,
    /// Bytes of a state's stdout kept (the rest is read and dropped).
    pub stdout_cap: usize,
    /// Bytes of a state's stderr kept (the rest is read and dropped).
    pub stderr_cap: usize,
    /// After a module exits, how long its output pipes may stay open (held by a process it
    /// left running) before the bridge stops reading them.
    pub output_grace: Duration,
}

impl ModuleConfig {
    /// The official client's layout under `data_dir` (`/var/lib/mender`), with its defaults.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        ModuleConfig {
            modules_dir: PathBuf::from(DEFAULT_MODULES_DIR),
            work_dir: data_dir.join("modules").join("v3"),
            timeout: DEFAULT_MODULE_TIMEOUT,
            fifo_timeout: Duration::from_secs(300),
            stdout_cap: 64 * 1024,
            stderr_cap: 64 * 1024,
            output_grace: Duration::from_secs(1),
        }
    }

    /// The file tree of the (only) payload: `<work_dir>/payloads/0000/tree`.
    pub fn tree_dir(&self) -> PathBuf {
        self.work_dir.join("payloads").join("0000").join("tree")
    }

    /// The module's answers for the install in progress, beside the tree.
    pub fn answers_path(&self) -> PathBuf {
        self.work_dir
            .join("payloads")
            .join("0000")
            .join("answers.json")
    }

    /// The installed modules: executable files in `modules_dir`, sorted (none when the
    /// directory is missing).
    pub fn installed_modules(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.modules_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| {
                std::fs::metadata(e.path()).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt as _;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                })
            })
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// The executable for `payload_type`.
    pub fn module_path(&self, payload_type: &str) -> PathBuf {
        self.modules_dir.join(payload_type)
    }
}

impl Default for ModuleConfig {
    fn default() -> Self {
        Self::for_data_dir(Path::new("/var/lib/mender"))
    }
}
