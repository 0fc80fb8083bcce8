//! Small stream adapters and helpers of the reader, each with one job: read a member into
//! memory under a bound, cap how many bytes a decoder may produce, turn I/O errors into
//! [`ArtifactError`]s that name what was being read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::error::ArtifactError;

/// Marker error carried inside an `io::Error` when a [`Capped`] stream exceeds its limit,
/// so the limit survives the tar and decoder layers and comes out as
/// [`ArtifactError::TooLarge`].
#[derive(Debug, thiserror::Error)]
#[error("{what} is larger than the limit of {limit} bytes")]
pub struct LimitExceeded {
    pub what: String,
    pub limit: u64,
}

/// Reads all of `r`, failing once more than `limit` bytes arrive. Memory use is bounded by
/// `limit` whatever the stream claims or contains.
pub async fn read_bounded<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, ArtifactError> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| map_io(what, e))?;
    if buf.len() as u64 > limit {
        return Err(ArtifactError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(buf)
}

/// Looks at every byte a stream yields, in order, and may refuse them.
pub trait Observer {
    fn observe(&mut self, data: &[u8]) -> io::Result<()>;
}

/// An `AsyncRead` that shows every byte of its inner stream to an [`Observer`]. Bytes the
/// observer refuses are not handed on; the read fails with the observer's error.
pub struct Observed<R, O> {
    inner: R,
    observer: O,
}

impl<R, O> Observed<R, O> {
    pub fn new(inner: R, observer: O) -> Self {
        Observed { inner, observer }
    }
}

impl<R: AsyncRead + Unpin, O: Observer + Unpin> AsyncRead for Observed<R, O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            if let Err(e) = this.observer.observe(&buf.filled()[before..]) {
                buf.set_filled(before);
                return Poll::Ready(Err(e));
            }
        }
        res
    }
}

/// Fails with [`LimitExceeded`] once more than `limit` bytes went past: the guard against
/// decompression bombs.
pub struct ByteCap {
    remaining: u64,
    limit: u64,
    what: String,
}

impl Observer for ByteCap {
    fn observe(&mut self, data: &[u8]) -> io::Result<()> {
        let got = data.len() as u64;
        if got > self.remaining {
            return Err(io::Error::other(LimitExceeded {
                what: self.what.clone(),
                limit: self.limit,
            }));
        }
        self.remaining -= got;
        Ok(())
    }
}

/// A stream that may yield at most `limit` bytes; `what` names it in the error.
pub type Capped<R> = Observed<R, ByteCap>;

pub fn capped<R>(inner: R, limit: u64, what: impl Into<String>) -> Capped<R> {
    Observed::new(
        inner,
        ByteCap {
            remaining: limit,
            limit,
            what: what.into(),
        },
    )
}

/// Turns an I/O error met while reading `context` into an [`ArtifactError`], recognising the
/// limit marker, truncation and decoder failures anywhere in the error's source chain.
pub fn map_io(context: &str, e: io::Error) -> ArtifactError {
    // An io::Error's source() skips its own payload, so look into each io::Error too.
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        let payload = err
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|p| p as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), payload].into_iter().flatten() {
            if let Some(l) = candidate.downcast_ref::<LimitExceeded>() {
                return ArtifactError::TooLarge {
                    what: l.what.clone(),
                    limit: l.limit,
                };
            }
        }
        cur = payload.or_else(|| err.source());
    }
    let text = e.to_string();
    // liblzma's LZMA_MEMLIMIT_ERROR and zstd's frameParameter_windowTooLarge, as the
    // decoders report them.
    if text.contains("memory limit reached") || text.contains("requires too much memory") {
        return ArtifactError::Decompress {
            member: context.to_string(),
            reason: "the stream needs more decoder memory than the configured limit \
                     (decoder_memory; mender-artifact writes xz with a 64 MiB dictionary)"
                .to_string(),
        };
    }
    // tokio-tar reports a stream that ends inside an entry or its padding as an `Other`
    // error with this text.
    if e.kind() == io::ErrorKind::UnexpectedEof || text.contains("unexpected EOF") {
        return ArtifactError::Truncated(format!("the stream ended inside {context}"));
    }
    ArtifactError::io(context, e)
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
pub async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = r.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_stream_fails_past_its_limit() {
        let data = vec![7u8; 1000];
        let mut ok = capped(&data[..], 1000, "x");
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), 1000);

        let mut over = capped(&data[..], 999, "the header");
        let err = over.read_to_end(&mut Vec::new()).await.unwrap_err();
        match map_io("header", err) {
            ArtifactError::TooLarge { what, limit } => {
                assert_eq!((what.as_str(), limit), ("the header", 999))
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn read_bounded_refuses_one_byte_more() {
        let data = [1u8; 11];
        assert_eq!(
            read_bounded(&mut &data[..], 11, "m").await.unwrap().len(),
            11
        );
        assert!(matches!(
            read_bounded(&mut &data[..], 10, "m").await,
            Err(ArtifactError::TooLarge { .. })
        ));
    }
}
