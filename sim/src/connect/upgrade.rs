//! `GET /api/devices/v1/deviceconnect/connect`: the device's Bearer JWT is checked as on
//! every other device route (401 otherwise), then the request must be a WebSocket upgrade
//! (RFC 6455: `Upgrade: websocket`, `Connection: upgrade`, `Sec-WebSocket-Version: 13`, a
//! `Sec-WebSocket-Key`; 400 otherwise); the answer is 101 and the link runs in its own
//! task (`socket.rs`), replacing the device's previous link.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::socket;
use crate::http::{empty, error, op_error, Response};
use crate::state::Sim;

/// The device route.
pub const CONNECT_PATH: &str = "/api/devices/v1/deviceconnect/connect";
/// Time for the client to start talking after the 101.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

fn has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Why a request is not a WebSocket upgrade.
fn check_upgrade(headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    if !has_token(headers, UPGRADE, "websocket") {
        return Err("not a WebSocket upgrade (Upgrade: websocket missing)");
    }
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err("not a WebSocket upgrade (Connection: upgrade missing)");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err("unsupported Sec-WebSocket-Version (need 13)");
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key missing")?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| "bad Sec-WebSocket-Key")
}

/// Answers the connect request; on success the link is served in the background.
pub fn handle(sim: &Arc<Sim>, mut req: Request<Incoming>, rid: &str) -> Response {
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use GET", rid);
    }
    let auth = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let device = match sim.device_of_token(auth) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(request_id = %rid, "deviceconnect: refused: {e}");
            return op_error(&e, rid);
        }
    };
    let accept = match check_upgrade(req.headers()) {
        Ok(a) => a,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg, rid),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Registered before the 101, so a management call right after the device's handshake
    // finds the link; a failed upgrade detaches it again.
    let attached = sim.connect().attach(&device);
    let generation = attached.generation;
    let sim = sim.clone();
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(UPGRADE_TIMEOUT, on_upgrade).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => {
                tracing::warn!(device, "deviceconnect: upgrade failed: {e}");
                sim.connect().detach(&device, generation);
                return;
            }
            Err(_) => {
                tracing::warn!(device, "deviceconnect: upgrade timed out");
                sim.connect().detach(&device, generation);
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(socket::config()),
        )
        .await;
        socket::run(sim, device, ws, attached).await;
    });
    let mut resp = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(SEC_WEBSOCKET_ACCEPT, accept);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_headers() {
        let mut h = HeaderMap::new();
        assert!(check_upgrade(&h).is_err());
        h.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        assert!(check_upgrade(&h).is_err());
        // RFC 6455 section 1.3's example.
        h.insert(
            SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(check_upgrade(&h).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(check_upgrade(&h).is_err());
    }
}
