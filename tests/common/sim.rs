//! Harness for the simulator tests: a sim on port 0 in a temp dir, an HTTPS client that
//! trusts its CA and checks every device API answer against the OpenAPI files, device keys
//! and signatures made with `openssl` (independent of the project's own signer), and
//! artifacts made with `mender-artifact`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use mender_bridge_sim::{Server, ServerHandle, SimConfig};
use serde_json::{json, Value};

use super::openapi::OpenApi;

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|n| match n {}).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body sent with `Transfer-Encoding: chunked` (no size known up front), in `pieces`.
pub fn chunked(data: &[u8], pieces: usize) -> Body {
    let size = data.len().div_ceil(pieces.max(1)).max(1);
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = data
        .chunks(size)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// The `error` text of an error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// HTTPS client for one simulator.
#[derive(Clone)]
pub struct SimHttp {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    pub base: String,
    pub spec: Arc<OpenApi>,
}

impl SimHttp {
    pub fn new(base: &str, ca: &Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).expect("read CA");
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        SimHttp {
            client,
            base: base.to_string(),
            spec: Arc::new(OpenApi::load()),
        }
    }

    /// Sends a request to `path_or_url` (a path is joined to the base URL). Answers of
    /// device API paths are checked against the OpenAPI files (with PROTOCOL.md's
    /// corrections); a mismatch fails the test.
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let url = if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut b = Request::builder().method(method.clone()).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body).expect("request");
        let fut = self.client.request(req);
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), fut)
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            resp.into_body().collect(),
        )
        .await
        .expect("body timed out")
        .expect("body")
        .to_bytes();
        let r = Resp {
            status,
            headers,
            body,
        };
        let path = url
            .strip_prefix(&self.base)
            .unwrap_or(&url)
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        if path.starts_with("/api/devices/") {
            if let Err(e) = self.spec.check_response_protocol(
                method.as_str(),
                &path,
                r.status,
                r.header("content-type").as_deref(),
                &r.body,
            ) {
                panic!(
                    "answer does not match the OpenAPI files: {e}\nbody: {}",
                    r.text()
                );
            }
            assert!(r.header("x-men-requestid").is_some(), "no X-MEN-RequestID");
        }
        r
    }

    /// A device API call with a JSON body (Content-Length) and an optional token.
    pub async fn device(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Resp {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = Vec::new();
        if let Some(b) = &bearer {
            h.push(("authorization", b));
        }
        let body = match body {
            Some(b) => {
                h.push(("content-type", "application/json"));
                full(b.to_vec())
            }
            None => empty(),
        };
        self.send(method, path, &h, body).await
    }

    /// A management API call.
    pub async fn manage(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let (h, b): (&[(&str, &str)], Body) = match body {
            Some(v) => (&[("content-type", "application/json")], full(v.to_string())),
            None => (&[], empty()),
        };
        self.send(method, &format!("/api/sim{path}"), h, b).await
    }

    pub async fn manage_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let r = self.manage(method, path, body).await;
        assert!(
            r.status < 300,
            "management {path}: {} {}",
            r.status,
            r.text()
        );
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    /// Uploads an artifact file; returns its record.
    pub async fn upload(&self, path: &Path) -> Value {
        self.upload_bytes(std::fs::read(path).expect("read artifact"))
            .await
    }

    /// Uploads an artifact given as bytes; returns the artifact record.
    pub async fn upload_bytes(&self, data: Vec<u8>) -> Value {
        let r = self
            .send(
                Method::POST,
                "/api/sim/artifacts",
                &[("content-type", "application/octet-stream")],
                full(data),
            )
            .await;
        assert_eq!(r.status, 201, "upload: {}", r.text());
        r.json()
    }

    /// Replaces the stored bytes of uploaded artifact `id`, unchecked (a tampered object
    /// store: the attack tests).
    pub async fn replace_content(&self, id: &str, data: Vec<u8>) {
        let r = self
            .send(
                Method::PUT,
                &format!("/api/sim/artifacts/{id}/content"),
                &[("content-type", "application/octet-stream")],
                full(data),
            )
            .await;
        assert_eq!(r.status, 200, "replacing the content: {}", r.text());
    }
}

/// The certificates of a PEM file.
pub fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("CA PEM")
}

/// A simulator in a temp dir plus its client.
pub struct TestSim {
    pub handle: ServerHandle,
    pub dir: tempfile::TempDir,
    pub http: SimHttp,
}

impl TestSim {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut SimConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, f).await
    }

    pub async fn start_in(dir: tempfile::TempDir, f: impl FnOnce(&mut SimConfig)) -> Self {
        let mut config = SimConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("state"),
        );
        f(&mut config);
        let handle = Server::start(config).await.expect("start sim");
        let http = SimHttp::new(handle.base_url(), handle.ca_path());
        TestSim { handle, dir, http }
    }

    /// Authenticates `key` with identity `mac`: first 401 (pending), accept through the
    /// management API, then 200 with a token. Returns (device id, token).
    pub async fn admit(&self, key: &TestKey, mac: &str) -> (String, String) {
        let body = auth_body(&json!({ "mac": mac }), key);
        let r = auth(&self.http, &body, &key.sign_b64(&body)).await;
        assert_eq!(r.status, 401, "first auth: {}", r.text());
        assert!(r.error().contains("pending"), "{}", r.text());
        let id = self.device_id(mac).await;
        self.http
            .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
            .await;
        let r = auth(&self.http, &body, &key.sign_b64(&body)).await;
        assert_eq!(r.status, 200, "auth after accept: {}", r.text());
        (id, r.text())
    }

    /// Uploads an artifact given as bytes; returns the artifact record.
    pub async fn upload(&self, artifact: Vec<u8>) -> Value {
        self.http.upload_bytes(artifact).await
    }

    /// Deploys the uploaded artifact named `name` to `device`; returns the deployment id.
    pub async fn deploy(&self, name: &str, device: &str) -> String {
        let v = self
            .http
            .manage_ok(
                Method::POST,
                "/deployments",
                Some(json!({"artifact_name": name, "devices": [device]})),
            )
            .await;
        v["id"].as_str().expect("deployment id").to_string()
    }

    /// The inventory the server holds for `device` (the management API's attribute list).
    pub async fn inventory(&self, device: &str) -> Value {
        self.http
            .manage_ok(Method::GET, &format!("/devices/{device}/inventory"), None)
            .await
    }

    /// The deployment log `device` uploaded for `dep`, one message a line (empty when it
    /// sent none).
    pub async fn deployment_log(&self, dep: &str, device: &str) -> String {
        let v = self
            .http
            .manage_ok(
                Method::GET,
                &format!("/deployments/{dep}/devices/{device}/log"),
                None,
            )
            .await;
        v["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|l| match l["message"].as_str() {
                        Some(text) => text.to_string(),
                        None => l.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// The downloads the simulator served (bytes sent, complete or not).
    pub async fn downloads(&self) -> Vec<Value> {
        self.http
            .manage_ok(Method::GET, "/downloads", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Throttles every download to `bytes_per_sec` (0: stalled) until [`Self::clear_faults`].
    pub async fn throttle(&self, bytes_per_sec: u64) {
        self.http
            .manage_ok(
                Method::POST,
                "/faults/throttle",
                Some(json!({ "bytes_per_sec": bytes_per_sec })),
            )
            .await;
    }

    /// Ends every injected fault.
    pub async fn clear_faults(&self) {
        self.http.manage(Method::DELETE, "/faults", None).await;
    }

    /// The id of the device whose identity has `mac`.
    pub async fn device_id(&self, mac: &str) -> String {
        let devs = self.http.manage_ok(Method::GET, "/devices", None).await;
        devs.as_array()
            .expect("list")
            .iter()
            .find(|d| d["identity_data"]["mac"] == mac)
            .unwrap_or_else(|| panic!("no device with mac {mac}: {devs}"))["id"]
            .as_str()
            .expect("id")
            .to_string()
    }
}

/// Sends an auth request (exact `body` bytes, `sig` header).
pub async fn auth(http: &SimHttp, body: &[u8], sig: &str) -> Resp {
    http.send(
        Method::POST,
        "/api/devices/v1/authentication/auth_requests",
        &[
            ("content-type", "application/json"),
            ("x-men-signature", sig),
        ],
        full(body.to_vec()),
    )
    .await
}

/// The auth body as the Go client writes it: `id_data` a string, tenant token `""`,
/// trailing newline.
pub fn auth_body(identity: &Value, key: &TestKey) -> Vec<u8> {
    let mut b = serde_json::to_vec(&json!({
        "id_data": identity.to_string(),
        "pubkey": key.public_pem,
        "tenant_token": "",
    }))
    .expect("json");
    b.push(b'\n');
    b
}

/// A device key made by openssl.
pub struct TestKey {
    pub kind: &'static str,
    pub private: PathBuf,
    pub public_pem: String,
}

/// `openssl <args>`, nothing on stdin; its stdout as bytes.
fn openssl(args: &[&str]) -> Vec<u8> {
    super::openssl_piped(args, &[])
}

impl TestKey {
    /// `rsa` (3072), `ec` (P-256) or `ed25519`.
    pub fn generate(dir: &Path, kind: &'static str) -> Self {
        let private = dir.join(format!("{kind}-{}.key", std::process::id()));
        let p = private.to_str().expect("utf8");
        match kind {
            "rsa" => openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
                "-out",
                p,
            ]),
            "ec" => openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                p,
            ]),
            "ed25519" => openssl(&["genpkey", "-algorithm", "ed25519", "-out", p]),
            _ => panic!("unknown key kind {kind}"),
        };
        let public_pem = String::from_utf8(openssl(&["pkey", "-in", p, "-pubout"])).expect("pem");
        TestKey {
            kind,
            private,
            public_pem,
        }
    }

    /// The signature the server expects (RSA PKCS#1 v1.5 / ECDSA DER over SHA-256; Ed25519
    /// over the raw body).
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        let p = self.private.to_str().expect("utf8");
        if self.kind == "ed25519" {
            let tmp = self.private.with_extension("msg");
            std::fs::write(&tmp, body).expect("write msg");
            let t = tmp.to_str().expect("utf8");
            openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", p, "-in", t])
        } else {
            super::openssl_piped(&["dgst", "-sha256", "-sign", p, "-binary"], body)
        }
    }

    pub fn sign_b64(&self, body: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sign(body))
    }

    /// The PKCS#1 `RSA PUBLIC KEY` form (RSA keys only).
    pub fn pkcs1_public_pem(&self) -> String {
        let p = self.private.to_str().expect("utf8");
        String::from_utf8(openssl(&["rsa", "-in", p, "-RSAPublicKey_out"])).expect("pem")
    }
}

/// Writes a `single-file` module-image artifact with mender-artifact.
pub fn module_artifact(dir: &Path, name: &str, device_type: &str, payload: &[u8]) -> PathBuf {
    let src = dir.join(format!("{name}.payload"));
    std::fs::write(&src, payload).expect("payload");
    let out = dir.join(format!("{name}.mender"));
    super::run(Command::new("mender-artifact").args([
        "write",
        "module-image",
        "-T",
        "single-file",
        "-n",
        name,
        "-t",
        device_type,
        "-f",
        src.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]));
    out
}

/// The middle segment of a JWT, decoded.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has 3 parts");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&raw).expect("claims JSON")
}
