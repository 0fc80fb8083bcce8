use super::*;
use std::os::unix::fs::PermissionsExt as _;

fn runner(dir: &Path) -> ScriptRunner {
    ScriptRunner {
        rootfs_dir: dir.join("rootfs"),
        artifact_dir: dir.join("artifact"),
        timeout: Duration::from_secs(5),
        retry_interval: Duration::from_millis(50),
        retry_timeout: Duration::from_millis(400),
    }
}

fn script(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn names() {
    assert!(matches("Download_Enter_01", State::Download, Action::Enter));
    assert!(matches(
        "Download_Enter_01_fetch-x",
        State::Download,
        Action::Enter
    ));
    assert!(!matches("Download_Enter_1", State::Download, Action::Enter));
    assert!(!matches(
        "Download_Leave_01",
        State::Download,
        Action::Enter
    ));
    assert!(!matches(
        "Download_Enter_01_",
        State::Download,
        Action::Enter
    ));
    assert!(!matches(
        "ArtifactRollbackReboot_Enter_01",
        State::ArtifactRollback,
        Action::Enter
    ));
}

#[tokio::test]
async fn order_exit_codes_retry_and_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let r = runner(tmp.path());
    let d = &r.rootfs_dir;
    let trace = tmp.path().join("trace");
    let t = trace.display();
    script(d, "Sync_Enter_10", &format!("echo 10 >> {t}"));
    script(
        d,
        "Sync_Enter_02_first",
        &format!("echo 02 >> {t}; echo oops >&2"),
    );
    std::fs::write(d.join("Sync_Enter_05"), "not executable").unwrap();
    let mut log = ScriptLog::default();
    r.run(State::Sync, Action::Enter, &mut log).await.unwrap();
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), "02\n10\n");
    assert_eq!(log.stderr, vec!["Sync_Enter_02_first: oops".to_string()]);

    // 21 = retry later, then success.
    let count = tmp.path().join("count");
    let c = count.display();
    script(
        d,
        "Sync_Leave_01",
        &format!("echo x >> {c}; [ $(wc -l < {c}) -ge 3 ] || exit 21"),
    );
    let mut log = ScriptLog::default();
    r.run(State::Sync, Action::Leave, &mut log).await.unwrap();
    assert_eq!(
        log.ran.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        vec![21, 21, 0]
    );

    // Retrying forever ends in an error; a plain failure fails the state.
    script(d, "Download_Enter_01", "exit 21");
    let e = r
        .run(State::Download, Action::Enter, &mut ScriptLog::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ScriptError::RetryTimeout { .. }), "{e}");
    script(d, "Download_Leave_01", "exit 3");
    let e = r
        .run(State::Download, Action::Leave, &mut ScriptLog::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ScriptError::Failed { code: 3, .. }), "{e}");
    // ... but Error scripts and Idle failures are ignored.
    script(d, "Download_Error_01", "exit 3");
    r.run(State::Download, Action::Error, &mut ScriptLog::default())
        .await
        .unwrap();
    script(d, "Idle_Enter_01", "exit 3");
    r.run(State::Idle, Action::Enter, &mut ScriptLog::default())
        .await
        .unwrap();
}

/// The pid a test script wrote to `file`.
fn read_pid(file: &Path) -> i32 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", file.display()))
}

/// Alive: present in /proc and not a zombie (a killed orphan may wait as a zombie for
/// a parent that does not reap).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
}

#[tokio::test]
async fn a_backgrounded_daemon_does_not_hold_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = runner(tmp.path());
    r.timeout = Duration::from_secs(20);
    let pidfile = tmp.path().join("daemon.pid");
    // The daemon inherits the script's stderr and keeps it open.
    script(
        &r.rootfs_dir,
        "Sync_Enter_01",
        &format!(
            "echo starting >&2\nsleep 600 &\necho $! > {}\nexit 0",
            pidfile.display()
        ),
    );
    let started = std::time::Instant::now();
    let mut log = ScriptLog::default();
    let result = r.run(State::Sync, Action::Enter, &mut log).await;
    let took = started.elapsed();
    let daemon = read_pid(&pidfile);
    let daemon_alive = alive(daemon);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    result.unwrap();
    assert!(took < Duration::from_secs(5), "the state waited {took:?}");
    assert_eq!(log.ran, vec![("Sync_Enter_01".to_string(), 0)]);
    assert_eq!(log.stderr, vec!["Sync_Enter_01: starting".to_string()]);
    // A script that exits normally keeps what it started.
    assert!(daemon_alive, "the daemon {daemon} was killed");
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = runner(tmp.path());
    r.timeout = Duration::from_millis(300);
    let pidfile = tmp.path().join("child.pid");
    // The child does not hold stderr, so only the group kill can end it.
    script(
        &r.rootfs_dir,
        "Sync_Enter_01",
        &format!(
            "sleep 600 2>/dev/null &\necho $! > {}\nsleep 600",
            pidfile.display()
        ),
    );
    let started = std::time::Instant::now();
    let e = r
        .run(State::Sync, Action::Enter, &mut ScriptLog::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ScriptError::Timeout { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let child = read_pid(&pidfile);
    let mut gone = false;
    for _ in 0..50 {
        if !alive(child) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !gone {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(gone, "the script's child {child} survived the timeout");
}

#[tokio::test]
async fn timeouts_versions_and_artifact_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = runner(tmp.path());
    r.timeout = Duration::from_millis(200);
    script(&r.rootfs_dir, "Sync_Enter_01", "sleep 5");
    let e = r
        .run(State::Sync, Action::Enter, &mut ScriptLog::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ScriptError::Timeout { .. }), "{e}");

    std::fs::write(r.rootfs_dir.join("version"), "2\n").unwrap();
    let e = r
        .run(State::Sync, Action::Enter, &mut ScriptLog::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("says '2'"), "{e}");

    let scripts = vec![StateScript {
        name: "ArtifactInstall_Enter_01".into(),
        mode: 0o644,
        content: bytes::Bytes::from_static(b"#!/bin/sh\necho installing >&2\n"),
    }];
    r.store_artifact_scripts(&scripts).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(r.artifact_dir.join("version")).unwrap(),
        "3\n"
    );
    let mut log = ScriptLog::default();
    r.run(State::ArtifactInstall, Action::Enter, &mut log)
        .await
        .unwrap();
    assert_eq!(
        log.stderr,
        vec!["ArtifactInstall_Enter_01: installing".to_string()]
    );
}
