//! One payload file of the data tar as a stream of chunks: SHA-256 computed on the fly, the
//! last chunk held back until the digest matched the manifest.

use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio_tar::{Archive, Entry};

use super::compression::BoxRead;
use super::error::ArtifactError;
use super::io::{map_io, read_full};
use super::manifest::{check_digest, Digest};
use super::CHUNK;

/// A payload file as announced before its first byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileInfo {
    /// Name inside the data tar (no directory part).
    pub name: String,
    /// Size from the tar header; the stream delivers exactly this many bytes.
    pub size: u64,
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Expected SHA-256, from the manifest.
    #[serde(serialize_with = "hex_digest")]
    pub sha256: Digest,
}

fn hex_digest<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(d))
}

/// What one read produced.
pub enum Step {
    /// A chunk that is safe to hand on (more of the file follows it).
    Chunk(Bytes),
    /// The file ended and its digest matched; the held-back tail (if any) is released.
    Verified(Option<Bytes>),
}

/// Invariant: `held` is the most recent chunk read; it is released only when a later chunk
/// arrives or after verification, so a consumer never sees the complete file unless its
/// digest matched.
pub struct FileStream {
    entry: Entry<Archive<BoxRead>>,
    info: FileInfo,
    hasher: Sha256,
    held: Option<Bytes>,
    read: u64,
    done: bool,
}

impl FileStream {
    pub fn new(entry: Entry<Archive<BoxRead>>, info: FileInfo) -> Self {
        FileStream {
            entry,
            info,
            hasher: Sha256::new(),
            held: None,
            read: 0,
            done: false,
        }
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Reads until a chunk can be released or the file is verified. `member` names the data
    /// member for error messages. After an error the stream is unusable.
    pub async fn read(&mut self, member: &str) -> Result<Step, ArtifactError> {
        let what = format!("{member}/{}", self.info.name);
        loop {
            let mut buf = BytesMut::zeroed(CHUNK);
            let n = read_full(&mut self.entry, &mut buf)
                .await
                .map_err(|e| map_io(&what, e))?;
            if n == 0 {
                if self.read != self.info.size {
                    return Err(ArtifactError::Truncated(format!(
                        "{what} ended after {} of {} bytes",
                        self.read, self.info.size
                    )));
                }
                let actual: Digest = std::mem::take(&mut self.hasher).finalize().into();
                check_digest(
                    &format!("data/0000/{}", self.info.name),
                    &self.info.sha256,
                    &actual,
                )?;
                self.done = true;
                return Ok(Step::Verified(self.held.take()));
            }
            buf.truncate(n);
            self.read += n as u64;
            self.hasher.update(&buf);
            let chunk = buf.freeze();
            if let Some(prev) = self.held.replace(chunk) {
                return Ok(Step::Chunk(prev));
            }
        }
    }
}
