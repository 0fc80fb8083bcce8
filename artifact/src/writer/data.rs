//! The data tar (`data/0000.tar` before compression): the payload files at its root, each
//! hashed as it goes in, and its exact size for the direct path.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::payload::{check_declared, copy_payload};
use super::tar::{padding, tar_header, BLOCK, END_OF_ARCHIVE};
use super::{PayloadFile, WriteError, WrittenFile};
use crate::CHUNK;

/// Writes the data tar of `files` into `sink`: each file's header, its exact content (hashed,
/// a declared digest checked) and padding, then the end of the archive. `err` wraps errors
/// of the sink. Returns the files as written, with their computed digests.
pub(super) async fn write_data_tar<S: AsyncWrite + Unpin>(
    sink: &mut S,
    files: &mut [PayloadFile],
    err: impl Fn(io::Error) -> WriteError + Copy,
) -> Result<Vec<WrittenFile>, WriteError> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = Vec::with_capacity(files.len());
    for f in files.iter_mut() {
        sink.write_all(&tar_header(&f.name, f.size, f.mode, f.mtime))
            .await
            .map_err(err)?;
        let actual = copy_payload(f, sink, &mut buf, err).await?;
        check_declared(&f.name, f.sha256, &actual)?;
        sink.write_all(&padding(f.size)).await.map_err(err)?;
        written.push(WrittenFile {
            name: f.name.clone(),
            size: f.size,
            sha256: actual,
        });
    }
    sink.write_all(&END_OF_ARCHIVE).await.map_err(err)?;
    Ok(written)
}

/// The files as they will be written, with their declared digests (the direct path, where
/// every file has one; the bytes are checked against it while they are written).
pub(super) fn declared_files(files: &[PayloadFile]) -> Vec<WrittenFile> {
    files
        .iter()
        .map(|f| WrittenFile {
            name: f.name.clone(),
            size: f.size,
            sha256: f.sha256.unwrap_or_default(),
        })
        .collect()
}

/// The exact size of the uncompressed data tar holding `files`.
pub(super) fn data_tar_size(files: &[PayloadFile]) -> u64 {
    files
        .iter()
        .map(|f| {
            tar_header(&f.name, f.size, f.mode, f.mtime).len() as u64
                + f.size
                + padding(f.size).len() as u64
        })
        .sum::<u64>()
        + 2 * BLOCK
}
