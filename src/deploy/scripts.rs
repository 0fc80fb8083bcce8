//! State scripts with Mender's names and rules (PROTOCOL.md §4.3): `Idle`, `Sync` and
//! `Download` scripts from the rootfs directory (`/etc/mender/scripts`), the `Artifact*`
//! scripts from the artifact, stored in the data directory before they run.
//!
//! Rules: `<State>_<Enter|Leave|Error>_<NN>[_<description>]`, run in lexical order, only if
//! executable; the directory's `version` file, when present, must say `3`; exit 0 = ok,
//! 21 = retry later (again every `retry_interval` until `retry_timeout`), anything else
//! fails the state; each run leads a process group of its own, killed whole (with anything
//! the script started) after `timeout`. Failures of `Idle`, `ArtifactRollback*`,
//! `ArtifactFailure` and all `_Error` scripts are logged and ignored. Standard error goes
//! into the deployment log, at most 10 KiB per script, and is read for at most 1 s after
//! the script exits (a daemon it started in the background cannot hold the state).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use mender_artifact::StateScript;

/// Standard error kept per script.
const MAX_STDERR: usize = 10 * 1024;
/// How long standard error is still read after the script exited.
const STDERR_GRACE: Duration = Duration::from_secs(1);
/// The exit code that asks to be run again later.
const RETRY_LATER: i32 = 21;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Sync,
    Download,
    ArtifactInstall,
    ArtifactReboot,
    ArtifactCommit,
    ArtifactRollback,
    ArtifactRollbackReboot,
    ArtifactFailure,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Sync => "Sync",
            State::Download => "Download",
            State::ArtifactInstall => "ArtifactInstall",
            State::ArtifactReboot => "ArtifactReboot",
            State::ArtifactCommit => "ArtifactCommit",
            State::ArtifactRollback => "ArtifactRollback",
            State::ArtifactRollbackReboot => "ArtifactRollbackReboot",
            State::ArtifactFailure => "ArtifactFailure",
        }
    }

    /// Scripts of these states come from the artifact; the others from the rootfs.
    fn ships_in_artifact(self) -> bool {
        !matches!(self, State::Idle | State::Sync | State::Download)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Enter,
    Leave,
    Error,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Enter => "Enter",
            Action::Leave => "Leave",
            Action::Error => "Error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("state script {script} failed with exit code {code}")]
    Failed { script: String, code: i32 },
    #[error("state script {script} was killed after {timeout:?}")]
    Timeout { script: String, timeout: Duration },
    #[error("state script {script} asked to retry later for longer than {limit:?}")]
    RetryTimeout { script: String, limit: Duration },
    #[error("{dir}/version says '{found}', only version 3 scripts are supported")]
    Version { dir: String, found: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What ran, for the deployment log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScriptLog {
    /// `(script name, exit code)` in the order run.
    pub ran: Vec<(String, i32)>,
    /// Standard error of the scripts, prefixed with their names.
    pub stderr: Vec<String>,
}

/// Where scripts live and how long they may take.
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    pub rootfs_dir: PathBuf,
    pub artifact_dir: PathBuf,
    pub timeout: Duration,
    pub retry_interval: Duration,
    pub retry_timeout: Duration,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ScriptError {
    let context = context.into();
    move |source| ScriptError::Io { context, source }
}

/// `true` for `<state>_<action>_<NN>[_<description>]`.
fn matches(name: &str, state: State, action: Action) -> bool {
    let Some(rest) = name
        .strip_prefix(state.name())
        .and_then(|r| r.strip_prefix('_'))
        .and_then(|r| r.strip_prefix(action.name()))
        .and_then(|r| r.strip_prefix('_'))
    else {
        return false;
    };
    let (nn, desc) = rest.split_at(rest.len().min(2));
    nn.len() == 2
        && nn.bytes().all(|b| b.is_ascii_digit())
        && (desc.is_empty()
            || desc
                .strip_prefix('_')
                .is_some_and(|d| !d.is_empty() && !d.chars().any(char::is_whitespace)))
}

/// A script's standard error line to `tracing` (where there is no deployment log).
pub fn trace_line(line: String) {
    tracing::info!("state script: {line}");
}

impl ScriptRunner {
    /// Runs the scripts of `state`/`action` as [`run`](Self::run) does, then hands each line
    /// of their standard error to `line` (also when they failed).
    pub async fn run_logged(
        &self,
        state: State,
        action: Action,
        mut line: impl FnMut(String) + Send,
    ) -> Result<(), ScriptError> {
        let mut log = ScriptLog::default();
        let r = self.run(state, action, &mut log).await;
        log.stderr.into_iter().for_each(&mut line);
        r
    }

    /// Runs the scripts of `state`/`action`. Ignorable states never return an error.
    pub async fn run(
        &self,
        state: State,
        action: Action,
        log: &mut ScriptLog,
    ) -> Result<(), ScriptError> {
        let ignorable = matches!(
            state,
            State::Idle
                | State::ArtifactRollback
                | State::ArtifactRollbackReboot
                | State::ArtifactFailure
        ) || action == Action::Error;
        let result = self.run_all(state, action, log).await;
        match result {
            Err(e) if ignorable => {
                tracing::warn!(error = %e, "ignoring the failure of a {}_{} script", state.name(), action.name());
                log.stderr.push(format!("ignored: {e}"));
                Ok(())
            }
            other => other,
        }
    }

    async fn run_all(
        &self,
        state: State,
        action: Action,
        log: &mut ScriptLog,
    ) -> Result<(), ScriptError> {
        let dir = if state.ships_in_artifact() {
            &self.artifact_dir
        } else {
            &self.rootfs_dir
        };
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
        };
        check_version(dir).await?;
        let mut scripts = Vec::new();
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(io(format!("listing {}", dir.display())))?
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !matches(&name, state, action) {
                continue;
            }
            let meta = e.metadata().await.map_err(io(format!("reading {name}")))?;
            use std::os::unix::fs::PermissionsExt as _;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                scripts.push(name);
            } else {
                tracing::warn!(script = %name, "state script is not an executable file; skipped");
            }
        }
        scripts.sort();
        for name in scripts {
            self.run_one(&dir.join(&name), &name, log).await?;
        }
        Ok(())
    }

    async fn run_one(
        &self,
        path: &Path,
        name: &str,
        log: &mut ScriptLog,
    ) -> Result<(), ScriptError> {
        let started = tokio::time::Instant::now();
        loop {
            let code = self.exec(path, name, log).await?;
            log.ran.push((name.to_string(), code));
            match code {
                0 => return Ok(()),
                RETRY_LATER if started.elapsed() + self.retry_interval <= self.retry_timeout => {
                    tracing::info!(script = %name, "state script asked to retry later");
                    tokio::time::sleep(self.retry_interval).await;
                }
                RETRY_LATER => {
                    return Err(ScriptError::RetryTimeout {
                        script: name.to_string(),
                        limit: self.retry_timeout,
                    })
                }
                code => {
                    return Err(ScriptError::Failed {
                        script: name.to_string(),
                        code,
                    })
                }
            }
        }
    }

    /// Runs one script once: its exit code (-1 when killed by a signal).
    ///
    /// The script leads a process group of its own; on timeout the whole group is killed,
    /// whatever it started. Its standard error is read while it runs, and after it exits
    /// for at most [`STDERR_GRACE`]: a process it left in the background (a daemon it
    /// started) may hold the pipe open for as long as it lives, and must not hold the
    /// state with it. After the grace the pipe is closed; such a process then gets EPIPE
    /// (or SIGPIPE) when it next writes to it, so a script that starts a daemon should
    /// redirect the daemon's output.
    async fn exec(&self, path: &Path, name: &str, log: &mut ScriptLog) -> Result<i32, ScriptError> {
        let mut group = crate::process_group::spawn(
            tokio::process::Command::new(path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .await
        .map_err(io(format!("starting {name}")))?;
        let stderr = group.child.stderr.take();
        let mut err = Vec::new();
        let status = {
            let drain = drain_stderr(stderr, &mut err);
            tokio::pin!(drain);
            let mut drained = false;
            let child = &mut group.child;
            let waited = tokio::time::timeout(self.timeout, async {
                loop {
                    tokio::select! {
                        status = child.wait() => break status,
                        () = &mut drain, if !drained => drained = true,
                    }
                }
            })
            .await;
            match waited {
                Ok(status) => {
                    if !drained
                        && tokio::time::timeout(STDERR_GRACE, &mut drain)
                            .await
                            .is_err()
                    {
                        tracing::debug!(
                            script = %name,
                            "standard error still open {STDERR_GRACE:?} after the script \
                             exited (a background process holds it); no longer read"
                        );
                    }
                    Some(status)
                }
                Err(_) => None,
            }
        };
        let Some(status) = status else {
            group.kill().await;
            return Err(ScriptError::Timeout {
                script: name.to_string(),
                timeout: self.timeout,
            });
        };
        let status = status.map_err(io(format!("waiting for {name}")))?;
        if !err.is_empty() {
            log.stderr.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&err).trim_end()
            ));
        }
        Ok(status.code().unwrap_or(-1))
    }

    /// Removes the stored artifact scripts (the previous artifact's). Called when a
    /// deployment or install starts, so that nothing of an earlier artifact can run for
    /// this one.
    pub async fn clear_artifact_scripts(&self) -> Result<(), ScriptError> {
        let dir = &self.artifact_dir;
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("clearing {}", dir.display()))(e)),
        }
    }

    /// Replaces the stored artifact scripts with `scripts` (mode 0755) and writes the
    /// `version` file. Invariant (kept by the callers): called only once the whole
    /// artifact verified, so nothing of an unverified artifact is ever stored or made
    /// executable.
    pub async fn store_artifact_scripts(&self, scripts: &[StateScript]) -> Result<(), ScriptError> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = &self.artifact_dir;
        self.clear_artifact_scripts().await?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io(format!("creating {}", dir.display())))?;
        for s in scripts {
            // Names were checked by the artifact reader: one plain file name each.
            let p = dir.join(&s.name);
            tokio::fs::write(&p, &s.content)
                .await
                .map_err(io(format!("writing {}", p.display())))?;
            tokio::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(io(format!("chmod {}", p.display())))?;
        }
        tokio::fs::write(dir.join("version"), "3\n")
            .await
            .map_err(io(format!("writing {}/version", dir.display())))
    }
}

/// A `version` file, when present, must say 3 (a missing one means 3, as the C++ client
/// treats it).
async fn check_version(dir: &Path) -> Result<(), ScriptError> {
    match tokio::fs::read(dir.join("version")).await {
        Ok(v) => {
            let found = String::from_utf8_lossy(&v[..v.len().min(64)])
                .trim()
                .to_string();
            if found == "3" {
                Ok(())
            } else {
                Err(ScriptError::Version {
                    dir: dir.display().to_string(),
                    found,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("reading {}/version", dir.display()))(e)),
    }
}

/// Reads `stderr` to its end, keeping the first [`MAX_STDERR`] bytes in `head` and
/// dropping the rest (so the script never blocks on a full pipe). A read error ends it.
async fn drain_stderr(stderr: Option<tokio::process::ChildStderr>, head: &mut Vec<u8>) {
    let Some(mut s) = stderr else {
        return;
    };
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = MAX_STDERR.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests;
