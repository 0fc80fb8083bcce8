//! The spool: where the compressed data tar waits until its size and every file's digest are
//! known (in memory, or in an anonymous temporary file), and its copy to the output after.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite};

use super::data::write_data_tar;
use super::encoder::Encoder;
use super::output::Counting;
use super::{PayloadFile, Spool, WriteError, WriteOptions, WrittenFile};
use crate::CHUNK;

/// The compressed data tar, waiting for the outer header to be written.
pub(super) struct Spooled {
    store: SpoolStore,
    /// Its size in bytes.
    pub(super) len: u64,
}

enum SpoolStore {
    Memory(Vec<u8>),
    File(TempFile),
}

impl Spooled {
    /// Copies the spooled bytes to the output.
    pub(super) async fn copy_to<W: AsyncWrite + Unpin>(
        self,
        out: &mut Counting<'_, W>,
    ) -> Result<(), WriteError> {
        match self.store {
            SpoolStore::Memory(v) => out.put(&v).await,
            SpoolStore::File(mut t) => {
                let spool_err = |context: &str| {
                    let context = context.to_string();
                    move |source| WriteError::Spool { context, source }
                };
                t.file
                    .seek(io::SeekFrom::Start(0))
                    .await
                    .map_err(spool_err("rewinding"))?;
                let mut buf = vec![0u8; CHUNK];
                let mut left = self.len;
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = t
                        .file
                        .read(&mut buf[..want])
                        .await
                        .map_err(spool_err("reading back"))?;
                    if n == 0 {
                        return Err(WriteError::Spool {
                            context: "reading back".into(),
                            source: io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("the spool file ended {left} bytes early"),
                            ),
                        });
                    }
                    out.put(&buf[..n]).await?;
                    left -= n as u64;
                }
                Ok(())
            }
        }
    }
}

/// A temporary file that nobody else can open: created with `create_new` and mode 0600,
/// and unlinked right after creation on Unix (on drop elsewhere).
struct TempFile {
    file: tokio::fs::File,
    #[cfg_attr(unix, allow(dead_code))]
    path: PathBuf,
}

#[cfg(not(unix))]
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl TempFile {
    async fn create(dir: &Path) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".mender-bridge-spool-{}-{nanos:09}-{n}",
                std::process::id()
            ));
            let mut opts = tokio::fs::OpenOptions::new();
            opts.read(true).write(true).create_new(true);
            #[cfg(unix)]
            opts.mode(0o600);
            match opts.open(&path).await {
                Ok(file) => {
                    #[cfg(unix)]
                    tokio::fs::remove_file(&path).await?;
                    return Ok(TempFile { file, path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes the compressed data tar into the spool, computing every file's SHA-256 and
/// checking the declared ones. Nothing reaches the output here.
pub(super) async fn spool_data(
    files: &mut [PayloadFile],
    opts: &WriteOptions,
    member: &str,
) -> Result<(Spooled, Vec<WrittenFile>), WriteError> {
    let compress_err = |source| WriteError::Compress {
        member: member.to_string(),
        source,
    };
    match &opts.spool {
        Spool::Memory => {
            let enc = Encoder::new(Vec::new(), opts.compression, opts.level);
            let (v, written) = fill_spool(enc, files, compress_err).await?;
            let len = v.len() as u64;
            Ok((
                Spooled {
                    store: SpoolStore::Memory(v),
                    len,
                },
                written,
            ))
        }
        Spool::Dir(dir) => {
            let mut t = TempFile::create(dir)
                .await
                .map_err(|source| WriteError::Spool {
                    context: format!("creating a temporary file in {}", dir.display()),
                    source,
                })?;
            let sink = tokio::io::BufWriter::with_capacity(CHUNK, &mut t.file);
            let enc = Encoder::new(sink, opts.compression, opts.level);
            let (_, written) = fill_spool(enc, files, compress_err).await?;
            let len = t
                .file
                .stream_position()
                .await
                .map_err(|source| WriteError::Spool {
                    context: "measuring".into(),
                    source,
                })?;
            Ok((
                Spooled {
                    store: SpoolStore::File(t),
                    len,
                },
                written,
            ))
        }
    }
}

/// Writes the data tar through `enc`, ends the compressed stream, returns the sink.
async fn fill_spool<S: AsyncWrite + Unpin>(
    mut enc: Encoder<S>,
    files: &mut [PayloadFile],
    err: impl Fn(io::Error) -> WriteError + Copy,
) -> Result<(S, Vec<WrittenFile>), WriteError> {
    let written = write_data_tar(&mut enc, files, err).await?;
    let sink = enc.finish().await.map_err(err)?;
    Ok((sink, written))
}
