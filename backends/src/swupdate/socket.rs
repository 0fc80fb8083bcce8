//! Where SWUpdate's sockets are: the configured paths, else SWUpdate's own rules — the
//! first of `$RUNTIME_DIRECTORY` (2023.12+, systemd), `$TMPDIR`, `/run/swupdate` (2026.05+,
//! used when the control socket is there) and `/tmp`. Both ends must apply the same rule
//! in the same environment; an explicit path in the configuration avoids the guess.

use std::path::{Path, PathBuf};

/// Control socket file name (`sockinstctrl`).
pub const CONTROL_NAME: &str = "sockinstctrl";
/// Progress socket file name (`swupdateprog`).
pub const PROGRESS_NAME: &str = "swupdateprog";

/// The two socket paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPaths {
    pub control: PathBuf,
    pub progress: PathBuf,
}

/// The directory SWUpdate puts its sockets in, from the environment (`env`) and the
/// file system (`exists`).
pub fn default_dir(
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&Path) -> bool,
) -> PathBuf {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    // systemd may pass several directories separated by ':'; SWUpdate takes the value
    // as a directory, so only a single one is meaningful. Take the first.
    if let Some(d) = set("RUNTIME_DIRECTORY") {
        return PathBuf::from(d.split(':').next().unwrap_or(&d));
    }
    if let Some(d) = set("TMPDIR") {
        return PathBuf::from(d);
    }
    let run = Path::new("/run/swupdate");
    if exists(&run.join(CONTROL_NAME)) {
        return run.to_path_buf();
    }
    PathBuf::from("/tmp")
}

/// Configured paths win; a missing one follows SWUpdate's rules in this process's
/// environment.
pub fn resolve(control: Option<&Path>, progress: Option<&Path>) -> SocketPaths {
    let dir = || default_dir(|k| std::env::var(k).ok(), |p| p.exists());
    SocketPaths {
        control: control
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir().join(CONTROL_NAME)),
        progress: progress
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir().join(PROGRESS_NAME)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(vars: &[(&str, &str)], run_exists: bool) -> PathBuf {
        default_dir(
            |k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            |_| run_exists,
        )
    }

    #[test]
    fn swupdate_rules_in_order() {
        assert_eq!(
            dir(
                &[("RUNTIME_DIRECTORY", "/run/x:/run/y"), ("TMPDIR", "/t")],
                true
            ),
            Path::new("/run/x")
        );
        assert_eq!(
            dir(&[("RUNTIME_DIRECTORY", ""), ("TMPDIR", "/t")], true),
            Path::new("/t")
        );
        assert_eq!(dir(&[], true), Path::new("/run/swupdate"));
        assert_eq!(dir(&[], false), Path::new("/tmp"));
    }

    #[test]
    fn configured_paths_win() {
        let p = resolve(Some(Path::new("/a/ctl")), Some(Path::new("/b/prog")));
        assert_eq!(p.control, Path::new("/a/ctl"));
        assert_eq!(p.progress, Path::new("/b/prog"));
    }
}
