//! The management side of remote terminals, under `/api/sim/devices/{id}/`:
//!
//! - `GET connect`: `{"connected": bool, "sessions": [{"id", "state", "detail"?}]}`.
//! - `POST shell` (optional JSON `{"user_id", "terminal_width", "terminal_height"}`): sends
//!   `proto=1 typ=new` with a new session id and those properties (mender-connect reads
//!   `user_id`, `terminal_height`, `terminal_width`), waits up to [`REPLY_TIMEOUT`] for the
//!   device's answer: 201 `{"session_id", "state": "open"}`; 502 when the device
//!   refused (its message), 504 without an answer, 409 when the device is not connected.
//! - `POST shell/{sid}/input` (raw body, at most [`MAX_INPUT`] bytes): sent as `typ=shell`
//!   messages of at most [`INPUT_CHUNK`] bytes (mender-connect reads at most 8192 bytes a
//!   message); 204.
//! - `GET shell/{sid}[?contains=TEXT&wait_ms=N]`: the output gathered so far (the newest
//!   256 KiB) as `output` (UTF-8, lossy) and `output_base64`, with `state`, `dropped` and
//!   the device's `errors`; with `contains`, waits up to `wait_ms` (at most
//!   [`MAX_WAIT`]) for TEXT to appear or the session to end.
//! - `POST shell/{sid}/resize` (`{"terminal_width", "terminal_height"}`): `typ=resize`; 204.
//! - `POST shell/{sid}/stop`: `typ=stop`, waits up to [`REPLY_TIMEOUT`] for the answer;
//!   200 with the session view (504 without an answer).

use std::time::Duration;

use base64::Engine;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::protomsg::{shell, ProtoMsg, PROTO_SHELL};
use super::session::{Session, SessionState, Snapshot};
use crate::http::{empty, error, json, Response};
use crate::ids;
use crate::state::Sim;

/// Longest wait for the device's answer to `new` or `stop`.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait of an output read.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Largest input of one call.
pub const MAX_INPUT: usize = 64 * 1024;
/// Largest `shell` body sent to a device.
pub const INPUT_CHUNK: usize = 4096;
/// Longest wait for room in a device's send queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a terminal call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("device {0} has no deviceconnect connection")]
    NotConnected(String),
    #[error("no session {0} on this device")]
    UnknownSession(String),
    #[error("the session's connection is gone")]
    SessionClosed,
    #[error("the device refused: {0}")]
    Refused(String),
    #[error("no answer from the device within {0:?}")]
    NoAnswer(Duration),
    #[error("too many sessions open")]
    TooManySessions,
    #[error("input larger than {0} bytes")]
    InputTooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
}

impl ConnectError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConnectError::NotConnected(_) | ConnectError::SessionClosed => StatusCode::CONFLICT,
            ConnectError::UnknownSession(_) => StatusCode::NOT_FOUND,
            ConnectError::Refused(_) => StatusCode::BAD_GATEWAY,
            ConnectError::NoAnswer(_) => StatusCode::GATEWAY_TIMEOUT,
            ConnectError::TooManySessions => StatusCode::TOO_MANY_REQUESTS,
            ConnectError::InputTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ConnectError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Deserialize, Default)]
struct OpenBody {
    user_id: Option<String>,
    terminal_width: Option<u16>,
    terminal_height: Option<u16>,
}

#[derive(Deserialize)]
struct ResizeBody {
    terminal_width: u16,
    terminal_height: u16,
}

#[derive(Serialize)]
struct Opened {
    session_id: String,
    state: &'static str,
}

#[derive(Serialize)]
struct SessionView {
    #[serde(flatten)]
    snap: Snapshot,
    output: String,
    output_base64: String,
}

impl From<Snapshot> for SessionView {
    fn from(snap: Snapshot) -> Self {
        SessionView {
            output: String::from_utf8_lossy(&snap.output).into_owned(),
            output_base64: base64::engine::general_purpose::STANDARD.encode(&snap.output),
            snap,
        }
    }
}

/// Answers `segs` (the path after `/api/sim/`) when it is a terminal route.
pub async fn route(
    sim: &Sim,
    method: &Method,
    segs: &[&str],
    query: Option<&str>,
    body: &[u8],
    rid: &str,
) -> Option<Response> {
    let r = match (method, segs) {
        (&Method::GET, ["devices", dev, "connect"]) => Ok(status(sim, dev)),
        (&Method::POST, ["devices", dev, "shell"]) => open(sim, dev, body).await,
        (&Method::GET, ["devices", dev, "shell", sid]) => read(sim, dev, sid, query).await,
        (&Method::POST, ["devices", dev, "shell", sid, "input"]) => {
            input(sim, dev, sid, body).await
        }
        (&Method::POST, ["devices", dev, "shell", sid, "resize"]) => {
            resize(sim, dev, sid, body).await
        }
        (&Method::POST, ["devices", dev, "shell", sid, "stop"]) => stop(sim, dev, sid).await,
        _ => return None,
    };
    Some(r.unwrap_or_else(|e| error(e.status(), &e.to_string(), rid)))
}

fn status(sim: &Sim, dev: &str) -> Response {
    let sessions: Vec<_> = sim
        .connect()
        .sessions_of(dev)
        .into_iter()
        .map(|(id, state)| {
            let mut v = serde_json::to_value(&state).unwrap_or_default();
            v["id"] = id.into();
            v
        })
        .collect();
    // `link` numbers the device's connections (a reconnect gets a higher one).
    let link = sim.connect().link(dev).map(|(_, generation)| generation);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "connected": link.is_some(),
            "link": link,
            "sessions": sessions,
        }),
    )
}

async fn queue(tx: &mpsc::Sender<ProtoMsg>, msg: ProtoMsg) -> Result<(), ConnectError> {
    match tokio::time::timeout(QUEUE_TIMEOUT, tx.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(ConnectError::SessionClosed),
        Err(_) => Err(ConnectError::NoAnswer(QUEUE_TIMEOUT)),
    }
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ConnectError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ConnectError::BadRequest(format!("body: {e}")))
}

async fn open(sim: &Sim, dev: &str, body: &[u8]) -> Result<Response, ConnectError> {
    let b: OpenBody = parse(body)?;
    let (tx, generation) = sim
        .connect()
        .link(dev)
        .ok_or_else(|| ConnectError::NotConnected(dev.to_string()))?;
    let sid = ids::uuid();
    let session = sim
        .connect()
        .add_session(dev, generation, &sid)
        .map_err(|_| ConnectError::TooManySessions)?;
    let mut msg = ProtoMsg::new(PROTO_SHELL, shell::NEW, &sid).with_prop(
        "user_id",
        b.user_id.unwrap_or_else(|| "mender-bridge-sim".into()),
    );
    if let (Some(w), Some(h)) = (b.terminal_width, b.terminal_height) {
        msg = msg
            .with_prop("terminal_width", w)
            .with_prop("terminal_height", h);
    }
    if let Err(e) = queue(&tx, msg).await {
        session.set_state(SessionState::Closed);
        return Err(e);
    }
    let (snap, answered) = session
        .wait_until(REPLY_TIMEOUT, |s| s.state != SessionState::Opening)
        .await;
    if !answered {
        session.set_state(SessionState::Closed);
        return Err(ConnectError::NoAnswer(REPLY_TIMEOUT));
    }
    match snap.state {
        SessionState::Open => Ok(json(
            StatusCode::CREATED,
            &Opened {
                session_id: sid,
                state: "open",
            },
        )),
        SessionState::Refused(m) => Err(ConnectError::Refused(m)),
        _ => Err(ConnectError::SessionClosed),
    }
}

/// The session and its link's sender, if the link is still the one it was opened on.
fn live(
    sim: &Sim,
    dev: &str,
    sid: &str,
) -> Result<(Session, mpsc::Sender<ProtoMsg>), ConnectError> {
    let (session, generation) = sim
        .connect()
        .session(dev, sid)
        .ok_or_else(|| ConnectError::UnknownSession(sid.to_string()))?;
    match sim.connect().link(dev) {
        Some((tx, g)) if g == generation && !session.state().is_final() => Ok((session, tx)),
        _ => Err(ConnectError::SessionClosed),
    }
}

async fn input(sim: &Sim, dev: &str, sid: &str, body: &[u8]) -> Result<Response, ConnectError> {
    if body.len() > MAX_INPUT {
        return Err(ConnectError::InputTooLarge(MAX_INPUT));
    }
    let (_, tx) = live(sim, dev, sid)?;
    for chunk in body.chunks(INPUT_CHUNK) {
        queue(
            &tx,
            ProtoMsg::new(PROTO_SHELL, shell::SHELL, sid).with_body(chunk),
        )
        .await?;
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn resize(sim: &Sim, dev: &str, sid: &str, body: &[u8]) -> Result<Response, ConnectError> {
    let b: ResizeBody =
        serde_json::from_slice(body).map_err(|e| ConnectError::BadRequest(format!("body: {e}")))?;
    let (_, tx) = live(sim, dev, sid)?;
    let msg = ProtoMsg::new(PROTO_SHELL, shell::RESIZE, sid)
        .with_prop("terminal_width", b.terminal_width)
        .with_prop("terminal_height", b.terminal_height);
    queue(&tx, msg).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn read(
    sim: &Sim,
    dev: &str,
    sid: &str,
    query: Option<&str>,
) -> Result<Response, ConnectError> {
    let (session, _) = sim
        .connect()
        .session(dev, sid)
        .ok_or_else(|| ConnectError::UnknownSession(sid.to_string()))?;
    let mut contains = None;
    let mut wait = Duration::ZERO;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "contains" => contains = Some(v.into_owned().into_bytes()),
            "wait_ms" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| ConnectError::BadRequest("wait_ms: not a number".into()))?;
                wait = Duration::from_millis(ms).min(MAX_WAIT);
            }
            _ => {}
        }
    }
    let snap = match contains {
        Some(needle) if !needle.is_empty() => {
            session
                .wait_until(wait, |s| {
                    s.state.is_final() || s.output.windows(needle.len()).any(|w| w == needle)
                })
                .await
                .0
        }
        _ => session.snapshot(),
    };
    Ok(json(StatusCode::OK, &SessionView::from(snap)))
}

async fn stop(sim: &Sim, dev: &str, sid: &str) -> Result<Response, ConnectError> {
    let (session, tx) = live(sim, dev, sid)?;
    session.set_state(SessionState::Stopping);
    queue(&tx, ProtoMsg::new(PROTO_SHELL, shell::STOP, sid)).await?;
    let (snap, answered) = session
        .wait_until(REPLY_TIMEOUT, |s| s.state.is_final())
        .await;
    if !answered {
        return Err(ConnectError::NoAnswer(REPLY_TIMEOUT));
    }
    Ok(json(StatusCode::OK, &SessionView::from(snap)))
}
