//! The simulator's inventory, deployment and download routes against PROTOCOL.md §2–3;
//! every device API answer is checked against the OpenAPI files by the harness.
#![cfg(feature = "sim")]

mod common;

use common::sim::{full, module_artifact, Resp, TestKey, TestSim};
use hyper::Method;
use serde_json::{json, Value};

const INVENTORY: &str = "/api/devices/v1/inventory/device/attributes";
const NEXT_V1: &str = "/api/devices/v1/deployments/device/deployments/next";
const NEXT_V2: &str = "/api/devices/v2/deployments/device/deployments/next";

fn status_path(dep: &str) -> String {
    format!("/api/devices/v1/deployments/device/deployments/{dep}/status")
}

fn log_path(dep: &str) -> String {
    format!("/api/devices/v1/deployments/device/deployments/{dep}/log")
}

/// A sim with one accepted device, artifact `release-2` for `test-dev` uploaded.
struct World {
    sim: TestSim,
    device: String,
    token: String,
    artifact: Vec<u8>,
}

async fn world_with(f: impl FnOnce(&mut mender_bridge_sim::SimConfig)) -> World {
    let sim = TestSim::start_with(f).await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    let (device, token) = sim.admit(&key, "02:00:00:00:00:01").await;
    // Incompressible, so the artifact is about as large as the payload.
    let payload = common::image(200_000, 0x9e37_79b9_7f4a_7c15);
    let path = module_artifact(sim.dir.path(), "release-2", "test-dev", &payload);
    let rec = sim.http.upload(&path).await;
    assert_eq!(rec["name"], "release-2");
    assert_eq!(rec["device_types"], json!(["test-dev"]));
    let artifact = std::fs::read(&path).unwrap();
    World {
        sim,
        device,
        token,
        artifact,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

impl World {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let b = body.map(|v| serde_json::to_vec(&v).unwrap());
        self.sim
            .http
            .device(method, path, Some(&self.token), b.as_deref())
            .await
    }

    async fn deploy(&self) -> String {
        self.sim.deploy("release-2", &self.device).await
    }

    async fn next_get(&self, name: &str, dtype: &str) -> Resp {
        let q = format!("{NEXT_V1}?artifact_name={name}&device_type={dtype}");
        self.sim
            .http
            .device(Method::GET, &q, Some(&self.token), None)
            .await
    }

    async fn history(&self, dep: &str) -> Value {
        self.sim
            .http
            .manage_ok(
                Method::GET,
                &format!("/deployments/{dep}/devices/{}", self.device),
                None,
            )
            .await
    }

    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.sim
            .http
            .send(Method::GET, url, headers, full(Vec::new()))
            .await
    }
}

#[tokio::test]
async fn inventory_put_patch_values_and_limit() {
    let w = world().await;
    let r = w.call(Method::PUT, INVENTORY, Some(json!([
        {"name": "a", "value": "x"}, {"name": "n", "value": 1.5}, {"name": "ips", "value": ["1", "2"]},
        {"name": "nums", "value": [1, 2]}, {"name": "empty", "value": [], "description": "d"}
    ]))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let r = w
        .call(
            Method::PATCH,
            INVENTORY,
            Some(json!([{"name": "a", "value": "y"}, {"name": "b", "value": "z"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    let inv = w.sim.inventory(&w.device).await;
    let names: Vec<&str> = inv
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "n", "ips", "nums", "empty", "b"]);
    assert_eq!(inv[0]["value"], "y");
    // PUT replaces.
    w.call(
        Method::PUT,
        INVENTORY,
        Some(json!([{"name": "only", "value": "1"}])),
    )
    .await;
    let inv = w.sim.inventory(&w.device).await;
    assert_eq!(inv.as_array().unwrap().len(), 1);
    // Invalid values.
    for bad in [
        json!([{"name": "a", "value": null}]),
        json!([{"name": "a", "value": true}]),
        json!([{"name": "a", "value": {"k": 1}}]),
        json!([{"name": "a", "value": ["x", 1]}]),
        json!([{"name": "", "value": "x"}]),
        json!({"name": "a", "value": "x"}),
    ] {
        let r = w.call(Method::PUT, INVENTORY, Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // 100 attributes fit, 101 do not (also when PATCH would grow past the limit).
    let many: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("k{i}"), "value": "v"}))
        .collect();
    assert_eq!(
        w.call(Method::PUT, INVENTORY, Some(json!(many)))
            .await
            .status,
        200
    );
    let r = w
        .call(
            Method::PATCH,
            INVENTORY,
            Some(json!([{"name": "k100", "value": "v"}])),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("above the limit"), "{}", r.text());
    // No token, bad token.
    let r = w
        .sim
        .http
        .device(Method::PUT, INVENTORY, None, Some(b"[]"))
        .await;
    assert_eq!(r.status, 401);
    let r = w
        .sim
        .http
        .device(Method::PUT, INVENTORY, Some("a.b.c"), Some(b"[]"))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn next_forms_204_400_and_v2_switch() {
    let w = world().await;
    let r = w.next_get("release-1", "test-dev").await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = w.next_get("", "test-dev").await;
    assert_eq!(r.status, 400, "empty name is 400, not 'no update'");
    let r = w.next_get("release-1", "").await;
    assert_eq!(r.status, 400);
    let r = w.call(Method::POST, NEXT_V1, Some(json!({"artifact_name": "release-1", "device_type": "test-dev", "rootfs-image.x.version": "1"}))).await;
    assert_eq!(r.status, 204);
    let r = w.call(Method::POST, NEXT_V2, Some(json!({"device_provides": {"artifact_name": "release-1", "device_type": "test-dev"}, "update_control_map": true}))).await;
    assert_eq!(r.status, 204);
    let r = w
        .call(
            Method::POST,
            NEXT_V2,
            Some(json!({"device_provides": {"artifact_name": "", "device_type": "test-dev"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = w
        .sim
        .http
        .device(
            Method::GET,
            &format!("{NEXT_V1}?artifact_name=a&device_type=b"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    // Switched off: 404, as the open-source server.
    w.sim
        .http
        .manage_ok(Method::PUT, "/settings", Some(json!({"next_v2": false})))
        .await;
    let r = w.call(Method::POST, NEXT_V2, Some(json!({"device_provides": {"artifact_name": "release-1", "device_type": "test-dev"}}))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn next_v2_off_by_config() {
    let w = world_with(|c| c.next_v2 = Some(false)).await;
    let r = w.call(Method::POST, NEXT_V2, Some(json!({"device_provides": {"artifact_name": "release-1", "device_type": "test-dev"}}))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn deployment_flow_statuses_and_history() {
    let w = world().await;
    let dep = w.deploy().await;
    let r = w.next_get("release-1", "test-dev").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let i = r.json();
    assert_eq!(i["id"], dep.as_str());
    assert_eq!(i["artifact"]["artifact_name"], "release-2");
    assert_eq!(
        i["artifact"]["device_types_compatible"],
        json!(["test-dev"])
    );
    assert!(
        mender_api::rfc3339::parse(i["artifact"]["source"]["expire"].as_str().unwrap()).is_some()
    );
    // Polling again with the same data gives the same deployment (fresh link).
    let r2 = w
        .call(
            Method::POST,
            NEXT_V1,
            Some(json!({"artifact_name": "release-1", "device_type": "test-dev"})),
        )
        .await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.json()["id"], dep.as_str());
    // Every accepted value; substate up to 200 characters.
    for s in [
        "downloading",
        "pause_before_installing",
        "installing",
        "pause_before_rebooting",
        "rebooting",
        "pause_before_committing",
    ] {
        let r = w
            .call(
                Method::PUT,
                &status_path(&dep),
                Some(json!({"status": s, "substate": "x".repeat(200)})),
            )
            .await;
        assert_eq!(r.status, 204, "{s}: {}", r.text());
    }
    for bad in [
        json!({"status": "pending"}),
        json!({"status": "aborted"}),
        json!({"status": "noartifact"}),
        json!({"status": "Success"}),
        json!({}),
        json!({"status": "installing", "substate": "x".repeat(201)}),
    ] {
        let r = w
            .call(Method::PUT, &status_path(&dep), Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = w
        .call(
            Method::PUT,
            &status_path("no-such-deployment"),
            Some(json!({"status": "installing"})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = w
        .call(
            Method::PUT,
            &status_path(&dep),
            Some(json!({"status": "success", "substate": "done"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let h = w.history(&dep).await;
    assert_eq!(h["status"], "success");
    assert!(h["finished"].is_string());
    let hist: Vec<(String, Option<String>)> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap().into(),
                e["substate"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(hist.first().unwrap().0, "pending");
    assert_eq!(
        hist.last().unwrap(),
        &("success".to_string(), Some("done".to_string()))
    );
    assert_eq!(hist.len(), 8);
    // A finished deployment is not offered again.
    assert_eq!(w.next_get("release-2", "test-dev").await.status, 204);
    let all = w
        .sim
        .http
        .manage_ok(Method::GET, &format!("/deployments/{dep}"), None)
        .await;
    assert_eq!(all["status"], "finished");
}

#[tokio::test]
async fn abort_gives_409_and_conflicting_poll_fails_deployment() {
    let w = world().await;
    let dep = w.deploy().await;
    assert_eq!(w.next_get("release-1", "test-dev").await.status, 200);
    assert_eq!(
        w.call(
            Method::PUT,
            &status_path(&dep),
            Some(json!({"status": "downloading"}))
        )
        .await
        .status,
        204
    );
    w.sim
        .http
        .manage_ok(Method::POST, &format!("/deployments/{dep}/abort"), None)
        .await;
    let r = w
        .call(
            Method::PUT,
            &status_path(&dep),
            Some(json!({"status": "installing"})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error().contains("aborted"));
    let r = w
        .call(
            Method::PUT,
            &status_path(&dep),
            Some(json!({"status": "failure"})),
        )
        .await;
    assert_eq!(r.status, 409);
    // The log can still be uploaded.
    let log = json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "error", "message": "aborted"}]});
    assert_eq!(
        w.call(Method::PUT, &log_path(&dep), Some(log)).await.status,
        204
    );
    assert_eq!(w.history(&dep).await["status"], "aborted");

    // Another deployment: the device reports different data for the same active one: 409.
    let dep2 = w.deploy().await;
    assert_eq!(w.next_get("release-1", "test-dev").await.status, 200);
    let r = w.next_get("release-0", "test-dev").await;
    assert_eq!(r.status, 409, "{}", r.text());
    let h = w.history(&dep2).await;
    assert_eq!(h["status"], "failure");
    assert!(h["history"].as_array().unwrap().last().unwrap()["substate"]
        .as_str()
        .unwrap()
        .contains("release-0"));
}

#[tokio::test]
async fn already_installed_and_noartifact_are_decided_by_the_server() {
    let w = world().await;
    let dep = w.deploy().await;
    let r = w.next_get("release-2", "test-dev").await;
    assert_eq!(r.status, 204);
    assert_eq!(w.history(&dep).await["status"], "already-installed");
    let dep = w.deploy().await;
    let r = w.next_get("release-1", "other-dev").await;
    assert_eq!(r.status, 204);
    assert_eq!(w.history(&dep).await["status"], "noartifact");
}

#[tokio::test]
async fn log_validation() {
    let w = world().await;
    let dep = w.deploy().await;
    let ok = json!({"messages": [{"timestamp": "2026-03-11T13:03:17.063493443Z", "level": "info", "message": "m"}]});
    assert_eq!(
        w.call(Method::PUT, &log_path(&dep), Some(ok)).await.status,
        204
    );
    let stored = w
        .sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{}/log", w.device),
            None,
        )
        .await;
    assert_eq!(stored["messages"][0]["message"], "m");
    for bad in [
        json!({"messages": []}),
        json!({}),
        json!({"messages": [{"timestamp": "yesterday", "level": "info", "message": "m"}]}),
        json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "", "message": "m"}]}),
        json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "info", "message": ""}]}),
        json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "info"}]}),
    ] {
        let r = w
            .call(Method::PUT, &log_path(&dep), Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = w.call(Method::PUT, &log_path("nope"), Some(json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "info", "message": "m"}]}))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn downloads_ranges_expiry_and_faults() {
    let w = world().await;
    w.deploy().await;
    let i = w.next_get("release-1", "test-dev").await.json();
    let uri = i["artifact"]["source"]["uri"].as_str().unwrap().to_string();
    let total = w.artifact.len();
    // Whole file, no Authorization.
    let r = w.get(&uri, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(total.to_string()));
    assert_eq!(&r.body[..], &w.artifact[..]);
    // Ranges.
    let r = w.get(&uri, &[("range", "bytes=1000-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-{}/{total}", total - 1))
    );
    assert_eq!(r.header("content-length"), Some((total - 1000).to_string()));
    assert_eq!(&r.body[..], &w.artifact[1000..]);
    let r = w.get(&uri, &[("range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{total}"))
    );
    assert_eq!(&r.body[..], &w.artifact[10..20]);
    let r = w.get(&uri, &[("range", &format!("bytes={total}-"))]).await;
    assert_eq!(r.status, 416);
    // Authorization is accepted but recorded.
    let r = w.get(&uri, &[("authorization", "Bearer x")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        w.history(i["id"].as_str().unwrap()).await["download_authorization_seen"],
        true
    );
    // Tampered link.
    let r = w.get(&uri.replace("expire=", "expire=1"), &[]).await;
    assert_eq!(r.status, 403);
    // A cut at byte 5000: the body ends early; the next request (resume) is whole again.
    w.sim
        .http
        .manage_ok(
            Method::POST,
            "/faults/cut",
            Some(json!({"offsets": [5000]})),
        )
        .await;
    // The harness client fails the test on a broken body; count the bytes with a raw one.
    let cut = raw_get_len(&w, &uri).await;
    assert_eq!(cut, Err(5000));
    let r = w.get(&uri, &[("range", "bytes=5000-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(&r.body[..], &w.artifact[5000..]);
    let downloads = w.sim.http.manage_ok(Method::GET, "/downloads", None).await;
    let d = downloads.as_array().unwrap();
    let cut_rec = d.iter().find(|r| r["cut_at"] == 5000).unwrap();
    assert_eq!(cut_rec["bytes_sent"], 5000);
    assert_eq!(cut_rec["complete"], false);
    assert_eq!(d.last().unwrap()["complete"], true);
    // Injected 5xx on the download route.
    w.sim
        .http
        .manage_ok(
            Method::POST,
            "/faults/fail",
            Some(json!({"route": "download", "count": 1, "status": 503})),
        )
        .await;
    assert_eq!(w.get(&uri, &[]).await.status, 503);
    assert_eq!(w.get(&uri, &[]).await.status, 200);
    // Expire all links: 403; a fresh poll gives a working link.
    w.sim
        .http
        .manage_ok(Method::POST, "/links/expire", None)
        .await;
    assert_eq!(w.get(&uri, &[]).await.status, 403);
    let fresh = w.next_get("release-1", "test-dev").await.json();
    let fresh_uri = fresh["artifact"]["source"]["uri"].as_str().unwrap();
    assert_eq!(w.get(fresh_uri, &[]).await.status, 200);
}

/// `PUT /api/sim/artifacts/{id}/content`: the stored bytes are replaced unchecked (not an
/// artifact at all here), the record keeps the uploaded name and device types with the new
/// size and SHA-256 and `tampered`; the presigned download serves the new bytes with a
/// correct Content-Length and ranges; an unknown id is 404.
#[tokio::test]
async fn tampered_content_is_served_as_is() {
    let w = world().await;
    let list = w.sim.http.manage_ok(Method::GET, "/artifacts", None).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["tampered"], false);
    let crafted: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let r = w
        .sim
        .http
        .send(
            Method::PUT,
            &format!("/api/sim/artifacts/{id}/content"),
            &[("content-type", "application/octet-stream")],
            common::sim::chunked(&crafted, 7),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = r.json();
    assert_eq!(rec["id"], id.as_str());
    assert_eq!(rec["name"], "release-2");
    assert_eq!(rec["device_types"], json!(["test-dev"]));
    assert_eq!(rec["size"], crafted.len());
    assert_eq!(rec["sha256"], common::sha256_hex(&crafted));
    assert_eq!(rec["tampered"], true);
    let list = w.sim.http.manage_ok(Method::GET, "/artifacts", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "no new artifact: {list}");
    assert_eq!(list[0], rec);

    // A deployment of the name hands out a link that serves the crafted bytes.
    w.deploy().await;
    let i = w.next_get("release-1", "test-dev").await.json();
    let uri = i["artifact"]["source"]["uri"].as_str().unwrap().to_string();
    let r = w.get(&uri, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(crafted.len().to_string()));
    assert!(r.body[..] == crafted[..], "the crafted bytes");
    let r = w.get(&uri, &[("range", "bytes=65000-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!(
            "bytes 65000-{}/{}",
            crafted.len() - 1,
            crafted.len()
        ))
    );
    assert!(r.body[..] == crafted[65000..]);

    // Empty content (an artifact cut to nothing) is allowed too.
    let r = w
        .sim
        .http
        .send(
            Method::PUT,
            &format!("/api/sim/artifacts/{id}/content"),
            &[],
            full(Vec::new()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["size"], 0);
    let r = w.get(&uri, &[]).await;
    assert_eq!((r.status, r.body.len()), (200, 0));

    let r = w
        .sim
        .http
        .send(
            Method::PUT,
            "/api/sim/artifacts/nope/content",
            &[],
            full(b"x".to_vec()),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let leftovers: Vec<_> = std::fs::read_dir(w.sim.dir.path().join("state/artifacts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[tokio::test]
async fn short_link_lifetime_expires() {
    let w = world_with(|c| c.link_lifetime_secs = Some(3)).await;
    w.deploy().await;
    let i = w.next_get("release-1", "test-dev").await.json();
    let uri = i["artifact"]["source"]["uri"].as_str().unwrap().to_string();
    assert_eq!(w.get(&uri, &[]).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let r = w.get(&uri, &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.error().contains("expired"));
}

#[tokio::test]
async fn upload_refuses_what_the_reader_refuses() {
    let sim = TestSim::start().await;
    let r = sim
        .http
        .send(
            Method::POST,
            "/api/sim/artifacts",
            &[],
            full(b"not an artifact".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("not a valid artifact"), "{}", r.text());
    let list = sim.http.manage_ok(Method::GET, "/artifacts", None).await;
    assert_eq!(list, json!([]));
    // Deployments need an uploaded artifact and known devices.
    let r = sim
        .http
        .manage(
            Method::POST,
            "/deployments",
            Some(json!({"artifact_name": "nope", "all": true})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn throttle_slows_downloads() {
    let w = world().await;
    w.deploy().await;
    let uri = w.next_get("release-1", "test-dev").await.json()["artifact"]["source"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    w.sim
        .http
        .manage_ok(
            Method::POST,
            "/faults/throttle",
            Some(json!({"bytes_per_sec": 100_000})),
        )
        .await;
    let t = std::time::Instant::now();
    let r = w.get(&uri, &[("range", "bytes=0-49999")]).await;
    assert_eq!(r.body.len(), 50_000);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
}

/// Reads a download over a plain TLS stream, returning the body length or, when the
/// connection drops early, `Err(bytes received)`.
async fn raw_get_len(w: &World, uri: &str) -> Result<usize, usize> {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioExecutor;
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(w.sim.handle.ca_path()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let c: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let resp = c.get(uri.parse().unwrap()).await.unwrap();
    let mut body = resp.into_body();
    let mut n = 0;
    loop {
        match body.frame().await {
            None => return Ok(n),
            Some(Ok(f)) => n += f.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => return Err(n),
        }
    }
}

#[tokio::test]
async fn state_survives_a_restart() {
    let w = world().await;
    let dep = w.deploy().await;
    assert_eq!(w.next_get("release-1", "test-dev").await.status, 200);
    let World {
        sim, token, device, ..
    } = w;
    let ca_before = std::fs::read(sim.handle.ca_path()).unwrap();
    let common::sim::TestSim { handle, dir, .. } = sim;
    handle.shutdown().await;
    let sim = TestSim::start_in(dir, |_| {}).await;
    assert_eq!(
        std::fs::read(sim.handle.ca_path()).unwrap(),
        ca_before,
        "CA reused"
    );
    // The token (signed with the persisted key) still works; the deployment is still there.
    let r = sim
        .http
        .device(
            Method::GET,
            &format!("{NEXT_V1}?artifact_name=release-1&device_type=test-dev"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], dep.as_str());
    let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
    assert_eq!(devs[0]["id"], device.as_str());
    assert_eq!(devs[0]["status"], "accepted");
}

#[test]
fn openapi_checker_catches_mismatches() {
    let spec = common::openapi::OpenApi::load();
    let ok = br#"{"id":"d","artifact":{"artifact_name":"a","source":{"uri":"https://x","expire":"2026-01-01T00:00:00Z"},"device_types_compatible":["t"]}}"#;
    assert!(spec
        .check_response("GET", NEXT_V1, 200, Some("application/json"), ok)
        .is_ok());
    let missing =
        br#"{"id":"d","artifact":{"source":{"uri":"https://x"},"device_types_compatible":["t"]}}"#;
    assert!(spec
        .check_response("GET", NEXT_V1, 200, Some("application/json"), missing)
        .is_err());
    let bad_time = br#"{"id":"d","artifact":{"artifact_name":"a","source":{"uri":"u","expire":"soon"},"device_types_compatible":["t"]}}"#;
    assert!(spec
        .check_response("GET", NEXT_V1, 200, Some("application/json"), bad_time)
        .is_err());
    assert!(spec.check_response("GET", NEXT_V1, 204, None, b"").is_ok());
    assert!(spec
        .check_response("GET", NEXT_V1, 204, None, b"{}")
        .is_err());
    assert!(spec.check_response("GET", NEXT_V1, 418, None, b"").is_err());
    // Strict: POST next and 415 are undocumented; with PROTOCOL.md's corrections they pass.
    assert!(spec
        .check_response("POST", NEXT_V1, 204, None, b"")
        .is_err());
    assert!(spec
        .check_response_protocol("POST", NEXT_V2, 204, None, b"")
        .is_ok());
    let err = br#"{"error":"x","request_id":"r"}"#;
    assert!(spec
        .check_response("PUT", INVENTORY, 415, Some("application/json"), err)
        .is_err());
    assert!(spec
        .check_response_protocol("PUT", INVENTORY, 415, Some("application/json"), err)
        .is_ok());
    assert!(spec
        .check_response_protocol("PUT", INVENTORY, 415, Some("application/json"), b"{}")
        .is_err());
    // Requests too.
    assert!(spec
        .check_request("PUT", INVENTORY, br#"[{"name":"a","value":["x","y"]}]"#)
        .is_ok());
    assert!(spec
        .check_request("PUT", INVENTORY, br#"[{"name":"a","value":true}]"#)
        .is_err());
    assert!(spec
        .check_request("PUT", &status_path("d"), br#"{"status":"aborted"}"#)
        .is_err());
}

#[tokio::test]
async fn in_process_management_through_the_handle() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ec");
    let body = common::sim::auth_body(&json!({"mac": "inproc"}), &key);
    assert_eq!(
        common::sim::auth(&sim.http, &body, &key.sign_b64(&body))
            .await
            .status,
        401
    );
    let core = sim.handle.sim();
    let id = core.snapshot().devices.keys().next().unwrap().clone();
    core.accept(&id, None).unwrap();
    let r = common::sim::auth(&sim.http, &body, &key.sign_b64(&body)).await;
    assert_eq!(r.status, 200);
    let token = r.text();
    let path = module_artifact(sim.dir.path(), "rel-x", "dev-x", b"payload");
    let rec = sim.handle.upload_artifact(&path).await.unwrap();
    assert_eq!(rec.name, "rel-x");
    assert_eq!(rec.device_types, ["dev-x"]);
    let dep = core.create_deployment("", "rel-x", &[], true).unwrap();
    let q = format!("{NEXT_V1}?artifact_name=rel-0&device_type=dev-x");
    let r = sim.http.device(Method::GET, &q, Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], dep.as_str());
    assert!(sim.handle.addr().port() > 0);
    assert!(sim.handle.base_url().starts_with("https://127.0.0.1:"));
}
