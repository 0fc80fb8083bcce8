//! The simulator's deviceconnect (PROTOCOL.md §6a) against a minimal device written here:
//! the connect route refuses a missing or bad token with 401 and upgrades with a valid
//! one; a management call opens a shell (`proto=1 typ=new` with the properties
//! mender-connect reads), keystrokes go to the device as `typ=shell`, what the device
//! sends back is read through the management API, `ping` gets `pong`, `stop` ends the
//! session, a second connection replaces the first, an oversized message closes the link.
#![cfg(feature = "sim")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sim::{rustls_pemfile_certs, TestKey, TestSim};
use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use mender_bridge_sim::connect::protomsg::{shell, ProtoMsg, PROTO_CONTROL, PROTO_SHELL};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

const CONNECT: &str = "/api/devices/v1/deviceconnect/connect";
const WAIT: Duration = Duration::from_secs(10);

/// The device end of a link.
struct Device {
    ws: WebSocketStream<Tls>,
}

/// Opens a WebSocket to the connect route with `token` (none: no Authorization).
async fn connect(sim: &TestSim, token: Option<&str>) -> Result<Device, WsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&std::fs::read(sim.handle.ca_path()).unwrap()) {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = sim.handle.addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap();
    let url = format!("wss://{addr}{CONNECT}");
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, resp) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async_with_config(req, stream, None),
    )
    .await
    .expect("handshake timed out")?;
    assert_eq!(resp.status(), 101);
    Ok(Device { ws })
}

/// The HTTP status of a refused handshake.
fn refused_status(r: Result<Device, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("connected without a valid token"),
    }
}

impl Device {
    async fn send(&mut self, m: ProtoMsg) {
        self.ws
            .send(Message::Binary(m.encode().into()))
            .await
            .unwrap();
    }

    /// The next ProtoMsg (WebSocket pings and pongs skipped).
    async fn recv(&mut self) -> ProtoMsg {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message from the server")
                .expect("link closed")
                .expect("websocket error");
            match frame {
                Message::Binary(raw) => return ProtoMsg::decode(&raw).expect("decode"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits for the server to end the link.
    async fn closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("link not closed")
            {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    }
}

async fn admitted(sim: &TestSim) -> (String, String) {
    let key = TestKey::generate(sim.dir.path(), "ec");
    sim.admit(&key, "02:00:00:00:0c:01").await
}

#[tokio::test]
async fn the_connect_route_checks_the_device_token() {
    let sim = TestSim::start().await;
    let (_, token) = admitted(&sim).await;
    assert_eq!(refused_status(connect(&sim, None).await), 401);
    assert_eq!(refused_status(connect(&sim, Some("not.a.jwt")).await), 401);
    let mut forged = token.clone();
    forged.push('x');
    assert_eq!(refused_status(connect(&sim, Some(&forged)).await), 401);
    // A plain GET with a valid token but no upgrade is a bad request.
    let r = sim
        .http
        .device(Method::GET, CONNECT, Some(&token), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    connect(&sim, Some(&token)).await.expect("connect");
    let recorded = sim.http.manage_ok(Method::GET, "/requests", None).await;
    let statuses: Vec<_> = recorded
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == CONNECT)
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [401, 401, 401, 400, 101]);
}

#[tokio::test]
async fn a_remote_shell_round_trips_through_the_management_api() {
    let sim = TestSim::start().await;
    let (id, token) = admitted(&sim).await;
    let r = sim
        .http
        .manage(Method::POST, &format!("/devices/{id}/shell"), None)
        .await;
    assert_eq!(r.status, 409, "not connected yet: {}", r.text());

    let mut dev = connect(&sim, Some(&token)).await.expect("connect");
    let st = sim
        .http
        .manage_ok(Method::GET, &format!("/devices/{id}/connect"), None)
        .await;
    assert_eq!(st["connected"], true);

    // Open: the management call waits for the device's answer.
    let http = sim.http.clone();
    let path = format!("/devices/{id}/shell");
    let open = tokio::spawn(async move {
        http.manage(
            Method::POST,
            &path,
            Some(json!({"user_id": "u-1", "terminal_width": 100, "terminal_height": 30})),
        )
        .await
    });
    let new = dev.recv().await;
    assert_eq!((new.hdr.proto, new.hdr.typ.as_str()), (PROTO_SHELL, "new"));
    let sid = new.hdr.sid.clone();
    assert!(!sid.is_empty());
    assert_eq!(new.str_prop("user_id"), Some("u-1"));
    assert_eq!(new.int_prop("terminal_width"), Some(100));
    assert_eq!(new.int_prop("terminal_height"), Some(30));
    dev.send(
        ProtoMsg::new(PROTO_SHELL, shell::NEW, &sid)
            .with_prop("status", shell::STATUS_NORMAL)
            .with_body(&b"Shell started"[..]),
    )
    .await;
    let r = open.await.unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["session_id"], sid.as_str());

    // Keystrokes: the device gets them as `shell` and echoes them back.
    let input = sim
        .http
        .send(
            Method::POST,
            &format!("/api/sim/devices/{id}/shell/{sid}/input"),
            &[("content-type", "application/octet-stream")],
            common::sim::full(&b"echo bridge-ok\n"[..]),
        )
        .await;
    assert_eq!(input.status, 204, "{}", input.text());
    let keys = dev.recv().await;
    assert_eq!(
        (keys.hdr.typ.as_str(), keys.hdr.sid.as_str()),
        ("shell", sid.as_str())
    );
    assert_eq!(keys.body, b"echo bridge-ok\n");
    dev.send(
        ProtoMsg::new(PROTO_SHELL, shell::SHELL, &sid)
            .with_prop("status", shell::STATUS_NORMAL)
            .with_body(b"$ echo bridge-ok\r\nbridge-ok\r\n".to_vec()),
    )
    .await;
    let out = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/devices/{id}/shell/{sid}?contains=bridge-ok%0D%0A&wait_ms=5000"),
            None,
        )
        .await;
    assert_eq!(out["state"], "open");
    assert!(
        out["output"]
            .as_str()
            .unwrap()
            .contains("bridge-ok\r\nbridge-ok\r\n"),
        "{out}"
    );

    // The device's healthcheck ping (session/shell.go) and a control ping get a pong.
    dev.send(
        ProtoMsg::new(PROTO_SHELL, shell::PING, &sid)
            .with_prop("status", shell::STATUS_CONTROL)
            .with_prop("timeout", 65),
    )
    .await;
    let pong = dev.recv().await;
    assert_eq!(
        (pong.hdr.proto, pong.hdr.typ.as_str()),
        (PROTO_SHELL, "pong")
    );
    assert_eq!(pong.hdr.sid, sid);
    dev.send(ProtoMsg::new(PROTO_CONTROL, "ping", "")).await;
    let pong = dev.recv().await;
    assert_eq!(
        (pong.hdr.proto, pong.hdr.typ.as_str()),
        (PROTO_CONTROL, "pong")
    );
    // mender-connect's WebSocket ping (connection/connection.go: the payload is its
    // ping wait in seconds) is answered with a pong carrying the same payload.
    dev.ws
        .send(Message::Ping(b"60".to_vec().into()))
        .await
        .unwrap();
    let pong = loop {
        match tokio::time::timeout(WAIT, dev.ws.next()).await.unwrap() {
            Some(Ok(Message::Pong(p))) => break p,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    };
    assert_eq!(&pong[..], b"60");

    // Stop.
    let http = sim.http.clone();
    let path = format!("/devices/{id}/shell/{sid}/stop");
    let stop = tokio::spawn(async move { http.manage(Method::POST, &path, None).await });
    let m = dev.recv().await;
    assert_eq!(
        (m.hdr.typ.as_str(), m.hdr.sid.as_str()),
        ("stop", sid.as_str())
    );
    dev.send(
        ProtoMsg::new(PROTO_SHELL, shell::STOP, &sid).with_prop("status", shell::STATUS_NORMAL),
    )
    .await;
    let r = stop.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "stopped");
    let r = sim
        .http
        .send(
            Method::POST,
            &format!("/api/sim/devices/{id}/shell/{sid}/input"),
            &[],
            common::sim::full(&b"x"[..]),
        )
        .await;
    assert_eq!(r.status, 409, "input after stop: {}", r.text());
}

#[tokio::test]
async fn refusals_and_timeouts_are_reported() {
    let sim = TestSim::start().await;
    let (id, token) = admitted(&sim).await;
    let mut dev = connect(&sim, Some(&token)).await.expect("connect");
    let http = sim.http.clone();
    let path = format!("/devices/{id}/shell");
    let open = tokio::spawn(async move { http.manage(Method::POST, &path, None).await });
    let new = dev.recv().await;
    // Without terminal size the device uses its configured one.
    assert_eq!(new.int_prop("terminal_width"), None);
    dev.send(
        ProtoMsg::new(PROTO_SHELL, shell::NEW, &new.hdr.sid)
            .with_prop("status", shell::STATUS_ERROR)
            .with_body(&b"too many shells"[..]),
    )
    .await;
    let r = open.await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.error().contains("too many shells"), "{}", r.text());
    let r = sim
        .http
        .manage(Method::GET, &format!("/devices/{id}/shell/nope"), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_new_connection_replaces_the_old_and_big_messages_close_the_link() {
    let sim = TestSim::start().await;
    let (id, token) = admitted(&sim).await;
    let mut first = connect(&sim, Some(&token)).await.expect("connect");
    let mut second = connect(&sim, Some(&token)).await.expect("connect again");
    first.closed().await;
    // The second link works.
    let http = sim.http.clone();
    let path = format!("/devices/{id}/shell");
    let open = tokio::spawn(async move { http.manage(Method::POST, &path, None).await });
    let new = second.recv().await;
    second
        .send(ProtoMsg::new(PROTO_SHELL, shell::NEW, &new.hdr.sid).with_prop("status", 1))
        .await;
    assert_eq!(open.await.unwrap().status, 201);
    // A message over the simulator's cap ends the link and closes its sessions.
    let _ = second
        .ws
        .send(Message::Binary(vec![0u8; 128 * 1024].into()))
        .await;
    second.closed().await;
    let st = common::wait::wait_for(Duration::from_secs(10), "the link to end", || async {
        let st = sim
            .http
            .manage_ok(Method::GET, &format!("/devices/{id}/connect"), None)
            .await;
        (st["connected"] == false).then_some(st)
    })
    .await;
    assert_eq!(st["sessions"][0]["state"], "closed", "{st}");
}
