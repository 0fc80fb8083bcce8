//! `mender-bridge demo`, the README's main command: with nothing but the binary (no
//! bootloader tools, no mender-artifact), a deployment goes from `downloading` to `success`
//! across a simulated reboot; a fallback and a corrupt payload end in `failure` with the log.
#![cfg(feature = "sim")]

use std::process::Command;

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mender-bridge"))
        .arg("demo")
        .args(["--size-mib", "2"])
        .args(args)
        .env("PATH", "/usr/bin:/bin") // sh, cat, sed, printf: nothing the tests install
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_deployment_to_success_across_a_reboot() {
    let out = demo(&[]);
    for want in [
        "authentication: pending",
        "downloading 100% 2.0/2.0 MiB",
        "rebooting",
        "the bootloader starts slot b",
        "result:   success",
        "artifact_name=demo-release-2",
        "running b",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let success = out.find("  success").expect("success line");
    assert!(out.find("rebooting").unwrap() < success, "{out}");
}

#[test]
fn a_fallback_and_a_corrupt_payload_end_in_failure_with_the_log() {
    let out = demo(&["--fallback"]);
    assert!(out.contains("result:   failure"), "{out}");
    assert!(out.contains("not running the new software"), "{out}");
    assert!(
        out.contains("artifact_name=demo-release-1") && out.contains("running a"),
        "{out}"
    );

    let out = demo(&["--corrupt"]);
    assert!(out.contains("result:   failure"), "{out}");
    assert!(
        out.contains("checksum mismatch for 'data/0000/rootfs.img'"),
        "{out}"
    );
    assert!(!out.contains("rebooting"), "nothing activated: {out}");
}
