//! The compressor in front of a sink: none, gzip, xz or zstd at a [`Level`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::write::{GzipEncoder, XzEncoder, ZstdEncoder};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Level, WriteError};
use crate::Compression;

impl Level {
    fn codec(self) -> async_compression::Level {
        match self {
            Level::Fastest => async_compression::Level::Fastest,
            Level::Default => async_compression::Level::Default,
            Level::Best => async_compression::Level::Best,
        }
    }
}

/// `data` compressed whole; errors name `member`.
pub(super) async fn compress(
    data: &[u8],
    compression: Compression,
    level: Level,
    member: &str,
) -> Result<Vec<u8>, WriteError> {
    let err = |source| WriteError::Compress {
        member: member.to_string(),
        source,
    };
    let mut enc = Encoder::new(Vec::new(), compression, level);
    enc.write_all(data).await.map_err(err)?;
    enc.finish().await.map_err(err)
}

/// The compressor in front of a sink.
pub(super) enum Encoder<W: AsyncWrite + Unpin> {
    Plain(W),
    Gzip(GzipEncoder<W>),
    Xz(XzEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    pub(super) fn new(sink: W, compression: Compression, level: Level) -> Self {
        let q = level.codec();
        match compression {
            Compression::None => Encoder::Plain(sink),
            Compression::Gzip => Encoder::Gzip(GzipEncoder::with_quality(sink, q)),
            Compression::Xz => Encoder::Xz(XzEncoder::with_quality(sink, q)),
            Compression::Zstd => Encoder::Zstd(ZstdEncoder::with_quality(sink, q)),
        }
    }

    /// Ends the compressed stream (writing its trailer), flushes, returns the sink.
    pub(super) async fn finish(mut self) -> io::Result<W> {
        self.shutdown().await?;
        Ok(match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(e) => e.into_inner(),
            Encoder::Xz(e) => e.into_inner(),
            Encoder::Zstd(e) => e.into_inner(),
        })
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Encoder<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_write(cx, buf),
            Encoder::Gzip(e) => Pin::new(e).poll_write(cx, buf),
            Encoder::Xz(e) => Pin::new(e).poll_write(cx, buf),
            Encoder::Zstd(e) => Pin::new(e).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_flush(cx),
            Encoder::Gzip(e) => Pin::new(e).poll_flush(cx),
            Encoder::Xz(e) => Pin::new(e).poll_flush(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Plain(w) => Pin::new(w).poll_shutdown(cx),
            Encoder::Gzip(e) => Pin::new(e).poll_shutdown(cx),
            Encoder::Xz(e) => Pin::new(e).poll_shutdown(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_shutdown(cx),
        }
    }
}
