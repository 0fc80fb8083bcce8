//! `--log-format`: JSON lines on demand; under systemd (`JOURNAL_STREAM` naming stderr)
//! the journal, or text with one line saying why when the journal cannot be reached; text
//! otherwise.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `show-artifact -l debug` (it logs where it looked for configuration) with stderr
/// into a file; returns that file's text.
fn run(dir: &Path, args: &[&str], env: &[(&str, String)], stderr_file: &Path) -> String {
    let file = std::fs::File::create(stderr_file).expect("stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mender-bridge"));
    cmd.args(["-l", "debug", "-d"])
        .arg(dir)
        .args(args)
        .arg("show-artifact")
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().expect("run mender-bridge");
    assert!(status.success());
    std::fs::read_to_string(stderr_file).expect("stderr")
}

#[test]
fn json_lines_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        dir.path(),
        &["--log-format", "json"],
        &[],
        &dir.path().join("err"),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v[key].is_string(), "{key} missing: {line}");
        }
    }
}

#[test]
fn text_unless_stderr_is_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = dir.path().join("err");
    let out = run(dir.path(), &[], &[], &err);
    assert!(out.contains("DEBUG"), "{out}");
    assert!(!out.trim_start().starts_with('{'), "{out}");
    // A JOURNAL_STREAM that names another file is not the journal.
    let out = run(
        dir.path(),
        &[],
        &[("JOURNAL_STREAM", "1:1".to_string())],
        &err,
    );
    assert!(out.contains("DEBUG") && !out.contains("journal"), "{out}");
}

#[test]
fn under_systemd_the_journal_or_one_line_why_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = dir.path().join("err");
    std::fs::write(&err, "").expect("create");
    let meta = std::fs::metadata(&err).expect("stat");
    // systemd sets JOURNAL_STREAM to stderr's device and inode; the file keeps its inode
    // when run() truncates it.
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let out = run(dir.path(), &[], &[("JOURNAL_STREAM", stream)], &err);
    if Path::new("/run/systemd/journal/socket").exists() {
        assert!(out.is_empty(), "records belong in the journal: {out}");
    } else {
        let why: Vec<&str> = out.lines().filter(|l| l.contains("journal")).collect();
        assert_eq!(why.len(), 1, "{out}");
        assert!(why[0].contains("is not reachable") && why[0].contains("logging as text"));
        assert!(out.contains("DEBUG"), "then text: {out}");
    }
}
