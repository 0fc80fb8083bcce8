//! Update Modules through the engine and the simulator (issue 12): a recording shell module
//! (every call with its working directory, the streams it read, the state scripts in the
//! same trace) deployed as a device does, with the raw A/B writer as the built-in backend.
//! What the dashboard shows, what the module was called with and in which order, what the
//! device records afterwards (provides, `_INCONSISTENT`), and the standalone install.
#![cfg(feature = "sim")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::device::{history, Device, DEVICE_TYPE};
use common::sim::TestSim;
use common::{finals, script};
use hyper::Method;
use mender_api::DeploymentStatus;
use mender_artifact::writer::{
    write_artifact, ArtifactSpec, PayloadFile, ScriptFile, WriteOptions,
};
use mender_bridge::deploy::engine::{Engine, Outcome};
use mender_bridge::deploy::standalone::{InstallOutcome, Standalone, StopPoint, Stops};
use mender_bridge_backends::module::ModuleConfig;
use mender_bridge_backends::raw::RawBackend;
use mender_bridge_backends::{AnyBackend, Backend, Installers};

const TYPE: &str = "rec-module";
const FILES: [(&str, &[u8]); 2] = [("a.bin", b"first payload file"), ("b.txt", b"second")];

/// How the recording module behaves (its `behaviour` file, read at every call).
#[derive(Clone)]
struct Behaviour {
    /// Reads the streams in Download (else the bridge stores files/).
    read: bool,
    /// Answers.
    sizes: &'static str,
    reboot: &'static str,
    rollback: &'static str,
    /// This state exits 1.
    fail: &'static str,
    /// Shell run at the start of this state.
    extra: Option<(&'static str, &'static str)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            read: true,
            sizes: "",
            reboot: "No",
            rollback: "Yes",
            fail: "none",
            extra: None,
        }
    }
}

/// A device with the recording module in its own modules directory.
struct Rig {
    sim: TestSim,
    dev: Device,
    modules: PathBuf,
    rec: PathBuf,
    timeout: Duration,
}

impl Rig {
    async fn new(b: Behaviour) -> Self {
        let sim = TestSim::start().await;
        let dev = Device::new(&sim).await;
        let modules = dev.dir.path().join("modules");
        let rec = dev.dir.path().join("rec");
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::create_dir_all(&rec).unwrap();
        let rig = Rig {
            sim,
            dev,
            modules,
            rec,
            timeout: Duration::from_secs(30),
        };
        rig.behave(b);
        script(&rig.modules.join(TYPE), &recording_module(&rig.rec));
        rig
    }

    /// Changes how the module behaves from its next call on.
    fn behave(&self, b: Behaviour) {
        let (extra_state, extra) = b.extra.unwrap_or(("none", ":"));
        let text = format!(
            "READ={}\nSIZES='{}'\nREBOOT='{}'\nROLLBACK='{}'\nFAIL='{}'\nEXTRA_STATE='{}'\nextra() {{ {}\n}}\n",
            if b.read { "yes" } else { "no" },
            b.sizes,
            b.reboot,
            b.rollback,
            b.fail,
            extra_state,
            extra
        );
        std::fs::write(self.rec.join("behaviour"), text).unwrap();
    }

    fn module_config(&self) -> ModuleConfig {
        let mut c = ModuleConfig::for_data_dir(&self.dev.dir.path().join("data"));
        c.modules_dir = self.modules.clone();
        c.timeout = self.timeout;
        c.fifo_timeout = Duration::from_secs(10);
        c
    }

    fn installers(&self) -> Installers {
        Installers::new(
            AnyBackend::Raw(RawBackend::new(self.dev.rig.config.clone())),
            self.module_config(),
        )
    }

    /// A fresh engine, as a (re)started process builds it.
    fn engine(&self) -> Engine<Installers> {
        self.dev.engine_with(&self.sim, self.installers())
    }

    /// Writes a `rec-module` artifact with `files`, uploads and deploys it.
    async fn deploy(&self, spec: ArtifactSpec, files: &[(&str, &[u8])]) -> String {
        let name = spec.name.clone();
        self.sim.upload(artifact(spec, files).await).await;
        self.sim.deploy(&name, &self.dev.id).await
    }

    /// The states the module was called in, and the state scripts, in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.rec.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rec(&self, name: &str) -> PathBuf {
        self.rec.join(name)
    }

    fn tree(&self) -> PathBuf {
        self.module_config().tree_dir()
    }

    fn installed_name(&self) -> String {
        self.dev.store().installed().unwrap().unwrap()["artifact_name"].clone()
    }

    async fn statuses(&self, dep: &str) -> Vec<String> {
        let mut s: Vec<String> = history(&self.sim, dep, &self.dev.id)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        s.dedup();
        s
    }

    async fn failure_substate(&self, dep: &str) -> String {
        history(&self.sim, dep, &self.dev.id)
            .await
            .into_iter()
            .find(|(s, _)| s == "failure")
            .and_then(|(_, sub)| sub)
            .unwrap_or_default()
    }

    async fn log(&self, dep: &str) -> String {
        self.sim
            .http
            .manage_ok(
                Method::GET,
                &format!("/deployments/{dep}/devices/{}/log", self.dev.id),
                None,
            )
            .await
            .to_string()
    }
}

/// The recording module: each call appends its state to `calls` (and a line to `wrong-cwd`
/// if the working directory is not the tree it was given); the query states answer from
/// `behaviour`; `Download` reads every stream (or none), recording the `stream-next` lines
/// and what each stream held.
fn recording_module(rec: &Path) -> String {
    format!(
        r#"#!/bin/sh
REC={rec}
. "$REC/behaviour"
STATE="$1"
echo "$STATE" >> "$REC/calls"
[ "$(pwd)" = "$2" ] || echo "$STATE $(pwd) $2" >> "$REC/wrong-cwd"
[ "$STATE" = "$EXTRA_STATE" ] && extra
[ "$STATE" = "$FAIL" ] && {{ echo "failing $STATE on purpose" >&2; exit 1; }}
case "$STATE" in
  ProvidePayloadFileSizes) echo "$SIZES" ;;
  NeedsArtifactReboot) echo "$REBOOT" ;;
  SupportsRollback) echo "$ROLLBACK" ;;
  ArtifactInstall) ls > "$REC/tree-at-install"; [ -d files ] && cp files/* "$REC/" ;;
  Download|DownloadWithFileSizes)
    if [ "$READ" = yes ]; then
      while true; do
        line=$(cat stream-next)
        [ -z "$line" ] && break
        echo "$line" >> "$REC/streams"
        name=${{line%% *}}
        cat "$name" > "$REC/got-$(basename "$name")"
      done
    fi ;;
esac
exit 0
"#,
        rec = rec.display()
    )
}

/// Artifact scripts that record themselves in the module's trace.
fn recording_scripts(rec: &Path) -> Vec<ScriptFile> {
    [
        "ArtifactInstall_Enter_01",
        "ArtifactInstall_Leave_01",
        "ArtifactReboot_Enter_01",
        "ArtifactReboot_Leave_01",
        "ArtifactReboot_Error_01",
        "ArtifactCommit_Enter_01",
        "ArtifactCommit_Leave_01",
        "ArtifactRollback_Enter_01",
        "ArtifactRollback_Leave_01",
        "ArtifactRollbackReboot_Enter_01",
        "ArtifactRollbackReboot_Leave_01",
        "ArtifactFailure_Enter_01",
        "ArtifactFailure_Leave_01",
    ]
    .into_iter()
    .map(|name| {
        ScriptFile::new(
            name,
            format!(
                "#!/bin/sh\necho 'script {name}' >> {}/calls\n",
                rec.display()
            ),
        )
    })
    .collect()
}

fn spec(name: &str) -> ArtifactSpec {
    ArtifactSpec::module(name, [DEVICE_TYPE], TYPE)
}

async fn artifact(spec: ArtifactSpec, files: &[(&str, &[u8])]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(name, data)| {
            PayloadFile::new(
                *name,
                data.len() as u64,
                std::io::Cursor::new(data.to_vec()),
            )
        })
        .collect();
    let opts = WriteOptions {
        compression: mender_artifact::Compression::None,
        ..WriteOptions::default()
    };
    let mut out = Vec::new();
    write_artifact(&mut out, &spec, files, &opts).await.unwrap();
    out
}

/// The module states of a full install, from the first call to `NeedsArtifactReboot`.
fn install_states(download: &str) -> Vec<&str> {
    vec![
        "ProvidePayloadFileSizes",
        download,
        "SupportsRollback",
        "ArtifactInstall",
        "NeedsArtifactReboot",
    ]
}

fn with(mut states: Vec<&'static str>, more: &[&'static str]) -> Vec<String> {
    states.extend_from_slice(more);
    states.into_iter().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_install_streams_every_file_and_runs_every_state_of_a_success() {
    let rig = Rig::new(Behaviour::default()).await;
    let mut spec = spec("release-2");
    spec.scripts = recording_scripts(&rig.rec);
    let dep = rig.deploy(spec, &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(
        rig.calls(),
        [
            "ProvidePayloadFileSizes",
            "Download",
            "SupportsRollback",
            "script ArtifactInstall_Enter_01",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "script ArtifactInstall_Leave_01",
            "script ArtifactCommit_Enter_01",
            "ArtifactCommit",
            "script ArtifactCommit_Leave_01",
            "Cleanup",
        ]
    );
    assert!(!rig.rec("wrong-cwd").exists(), "every call ran in the tree");
    assert_eq!(
        std::fs::read_to_string(rig.rec("streams")).unwrap(),
        "streams/a.bin\nstreams/b.txt\n"
    );
    assert_eq!(std::fs::read(rig.rec("got-a.bin")).unwrap(), FILES[0].1);
    assert_eq!(std::fs::read(rig.rec("got-b.txt")).unwrap(), FILES[1].1);
    let at_install = std::fs::read_to_string(rig.rec("tree-at-install")).unwrap();
    assert!(!at_install.contains("files"), "{at_install}");
    assert_eq!(
        rig.statuses(&dep).await,
        ["downloading", "installing", "success"]
    );
    assert_eq!(rig.installed_name(), "release-2");
    assert!(!rig.tree().exists(), "the tree is removed after Cleanup");
    let log = rig.log(&dep).await;
    assert!(log.is_empty() || !log.contains("error"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_reads_no_streams_gets_its_files_stored() {
    let rig = Rig::new(Behaviour {
        read: false,
        ..Behaviour::default()
    })
    .await;
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit", "Cleanup"])
    );
    // ArtifactInstall copied files/ out of the tree.
    assert_eq!(std::fs::read(rig.rec("a.bin")).unwrap(), FILES[0].1);
    assert_eq!(std::fs::read(rig.rec("b.txt")).unwrap(), FILES[1].1);
    let at_install = std::fs::read_to_string(rig.rec("tree-at-install")).unwrap();
    assert!(
        at_install.contains("files") && !at_install.contains("stream"),
        "{at_install}"
    );
    assert_eq!(rig.statuses(&dep).await.last().unwrap(), "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_with_file_sizes_carries_the_sizes() {
    let rig = Rig::new(Behaviour {
        sizes: "Yes",
        ..Behaviour::default()
    })
    .await;
    rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(rig.calls()[1], "DownloadWithFileSizes");
    assert_eq!(
        std::fs::read_to_string(rig.rec("streams")).unwrap(),
        "streams/a.bin 18\nstreams/b.txt 6\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_without_files_still_goes_through_its_module() {
    let rig = Rig::new(Behaviour::default()).await;
    rig.deploy(spec("release-2"), &[]).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit", "Cleanup"])
    );
    assert!(!rig.rec("streams").exists(), "no stream was offered");
    assert_eq!(rig.installed_name(), "release-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_artifact_reboot_yes_runs_artifact_reboot_and_goes_on() {
    let rig = Rig::new(Behaviour {
        reboot: "Yes",
        ..Behaviour::default()
    })
    .await;
    let mut spec = spec("release-2");
    spec.scripts = recording_scripts(&rig.rec);
    let dep = rig.deploy(spec, &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    let calls = rig.calls();
    assert_eq!(
        calls[calls
            .iter()
            .position(|c| c == "NeedsArtifactReboot")
            .unwrap()..],
        [
            "NeedsArtifactReboot",
            "script ArtifactInstall_Leave_01",
            "script ArtifactReboot_Enter_01",
            "ArtifactReboot",
            "ArtifactVerifyReboot",
            "script ArtifactReboot_Leave_01",
            "script ArtifactCommit_Enter_01",
            "ArtifactCommit",
            "script ArtifactCommit_Leave_01",
            "Cleanup",
        ]
    );
    assert_eq!(
        rig.statuses(&dep).await,
        [
            "downloading",
            "installing",
            "rebooting",
            "installing",
            "success"
        ]
    );
    assert_eq!(rig.installed_name(), "release-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_artifact_reboot_automatic_reboots_the_host_and_resumes() {
    let rig = Rig::new(Behaviour {
        reboot: "Automatic",
        ..Behaviour::default()
    })
    .await;
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    assert!(!rig.calls().contains(&"ArtifactReboot".to_string()));
    // The host rebooted: a new process resumes.
    assert_eq!(
        rig.engine().resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Success))
    );
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            &["ArtifactVerifyReboot", "ArtifactCommit", "Cleanup"]
        )
    );
    assert_eq!(rig.installed_name(), "release-2");
    assert_eq!(finals(&history(&rig.sim, &dep, &rig.dev.id).await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verify_reboot_rolls_back_through_the_module() {
    let rig = Rig::new(Behaviour {
        reboot: "Yes",
        fail: "ArtifactVerifyReboot",
        ..Behaviour::default()
    })
    .await;
    let mut spec = spec("release-2");
    spec.scripts = recording_scripts(&rig.rec);
    let dep = rig.deploy(spec, &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let calls = rig.calls();
    assert_eq!(
        calls[calls.iter().position(|c| c == "ArtifactReboot").unwrap()..],
        [
            "ArtifactReboot",
            "ArtifactVerifyReboot",
            // The check failed: ArtifactReboot_Error, not _Leave, as the official client.
            "script ArtifactReboot_Error_01",
            "script ArtifactRollback_Enter_01",
            "ArtifactRollback",
            "script ArtifactRollback_Leave_01",
            "script ArtifactRollbackReboot_Enter_01",
            "ArtifactRollbackReboot",
            "ArtifactVerifyRollbackReboot",
            "script ArtifactRollbackReboot_Leave_01",
            "script ArtifactFailure_Enter_01",
            "ArtifactFailure",
            "script ArtifactFailure_Leave_01",
            "Cleanup",
        ]
    );
    assert_eq!(rig.installed_name(), "release-1", "rolled back");
    assert!(rig
        .log(&dep)
        .await
        .contains("failing ArtifactVerifyReboot on purpose"));
    assert!(!rig.tree().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_rollback_reboots_the_host_and_verifies_after_it() {
    let rig = Rig::new(Behaviour {
        reboot: "Automatic",
        fail: "ArtifactVerifyReboot",
        ..Behaviour::default()
    })
    .await;
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    // After the reboot the new software fails its check: roll back, reboot the host again.
    assert_eq!(
        rig.engine().resume().await.unwrap(),
        Some(Outcome::RebootRequired)
    );
    assert_eq!(finals(&history(&rig.sim, &dep, &rig.dev.id).await), 0);
    assert_eq!(
        rig.engine().resume().await.unwrap(),
        Some(Outcome::Finished(DeploymentStatus::Failure))
    );
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            &[
                "ArtifactVerifyReboot",
                "ArtifactRollback",
                "ArtifactVerifyRollbackReboot",
                "ArtifactFailure",
                "Cleanup"
            ]
        )
    );
    assert_eq!(rig.installed_name(), "release-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_failure_rolls_back_or_leaves_the_device_inconsistent() {
    // SupportsRollback: Yes — rolled back; the reboot question is asked for the rollback.
    let rig = Rig::new(Behaviour {
        fail: "ArtifactInstall",
        ..Behaviour::default()
    })
    .await;
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        rig.calls(),
        [
            "ProvidePayloadFileSizes",
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "ArtifactRollback",
            "NeedsArtifactReboot",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
    assert_eq!(rig.installed_name(), "release-1");
    assert!(rig.failure_substate(&dep).await.contains("ArtifactInstall"));

    // SupportsRollback: No — nothing to undo with: `<name>_INCONSISTENT`, as the official
    // client records it.
    let rig = Rig::new(Behaviour {
        fail: "ArtifactInstall",
        rollback: "No",
        ..Behaviour::default()
    })
    .await;
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        rig.calls(),
        [
            "ProvidePayloadFileSizes",
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
    assert_eq!(rig.installed_name(), "release-2_INCONSISTENT");
    assert_eq!(
        rig.engine().device_provides().artifact_name,
        "release-2_INCONSISTENT",
        "the next update check says so"
    );
    assert!(rig.log(&dep).await.contains("inconsistent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_over_its_timeout_is_killed_with_its_process_group() {
    let mut rig = Rig::new(Behaviour {
        extra: Some((
            "ArtifactInstall",
            "sleep 1000 & echo $! > \"$REC/pid\"; sleep 1000",
        )),
        ..Behaviour::default()
    })
    .await;
    rig.timeout = Duration::from_secs(2);
    let dep = rig.deploy(spec("release-2"), &FILES).await;
    let started = Instant::now();
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let sub = rig.failure_substate(&dep).await;
    assert!(
        sub.contains("ArtifactInstall") && sub.contains("timed out"),
        "{sub}"
    );
    let pid: i32 = std::fs::read_to_string(rig.rec("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone(pid), "the module's child {pid} outlived the timeout");
    assert_eq!(
        rig.calls()[3..],
        [
            "ArtifactInstall",
            "ArtifactRollback",
            "NeedsArtifactReboot",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_dying_mid_stream_never_reaches_artifact_install() {
    let rig = Rig::new(Behaviour {
        extra: Some((
            "Download",
            "line=$(cat stream-next); head -c 5 \"${line%% *}\" > /dev/null; exit 3",
        )),
        ..Behaviour::default()
    })
    .await;
    let big = common::image(4 << 20, 7);
    let dep = rig
        .deploy(spec("release-2"), &[("big.bin", &big), ("b.txt", b"x")])
        .await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        rig.calls(),
        // A failed download goes to the cleanup, as the official client takes it (its
        // updateStoreState: StorePayloads failed → UpdateCleanupState).
        ["ProvidePayloadFileSizes", "Download", "Cleanup"]
    );
    let sub = rig.failure_substate(&dep).await;
    assert!(
        sub.contains("Download ended (exit status: 3) before reading the whole payload stream"),
        "{sub}"
    );
    assert_eq!(rig.installed_name(), "release-1");
    assert!(!rig.tree().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_fails_verification_never_reaches_artifact_install() {
    let rig = Rig::new(Behaviour::default()).await;
    let big = common::image(1 << 20, 9);
    let good = artifact(spec("release-2"), &[("a.bin", b"small"), ("big.bin", &big)]).await;
    // Flip a byte near the end of the second file, inside the (uncompressed) data tar.
    let mut bytes = good.clone();
    let tail = &big[big.len() - 64..];
    let at = bytes.windows(tail.len()).position(|w| w == tail).unwrap();
    bytes[at] ^= 0xff;
    let id = rig.sim.upload(good).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.sim.http.replace_content(&id, bytes).await;
    let dep = rig.sim.deploy("release-2", &rig.dev.id).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    assert_eq!(
        rig.calls(),
        // A failed download goes to the cleanup, as the official client takes it (its
        // updateStoreState: StorePayloads failed → UpdateCleanupState).
        ["ProvidePayloadFileSizes", "Download", "Cleanup"]
    );
    // The module had the first file, verified, and the second one cut short.
    assert_eq!(std::fs::read(rig.rec("got-a.bin")).unwrap(), b"small");
    let got = std::fs::read(rig.rec("got-big.bin")).unwrap_or_default();
    assert!(got.len() < big.len(), "the unverified tail was withheld");
    let sub = rig.failure_substate(&dep).await;
    assert!(sub.contains("big.bin") || sub.contains("checksum"), "{sub}");
    assert_eq!(rig.installed_name(), "release-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_without_a_module_fails_before_the_payload_streams() {
    let rig = Rig::new(Behaviour::default()).await;
    let big = common::image(1 << 20, 3);
    let dep = rig
        .deploy(
            ArtifactSpec::module("release-2", [DEVICE_TYPE], "nosuch"),
            &[("big.bin", &big)],
        )
        .await;
    let mut e = rig.engine();
    assert_eq!(
        e.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let sub = rig.failure_substate(&dep).await;
    let want = format!("no Update Module 'nosuch' in {}", rig.modules.display());
    assert!(sub.contains(&want), "{sub}");
    common::device::assert_stopped_after_the_header(&e, big.len() as u64);
    assert!(rig.calls().is_empty(), "{:?}", rig.calls());
    assert_eq!(rig.installed_name(), "release-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfs_images_still_go_to_the_built_in_backend() {
    let rig = Rig::new(Behaviour::default()).await;
    let img = common::image(1 << 20, 5);
    let (dep, _) = common::device::deploy(&rig.sim, &rig.dev.id, "release-2", &img, None).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::RebootRequired
    );
    assert!(
        rig.calls().is_empty(),
        "no module was called: {:?}",
        rig.calls()
    );
    assert_eq!(rig.statuses(&dep).await.last().unwrap(), "rebooting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_lists_the_installed_modules() {
    let rig = Rig::new(Behaviour::default()).await;
    assert_eq!(
        update_modules(&rig.installers()).await,
        Some(serde_json::json!(TYPE))
    );
    script(&rig.modules.join("other"), "#!/bin/sh\n");
    std::fs::write(rig.modules.join("not-executable"), "x").unwrap();
    assert_eq!(
        update_modules(&rig.installers()).await,
        Some(serde_json::json!(["other", TYPE]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_install_commit_and_rollback_with_a_module() {
    let rig = Rig::new(Behaviour::default()).await;
    let file = rig.dev.dir.path().join("release-2.mender");
    std::fs::write(&file, artifact(spec("release-2"), &FILES).await).unwrap();
    let standalone = || Standalone::new(rig.dev.store(), rig.installers(), engine_config(&rig));
    let source = || tokio::fs::File::open(file.clone());

    // Rollback supported: install, then commit in a separate run.
    let installed = standalone()
        .install(source().await.unwrap(), &Stops::default(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(installed.outcome, InstallOutcome::AwaitingCommit);
    assert_eq!(rig.installed_name(), "release-1");
    let done = standalone().commit(&Stops::default()).await.unwrap();
    assert_eq!(done.artifact, "release-2");
    assert_eq!(done.outcome, InstallOutcome::Committed);
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit", "Cleanup"])
    );
    assert_eq!(rig.installed_name(), "release-2");
    assert!(!rig.tree().exists());

    // Roll back a second install.
    std::fs::remove_file(rig.rec("calls")).unwrap();
    std::fs::write(&file, artifact(spec("release-3"), &FILES).await).unwrap();
    standalone()
        .install(source().await.unwrap(), &Stops::default(), &mut |_, _| {})
        .await
        .unwrap();
    standalone().rollback(&Stops::default()).await.unwrap();
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            // As the official client: the reboot question again after the rollback, unless
            // the answer was a reboot.
            &[
                "ArtifactRollback",
                "NeedsArtifactReboot",
                "ArtifactFailure",
                "Cleanup"
            ]
        )
    );
    assert_eq!(rig.installed_name(), "release-2");

    // No rollback support: committed at once, as the official client does.
    std::fs::remove_file(rig.rec("calls")).unwrap();
    rig.behave(Behaviour {
        rollback: "No",
        reboot: "Automatic",
        ..Behaviour::default()
    });
    std::fs::write(&file, artifact(spec("release-4"), &FILES).await).unwrap();
    let installed = standalone()
        .install(source().await.unwrap(), &Stops::default(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(installed.outcome, InstallOutcome::CommittedRebootRequired);
    assert_eq!(rig.installed_name(), "release-4");
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit", "Cleanup"])
    );
}

/// `--stop-before` and `resume` with a module: the module's states split at the stops,
/// each run once, in the order of one uninterrupted install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stop_before_and_resume_with_a_module() {
    let rig = Rig::new(Behaviour::default()).await;
    let file = rig.dev.dir.path().join("release-2.mender");
    std::fs::write(&file, artifact(spec("release-2"), &FILES).await).unwrap();
    let standalone = || Standalone::new(rig.dev.store(), rig.installers(), engine_config(&rig));
    let stops = |names: &[&str]| Stops::parse(names).unwrap();
    let source = tokio::fs::File::open(&file).await.unwrap();

    // Stopped after the download: the module downloaded, nothing was installed.
    let done = standalone()
        .install(source, &stops(&["ArtifactInstall_Enter"]), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        InstallOutcome::Stopped(StopPoint::ArtifactInstallEnter)
    );
    let download = with(install_states("Download")[..3].to_vec(), &[]);
    assert_eq!(rig.calls(), download);
    assert!(rig.tree().is_dir(), "the tree is kept for resume");
    // A second stop at the same point does nothing; commit refuses.
    let again = standalone()
        .resume(&stops(&["ArtifactInstall_Enter"]))
        .await
        .unwrap();
    assert_eq!(again.outcome, done.outcome);
    let e = standalone().commit(&Stops::default()).await.unwrap_err();
    assert!(e.to_string().contains("`resume` installs it"), "{e}");
    assert_eq!(rig.calls(), download);

    // Resume: the install, then it waits for the commit, as after a plain install.
    let done = standalone().resume(&Stops::default()).await.unwrap();
    assert_eq!(done.outcome, InstallOutcome::AwaitingCommit);
    assert_eq!(rig.calls(), with(install_states("Download"), &[]));
    assert_eq!(rig.installed_name(), "release-1");

    // Commit, stopped before ArtifactCommit_Leave: committed, not cleaned up.
    let done = standalone()
        .commit(&stops(&["ArtifactCommit_Leave"]))
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        InstallOutcome::Stopped(StopPoint::ArtifactCommitLeave)
    );
    assert_eq!(rig.installed_name(), "release-2");
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit"])
    );
    let e = standalone().rollback(&Stops::default()).await.unwrap_err();
    assert!(e.to_string().contains("`resume` completes it"), "{e}");
    let done = standalone().resume(&Stops::default()).await.unwrap();
    assert_eq!(done.outcome, InstallOutcome::Committed);
    assert_eq!(
        rig.calls(),
        with(install_states("Download"), &["ArtifactCommit", "Cleanup"])
    );
    assert!(!rig.tree().exists());
    let e = standalone().resume(&Stops::default()).await.unwrap_err();
    assert!(matches!(
        e,
        mender_bridge::deploy::standalone::StandaloneError::NothingInProgress
    ));

    // A rollback stopped before ArtifactFailure_Enter, then resumed.
    std::fs::remove_file(rig.rec("calls")).unwrap();
    std::fs::write(&file, artifact(spec("release-3"), &FILES).await).unwrap();
    let source = tokio::fs::File::open(&file).await.unwrap();
    standalone()
        .install(source, &Stops::default(), &mut |_, _| {})
        .await
        .unwrap();
    let done = standalone()
        .rollback(&stops(&["ArtifactFailure_Enter"]))
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        InstallOutcome::Stopped(StopPoint::ArtifactFailureEnter)
    );
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            &["ArtifactRollback", "NeedsArtifactReboot"]
        )
    );
    let done = standalone().resume(&Stops::default()).await.unwrap();
    assert_eq!(
        done.outcome,
        InstallOutcome::RolledBack {
            failed: false,
            reboot_needed: false
        }
    );
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            &[
                "ArtifactRollback",
                "NeedsArtifactReboot",
                "ArtifactFailure",
                "Cleanup"
            ]
        )
    );
    assert_eq!(rig.installed_name(), "release-2");
    let e = Stops::parse(&["ArtifactReboot_Enter"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"ArtifactReboot_Enter\"") && e.contains("ArtifactCommit_Leave"),
        "{e}"
    );
}

/// The `update_modules` inventory attribute.
async fn update_modules(i: &Installers) -> Option<serde_json::Value> {
    i.inventory()
        .await
        .into_iter()
        .find(|(k, _)| k == "update_modules")
        .map(|(_, v)| v)
}

/// The engine settings of [`Device::engine_with`], for the standalone operations.
fn engine_config(rig: &Rig) -> mender_bridge::deploy::engine::EngineConfig {
    common::device::engine_config(&rig.dev)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_type_that_is_a_path_runs_nothing() {
    // Attack: the type names an executable outside the modules directory.
    let rig = Rig::new(Behaviour::default()).await;
    let canary = rig.rec("canary");
    script(
        &rig.rec("evil"),
        &format!("#!/bin/sh\ntouch {}\n", canary.display()),
    );
    // Our writer refuses such a type; the real mender-artifact writes it.
    let payload = rig.rec("payload.bin");
    std::fs::write(&payload, "x").unwrap();
    let out = rig.rec("evil.mender");
    common::run(std::process::Command::new("mender-artifact").args([
        "write",
        "module-image",
        "-T",
        "../rec/evil",
        "-t",
        DEVICE_TYPE,
        "-n",
        "release-2",
        "-f",
        payload.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    rig.sim.upload(std::fs::read(&out).unwrap()).await;
    let dep = rig.sim.deploy("release-2", &rig.dev.id).await;
    assert_eq!(
        rig.engine().check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Failure)
    );
    let sub = rig.failure_substate(&dep).await;
    assert!(sub.contains("cannot name an Update Module"), "{sub}");
    assert!(!canary.exists(), "the attacker's program ran");
    assert!(rig.calls().is_empty());
    assert_eq!(rig.installed_name(), "release-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_on_a_modules_only_device_with_reboot_exit_code() {
    // A device with no A/B slots: Update Modules only, as with the official client.
    let rig = Rig::new(Behaviour {
        reboot: "Automatic",
        ..Behaviour::default()
    })
    .await;
    let dir = rig.dev.dir.path().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    common::device_data_dir(&dir);
    std::fs::write(dir.join("mender.conf"), "{}").unwrap();
    std::fs::write(
        dir.join("bridge.toml"),
        format!("modules_dir = \"{}\"\n", rig.modules.display()),
    )
    .unwrap();
    let file = dir.join("release-2.mender");
    std::fs::write(&file, artifact(spec("release-2"), &FILES).await).unwrap();
    let run = |args: &[&str]| {
        let out = common::bridge_command(&dir, args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&["install", file.to_str().unwrap(), "--reboot-exit-code"]);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("reboot"), "{text}");
    // After the (host) reboot.
    let (code, text) = run(&["commit"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        rig.calls(),
        with(
            install_states("Download"),
            &["ArtifactVerifyReboot", "ArtifactCommit", "Cleanup"]
        )
    );
    let (_, text) = run(&["show-artifact"]);
    assert_eq!(text.trim(), "release-2");

    // A rootfs image has nowhere to go: the error names the missing setting.
    let rootfs = dir.join("rootfs.mender");
    let img = common::image(64 << 10, 1);
    let mut out = Vec::new();
    write_artifact(
        &mut out,
        &ArtifactSpec::rootfs("release-3", [DEVICE_TYPE]),
        vec![PayloadFile::new(
            "rootfs.ext4",
            img.len() as u64,
            std::io::Cursor::new(img),
        )],
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    std::fs::write(&rootfs, out).unwrap();
    let (code, text) = run(&["install", rootfs.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("backend.raw.a.device is not set"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_dir_still_gives_the_module_its_tree() {
    // `mender-bridge -d data install …` from the device's directory: the module runs in
    // the tree, so the path it gets must not be relative to where the bridge started.
    let rig = Rig::new(Behaviour {
        read: false,
        ..Behaviour::default()
    })
    .await;
    let dir = rig.dev.dir.path().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    common::device_data_dir(&dir);
    std::fs::write(dir.join("mender.conf"), "{}").unwrap();
    std::fs::write(
        dir.join("bridge.toml"),
        format!("modules_dir = \"{}\"\n", rig.modules.display()),
    )
    .unwrap();
    std::fs::write(
        dir.join("release-2.mender"),
        artifact(spec("release-2"), &FILES).await,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mender-bridge"))
        .current_dir(&dir)
        .args([
            "-c",
            "mender.conf",
            "-d",
            "data",
            "--bridge-config",
            "bridge.toml",
        ])
        .args(["install", "release-2.mender"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        !rig.rec("wrong-cwd").exists(),
        "{:?}",
        std::fs::read_to_string(rig.rec("wrong-cwd"))
    );
    assert_eq!(std::fs::read(rig.rec("a.bin")).unwrap(), FILES[0].1);
}
