//! The Debian packages `scripts/build-deb.sh` builds into `target/debian/` (the test
//! command builds them before the tests): their control data and file lists, and an
//! install with the real `dpkg` into a throw-away root. The root gets the host's `/usr`
//! through an overlay in a private mount namespace (`unshare --mount`), so the maintainer
//! scripts run chrooted with real tools while nothing of the host is written.
//!
//! Checked per variant: the name; `Conflicts` with the official client's packages and the
//! other variants, `Replaces` the official ones; the files and their modes (the binary,
//! the unit, the default configuration as a conffile, the D-Bus policy with RAUC, the
//! SWUpdate drop-in); after the install the data directory is 0700 and the unit enabled;
//! the packaged binary is the variant's build (it takes its backend); and installing it
//! over the official client's package removes that package: one updater per device.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (path, mode) of a packaged file.
type File = (&'static str, &'static str);

/// (package, backend type its build takes, files beyond the common ones)
const VARIANTS: &[(&str, &str, &[File])] = &[
    ("mender-bridge", "raw", &[]),
    (
        "mender-bridge-rauc",
        "rauc",
        &[(
            "usr/share/dbus-1/system.d/io.mender.AuthenticationManager.conf",
            "-rw-r--r--",
        )],
    ),
    (
        "mender-bridge-swupdate",
        "swupdate",
        &[(
            "usr/lib/systemd/system/mender-bridge.service.d/swupdate.conf",
            "-rw-r--r--",
        )],
    ),
];

const OFFICIAL: &[&str] = &[
    "mender-client",
    "mender-client4",
    "mender-update",
    "mender-auth",
];

fn deb(package: &str) -> PathBuf {
    let dir = root().join("target/debian");
    let prefix = format!("{package}_");
    std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no {package}_*.deb in {}: build the packages first (DEB_PROFILE=deb-ci scripts/build-deb.sh)",
                dir.display()
            )
        })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn field(deb: &Path, name: &str) -> Vec<String> {
    run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// path → mode string of the package's regular files.
fn files(deb: &Path) -> BTreeMap<String, String> {
    run(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.last()?.trim_start_matches("./").to_string();
            Some((path, cols.first()?.to_string()))
        })
        .collect()
}

#[test]
fn control_data_and_file_lists() {
    for (package, _, extra) in VARIANTS {
        let deb = deb(package);
        assert_eq!(field(&deb, "Package"), [*package]);
        let conflicts = field(&deb, "Conflicts");
        let replaces = field(&deb, "Replaces");
        for official in OFFICIAL {
            assert!(
                conflicts.iter().any(|c| c == official),
                "{package}: {conflicts:?}"
            );
            assert!(
                replaces.iter().any(|c| c == official),
                "{package}: {replaces:?}"
            );
        }
        for (other, _, _) in VARIANTS.iter().filter(|v| v.0 != *package) {
            assert!(conflicts.iter().any(|c| c == other), "{package} vs {other}");
        }
        assert!(
            field(&deb, "Depends")
                .iter()
                .any(|d| d.starts_with("libc6")),
            "{package}: shared-library dependencies are computed"
        );
        let mut expected: BTreeMap<String, String> = [
            ("usr/bin/mender-bridge", "-rwxr-xr-x"),
            ("usr/lib/systemd/system/mender-bridge.service", "-rw-r--r--"),
            ("etc/mender/mender-bridge.toml", "-rw-r--r--"),
        ]
        .iter()
        .chain(extra.iter())
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
        expected.insert(
            format!("usr/share/doc/{package}/copyright"),
            "-rw-r--r--".into(),
        );
        expected.insert(
            format!("usr/share/doc/{package}/README.md"),
            "-rw-r--r--".into(),
        );
        assert_eq!(files(&deb), expected, "{package}");
        let ctl = tempfile::tempdir().expect("tempdir");
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(ctl.path()));
        let conffiles = std::fs::read_to_string(ctl.path().join("conffiles")).unwrap_or_default();
        assert_eq!(
            conffiles.trim(),
            "/etc/mender/mender-bridge.toml",
            "{package}"
        );
        // The packaged unit is the repository's.
        let unit = files(&deb);
        assert!(unit.contains_key("usr/lib/systemd/system/mender-bridge.service"));
    }
}

/// A minimal package named `name` (what `dpkg` needs to see it installed), for the
/// conflict check without the official client's dependencies.
fn stand_in_package(dir: &Path, name: &str) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    std::fs::create_dir_all(tree.join("DEBIAN")).expect("DEBIAN");
    std::fs::create_dir_all(tree.join("usr/share/doc").join(name)).expect("doc");
    std::fs::write(
        tree.join("usr/share/doc").join(name).join("marker"),
        "stand-in\n",
    )
    .expect("marker");
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 3.4.0-1\nArchitecture: all\nMaintainer: test\nDescription: stand-in for the official client\n"
        ),
    )
    .expect("control");
    let deb = dir.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg("--build")
        .arg(&tree)
        .arg(&deb));
    deb
}

/// Installs `debs` in order with `dpkg --root` into `dir/root`, with the host's `/usr`
/// under an overlay whose writes land in `dir/usr-upper`; returns dpkg's output.
fn install(dir: &Path, debs: &[PathBuf]) -> String {
    let root = dir.join("root");
    let script = r#"set -e
R=$1; U=$2; shift 2
for d in usr etc var/lib/dpkg/info var/lib/dpkg/updates var/log tmp run dev proc "$U/upper" "$U/work"; do
  case $d in /*) mkdir -p "$d" ;; *) mkdir -p "$R/$d" ;; esac
done
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
for l in bin sbin lib lib64; do [ -e "$R/$l" ] || ln -s "usr/$l" "$R/$l"; done
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$U/upper,workdir=$U/work" "$R/usr"
for deb in "$@"; do
  dpkg --root="$R" --force-depends --log=/dev/null -i "$deb"
done
"#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&root)
    .arg(dir.join("usr-overlay"))
    .args(debs);
    run(&mut cmd)
}

fn dpkg_status(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("root/var/lib/dpkg/status")).unwrap_or_default()
}

#[test]
fn each_package_installs_into_a_throwaway_root_and_replaces_the_official_client() {
    for (package, backend, extra) in VARIANTS {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let official = stand_in_package(d, "mender-client");
        let out = install(d, &[official, deb(package)]);
        let status = dpkg_status(d);
        assert!(
            status.contains(&format!("Package: {package}\nStatus: install ok installed")),
            "{package} not installed:\n{out}\n{status}"
        );
        assert!(
            !status.contains("Package: mender-client\nStatus: install ok installed"),
            "the official client's package is still installed next to {package}:\n{out}\n{status}"
        );
        let sysroot = d.join("root");
        let usr = d.join("usr-overlay/upper");
        assert_eq!(mode(&usr.join("bin/mender-bridge")), 0o755, "{package}");
        assert_eq!(mode(&sysroot.join("etc/mender/mender-bridge.toml")), 0o644);
        assert_eq!(
            mode(&sysroot.join("var/lib/mender")),
            0o700,
            "the data directory"
        );
        let unit = std::fs::read_to_string(usr.join("lib/systemd/system/mender-bridge.service"))
            .expect("the unit");
        assert_eq!(
            unit,
            std::fs::read_to_string(root().join("config/mender-bridge.service")).expect("unit")
        );
        let wants =
            sysroot.join("etc/systemd/system/multi-user.target.wants/mender-bridge.service");
        assert!(
            std::fs::symlink_metadata(&wants).is_ok(),
            "{package}: the unit is not enabled\n{out}"
        );
        for (path, _) in *extra {
            let installed = match path.strip_prefix("usr/") {
                Some(rest) => usr.join(rest),
                None => sysroot.join(path),
            };
            assert!(installed.is_file(), "{package}: {path}");
        }
        // The packaged binary is the variant's build: its backend is accepted (`commit`
        // sets the backend up, then finds nothing to commit or no installer running).
        let text = commit_with_backend(d, backend);
        assert!(
            !text.contains("this build has no"),
            "{package} does not take backend {backend}: {text}"
        );
    }
}

/// `mender-bridge commit` of the binary installed under `d` with `[backend] type =
/// backend`: its output (stdout and stderr).
fn commit_with_backend(d: &Path, backend: &str) -> String {
    std::fs::create_dir_all(d.join("data")).expect("data");
    std::fs::write(d.join("data/device_type"), "device_type=test\n").expect("device_type");
    let conf = d.join("bridge.toml");
    std::fs::write(&conf, format!("[backend]\ntype = \"{backend}\"\n")).expect("toml");
    let out = Command::new(d.join("usr-overlay/upper/bin/mender-bridge"))
        .arg("-d")
        .arg(d.join("data"))
        .arg("--bridge-config")
        .arg(&conf)
        .arg("commit")
        .output()
        .expect("run the packaged binary");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The check of the variant's build is not vacuous: the raw-only binary refuses RAUC.
#[test]
fn the_raw_only_package_refuses_another_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = install(d, &[deb("mender-bridge")]);
    let text = commit_with_backend(d, "rauc");
    assert!(
        text.contains("this build has no rauc backend"),
        "{text}\n{out}"
    );
}
