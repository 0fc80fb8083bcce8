//! Artifact downloads through presigned links on the simulator itself: no Authorization
//! needed (one that is sent is recorded, since the real S3 refuses it), HMAC-signed with an
//! expiry (403 when expired or tampered with), `Range: bytes=N-`, `bytes=N-M` and
//! `bytes=-K` with 206 + `Content-Range`, Content-Length always set. Injected faults: a cut
//! of the connection at a byte offset, and a rate limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::faults::Route;
use super::http::{error, op_error, Response};
use super::ids;
use super::records::DownloadRecord;
use super::state::Sim;

/// Largest chunk sent at once.
const CHUNK: u64 = 64 * 1024;

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole file.
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// Not satisfiable: 416.
    Unsatisfiable,
}

/// Parses a single-range `bytes=` header against a file of `total` bytes. Other units and
/// multiple ranges are ignored (the whole file is sent), as HTTP allows.
pub fn parse_range(value: Option<&str>, total: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => match num(b) {
            Some(k) if k > 0 && total > 0 => RangeRequest::Part(total - k.min(total), total),
            _ => RangeRequest::Unsatisfiable,
        },
        (false, true) => match num(a) {
            Some(s) if s < total => RangeRequest::Part(s, total),
            _ => RangeRequest::Unsatisfiable,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e && s < total => {
                RangeRequest::Part(s, e.saturating_add(1).min(total))
            }
            _ => RangeRequest::Unsatisfiable,
        },
        (true, true) => RangeRequest::Unsatisfiable,
    }
}

pub async fn handle(
    sim: &Arc<Sim>,
    req: Request<Incoming>,
    artifact_id: &str,
    rid: &str,
) -> Response {
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use GET", rid);
    }
    let link = match sim.verify_link(artifact_id, req.uri().query().unwrap_or("")) {
        Ok(l) => l,
        Err(e) => {
            tracing::info!(request_id = %rid, "download refused: {e}");
            return op_error(&e, rid);
        }
    };
    let authorization_sent = req.headers().contains_key(AUTHORIZATION);
    if authorization_sent {
        tracing::warn!(request_id = %rid, "download link fetched with an Authorization header; S3 would refuse it");
        if let Err(e) = sim.note_download_authorization(&link) {
            return op_error(&e, rid);
        }
    }
    let range_header = req
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let record = |status: u16, start: u64, cut_at: Option<u64>| {
        sim.downloads().push(|seq| DownloadRecord {
            seq,
            time: ids::now_rfc3339(),
            artifact_id: link.artifact_id.clone(),
            deployment_id: link.deployment_id.clone(),
            device_id: link.device_id.clone(),
            range: range_header.clone(),
            authorization_sent,
            status,
            start,
            bytes_sent: 0,
            cut_at,
            complete: false,
        })
    };
    let failure = sim.faults().take_failure(Route::Download);
    if let Some(f) = failure {
        record(f.status, 0, None);
        return super::http::injected_failure(&f, rid);
    }
    let path = sim.artifact_path(artifact_id);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            record(404, 0, None);
            return error(StatusCode::NOT_FOUND, &format!("artifact file: {e}"), rid);
        }
    };
    let total = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), rid),
    };
    let (status, start, end) = match parse_range(range_header.as_deref(), total) {
        RangeRequest::Whole => (StatusCode::OK, 0, total),
        RangeRequest::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        RangeRequest::Unsatisfiable => {
            record(416, 0, None);
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable",
                rid,
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), rid);
    }
    let (cut, throttle, corrupt) = {
        let mut f = sim.faults();
        (
            f.take_cut(start, end),
            f.throttle_bytes_per_sec,
            f.corrupt_offsets.clone(),
        )
    };
    let seq = record(status.as_u16(), start, cut);
    let body = Streamer {
        file,
        pos: start,
        stop: cut.unwrap_or(end),
        end,
        bytes_per_sec: throttle.filter(|b| *b > 0),
        corrupt,
        sim: sim.clone(),
        seq,
    }
    .into_body();
    let mut r = hyper::Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.mender-artifact"),
    );
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1)) {
            h.insert(CONTENT_RANGE, v);
        }
    }
    r
}

/// Streams `pos..stop` of the file, then either ends (stop == end) or fails the body so
/// the connection drops (an injected cut).
struct Streamer {
    file: tokio::fs::File,
    pos: u64,
    stop: u64,
    end: u64,
    bytes_per_sec: Option<u64>,
    /// Offsets whose byte is sent with its low bit flipped.
    corrupt: Vec<u64>,
    sim: Arc<Sim>,
    seq: u64,
}

impl Streamer {
    fn into_body(self) -> super::http::Body {
        let s = stream::unfold(Some(self), |st| async move {
            let mut st = st?;
            if st.pos >= st.stop {
                let cut = st.pos < st.end;
                st.update(|r| r.complete = !cut);
                if cut {
                    // Let hyper flush what was sent (it does while the body is pending)
                    // before the error drops the connection.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    tracing::info!(offset = st.pos, "download cut (injected)");
                    let e =
                        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "injected cut");
                    return Some((Err(e), None));
                }
                return None;
            }
            let mut n = CHUNK.min(st.stop - st.pos);
            if let Some(bps) = st.bytes_per_sec {
                n = n.min((bps / 10).max(1));
            }
            let mut buf = vec![0u8; n as usize];
            if let Err(e) = st.file.read_exact(&mut buf).await {
                return Some((Err(e), None));
            }
            for &o in &st.corrupt {
                if (st.pos..st.pos + n).contains(&o) {
                    buf[(o - st.pos) as usize] ^= 1;
                }
            }
            if let Some(bps) = st.bytes_per_sec {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
            }
            st.pos += n;
            // hyper stops polling once Content-Length bytes went out: mark completion here.
            let done = st.pos == st.end;
            st.update(|r| {
                r.bytes_sent += n;
                r.complete |= done;
            });
            Some((Ok(Frame::data(Bytes::from(buf))), Some(st)))
        });
        StreamBody::new(s).boxed_unsync()
    }

    fn update(&self, f: impl FnOnce(&mut DownloadRecord)) {
        if let Some(r) = self.sim.downloads().find_mut(|r| r.seq == self.seq) {
            f(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=10-"), 100), Part(10, 100));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), Part(10, 20));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Part(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part(90, 100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=20-10"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
    }
}
