//! The installer: what the configured backend needs, asked through the backend's own
//! code. Raw A/B: the slots ([`crate::setup::raw_config`]), which one runs
//! ([`Slots::active`](mender_bridge_backends::raw::Slots::active)), the boot environment tools and what they say
//! ([`BootEnv::state`], read only). RAUC: [`Backend::preflight`](mender_bridge_backends::Backend::preflight) (the service answers on
//! its bus, idle) and [`Backend::inventory`](mender_bridge_backends::Backend::inventory) (compatible, slots). SWUpdate:
//! [`Backend::preflight`](mender_bridge_backends::Backend::preflight) (its control socket answers; the signature probe, a dry run).
//! Then the installed Update Modules (not executable: a warning).
//!
//! Invariant: nothing is written to a slot or the boot environment, and nothing installed;
//! RAUC's and SWUpdate's preflight run only under the install lock, so never beside a
//! running install (they may create the spool directory, as the daemon's would).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use mender_bridge_backends::raw::{BootEnv, RawConfig, SlotConfig};
#[cfg(any(feature = "rauc", feature = "swupdate"))]
use mender_bridge_backends::Backend as _;

use crate::config::{BackendType, Config};

use super::{Check, Sink};

const NAME: &str = "backend";

/// Whole-backend checks run at most this long (RAUC and SWUpdate have their own, shorter
/// timeouts inside; this bounds the sum).
#[cfg(any(feature = "rauc", feature = "swupdate"))]
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn check(cfg: &Config, out: &mut dyn Sink) {
    match cfg.backend.kind {
        BackendType::Raw => raw(cfg, out).await,
        #[cfg(feature = "rauc")]
        BackendType::Rauc => rauc(cfg, out).await,
        #[cfg(feature = "swupdate")]
        BackendType::Swupdate => swupdate(cfg, out).await,
        #[cfg(not(all(feature = "rauc", feature = "swupdate")))]
        other => out.add(Check::fail(
            NAME,
            format!("backend.type = \"{}\": not built in", other.name()),
            format!("build with `--features {}`", other.name()),
        )),
    }
    modules(cfg, out);
}

async fn raw(cfg: &Config, out: &mut dyn Sink) {
    let r = &cfg.backend.raw;
    if r.a.device.is_none() && r.b.device.is_none() {
        out.add(Check::warn(
            NAME,
            "raw: no A/B slots configured: only Update Modules install (a rootfs-image \
             deployment fails)",
            "set [backend.raw.a] and [backend.raw.b] in mender-bridge.toml (see \
             config/mender-bridge.toml), unless the device takes modules only",
        ));
        return;
    }
    let rc: RawConfig = match crate::setup::raw_config(r) {
        Ok(c) => c,
        Err(e) => {
            out.add(Check::fail(
                NAME,
                format!("raw: {e}"),
                "complete [backend.raw] in mender-bridge.toml",
            ));
            return;
        }
    };
    let active = rc.slots.active().await;
    let active_name = active.as_ref().ok().map(|s| s.name.clone());
    for slot in [&rc.slots.a, &rc.slots.b] {
        let running = active_name.as_deref() == Some(slot.name.as_str());
        out.add(slot_check(slot, running));
    }
    match active {
        Ok(s) => out.add(Check::ok(
            NAME,
            format!("raw: running slot {} ({})", s.name, s.device.display()),
        )),
        Err(e) => out.add(Check::fail(
            NAME,
            format!("raw: which slot runs: {e}"),
            "set backend.raw.cmdline (root= must name a slot device or one of its \
             root_aliases) or backend.raw.active_slot",
        )),
    }
    bootenv(&rc.bootenv, out).await;
}

/// One slot: it exists, and (unless it is the running one) the bridge may write it.
fn slot_check(slot: &SlotConfig, running: bool) -> Check {
    let dev = slot.device.display();
    let key = format!("backend.raw.{}.device", slot.name);
    let meta = match std::fs::metadata(&slot.device) {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("raw: slot {}: {dev}: {e}", slot.name),
                format!("correct {key} (a block device or file that exists)"),
            )
        }
    };
    let kind = if meta.is_file() {
        "file"
    } else {
        "block device"
    };
    let what = format!(
        "raw: slot {} {dev} ({kind}, boot part {})",
        slot.name, slot.boot_part
    );
    if running {
        return Check::ok(NAME, format!("{what}: running"));
    }
    match nix::unistd::access(&slot.device, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => Check::ok(NAME, format!("{what}: writable")),
        Err(e) => Check::fail(
            NAME,
            format!("{what}: not writable ({e})"),
            "run the bridge as root, or give its user write access to the slot",
        ),
    }
}

/// `program` as a command finds it: a path that exists, or a name on `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return executable(program).then(|| program.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
}

async fn bootenv(env: &BootEnv, out: &mut dyn Sink) {
    let (kind, tools, fix): (&str, Vec<PathBuf>, &str) = match env {
        BootEnv::Uboot {
            printenv, setenv, ..
        } => (
            "uboot",
            vec![printenv.clone(), setenv.clone()],
            "install fw_printenv/fw_setenv (libubootenv-tool) or set \
             backend.raw.bootenv.printenv/setenv",
        ),
        BootEnv::Grub { editenv, .. } => (
            "grub",
            vec![editenv.clone()],
            "install grub-editenv (grub-common) or set backend.raw.bootenv.editenv",
        ),
        BootEnv::Command {
            activate,
            commit,
            revert,
            state,
        } => (
            "command",
            [activate, commit, revert, state]
                .iter()
                .filter_map(|argv| argv.first().map(PathBuf::from))
                .collect(),
            "correct the commands of [backend.raw.bootenv]",
        ),
    };
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find_program(t).is_none())
        .map(|t| t.display().to_string())
        .collect();
    if !missing.is_empty() {
        out.add(Check::fail(
            "boot env",
            format!("{kind}: not found: {}", missing.join(", ")),
            fix,
        ));
        return;
    }
    match env.state().await {
        Ok(s) => out.add(Check::ok(
            "boot env",
            format!(
                "{kind}: mender_boot_part={}, upgrade_available={}",
                s.boot_part
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unset".into()),
                u8::from(s.upgrade_available)
            ),
        )),
        Err(e) => out.add(Check::fail(
            "boot env",
            format!("{kind}: reading the boot environment: {e}"),
            fix,
        )),
    }
}

/// The install lock ([`crate::deploy::lock`]), held while RAUC's or SWUpdate's preflight
/// runs: the preflight prepares the spool directory (removing a crashed install's leftover
/// spool file), which must not happen under a running install. `Err`: the line to print
/// instead (an install is in progress, or the lock cannot be taken).
#[cfg(any(feature = "rauc", feature = "swupdate"))]
fn install_lock(cfg: &Config, what: &str) -> Result<crate::deploy::lock::InstallLock, Check> {
    let dir = crate::setup::store_dir(cfg);
    match crate::deploy::lock::InstallLock::try_acquire(&dir) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(Check::skip(
            NAME,
            format!("{what}: an install is in progress (the install lock is held); not probed"),
        )),
        Err(e) => Err(Check::fail(
            NAME,
            format!("{what}: the install lock in {}: {e}", dir.display()),
            "run the doctor as the user the bridge runs as (root)",
        )),
    }
}

#[cfg(feature = "rauc")]
async fn rauc(cfg: &Config, out: &mut dyn Sink) {
    use mender_bridge_backends::rauc::RaucBackend;
    let rc = crate::setup::rauc_config(&cfg.backend.rauc, &crate::setup::store_dir(cfg));
    let bus = rc.bus.to_string();
    let _lock = match install_lock(cfg, &format!("rauc on {bus}")) {
        Ok(l) => l,
        Err(c) => return out.add(c),
    };
    let mut b = RaucBackend::new(rc);
    match tokio::time::timeout(BACKEND_TIMEOUT, b.preflight()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            out.add(Check::fail(
                NAME,
                format!("rauc on {bus}: {e}"),
                "start the RAUC service (rauc.service) on the configured bus \
                 (backend.rauc.bus), and wait until it is idle",
            ));
            return;
        }
        Err(_) => {
            out.add(Check::fail(
                NAME,
                format!(
                    "rauc on {bus}: no answer within {}s",
                    BACKEND_TIMEOUT.as_secs()
                ),
                "check the RAUC service and the bus",
            ));
            return;
        }
    }
    let inv = tokio::time::timeout(BACKEND_TIMEOUT, b.inventory())
        .await
        .unwrap_or_default();
    let shown: Vec<String> = inv
        .iter()
        .filter(|(k, _)| k != "rauc_integration")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    out.add(Check::ok(
        NAME,
        format!("rauc on {bus}: idle; {}", shown.join(", ")),
    ));
}

#[cfg(feature = "swupdate")]
async fn swupdate(cfg: &Config, out: &mut dyn Sink) {
    use mender_bridge_backends::swupdate::SwupdateBackend;
    let sc = crate::setup::swupdate_config(
        &cfg.backend.swupdate,
        &crate::setup::store_dir(cfg),
        !cfg.artifact_verify_keys.is_empty(),
    );
    let mode = sc.mode;
    let paths = mender_bridge_backends::swupdate::socket::resolve(
        sc.control_socket.as_deref(),
        sc.progress_socket.as_deref(),
    );
    let progress = if paths.progress.exists() {
        format!("progress socket {}", paths.progress.display())
    } else {
        format!("progress socket {} absent", paths.progress.display())
    };
    let mut b = SwupdateBackend::new(sc);
    let socket = b.control().path.display().to_string();
    let _lock = match install_lock(cfg, &format!("swupdate at {socket}")) {
        Ok(l) => l,
        Err(c) => return out.add(c),
    };
    match tokio::time::timeout(BACKEND_TIMEOUT, b.preflight()).await {
        Ok(Ok(())) => {
            let verdict = b
                .verdict()
                .map(|v| v.describe())
                .unwrap_or_else(|| "no signature probe in this mode".into());
            let route = b.route().map(|r| format!("{r:?}")).unwrap_or_default();
            out.add(Check::ok(
                NAME,
                format!(
                    "swupdate at {socket}: answers ({progress}); mode {mode:?}, route \
                     {route}; {verdict}"
                ),
            ));
        }
        Ok(Err(e)) => out.add(Check::fail(
            NAME,
            format!("swupdate at {socket}: {e}"),
            "start SWUpdate (swupdate.service) with its IPC sockets, or correct \
             backend.swupdate",
        )),
        Err(_) => out.add(Check::fail(
            NAME,
            format!(
                "swupdate at {socket}: no answer within {}s",
                BACKEND_TIMEOUT.as_secs()
            ),
            "check that SWUpdate runs and is not busy",
        )),
    }
}

/// The Update Modules in `modules_dir`: executables are installed; any other file is a
/// module that will not run.
fn modules(cfg: &Config, out: &mut dyn Sink) {
    const NAME: &str = "modules";
    let mc = crate::setup::module_config(cfg);
    let dir = mc.modules_dir.display().to_string();
    let entries = match std::fs::read_dir(&mc.modules_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.add(Check::ok(NAME, format!("none ({dir} does not exist)")));
            return;
        }
        Err(e) => {
            out.add(Check::fail(
                NAME,
                format!("{dir}: {e}"),
                "make modules_dir readable by the bridge",
            ));
            return;
        }
    };
    let installed = mc.installed_modules();
    let mut not_exec: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !installed.contains(n))
        .filter(|n| std::fs::metadata(mc.modules_dir.join(n)).is_ok_and(|m| m.is_file()))
        .collect();
    not_exec.sort();
    let listed = if installed.is_empty() {
        "none".to_string()
    } else {
        installed.join(", ")
    };
    out.add(Check::ok(NAME, format!("{dir}: {listed}")));
    for n in not_exec {
        out.add(Check::warn(
            NAME,
            format!("{dir}/{n} is not executable: payloads of type '{n}' will fail"),
            format!("chmod +x {dir}/{n}"),
        ));
    }
}
