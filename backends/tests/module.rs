//! The Update Module backend against a recording shell module (every call, its arguments,
//! working directory and the streams it read) and against the real `single-file` module.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mender_bridge_backends::module::{
    CurrentProvides, ModuleBackend, ModuleConfig, ModuleHeader, RebootAnswer,
};
use mender_bridge_backends::{Activation, Backend, PayloadInfo, Progress, ProgressSink, Reboot};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

/// How the recording module behaves.
#[derive(Default)]
struct Behaviour {
    /// Reads the streams in Download.
    read: bool,
    /// Answers to ProvidePayloadFileSizes, NeedsArtifactReboot, SupportsRollback.
    sizes: &'static str,
    reboot: &'static str,
    rollback: &'static str,
    /// Shell run first in the named state (e.g. a hang).
    extra: Option<(&'static str, &'static str)>,
}

struct Fixture {
    dir: tempfile::TempDir,
    config: ModuleConfig,
}

impl Fixture {
    fn new(b: Behaviour) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        std::fs::create_dir(&modules).unwrap();
        let rec = dir.path().join("rec");
        std::fs::create_dir(&rec).unwrap();
        let (extra_state, extra) = b.extra.unwrap_or(("none", ":"));
        let script = format!(
            r#"#!/bin/sh
REC={rec}
STATE="$1"
echo "$STATE $2 $(pwd)" >> "$REC/calls"
if [ "$STATE" = "{extra_state}" ]; then {extra}; fi
case "$STATE" in
  ProvidePayloadFileSizes) echo "{sizes}" ;;
  Download|DownloadWithFileSizes)
    if [ "{read}" = yes ]; then
      while true; do
        line=$(cat stream-next)
        [ -z "$line" ] && break
        echo "$line" >> "$REC/streams"
        name=${{line%% *}}
        cat "$name" > "$REC/got-$(basename "$name")"
      done
    fi ;;
  ArtifactInstall) ls -A > "$REC/tree-at-install"; [ -d files ] && cp -r files "$REC/files" ;;
  NeedsArtifactReboot) echo "{reboot}" ;;
  SupportsRollback) echo "{rollback}" ;;
esac
exit 0
"#,
            rec = rec.display(),
            sizes = b.sizes,
            read = if b.read { "yes" } else { "no" },
            reboot = b.reboot,
            rollback = b.rollback,
        );
        let path = modules.join("rec-module");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut config = ModuleConfig::for_data_dir(&dir.path().join("data"));
        config.modules_dir = modules;
        config.timeout = Duration::from_secs(30);
        config.fifo_timeout = Duration::from_secs(10);
        Fixture { dir, config }
    }

    fn backend(&self) -> ModuleBackend {
        ModuleBackend::new(self.config.clone(), "rec-module")
    }

    fn rec(&self, name: &str) -> PathBuf {
        self.dir.path().join("rec").join(name)
    }

    /// The states called, in order.
    fn states(&self) -> Vec<String> {
        let calls = std::fs::read_to_string(self.rec("calls")).unwrap_or_default();
        calls
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    }
}

fn header(payload_type: &str) -> ModuleHeader {
    ModuleHeader {
        artifact_name: "new-1".into(),
        artifact_group: "grp".into(),
        payload_type: payload_type.into(),
        header_info: serde_json::json!({"payloads": [{"type": payload_type}],
            "artifact_provides": {"artifact_name": "new-1"}}),
        type_info: serde_json::json!({"type": payload_type}),
        meta_data: None,
        current: CurrentProvides {
            artifact_name: "old-1".into(),
            artifact_group: String::new(),
            device_type: "qemu".into(),
        },
    }
}

fn info(payload_type: &str, name: &str, data: &[u8]) -> PayloadInfo {
    PayloadInfo {
        payload_type: payload_type.into(),
        file_name: name.into(),
        size: data.len() as u64,
        sha256: [0; 32],
    }
}

/// Prepares, streams `files` (in 3-byte chunks) and finishes.
async fn install(b: &mut ModuleBackend, files: &[(&str, &[u8])]) -> Result<Activation, String> {
    b.preflight().await.map_err(|e| e.to_string())?;
    b.prepare(&header("rec-module"))
        .map_err(|e| e.to_string())?;
    for (name, data) in files {
        b.begin(&info("rec-module", name, data))
            .await
            .map_err(|e| e.to_string())?;
        for chunk in data.chunks(3) {
            b.write(Bytes::copy_from_slice(chunk))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    b.finish(&NoProgress).await.map_err(|e| e.to_string())
}

const FILES: &[(&str, &[u8])] = &[("a.bin", b"hello module"), ("b.txt", b"second")];

#[tokio::test]
async fn streams_read_by_the_module_and_every_state_of_a_success() {
    let f = Fixture::new(Behaviour {
        read: true,
        rollback: "Yes",
        ..Default::default()
    });
    let mut b = f.backend();
    assert_eq!(install(&mut b, FILES).await.unwrap(), Activation::Installed);
    b.commit().await.unwrap();
    b.cleanup().await.unwrap();
    assert_eq!(
        f.states(),
        [
            "ProvidePayloadFileSizes",
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "ArtifactCommit",
            "Cleanup"
        ]
    );
    let tree = f.config.tree_dir();
    for line in std::fs::read_to_string(f.rec("calls")).unwrap().lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            parts[1..],
            [tree.to_str().unwrap(), tree.to_str().unwrap()],
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(f.rec("streams")).unwrap(),
        "streams/a.bin\nstreams/b.txt\n"
    );
    assert_eq!(std::fs::read(f.rec("got-a.bin")).unwrap(), b"hello module");
    assert_eq!(std::fs::read(f.rec("got-b.txt")).unwrap(), b"second");
    let at_install = std::fs::read_to_string(f.rec("tree-at-install")).unwrap();
    assert!(!at_install.contains("files"), "{at_install}");
    assert!(!tree.exists(), "the tree is removed after Cleanup");
    assert!(b
        .take_log()
        .iter()
        .any(|l| l.contains("read the payload streams")));
}

#[tokio::test]
async fn the_tree_is_laid_out_as_the_3x_client_does() {
    let f = Fixture::new(Behaviour::default());
    let mut b = f.backend();
    b.prepare(&header("rec-module")).unwrap();
    let tree = f.config.tree_dir();
    let read = |p: &str| std::fs::read_to_string(tree.join(p)).unwrap();
    assert_eq!(read("version"), "3");
    assert_eq!(read("current_artifact_name"), "old-1");
    assert_eq!(read("current_artifact_group"), "");
    assert_eq!(read("current_device_type"), "qemu");
    assert_eq!(read("header/artifact_name"), "new-1");
    assert_eq!(read("header/artifact_group"), "grp");
    assert_eq!(read("header/payload_type"), "rec-module");
    assert_eq!(read("header/meta-data"), "null");
    assert_eq!(read("header/type-info"), "{\n  \"type\": \"rec-module\"\n}");
    let meta = |p: &str| std::fs::symlink_metadata(tree.join(p)).unwrap();
    assert!(meta("stream-next").file_type().is_fifo());
    assert_eq!(meta("tmp").permissions().mode() & 0o777, 0o700);
    assert_eq!(meta("version").permissions().mode() & 0o777, 0o600);
    assert!(meta("streams").is_dir());
    // A second prepare starts from nothing.
    std::fs::write(tree.join("tmp/leftover"), "x").unwrap();
    b.prepare(&header("rec-module")).unwrap();
    assert!(!tree.join("tmp/leftover").exists());
}

#[tokio::test]
async fn a_module_that_reads_no_streams_gets_files() {
    let f = Fixture::new(Behaviour::default());
    let mut b = f.backend();
    assert_eq!(install(&mut b, FILES).await.unwrap(), Activation::Installed);
    assert_eq!(
        std::fs::read(f.rec("files/a.bin")).unwrap(),
        b"hello module"
    );
    assert_eq!(std::fs::read(f.rec("files/b.txt")).unwrap(), b"second");
    let at_install = std::fs::read_to_string(f.rec("tree-at-install")).unwrap();
    assert!(at_install.contains("files"), "{at_install}");
    assert!(
        !at_install.contains("stream"),
        "no streams tree left: {at_install}"
    );
    assert!(!f.rec("streams").exists());
}

#[tokio::test]
async fn download_with_file_sizes() {
    let f = Fixture::new(Behaviour {
        read: true,
        sizes: "Yes",
        ..Default::default()
    });
    let mut b = f.backend();
    install(&mut b, FILES).await.unwrap();
    assert_eq!(
        f.states()[..2],
        ["ProvidePayloadFileSizes", "DownloadWithFileSizes"]
    );
    assert_eq!(
        std::fs::read_to_string(f.rec("streams")).unwrap(),
        "streams/a.bin 12\nstreams/b.txt 6\n"
    );
    assert_eq!(std::fs::read(f.rec("got-b.txt")).unwrap(), b"second");
}

#[tokio::test]
async fn needs_artifact_reboot_answers() {
    for (answer, activation, parsed) in [
        ("Yes", Activation::RebootRequired, RebootAnswer::Yes),
        (
            "Automatic",
            Activation::RebootRequired,
            RebootAnswer::Automatic,
        ),
        ("No", Activation::Installed, RebootAnswer::No),
        ("", Activation::Installed, RebootAnswer::No),
    ] {
        let f = Fixture::new(Behaviour {
            reboot: answer,
            ..Default::default()
        });
        let mut b = f.backend();
        assert_eq!(
            install(&mut b, FILES).await.unwrap(),
            activation,
            "{answer}"
        );
        assert_eq!(b.reboot_answer(), Some(parsed));
        let reboot = b.reboot().await.unwrap();
        match answer {
            "Yes" => {
                assert_eq!(reboot, Reboot::Installer);
                b.installer_reboot().await.unwrap();
                assert!(b.verify_reboot().await.unwrap());
                assert_eq!(f.states()[5..], ["ArtifactReboot", "ArtifactVerifyReboot"]);
            }
            "Automatic" => assert_eq!(reboot, Reboot::Host),
            _ => assert_eq!(reboot, Reboot::None),
        }
        // Asked once: a new backend (a restart) finds the answer kept.
        let mut again = f.backend();
        assert_eq!(again.reboot().await.unwrap(), reboot);
        assert_eq!(
            f.states()
                .iter()
                .filter(|s| *s == "NeedsArtifactReboot")
                .count(),
            1
        );
    }
    let f = Fixture::new(Behaviour {
        reboot: "Maybe",
        ..Default::default()
    });
    let err = install(&mut f.backend(), FILES).await.unwrap_err();
    assert!(err.contains("NeedsArtifactReboot"), "{err}");
}

#[tokio::test]
async fn rollback_when_supported_and_when_not() {
    let f = Fixture::new(Behaviour {
        rollback: "Yes",
        reboot: "Yes",
        ..Default::default()
    });
    let mut b = f.backend();
    install(&mut b, FILES).await.unwrap();
    // After a restart: a new backend, the answers kept beside the tree.
    let mut b = f.backend();
    assert!(b.can_roll_back().await.unwrap());
    b.rollback().await.unwrap();
    assert_eq!(b.rollback_reboot().await.unwrap(), Reboot::Installer);
    b.installer_rollback_reboot().await.unwrap();
    b.verify_rollback_reboot().await.unwrap();
    b.failure().await.unwrap();
    b.cleanup().await.unwrap();
    assert_eq!(
        f.states()[5..],
        [
            "ArtifactRollback",
            "ArtifactRollbackReboot",
            "ArtifactVerifyRollbackReboot",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
    assert!(!f.config.tree_dir().exists());
    assert!(!f.config.answers_path().exists());

    let f = Fixture::new(Behaviour {
        rollback: "No",
        ..Default::default()
    });
    let mut b = f.backend();
    install(&mut b, FILES).await.unwrap();
    assert!(!b.can_roll_back().await.unwrap());
    let err = b.rollback().await.unwrap_err();
    assert!(
        err.to_string().contains("does not support rollback"),
        "{err}"
    );
    b.failure().await.unwrap();
    b.cleanup().await.unwrap();
    assert_eq!(f.states()[5..], ["ArtifactFailure", "Cleanup"]);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let f = Fixture::new(Behaviour {
        extra: Some((
            "ArtifactInstall",
            "sleep 1000 & echo $! > \"$REC/pid\"; sleep 1000",
        )),
        ..Default::default()
    });
    fails_in_time(&f, |c| c.timeout = Duration::from_secs(2), "timed out").await;
    let pid: i32 = std::fs::read_to_string(f.rec("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone(pid),
        "the module's background child {pid} outlived the timeout"
    );
    assert!(!f.states().contains(&"NeedsArtifactReboot".to_string()));
}

/// An install with the fixture's config changed by `set` fails with `want` within 10 s.
async fn fails_in_time(f: &Fixture, set: impl FnOnce(&mut ModuleConfig), want: &str) {
    let mut config = f.config.clone();
    set(&mut config);
    let mut b = ModuleBackend::new(config, "rec-module");
    let started = Instant::now();
    let err = install(&mut b, FILES).await.unwrap_err();
    assert!(err.contains(want), "{err}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The engine's failure path.
    b.abort().await.unwrap();
    b.failure().await.unwrap();
    b.cleanup().await.unwrap();
}

/// `pid` is dead: no such process, or a zombie nobody reaped yet.
fn gone(pid: i32) -> bool {
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')) => {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    false
}

#[tokio::test]
async fn a_module_that_never_opens_a_fifo_cannot_hang_the_bridge() {
    for hang in ["sleep 1000", "cat stream-next >/dev/null; sleep 1000"] {
        let f = Fixture::new(Behaviour {
            extra: Some(("Download", hang)),
            ..Default::default()
        });
        fails_in_time(
            &f,
            |c| c.fifo_timeout = Duration::from_secs(1),
            "did not open",
        )
        .await;
        assert_eq!(
            f.states()[1..],
            ["Download", "ArtifactFailure", "Cleanup"],
            "{hang}"
        );
        assert!(!f.config.tree_dir().exists());
    }
}

#[tokio::test]
async fn a_stream_that_fails_verification_never_reaches_artifact_install() {
    let f = Fixture::new(Behaviour {
        read: true,
        ..Default::default()
    });
    let mut b = f.backend();
    b.prepare(&header("rec-module")).unwrap();
    b.begin(&info("rec-module", "a.bin", b"hello module"))
        .await
        .unwrap();
    b.write(Bytes::from_static(b"hello")).await.unwrap();
    // The reader found the hash wrong: the engine aborts, then fails the deployment.
    b.abort().await.unwrap();
    b.failure().await.unwrap();
    b.cleanup().await.unwrap();
    assert_eq!(
        f.states(),
        [
            "ProvidePayloadFileSizes",
            "Download",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
    assert!(!f.config.tree_dir().exists());
}

#[tokio::test]
async fn preflight_names_a_missing_module_and_bad_names_are_refused() {
    let f = Fixture::new(Behaviour::default());
    let mut b = ModuleBackend::new(f.config.clone(), "no-such");
    let err = b.preflight().await.unwrap_err().to_string();
    let want = format!(
        "no Update Module 'no-such' in {}",
        f.config.modules_dir.display()
    );
    assert!(err.contains(&want), "{err}");
    let mut b = f.backend();
    let err = install(&mut b, &[("../escape", b"x")]).await.unwrap_err();
    assert!(err.contains("not a plain file name"), "{err}");
}

#[tokio::test]
async fn the_real_single_file_module_installs_a_file() {
    let real = Path::new("/usr/share/mender/modules/v3/single-file");
    if !real.exists() {
        eprintln!("skipped: {} not installed", real.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let mut config = ModuleConfig::for_data_dir(&dir.path().join("data"));
    config.modules_dir = real.parent().unwrap().to_path_buf();
    config.timeout = Duration::from_secs(60);
    let mut b = ModuleBackend::new(config.clone(), "single-file");
    b.preflight().await.unwrap();
    b.prepare(&header("single-file")).unwrap();
    let dest_line = format!("{}\n", dest.display());
    let files: [(&str, &[u8]); 4] = [
        ("dest_dir", dest_line.as_bytes()),
        ("filename", b"hello.txt\n"),
        ("permissions", b"640\n"),
        ("hello.txt", b"installed by single-file\n"),
    ];
    for (name, data) in files {
        b.begin(&info("single-file", name, data)).await.unwrap();
        b.write(Bytes::copy_from_slice(data)).await.unwrap();
    }
    assert_eq!(b.finish(&NoProgress).await.unwrap(), Activation::Installed);
    let installed = dest.join("hello.txt");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        b"installed by single-file\n"
    );
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    b.commit().await.unwrap();
    b.cleanup().await.unwrap();
    assert!(!config.tree_dir().exists());
}
