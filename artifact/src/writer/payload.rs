//! `PayloadFile`: one file of the payload (a name, a size, a reader of exactly that many
//! bytes), and copying its bytes out exactly, hashed on the way.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::time::UNIX_EPOCH;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::WriteError;
use crate::{Digest, CHUNK};

/// One payload file: a name at the root of the data tar, and a reader that yields exactly
/// `size` bytes.
pub struct PayloadFile {
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) mode: u32,
    pub(super) mtime: u64,
    pub(super) sha256: Option<Digest>,
    reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for PayloadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadFile")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("mtime", &self.mtime)
            .field("sha256", &self.sha256.map(hex::encode))
            .finish_non_exhaustive()
    }
}

impl PayloadFile {
    /// A file named `name` whose content is the first `size` bytes of `reader`, which must
    /// then be at its end ([`WriteError::ShortPayload`] / [`WriteError::LongPayload`]
    /// otherwise). Mode 0644, mtime 0.
    pub fn new(
        name: impl Into<String>,
        size: u64,
        reader: impl AsyncRead + Send + 'static,
    ) -> Self {
        PayloadFile {
            name: name.into(),
            size,
            mode: 0o644,
            mtime: 0,
            sha256: None,
            reader: Box::pin(reader),
        }
    }

    /// Opens a file on disk: name, size, permission bits and mtime (rounded to the nearest
    /// second, as mender-artifact writes it) from the file.
    pub async fn from_path(path: impl AsRef<Path>) -> Result<Self, WriteError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let read_err = |source| WriteError::ReadPayload {
            name: label.clone(),
            source,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| WriteError::InvalidFile {
                name: label.clone(),
                reason: "the path has no UTF-8 file name".into(),
            })?
            .to_string();
        let file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let meta = file.metadata().await.map_err(read_err)?;
        if !meta.is_file() {
            return Err(WriteError::InvalidFile {
                name: label,
                reason: "not a regular file".into(),
            });
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            // Rounded to the nearest second, as Go's archive/tar does for USTAR headers.
            .map_or(0, |d| {
                d.as_secs() + u64::from(d.subsec_nanos() >= 500_000_000)
            });
        #[cfg(unix)]
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        #[cfg(not(unix))]
        let mode = 0o644;
        Ok(PayloadFile::new(name, meta.len(), file)
            .with_mode(mode)
            .with_mtime(mtime))
    }

    /// SHA-256 of a file's content: the first pass for callers who declare digests.
    pub async fn hash_path(path: impl AsRef<Path>) -> Result<Digest, WriteError> {
        let path = path.as_ref();
        let read_err = |source| WriteError::ReadPayload {
            name: path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(read_err)?;
            if n == 0 {
                return Ok(hasher.finalize().into());
            }
            hasher.update(&buf[..n]);
        }
    }

    /// Declares the content's SHA-256. It is checked against the bytes read; see the module
    /// documentation for when.
    pub fn with_sha256(mut self, digest: Digest) -> Self {
        self.sha256 = Some(digest);
        self
    }

    /// Permission bits in the data tar (masked to 0o7777).
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// Modification time in the data tar, seconds since the epoch.
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Streams exactly `f.size` bytes of `f` into `sink`, returning their SHA-256. The reader
/// must end right there. `sink_err` wraps errors of the sink.
pub(super) async fn copy_payload<S: AsyncWrite + Unpin>(
    f: &mut PayloadFile,
    sink: &mut S,
    buf: &mut [u8],
    sink_err: impl Fn(io::Error) -> WriteError,
) -> Result<Digest, WriteError> {
    let read_err = |source| WriteError::ReadPayload {
        name: f.name.clone(),
        source,
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while read < f.size {
        let want = buf
            .len()
            .min(usize::try_from(f.size - read).unwrap_or(usize::MAX));
        let n = f.reader.read(&mut buf[..want]).await.map_err(read_err)?;
        if n == 0 {
            return Err(WriteError::ShortPayload {
                name: f.name.clone(),
                size: f.size,
                read,
            });
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n]).await.map_err(&sink_err)?;
        read += n as u64;
    }
    let mut probe = [0u8; 1];
    if f.reader.read(&mut probe).await.map_err(read_err)? != 0 {
        return Err(WriteError::LongPayload {
            name: f.name.clone(),
            size: f.size,
        });
    }
    Ok(hasher.finalize().into())
}

/// A digest the caller declared must be the one computed from the bytes.
pub(super) fn check_declared(
    name: &str,
    declared: Option<Digest>,
    actual: &Digest,
) -> Result<(), WriteError> {
    match declared {
        Some(d) if &d != actual => Err(WriteError::DigestMismatch {
            name: name.to_string(),
            declared: hex::encode(d),
            actual: hex::encode(actual),
        }),
        _ => Ok(()),
    }
}
