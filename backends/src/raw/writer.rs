//! Writing an image into a slot: large aligned writes, an exact byte count, `fsync` at the
//! end, and an optional read-back that hashes what the slot really holds.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::BackendError;

/// Writes are issued in blocks of this size (a multiple of every common sector and erase
/// block size), so a slow device sees few, large, aligned writes.
pub const BLOCK: usize = 1024 * 1024;

/// An open slot being written. Invariant: exactly `expected` bytes are accepted; nothing is
/// written past them.
pub struct SlotWriter {
    path: PathBuf,
    file: tokio::fs::File,
    buf: BytesMut,
    written: u64,
    expected: u64,
}

impl SlotWriter {
    /// Opens the slot for writing `expected` bytes from offset 0. A plain file is created or
    /// truncated; a block device is written in place.
    pub async fn open(path: &Path, expected: u64) -> Result<Self, BackendError> {
        use std::os::unix::fs::FileTypeExt as _;
        let is_block = tokio::fs::metadata(path)
            .await
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(!is_block)
            .truncate(!is_block)
            .open(path)
            .await
            .map_err(|e| io(path, "opening", e))?;
        Ok(SlotWriter {
            path: path.to_path_buf(),
            file,
            buf: BytesMut::with_capacity(BLOCK),
            written: 0,
            expected,
        })
    }

    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), BackendError> {
        let total = self.written + self.buf.len() as u64 + chunk.len() as u64;
        if total > self.expected {
            return Err(BackendError::Failed {
                message: format!(
                    "payload for {} is longer than its announced {} bytes",
                    self.path.display(),
                    self.expected
                ),
                log: vec![],
            });
        }
        while !chunk.is_empty() {
            let take = (BLOCK - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk.split_to(take));
            if self.buf.len() == BLOCK {
                self.flush_block().await?;
            }
        }
        Ok(())
    }

    async fn flush_block(&mut self) -> Result<(), BackendError> {
        self.file
            .write_all(&self.buf)
            .await
            .map_err(|e| io(&self.path, "writing", e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the rest, checks the byte count and makes it durable (`fsync`).
    pub async fn finish(mut self) -> Result<u64, BackendError> {
        if !self.buf.is_empty() {
            self.flush_block().await?;
        }
        if self.written != self.expected {
            return Err(BackendError::Failed {
                message: format!(
                    "wrote {} of {} bytes to {}",
                    self.written,
                    self.expected,
                    self.path.display()
                ),
                log: vec![],
            });
        }
        self.file
            .sync_all()
            .await
            .map_err(|e| io(&self.path, "syncing", e))?;
        Ok(self.written)
    }
}

/// SHA-256 of the first `len` bytes of `path`, read back from the device.
pub async fn read_back_sha256(path: &Path, len: u64) -> Result<[u8; 32], BackendError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| io(path, "opening for read-back", e))?;
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
            return Err(BackendError::Failed {
                message: format!("{} ended {left} bytes early on read-back", path.display()),
                log: vec![],
            });
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize().into())
}

fn io(path: &Path, what: &str, source: std::io::Error) -> BackendError {
    BackendError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
