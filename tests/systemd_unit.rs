//! The shipped systemd unit (`config/mender-bridge.service`): systemd itself accepts it
//! (`systemd-analyze verify`, with `ExecStart` pointing at the binary under test), its
//! hardening scores no worse than the figure in docs/BENCHMARKS.md (`systemd-analyze
//! security --offline`), and the sandbox leaves what the daemon must write writable: the
//! default data directory and the boot environments.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `systemd-analyze security`'s exposure, ×10, that the unit must not exceed (5.8 MEDIUM
/// when written; the official client's unit has no hardening and scores 9.6 UNSAFE).
const MAX_EXPOSURE_X10: u32 = 58;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit_text() -> String {
    std::fs::read_to_string(root().join("config/mender-bridge.service")).expect("the unit")
}

/// The unit in `dir` under its own name, starting the binary under test.
fn unit_for_test(dir: &Path) -> PathBuf {
    let text = unit_text();
    assert!(text.contains("ExecStart=/usr/bin/mender-bridge daemon"));
    let path = dir.join("mender-bridge.service");
    let text = text.replace(
        "ExecStart=/usr/bin/mender-bridge",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_mender-bridge")),
    );
    std::fs::write(&path, text).expect("write the unit");
    path
}

fn analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze: {e}; install the test dependencies (scripts/setup-test-deps.sh)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_accepts_the_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_test(dir.path());
    let (ok, text) = analyze(&["verify"], &unit);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn a_broken_unit_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_test(dir.path());
    let text = std::fs::read_to_string(&unit).expect("unit");
    std::fs::write(
        &unit,
        text.replace("ProtectSystem=full", "ProtectSystem=maybe"),
    )
    .expect("write");
    let (_, text) = analyze(&["verify"], &unit);
    assert!(text.contains("protect system value"), "{text}");
}

#[test]
fn the_hardening_scores_no_worse_than_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_test(dir.path());
    let threshold = format!("--threshold={MAX_EXPOSURE_X10}");
    let (ok, text) = analyze(&["security", "--offline=yes", &threshold], &unit);
    let score = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no score")
        .to_string();
    println!("{score}");
    assert!(ok, "exposure above {MAX_EXPOSURE_X10}/10: {score}\n{text}");
}

#[test]
fn the_sandbox_leaves_what_an_update_writes_writable() {
    let text = unit_text();
    let setting = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    assert_eq!(
        setting("ProtectSystem"),
        ["full"],
        "not strict: /var stays writable"
    );
    assert_eq!(setting("PrivateTmp"), ["yes"]);
    assert_eq!(setting("NoNewPrivileges"), ["yes"]);
    let writable = setting("ReadWritePaths");
    // The data directory's default (config/mender-bridge.toml `data_dir`) and the boot
    // environments of U-Boot and GRUB (under the read-only /boot otherwise).
    for path in ["/var/lib/mender", "/boot", "/boot/efi"] {
        assert!(
            writable.iter().any(|w| w.trim_start_matches('-') == path),
            "{path} not in ReadWritePaths {writable:?}"
        );
    }
    let config = std::fs::read_to_string(root().join("config/mender-bridge.toml")).expect("toml");
    assert!(config.contains("#data_dir = \"/var/lib/mender\""));
    let dropin = std::fs::read_to_string(root().join("config/mender-bridge-swupdate.conf"))
        .expect("drop-in");
    assert!(dropin.contains("[Service]\nPrivateTmp=no"), "{dropin}");
}
