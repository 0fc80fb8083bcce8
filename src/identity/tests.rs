//! Identity and inventory scripts, run for real: small shell scripts in temp dirs.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

fn quick() -> ScriptLimits {
    ScriptLimits {
        timeout: Duration::from_millis(500),
        ..ScriptLimits::default()
    }
}

#[tokio::test]
async fn identity_script_to_id_data() {
    let t = tempdir();
    let s = script(
        t.path(),
        "id",
        "echo serial=SN1\necho mac=02:00:00:00:00:01\necho\necho serial=SN2\necho 'note=a \"quoted\" = value'",
    );
    let id = identity_from_script(&s, &ScriptLimits::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        id.id_data(),
        r#"{"mac":"02:00:00:00:00:01","note":"a \"quoted\" = value","serial":["SN1","SN2"]}"#
    );
    // The exact example of PROTOCOL.md §1.1.
    let s = script(
        t.path(),
        "id2",
        "echo mac=02:00:00:00:00:01\necho serial=SN1\necho serial=SN2",
    );
    let id = identity_from_script(&s, &ScriptLimits::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        id.id_data().as_bytes(),
        br#"{"mac":"02:00:00:00:00:01","serial":["SN1","SN2"]}"#
    );
    // `id_data` is what the auth body carries as a string.
    let body = serde_json::json!({ "id_data": id.id_data() }).to_string();
    assert_eq!(
        body,
        r#"{"id_data":"{\"mac\":\"02:00:00:00:00:01\",\"serial\":[\"SN1\",\"SN2\"]}"}"#
    );
}

#[tokio::test]
async fn identity_script_errors() {
    let t = tempdir();
    let s = script(t.path(), "bad", "echo mac=x\necho oops");
    let err = identity_from_script(&s, &quick())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!(
            "identity script {} printed bad output: line 2: no '=' in \"oops\"",
            s.display()
        ))
    );

    let s = script(
        t.path(),
        "fails",
        "echo mac=x\necho 'no network' >&2\nexit 3",
    );
    let err = identity_from_script(&s, &quick())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!(
            "identity script {} failed (exit status: 3): no network",
            s.display()
        ))
    );

    // stderr is bounded, and read to the end so the script never blocks on it.
    let s = script(
        t.path(),
        "noisy",
        "head -c 200000 /dev/zero | tr '\\0' e >&2\nexit 1",
    );
    match identity_from_script(&s, &quick()).await {
        Err(IdentityError::Failed { stderr, .. }) => {
            assert!(
                stderr.len() <= 4 * 1024 + 3 && stderr.ends_with('…'),
                "{}",
                stderr.len()
            )
        }
        other => panic!("{other:?}"),
    }

    let s = script(t.path(), "silent", "true");
    assert!(matches!(
        identity_from_script(&s, &quick()).await,
        Err(IdentityError::Empty { .. })
    ));

    let p = t.path().join("not-executable");
    std::fs::write(&p, "#!/bin/sh\necho mac=x\n").unwrap_or_else(|e| panic!("{e}"));
    let err = identity_from_script(&p, &quick())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with(&format!(
            "identity script: cannot run {}: Permission denied",
            p.display()
        ))),
        "{err:?}"
    );
}

#[tokio::test]
async fn scripts_time_out_with_their_children() {
    let t = tempdir();
    let s = script(t.path(), "slow", "echo mac=x\nsleep 30");
    let start = Instant::now();
    let err = identity_from_script(&s, &quick())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!(
            "identity script: {} did not finish within 0.5 s and was killed",
            s.display()
        ))
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    // A backgrounded child keeps stdout open after the script exits: the timeout still
    // ends the run, and the whole process group is killed.
    let pidfile = t.path().join("bg.pid");
    let s = script(
        t.path(),
        "bg",
        &format!("sleep 30 &\necho $! > {}\necho mac=x", pidfile.display()),
    );
    let start = Instant::now();
    assert!(matches!(
        identity_from_script(&s, &quick()).await,
        Err(IdentityError::Script(ScriptError::Timeout { .. }))
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid written"));
    // Dead: gone, or a zombie waiting for its new parent to reap it.
    let mut dead = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead, "background child {pid} survived");
}

#[tokio::test]
async fn output_is_bounded() {
    let t = tempdir();
    let s = script(t.path(), "flood", "yes mac=x");
    let limits = ScriptLimits {
        max_stdout: 1000,
        ..quick()
    };
    let err = identity_from_script(&s, &limits)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!(
            "identity script: {} printed more than 1000 bytes and was killed",
            s.display()
        ))
    );
}

#[tokio::test]
async fn mac_fallback_without_a_script() {
    let t = tempdir();
    let net = t.path().join("net");
    let eth = net.join("eth0");
    std::fs::create_dir_all(&eth).unwrap_or_else(|e| panic!("{e}"));
    for (f, v) in [
        ("type", "1\n"),
        ("ifindex", "2\n"),
        ("address", "02:00:00:00:00:01\n"),
    ] {
        std::fs::write(eth.join(f), v).unwrap_or_else(|e| panic!("{e}"));
    }
    let id = load_identity(&t.path().join("no-such-script"), &net, &quick())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.id_data(), r#"{"mac":"02:00:00:00:00:01"}"#);

    // With a script, the script decides.
    let s = script(t.path(), "id", "echo cpuid=1234");
    let id = load_identity(&s, &net, &quick())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.id_data(), r#"{"cpuid":"1234"}"#);
}

#[tokio::test]
async fn inventory_scripts_merge_and_skip() {
    let t = tempdir();
    let d = t.path();
    script(d, "mender-inventory-a", "echo a=1\necho k=1");
    script(d, "mender-inventory-b", "echo k=2\necho k=3\nexit 3");
    script(d, "mender-inventory-c", "echo k=4\necho garbage");
    script(d, "mender-inventory-d-slow", "echo k=5\nsleep 30");
    script(d, "not-inventory", "echo x=1");
    let off = d.join("mender-inventory-e-off");
    std::fs::write(&off, "#!/bin/sh\necho e=1\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(d.join("mender-inventory-f-dir")).unwrap_or_else(|e| panic!("{e}"));

    let inv = collect_inventory(d, &quick()).await;
    assert_eq!(
        serde_json::to_string(&inv.attributes).ok().as_deref(),
        Some(r#"{"a":"1","k":["1","2","3"]}"#)
    );
    let names: Vec<String> = inv
        .scripts
        .iter()
        .filter_map(|r| r.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        names,
        [
            "mender-inventory-a",
            "mender-inventory-b",
            "mender-inventory-c",
            "mender-inventory-d-slow"
        ]
    );
    assert_eq!(
        inv.scripts[0].outcome,
        ScriptOutcome::Used {
            attributes: 2,
            exit: None
        }
    );
    assert_eq!(
        inv.scripts[1].outcome,
        ScriptOutcome::Used {
            attributes: 1,
            exit: Some("exit status: 3".into())
        }
    );
    assert!(
        matches!(&inv.scripts[2].outcome, ScriptOutcome::Skipped(r) if r.ends_with("unparsable output: line 2: no '=' in \"garbage\"")),
        "{:?}",
        inv.scripts[2]
    );
    assert!(
        matches!(&inv.scripts[3].outcome, ScriptOutcome::Skipped(r) if r.contains("did not finish")),
        "{:?}",
        inv.scripts[3]
    );

    let none = collect_inventory(&d.join("missing"), &quick()).await;
    assert!(none.attributes.is_empty() && none.scripts.is_empty());
}
