//! Issue 12's ground truth for Update Modules: one recording module (a shell script written
//! here) runs under the official client (Debian `mender-client` 3.4, `mender daemon`) and
//! under the bridge daemon, each against its own simulator, for the same artifact bytes;
//! the sequence of states it was called with must be the same, and so must the final
//! status, the number of times the client had to be started, and the artifact name the
//! device reports afterwards.
//!
//! The module appends every call to `<rec>/trace` and checks that it got two arguments and
//! that its working directory is `$2`, the payload's tree (a mismatch goes to
//! `<rec>/errors`, which must stay empty). What it does comes from `rec-module.conf` next
//! to it: read the streams or not, its answers to `SupportsRollback` and
//! `NeedsArtifactReboot`, a state that exits 1 (optionally only once), and a state in
//! which it kills its parent — the client — with `kill -9 $PPID`, once: the client dies
//! in that state, as on a power cut, and the harness starts it again, as systemd restarts
//! it. Under both clients `$PPID` is the client itself (both start the module directly, in
//! a process group of its own); the module records the parent's name and the test checks
//! it. A host reboot (`Automatic`) runs the client's reboot command — the official client
//! runs `reboot` from its `PATH`, the bridge its `reboot_command` — which here is a script
//! that writes `(host reboot)` into the trace and kills the client; the harness starts it
//! again, as after a boot.
//!
//! State scripts record into the same trace (`script <State>_<Action>`): the artifact
//! carries one for each artifact state × Enter/Leave/Error, the device one for each
//! Download action (the official client's rootfs scripts, `/etc/mender/scripts`, and the
//! bridge's `state_scripts_dir`). They find the records through `REC_DIR`, set in both
//! clients' environment, and `SCRIPT_FAIL` in `$REC_DIR/scripts.conf` names one that exits 1.
//!
//! The official client runs in a private mount namespace (`unshare --mount`, root only)
//! with temp dirs bind-mounted over `/etc/mender`, `/usr/share/mender/identity` and
//! `/usr/share/mender/modules/v3`; nothing of the host changes.
#![cfg(feature = "sim")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::daemon::{sim_conf, write_device_files, DeviceFiles};
use common::device::statuses;
use common::sim::TestSim;
use common::slots::SlotRig;
use common::{script, DEVICE_TYPE};
use hyper::Method;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const MODULE: &str = "rec-module";
const RELEASE: &str = "release-2";
const MAC: &str = "02:00:00:00:7e:c0";
/// How long one client may take for one deployment, restarts included.
const DEPLOYMENT_LIMIT: Duration = Duration::from_secs(60);
/// More starts than any scenario needs: a client that keeps dying is a failure.
const MAX_STARTS: u32 = 6;

/// The recording Update Module. `$0`'s directory holds `rec-module.conf`, which says where
/// the records go (`REC`) and how to behave.
const MODULE_SCRIPT: &str = r#"#!/bin/sh
state="$1"
here=$(dirname "$0")
. "$here/rec-module.conf"
echo "$state" >> "$REC/trace"
[ $# -eq 2 ] || echo "$state: $# arguments: $*" >> "$REC/errors"
cwd=$(pwd -P)
tree=$(cd "$2" 2>/dev/null && pwd -P)
[ "$cwd" = "$tree" ] || echo "$state: working directory $cwd is not \$2 ($2)" >> "$REC/errors"
case "$cwd" in
*/modules/v3/payloads/0000/tree) ;;
*) echo "$state: unexpected tree $cwd" >> "$REC/errors" ;;
esac
if [ "$state" = "$KILL" ] && [ ! -e "$REC/killed" ]; then
    cat "/proc/$PPID/comm" > "$REC/killed"
    echo "(client killed)" >> "$REC/trace"
    kill -9 "$PPID"
    exit 0
fi
if [ "$state" = "$FAIL" ]; then
    if [ "$FAIL_ONCE" != yes ] || [ ! -e "$REC/failed" ]; then
        touch "$REC/failed"
        echo "$state fails on purpose" >&2
        exit 1
    fi
fi
case "$state" in
Download)
    mkdir -p "$REC/tree"
    cp version current_artifact_name current_artifact_group current_device_type "$REC/tree/"
    cp -r header "$REC/tree/"
    if [ "$STREAMS" = yes ]; then
        while :; do
            next=$(cat stream-next) || exit 1
            [ -n "$next" ] || break
            cat "$next" > "tmp/$(basename "$next")" || exit 1
        done
    fi
    ;;
ArtifactInstall)
    if [ "$STREAMS" = yes ]; then d=tmp; else d=files; fi
    for f in "$d"/*; do echo "$(basename "$f") $(cksum < "$f")"; done > "$REC/payload"
    ;;
SupportsRollback)
    echo "$ROLLBACK"
    ;;
NeedsArtifactReboot)
    echo "$REBOOT"
    ;;
esac
exit 0
"#;

/// A recording state script: appends `script <name>` to the trace, and exits 1 when
/// `scripts.conf` names it.
fn state_script(name: &str) -> String {
    format!(
        "#!/bin/sh\n. \"${{REC_DIR:?}}/scripts.conf\"\necho 'script {name}' >> \"$REC_DIR/trace\"\n\
         if [ \"$SCRIPT_FAIL\" = {name} ]; then echo '{name} fails on purpose' >&2; exit 1; fi\n"
    )
}

/// The device's (rootfs) recording scripts in `dir`: Download_Enter/Leave/Error.
fn rootfs_scripts(dir: &Path) {
    std::fs::create_dir_all(dir).expect("scripts dir");
    std::fs::write(dir.join("version"), "3\n").expect("version");
    for action in ["Enter", "Leave", "Error"] {
        let name = format!("Download_{action}");
        let path = dir.join(format!("{name}_00_rec"));
        std::fs::write(&path, state_script(&name)).expect("script");
        chmod(&path, 0o755);
    }
}

/// One scenario: the module's behaviour, and the artifact name the device must report
/// once the deployment ended.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// The module reads `stream-next` and the streams (else the client stores `files/`).
    streams: bool,
    /// The answer to `NeedsArtifactReboot`: `No`, `Yes` or `Automatic`.
    reboot: &'static str,
    /// The answer to `SupportsRollback`: `Yes` or `No`.
    rollback: &'static str,
    /// The state that exits 1.
    fail: Option<&'static str>,
    /// Only its first call fails.
    fail_once: bool,
    /// The state in which the module kills the client (once).
    kill: Option<&'static str>,
    /// The state script (`<State>_<Action>`) that exits 1.
    script_fail: Option<&'static str>,
    /// The artifact name in the device's inventory afterwards.
    artifact_after: &'static str,
}

const BASE: Scenario = Scenario {
    streams: true,
    reboot: "No",
    rollback: "Yes",
    fail: None,
    fail_once: false,
    kill: None,
    script_fail: None,
    artifact_after: RELEASE,
};

/// What one client did with the scenario.
#[derive(Debug)]
struct Run {
    /// The module's calls, `(client killed)` and `(host reboot)` markers between them.
    trace: Vec<String>,
    /// Argument or working-directory mismatches the module saw.
    errors: String,
    /// The parent the module killed (`/proc/$PPID/comm`), if it killed one.
    killed: Option<String>,
    /// The statuses the device reported, the last one final.
    statuses: Vec<String>,
    /// The artifact name in the device's inventory after the deployment.
    artifact_name: Option<String>,
    /// How many times the client was started.
    starts: u32,
    /// The tree's value files and header as the module saw them in `Download`.
    tree: BTreeMap<String, String>,
    /// The payload files the module found in `ArtifactInstall` (name and cksum).
    payload: String,
}

impl Run {
    fn status(&self) -> &str {
        self.statuses.last().map(String::as_str).unwrap_or("")
    }
}

/// The test artifact: a `rec-module` module-image with two small files, written once by
/// the real `mender-artifact`; both clients get these bytes.
fn artifact() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("one.txt"), "the first payload file\n").expect("one");
        std::fs::write(d.join("two.bin"), common::image(3000, 7)).expect("two");
        let scripts = d.join("scripts");
        std::fs::create_dir_all(&scripts).expect("scripts");
        let mut script_args = Vec::new();
        for state in common::ARTIFACT_STATES {
            for action in ["Enter", "Leave", "Error"] {
                let name = format!("{state}_{action}");
                let path = scripts.join(format!("{name}_00_rec"));
                std::fs::write(&path, state_script(&name)).expect("script");
                chmod(&path, 0o755);
                script_args.push("-s".into());
                script_args.push(path.into_os_string());
            }
        }
        let out = d.join("rec.mender");
        let mut cmd = std::process::Command::new("mender-artifact");
        cmd.current_dir(d).args([
            "write",
            "module-image",
            "-T",
            MODULE,
            "-n",
            RELEASE,
            "-t",
            DEVICE_TYPE,
            "-f",
            "one.txt",
            "-f",
            "two.bin",
        ]);
        cmd.args(&script_args).arg("-o").arg(&out);
        common::run(&mut cmd);
        std::fs::read(&out).expect("artifact")
    })
}

/// An RSA key for the official client (made once; its own key generation would cost
/// seconds per start).
fn official_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let out = common::openssl_piped(&["genrsa", "-traditional", "2048"], &[]);
        String::from_utf8(out).expect("PEM")
    })
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The module, its configuration, the records dir and a reboot command under `work`;
/// returns (modules dir, records dir, reboot command).
fn module_rig(work: &Path, sc: &Scenario) -> (PathBuf, PathBuf, PathBuf) {
    let mods = work.join("modules");
    let rec = work.join("rec");
    let bin = work.join("bin");
    for d in [&mods, &rec, &bin] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let program = mods.join(MODULE);
    std::fs::write(&program, MODULE_SCRIPT).expect("module");
    chmod(&program, 0o755);
    let conf = format!(
        "REC='{rec}'\nSTREAMS={streams}\nREBOOT={reboot}\nROLLBACK={rollback}\n\
         FAIL={fail}\nFAIL_ONCE={once}\nKILL={kill}\n",
        rec = rec.display(),
        streams = if sc.streams { "yes" } else { "no" },
        reboot = sc.reboot,
        rollback = sc.rollback,
        fail = sc.fail.unwrap_or(""),
        once = if sc.fail_once { "yes" } else { "no" },
        kill = sc.kill.unwrap_or(""),
    );
    std::fs::write(mods.join(format!("{MODULE}.conf")), conf).expect("conf");
    std::fs::write(
        rec.join("scripts.conf"),
        format!("SCRIPT_FAIL={}\n", sc.script_fail.unwrap_or("")),
    )
    .expect("scripts.conf");
    // Named `reboot`: the official client runs `reboot` from its PATH.
    let reboot = bin.join("reboot");
    script(
        &reboot,
        &format!(
            "echo '(host reboot)' >> '{}'\nkill -9 \"$PPID\"",
            rec.join("trace").display()
        ),
    );
    (mods, rec, reboot)
}

/// A client under test: how it is started, and where its log goes.
trait Client {
    fn start(&self, n: u32) -> Child;
    fn log(&self) -> PathBuf;
}

/// The official client in a private mount namespace.
struct Official {
    rec: PathBuf,
    etc: PathBuf,
    ident: PathBuf,
    data: PathBuf,
    mods: PathBuf,
    bin: PathBuf,
    log: PathBuf,
}

impl Official {
    fn new(sim: &TestSim, sc: &Scenario) -> Self {
        let work = sim.dir.path();
        let (mods, rec, reboot) = module_rig(work, sc);
        let etc = work.join("etc-mender");
        let ident = work.join("identity");
        let data = work.join("data");
        for d in [&etc, &ident, &data] {
            std::fs::create_dir_all(d).expect("dir");
        }
        std::fs::write(etc.join("artifact_info"), "artifact_name=release-1\n").expect("info");
        rootfs_scripts(&etc.join("scripts"));
        let conf = json!({
            "ServerURL": sim.handle.base_url(),
            "ServerCertificate": sim.handle.ca_path(),
            "UpdatePollIntervalSeconds": 1,
            "InventoryPollIntervalSeconds": 1,
            "RetryPollIntervalSeconds": 1,
            "DeviceTypeFile": data.join("device_type"),
        });
        std::fs::write(etc.join("mender.conf"), conf.to_string()).expect("mender.conf");
        std::fs::write(
            data.join("device_type"),
            format!("device_type={DEVICE_TYPE}\n"),
        )
        .expect("device_type");
        let key = data.join("mender-agent.pem");
        std::fs::write(&key, official_key()).expect("key");
        chmod(&key, 0o600);
        script(
            &ident.join("mender-device-identity"),
            &format!("echo mac={MAC}"),
        );
        Official {
            rec,
            etc,
            ident,
            data,
            mods,
            bin: reboot.parent().expect("bin").to_path_buf(),
            log: work.join("mender.log"),
        }
    }
}

impl Client for Official {
    fn start(&self, n: u32) -> Child {
        let shell = format!(
            "mount --bind '{}' /etc/mender && mount --bind '{}' /usr/share/mender/identity && \
             mount --bind '{}' /usr/share/mender/modules/v3 && \
             exec mender -c /etc/mender/mender.conf -d '{}' --no-syslog -l debug daemon",
            self.etc.display(),
            self.ident.display(),
            self.mods.display(),
            self.data.display()
        );
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let log = append(&self.log, n);
        Command::new("unshare")
            .args(["--mount", "--", "sh", "-c", &shell])
            .env("PATH", path)
            .env("REC_DIR", &self.rec)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start mender daemon")
    }

    fn log(&self) -> PathBuf {
        self.log.clone()
    }
}

/// The bridge daemon, configured as the other daemon tests configure it, with the
/// module's directory as `modules_dir`.
struct Bridge {
    rec: PathBuf,
    dir: PathBuf,
    _rig: SlotRig,
    log: PathBuf,
}

impl Bridge {
    fn new(sim: &TestSim, sc: &Scenario) -> Self {
        let work = sim.dir.path();
        let d = work.join("device");
        std::fs::create_dir_all(&d).expect("device dir");
        let (mods, rec, reboot) = module_rig(work, sc);
        let rig = SlotRig::new(&d.join("slots"), 64 * 1024);
        write_device_files(
            &d,
            DeviceFiles {
                mac: MAC,
                conf: sim_conf(sim, 1, 5),
                reboot: &reboot,
                modules_dir: Some(&mods),
                raw_toml: rig.raw_backend_toml(),
            },
        );
        rootfs_scripts(&d.join("scripts"));
        Bridge {
            rec,
            dir: d,
            _rig: rig,
            log: work.join("bridge.log"),
        }
    }
}

impl Client for Bridge {
    fn start(&self, n: u32) -> Child {
        let log = append(&self.log, n);
        let mut c = Command::from(common::bridge_command(
            &self.dir,
            &["-l", "debug", "daemon"],
        ));
        c.env("REC_DIR", &self.rec)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start the bridge daemon")
    }

    fn log(&self) -> PathBuf {
        self.log.clone()
    }
}

/// The log file, opened for appending, with a line saying which start follows.
fn append(path: &Path, n: u32) -> std::fs::File {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log");
    let _ = writeln!(f, "===== start {n} =====");
    f
}

/// The last lines of a log.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn device_id(sim: &TestSim) -> Option<String> {
    let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
    devs.as_array()?
        .iter()
        .find(|d| d["identity_data"]["mac"] == MAC)
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
}

async fn inventory_artifact(sim: &TestSim, id: &str) -> Option<String> {
    let inv = sim.inventory(id).await;
    inv.as_array()?
        .iter()
        .find(|a| a["name"] == "artifact_name")
        .and_then(|a| a["value"].as_str())
        .map(str::to_string)
}

/// The client's process, killed when dropped (and at the end of each run).
struct Running(Option<Child>);

impl Running {
    fn exited(&mut self) -> bool {
        match &mut self.0 {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.start_kill();
        }
    }
}

/// Starts the client again if it died (as systemd, or a boot, would); `false` once it
/// died more than [`MAX_STARTS`] times.
async fn keep_running(child: &mut Running, client: &dyn Client, starts: &mut u32) -> bool {
    if child.exited() {
        child.stop().await;
        *starts += 1;
        if *starts > MAX_STARTS {
            return false;
        }
        *child = Running(Some(client.start(*starts)));
    }
    true
}

/// Runs the deployment of the test artifact through `client` until its final status,
/// starting the client again whenever it died; then waits (a while) for the inventory to
/// show `sc.artifact_after`.
async fn drive(sim: &TestSim, client: &dyn Client, sc: &Scenario, who: &str) -> Run {
    let rec = sim.dir.path().join("rec");
    let log = client.log();
    let fail = |what: &str| -> ! {
        panic!(
            "{who}: {what}\ntrace: {:?}\nlog tail:\n{}",
            read_trace(&rec),
            tail(&log, 60)
        )
    };
    let rec_art = sim.upload(artifact().to_vec()).await;
    assert_eq!(rec_art["name"], RELEASE, "{rec_art}");
    let mut starts = 1;
    let mut child = Running(Some(client.start(starts)));
    let start = Instant::now();

    // Admission, then the deployment.
    let id = loop {
        if child.exited() {
            fail("the client stopped before it asked to be admitted");
        }
        if start.elapsed() > Duration::from_secs(30) {
            fail("no authentication request");
        }
        if let Some(id) = device_id(sim).await {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/accept"), None)
        .await;
    let dep = sim.deploy(RELEASE, &id).await;

    // Until the final status, restarting the client whenever it died.
    let statuses = loop {
        let s = statuses(sim, &dep, &id).await;
        if s.last().is_some_and(|l| common::is_final(l)) {
            break s;
        }
        if start.elapsed() > DEPLOYMENT_LIMIT {
            fail(&format!(
                "no final status within {DEPLOYMENT_LIMIT:?}: {s:?}"
            ));
        }
        if !keep_running(&mut child, client, &mut starts).await {
            fail(&format!("the client died {} times", starts - 1));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The official client's state scripts report the deployment's status as they start
    // (`failure` for ArtifactFailure_Enter), so the final status can come before the
    // states that follow it (and before a kill the scenario asks for): wait until the
    // trace has rested for 3 s (20 s at most), starting the client again if it died.
    let limit = Instant::now() + Duration::from_secs(20);
    let (mut seen, mut since) = (read_trace(&rec).len(), Instant::now());
    while since.elapsed() < Duration::from_secs(3) && Instant::now() < limit {
        if !keep_running(&mut child, client, &mut starts).await {
            fail(&format!("the client died {} times", starts - 1));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = read_trace(&rec).len();
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
    }

    // The inventory after the deployment: the expected name, or what it shows after 15 s.
    let limit = Instant::now() + Duration::from_secs(15);
    let artifact_name = loop {
        let name = inventory_artifact(sim, &id).await;
        if name.as_deref() == Some(sc.artifact_after) || Instant::now() > limit {
            break name;
        }
        if child.exited() {
            fail("the client stopped after the deployment");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    child.stop().await;

    Run {
        trace: read_trace(&rec),
        errors: std::fs::read_to_string(rec.join("errors")).unwrap_or_default(),
        killed: std::fs::read_to_string(rec.join("killed"))
            .ok()
            .map(|s| s.trim().to_string()),
        statuses,
        artifact_name,
        starts,
        tree: read_tree(&rec.join("tree")),
        payload: std::fs::read_to_string(rec.join("payload")).unwrap_or_default(),
    }
}

fn read_trace(rec: &Path) -> Vec<String> {
    std::fs::read_to_string(rec.join("trace"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, by relative path. JSON files are parsed and written back with
/// sorted keys: the two clients may order the keys of `header-info` and `type-info`
/// differently (a known, deliberate difference: JSON objects are unordered).
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).expect("under").display().to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let text = match rel.as_str() {
                "header/header-info" | "header/type-info" | "header/meta-data" => {
                    serde_json::from_str::<Value>(&text)
                        .map(|v| v.to_string())
                        .unwrap_or(text)
                }
                _ => text,
            };
            out.insert(rel, text);
        }
    }
    out
}

/// Runs the scenario through both clients (at the same time, each with its own simulator)
/// and compares what they did.
async fn compare(sc: Scenario) {
    assert!(
        Path::new("/usr/bin/mender").exists(),
        "the official client is missing: run scripts/setup-test-deps.sh (Debian package mender-client)"
    );
    if !is_root() {
        eprintln!("skipped: the official client needs root for a private mount namespace");
        return;
    }
    // MODULES_TRACE_KEEP=1 keeps each run's directory (logs, records) for a look.
    let dir = || {
        tempfile::Builder::new()
            .disable_cleanup(std::env::var_os("MODULES_TRACE_KEEP").is_some())
            .tempdir()
            .expect("tempdir")
    };
    // Open-source server behaviour for the official client: POST v2 next is 404.
    let go_sim = TestSim::start_in(dir(), |c| c.next_v2 = Some(false)).await;
    let br_sim = TestSim::start_in(dir(), |_| {}).await;
    let official = Official::new(&go_sim, &sc);
    let bridge = Bridge::new(&br_sim, &sc);
    let (go, mut br) = tokio::join!(
        drive(&go_sim, &official, &sc, "official client"),
        drive(&br_sim, &bridge, &sc, "bridge")
    );

    // The one known difference in the calls: the bridge first asks the 4.x query
    // `ProvidePayloadFileSizes`, which the 3.4 client predates; a module that does not know
    // it prints nothing, which means No.
    br.trace.retain(|s| s != "ProvidePayloadFileSizes");

    let shown = format!(
        "scenario {sc:?}\n\
         official client: trace {:?}\n  statuses {:?}, starts {}, killed {:?}, artifact {:?}\n\
         bridge:          trace {:?}\n  statuses {:?}, starts {}, killed {:?}, artifact {:?}\n\
         (logs and records in {} and {}; MODULES_TRACE_KEEP=1 keeps them)",
        go.trace,
        go.statuses,
        go.starts,
        go.killed,
        go.artifact_name,
        br.trace,
        br.statuses,
        br.starts,
        br.killed,
        br.artifact_name,
        go_sim.dir.path().display(),
        br_sim.dir.path().display(),
    );
    eprintln!("{shown}");
    assert_eq!(go.errors, "", "official client: {shown}");
    assert_eq!(br.errors, "", "bridge: {shown}");
    assert_eq!(br.trace, go.trace, "the module's calls differ\n{shown}");
    assert_eq!(
        br.status(),
        go.status(),
        "the final status differs\n{shown}"
    );
    assert_eq!(
        br.starts, go.starts,
        "the number of starts differs\n{shown}"
    );
    assert_eq!(
        go.artifact_name.as_deref(),
        Some(sc.artifact_after),
        "official client's artifact name\n{shown}"
    );
    assert_eq!(
        br.artifact_name, go.artifact_name,
        "the artifact name afterwards differs\n{shown}"
    );
    // What the module found: the tree in `Download`, the two payload files at install.
    assert_eq!(br.tree, go.tree, "the module's tree differs\n{shown}");
    assert_eq!(br.payload, go.payload, "the payload differs\n{shown}");
    if ![sc.kill, sc.fail].contains(&Some("Download")) {
        assert_eq!(go.tree.len(), 10, "{:?}\n{shown}", go.tree);
    }
    if go.trace.iter().any(|s| s == "ArtifactInstall")
        && ![sc.kill, sc.fail].contains(&Some("ArtifactInstall"))
    {
        assert_eq!(go.payload.lines().count(), 2, "{}\n{shown}", go.payload);
    }
    if sc.kill.is_some() {
        // $PPID is the client itself under both.
        assert_eq!(go.killed.as_deref(), Some("mender"), "{shown}");
        assert_eq!(br.killed.as_deref(), Some("mender-bridge"), "{shown}");
    }
    go_sim.handle.shutdown().await;
    br_sim.handle.shutdown().await;
}

macro_rules! scenario {
    ($(#[$attr:meta])* $name:ident, $sc:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            compare($sc).await;
        }
    };
}

// Successful installs.
scenario!(success_module_reads_streams, BASE);
scenario!(
    success_module_reads_no_streams,
    Scenario {
        streams: false,
        ..BASE
    }
);
scenario!(
    reboot_yes,
    Scenario {
        reboot: "Yes",
        ..BASE
    }
);
scenario!(
    reboot_automatic,
    Scenario {
        reboot: "Automatic",
        ..BASE
    }
);

// Failures.
scenario!(
    install_fails_with_rollback,
    Scenario {
        fail: Some("ArtifactInstall"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    install_fails_without_rollback,
    Scenario {
        fail: Some("ArtifactInstall"),
        rollback: "No",
        artifact_after: "release-2_INCONSISTENT",
        ..BASE
    }
);
scenario!(
    verify_reboot_fails_after_yes,
    Scenario {
        reboot: "Yes",
        fail: Some("ArtifactVerifyReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    verify_reboot_fails_after_automatic,
    Scenario {
        reboot: "Automatic",
        fail: Some("ArtifactVerifyReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    commit_fails,
    Scenario {
        fail: Some("ArtifactCommit"),
        artifact_after: "release-1",
        ..BASE
    }
);

// A state script that fails: the `_Error` scripts of the state it belongs to, then the
// rollback and failure states, as the official client runs them.
// (A failing Download_Enter is left out: the official client then runs Download_Error
// and takes the same deployment again at every poll, without end.)
scenario!(
    download_leave_script_fails,
    Scenario {
        script_fail: Some("Download_Leave"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    artifact_install_enter_script_fails,
    Scenario {
        script_fail: Some("ArtifactInstall_Enter"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    artifact_install_leave_script_fails,
    Scenario {
        script_fail: Some("ArtifactInstall_Leave"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    artifact_reboot_enter_script_fails,
    Scenario {
        reboot: "Yes",
        script_fail: Some("ArtifactReboot_Enter"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    artifact_commit_enter_script_fails,
    Scenario {
        script_fail: Some("ArtifactCommit_Enter"),
        artifact_after: "release-1",
        ..BASE
    }
);

// The client killed (kill -9 of the module's parent) in each state.
scenario!(
    killed_in_download,
    Scenario {
        kill: Some("Download"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_install,
    Scenario {
        kill: Some("ArtifactInstall"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_needs_artifact_reboot,
    Scenario {
        reboot: "Yes",
        kill: Some("NeedsArtifactReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_reboot,
    Scenario {
        reboot: "Yes",
        kill: Some("ArtifactReboot"),
        ..BASE
    }
);
scenario!(
    killed_in_artifact_verify_reboot,
    Scenario {
        reboot: "Yes",
        kill: Some("ArtifactVerifyReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_commit,
    Scenario {
        kill: Some("ArtifactCommit"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_rollback,
    Scenario {
        fail: Some("ArtifactInstall"),
        kill: Some("ArtifactRollback"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_failure,
    Scenario {
        fail: Some("ArtifactInstall"),
        kill: Some("ArtifactFailure"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_cleanup,
    Scenario {
        kill: Some("Cleanup"),
        ..BASE
    }
);

scenario!(
    killed_in_artifact_rollback_reboot,
    Scenario {
        reboot: "Yes",
        fail: Some("ArtifactVerifyReboot"),
        kill: Some("ArtifactRollbackReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_verify_rollback_reboot,
    Scenario {
        reboot: "Yes",
        fail: Some("ArtifactVerifyReboot"),
        kill: Some("ArtifactVerifyRollbackReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
// The same states again, with a reboot before them or the client's host reboot.
scenario!(
    killed_in_download_reading_no_streams,
    Scenario {
        streams: false,
        kill: Some("Download"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_verify_reboot_after_automatic,
    Scenario {
        reboot: "Automatic",
        kill: Some("ArtifactVerifyReboot"),
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    killed_in_artifact_commit_after_a_reboot,
    Scenario {
        reboot: "Yes",
        kill: Some("ArtifactCommit"),
        artifact_after: "release-1",
        ..BASE
    }
);
// A rollback reboot after which the old software is not found back is tried again (here
// `ArtifactVerifyRollbackReboot` fails once; the kill in `ArtifactVerifyReboot` starts the
// rollback).
scenario!(
    verify_rollback_reboot_fails_once,
    Scenario {
        reboot: "Yes",
        kill: Some("ArtifactVerifyReboot"),
        fail: Some("ArtifactVerifyRollbackReboot"),
        fail_once: true,
        artifact_after: "release-1",
        ..BASE
    }
);
scenario!(
    verify_rollback_reboot_fails_once_after_automatic,
    Scenario {
        reboot: "Automatic",
        kill: Some("ArtifactVerifyReboot"),
        fail: Some("ArtifactVerifyRollbackReboot"),
        fail_once: true,
        artifact_after: "release-1",
        ..BASE
    }
);

// Differences that stay, each run with `--ignored` to see it.
//
// A live download failure: issue 12 asks for `ArtifactFailure` and `Cleanup`, the 3.4
// client runs `Cleanup` alone (a crash in `Download` runs `Cleanup` alone in both).
scenario!(
    #[ignore = "deliberate: issue 12 wants ArtifactFailure + Cleanup after a failed download; the 3.4 client runs Cleanup only"]
    download_fails,
    Scenario {
        fail: Some("Download"),
        artifact_after: "release-1",
        ..BASE
    }
);
// A restart after the payload's end and before `ArtifactInstall`: both end `Download` and ask
// `SupportsRollback` before `Download_Leave`, so both only clean up.
scenario!(
    killed_in_supports_rollback,
    Scenario {
        kill: Some("SupportsRollback"),
        artifact_after: "release-1",
        ..BASE
    }
);
