//! Calling one state of an Update Module: `<module> <State> <tree>` with the tree as the
//! working directory, in a process group of its own, stdout and stderr captured (bounded)
//! as deployment-log lines, and the answers of the query states parsed.
//!
//! Invariants: a state never outlives its deadline: on timeout the module's whole process
//! group is killed (SIGKILL) before the leader is reaped; at most `stdout_cap` and
//! `stderr_cap` bytes of output are kept (the rest is drained and dropped, so a chatty
//! module never blocks on a full pipe); a process the module leaves behind holding its
//! output pipes delays the bridge by `output_grace` at most. A query's answer is stdout
//! less one trailing newline, as the official client reads it; an empty answer is the
//! spec's default ("No"), which is also what a module answers to a state it does not know.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::ModuleConfig;
use crate::process_group::{self, Group};
use crate::BackendError;

/// Bytes read from one output pipe, up to a cap.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
}

/// One output pipe: what was kept, and the task draining it (taken once waited for).
#[derive(Debug)]
struct Pipe {
    captured: Arc<Mutex<Captured>>,
    reader: Option<JoinHandle<()>>,
}

/// A started state: the process group and its output readers.
#[derive(Debug)]
pub(crate) struct Running {
    state: String,
    group: Group,
    outputs: [Pipe; 2],
    grace: std::time::Duration,
    exited: Option<ExitStatus>,
}

/// What a finished state printed.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Stdout, less one trailing newline (a query's answer).
    pub answer: String,
    /// Stdout and stderr as deployment-log lines.
    pub log: Vec<String>,
}

/// The answer to `NeedsArtifactReboot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RebootAnswer {
    /// No reboot (also an empty answer).
    No,
    /// The module reboots what it updated itself, in `ArtifactReboot`.
    Yes,
    /// The client reboots the host; `ArtifactReboot` is not called.
    Automatic,
}

/// Starts `<program> <state> <tree>` in `tree`, in its own process group.
pub(crate) async fn start(
    config: &ModuleConfig,
    program: &Path,
    state: &str,
    tree: &Path,
) -> Result<Running, BackendError> {
    tracing::debug!(module = %program.display(), state, "calling Update Module");
    let mut command = Command::new(program);
    command
        .arg(state)
        .arg(tree)
        .current_dir(tree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = process_group::spawn(&mut command)
        .await
        .map_err(|e| BackendError::io(format!("start {} {state}", program.display()), e))?;
    let stdout = capture(group.child.stdout.take(), config.stdout_cap);
    let stderr = capture(group.child.stderr.take(), config.stderr_cap);
    Ok(Running {
        state: state.to_string(),
        group,
        outputs: [stdout, stderr],
        grace: config.output_grace,
        exited: None,
    })
}

/// Runs one state to its end within `config.timeout`; a non-zero exit or a timeout is an
/// error carrying the module's output.
pub(crate) async fn call(
    config: &ModuleConfig,
    program: &Path,
    state: &str,
    tree: &Path,
) -> Result<Output, BackendError> {
    let mut running = start(config, program, state, tree).await?;
    let deadline = Instant::now() + config.timeout;
    running.wait_success(deadline).await
}

/// Parses a `Yes`/`No` query answer (`SupportsRollback`, `ProvidePayloadFileSizes`).
pub(crate) fn yes_no(state: &str, answer: &str) -> Result<bool, BackendError> {
    match answer {
        "" | "No" => Ok(false),
        "Yes" => Ok(true),
        other => Err(unexpected(state, other)),
    }
}

/// Parses the `NeedsArtifactReboot` answer.
pub(crate) fn reboot_answer(answer: &str) -> Result<RebootAnswer, BackendError> {
    match answer {
        "" | "No" => Ok(RebootAnswer::No),
        "Yes" => Ok(RebootAnswer::Yes),
        "Automatic" => Ok(RebootAnswer::Automatic),
        other => Err(unexpected("NeedsArtifactReboot", other)),
    }
}

fn unexpected(state: &str, answer: &str) -> BackendError {
    let shown: String = answer.chars().take(200).collect();
    BackendError::failed(format!(
        "unexpected answer from the Update Module to {state}: {shown:?}"
    ))
}

impl Running {
    /// Waits for the module to exit until `deadline`; past it, kills the process group
    /// and fails. A non-zero exit fails too; either error carries the output.
    pub async fn wait_success(&mut self, deadline: Instant) -> Result<Output, BackendError> {
        let status = self.wait(deadline).await;
        let output = self.output().await;
        match status {
            Some(s) if s.success() => Ok(output),
            Some(s) => Err(BackendError::failed_with_log(
                format!("Update Module state {} failed ({s})", self.state),
                output.log,
            )),
            None => Err(BackendError::failed_with_log(
                format!(
                    "Update Module state {} timed out; its process group was killed",
                    self.state
                ),
                output.log,
            )),
        }
    }

    /// Waits for the exit until `deadline`: `None` if it timed out, and then the whole
    /// group has been killed.
    pub async fn wait(&mut self, deadline: Instant) -> Option<ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        match tokio::time::timeout_at(deadline, self.group.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = Some(status);
                Some(status)
            }
            Ok(Err(e)) => {
                tracing::warn!(state = %self.state, error = %e, "waiting for Update Module");
                self.group.kill().await;
                None
            }
            Err(_) => {
                tracing::warn!(state = %self.state, "Update Module timed out; killing its group");
                self.group.kill().await;
                None
            }
        }
    }

    /// Waits for the exit, unboundedly (the caller races it against other events and
    /// bounds the whole); cancel-safe.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.exited {
            return Ok(s);
        }
        let status = self.group.child.wait().await?;
        self.exited = Some(status);
        Ok(status)
    }

    /// Kills the whole process group (unless the leader has already been reaped).
    pub async fn kill(&mut self) {
        if self.exited.is_none() {
            self.group.kill().await;
        }
    }

    /// The output gathered: waits `grace` at most for the pipes to close.
    pub async fn output(&mut self) -> Output {
        let deadline = Instant::now() + self.grace;
        let mut texts = Vec::with_capacity(2);
        for Pipe { captured, reader } in &mut self.outputs {
            // Taken: a second call finds what the first left (nothing).
            if let Some(mut reader) = reader.take() {
                if tokio::time::timeout_at(deadline, &mut reader)
                    .await
                    .is_err()
                {
                    reader.abort();
                }
            }
            let c = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
            texts.push(c);
        }
        let mut log = Vec::new();
        for (c, stream) in texts.iter().zip(["stdout", "stderr"]) {
            let text = String::from_utf8_lossy(&c.kept);
            for line in text.lines() {
                log.push(format!("Update Module {} ({stream}): {line}", self.state));
            }
            if c.dropped > 0 {
                log.push(format!(
                    "Update Module {} ({stream}): {} more bytes not kept",
                    self.state, c.dropped
                ));
            }
        }
        let stdout = String::from_utf8_lossy(&texts[0].kept);
        let answer = stdout.strip_suffix('\n').unwrap_or(&stdout).to_string();
        Output { answer, log }
    }
}

/// Drains `pipe` in a task, keeping its first `cap` bytes.
fn capture<R>(pipe: Option<R>, cap: usize) -> Pipe
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let captured = Arc::new(Mutex::new(Captured::default()));
    let shared = Arc::clone(&captured);
    let task = tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return };
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut c = shared.lock().unwrap_or_else(|p| p.into_inner());
            let room = cap.saturating_sub(c.kept.len()).min(n);
            c.kept.extend_from_slice(&buf[..room]);
            c.dropped += (n - room) as u64;
        }
    });
    Pipe {
        captured,
        reader: Some(task),
    }
}
