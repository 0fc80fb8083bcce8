//! Our API client (`mender_bridge::client`) against the simulator, in process, over HTTPS
//! with the sim's generated CA as `ServerCertificate`: auth with each key type (pending →
//! accepted), token expiry → re-auth, server failover, inventory, v2 → v1 fallback, status
//! with substate, log upload, download resume across three cuts, 403 → fresh URL, 409.
#![cfg(feature = "sim")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sim::TestSim;
use common::{image, DEVICE_TYPE};
use hyper::Method;
use mender_api::{Attribute, DeploymentStatus, DeviceProvides, LogMessage};
use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
use mender_artifact::{ArtifactReader, Compression, ReadOptions};
use mender_bridge::client::{
    Backoff, Client, ClientConfig, ClientError, DownloadConfig, InventoryOutcome, RefreshUrl,
};
use mender_bridge::keys::{DeviceKey, KeyType};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

fn config(sim: &TestSim) -> ClientConfig {
    let mut c = ClientConfig::for_server(sim.handle.base_url());
    c.tls.server_certificate = Some(sim.handle.ca_path().to_path_buf());
    c.timeouts.request = Duration::from_secs(10);
    c.auth_retry = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        repeats: 1,
        max_tries: Some(100),
    };
    c.download = DownloadConfig {
        response_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
        max_resume_attempts: 6,
        resume_backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            repeats: 1,
            max_tries: None,
        },
        max_url_refreshes: 2,
    };
    c
}

fn identity(mac: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("mac".into(), mac.into());
    m
}

fn client(sim: &TestSim, kind: KeyType, mac: &str) -> Client {
    Client::new(
        config(sim),
        DeviceKey::generate(kind).unwrap(),
        &identity(mac),
    )
    .unwrap()
}

/// Authenticates (pending), accepts the device through the management API, authenticates
/// again. Returns the device id.
async fn admit(sim: &TestSim, c: &Client, mac: &str) -> String {
    let e = c.authenticate().await.unwrap_err();
    assert!(matches!(e, ClientError::AuthRejected { .. }), "{e}");
    assert!(e.is_transient());
    let id = sim.device_id(mac).await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    c.authenticate().await.unwrap();
    id
}

fn provides(name: &str) -> DeviceProvides {
    DeviceProvides {
        artifact_name: name.into(),
        device_type: DEVICE_TYPE.into(),
        provides: [("rootfs-image.version".to_string(), name.to_string())].into(),
    }
}

/// Writes an uncompressed rootfs artifact named `name` with `data` as its image, uploads
/// it, and returns its size.
async fn upload_artifact(sim: &TestSim, name: &str, data: &[u8]) -> u64 {
    let spec = ArtifactSpec::rootfs(name, [DEVICE_TYPE]);
    let opts = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let file = PayloadFile::new(
        "rootfs.img",
        data.len() as u64,
        std::io::Cursor::new(data.to_vec()),
    );
    let mut out = Vec::new();
    write_artifact(&mut out, &spec, vec![file], &opts)
        .await
        .unwrap();
    let size = out.len() as u64;
    sim.upload(out).await;
    size
}

async fn requests(sim: &TestSim) -> Vec<Value> {
    sim.http
        .manage_ok(Method::GET, "/requests", None)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Checks every request body our client sent (as the sim recorded it) against the server's
/// OpenAPI files; returns how many were checked. POST next is undocumented there
/// (PROTOCOL.md §3.1), so the sim's own parser is its check.
async fn assert_requests_match_spec(sim: &TestSim) -> usize {
    let mut checked = 0;
    for r in requests(sim).await {
        let (Some(method), Some(path)) = (r["method"].as_str(), r["path"].as_str()) else {
            continue;
        };
        if r["body"].is_null() || path.ends_with("/deployments/next") {
            continue;
        }
        let body = serde_json::to_vec(&r["body"]).unwrap();
        sim.http
            .spec
            .check_request(method, path, &body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        checked += 1;
    }
    checked
}

#[tokio::test]
async fn each_key_type_pending_then_accepted() {
    let sim = TestSim::start().await;
    for (i, kind) in [KeyType::Ed25519, KeyType::P256, KeyType::Rsa3072]
        .into_iter()
        .enumerate()
    {
        let mac = format!("02:00:00:00:01:0{i}");
        let c = client(&sim, kind, &mac);
        let id = admit(&sim, &c, &mac).await;
        assert!(c.is_authenticated().await);
        let dev = sim
            .http
            .manage_ok(Method::GET, &format!("/devices/{id}"), None)
            .await;
        assert_eq!(dev["status"], "accepted", "{kind:?}");
        // The token works.
        let out = c
            .send_inventory(&[Attribute::new("device_type", DEVICE_TYPE)])
            .await
            .unwrap();
        assert_eq!(out, InventoryOutcome::Sent { patch: false });
    }
    // Every auth request carried the JSON content type and a signature, never a token.
    for r in requests(&sim).await {
        if r["path"] == "/api/devices/v1/authentication/auth_requests" {
            assert_eq!(r["content_type"], "application/json");
            assert_eq!(r["authorization"], false);
            assert_eq!(r["chunked"], false);
        }
    }
}

#[tokio::test]
async fn backoff_helper_waits_until_accepted() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:02:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.authenticate_with_backoff().await })
    };
    // Wait for the pending device to appear, then accept it.
    let id = loop {
        let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
        if let Some(d) = devs
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["identity_data"]["mac"] == mac)
        {
            break d["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(c.is_authenticated().await);
    let auths = requests(&sim)
        .await
        .iter()
        .filter(|r| r["path"] == "/api/devices/v1/authentication/auth_requests")
        .count();
    assert!(auths >= 2, "retried while pending: {auths}");
    // One key, one auth set: retrying never made a new key.
    let dev = sim
        .http
        .manage_ok(Method::GET, &format!("/devices/{id}"), None)
        .await;
    assert_eq!(dev["auth_sets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn expired_token_is_renewed_once_and_the_call_retried() {
    let sim = TestSim::start_with(|c| c.jwt_lifetime_secs = Some(1)).await;
    let mac = "02:00:00:00:03:01";
    let c = client(&sim, KeyType::P256, mac);
    admit(&sim, &c, mac).await;
    c.send_inventory(&[Attribute::new("a", "1")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    sim.http.manage_ok(Method::DELETE, "/requests", None).await;
    let out = c.send_inventory(&[Attribute::new("a", "2")]).await.unwrap();
    assert_eq!(out, InventoryOutcome::Sent { patch: false });
    let seen: Vec<(String, u64)> = requests(&sim)
        .await
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let inv = "/api/devices/v1/inventory/device/attributes".to_string();
    let auth = "/api/devices/v1/authentication/auth_requests".to_string();
    assert_eq!(
        seen,
        vec![(inv.clone(), 401), (auth, 200), (inv, 200)],
        "expired token → one auth → one retry"
    );
}

#[tokio::test]
async fn auth_fails_over_to_the_next_server() {
    let sim = TestSim::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = config(&sim);
    cfg.servers = vec![format!("https://{dead}"), sim.handle.base_url().to_string()];
    let mac = "02:00:00:00:04:01";
    let c = Client::new(
        cfg,
        DeviceKey::generate(KeyType::Ed25519).unwrap(),
        &identity(mac),
    )
    .unwrap();
    let e = c.authenticate().await.unwrap_err();
    // The sim's 401 wins over the dead server's connect error.
    assert!(matches!(e, ClientError::AuthRejected { .. }), "{e}");
    let id = sim.device_id(mac).await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    c.authenticate().await.unwrap();
    assert_eq!(
        c.current_server().await.as_deref(),
        Some(sim.handle.base_url())
    );
    c.send_inventory(&[Attribute::new("a", "1")]).await.unwrap();
}

#[tokio::test]
async fn inventory_put_then_unchanged_skip() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:05:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let id = admit(&sim, &c, mac).await;
    let attrs = vec![
        Attribute::new("device_type", DEVICE_TYPE),
        Attribute::new("artifact_name", "release-1"),
        Attribute::new("ip", vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]),
    ];
    assert_eq!(
        c.send_inventory(&attrs).await.unwrap(),
        InventoryOutcome::Sent { patch: false }
    );
    assert_eq!(
        c.send_inventory(&attrs).await.unwrap(),
        InventoryOutcome::Unchanged
    );
    let inv = sim
        .http
        .manage_ok(Method::GET, &format!("/devices/{id}/inventory"), None)
        .await;
    let text = inv.to_string();
    for needle in ["device_type", "release-1", "10.0.0.2"] {
        assert!(text.contains(needle), "{needle} missing: {text}");
    }
    let puts = requests(&sim)
        .await
        .iter()
        .filter(|r| r["path"] == "/api/devices/v1/inventory/device/attributes")
        .map(|r| (r["method"].clone(), r["content_type"].clone()))
        .collect::<Vec<_>>();
    assert_eq!(puts, vec![(json!("PUT"), json!("application/json"))]);
    // A changed set is sent again.
    let mut changed = attrs.clone();
    changed.push(Attribute::new("kernel", "6.1"));
    assert_eq!(
        c.send_inventory(&changed).await.unwrap(),
        InventoryOutcome::Sent { patch: false }
    );
    // auth x2, inventory x2: all valid per the OpenAPI files.
    assert!(assert_requests_match_spec(&sim).await >= 4);
}

#[tokio::test]
async fn update_check_v2_then_v1_fallback_and_204() {
    for v2 in [true, false] {
        let sim = TestSim::start_with(|c| c.next_v2 = Some(v2)).await;
        let mac = "02:00:00:00:06:01";
        let c = client(&sim, KeyType::Ed25519, mac);
        let id = admit(&sim, &c, mac).await;
        // Nothing deployed: 204.
        assert!(c
            .check_update(&provides("release 1"))
            .await
            .unwrap()
            .is_none());
        upload_artifact(&sim, "release-2", &image(10_000, 0x1234_5678)).await;
        let dep = sim.deploy("release-2", &id).await;
        let i = c
            .check_update(&provides("release 1"))
            .await
            .unwrap()
            .expect("a deployment");
        assert_eq!(i.id, dep);
        assert_eq!(i.artifact.artifact_name, "release-2");
        assert!(i.artifact.source.uri.starts_with("https://"));
        let nexts: Vec<(String, String, Option<String>)> = requests(&sim)
            .await
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/deployments/next"))
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["path"].as_str().unwrap().to_string(),
                    r["query"].as_str().map(str::to_string),
                )
            })
            .collect();
        if v2 {
            assert!(nexts
                .iter()
                .all(|(m, p, _)| m == "POST" && p.contains("/v2/")));
            assert_eq!(nexts.len(), 2);
        } else {
            assert_eq!(nexts.len(), 4, "{nexts:?}");
            assert!(nexts[0].1.contains("/v2/") && nexts[0].0 == "POST");
            assert_eq!(nexts[1].0, "GET");
            assert!(nexts[1].1.contains("/v1/"));
            assert_eq!(
                nexts[1].2.as_deref(),
                Some("artifact_name=release+1&device_type=test-dev")
            );
        }
    }
}

#[tokio::test]
async fn status_with_substate_and_log_upload() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:07:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let id = admit(&sim, &c, mac).await;
    upload_artifact(&sim, "release-2", &image(10_000, 0x1234_5678)).await;
    let dep = sim.deploy("release-2", &id).await;
    c.check_update(&provides("release-1"))
        .await
        .unwrap()
        .unwrap();
    let long = format!("installing 42% {}", "é".repeat(300));
    c.report_status(&dep, DeploymentStatus::Downloading, None)
        .await
        .unwrap();
    c.report_status(&dep, DeploymentStatus::Installing, Some(&long))
        .await
        .unwrap();
    let messages = vec![
        LogMessage {
            timestamp: "2026-01-01T00:00:00Z".into(),
            level: "info".into(),
            message: "starting".into(),
        },
        LogMessage {
            timestamp: "not a time".into(),
            level: "error".into(),
            message: "bad line".into(),
        },
    ];
    c.upload_log(&dep, &messages).await.unwrap();
    c.report_status(&dep, DeploymentStatus::Failure, None)
        .await
        .unwrap();
    let dd = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{id}"),
            None,
        )
        .await;
    let history: Vec<(String, Option<String>)> = dd["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["source"] == "device")
        .map(|h| {
            (
                h["status"].as_str().unwrap().to_string(),
                h["substate"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0], ("downloading".into(), None));
    assert_eq!(history[1].0, "installing");
    let sub = history[1].1.as_deref().unwrap();
    assert_eq!(sub.chars().count(), 200);
    assert!(long.starts_with(sub));
    assert_eq!(history[2].0, "failure");
    let log = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/deployments/{dep}/devices/{id}/log"),
            None,
        )
        .await;
    let texts: Vec<&str> = log["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "(THE ORIGINAL LOGS CONTAINED INVALID ENTRIES)",
            "starting",
            "(CORRUPTED LOG DATA)"
        ]
    );

    let checked = assert_requests_match_spec(&sim).await;
    assert!(checked >= 6, "auth x2, status x3, log: {checked} checked");
}

#[tokio::test]
async fn status_after_abort_is_409_aborted() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:08:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let id = admit(&sim, &c, mac).await;
    upload_artifact(&sim, "release-2", &image(10_000, 0x1234_5678)).await;
    let dep = sim.deploy("release-2", &id).await;
    c.check_update(&provides("release-1"))
        .await
        .unwrap()
        .unwrap();
    c.report_status(&dep, DeploymentStatus::Downloading, None)
        .await
        .unwrap();
    sim.http
        .manage_ok(Method::POST, &format!("/deployments/{dep}/abort"), None)
        .await;
    let e = c
        .report_status(&dep, DeploymentStatus::Installing, Some("50%"))
        .await
        .unwrap_err();
    match &e {
        ClientError::Aborted { deployment_id, .. } => assert_eq!(deployment_id, &dep),
        other => panic!("expected Aborted, got {other}"),
    }
    assert!(!e.is_transient());
    assert_eq!(e.status(), Some(409));
}

/// Reads an artifact from a download through the verifying reader; returns the payload.
async fn read_artifact<R: tokio::io::AsyncRead + Unpin + Send + 'static>(r: R) -> Vec<u8> {
    let mut reader = ArtifactReader::open(r, ReadOptions::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    while reader.next_file().await.unwrap().is_some() {
        while let Some(chunk) = reader.read_chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
    }
    reader.finish().await.unwrap();
    got
}

#[tokio::test]
async fn download_resumes_across_three_cuts() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:09:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let id = admit(&sim, &c, mac).await;
    let image = image(2 * 1024 * 1024 + 77, 0x1234_5678);
    let size = upload_artifact(&sim, "release-2", &image).await;
    sim.deploy("release-2", &id).await;
    let i = c
        .check_update(&provides("release-1"))
        .await
        .unwrap()
        .unwrap();
    let cuts = [size / 5, size / 2, size - 10_000];
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/cut",
            Some(json!({ "offsets": cuts })),
        )
        .await;
    let d = c
        .downloader()
        .start(&i.artifact.source.uri, None)
        .await
        .unwrap();
    assert_eq!(d.total_len(), size);
    let stats = d.stats();
    let got = read_artifact(d.into_reader()).await;
    assert!(got == image, "payload differs");
    assert_eq!(stats.resumes(), 3);
    assert_eq!(stats.delivered(), size);
    assert_eq!(stats.fetched(), size, "re-fetched {}", stats.refetched());
    let downloads = sim.http.manage_ok(Method::GET, "/downloads", None).await;
    let downloads = downloads.as_array().unwrap();
    assert_eq!(downloads.len(), 4, "{downloads:#?}");
    let sent: u64 = downloads
        .iter()
        .map(|d| d["bytes_sent"].as_u64().unwrap())
        .sum();
    eprintln!(
        "sim, three cuts: size {size}, server sent {sent}, client fetched {}, re-fetched {}",
        stats.fetched(),
        stats.refetched()
    );
    // The server may produce bytes that die in its buffers when it drops the connection;
    // the client resumes from what it received, so only those are sent twice.
    assert!(sent >= size && sent - size <= 3 * 1024 * 1024, "{sent}");
    let mut last = 0;
    for (d, cut) in downloads.iter().skip(1).zip(cuts) {
        assert_eq!(d["status"], 206);
        let from: u64 = d["range"].as_str().unwrap()["bytes=".len()..]
            .trim_end_matches('-')
            .parse()
            .unwrap();
        assert!(
            from > last && from <= cut,
            "resume from {from}, cut at {cut}"
        );
        last = from;
    }
    assert!(downloads.iter().all(|d| d["authorization_sent"] == false));
}

#[tokio::test]
async fn expired_link_mid_download_gets_a_fresh_url() {
    let sim = TestSim::start().await;
    let mac = "02:00:00:00:0a:01";
    let c = client(&sim, KeyType::Ed25519, mac);
    let id = admit(&sim, &c, mac).await;
    let image = image(1024 * 1024, 0x1234_5678);
    let size = upload_artifact(&sim, "release-2", &image).await;
    let dep = sim.deploy("release-2", &id).await;
    let i = c
        .check_update(&provides("release-1"))
        .await
        .unwrap()
        .unwrap();
    c.report_status(&dep, DeploymentStatus::Downloading, None)
        .await
        .unwrap();
    let cut = size / 3;
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/cut",
            Some(json!({ "offsets": [cut] })),
        )
        .await;
    // The caller's refresh: poll `next` again with identical data.
    let refreshes = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let refresh: RefreshUrl = {
        let (c, n) = (c.clone(), refreshes.clone());
        Box::new(move || {
            let (c, n) = (c.clone(), n.clone());
            Box::pin(async move {
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let i = c
                    .check_update(&provides("release-1"))
                    .await?
                    .ok_or("no deployment any more")?;
                Ok(i.artifact.source.uri)
            })
        })
    };
    let d = c
        .downloader()
        .start(&i.artifact.source.uri, Some(refresh))
        .await
        .unwrap();
    let stats = d.stats();
    let mut r = d.into_reader();
    // Read a little (far before the cut), expire every link, then read on: the first
    // answer streams on, the cut drops it, and the resume meets the expired link. (The
    // stream is driven by the reader: no resume can happen before the links expired.)
    let mut head = vec![0u8; 1000];
    r.read_exact(&mut head).await.unwrap();
    sim.http
        .manage_ok(Method::POST, "/links/expire", None)
        .await;
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.unwrap();
    head.extend_from_slice(&rest);
    assert_eq!(head.len() as u64, size);
    assert_eq!(refreshes.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(stats.url_refreshes(), 1);
    assert_eq!(stats.fetched(), size);
    let got = read_artifact(std::io::Cursor::new(head)).await;
    assert!(got == image);
    let statuses: Vec<(u64, Option<String>)> = sim
        .http
        .manage_ok(Method::GET, "/downloads", None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["status"].as_u64().unwrap(),
                d["range"].as_str().map(str::to_string),
            )
        })
        .collect();
    // The sim records served downloads only (the 403 is counted by the callback above):
    // the whole from 0, cut; then the fresh link from the offset reached.
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!((statuses[0].0, statuses[1].0), (200, 206));
    assert_eq!(statuses[0].1, None);
    let from: u64 = statuses[1].1.as_deref().unwrap()["bytes=".len()..]
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from <= cut);
}

/// `Client::authorization` (the D-Bus token API's hook): nothing before acceptance, each
/// new token (auth, re-auth after a 401, after `invalidate_token`) with its server, and
/// `None` when the server refuses the device. Feature `dbus`.
#[cfg(feature = "dbus")]
#[tokio::test]
async fn every_new_token_is_published() {
    let sim = TestSim::start_with(|c| c.jwt_lifetime_secs = Some(1)).await;
    let mac = "02:00:00:00:03:09";
    let c = client(&sim, KeyType::P256, mac);
    let mut rx = c.authorization();
    let url = sim.handle.base_url().trim_end_matches('/').to_string();
    let id = admit(&sim, &c, mac).await;
    assert!(rx.has_changed().unwrap());
    let first = rx.borrow_and_update().clone().expect("a token");
    assert_eq!(first.server_url(), url);
    assert_eq!(first.token().split('.').count(), 3);
    assert!(
        !format!("{first:?}").contains(first.token()),
        "Debug hides it"
    );

    // Expired → 401 → re-auth: published.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    c.send_inventory(&[Attribute::new("a", "1")]).await.unwrap();
    assert!(rx.has_changed().unwrap(), "the re-auth after the 401");
    let second = rx.borrow_and_update().clone().expect("a token");
    assert_ne!(second.token(), first.token());

    // The deliberate re-auth (before a commit): published when it happens.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.invalidate_token().await;
    assert!(!rx.has_changed().unwrap(), "forgetting alone is not news");
    c.send_inventory(&[Attribute::new("a", "2")]).await.unwrap();
    assert!(rx.has_changed().unwrap());
    assert!(rx.borrow_and_update().is_some());

    // Refused: None.
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/reject"), None)
        .await;
    let e = c.authenticate().await.unwrap_err();
    assert!(matches!(e, ClientError::AuthRejected { .. }), "{e}");
    assert!(rx.has_changed().unwrap());
    assert!(rx.borrow_and_update().is_none());
}
