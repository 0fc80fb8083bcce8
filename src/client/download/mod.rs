//! The artifact download (PROTOCOL.md §3.4): one presigned URL, fetched with a plain GET
//! and **no `Authorization` header** (a request path of its own: this module never sees
//! a token), exposed as one uninterrupted byte stream ([`Download::into_reader`] for an
//! `AsyncRead`, [`Download::into_stream`] for a `Stream` of `Bytes`).
//!
//! Resume rules:
//! - The first answer must be 200 with a `Content-Length` (the Go client refuses chunked
//!   downloads too); that length is the artifact's size for the whole download.
//! - A drop (connection reset, early EOF, no data for `idle_timeout`, no answer within
//!   `response_timeout`, 5xx/408/429) resumes with `Range: bytes=<offset>-` from the exact
//!   number of bytes delivered. The answer must be 206 with a `Content-Range` whose total
//!   equals the original size and whose first byte is at or before the offset (bytes before
//!   it are discarded, as the Go client does).
//! - A 200 to a ranged request (a server ignoring `Range`) is accepted if its length is
//!   the original size: the first `offset` bytes are read and discarded. This costs
//!   bandwidth, not correctness; [`DownloadStats::refetched`] shows it.
//! - 403 (the link expired) calls the caller's [`RefreshUrl`] callback for a fresh URL (the
//!   caller re-polls `next`) and continues from the same offset, at most
//!   `max_url_refreshes` times.
//! - Every retry (of the first request too) counts against `max_resume_attempts`; the wait before one grows
//!   by `resume_backoff` while failures make no progress and starts over after progress.
//!   When the attempts run out the stream ends with [`DownloadError::Exhausted`] naming
//!   the last failure: it never ends silently short.
//! - Redirects (301, 302, 303, 307, 308: object storage answers links with them) are
//!   followed, at most [`MAX_REDIRECTS`] in a row, never from `https` to `http`, each a
//!   plain GET with the same `Range` and no `Authorization`. Every request, a resume's too,
//!   starts at the download's own URL (the one given, or the fresh one after a 403) and
//!   follows the redirects again: a redirect's target is often a short-lived signed URL of
//!   its own, the original link is the stable one.
//! - Other 4xx answers, a changed size or a bad `Content-Range` end the download at once.
//!
//! Errors and logs name the URL path only, never the query (it carries the signature).

mod fetch;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use futures_util::Stream;
use http::HeaderValue;
use tokio::io::{AsyncRead, ReadBuf};

use super::config::{DownloadConfig, TlsConfig};
use super::error::{ClientError, DownloadError};
use super::http::{build_client, HttpClient};
use super::proxy::ProxyEnv;
use fetch::{parse_url, Fetch};
pub use fetch::{DownloadStats, RefreshFuture, RefreshUrl, MAX_REDIRECTS};

/// Starts downloads. Holds its own connection pool; never sends `Authorization`.
#[derive(Clone)]
pub struct Downloader {
    http: HttpClient,
    config: DownloadConfig,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// A downloader with its own TLS setup and the environment's proxies (for use without
    /// a [`Client`](super::Client)). Every timeout must be non-zero.
    pub fn new(
        tls: &TlsConfig,
        connect_timeout: Duration,
        config: DownloadConfig,
    ) -> Result<Self, ClientError> {
        if connect_timeout.is_zero()
            || config.idle_timeout.is_zero()
            || config.response_timeout.is_zero()
        {
            return Err(ClientError::Config(
                "download timeouts must be greater than zero".into(),
            ));
        }
        let tls = super::tls::client_config(tls)?;
        let proxies = ProxyEnv::from_env().map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Self::with_tls(
            tls,
            Arc::new(proxies),
            connect_timeout,
            config,
            &format!("mender-bridge/{}", env!("CARGO_PKG_VERSION")),
        ))
    }

    pub(crate) fn with_tls(
        tls: Arc<rustls::ClientConfig>,
        proxies: Arc<ProxyEnv>,
        connect_timeout: Duration,
        config: DownloadConfig,
        user_agent: &str,
    ) -> Self {
        Downloader {
            http: build_client(tls, connect_timeout, proxies),
            config,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("mender-bridge")),
        }
    }

    /// Sends the first request and waits for its answer (retrying by the resume rules), so
    /// a missing artifact or an unusable link fails here. `refresh` is called after a 403.
    pub async fn start(
        &self,
        url: &str,
        refresh: Option<RefreshUrl>,
    ) -> Result<Download, DownloadError> {
        let url = parse_url(url)?;
        let stats = Arc::new(DownloadStats::default());
        let mut fetch = Fetch::new(
            self.http.clone(),
            self.config.clone(),
            self.user_agent.clone(),
            url,
            refresh,
            stats.clone(),
        );
        fetch.open().await?;
        let total = fetch.total().unwrap_or(0);
        tracing::info!(
            path = fetch.url_path(),
            size = total,
            "artifact download started"
        );
        let stream = futures_util::stream::unfold(fetch, |mut f| async move {
            f.next_chunk().await.map(|item| (item, f))
        });
        Ok(Download {
            stream: Box::pin(stream),
            total,
            stats,
        })
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, DownloadError>> + Send>>;

/// A started download: one uninterrupted byte stream of exactly [`total_len`](Self::total_len)
/// bytes, or an error.
pub struct Download {
    stream: ByteStream,
    total: u64,
    stats: Arc<DownloadStats>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("total", &self.total)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The artifact's size (the first answer's `Content-Length`).
    pub fn total_len(&self) -> u64 {
        self.total
    }

    /// The counters, shared with the running download.
    pub fn stats(&self) -> Arc<DownloadStats> {
        self.stats.clone()
    }

    /// The bytes as a stream of chunks; ends after exactly `total_len` bytes or with one
    /// error.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, DownloadError>> + Send + Unpin {
        self.stream
    }

    /// The bytes as an `AsyncRead` (e.g. for `ArtifactReader::open`). A failure is an
    /// `io::Error` whose inner error is the [`DownloadError`]; reads after it keep failing.
    pub fn into_reader(self) -> DownloadReader {
        DownloadReader {
            stream: self.stream,
            chunk: Bytes::new(),
            failed: None,
            done: false,
        }
    }
}

/// `AsyncRead` over a [`Download`].
pub struct DownloadReader {
    stream: ByteStream,
    chunk: Bytes,
    failed: Option<String>,
    done: bool,
}

impl AsyncRead for DownloadReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                let n = buf.remaining().min(this.chunk.len());
                buf.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(msg) = &this.failed {
                return Poll::Ready(Err(io::Error::other(msg.clone())));
            }
            if this.done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some(Ok(b)) => this.chunk = b,
                Some(Err(e)) => {
                    this.failed = Some(e.to_string());
                    return Poll::Ready(Err(io::Error::other(e)));
                }
                None => this.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_checks_never_echo_the_url() {
        let e = parse_url("https://s3.example/bucket/a?X-Amz-Signature=secret value").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_url("/relative/path").is_err());
        assert!(parse_url("ftp://h/x").is_err());
        assert!(parse_url("https://h/x?sig=1").is_ok());
    }

    #[tokio::test]
    async fn reader_repeats_errors() {
        let items: Vec<Result<Bytes, DownloadError>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(DownloadError::Overrun { path: "/p".into() }),
        ];
        let d = Download {
            stream: Box::pin(futures_util::stream::iter(items)),
            total: 10,
            stats: Arc::default(),
        };
        let mut r = d.into_reader();
        let mut buf = Vec::new();
        let e = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf)
            .await
            .unwrap_err();
        assert_eq!(buf, b"abc");
        assert!(e
            .get_ref()
            .unwrap()
            .downcast_ref::<DownloadError>()
            .is_some());
        let mut one = [0u8; 1];
        assert!(tokio::io::AsyncReadExt::read(&mut r, &mut one)
            .await
            .is_err());
    }
}
