//! The server side of one deviceconnect WebSocket: sends what management calls queue,
//! routes what the device sends to its sessions, answers the device's shell and control
//! `ping` with `pong`, and keeps the connection honest: WebSocket pings every
//! [`PING_INTERVAL`] (tungstenite answers the device's own WebSocket pings, which
//! mender-connect sends every 54 s and needs answered within 60 s), closed after
//! [`IDLE_TIMEOUT`] without a frame, each write bounded by [`WRITE_TIMEOUT`], each
//! message by [`MAX_MESSAGE`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::protomsg::{control, shell, ProtoMsg, PROTO_CONTROL, PROTO_SHELL};
use super::registry::Attached;
use super::session::SessionState;
use crate::state::Sim;

/// Largest message or frame accepted from a device (mender-connect's own read limit is
/// 8192 bytes; its shell output messages are smaller).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// How often the server pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A link with no frame from the device for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a single write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket limits of a device link.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(4 * MAX_MESSAGE)
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
enum LinkEnd {
    #[error("replaced by a newer connection or server stopping")]
    Replaced,
    #[error("closed by the device")]
    Closed,
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error("write timed out")]
    WriteTimeout,
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Runs device `device`'s link until it ends, then detaches it.
pub async fn run<S>(sim: Arc<Sim>, device: String, ws: WebSocketStream<S>, attached: Attached)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let generation = attached.generation;
    tracing::info!(device, generation, "deviceconnect: device connected");
    let end = serve(&sim, &device, ws, attached).await;
    tracing::info!(device, generation, "deviceconnect: link ended: {end}");
    sim.connect().detach(&device, generation);
}

async fn send<S>(ws: &mut WebSocketStream<S>, msg: Message) -> Result<(), LinkEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(WRITE_TIMEOUT, ws.send(msg))
        .await
        .map_err(|_| LinkEnd::WriteTimeout)?
        .map_err(LinkEnd::from)
}

async fn serve<S>(
    sim: &Sim,
    device: &str,
    mut ws: WebSocketStream<S>,
    attached: Attached,
) -> LinkEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Attached {
        generation,
        mut outgoing,
        mut close,
    } = attached;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_read = Instant::now();
    let end = loop {
        let idle = tokio::time::sleep_until(last_read + IDLE_TIMEOUT);
        let step: Result<(), LinkEnd> = tokio::select! {
            _ = &mut close => Err(LinkEnd::Replaced),
            _ = idle => Err(LinkEnd::Idle(IDLE_TIMEOUT)),
            _ = ping.tick() => send(&mut ws, Message::Ping(Default::default())).await,
            out = outgoing.recv() => match out {
                Some(m) => send(&mut ws, Message::Binary(m.encode().into())).await,
                None => Err(LinkEnd::Replaced),
            },
            frame = ws.next() => {
                last_read = Instant::now();
                match frame {
                    None | Some(Ok(Message::Close(_))) => Err(LinkEnd::Closed),
                    Some(Err(e)) => Err(e.into()),
                    Some(Ok(Message::Binary(raw))) => match on_frame(sim, device, generation, &raw) {
                        Some(reply) => send(&mut ws, Message::Binary(reply.encode().into())).await,
                        None => Ok(()),
                    },
                    Some(Ok(Message::Text(_))) => {
                        tracing::debug!(device, "deviceconnect: text frame ignored");
                        Ok(())
                    }
                    // Pings are answered by tungstenite; pongs only count as traffic.
                    Some(Ok(_)) => Ok(()),
                }
            }
        };
        if let Err(e) = step {
            break e;
        }
    };
    if matches!(end, LinkEnd::Replaced | LinkEnd::Idle(_)) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(None)).await;
    }
    end
}

/// Handles one message from the device; returns the answer to send, if any.
fn on_frame(sim: &Sim, device: &str, generation: u64, raw: &[u8]) -> Option<ProtoMsg> {
    let msg = match ProtoMsg::decode(raw) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(device, "deviceconnect: undecodable message: {e}");
            return None;
        }
    };
    let h = &msg.hdr;
    tracing::debug!(device, proto = h.proto, typ = %h.typ, sid = %h.sid, len = msg.body.len(), "deviceconnect: message");
    match (h.proto, h.typ.as_str()) {
        (PROTO_SHELL, shell::PING) => {
            return Some(
                ProtoMsg::new(PROTO_SHELL, shell::PONG, &h.sid)
                    .with_prop("status", shell::STATUS_CONTROL),
            )
        }
        (PROTO_CONTROL, control::PING) => {
            return Some(ProtoMsg::new(PROTO_CONTROL, control::PONG, &h.sid))
        }
        (PROTO_SHELL, _) => {}
        _ => return None,
    }
    let Some(session) = sim.connect().session_on(device, generation, &h.sid) else {
        tracing::debug!(device, sid = %h.sid, typ = %h.typ, "deviceconnect: message for an unknown session");
        return None;
    };
    let error = msg.int_prop("status") == Some(shell::STATUS_ERROR);
    let text = || String::from_utf8_lossy(&msg.body).into_owned();
    match h.typ.as_str() {
        shell::NEW if error => session.set_state(SessionState::Refused(text())),
        shell::NEW => session.set_state(SessionState::Open),
        shell::SHELL if error => session.push_error(&msg.body),
        shell::SHELL => session.push_output(&msg.body),
        shell::STOP => {
            if error {
                session.push_error(&msg.body);
            }
            session.set_state(SessionState::Stopped(text()));
        }
        _ => {
            if error {
                session.push_error(&msg.body);
            }
        }
    }
    None
}
