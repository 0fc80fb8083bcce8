//! HTTP plumbing shared by the handlers: response builders (the server's error body with a
//! request id), bounded body reading with a timeout, and the Content-Type rule.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::StatusCode;
use serde::Serialize;

use super::state::OpError;
use mender_api::ApiError;

/// Response body type of every handler.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;
pub type Response = hyper::Response<Body>;

/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn full(status: StatusCode, content_type: Option<&str>, body: impl Into<Bytes>) -> Response {
    let body: Bytes = body.into();
    let mut r = hyper::Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        if let Ok(v) = HeaderValue::from_str(ct) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
    }
    r
}

pub fn empty(status: StatusCode) -> Response {
    let mut r = hyper::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = status;
    r
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(v) => full(status, Some("application/json; charset=utf-8"), v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), ""),
    }
}

/// The server's error body: `{"error": ..., "request_id": ...}`.
pub fn error(status: StatusCode, message: &str, request_id: &str) -> Response {
    let body = ApiError::new(
        message,
        (!request_id.is_empty()).then(|| request_id.to_string()),
    );
    let raw = serde_json::to_vec(&body).unwrap_or_default();
    full(status, Some("application/json; charset=utf-8"), raw)
}

/// The answer to a call an injected failure hits: its status, `Retry-After` when set.
pub fn injected_failure(f: &super::faults::Failure, request_id: &str) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = error(status, "injected failure", request_id);
    if let Some(v) = f
        .retry_after
        .as_deref()
        .and_then(|v| hyper::header::HeaderValue::from_str(v).ok())
    {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

/// The status code of an operation error.
pub fn op_status(e: &OpError) -> StatusCode {
    match e {
        OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
        OpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        OpError::Forbidden(_) => StatusCode::FORBIDDEN,
        OpError::NotFound(_) => StatusCode::NOT_FOUND,
        OpError::Conflict(_) => StatusCode::CONFLICT,
        OpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn op_error(e: &OpError, request_id: &str) -> Response {
    error(op_status(e), &e.to_string(), request_id)
}

/// A request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("reading the request body: {0}")]
    Read(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads the whole body (chunked or not) up to `limit` bytes within [`BODY_TIMEOUT`].
pub async fn read_body(
    headers: &HeaderMap,
    body: hyper::body::Incoming,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if let Some(len) = content_length(headers) {
        if len > limit as u64 {
            return Err(BodyError::TooLarge(limit));
        }
    }
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Err(_) => Err(BodyError::Timeout(BODY_TIMEOUT)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The device routes' rule: a non-empty body must be `application/json` (415 otherwise);
/// an unparsable Content-Type is 400.
pub fn check_json_content_type(
    headers: &HeaderMap,
    body_len: usize,
) -> Result<(), (StatusCode, String)> {
    if body_len == 0 {
        return Ok(());
    }
    let Some(v) = headers.get(CONTENT_TYPE) else {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request body needs Content-Type: application/json (none given)".into(),
        ));
    };
    let v = v.to_str().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "unparsable Content-Type".to_string(),
        )
    })?;
    let media = v.split(';').next().unwrap_or("").trim();
    if media.is_empty() || !media.contains('/') {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("unparsable Content-Type {v:?}"),
        ));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {v:?} is not application/json"),
        ));
    }
    Ok(())
}
