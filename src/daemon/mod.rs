//! `mender-bridge daemon`: the long-running client, as Mender's own daemon behaves
//! (PROTOCOL.md §4.1–4.3).
//!
//! Start-up: signal handlers first (SIGUSR1's default action would kill us), then the pid
//! file lock, then the parts (built by [`crate::setup::daemon_parts`]; the daemon never
//! reads the configuration itself), `engine.resume()` for a deployment the
//! process or the device stopped in the middle of, `READY=1` to systemd, authentication
//! (retried with backoff; a pending device is not an error), then the loop:
//!
//! - the inventory every `InventoryPollIntervalSeconds` and the update check every
//!   `UpdatePollIntervalSeconds`, each jittered ±10 % and backed off after failures (capped
//!   at `RetryPollIntervalSeconds`); see [`schedule`];
//! - `Idle_Enter` on becoming idle, `Idle_Leave` before work; each job inside
//!   `Sync_Enter` / `Sync_Leave` (`Sync_Error` when a job fails);
//! - SIGUSR1 = check now, SIGUSR2 = inventory now, SIGTERM / SIGINT = stop;
//! - after each finished deployment the inventory is sent again;
//! - `RebootRequired` → `reboot_command`, then wait to be stopped; if the command fails,
//!   the deployment is resumed at once (it ends as a rollback and a `failure`).
//!
//! Invariants: no new job starts after a stop signal; a job running when it arrives gets
//! [`SHUTDOWN_GRACE`] to finish and is then dropped at an await point, which is no worse
//! than `kill -9` (every store write is atomic and start-up resumes from the last one).
//! While any job runs, the systemd watchdog keeps being fed.
//!
//! This folder holds the daemon and nothing of the deployment itself (that is
//! [`crate::deploy`], which knows nothing of the daemon): the loop here, `control`
//! (signals, watchdog, the grace after a stop), [`schedule`] (intervals, jitter,
//! backoff), [`plan`] (which job when: the schedule without I/O, which the fleet simulation
//! drives too), [`notify`] (systemd's `sd_notify`), [`pidfile`] (the one daemon per data
//! directory, found by `check-update` / `send-inventory`) and `inventory`.

mod control;
pub mod dbus;
mod inventory;
pub mod notify;
pub mod pidfile;
pub mod plan;
pub mod schedule;

use std::time::Duration;

use tokio::time::Instant;

use crate::client::ClientError;
use crate::deploy::engine::{Engine, Outcome};
use crate::deploy::lock::InstallLock;
use crate::deploy::scripts::{trace_line, Action, ScriptRunner, State};
use crate::deploy::store::Store;
use crate::identity::InventoryScripts;
use control::{Control, Wake};
pub use inventory::send_inventory;
use mender_bridge_backends::Installers;
use pidfile::{PidError, PidLock};
use plan::{Job, Plan, PlanSettings};

/// How long a running job may go on after SIGTERM before it is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Building the parts failed (a configuration or start-up error, naming the setting).
    #[error("{0}")]
    Setup(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Pid(#[from] PidError),
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// The daemon's timing and reboot settings.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// The intervals, retries and first-poll spread the daemon's [`Plan`] keeps.
    pub schedule: PlanSettings,
    pub reboot_command: Vec<String>,
    pub shutdown_grace: Duration,
    /// The D-Bus token API for the add-ons.
    pub dbus: dbus::DbusSettings,
}

/// What the daemon runs, built from the configuration once the pid file is held.
pub struct DaemonParts {
    pub engine: Engine<Installers>,
    /// Idle and Sync state scripts.
    pub scripts: ScriptRunner,
    pub store: Store,
    /// Collected again for each inventory report.
    pub inventory: InventoryScripts,
}

/// Runs the daemon until SIGTERM or SIGINT. `Ok(())` is a clean stop. `parts` is awaited
/// only after the signal handlers are installed and `pid_file` is held, so a second
/// daemon on the same data directory stops before it loads or makes a key.
pub async fn run<E>(
    settings: DaemonSettings,
    pid_file: &std::path::Path,
    parts: impl std::future::Future<Output = Result<DaemonParts, E>>,
) -> Result<(), DaemonError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut ctl = Control::new(settings.shutdown_grace)?;
    let _pid = PidLock::acquire(pid_file)?;
    let parts = parts.await.map_err(|e| DaemonError::Setup(Box::new(e)))?;
    tracing::info!(pid = std::process::id(), pid_file = %pid_file.display(), "daemon starting");
    // Before the first authentication, so its token is signalled.
    #[cfg(feature = "dbus")]
    let _dbus = dbus::start(&settings.dbus, parts.engine.client()).await;
    #[cfg(not(feature = "dbus"))]
    dbus::start(&settings.dbus);
    let mut daemon = Daemon {
        settings,
        scripts: parts.scripts,
        store: parts.store,
        engine: parts.engine,
        inventory: parts.inventory,
    };
    ctl.grace = daemon.settings.shutdown_grace;
    daemon.run(&mut ctl).await;
    ctl.notify("STOPPING=1");
    tracing::info!("daemon stopped");
    Ok(())
}

struct Daemon {
    settings: DaemonSettings,
    scripts: ScriptRunner,
    store: Store,
    engine: Engine<Installers>,
    inventory: InventoryScripts,
}

/// Whether the loop goes on after a step.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Daemon {
    async fn run(&mut self, ctl: &mut Control) {
        let mut plan = Plan::new(self.settings.schedule, Instant::now(), schedule::random_u64);

        let lock = loop {
            if let Some(l) = self.install_lock() {
                break l;
            }
            tracing::info!("a standalone install, commit or rollback is running; waiting for it");
            if ctl.wait(Instant::now() + Duration::from_secs(1)).await == Some(Wake::Stop) {
                return;
            }
        };
        let resumed = ctl.guard(self.engine.resume()).await;
        drop(lock);
        match resumed {
            None => return,
            Some(Ok(None)) => {}
            Some(Ok(Some(outcome))) => {
                tracing::info!(?outcome, "resumed deployment ended");
                if self.after_deployment(ctl, outcome, &mut plan).await == Flow::Stop {
                    return;
                }
            }
            Some(Err(e)) => tracing::error!("resuming the deployment in flight: {e}"),
        }
        // A resumed deployment authenticated for its commit: that token serves (after a
        // fleet-wide update, one authentication per device, not two).
        if self.engine.client().is_authenticated().await {
            plan.already_authenticated(Instant::now());
        }
        ctl.notify("READY=1");

        let mut idle = false;
        loop {
            if ctl.stopping {
                return;
            }
            let now = Instant::now();
            if std::mem::take(&mut ctl.want_inventory) {
                plan.trigger(Job::Inventory, now);
            }
            if std::mem::take(&mut ctl.want_check) {
                plan.trigger(Job::UpdateCheck, now);
            }
            if let Some(job) = plan.due(now) {
                if idle && job != Job::Authenticate {
                    self.script(State::Idle, Action::Leave).await;
                    idle = false;
                }
                let flow = match job {
                    Job::Authenticate => self.authenticate(ctl, &mut plan).await,
                    Job::Inventory => self.inventory_job(ctl, &mut plan).await,
                    Job::UpdateCheck => self.update_job(ctl, &mut plan).await,
                };
                if flow == Flow::Stop {
                    return;
                }
                continue;
            }
            if !idle && plan.next().1 != Job::Authenticate {
                self.script(State::Idle, Action::Enter).await;
                idle = true;
            }
            match ctl.wait(plan.next().0).await {
                None => {}
                // A signal asking for work ends an authentication wait early: try now.
                Some(Wake::Check | Wake::Inventory) if plan.next().1 == Job::Authenticate => {
                    plan.trigger(Job::Authenticate, Instant::now())
                }
                Some(Wake::Check) => {
                    tracing::info!("SIGUSR1: checking for an update now");
                    plan.trigger(Job::UpdateCheck, Instant::now());
                }
                Some(Wake::Inventory) => {
                    tracing::info!("SIGUSR2: sending the inventory now");
                    plan.trigger(Job::Inventory, Instant::now());
                }
                Some(Wake::Stop) => return,
            }
        }
    }

    /// One authentication (pending devices wait here, backing off).
    async fn authenticate(&mut self, ctl: &mut Control, plan: &mut Plan) -> Flow {
        match ctl.guard(self.engine.client().authenticate()).await {
            None => Flow::Stop,
            Some(Ok(())) => {
                tracing::info!("authenticated");
                plan.succeeded(Job::Authenticate, Instant::now());
                Flow::Continue
            }
            Some(Err(e)) => {
                // The server's Retry-After (429/503) replaces the backoff's wait.
                let wait = plan.failed(Job::Authenticate, Instant::now(), e.retry_after());
                match &e {
                    ClientError::AuthRejected { .. } => tracing::info!(
                        "not accepted by the server yet (pending or rejected); trying again in {:.0?}",
                        wait
                    ),
                    e if e.is_transient() => {
                        tracing::warn!("authentication: {e}; trying again in {wait:.0?}")
                    }
                    e => tracing::error!("authentication: {e}; trying again in {wait:.0?}"),
                }
                Flow::Continue
            }
        }
    }

    /// The install lock (see [`crate::deploy::lock`]); `None` while a standalone command holds it.
    fn install_lock(&self) -> Option<InstallLock> {
        match InstallLock::try_acquire(self.store.dir()) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("the install lock in {}: {e}", self.store.dir().display());
                None
            }
        }
    }

    async fn script(&self, state: State, action: Action) -> bool {
        match self.scripts.run_logged(state, action, trace_line).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("{e}");
                false
            }
        }
    }

    /// `Sync_Enter`; on failure `Sync_Error` and `false` (the job is skipped).
    async fn sync_enter(&self) -> bool {
        if self.script(State::Sync, Action::Enter).await {
            return true;
        }
        self.script(State::Sync, Action::Error).await;
        false
    }

    async fn inventory_job(&mut self, ctl: &mut Control, plan: &mut Plan) -> Flow {
        if !self.sync_enter().await {
            plan.failed(Job::Inventory, Instant::now(), None);
            return Flow::Continue;
        }
        let r = ctl
            .guard(send_inventory(&self.engine, &self.inventory))
            .await;
        let now = Instant::now();
        match r {
            None => return Flow::Stop,
            Some(Ok(())) => {
                let next = plan.succeeded(Job::Inventory, now);
                tracing::debug!(next = ?next, "inventory done");
                self.script(State::Sync, Action::Leave).await;
            }
            Some(Err(e)) => {
                let next = plan.failed(Job::Inventory, now, e.retry_after());
                tracing::warn!("sending the inventory: {e}; trying again in {next:.0?}");
                self.script(State::Sync, Action::Error).await;
            }
        }
        Flow::Continue
    }

    async fn update_job(&mut self, ctl: &mut Control, plan: &mut Plan) -> Flow {
        match self.store.standalone() {
            Ok(None) => {}
            Ok(Some(r)) => {
                tracing::warn!(
                    artifact = %r.artifact_name,
                    "a standalone install awaits `mender-bridge commit`, `rollback` or `resume`; not checking for updates"
                );
                plan.succeeded(Job::UpdateCheck, Instant::now());
                return Flow::Continue;
            }
            Err(e) => tracing::warn!("reading the standalone record: {e}"),
        }
        // Held through the check, the deployment and a pending reboot.
        let Some(_lock) = self.install_lock() else {
            let next = plan.failed(Job::UpdateCheck, Instant::now(), None);
            tracing::info!(
                "a standalone install, commit or rollback is running; checking again in {next:.0?}"
            );
            return Flow::Continue;
        };
        if !self.sync_enter().await {
            plan.failed(Job::UpdateCheck, Instant::now(), None);
            return Flow::Continue;
        }
        let provides = self.engine.device_provides();
        let checked = match ctl
            .guard(self.engine.client().check_update(&provides))
            .await
        {
            None => return Flow::Stop,
            Some(r) => r,
        };
        let instructions = match checked {
            Ok(i) => {
                self.script(State::Sync, Action::Leave).await;
                i
            }
            Err(e) => {
                let next = plan.failed(Job::UpdateCheck, Instant::now(), e.retry_after());
                tracing::warn!("update check: {e}; trying again in {next:.0?}");
                self.script(State::Sync, Action::Error).await;
                return Flow::Continue;
            }
        };
        let Some(instructions) = instructions else {
            let next = plan.succeeded(Job::UpdateCheck, Instant::now());
            tracing::debug!(next = ?next, "no update");
            return Flow::Continue;
        };
        tracing::info!(deployment = %instructions.id, artifact = %instructions.artifact.artifact_name, "deployment offered");
        match ctl.guard(self.engine.deploy(instructions)).await {
            None => Flow::Stop,
            Some(Ok(outcome)) => self.after_deployment(ctl, outcome, plan).await,
            Some(Err(e)) => {
                let next = plan.failed(Job::UpdateCheck, Instant::now(), None);
                tracing::error!("deployment: {e}; checking again in {next:.0?}");
                Flow::Continue
            }
        }
    }

    /// After a deployment: inventory again when it finished; reboot when asked.
    async fn after_deployment(
        &mut self,
        ctl: &mut Control,
        outcome: Outcome,
        plan: &mut Plan,
    ) -> Flow {
        let now = Instant::now();
        crate::memory::release_free_memory();
        match outcome {
            Outcome::NoUpdate => {
                plan.succeeded(Job::UpdateCheck, now);
                Flow::Continue
            }
            Outcome::Finished(status) => {
                tracing::info!(%status, "deployment finished");
                self.engine.client().forget_inventory();
                plan.deployment_finished(now);
                Flow::Continue
            }
            Outcome::Aborted => {
                self.engine.client().forget_inventory();
                plan.deployment_finished(now);
                Flow::Continue
            }
            Outcome::RebootRequired => self.reboot(ctl, plan).await,
        }
    }

    /// Runs the reboot command and waits to be stopped. If it fails, the deployment is
    /// resumed at once: the device still runs the old software, so it ends as a failure.
    async fn reboot(&mut self, ctl: &mut Control, plan: &mut Plan) -> Flow {
        let argv = &self.settings.reboot_command;
        let Some((program, args)) = argv.split_first() else {
            return Flow::Stop;
        };
        tracing::warn!(command = %argv.join(" "), "rebooting into the new software");
        let status = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match ctl.guard(status).await {
            None => return Flow::Stop,
            Some(Ok(s)) if s.success() => loop {
                // Wait for the system to stop us; signals asking for work are ignored now.
                match ctl.wait(Instant::now() + Duration::from_secs(3600)).await {
                    Some(Wake::Stop) => return Flow::Stop,
                    Some(w) => tracing::info!(?w, "a reboot is pending; ignoring the request"),
                    None => tracing::warn!("still waiting for the reboot"),
                }
            },
            Some(Ok(s)) => {
                tracing::error!(command = %argv.join(" "), "the reboot command failed: {s}")
            }
            Some(Err(e)) => {
                tracing::error!(command = %argv.join(" "), "cannot run the reboot command: {e}")
            }
        }
        match ctl.guard(self.engine.resume()).await {
            None => Flow::Stop,
            Some(Ok(Some(outcome))) if outcome != Outcome::RebootRequired => {
                Box::pin(self.after_deployment(ctl, outcome, plan)).await
            }
            Some(Ok(_)) => Flow::Continue,
            Some(Err(e)) => {
                tracing::error!("ending the deployment after the failed reboot: {e}");
                Flow::Continue
            }
        }
    }
}
