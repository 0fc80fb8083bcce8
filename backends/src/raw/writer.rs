//! Writing an image into a slot: large aligned writes, an exact byte count, `fsync` at the
//! end, and an optional read-back that hashes what the slot really holds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::BackendError;

/// Writes are issued in blocks of this size (a multiple of every common sector and erase
/// block size), so a slow device sees few, large, aligned writes.
pub const BLOCK: usize = 1024 * 1024;

/// Blocks queued for the writer thread: download and disk writes overlap on two cores,
/// with at most this many 1 MiB blocks queued (plus the one being filled and the one being
/// written) in memory.
const QUEUE: usize = 2;

/// An open slot being written. Invariants: exactly `expected` bytes are accepted; nothing is
/// written past them; blocks reach the slot in order, each written whole by one thread that
/// owns the file; `finish` returns only after that thread wrote and synced everything, and
/// `abort` only after it stopped, so no write of an abandoned install lands after it.
pub struct SlotWriter {
    path: PathBuf,
    buf: BytesMut,
    queued: u64,
    expected: u64,
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    cancelled: Arc<AtomicBool>,
    thread: Option<tokio::task::JoinHandle<Result<u64, BackendError>>>,
}

impl SlotWriter {
    /// Opens the slot for writing `expected` bytes from offset 0. A plain file is created or
    /// truncated; a block device is written in place, opened with `O_EXCL`: the kernel then
    /// refuses it while it is mounted or held exclusively by another program (`EBUSY`, a
    /// [`BackendError::NotStarted`]), and nobody can mount or claim it while it is being
    /// written. (`O_EXCL` is not used on a plain file: without `O_CREAT` its meaning there
    /// is undefined.)
    pub async fn open(path: &Path, expected: u64) -> Result<Self, BackendError> {
        use std::os::unix::fs::FileTypeExt as _;
        let is_block = tokio::fs::metadata(path)
            .await
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(!is_block).truncate(!is_block);
        if is_block {
            options.custom_flags(nix::fcntl::OFlag::O_EXCL.bits());
        }
        let file = match options.open(path).await {
            Ok(f) => f.into_std().await,
            Err(e) if is_block && e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32) => {
                return Err(BackendError::not_started(format!(
                    "{} is in use (mounted, or held open exclusively by another program); \
                     refusing to write it",
                    path.display()
                )))
            }
            Err(e) => return Err(io(path, "opening", e)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let owned = path.to_path_buf();
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let thread = tokio::task::spawn_blocking(move || write_blocks(file, rx, &flag, &owned));
        Ok(SlotWriter {
            path: path.to_path_buf(),
            buf: BytesMut::with_capacity(BLOCK),
            queued: 0,
            expected,
            tx: Some(tx),
            cancelled,
            thread: Some(thread),
        })
    }

    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), BackendError> {
        let total = self.queued + self.buf.len() as u64 + chunk.len() as u64;
        if total > self.expected {
            return Err(BackendError::failed(format!(
                "payload for {} is longer than its announced {} bytes",
                self.path.display(),
                self.expected
            )));
        }
        while !chunk.is_empty() {
            let take = (BLOCK - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk.split_to(take));
            if self.buf.len() == BLOCK {
                self.send_block().await?;
            }
        }
        Ok(())
    }

    /// Hands the filled block to the writer thread (waiting while `QUEUE` blocks are ahead of
    /// it). A closed queue means the thread stopped on an error: that error is returned.
    async fn send_block(&mut self) -> Result<(), BackendError> {
        let block = std::mem::replace(&mut self.buf, BytesMut::with_capacity(BLOCK)).freeze();
        let len = block.len() as u64;
        let sent = match &self.tx {
            Some(tx) => tx.send(block).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped().await);
        }
        self.queued += len;
        Ok(())
    }

    /// The writer thread's own error, after it stopped early.
    async fn stopped(&mut self) -> BackendError {
        self.tx = None;
        match self.join().await {
            Err(e) => e,
            Ok(n) => BackendError::failed(format!(
                "the writer of {} stopped after {n} bytes",
                self.path.display()
            )),
        }
    }

    async fn join(&mut self) -> Result<u64, BackendError> {
        let Some(thread) = self.thread.take() else {
            return Err(BackendError::failed(format!(
                "the writer of {} is gone",
                self.path.display()
            )));
        };
        thread.await.map_err(|e| {
            BackendError::failed(format!("the writer of {} failed: {e}", self.path.display()))
        })?
    }

    /// Writes the rest, checks the byte count and makes it durable (`fsync`).
    pub async fn finish(mut self) -> Result<u64, BackendError> {
        if !self.buf.is_empty() {
            self.send_block().await?;
        }
        self.tx = None;
        let written = self.join().await?;
        if written != self.expected {
            return Err(BackendError::failed(format!(
                "wrote {written} of {} bytes to {}",
                self.expected,
                self.path.display()
            )));
        }
        Ok(written)
    }

    /// Stops writing: queued blocks are dropped, and this returns once the writer thread has
    /// let go of the slot (nothing is synced; the slot is not activated).
    pub async fn abort(mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.tx = None;
        let _ = self.join().await;
    }
}

/// The writer thread: writes each block whole, in order, then syncs once the queue closes
/// after the last one. Returns the bytes written. A write error ends it at once (the
/// sender sees the queue closed and collects this error); `cancelled` ends it at the next
/// block, without a sync.
fn write_blocks(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    cancelled: &AtomicBool,
    path: &Path,
) -> Result<u64, BackendError> {
    use std::io::Write as _;
    let mut written = 0u64;
    while let Some(block) = rx.blocking_recv() {
        if cancelled.load(Ordering::Relaxed) {
            return Ok(written);
        }
        file.write_all(&block).map_err(|e| io(path, "writing", e))?;
        written += block.len() as u64;
    }
    if cancelled.load(Ordering::Relaxed) {
        return Ok(written);
    }
    file.sync_all().map_err(|e| io(path, "syncing", e))?;
    Ok(written)
}

/// SHA-256 of the first `len` bytes of `path`, read back from the medium.
///
/// Invariant: the slot was synced before (`SlotWriter::finish`), so its cached pages are
/// clean; they are dropped first (`POSIX_FADV_DONTNEED`), so the hash is of what the
/// device returns, not of the page cache the write just filled. (A cache that ignores the
/// advice, or a page another process holds mapped, is read from memory: the check is then
/// no weaker than before.)
pub async fn read_back_sha256(path: &Path, len: u64) -> Result<[u8; 32], BackendError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| io(path, "opening for read-back", e))?;
    drop_cached(&f).map_err(|e| io(path, "dropping the cached pages of", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(BLOCK);
        let n = f
            .read(&mut buf[..want])
            .await
            .map_err(|e| io(path, "reading back", e))?;
        if n == 0 {
            return Err(BackendError::failed(format!(
                "{} ended {left} bytes early on read-back",
                path.display()
            )));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize().into())
}

/// Asks the kernel to forget the file's cached pages (length 0: to the end).
fn drop_cached(f: &tokio::fs::File) -> std::io::Result<()> {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    posix_fadvise(f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED).map_err(std::io::Error::from)
}

fn io(path: &Path, what: &str, source: std::io::Error) -> BackendError {
    BackendError::io(format!("{what} {}", path.display()), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block device that is mounted, or held open exclusively by another program, is
    /// refused; a free one is written.
    #[tokio::test]
    async fn a_block_device_in_use_is_refused() {
        use super::super::testloop::{is_root, Loop};
        if !is_root() {
            eprintln!("skipped: loop devices need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = Loop::new(dir.path(), "mounted", 16 << 20);
        let _mount = mounted.mount(dir.path(), "mnt");
        let e = SlotWriter::open(&mounted.dev, 4096)
            .await
            .err()
            .unwrap_or_else(|| panic!("wrote into the mounted {}", mounted.dev.display()));
        assert!(matches!(e, BackendError::NotStarted(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains(&*mounted.dev.to_string_lossy()), "{text}");
        assert!(text.contains("in use"), "{text}");

        let held = Loop::new(dir.path(), "held", 4 << 20);
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            let _holder = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_EXCL.bits())
                .open(&held.dev)
                .unwrap();
            let e = SlotWriter::open(&held.dev, 4096).await.err();
            assert!(
                matches!(e, Some(BackendError::NotStarted(_))),
                "wrote into a device held exclusively: {e:?}"
            );
        }
        // Free again: written, exactly.
        let data: Vec<u8> = (0..BLOCK + 999).map(|i| (i % 253) as u8).collect();
        let mut w = SlotWriter::open(&held.dev, data.len() as u64)
            .await
            .unwrap();
        w.write(Bytes::copy_from_slice(&data)).await.unwrap();
        assert_eq!(w.finish().await.unwrap(), data.len() as u64);
        let h: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(
            read_back_sha256(&held.dev, data.len() as u64)
                .await
                .unwrap(),
            h
        );
    }

    #[tokio::test]
    async fn writes_exactly_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slot");
        let data: Vec<u8> = (0..(BLOCK * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let mut w = SlotWriter::open(&p, data.len() as u64).await.unwrap();
        for c in data.chunks(100_000) {
            w.write(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert_eq!(w.finish().await.unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), data);
        let h: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(read_back_sha256(&p, data.len() as u64).await.unwrap(), h);

        let mut w = SlotWriter::open(&p, 10).await.unwrap();
        assert!(
            w.write(Bytes::from_static(&[0; 11])).await.is_err(),
            "too long"
        );
        let mut w = SlotWriter::open(&p, 10).await.unwrap();
        w.write(Bytes::from_static(&[0; 9])).await.unwrap();
        assert!(w.finish().await.is_err(), "too short");
    }

    /// A write error in the writer thread reaches the caller, naming the slot.
    #[tokio::test]
    async fn a_failing_slot_write_is_reported() {
        let len = BLOCK * 8;
        let mut w = SlotWriter::open(Path::new("/dev/full"), len as u64)
            .await
            .unwrap();
        let block = Bytes::from(vec![0u8; BLOCK]);
        let mut result = Ok(());
        for _ in 0..8 {
            result = w.write(block.clone()).await;
            if result.is_err() {
                break;
            }
        }
        let err = match result {
            Err(e) => e,
            Ok(()) => w.finish().await.unwrap_err(),
        };
        assert!(err.to_string().contains("writing /dev/full"), "{err}");
    }

    /// After abort returns, the writer has let go: nothing more is written.
    #[tokio::test]
    async fn abort_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slot");
        let mut w = SlotWriter::open(&p, (BLOCK * 10) as u64).await.unwrap();
        w.write(Bytes::from(vec![1u8; BLOCK * 2])).await.unwrap();
        w.abort().await;
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= (BLOCK * 2) as u64, "{len}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(std::fs::metadata(&p).unwrap().len(), len);
    }
}
