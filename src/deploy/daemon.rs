//! `mender-bridge daemon`: the long-running client, as Mender's own daemon behaves
//! (PROTOCOL.md §4.1–4.3).
//!
//! Start-up: signal handlers first (SIGUSR1's default action would kill us), then the pid
//! file lock, the wiring ([`super::setup`]), `engine.resume()` for a deployment the process
//! or the device stopped in the middle of, `READY=1` to systemd, authentication (retried
//! with backoff; a pending device is not an error), then the loop:
//!
//! - the inventory every `InventoryPollIntervalSeconds` and the update check every
//!   `UpdatePollIntervalSeconds`, each jittered ±10 % and backed off after failures (capped
//!   at `RetryPollIntervalSeconds`); see [`super::schedule`];
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

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{sleep_until, Instant, Interval};

use super::backend::AnyBackend;
use super::engine::{Engine, Outcome};
use super::lock::InstallLock;
use super::notify::{watchdog_interval, Notifier};
use super::pidfile::{PidError, PidLock};
use super::schedule::{RetryPolicy, Timer};
use super::scripts::{Action, ScriptLog, ScriptRunner, State};
use super::setup::{self, SetupError};
use super::store::Store;
use crate::client::ClientError;
use crate::config::Config;
use crate::identity::{full_inventory, inventory_for};
use mender_api::inventory::{Attribute, AttributeValue};

/// How long a running job may go on after SIGTERM before it is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Setup(#[from] SetupError),
    #[error("{0}")]
    Pid(#[from] PidError),
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// The daemon's timing and reboot settings.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub update_interval: Duration,
    pub inventory_interval: Duration,
    /// `RetryPollIntervalSeconds` and `RetryPollCount`.
    pub retry: RetryPolicy,
    pub reboot_command: Vec<String>,
    pub shutdown_grace: Duration,
}

impl DaemonSettings {
    pub fn from_config(cfg: &Config) -> Self {
        DaemonSettings {
            update_interval: cfg.update_poll_interval,
            inventory_interval: cfg.inventory_poll_interval,
            retry: RetryPolicy {
                cap: cfg.retry_poll_interval,
                count: cfg.retry_poll_count,
            },
            reboot_command: cfg.reboot_command.clone(),
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. `Ok(())` is a clean stop.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let mut ctl = Control::new(SHUTDOWN_GRACE)?;
    let pid_path = setup::pid_file(&config);
    let _pid = PidLock::acquire(&pid_path)?;
    let engine = setup::engine(&config).await?;
    tracing::info!(pid = std::process::id(), pid_file = %pid_path.display(), "daemon starting");
    let mut daemon = Daemon {
        settings: DaemonSettings::from_config(&config),
        scripts: setup::script_runner(&config),
        store: setup::store(&config),
        engine,
        config,
    };
    ctl.grace = daemon.settings.shutdown_grace;
    daemon.run(&mut ctl).await;
    ctl.notify("STOPPING=1");
    tracing::info!("daemon stopped");
    Ok(())
}

/// What woke the idle daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Check,
    Inventory,
    Stop,
}

/// Signals, the watchdog and systemd: everything the daemon listens to while it waits or
/// works.
struct Control {
    usr1: Signal,
    usr2: Signal,
    term: Signal,
    int: Signal,
    notifier: Option<Notifier>,
    watchdog: Option<Interval>,
    grace: Duration,
    stopping: bool,
    want_check: bool,
    want_inventory: bool,
}

enum Event<T> {
    Done(T),
    Ping,
    Wake(Wake),
    GraceOver,
}

async fn tick(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Control {
    fn new(grace: Duration) -> Result<Self, DaemonError> {
        let sig = |k| signal(k).map_err(DaemonError::Signals);
        let notifier = Notifier::from_env();
        let watchdog = notifier.as_ref().and(watchdog_interval()).map(|every| {
            tracing::info!(every = ?every, "feeding the systemd watchdog");
            let mut i = tokio::time::interval(every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Ok(Control {
            usr1: sig(SignalKind::user_defined1())?,
            usr2: sig(SignalKind::user_defined2())?,
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
            notifier,
            watchdog,
            grace,
            stopping: false,
            want_check: false,
            want_inventory: false,
        })
    }

    fn notify(&self, message: &str) {
        if let Some(n) = &self.notifier {
            n.notify(message);
        }
    }

    /// Waits until `until` (`None`) or a signal.
    async fn wait(&mut self, until: Instant) -> Option<Wake> {
        if self.stopping {
            return Some(Wake::Stop);
        }
        loop {
            let ev: Event<()> = tokio::select! {
                _ = sleep_until(until) => Event::Done(()),
                _ = tick(&mut self.watchdog) => Event::Ping,
                _ = self.usr1.recv() => Event::Wake(Wake::Check),
                _ = self.usr2.recv() => Event::Wake(Wake::Inventory),
                _ = self.term.recv() => Event::Wake(Wake::Stop),
                _ = self.int.recv() => Event::Wake(Wake::Stop),
            };
            match ev {
                Event::Done(()) | Event::GraceOver => return None,
                Event::Ping => self.notify("WATCHDOG=1"),
                Event::Wake(w) => {
                    if w == Wake::Stop {
                        tracing::info!("stop signal received");
                        self.stopping = true;
                    }
                    return Some(w);
                }
            }
        }
    }

    /// Runs `work` to its end while feeding the watchdog and noting signals (check and
    /// inventory requests are kept for afterwards). After a stop signal `work` gets
    /// `grace` more, then it is dropped and `None` returned.
    async fn guard<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        let mut deadline = self.stopping.then(|| Instant::now() + self.grace);
        loop {
            let ev = tokio::select! {
                out = &mut work => Event::Done(out),
                _ = tick(&mut self.watchdog) => Event::Ping,
                _ = self.usr1.recv() => Event::Wake(Wake::Check),
                _ = self.usr2.recv() => Event::Wake(Wake::Inventory),
                _ = self.term.recv() => Event::Wake(Wake::Stop),
                _ = self.int.recv() => Event::Wake(Wake::Stop),
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::GraceOver,
            };
            match ev {
                Event::Done(out) => return Some(out),
                Event::Ping => self.notify("WATCHDOG=1"),
                Event::Wake(Wake::Check) => self.want_check = true,
                Event::Wake(Wake::Inventory) => self.want_inventory = true,
                Event::Wake(Wake::Stop) => {
                    if deadline.is_none() {
                        tracing::info!(grace = ?self.grace, "stop signal received; letting the current step finish");
                        self.stopping = true;
                        deadline = Some(Instant::now() + self.grace);
                    }
                }
                Event::GraceOver => {
                    tracing::warn!("the current step did not finish in time; stopping anyway (start-up resumes it)");
                    return None;
                }
            }
        }
    }
}

struct Daemon {
    settings: DaemonSettings,
    scripts: ScriptRunner,
    store: Store,
    engine: Engine<AnyBackend>,
    config: Config,
}

/// Whether the loop goes on after a step.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Daemon {
    async fn run(&mut self, ctl: &mut Control) {
        let mut update = Timer::new(
            self.settings.update_interval,
            self.settings.retry,
            Instant::now(),
        );
        let mut inventory = Timer::new(
            self.settings.inventory_interval,
            self.settings.retry,
            Instant::now(),
        );

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
                if self
                    .after_deployment(ctl, outcome, &mut update, &mut inventory)
                    .await
                    == Flow::Stop
                {
                    return;
                }
            }
            Some(Err(e)) => tracing::error!("resuming the deployment in flight: {e}"),
        }
        ctl.notify("READY=1");
        if !self.authenticate(ctl).await {
            return;
        }

        let mut idle = false;
        loop {
            if ctl.stopping {
                return;
            }
            let now = Instant::now();
            if std::mem::take(&mut ctl.want_inventory) {
                inventory.trigger(now);
            }
            if std::mem::take(&mut ctl.want_check) {
                update.trigger(now);
            }
            if inventory.is_due(now) || update.is_due(now) {
                if idle {
                    self.script(State::Idle, Action::Leave).await;
                    idle = false;
                }
                let flow = if inventory.is_due(now) {
                    self.inventory_job(ctl, &mut inventory).await
                } else {
                    self.update_job(ctl, &mut update, &mut inventory).await
                };
                if flow == Flow::Stop {
                    return;
                }
                continue;
            }
            if !idle {
                self.script(State::Idle, Action::Enter).await;
                idle = true;
            }
            let until = update.due().min(inventory.due());
            match ctl.wait(until).await {
                None => {}
                Some(Wake::Check) => {
                    tracing::info!("SIGUSR1: checking for an update now");
                    update.trigger(Instant::now());
                }
                Some(Wake::Inventory) => {
                    tracing::info!("SIGUSR2: sending the inventory now");
                    inventory.trigger(Instant::now());
                }
                Some(Wake::Stop) => return,
            }
        }
    }

    /// Authenticates until accepted (pending devices wait here), backing off; `false`
    /// when stopped meanwhile.
    async fn authenticate(&mut self, ctl: &mut Control) -> bool {
        let mut backoff = super::schedule::ErrorBackoff::new(RetryPolicy {
            count: 0,
            ..self.settings.retry
        });
        loop {
            match ctl.guard(self.engine.client().authenticate()).await {
                None => return false,
                Some(Ok(())) => {
                    tracing::info!("authenticated");
                    return true;
                }
                Some(Err(e)) => {
                    let wait = super::schedule::jitter(backoff.failure());
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
                    // A signal asking for work ends the wait early: try now.
                    if ctl.wait(Instant::now() + wait).await == Some(Wake::Stop) {
                        return false;
                    }
                }
            }
        }
    }

    /// The install lock (see [`super::lock`]); `None` while a standalone command holds it.
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
        let mut log = ScriptLog::default();
        let r = self.scripts.run(state, action, &mut log).await;
        for line in log.stderr {
            tracing::info!("state script: {line}");
        }
        match r {
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

    async fn inventory_job(&mut self, ctl: &mut Control, timer: &mut Timer) -> Flow {
        if !self.sync_enter().await {
            timer.failed(Instant::now());
            return Flow::Continue;
        }
        let r = ctl.guard(send_inventory(&self.engine, &self.config)).await;
        let now = Instant::now();
        match r {
            None => return Flow::Stop,
            Some(Ok(())) => {
                let next = timer.succeeded(now);
                tracing::debug!(next = ?next, "inventory done");
                self.script(State::Sync, Action::Leave).await;
            }
            Some(Err(e)) => {
                let next = timer.failed(now);
                tracing::warn!("sending the inventory: {e}; trying again in {next:.0?}");
                self.script(State::Sync, Action::Error).await;
            }
        }
        Flow::Continue
    }

    async fn update_job(
        &mut self,
        ctl: &mut Control,
        timer: &mut Timer,
        inventory: &mut Timer,
    ) -> Flow {
        match self.store.standalone() {
            Ok(None) => {}
            Ok(Some(r)) => {
                tracing::warn!(
                    artifact = %r.artifact_name,
                    "a standalone install awaits `mender-bridge commit` or `rollback`; not checking for updates"
                );
                timer.succeeded(Instant::now());
                return Flow::Continue;
            }
            Err(e) => tracing::warn!("reading the standalone record: {e}"),
        }
        // Held through the check, the deployment and a pending reboot.
        let Some(_lock) = self.install_lock() else {
            let next = timer.failed(Instant::now());
            tracing::info!(
                "a standalone install, commit or rollback is running; checking again in {next:.0?}"
            );
            return Flow::Continue;
        };
        if !self.sync_enter().await {
            timer.failed(Instant::now());
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
                let next = timer.failed(Instant::now());
                tracing::warn!("update check: {e}; trying again in {next:.0?}");
                self.script(State::Sync, Action::Error).await;
                return Flow::Continue;
            }
        };
        let Some(instructions) = instructions else {
            let next = timer.succeeded(Instant::now());
            tracing::debug!(next = ?next, "no update");
            return Flow::Continue;
        };
        tracing::info!(deployment = %instructions.id, artifact = %instructions.artifact.artifact_name, "deployment offered");
        match ctl.guard(self.engine.deploy(instructions)).await {
            None => Flow::Stop,
            Some(Ok(outcome)) => self.after_deployment(ctl, outcome, timer, inventory).await,
            Some(Err(e)) => {
                let next = timer.failed(Instant::now());
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
        update: &mut Timer,
        inventory: &mut Timer,
    ) -> Flow {
        let now = Instant::now();
        crate::memory::release_free_memory();
        match outcome {
            Outcome::NoUpdate => {
                update.succeeded(now);
                Flow::Continue
            }
            Outcome::Finished(status) => {
                tracing::info!(%status, "deployment finished");
                update.succeeded(now);
                self.engine.client().forget_inventory();
                inventory.trigger(now);
                Flow::Continue
            }
            Outcome::Aborted => {
                update.succeeded(now);
                self.engine.client().forget_inventory();
                inventory.trigger(now);
                Flow::Continue
            }
            Outcome::RebootRequired => self.reboot(ctl, update, inventory).await,
        }
    }

    /// Runs the reboot command and waits to be stopped. If it fails, the deployment is
    /// resumed at once: the device still runs the old software, so it ends as a failure.
    async fn reboot(
        &mut self,
        ctl: &mut Control,
        update: &mut Timer,
        inventory: &mut Timer,
    ) -> Flow {
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
                Box::pin(self.after_deployment(ctl, outcome, update, inventory)).await
            }
            Some(Ok(_)) => Flow::Continue,
            Some(Err(e)) => {
                tracing::error!("ending the deployment after the failed reboot: {e}");
                Flow::Continue
            }
        }
    }
}

/// The backend's inventory pairs as API attributes (values that are not strings, numbers
/// or lists of them are dropped).
fn backend_attributes(pairs: Vec<(String, serde_json::Value)>) -> Vec<Attribute> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| {
            match serde_json::from_value::<AttributeValue>(value) {
                Ok(v) => Some(Attribute::new(name, v)),
                Err(_) => {
                    tracing::debug!(attribute = %name, "backend attribute of an unsupported type dropped");
                    None
                }
            }
        })
        .collect()
}

/// The full inventory: device type, provides, inventory scripts, backend attributes.
pub async fn send_inventory(
    engine: &Engine<AnyBackend>,
    config: &Config,
) -> Result<(), ClientError> {
    use mender_bridge_backends::Backend as _;
    let scripts = inventory_for(config).await;
    let extra = backend_attributes(engine.backend().inventory().await);
    let device_type = engine.device_provides().device_type;
    let attrs = full_inventory(&device_type, &engine.provides(), &scripts.attributes, extra);
    engine.client().send_inventory(&attrs).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_attributes_keep_strings_numbers_and_lists() {
        let got = backend_attributes(vec![
            ("rootfs_active_slot".into(), "a".into()),
            ("n".into(), 3.into()),
            ("l".into(), serde_json::json!(["x", "y"])),
            ("bad".into(), serde_json::json!({"o": 1})),
            ("null".into(), serde_json::Value::Null),
        ]);
        let names: Vec<&str> = got.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rootfs_active_slot", "n", "l"]);
    }
}
