//! One download's resume state machine ([`Fetch`]): the requests, with `Range` from the
//! delivered offset, the redirects, the fresh URL after a 403, the backoff between
//! attempts, and the checks of every answer against the first one (the rules in the parent
//! module's doc). Also the counters ([`DownloadStats`]) it keeps while it runs.
//!
//! Invariants: `offset` bytes were delivered and no byte is delivered twice; the size never
//! changes once known; errors and logs name the URL path only, never the query.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;

use crate::client::config::DownloadConfig;
use crate::client::error::{chain, BoxError, DownloadError};
use crate::client::http::HttpClient;
use crate::client::range::{range_from, ContentRange};
use crate::client::retry_after::retry_after;

/// Redirects followed in a row (object storage answers a link with one or two); the next
/// one is [`DownloadError::TooManyRedirects`].
pub const MAX_REDIRECTS: u32 = 5;

/// The future a [`RefreshUrl`] callback returns: a fresh presigned URL for the same
/// artifact, or why none could be had.
pub type RefreshFuture = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

/// Called after a 403 (expired link) to get a fresh URL; the caller typically polls
/// `next` again with identical data ([`Client::check_update`](crate::client::Client::check_update))
/// and returns `artifact.source.uri`.
pub type RefreshUrl = Box<dyn FnMut() -> RefreshFuture + Send>;

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

pub(super) fn parse_url(url: &str) -> Result<Uri, DownloadError> {
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

/// The outcome of one request attempt.
enum Attempt {
    /// Worth a resume: the reason, for logs and the final error, and the server's
    /// `Retry-After` (429/503, clamped), which replaces the resume backoff's wait.
    Retry(String, Option<Duration>),
    Fatal(DownloadError),
}

/// The download's state. Invariants: `offset` bytes were delivered; the current body's
/// next byte is at file position `pos`; it ends at `seg_end` (exclusive); once `total` is
/// known it never changes.
pub(super) struct Fetch {
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
    /// The server's `Retry-After` of that failure: the wait instead of the backoff.
    pending_retry_after: Option<Duration>,
    stats: Arc<DownloadStats>,
    finished: bool,
}

impl Fetch {
    /// A download of `url` that has not sent its first request yet ([`Fetch::open`]).
    pub(super) fn new(
        http: HttpClient,
        config: DownloadConfig,
        user_agent: HeaderValue,
        url: Uri,
        refresh: Option<RefreshUrl>,
        stats: Arc<DownloadStats>,
    ) -> Self {
        Fetch {
            http,
            config,
            user_agent,
            url,
            refresh,
            total: None,
            offset: 0,
            body: None,
            pos: 0,
            seg_end: 0,
            failures: 0,
            pending_failure: None,
            pending_retry_after: None,
            stats,
            finished: false,
        }
    }

    /// The artifact's size, once the first answer gave it.
    pub(super) fn total(&self) -> Option<u64> {
        self.total
    }

    /// The current URL's path (never its query: it carries the signature).
    pub(super) fn url_path(&self) -> &str {
        self.url.path()
    }

    fn path(&self) -> String {
        self.url.path().to_string()
    }

    /// Records a failed attempt or a dropped body; the next `open` waits (`retry_after`,
    /// or the backoff) and resumes.
    fn fail(&mut self, reason: String, retry_after: Option<Duration>) {
        tracing::warn!(
            path = self.url.path(),
            offset = self.offset,
            "artifact download interrupted: {reason}"
        );
        self.body = None;
        self.failures += 1;
        self.pending_failure = Some(reason);
        self.pending_retry_after = retry_after;
    }

    /// Gets a body positioned at or before `offset`, retrying by the resume rules.
    pub(super) async fn open(&mut self) -> Result<(), DownloadError> {
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
                let backoff = b.delay(self.failures.saturating_sub(1)).unwrap_or(b.max);
                let wait = self.pending_retry_after.take().unwrap_or(backoff);
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
                Err(Attempt::Retry(reason, retry_after)) => self.fail(reason, retry_after),
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
                    return Err(Attempt::Retry(
                        format!("no answer within {}s", timeout.as_secs_f32()),
                        None,
                    ))
                }
                Ok(Err(e)) => return Err(Attempt::Retry(chain(&e), None)),
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
                    let retry_after = retry_after(s, resp.headers());
                    let reason = match retry_after {
                        Some(d) => format!(
                            "HTTP {} (server asks to retry after {}s)",
                            s.as_u16(),
                            d.as_secs()
                        ),
                        None => format!("HTTP {}", s.as_u16()),
                    };
                    return Err(Attempt::Retry(reason, retry_after));
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
    pub(super) async fn next_chunk(&mut self) -> Option<Result<Bytes, DownloadError>> {
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
                Err(_) => self.fail(format!("no data for {}s", idle.as_secs_f32()), None),
                Ok(None) if self.pos == self.seg_end => {
                    // A 206 that covered less than the rest: ask for the next range.
                    self.body = None;
                }
                Ok(None) => self.fail(
                    format!("connection closed at byte {} of {total}", self.offset),
                    None,
                ),
                Ok(Some(Err(e))) => self.fail(chain(&e), None),
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
