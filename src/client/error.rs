//! The client's errors: `ClientError`, one enum for every API call, and `DownloadError`, why
//! an artifact download failed for good (a `ClientError` carries it as `Download`). Each
//! variant names the call and the URL path (never a query string: presigned URLs carry their
//! signature there), the HTTP status, and the server's `error` text and request id when it
//! sent them. Secrets (JWT, tenant token, keys) never appear in an error.

use std::fmt;
use std::time::Duration;

use crate::keys::KeyError;

/// A boxed error (a URL refresh callback's error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its sources, joined with `": "` (hyper's top-level errors say little).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `" (Retry-After Ns)"` for an error's text, or nothing.
fn retry_note(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| {
        format!(" (server asks to retry after {}s)", d.as_secs())
    })
}

/// The API call an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Auth,
    Inventory,
    CheckUpdate,
    Status,
    Log,
    Download,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::Auth => "authentication",
            Call::Inventory => "inventory update",
            Call::CheckUpdate => "update check",
            Call::Status => "status report",
            Call::Log => "log upload",
            Call::Download => "artifact download",
        })
    }
}

/// What the server said about an error: the `error` text of its JSON body and the request
/// id (`request_id`, or the `X-MEN-RequestID` header). Both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerMessage {
    pub error: Option<String>,
    pub request_id: Option<String>,
}

impl fmt::Display for ServerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.error {
            write!(f, ": {e:?}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configuration breaks an invariant of [`ClientConfig`](super::ClientConfig).
    #[error("client configuration: {0}")]
    Config(String),
    /// Loading the TLS trust store or the client certificate failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The device key could not sign or export its public key.
    #[error("device key: {0}")]
    Key(#[from] KeyError),
    /// The request never got an HTTP answer (DNS, connect, TLS handshake, reset).
    /// `detail` is the whole error chain as text.
    #[error("{call} {path}: {detail}")]
    Transport {
        call: Call,
        path: String,
        detail: String,
    },
    /// No complete answer within the timeout.
    #[error("{call} {path}: no answer within {}s", timeout.as_secs_f32())]
    Timeout {
        call: Call,
        path: String,
        timeout: Duration,
    },
    /// 401 on the authentication request: the device is pending (not yet accepted),
    /// rejected, or its signature or tenant token was refused. Back off and retry
    /// ([`Client::authenticate_with_backoff`](super::Client::authenticate_with_backoff));
    /// never regenerate the key for it.
    #[error("authentication at {server}: not accepted (401; device pending or rejected){message}")]
    AuthRejected {
        server: String,
        message: ServerMessage,
    },
    /// 409 on a status report: the deployment was aborted on the server (or the device
    /// decommissioned). Stop, clean up, never retry.
    #[error(
        "{call} for deployment {deployment_id}: deployment aborted on the server (409){message}"
    )]
    Aborted {
        call: Call,
        deployment_id: String,
        message: ServerMessage,
    },
    /// Any other unexpected HTTP status. `retry_after` is the server's `Retry-After` of a
    /// 429 or 503, clamped ([`retry_after`](super::retry_after)): the wait before the next
    /// try of this call, instead of the caller's backoff.
    #[error("{call} {path}: HTTP {status}{message}{}", retry_note(*retry_after))]
    Status {
        call: Call,
        path: String,
        status: u16,
        message: ServerMessage,
        retry_after: Option<Duration>,
    },
    /// A response body over its cap.
    #[error("{call} {path}: response body larger than {limit} bytes")]
    TooLarge {
        call: Call,
        path: String,
        limit: usize,
    },
    /// A 2xx answer whose body is not what the API promises.
    #[error("{call} {path}: invalid response: {detail}")]
    InvalidResponse {
        call: Call,
        path: String,
        detail: String,
    },
    /// The caller's data breaks a rule of the server (it would answer 400 or 413).
    #[error("{call}: invalid request: {detail}")]
    InvalidRequest { call: Call, detail: String },
    /// The artifact download failed for good.
    #[error(transparent)]
    Download(#[from] DownloadError),
}

impl ClientError {
    /// The HTTP status the server answered, if the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::AuthRejected { .. } => Some(401),
            ClientError::Aborted { .. } => Some(409),
            _ => None,
        }
    }

    /// The wait the server asked for before this call is tried again (`Retry-After` on a
    /// 429 or 503, clamped); `None` means the caller's own backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Worth retrying later with backoff: no answer, a timeout, a pending device, a 5xx, 408
    /// or 429. Client errors (other 4xx), aborts and configuration errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. }
            | ClientError::Timeout { .. }
            | ClientError::AuthRejected { .. } => true,
            ClientError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            ClientError::Download(e) => e.is_transient(),
            _ => false,
        }
    }
}

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
    /// More than [`MAX_REDIRECTS`](super::download::MAX_REDIRECTS) redirects in a row.
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
