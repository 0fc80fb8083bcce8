//! The `Download` state: the module runs while the payload streams, and takes each file
//! through the `stream-next` and `streams/<name>` FIFOs, or, if it exits without reading
//! `stream-next`, the bridge stores the files in `files/` (the official client's rule:
//! `installer/modules.go`, `moduleDownload`).
//!
//! Invariants: bytes go out only as [`Download::write`] delivers them, straight from the
//! caller's chunk into the FIFO or file, never more than that one chunk held; every FIFO
//! open and every write is bounded by `fifo_timeout` and the whole state by the module
//! timeout, after which the module's process group is killed; a module that started
//! reading streams and exits before the last one is a failure; nothing here runs any state
//! but `Download` (or `DownloadWithFileSizes`): installing is [`super::backend`]'s, after
//! verification.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::pipe;
use tokio::time::Instant;

use super::config::ModuleConfig;
use super::run::{self, Output, Running};
use super::tree;
use crate::BackendError;

/// How often a FIFO open is retried while the module has not opened its end.
const OPEN_POLL: Duration = Duration::from_millis(10);

/// Who takes the payload files.
#[derive(Debug)]
enum Mode {
    /// The module has neither read `stream-next` nor exited yet.
    Unknown,
    /// The module reads the streams; the open stream, if any.
    Module(Option<pipe::Sender>),
    /// The module exited without reading: files go to `files/`; the open file, if any.
    Files(Option<StoredFile>),
}

/// Bytes gathered for one write to `files/`: a handoff to a blocking thread per chunk costs
/// more than the write itself.
const FILE_BATCH: usize = 1 << 20;

/// A file being stored in `files/`, with the chunks not yet written.
#[derive(Debug)]
struct StoredFile {
    file: Option<std::fs::File>,
    pending: Vec<Bytes>,
    pending_len: usize,
}

impl StoredFile {
    fn new(file: std::fs::File) -> Self {
        StoredFile {
            file: Some(file),
            pending: Vec::new(),
            pending_len: 0,
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= FILE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is pending, off the async workers.
    async fn flush(&mut self) -> Result<(), BackendError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(mut file) = self.file.take() else {
            return Err(BackendError::failed("files/: the file was lost"));
        };
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let (file, result) = tokio::task::spawn_blocking(move || {
            let r = chunks
                .iter()
                .try_for_each(|c| std::io::Write::write_all(&mut file, c));
            (file, r)
        })
        .await
        .map_err(|e| BackendError::failed(format!("file writer: {e}")))?;
        self.file = Some(file);
        result.map_err(|e| BackendError::io("write to files/", e))
    }
}

/// The pipe buffer asked for each stream (the default maximum for unprivileged processes).
const PIPE_SIZE: nix::libc::c_int = 1 << 20;

/// How long a module that broke its stream may take to exit before the bridge reports the
/// broken pipe alone.
const STREAM_EXIT_GRACE: Duration = Duration::from_secs(2);

/// The result of waiting for the module to open a FIFO.
enum Opened {
    Reader(pipe::Sender),
    Exited(std::process::ExitStatus),
}

/// A running `Download` state.
#[derive(Debug)]
pub(crate) struct Download {
    running: Running,
    tree: PathBuf,
    with_sizes: bool,
    /// The module timeout, from the start of `Download`.
    deadline: Instant,
    fifo_timeout: Duration,
    mode: Mode,
    /// `stream-next`, opened by the module and not yet written to.
    pending_next: Option<pipe::Sender>,
}

impl Download {
    /// Starts `Download` (or `DownloadWithFileSizes` when `with_sizes`) in `tree`, which
    /// [`tree::create`] made.
    pub async fn start(
        config: &ModuleConfig,
        program: &Path,
        tree: &Path,
        with_sizes: bool,
    ) -> Result<Self, BackendError> {
        let state = if with_sizes {
            "DownloadWithFileSizes"
        } else {
            "Download"
        };
        let running = run::start(config, program, state, tree).await?;
        Ok(Download {
            running,
            tree: tree.to_path_buf(),
            with_sizes,
            deadline: Instant::now() + config.timeout,
            fifo_timeout: config.fifo_timeout,
            mode: Mode::Unknown,
            pending_next: None,
        })
    }

    /// The next payload file, `name` of `size` bytes: offered as a stream or opened in
    /// `files/`. The previous file, if any, is closed first.
    pub async fn next_file(&mut self, name: &str, size: u64) -> Result<(), BackendError> {
        let name = tree::check_name(name)?;
        self.flush_current().await?;
        self.close_current();
        if matches!(self.mode, Mode::Unknown) {
            self.decide().await?;
        }
        match &mut self.mode {
            Mode::Files(current) => {
                let path = self.tree.join("files").join(name);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| BackendError::io(format!("create {}", path.display()), e))?;
                *current = Some(StoredFile::new(file));
                Ok(())
            }
            Mode::Module(_) => {
                let stream = self.publish(name, size).await?;
                self.mode = Mode::Module(Some(stream));
                Ok(())
            }
            Mode::Unknown => Err(BackendError::failed("download mode undecided")),
        }
    }

    /// Writes the next chunk of the current file.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        let limit = self.limit();
        match &mut self.mode {
            Mode::Module(Some(stream)) => {
                match tokio::time::timeout_at(limit, stream.write_all(&chunk)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(self.stream_broken(e).await),
                    Err(_) => Err(BackendError::failed(
                        "the Update Module stopped reading its stream (timed out)",
                    )),
                }
            }
            Mode::Files(Some(file)) => file.write(chunk).await,
            _ => Err(BackendError::failed(
                "write before a payload file was begun",
            )),
        }
    }

    /// The module closed its stream early: most likely `Download` exited. Waits a moment
    /// for it, so the error names its exit status and carries its output.
    async fn stream_broken(&mut self, e: std::io::Error) -> BackendError {
        let state = if self.with_sizes {
            "DownloadWithFileSizes"
        } else {
            "Download"
        };
        let grace = (Instant::now() + STREAM_EXIT_GRACE).min(self.deadline);
        match self.running.wait(grace).await {
            Some(status) => BackendError::failed_with_log(
                format!(
                    "Update Module state {state} ended ({status}) before reading the whole \
                     payload stream"
                ),
                self.running.output().await.log,
            ),
            None => BackendError::io(format!("write to the Update Module's stream in {state}"), e),
        }
    }

    /// All files delivered: ends the streams (a zero-length `stream-next`) and waits for
    /// the module to exit successfully. Files stored in `files/` are not synced here: they
    /// are read from the page cache within this boot, and made durable only when a reboot
    /// follows ([`super::tree::sync`]).
    pub async fn finish(mut self) -> Result<Output, BackendError> {
        self.flush_current().await?;
        self.close_current();
        if matches!(self.mode, Mode::Unknown) {
            self.decide().await?;
        }
        if let Mode::Module(_) = self.mode {
            // The end of the streams: open and close without writing. A module that exits
            // without this last read is accepted, as the 3.x client accepts it.
            if self.pending_next.take().is_none() {
                let next = self.tree.join("stream-next");
                if let Opened::Exited(status) = self.open_reader(&next).await? {
                    tracing::debug!(%status, "Update Module exited before the end of streams");
                }
            }
        }
        let deadline = self.deadline;
        self.running.wait_success(deadline).await
    }

    /// Stops the download: the module's process group is killed, its output returned.
    pub async fn abort(mut self) -> Output {
        self.close_current();
        self.running.kill().await;
        self.running.output().await
    }

    /// Whether the module reads the streams (false when it stored nothing itself).
    pub fn module_reads_streams(&self) -> bool {
        matches!(self.mode, Mode::Module(_))
    }

    /// Offers `streams/<name>` in `stream-next` and opens it once the module opened it.
    async fn publish(&mut self, name: &str, size: u64) -> Result<pipe::Sender, BackendError> {
        let mut next = match self.pending_next.take() {
            Some(next) => next,
            None => {
                let path = self.tree.join("stream-next");
                let opened = self.open_reader(&path).await?;
                self.expect_reader(opened, "stream-next").await?
            }
        };
        let stream = self.tree.join("streams").join(name);
        tree::mkfifo(&stream)?;
        let line = if self.with_sizes {
            format!("streams/{name} {size}\n")
        } else {
            format!("streams/{name}\n")
        };
        match tokio::time::timeout_at(self.limit(), next.write_all(line.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BackendError::io("write stream-next", e)),
            Err(_) => {
                return Err(BackendError::failed(
                    "the Update Module did not read stream-next",
                ))
            }
        }
        drop(next);
        let opened = self.open_reader(&stream).await?;
        let sender = self
            .expect_reader(opened, &format!("streams/{name}"))
            .await?;
        // Room for whole reader chunks: fewer wake-ups of the module per chunk. The
        // default (64 KiB) still works if the system refuses.
        if let Err(e) = nix::fcntl::fcntl(&sender, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
            tracing::debug!(error = %e, "stream pipe size unchanged");
        }
        Ok(sender)
    }

    /// A FIFO the module must read: its exit instead is a failure.
    async fn expect_reader(
        &mut self,
        opened: Opened,
        what: &str,
    ) -> Result<pipe::Sender, BackendError> {
        match opened {
            Opened::Reader(sender) => Ok(sender),
            Opened::Exited(status) => {
                let out = self.running.output().await;
                Err(BackendError::failed_with_log(
                    format!(
                        "the Update Module started reading streams but exited ({status}) \
                         before reading {what}"
                    ),
                    out.log,
                ))
            }
        }
    }

    /// Opens the FIFO at `path` for writing once the module has its read end open, or
    /// reports the module's exit; bounded by [`Self::limit`], after which the module's
    /// group is killed.
    async fn open_reader(&mut self, path: &Path) -> Result<Opened, BackendError> {
        let limit = self.limit();
        loop {
            match pipe::OpenOptions::new().open_sender(path) {
                Ok(sender) => return Ok(Opened::Reader(sender)),
                Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {}
                Err(e) => return Err(BackendError::io(format!("open {}", path.display()), e)),
            }
            tokio::select! {
                status = self.running.exited() => {
                    let status = status.map_err(|e| BackendError::io("wait for the Update Module", e))?;
                    return Ok(Opened::Exited(status));
                }
                _ = tokio::time::sleep(OPEN_POLL) => {}
            }
            if Instant::now() >= limit {
                self.running.kill().await;
                let out = self.running.output().await;
                return Err(BackendError::failed_with_log(
                    format!(
                        "the Update Module did not open {} in time; its process group was killed",
                        path.display()
                    ),
                    out.log,
                ));
            }
        }
    }

    /// The bound of the next FIFO wait: `fifo_timeout` from now, within the module timeout.
    fn limit(&self) -> Instant {
        (Instant::now() + self.fifo_timeout).min(self.deadline)
    }

    /// Writes what the current stored file still holds.
    async fn flush_current(&mut self) -> Result<(), BackendError> {
        match &mut self.mode {
            Mode::Files(Some(file)) => file.flush().await,
            _ => Ok(()),
        }
    }

    fn close_current(&mut self) {
        match &mut self.mode {
            Mode::Module(s) => drop(s.take()),
            Mode::Files(f) => drop(f.take()),
            Mode::Unknown => {}
        }
    }

    /// The first `stream-next` open or the module's exit decides who takes the files.
    async fn decide(&mut self) -> Result<(), BackendError> {
        let next = self.tree.join("stream-next");
        match self.open_reader(&next).await? {
            Opened::Reader(sender) => {
                tracing::debug!("Update Module reads the streams");
                // Keep stream-next open: publish() writes the first name into it.
                self.mode = Mode::Module(None);
                self.pending_next = Some(sender);
            }
            Opened::Exited(status) if status.success() => {
                tracing::debug!("Update Module read no streams: storing files/");
                tree::switch_to_files(&self.tree)?;
                self.mode = Mode::Files(None);
            }
            Opened::Exited(status) => {
                let out = self.running.output().await;
                return Err(BackendError::failed_with_log(
                    format!("Update Module state Download failed ({status})"),
                    out.log,
                ));
            }
        }
        Ok(())
    }
}
