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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use futures_util::Stream;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, ReadBuf};

use super::config::{DownloadConfig, TlsConfig};
use super::error::{chain, BoxError, ClientError};
use super::http::{build_client, HttpClient};
use super::range::{range_from, ContentRange};

/// Redirects followed in a row (object storage answers a link with one or two); the next
/// one is [`DownloadError::TooManyRedirects`].
pub const MAX_REDIRECTS: u32 = 5;

/// The future a [`RefreshUrl`] callback returns: a fresh presigned URL for the same
/// artifact, or why none could be had.
pub type RefreshFuture = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

/// Called after a 403 (expired link) to get a fresh URL; the caller typically polls
/// `next` again with identical data ([`Client::check_update`](super::Client::check_update))
/// and returns `artifact.source.uri`.
pub type RefreshUrl = Box<dyn FnMut() -> RefreshFuture + Send>;

/// Why a download failed for good.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The URL is not an absolute `http(s)://` URL (the URL itself is not repeated).
    #[error("artifact download: invalid URL: {detail}")]
    InvalidUrl { detail: String },
    /// An answer that no retry can fix (404, 410, 416, ...).
    #[error("artifact download {path}: HTTP {status}")]
    Status { path: String, status: u16 },
    /// 403 and no fresh URL to try (no callback, or `max_url_refreshes` used up).
    #[error(
        "artifact download {path}: link refused (403; expired?) after {refreshes} fresh URL(s)"
    )]
    Forbidden { path: String, refreshes: u32 },
    /// The refresh callback failed.
    #[error("artifact download {path}: getting a fresh URL after 403: {source}")]
    Refresh {
        path: String,
        #[source]
        source: BoxError,
    },
    /// The first answer had no `Content-Length`.
    #[error("artifact download {path}: the server sent no Content-Length")]
    NoLength { path: String },
    /// More than [`MAX_REDIRECTS`] redirects in a row.
    #[error("artifact download {path}: more than {limit} redirects")]
    TooManyRedirects { path: String, limit: u32 },
    /// A redirect from `https` to plain `http` (refused: the bytes would travel in clear
    /// and could be changed on the way before any signature check).
    #[error("artifact download {path}: refused a redirect from https to http ({to})")]
    InsecureRedirect {
        path: String,
        /// Host and path of the refused target (never its query).
        to: String,
    },
    /// A redirect without a `Location` the download can follow.
    #[error("artifact download {path}: HTTP {status} redirect: {detail}")]
    BadRedirect {
        path: String,
        status: u16,
        detail: String,
    },
    /// A later answer describes an artifact of another size.
    #[error("artifact download {path}: size changed from {expected} to {got} bytes")]
    LengthChanged {
        path: String,
        expected: u64,
        got: u64,
    },
    /// A 206 whose `Content-Range` is missing, malformed, or does not cover the offset.
    #[error("artifact download {path}: bad Content-Range: {detail}")]
    BadContentRange { path: String, detail: String },
    /// The server sent more bytes than its answer declared.
    #[error("artifact download {path}: more data than declared")]
    Overrun { path: String },
    /// Every resume attempt was used; `last` is the last failure.
    #[error(
        "artifact download {path}: gave up at byte {offset} of {total} after {attempts} \
         resume attempt(s); last failure: {last}"
    )]
    Exhausted {
        path: String,
        offset: u64,
        total: u64,
        attempts: u32,
        last: String,
    },
}

impl DownloadError {
    /// Only running out of resume attempts is worth a later retry of the whole download.
    pub fn is_transient(&self) -> bool {
        matches!(self, DownloadError::Exhausted { .. })
    }
}

/// Counters of one download, readable while it runs.
#[derive(Debug, Default)]
pub struct DownloadStats {
    fetched: AtomicU64,
    delivered: AtomicU64,
    requests: AtomicU32,
    resumes: AtomicU32,
    refreshes: AtomicU32,
}

impl DownloadStats {
    /// Body bytes received from the network, including any discarded on resume.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }
    /// Bytes handed to the consumer.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    /// Bytes fetched more than once (`fetched - delivered`).
    pub fn refetched(&self) -> u64 {
        self.fetched().saturating_sub(self.delivered())
    }
    /// HTTP requests sent (first, resumes, and retries after a fresh URL).
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Resume attempts made.
    pub fn resumes(&self) -> u32 {
        self.resumes.load(Ordering::Relaxed)
    }
    /// Fresh URLs obtained after 403.
    pub fn url_refreshes(&self) -> u32 {
        self.refreshes.load(Ordering::Relaxed)
    }
}

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
    /// A downloader with its own TLS setup (for use without a [`Client`](super::Client)).
    /// Every timeout must be non-zero.
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
        Ok(Self::with_tls(
            tls,
            connect_timeout,
            config,
            &format!("mender-bridge/{}", env!("CARGO_PKG_VERSION")),
        ))
    }

    pub(crate) fn with_tls(
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        config: DownloadConfig,
        user_agent: &str,
    ) -> Self {
        Downloader {
            http: build_client(tls, connect_timeout),
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
        let mut fetch = Fetch {
            http: self.http.clone(),
            config: self.config.clone(),
            user_agent: self.user_agent.clone(),
            url,
            refresh,
            total: None,
            offset: 0,
            body: None,
            pos: 0,
            seg_end: 0,
            failures: 0,
            pending_failure: None,
            stats: stats.clone(),
            finished: false,
        };
        fetch.open().await?;
        let total = fetch.total.unwrap_or(0);
        tracing::info!(
            path = fetch.url.path(),
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

fn parse_url(url: &str) -> Result<Uri, DownloadError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| DownloadError::InvalidUrl {
            detail: e.to_string(),
        })?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err(DownloadError::InvalidUrl {
            detail: "not an absolute http(s) URL with a host".into(),
        }),
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

/// The outcome of one request attempt.
enum Attempt {
    /// Worth a resume (after backoff): the reason, for logs and the final error.
    Retry(String),
    Fatal(DownloadError),
}

/// The download's state. Invariants: `offset` bytes were delivered; the current body's
/// next byte is at file position `pos`; it ends at `seg_end` (exclusive); once `total` is
/// known it never changes.
struct Fetch {
    http: HttpClient,
    config: DownloadConfig,
    user_agent: HeaderValue,
    url: Uri,
    refresh: Option<RefreshUrl>,
    total: Option<u64>,
    offset: u64,
    body: Option<Incoming>,
    pos: u64,
    seg_end: u64,
    /// Consecutive failures without progress: the backoff index.
    failures: u32,
    /// The failure the next `open` must back off from, if any.
    pending_failure: Option<String>,
    stats: Arc<DownloadStats>,
    finished: bool,
}

impl Fetch {
    fn path(&self) -> String {
        self.url.path().to_string()
    }

    /// Records a failed attempt or a dropped body; the next `open` backs off and resumes.
    fn fail(&mut self, reason: String) {
        tracing::warn!(
            path = self.url.path(),
            offset = self.offset,
            "artifact download interrupted: {reason}"
        );
        self.body = None;
        self.failures += 1;
        self.pending_failure = Some(reason);
    }

    /// Gets a body positioned at or before `offset`, retrying by the resume rules.
    async fn open(&mut self) -> Result<(), DownloadError> {
        loop {
            if let Some(last) = self.pending_failure.take() {
                let attempts = self.stats.resumes();
                if attempts >= self.config.max_resume_attempts {
                    return Err(DownloadError::Exhausted {
                        path: self.path(),
                        offset: self.offset,
                        total: self.total.unwrap_or(0),
                        attempts,
                        last,
                    });
                }
                let b = &self.config.resume_backoff;
                let wait = b.delay(self.failures.saturating_sub(1)).unwrap_or(b.max);
                tracing::info!(
                    path = self.url.path(),
                    offset = self.offset,
                    attempt = attempts + 1,
                    "resuming the download in {}s",
                    wait.as_secs_f32()
                );
                tokio::time::sleep(wait).await;
                self.stats.resumes.fetch_add(1, Ordering::Relaxed);
            }
            match self.request().await {
                Ok(body) => {
                    self.body = Some(body);
                    return Ok(());
                }
                Err(Attempt::Retry(reason)) => self.fail(reason),
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
    }

    /// One GET (plus fresh-URL retries after 403, and redirects), checked against the
    /// resume rules. Each call starts at `self.url`, so a resume follows the redirects again.
    async fn request(&mut self) -> Result<Incoming, Attempt> {
        let mut target = self.url.clone();
        let mut redirects = 0;
        loop {
            let mut b = Request::get(target.clone()).header(header::USER_AGENT, &self.user_agent);
            if self.offset > 0 {
                b = b.header(header::RANGE, range_from(self.offset));
            }
            let req = b.body(Full::new(Bytes::new())).map_err(|e| {
                Attempt::Fatal(DownloadError::InvalidUrl {
                    detail: e.to_string(),
                })
            })?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let timeout = self.config.response_timeout;
            let resp = match tokio::time::timeout(timeout, self.http.request(req)).await {
                Err(_) => {
                    return Err(Attempt::Retry(format!(
                        "no answer within {}s",
                        timeout.as_secs_f32()
                    )))
                }
                Ok(Err(e)) => return Err(Attempt::Retry(chain(&e))),
                Ok(Ok(r)) => r,
            };
            let status = resp.status();
            match status {
                StatusCode::FORBIDDEN => {
                    drop(resp);
                    self.refresh_url().await.map_err(Attempt::Fatal)?;
                    target = self.url.clone();
                    redirects = 0;
                    continue;
                }
                StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT => {
                    redirects += 1;
                    target = self
                        .redirect(&target, status, resp.headers(), redirects)
                        .map_err(Attempt::Fatal)?;
                    continue;
                }
                StatusCode::OK => {
                    let len = content_length(resp.headers()).ok_or_else(|| {
                        Attempt::Fatal(DownloadError::NoLength { path: self.path() })
                    })?;
                    self.check_total(len).map_err(Attempt::Fatal)?;
                    if self.offset > 0 {
                        tracing::warn!(
                            path = self.url.path(),
                            "server ignored Range (200): discarding the first {} bytes",
                            self.offset
                        );
                    }
                    self.pos = 0;
                    self.seg_end = len;
                }
                StatusCode::PARTIAL_CONTENT => {
                    let path = self.path();
                    let bad = |detail: String| {
                        Attempt::Fatal(DownloadError::BadContentRange {
                            path: path.clone(),
                            detail,
                        })
                    };
                    let value = resp
                        .headers()
                        .get(header::CONTENT_RANGE)
                        .ok_or_else(|| bad("missing".into()))?
                        .to_str()
                        .map_err(|_| bad("not text".into()))?;
                    let cr = ContentRange::parse(value).map_err(bad)?;
                    self.check_total(cr.total).map_err(Attempt::Fatal)?;
                    if cr.first > self.offset || cr.last < self.offset {
                        return Err(bad(format!(
                            "{value:?} does not cover the resume offset {}",
                            self.offset
                        )));
                    }
                    self.pos = cr.first;
                    self.seg_end = cr.last + 1;
                }
                s if s.is_server_error()
                    || s == StatusCode::REQUEST_TIMEOUT
                    || s == StatusCode::TOO_MANY_REQUESTS =>
                {
                    return Err(Attempt::Retry(format!("HTTP {}", s.as_u16())));
                }
                s => {
                    return Err(Attempt::Fatal(DownloadError::Status {
                        path: self.path(),
                        status: s.as_u16(),
                    }))
                }
            }
            return Ok(resp.into_body());
        }
    }

    /// The target of the `redirects`-th redirect in a row from `from`: its `Location`
    /// (absolute, or relative to `from`), an `http(s)` URL, not from https to http, and
    /// within [`MAX_REDIRECTS`]. The request to it is built like every other one: a GET
    /// with the same `Range`, and no `Authorization` (this module has none to send).
    fn redirect(
        &self,
        from: &Uri,
        status: StatusCode,
        headers: &http::HeaderMap,
        redirects: u32,
    ) -> Result<Uri, DownloadError> {
        if redirects > MAX_REDIRECTS {
            return Err(DownloadError::TooManyRedirects {
                path: self.path(),
                limit: MAX_REDIRECTS,
            });
        }
        let bad = |detail: &str| DownloadError::BadRedirect {
            path: self.path(),
            status: status.as_u16(),
            detail: detail.to_string(),
        };
        let location = headers
            .get(header::LOCATION)
            .ok_or_else(|| bad("no Location"))?
            .to_str()
            .map_err(|_| bad("Location is not text"))?;
        let base = url::Url::parse(&from.to_string()).map_err(|_| bad("bad request URL"))?;
        let next = base
            .join(location)
            .map_err(|_| bad("Location is not a URL"))?;
        let next = parse_url(next.as_str())
            .map_err(|_| bad("Location is not an absolute http(s) URL with a host"))?;
        if from.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
            return Err(DownloadError::InsecureRedirect {
                path: self.path(),
                to: format!("{}{}", next.host().unwrap_or(""), next.path()),
            });
        }
        tracing::info!(
            path = self.url.path(),
            status = status.as_u16(),
            host = next.host().unwrap_or(""),
            to = next.path(),
            "artifact download redirected"
        );
        Ok(next)
    }

    /// After a 403: a fresh URL from the callback, within `max_url_refreshes`.
    async fn refresh_url(&mut self) -> Result<(), DownloadError> {
        let used = self.stats.url_refreshes();
        let path = self.path();
        let refresh = match self.refresh.as_mut() {
            Some(r) if used < self.config.max_url_refreshes => r,
            _ => {
                return Err(DownloadError::Forbidden {
                    path,
                    refreshes: used,
                })
            }
        };
        tracing::info!(path = %path, "download link refused (403); asking for a fresh one");
        let url = refresh().await.map_err(|source| DownloadError::Refresh {
            path: path.clone(),
            source,
        })?;
        self.url = parse_url(&url)?;
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The first answer fixes the size; later ones must agree.
    fn check_total(&mut self, len: u64) -> Result<(), DownloadError> {
        match self.total {
            None => {
                self.total = Some(len);
                Ok(())
            }
            Some(t) if t == len => Ok(()),
            Some(t) => Err(DownloadError::LengthChanged {
                path: self.path(),
                expected: t,
                got: len,
            }),
        }
    }

    /// The next chunk for the consumer, resuming as needed; `None` after exactly `total`
    /// bytes. After an error, `None`.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, DownloadError>> {
        loop {
            if self.finished {
                return None;
            }
            let total = self.total.unwrap_or(0);
            if self.total.is_some() && self.offset >= total {
                self.finished = true;
                self.body = None;
                tracing::info!(
                    path = self.url.path(),
                    size = total,
                    fetched = self.stats.fetched(),
                    resumes = self.stats.resumes(),
                    "artifact download complete"
                );
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if let Err(e) = self.open().await {
                    self.finished = true;
                    return Some(Err(e));
                }
                continue;
            };
            let idle = self.config.idle_timeout;
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => self.fail(format!("no data for {}s", idle.as_secs_f32())),
                Ok(None) if self.pos == self.seg_end => {
                    // A 206 that covered less than the rest: ask for the next range.
                    self.body = None;
                }
                Ok(None) => self.fail(format!(
                    "connection closed at byte {} of {total}",
                    self.offset
                )),
                Ok(Some(Err(e))) => self.fail(chain(&e)),
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    let len = data.len() as u64;
                    self.stats.fetched.fetch_add(len, Ordering::Relaxed);
                    let start = self.pos;
                    self.pos += len;
                    if self.pos > self.seg_end {
                        self.finished = true;
                        return Some(Err(DownloadError::Overrun { path: self.path() }));
                    }
                    if self.pos <= self.offset {
                        continue; // before the offset: already delivered
                    }
                    let skip = self.offset.saturating_sub(start) as usize;
                    let out = data.slice(skip..);
                    self.offset += out.len() as u64;
                    self.failures = 0;
                    self.stats
                        .delivered
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    return Some(Ok(out));
                }
            }
        }
    }
}

fn content_length(h: &http::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
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
