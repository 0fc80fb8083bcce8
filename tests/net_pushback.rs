//! Server pushback: 429 and 503 answers with `Retry-After` (seconds or an HTTP-date), injected
//! by the simulator per route, make every call wait the server's time instead of its own
//! backoff. The daemon (auth, inventory, update check) is checked through the simulator's
//! request log; the download, the status reports and the log upload through the client API
//! and the deployment helpers, by wall time. The backoffs configured here are ~1 s or
//! less, the asked waits 3–8 s, so a wait that followed the backoff instead fails the
//! bounds; the upper bounds are sanity only.
#![cfg(feature = "sim")]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::daemon::{accept, device_with_toml, sim_conf, Daemon};
use common::device::{deploy, Device};
use common::sim::TestSim;
use common::wait::wait_for;
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_bridge::deploy::report::{report, report_until_taken, upload_log, Reported};
use serde_json::{json, Value};

/// An IMF-fixdate `secs` seconds from now.
fn http_date_in(secs: u64) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + secs;
    let days = t / 86_400;
    let rem = t % 86_400;
    // 1970-01-01 was a Thursday.
    let wday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (mut y, mut d) = (1970u64, days);
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    while d >= if leap(y) { 366 } else { 365 } {
        d -= if leap(y) { 366 } else { 365 };
        y += 1;
    }
    let months = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut m = 0;
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    format!(
        "{wday}, {:02} {} {y} {:02}:{:02}:{:02} GMT",
        d + 1,
        names[m],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn fail(sim: &TestSim, route: &str, status: u16, retry_after: &str) {
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/fail",
            Some(json!({"route": route, "count": 1, "status": status, "retry_after": retry_after})),
        )
        .await;
}

/// The requests to paths containing `part`, as (unix seconds, status).
async fn requests(sim: &TestSim, part: &str) -> Vec<(i64, u64)> {
    let v = sim.http.manage_ok(Method::GET, "/requests", None).await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(part)))
                .map(|r| {
                    let t = r["time"].as_str().and_then(mender_api::rfc3339::parse);
                    (t.expect("request time"), r["status"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds between the injected failure (`status`) on `part` and the next request there.
async fn gap_after(sim: &TestSim, part: &str, status: u64) -> i64 {
    let r = requests(sim, part).await;
    let i = r
        .iter()
        .position(|(_, s)| *s == status)
        .unwrap_or_else(|| panic!("no {status} on {part}: {r:?}"));
    let next = r
        .get(i + 1)
        .unwrap_or_else(|| panic!("no retry on {part}: {r:?}"));
    next.0 - r[i].0
}

/// The daemon's auth (429, seconds), inventory (503, HTTP-date) and update check (429,
/// seconds) each wait what the server asked, not the 1 s `RetryPollIntervalSeconds` backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_waits_as_the_server_asks() {
    let sim = TestSim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mac = "02:00:00:00:ba:01";
    // The first polls right after the authentication: the test waits for their retries.
    device_with_toml(
        dir.path(),
        mac,
        sim_conf(&sim, 300, 300),
        "first_poll_spread = false\n",
    );
    fail(&sim, "auth", 429, "4").await;
    let daemon = Daemon::start(
        common::bridge_command(dir.path(), &["-l", "debug", "daemon"]),
        &dir.path().join("daemon.log"),
    );
    // The 429 is answered first; the device asks again (pending) 4 s later.
    wait_for(
        Duration::from_secs(30),
        "the second auth request",
        || async { (requests(&sim, "auth_requests").await.len() >= 2).then_some(()) },
    )
    .await;
    fail(&sim, "inventory", 503, &http_date_in(8)).await;
    fail(&sim, "next", 429, "4").await;
    accept(&sim, mac, Duration::from_secs(20)).await;
    wait_for(
        Duration::from_secs(40),
        "inventory and update check retried",
        || async {
            let inv = requests(&sim, "inventory").await;
            let next = requests(&sim, "deployments/next").await;
            (inv.iter().any(|r| r.1 / 100 == 2) && next.iter().any(|r| r.1 / 100 == 2))
                .then_some(())
        },
    )
    .await;
    let log = daemon.log();
    for (part, status, min) in [
        ("auth_requests", 429, 4),
        ("inventory", 503, 4),
        ("deployments/next", 429, 4),
    ] {
        let gap = gap_after(&sim, part, status).await;
        assert!(
            (min..30).contains(&gap),
            "{part}: {gap} s after the {status}, want the server's wait\n{log}"
        );
    }
    assert!(log.contains("server asks to retry after 4s"), "{log}");
    drop(daemon);
    sim.handle.shutdown().await;
}

/// The download resumes after the server's wait, the final and the best-effort status
/// reports are retried after it, and the deployment log upload too; the configured
/// backoffs are 10–50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_calls_wait_as_the_server_asks() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let client = dev.client(&sim);
    let img = common::image(256 * 1024, 7);
    let (dep, _) = deploy(&sim, &dev.id, "release-2", &img, None).await;
    let instructions = client
        .check_update(&dev.engine(&sim).device_provides())
        .await
        .expect("check")
        .expect("a deployment");

    // Download: 503 with Retry-After 3 (the resume backoff is 20 ms).
    fail(&sim, "download", 503, "3").await;
    let t = Instant::now();
    let d = client
        .downloader()
        .start(&instructions.artifact.source.uri, None)
        .await
        .expect("download after the wait");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
    assert_eq!(d.stats().resumes(), 1);
    drop(d);

    // A best-effort status report: 429, Retry-After 2, one retry.
    fail(&sim, "status", 429, "2").await;
    let t = Instant::now();
    let r = report(&client, &dep, DeploymentStatus::Installing, None).await;
    let waited = t.elapsed();
    assert_eq!(r, Reported::Taken);
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(30));

    // The final status: 503, Retry-After 3 (its own backoff starts at 10 ms).
    fail(&sim, "status", 503, "3").await;
    let t = Instant::now();
    let r = report_until_taken(
        &client,
        &dep,
        DeploymentStatus::Failure,
        None,
        Duration::from_millis(10),
        Duration::from_millis(50),
    )
    .await;
    let waited = t.elapsed();
    assert_eq!(r, Reported::Taken);
    assert!(waited >= Duration::from_millis(2900) && waited < Duration::from_secs(30));

    // The log: 503 with an HTTP-date 4 s ahead (whole seconds: at least ~3 s).
    fail(&sim, "log", 503, &http_date_in(4)).await;
    let t = Instant::now();
    upload_log(&client, &dev.store(), &dep).await;
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
    let log = sim.deployment_log(&dep, &dev.id).await;
    assert!(!log.is_empty(), "the log arrived after the wait");
    let statuses: Vec<Value> = requests(&sim, "/status")
        .await
        .into_iter()
        .map(|(_, s)| Value::from(s))
        .collect();
    assert_eq!(
        statuses,
        [429, 204, 503, 204].map(Value::from),
        "{statuses:?}"
    );
    sim.handle.shutdown().await;
}
