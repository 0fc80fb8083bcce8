//! The output: the outer tar as it goes out, counting every byte written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::tar::{padding, tar_header};
use super::{WriteError, WrittenMember};

/// The output, counting what was written to it.
pub(super) struct Counting<'a, W> {
    inner: &'a mut W,
    /// Bytes written so far.
    pub(super) written: u64,
}

impl<'a, W: AsyncWrite + Unpin> Counting<'a, W> {
    pub(super) fn new(inner: &'a mut W) -> Self {
        Counting { inner, written: 0 }
    }

    /// Flushes the output (it is not shut down).
    pub(super) async fn flush_output(&mut self) -> Result<(), WriteError> {
        self.inner.flush().await.map_err(WriteError::Write)
    }

    pub(super) async fn put(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.inner
            .write_all(data)
            .await
            .map_err(WriteError::Write)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// A whole member with mode 0600.
    pub(super) async fn member(
        &mut self,
        name: &str,
        data: &[u8],
        mtime: u64,
    ) -> Result<WrittenMember, WriteError> {
        self.put(&tar_header(name, data.len() as u64, 0o600, mtime))
            .await?;
        let offset = self.written;
        self.put(data).await?;
        self.put(&padding(data.len() as u64)).await?;
        Ok(WrittenMember {
            name: name.to_string(),
            offset,
            size: data.len() as u64,
        })
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.written += n as u64;
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}
