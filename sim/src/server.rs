//! The HTTPS server: TLS accept with a timeout, HTTP/1.1 connections (header read timeout),
//! and the top-level routing between the device API, download links and the management API.
//! Every answer carries `X-MEN-RequestID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::call::Call;
use super::http::{self, error, Response};
use super::ids;
use super::records::RequestRecord;
use super::routes::{dispatch, DeviceRoute};
use super::stall::WriteStallTimeout;
use super::state::Sim;
use super::{connect, download, manage, DOWNLOAD_PREFIX};
use mender_api::error::REQUEST_ID_HEADER;
use mender_api::MAX_BODY;

/// Time allowed for a TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to receive a request's headers (also the keep-alive idle limit).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest time a client may accept no data before its connection is dropped.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time open connections get to finish when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections until `shutdown` changes.
pub async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    sim: Arc<Sim>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let sim = sim.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let svc = hyper::service::service_fn(move |req| handle(sim.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(
                    TokioIo::new(WriteStallTimeout::new(tls, WRITE_STALL_TIMEOUT)),
                    svc,
                )
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
        });
    }
}

async fn handle(sim: Arc<Sim>, req: Request<Incoming>) -> Result<Response, Infallible> {
    let rid = ids::uuid();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = if path.trim_end_matches('/') == connect::CONNECT_PATH {
        connect_request(&sim, req, &rid)
    } else if let Some(route) = DeviceRoute::classify(&path) {
        device_request(&sim, req, route, &rid).await
    } else if let Some(id) = path
        .strip_prefix(DOWNLOAD_PREFIX)
        .and_then(|p| p.strip_prefix('/'))
    {
        let id = id.to_string();
        download::handle(&sim, req, &id, &rid).await
    } else if path == "/api/sim" || path.starts_with("/api/sim/") {
        manage::handle(&sim, req, &rid).await
    } else {
        error(StatusCode::NOT_FOUND, "not found", &rid)
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    tracing::info!(request_id = %rid, %method, %path, status = resp.status().as_u16(), "request");
    Ok(resp)
}

/// The deviceconnect upgrade, recorded like the other device requests.
fn connect_request(sim: &Arc<Sim>, req: Request<Incoming>, rid: &str) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let authorization = req.headers().contains_key(AUTHORIZATION);
    let resp = connect::upgrade::handle(sim, req, rid);
    let status = resp.status().as_u16();
    sim.requests().push(|seq| RequestRecord {
        seq,
        time: ids::now_rfc3339(),
        method,
        path,
        query,
        content_type: None,
        content_length: None,
        chunked: false,
        authorization,
        body_len: 0,
        body: None,
        status,
    });
    resp
}

async fn device_request(
    sim: &Sim,
    req: Request<Incoming>,
    route: DeviceRoute,
    rid: &str,
) -> Response {
    let (parts, body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let chunked =
        header(TRANSFER_ENCODING).is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (resp, body) = match http::read_body(&parts.headers, body, MAX_BODY).await {
        Err(e) => (error(e.status(), &e.to_string(), rid), None),
        Ok(body) => {
            let resp = if let Err((status, msg)) =
                http::check_json_content_type(&parts.headers, body.len())
            {
                error(status, &msg, rid)
            } else if let Some(f) = sim.faults().take_failure(route.fault_route()) {
                http::injected_failure(&f, rid)
            } else {
                let call = Call {
                    sim,
                    method: &parts.method,
                    query: parts.uri.query(),
                    headers: &parts.headers,
                    body: &body,
                    request_id: rid,
                };
                dispatch(&call, &route)
            };
            (resp, Some(body))
        }
    };
    let status = resp.status().as_u16();
    sim.requests().push(|seq| RequestRecord {
        seq,
        time: ids::now_rfc3339(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        content_type: header(CONTENT_TYPE),
        content_length: http::content_length(&parts.headers),
        chunked,
        authorization: parts.headers.contains_key(AUTHORIZATION),
        body_len: body.as_ref().map_or(0, |b| b.len()),
        body: body.as_ref().and_then(|b| serde_json::from_slice(b).ok()),
        status,
    });
    resp
}
