//! Interop ground truth: the official client (Debian `mender-client` 3.4, `mender daemon`)
//! against the simulator. It authenticates (pending until the test accepts it), sends its
//! inventory and completes a `single-file` update-module deployment, ending in `success`.
//!
//! Then the device moves to `mender-bridge daemon` with the same files: the server sees
//! the same device (the official client's key and identity, no new admission) and the
//! dashboard keeps the installed artifact's name, read from the official client's store.
//!
//! The Go client reads two fixed paths: `/etc/mender/artifact_info` (the artifact name of a
//! device that never installed anything) and `/usr/share/mender/identity/
//! mender-device-identity`. The test gives it its own copies by bind-mounting temp dirs over
//! those directories in a private mount namespace (`unshare --mount`, root only); the host's
//! files are never touched.
#![cfg(feature = "sim")]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::sim::TestSim;
use common::wait::{wait_for, Lazy};
use hyper::Method;
use serde_json::{json, Value};

const MAC: &str = "02:00:00:00:be:ef";

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// What a wait is for, with the tail of the mender log (read when the wait times out).
fn awaited<'a>(what: &'a str, log: &'a Path) -> Lazy<impl Fn() -> String + 'a> {
    Lazy(move || {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        format!(
            "{what}; mender log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
}

/// The single-file module's payload: the file and where to put it.
fn single_file_artifact(
    work: &Path,
    name: &str,
    target: &Path,
    content: &str,
) -> std::path::PathBuf {
    let src = work.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("dest_dir"), target.to_str().unwrap()).unwrap();
    std::fs::write(src.join("filename"), "hello.txt").unwrap();
    std::fs::write(src.join("permissions"), "644").unwrap();
    std::fs::write(src.join("hello.txt"), content).unwrap();
    let out = work.join(format!("{name}.mender"));
    let mut cmd = std::process::Command::new("mender-artifact");
    cmd.current_dir(&src).args([
        "write",
        "module-image",
        "-T",
        "single-file",
        "-n",
        name,
        "-t",
        "test-dev",
        "-f",
        "dest_dir",
        "-f",
        "filename",
        "-f",
        "permissions",
        "-f",
        "hello.txt",
        "-o",
    ]);
    cmd.arg(&out);
    common::run(&mut cmd);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_authenticates_reports_inventory_and_installs() {
    assert!(
        Path::new("/usr/bin/mender").exists(),
        "the official client is missing: run scripts/setup-test-deps.sh (Debian package mender-client)"
    );
    if !is_root() {
        eprintln!("skipped: the interop test needs root for a private mount namespace");
        return;
    }
    // Open-source server behaviour: POST v2 next is 404, the client falls back to v1.
    let sim = TestSim::start_with(|c| c.next_v2 = Some(false)).await;
    let work = sim.dir.path();
    let etc = work.join("etc-mender");
    let ident = work.join("identity");
    let data = work.join("data");
    let target = work.join("target");
    for d in [&etc, &ident, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(etc.join("artifact_info"), "artifact_name=release-1\n").unwrap();
    let conf = json!({
        "ServerURL": sim.handle.base_url(),
        "ServerCertificate": sim.handle.ca_path(),
        "UpdatePollIntervalSeconds": 2,
        "InventoryPollIntervalSeconds": 2,
        "RetryPollIntervalSeconds": 2,
        "DeviceTypeFile": data.join("device_type"),
    });
    std::fs::write(etc.join("mender.conf"), conf.to_string()).unwrap();
    std::fs::write(data.join("device_type"), "device_type=test-dev\n").unwrap();
    let script = ident.join("mender-device-identity");
    std::fs::write(&script, format!("#!/bin/sh\necho mac={MAC}\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let artifact = single_file_artifact(work, "release-2", &target, "release two\n");
    let rec = sim.http.upload(&artifact).await;
    assert_eq!(rec["name"], "release-2");
    assert_eq!(rec["payload_type"], "single-file");

    let log = work.join("mender.log");
    let shell = format!(
        "mount --bind '{}' /etc/mender && mount --bind '{}' /usr/share/mender/identity && \
         exec mender -c /etc/mender/mender.conf -d '{}' --no-syslog -l debug daemon",
        etc.display(),
        ident.display(),
        data.display()
    );
    let mut child = tokio::process::Command::new("unshare")
        .args(["--mount", "--", "sh", "-c", &shell])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(work.join("mender.stderr")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start mender daemon");

    let http = &sim.http;
    // 1. Authentication: pending until accepted.
    let id = wait_for(
        Duration::from_secs(60),
        awaited("the device to ask for admission", &log),
        || async {
            let devs = http.manage_ok(Method::GET, "/devices", None).await;
            devs.as_array()?
                .iter()
                .find(|d| d["identity_data"]["mac"] == MAC && d["status"] == "pending")
                .map(|d| d["id"].as_str().unwrap_or_default().to_string())
        },
    )
    .await;
    http.manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;

    // 2. Inventory.
    let inv = wait_for(
        Duration::from_secs(60),
        awaited("inventory", &log),
        || async {
            let inv = http
                .manage_ok(Method::GET, &format!("/devices/{id}/inventory"), None)
                .await;
            let has = |n: &str| {
                inv.as_array()
                    .is_some_and(|a| a.iter().any(|x| x["name"] == n))
            };
            (has("artifact_name") && has("device_type")).then_some(inv)
        },
    )
    .await;
    let value = |n: &str| -> Value {
        inv.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(value("artifact_name"), "release-1");
    assert_eq!(value("device_type"), "test-dev");
    assert!(value("mender_client_version")
        .as_str()
        .unwrap()
        .starts_with("3.4"));

    // 3. A deployment to this device.
    let dep_id = sim.deploy("release-2", &id).await;
    let dd = wait_for(
        Duration::from_secs(120),
        awaited("the deployment to finish", &log),
        || async {
            let dd = http
                .manage_ok(
                    Method::GET,
                    &format!("/deployments/{dep_id}/devices/{id}"),
                    None,
                )
                .await;
            let s = dd["status"].as_str().unwrap_or_default().to_string();
            (s == "success" || s == "failure").then_some(dd)
        },
    )
    .await;
    let statuses: Vec<String> = dd["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        dd["status"], "success",
        "history {statuses:?}; log {}",
        dd["log"]
    );
    assert!(
        statuses.contains(&"downloading".to_string()),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"installing".to_string()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("success"));
    assert_eq!(dd["download_authorization_seen"], false);
    assert_eq!(
        std::fs::read_to_string(target.join("hello.txt")).unwrap(),
        "release two\n"
    );

    // What went over the wire: v2 next answered 404, the client fell back to POST v1; every
    // JSON body but auth came chunked.
    let reqs = http.manage_ok(Method::GET, "/requests", None).await;
    let reqs = reqs.as_array().unwrap();
    let seen = |m: &str, suffix: &str, status: u64| {
        reqs.iter().any(|r| {
            r["method"] == m
                && r["path"].as_str().unwrap().ends_with(suffix)
                && r["status"] == status
        })
    };
    assert!(seen("POST", "/v2/deployments/device/deployments/next", 404));
    assert!(seen("POST", "/v1/deployments/device/deployments/next", 200));
    assert!(seen("PUT", "/inventory/device/attributes", 200));
    assert!(reqs.iter().any(|r| r["chunked"] == true));
    // Every status report the client sent is a valid body per the OpenAPI file.
    for r in reqs
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/status"))
    {
        let body = serde_json::to_vec(&r["body"]).unwrap();
        http.spec
            .check_request("PUT", r["path"].as_str().unwrap(), &body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let downloads = http.manage_ok(Method::GET, "/downloads", None).await;
    let d0 = &downloads.as_array().unwrap()[0];
    assert_eq!(d0["complete"], true, "{downloads}");
    assert_eq!(d0["authorization_sent"], false);

    // Stop the daemon.
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    // 4. The device moves to the bridge: same mender.conf, same data directory (the
    // official client's key and its LMDB store), same identity script. The server sees the
    // same device, accepted, without a new admission; the dashboard keeps the installed
    // artifact's name (release-2, which only the official client's store knows: the
    // image's artifact_info still says release-1).
    let bridge_toml = work.join("bridge.toml");
    std::fs::write(
        &bridge_toml,
        format!(
            "identity_script = \"{}\"\nartifact_info_file = \"{}\"\n",
            script.display(),
            etc.join("artifact_info").display()
        ),
    )
    .unwrap();
    let bridge = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mender-bridge"));
        c.arg("-c")
            .arg(etc.join("mender.conf"))
            .arg("-d")
            .arg(&data)
            .arg("--bridge-config")
            .arg(&bridge_toml)
            .args(args)
            .env_remove("NOTIFY_SOCKET");
        c
    };
    let out = bridge(&["show-artifact"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "release-2\n");
    let auth_sets_before = http
        .manage_ok(Method::GET, &format!("/devices/{id}"), None)
        .await["auth_sets"]
        .clone();
    let mut daemon =
        common::daemon::Daemon::start(bridge(&["-l", "debug", "daemon"]), &work.join("bridge.log"));
    let inv = wait_for(
        Duration::from_secs(60),
        Lazy(|| format!("the bridge's inventory; its log:\n{}", daemon.log_tail(30))),
        || async {
            let inv = http
                .manage_ok(Method::GET, &format!("/devices/{id}/inventory"), None)
                .await;
            let version = inv.as_array().and_then(|a| {
                a.iter()
                    .find(|x| x["name"] == "mender_client_version")
                    .and_then(|x| x["value"].as_str().map(str::to_string))
            });
            version
                .is_some_and(|v| v.starts_with("mender-bridge"))
                .then_some(inv)
        },
    )
    .await;
    let attr = |n: &str| {
        inv.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .map(|x| x["value"].clone())
    };
    assert_eq!(attr("artifact_name"), Some(json!("release-2")));
    let devices = http.manage_ok(Method::GET, "/devices", None).await;
    let same: Vec<&Value> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["identity_data"]["mac"] == MAC)
        .collect();
    assert_eq!(same.len(), 1, "one device: {devices}");
    assert_eq!(same[0]["status"], "accepted");
    let auth_sets_after = http
        .manage_ok(Method::GET, &format!("/devices/{id}"), None)
        .await["auth_sets"]
        .clone();
    assert_eq!(
        auth_sets_after, auth_sets_before,
        "the official client's key, recognised: no new auth set"
    );
    assert!(
        !daemon.log().contains("stopped in a deployment"),
        "the official client finished its deployment: nothing is in flight\n{}",
        daemon.log_tail(30)
    );
    assert_eq!(daemon.stop(Duration::from_secs(30)), 0);
}
