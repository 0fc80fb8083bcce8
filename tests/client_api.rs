//! API client behaviours the simulator does not provoke, against a tiny scripted HTTP
//! server (plain HTTP on 127.0.0.1:0): PATCH after 405, auth failover on 5xx, one re-auth
//! and one retry on a lasting 401, capped bodies, and what the auth request carries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mender_api::{Attribute, DeploymentStatus};
use mender_bridge::client::{Client, ClientConfig, ClientError, InventoryOutcome};
use mender_bridge::keys::{DeviceKey, KeyType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Req) -> (u16, Vec<u8>) + Send + Sync>;

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (h, s) = (handler.clone(), s.clone());
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_string();
                    let path = first.next().unwrap_or("").to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while data.len() < head_end + len {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    }
                    let req = Req {
                        method,
                        path,
                        headers,
                        body: data[head_end..head_end + len].to_vec(),
                    };
                    let (status, body) = h(&req);
                    s.lock().unwrap().push(req);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                });
            }
        });
        Fake { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

const AUTH: &str = "/api/devices/v1/authentication/auth_requests";
const INVENTORY: &str = "/api/devices/v1/inventory/device/attributes";

fn client(servers: Vec<String>) -> Client {
    let mut cfg = ClientConfig {
        servers,
        tenant_token: Some("tenant-tok".into()),
        ..ClientConfig::default()
    };
    cfg.timeouts.request = Duration::from_secs(5);
    let mut id = serde_json::Map::new();
    id.insert("mac".into(), "02:00:00:00:00:01".into());
    id.insert("serial".into(), "SN1".into());
    Client::new(cfg, DeviceKey::generate(KeyType::Ed25519).unwrap(), &id).unwrap()
}

#[tokio::test]
async fn inventory_falls_back_to_patch_on_405() {
    let fake = Fake::start(Arc::new(|r: &Req| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", AUTH) => (200, b"h.p.s".to_vec()),
            ("PUT", INVENTORY) => (405, Vec::new()),
            ("PATCH", INVENTORY) => (200, Vec::new()),
            _ => (404, Vec::new()),
        }
    }))
    .await;
    let c = client(vec![fake.url()]);
    let out = c.send_inventory(&[Attribute::new("a", "1")]).await.unwrap();
    assert_eq!(out, InventoryOutcome::Sent { patch: true });
    let seen = fake.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            format!("POST {AUTH}"),
            format!("PUT {INVENTORY}"),
            format!("PATCH {INVENTORY}")
        ]
    );
    for r in &seen[1..] {
        assert_eq!(r.header("authorization"), Some("Bearer h.p.s"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, br#"[{"name":"a","value":"1"}]"#);
    }
}

#[tokio::test]
async fn auth_request_is_signed_json_without_a_token() {
    let fake = Fake::start(Arc::new(|_: &Req| {
        (
            401,
            br#"{"error":"dev auth: unauthorized","request_id":"rq-1"}"#.to_vec(),
        )
    }))
    .await;
    let c = client(vec![fake.url()]);
    let e = c.authenticate().await.unwrap_err();
    match &e {
        ClientError::AuthRejected { message, .. } => {
            assert_eq!(message.request_id.as_deref(), Some("rq-1"));
        }
        other => panic!("{other}"),
    }
    let r = &fake.seen()[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-men-signature").is_some());
    assert!(r.header("authorization").is_none());
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["id_data"], r#"{"mac":"02:00:00:00:00:01","serial":"SN1"}"#,
        "id_data is a string holding the sorted identity"
    );
    assert_eq!(body["tenant_token"], "tenant-tok");
    assert!(body["pubkey"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(!r.body.ends_with(b"\n"));
    // The error names the call, never the tenant token.
    assert!(!e.to_string().contains("tenant-tok"), "{e}");
}

#[tokio::test]
async fn auth_fails_over_on_5xx_and_later_calls_use_that_server() {
    let bad = Fake::start(Arc::new(|_: &Req| (500, Vec::new()))).await;
    let good = Fake::start(Arc::new(|r: &Req| match r.path.as_str() {
        AUTH => (200, b"g.o.od".to_vec()),
        _ => (204, Vec::new()),
    }))
    .await;
    let c = client(vec![bad.url(), good.url()]);
    c.report_status("dep-1", DeploymentStatus::Downloading, None)
        .await
        .unwrap();
    assert_eq!(bad.seen().len(), 1);
    let g = good.seen();
    assert_eq!(g.len(), 2);
    assert_eq!(
        g[1].path,
        "/api/devices/v1/deployments/device/deployments/dep-1/status"
    );
    assert_eq!(c.current_server().await, Some(good.url()));
}

#[tokio::test]
async fn a_lasting_401_means_one_reauth_and_one_retry() {
    let fake = Fake::start(Arc::new(|r: &Req| match r.path.as_str() {
        AUTH => (200, b"t.o.k".to_vec()),
        _ => (401, br#"{"error":"token revoked"}"#.to_vec()),
    }))
    .await;
    let c = client(vec![fake.url()]);
    let e = c
        .report_status("d", DeploymentStatus::Installing, Some("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.to_string().contains("token revoked"), "{e}");
    let paths: Vec<_> = fake.seen().iter().map(|r| r.path.clone()).collect();
    let status = "/api/devices/v1/deployments/device/deployments/d/status".to_string();
    assert_eq!(
        paths,
        [AUTH.to_string(), status.clone(), AUTH.to_string(), status]
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let fake = Fake::start(Arc::new(|r: &Req| match r.path.as_str() {
        AUTH => (200, vec![b'a'; 20 * 1024]),
        _ => (204, Vec::new()),
    }))
    .await;
    let c = client(vec![fake.url()]);
    let e = c.authenticate().await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { .. }), "{e}");

    let fake = Fake::start(Arc::new(|r: &Req| match r.path.as_str() {
        AUTH => (200, b"a.b.c".to_vec()),
        _ => (200, vec![b'{'; 2 * 1024 * 1024]),
    }))
    .await;
    let c = client(vec![fake.url()]);
    let p = mender_api::DeviceProvides {
        artifact_name: "a".into(),
        device_type: "d".into(),
        provides: Default::default(),
    };
    let e = c.check_update(&p).await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { .. }), "{e}");
}
