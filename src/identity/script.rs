//! Running one identity or inventory script, bounded: a timeout, a cap on stdout (over it
//! the script is killed), stderr kept up to a cap (the rest drained so the script never
//! blocks on it). The script runs in its own process group, and on timeout or overflow the
//! whole group is killed, so a backgrounded child holding the pipe cannot hang the bridge.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bounds on one script run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLimits {
    /// How long the script may run (default 30 s; `script_timeout_seconds`).
    pub timeout: Duration,
    /// Most stdout bytes accepted (default 256 KiB, a quarter of the server's body cap).
    pub max_stdout: usize,
    /// Most stderr bytes kept for messages (default 4 KiB); the rest is read and dropped.
    pub max_stderr: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            timeout: Duration::from_secs(30),
            max_stdout: 256 * 1024,
            max_stderr: 4 * 1024,
        }
    }
}

/// A script could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} did not finish within {} s and was killed", path.display(), timeout.as_secs_f64())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("{} printed more than {limit} bytes and was killed", path.display())]
    TooMuchOutput { path: PathBuf, limit: usize },
    #[error("reading the output of {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a script that ran to the end produced.
#[derive(Debug, Clone)]
pub struct ScriptOutput {
    pub status: ExitStatus,
    /// Standard output (at most `max_stdout` bytes).
    pub stdout: Vec<u8>,
    /// Standard error as text, cut at `max_stderr` bytes (marked with `…`), trimmed.
    pub stderr: String,
}

enum ReadFailure {
    TooLarge,
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadFailure {
    fn from(e: std::io::Error) -> Self {
        ReadFailure::Io(e)
    }
}

/// Runs `path` with no arguments, stdin from `/dev/null`, the bridge's environment.
pub async fn run_script(path: &Path, limits: &ScriptLimits) -> Result<ScriptOutput, ScriptError> {
    let mut group = crate::process_group::spawn(
        tokio::process::Command::new(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .await
    .map_err(|source| ScriptError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    let stdout = group.child.stdout.take();
    let stderr = group.child.stderr.take();

    let child = &mut group.child;
    let work = async {
        let (out, err) = tokio::try_join!(
            read_capped(stdout, limits.max_stdout),
            read_head(stderr, limits.max_stderr)
        )?;
        let status = child.wait().await?;
        Ok::<_, ReadFailure>((status, out, err))
    };
    let result = tokio::time::timeout(limits.timeout, work).await;
    let failure = match result {
        Ok(Ok((status, stdout, stderr))) => {
            return Ok(ScriptOutput {
                status,
                stdout,
                stderr,
            })
        }
        Ok(Err(ReadFailure::TooLarge)) => ScriptError::TooMuchOutput {
            path: path.to_path_buf(),
            limit: limits.max_stdout,
        },
        Ok(Err(ReadFailure::Io(source))) => ScriptError::Io {
            path: path.to_path_buf(),
            source,
        },
        Err(_) => ScriptError::Timeout {
            path: path.to_path_buf(),
            timeout: limits.timeout,
        },
    };
    group.kill().await;
    Err(failure)
}

async fn read_capped<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limit: usize,
) -> Result<Vec<u8>, ReadFailure> {
    let Some(reader) = reader else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(ReadFailure::TooLarge);
    }
    Ok(buf)
}

/// Reads to the end, keeping the first `limit` bytes as (lossy) text.
async fn read_head<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limit: usize,
) -> Result<String, ReadFailure> {
    let Some(mut reader) = reader else {
        return Ok(String::new());
    };
    let mut head = Vec::new();
    let mut cut = false;
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(head.len());
        if n > room {
            cut = true;
        }
        head.extend_from_slice(&chunk[..n.min(room)]);
    }
    let mut text = String::from_utf8_lossy(&head).trim().to_string();
    if cut {
        text.push('…');
    }
    Ok(text)
}
